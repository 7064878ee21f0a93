// gpt-oss (OpenAI gpt-oss-20b/120b): biased attention with a learned sink logit
// per head, a sliding window on every other layer, NeoX RoPE (YaRN-scaled when
// the file says so), a biased router whose top-k logits are softmaxed, experts
// with biases and the clamped SwiGLU variant.
#include "model/arch.h"

namespace strata {
const ArchSpec kArchGptOss{.name = "gpt-oss",
                           .attn_bias = true,
                           .attn_sinks = true,
                           .post_attn_norm_name = true,
                           .expert_bias = true,
                           .rope = RopeKind::Neox,
                           .gating = Gating::SoftmaxTopK,
                           .swa_even_layers = true,
                           .activation = Activation::SwiGluOai};
}
