#pragma once
// Element-wise CPU kernels on float activations (norms, softmax, activations);
// matrix products live in matmul.h.

#include "ops/cpu/matmul.h"

#include <cstdint>

namespace strata::ops {

// out = x / sqrt(mean(x^2) + eps) * w   (w may be null: no scale)
void rms_norm(const float* x, int64_t n, const float* w, float eps, float* out);
// out = (x - mean) / sqrt(var + eps) * w + b
void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

inline float silu(float x) { return x / (1.0f + __builtin_expf(-x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + __builtin_expf(-x)); }

}  // namespace strata::ops
