#pragma once
// CPU kernels on float activations: the scalar reference every faster path and
// every other backend is tested against. Matrices are `TensorView`s of any type
// with a dequantizer; activations are row-major [n_tokens, width] float arrays.

#include "tensor/view.h"
#include "util/thread_pool.h"

#include <cstdint>

namespace strata::ops {

// y[t][r] = dot(row (row0 + r) of w, x[t]) for r in [0, n_out), t in [0, n_tok).
// x rows are w.ne[0] floats, `x_stride` apart; y rows `y_stride` apart.
void matmul(const TensorView& w, int64_t row0, int64_t n_out, const float* x, int64_t x_stride, int64_t n_tok,
            float* y, int64_t y_stride, ThreadPool& pool);

// out = x / sqrt(mean(x^2) + eps) * w   (w may be null: no scale)
void rms_norm(const float* x, int64_t n, const float* w, float eps, float* out);
// out = (x - mean) / sqrt(var + eps) * w + b
void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out);

// In-place softmax over n values.
void softmax(float* x, int64_t n);

inline float silu(float x) { return x / (1.0f + __builtin_expf(-x)); }
inline float sigmoid(float x) { return 1.0f / (1.0f + __builtin_expf(-x)); }

}  // namespace strata::ops
