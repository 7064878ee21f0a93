// olmoe (OLMoE-1B-7B): RMSNorm over the whole q and k projections (not per
// head) before NeoX RoPE; softmax routing without renormalisation.
#include "model/arch.h"

namespace strata {
const ArchSpec kArchOlmoe{.name = "olmoe", .qk_norm = QkNorm::Full, .rope = RopeKind::Neox};
}
