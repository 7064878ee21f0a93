// deepseek (DeepSeek-MoE-16B, v1): the first `leading_dense_block_count` blocks
// are dense; the others route with softmax (no renormalisation, weights times
// `expert_weights_scale`) and add `expert_shared_count` shared experts, stored
// as one FFN that wide. Adjacent-pair RoPE, as llama.
#include "model/arch.h"

namespace strata {
const ArchSpec kArchDeepseek{.name = "deepseek", .shared = SharedExpert::Plain, .rope = RopeKind::Norm};
}
