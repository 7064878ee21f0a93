#pragma once
// CPU kernels on float activations (norms, softmax, activations, RoPE,
// attention); matrix products live in matmul.h.

#include "ops/cpu/matmul.h"
#include "ops/params.h"

#include <algorithm>
#include <cstdint>

namespace strata::ops {

// out = x / sqrt(mean(x^2) + eps) * w   (w may be null: no scale)
void rms_norm(const float* x, int64_t n, const float* w, float eps, float* out);
// out = (x - mean) / sqrt(var + eps) * w + b
void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

inline float silu(float x) {
    return x / (1.0f + __builtin_expf(-x));
}
inline float sigmoid(float x) {
    return 1.0f / (1.0f + __builtin_expf(-x));
}

// The gated activation of one gate/up pair.
inline float glu(Activation act, float gate, float up) {
    if (act == Activation::SwiGlu) return silu(gate) * up;
    const float g = std::min(gate, kOaiLimit);
    const float u = std::clamp(up, -kOaiLimit, kOaiLimit);
    return g / (1.0f + __builtin_expf(-kOaiAlpha * g)) * (u + 1.0f);
}

// Rotates `n_heads` heads of `head_dim` in each of `n_tok` rows (stride `row_stride`),
// row t at position pos0 + t.
void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim, int64_t pos0,
          const RopeParams& p);

// out[t] = softmax(scale * q[t] . K^T + mask) V over positions [0, pos0 + t] of `kv`
// (from pos0 + t - window + 1 with a sliding window), with the heads' sinks.
void attention(const float* q, int64_t n_tok, int64_t pos0, const KvLayer& kv,
               const AttentionParams& p, float* out, ThreadPool& pool);

// Stores one position's key and value rows.
void kv_store(const KvLayer& kv, int64_t pos, const float* k, const float* v);

}  // namespace strata::ops
