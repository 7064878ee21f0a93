#pragma once
// The tensors an architecture's GGUF holds: names, shapes (innermost first, as
// GGUF stores them) and what each one is. This is the one place that knows, for
// example, that gpt-oss has attention sinks and per-expert biases while qwen3moe
// has per-head q/k norms; `strata synth` writes exactly this list and model
// loading checks a file against it.

#include "model/arch.h"
#include "model/hparams.h"
#include "util/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

enum class TensorRole {
    Matrix,  // a weight matrix (or a stack of expert matrices): quantisable
    Router,  // expert gating matrix; kept in F32, as the reference quantiser does
    Scale,   // a norm's weight: values around 1
    Bias,    // biases, attention sinks, gate scalars: small values around 0
};

struct TensorDesc {
    std::string name;
    std::vector<uint64_t> ne;
    TensorRole role = TensorRole::Matrix;
};

// The architectures strata knows the tensor layout of.
const std::vector<std::string>& known_architectures();

// The name of the norm before the FFN ("ffn_norm", gpt-oss "post_attention_norm").
const char* ffn_norm_name(const ArchSpec& arch);
// Width of the shared-expert FFN of an MoE layer; 0 when there is none.
uint64_t shared_expert_width(const ArchSpec& arch, const HParams& hp);

// Every tensor of a model with these hyper-parameters, in the order the reference
// converter writes them (global tensors first, then block by block). An error
// when the architecture is unknown or a dimension it needs is zero.
Result<std::vector<TensorDesc>> tensor_layout(const HParams& hp);

}  // namespace strata
