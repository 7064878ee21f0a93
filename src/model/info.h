#pragma once
// What `strata probe` reports about a GGUF without loading weights: identity,
// hyper-parameters, tokenizer, and where the bytes are — by type, and split into
// routed-expert tensors versus everything else, per layer and in total. Plain
// data (strings and numbers), so the app layer can print it without seeing
// tensor types.

#include "gguf/file.h"
#include "model/hparams.h"
#include "util/result.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace strata {

struct TypeUsage {
    std::string type;  // "Q4_K"
    uint64_t n_tensors = 0;
    uint64_t n_elements = 0;
    uint64_t n_bytes = 0;
};

struct LayerBytes {
    int layer = 0;
    uint64_t expert_bytes = 0;  // routed-expert tensors of this layer
    uint64_t other_bytes = 0;   // everything else in the layer
};

struct ModelInfo {
    std::string path;
    uint64_t file_size = 0;
    size_t n_parts = 1;
    uint32_t version = 0;
    std::string architecture;
    std::string name;
    bool vocab_only = false;  // a tokenizer-only file: no tensors

    std::optional<HParams> hparams;
    std::string hparams_error;  // why `hparams` is empty, when it should not be

    std::string tokenizer_model;  // tokenizer.ggml.model: "llama" (SPM), "gpt2" (BPE) ...
    std::string tokenizer_pre;
    uint64_t vocab_size = 0;
    bool has_chat_template = false;

    uint64_t n_tensors = 0;
    uint64_t n_params = 0;
    std::vector<TypeUsage> by_type;       // sorted by bytes, largest first
    std::vector<TypeUsage> expert_types;  // the types of routed-expert tensors
    std::vector<LayerBytes> layers;
    uint64_t expert_bytes = 0;  // routed-expert tensors, all layers
    uint64_t other_bytes = 0;   // everything else
};

ModelInfo describe_model(const gguf::File& f);

}  // namespace strata
