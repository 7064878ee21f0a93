#pragma once
// The parameters of the operations every backend implements (RoPE, attention,
// the gated activations), in one place below model/: the architecture specs
// choose them, the CPU kernels and the device backends (backend.h) take them.

#include <cstdint>

namespace strata::ops {

enum class RopeKind {
    Norm,  // rotate adjacent pairs (x[2i], x[2i+1])
    Neox,  // rotate halves (x[i], x[i + n_rot/2])
};

enum class Activation {
    SwiGlu,     // silu(gate) * up
    SwiGluOai,  // gpt-oss: clamped gate * sigmoid(1.702 gate) * (clamped up + 1)
};

struct RopeParams {
    RopeKind kind = RopeKind::Norm;
    int n_rot = 0;  // rotated dims per head
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;  // 1 / context extension factor
    // YaRN (ext_factor > 0): blend of interpolated and extrapolated frequencies.
    float ext_factor = 0.0f;
    float attn_factor = 1.0f;
    float beta_fast = 32.0f, beta_slow = 1.0f;
    int n_ctx_orig = 0;
};

struct AttentionParams {
    int n_head = 0, n_head_kv = 0, head_dim_k = 0, head_dim_v = 0;
    float scale = 1.0f;
    int64_t window = 0;  // sliding window (keys with pos_q - pos_k >= window are masked); 0 = none
    const float* sinks =
        nullptr;  // one logit per head, or null (in the memory of whoever runs the op)
};

// One layer's keys and values: row `pos` of the keys starts at
// k + pos * k_width elements (F16 or F32, as `f16` says), likewise the values.
struct KvLayer {
    void* k = nullptr;
    void* v = nullptr;
    bool f16 = true;
    int64_t k_width = 0, v_width = 0;
};

// gpt-oss's SwiGLU: the gate is clamped from above only, the up projection on
// both sides and shifted by one.
constexpr float kOaiAlpha = 1.702f;
constexpr float kOaiLimit = 7.0f;

}  // namespace strata::ops
