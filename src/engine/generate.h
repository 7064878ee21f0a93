#pragma once
// The generation loop shared by `strata run`, `strata chat` and the server:
// prompt in, text pieces out through a callback, until end of generation, a stop
// string, the token limit, the context limit, or the caller cancels.

#include "engine/engine.h"
#include "engine/sampler.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct GenerateParams {
    int n_predict = -1;  // -1: until end of generation or the context is full
    SamplingParams sampling;
    std::vector<std::string> stop;  // stop strings; never emitted
    bool ignore_eos = false;
};

enum class FinishReason { Stop, Length, Cancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled"

struct GenerateResult {
    int64_t n_prompt = 0;     // prompt tokens
    int64_t n_reused = 0;     // of those, taken from the session's cache
    int64_t n_generated = 0;  // tokens sampled (including a final end-of-generation token)
    double prompt_seconds = 0;  // prompt processing: time to the first token's logits
    double generate_seconds = 0;
    FinishReason finish = FinishReason::Length;
    std::string text;  // everything emitted
};

// Receives each piece of text as it becomes safe to show (valid UTF-8, not part
// of a stop string); returns false to cancel.
using PieceFn = std::function<bool(std::string_view piece)>;

Result<GenerateResult> generate(Session& session, std::span<const int32_t> prompt, const GenerateParams& p,
                                const PieceFn& on_piece);

}  // namespace strata
