// qwen3moe (Qwen3-30B-A3B, 235B-A22B): RMSNorm over each head's q and k before
// NeoX RoPE; softmax routing with the top-k weights renormalised.
#include "model/arch.h"

namespace strata {
const ArchSpec kArchQwen3Moe{
    .name = "qwen3moe", .qk_norm = QkNorm::PerHead, .rope = RopeKind::Neox, .norm_expert_weights = true};
}
