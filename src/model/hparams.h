#pragma once
// Hyper-parameters every architecture reads from `<arch>.*` GGUF keys. Each
// architecture file checks the ones it needs; this reader only gathers them and
// rejects values that cannot be right (zero heads, more experts used than exist).

#include "gguf/file.h"
#include "util/result.h"

#include <cstdint>
#include <string>

namespace strata {

struct HParams {
    std::string arch;
    uint32_t n_layer = 0;
    uint32_t n_embd = 0;
    uint32_t n_head = 0;
    uint32_t n_head_kv = 0;
    uint32_t n_embd_head_k = 0;  // per-head key width (`attention.key_length`, else n_embd / n_head)
    uint32_t n_embd_head_v = 0;
    uint32_t n_ctx_train = 0;
    uint32_t n_ff = 0;           // dense FFN width (`feed_forward_length`)
    uint32_t n_vocab = 0;
    uint32_t n_rot = 0;          // rotated dims per head (`rope.dimension_count`)

    uint32_t n_expert = 0;        // routed experts per MoE layer; 0 for dense models
    uint32_t n_expert_used = 0;   // top-k
    uint32_t n_expert_shared = 0;
    uint32_t n_ff_exp = 0;        // routed expert FFN width
    uint32_t n_ff_shexp = 0;      // shared expert FFN width
    uint32_t n_layer_dense_lead = 0;  // leading dense blocks (deepseek)
    float expert_weights_scale = 1.0f;

    uint32_t n_swa = 0;           // sliding-window size; 0 when every layer attends fully
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;
    std::string rope_scaling_type;     // "yarn", "linear", or empty for none
    float rope_scaling_factor = 0.0f;  // context extension factor
    uint32_t n_ctx_orig_yarn = 0;      // the context the model was trained at before scaling
    float norm_rms_eps = 1e-5f;
    float norm_eps = 1e-5f;

    bool is_moe() const { return n_expert > 0; }
};

// Reads the hyper-parameters of the model in `f`. Errors name the missing or
// wrong key.
Result<HParams> read_hparams(const gguf::File& f);

}  // namespace strata
