// llama: the dense baseline (RMSNorm, adjacent-pair RoPE, SwiGLU), and Mixtral,
// which is a llama with `expert_count`: softmax over all experts, top-k, and the k
// weights renormalised to sum to 1.
#include "model/arch.h"

namespace strata {
const ArchSpec kArchLlama{.name = "llama", .rope = RopeKind::Norm, .norm_expert_weights = true};
}
