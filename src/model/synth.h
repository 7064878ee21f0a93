#pragma once
// `strata synth`: random-weight GGUF files with the exact tensor names, shapes and
// types of real models, so the engine can be benchmarked on real model shapes
// without downloading them. Weights are random but deterministic for a seed; the
// tokenizer is a valid SentencePiece-style vocabulary of the model's size with a
// ChatML chat template.

#include "gguf/writer.h"
#include "model/hparams.h"
#include "model/layout.h"
#include "util/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct SynthSpec {
    std::string name;  // general.name
    HParams hp;
    // Type names ("Q8_0", "mxfp4"), so callers above model/ need not see tensor types.
    std::string matrix_type = "Q8_0";  // attention, embeddings, output, dense and shared FFN
    std::string expert_type = "Q4_K";  // routed-expert tensors
    uint64_t seed = 1;
};

struct SynthPreset {
    std::string name;         // "gpt-oss-20b"
    std::string description;  // what real model it mirrors
    SynthSpec spec;
};

const std::vector<SynthPreset>& synth_presets();
const SynthPreset* find_synth_preset(const std::string& name);

// The file a spec describes, ready to write: metadata, tensor list with the type
// each tensor gets, and notes on types that had to change (a 256-element block
// type on a row whose width is not a multiple of 256 falls back, as the
// reference quantiser does).
struct SynthPlan {
    gguf::Writer writer;
    std::vector<TensorRole> roles;  // parallel to writer.tensors(): what values each gets
    std::vector<std::string> notes;
    uint64_t seed = 1;
};

Result<SynthPlan> plan_synth(const SynthSpec& spec);

// Writes the planned file with `n_threads` threads generating and writing data.
Status write_synth(const SynthPlan& plan, const std::string& path, int n_threads);

}  // namespace strata
