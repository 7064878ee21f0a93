// qwen2moe (Qwen1.5-MoE, Qwen2-57B-A14B): NeoX RoPE, softmax routing without
// renormalisation, and a shared expert whose output is scaled by
// sigmoid(ffn_gate_inp_shexp · x).
#include "model/arch.h"

namespace strata {
const ArchSpec kArchQwen2Moe{.name = "qwen2moe",
                             .shared = SharedExpert::SigmoidGated,
                             .rope = RopeKind::Neox,
                             .norm_expert_weights = false};
}
