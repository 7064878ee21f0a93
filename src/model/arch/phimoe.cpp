// phimoe (Phi-3.5-MoE): norms with biases, biased attention projections and LM
// head, NeoX RoPE, top-2 softmax routing renormalised. The Hugging Face model uses
// LayerNorm; the reference implementation (whose logits strata matches) runs
// RMSNorm plus the bias, so strata does too.
#include "model/arch.h"

namespace strata {
const ArchSpec kArchPhimoe{.name = "phimoe",
                           .norm = NormKind::Rms,
                           .norm_bias = true,
                           .attn_bias = true,
                           .output_bias = true,
                           .rope = RopeKind::Neox,
                           .norm_expert_weights = true};
}
