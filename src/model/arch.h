#pragma once
// What makes each supported architecture different, in one struct per
// architecture (model/arch/<name>.cpp). The tensor layout (layout.cpp) and the
// forward pass (decoder.cpp, built from the blocks in blocks.h) read only this, so
// adding an architecture means writing its spec and, where its math is new, a
// block — not another copy of the transformer.

#include "model/hparams.h"
#include "ops/params.h"
#include "util/result.h"

#include <string>
#include <vector>

namespace strata {

enum class NormKind { Rms, Layer };         // RMSNorm, or LayerNorm with bias
using ops::RopeKind;                        // Norm (adjacent pairs) or Neox (halves), ops/params.h
enum class QkNorm { None, PerHead, Full };  // RMSNorm of q and k before RoPE
enum class Gating {
    Softmax,      // softmax over all experts, then top-k of the probabilities
    SoftmaxTopK,  // top-k of the logits, then softmax over those k (gpt-oss)
};
enum class SharedExpert { None, Plain, SigmoidGated };
using ops::Activation;  // SwiGlu or gpt-oss's SwiGluOai, ops/params.h

struct ArchSpec {
    const char* name;
    // Tensor layout.
    NormKind norm = NormKind::Rms;
    bool norm_bias = false;    // norms add a bias (phimoe)
    bool attn_bias = false;    // q/k/v/o projections have biases
    bool output_bias = false;  // the LM head has a bias
    QkNorm qk_norm = QkNorm::None;
    bool attn_sinks = false;           // one learned sink logit per head
    bool post_attn_norm_name = false;  // the FFN's input norm is called post_attention_norm
    bool expert_bias = false;          // router and per-expert biases
    SharedExpert shared = SharedExpert::None;
    // Math.
    RopeKind rope = RopeKind::Norm;
    Gating gating = Gating::Softmax;
    bool norm_expert_weights = false;  // renormalise the top-k weights to sum to 1
    bool swa_even_layers = false;      // sliding window on layers 0, 2, 4, ... (when n_swa > 0)
    Activation activation = Activation::SwiGlu;
};

const ArchSpec* find_arch(const std::string& name);
const std::vector<const ArchSpec*>& all_archs();

// One per architecture file.
extern const ArchSpec kArchLlama, kArchQwen2Moe, kArchQwen3Moe, kArchOlmoe, kArchDeepseek,
    kArchPhimoe, kArchGptOss;

}  // namespace strata
