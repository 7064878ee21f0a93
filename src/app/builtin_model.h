#pragma once
// The project's own small MoE model (models/strata-tiny-moe.gguf, trained by
// tools/train), compiled into the binary so `strata run` and `strata serve` have
// something to say on a machine with no model yet.

#include "util/result.h"

#include <string>

namespace strata::app {

inline constexpr const char* kBuiltinModelName = "strata-tiny-moe";

// A path through which the built-in model opens like any GGUF file: an
// in-memory file (memfd) holding its bytes, made once per process and kept open
// for its lifetime, so loading runs the same validation as a file on disk.
Result<std::string> builtin_model_path();

}  // namespace strata::app
