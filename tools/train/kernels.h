#pragma once
// The trainer's dense kernels on row-major float matrices. Every product is
// written as an "axpy" loop (a row of the output accumulates a scaled row of an
// input), which the compiler vectorises without reassociating sums, so the
// products a linear layer needs forward (x W^T, with W^T kept transposed) and
// backward (dY W, dY^T X) run at SIMD speed.

#include <cstdint>

namespace strata::train {

// C[m, n] (+)= A[m, k] B[k, n].
void matmul_nn(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n,
               bool accumulate);
// C[k, n] += A[m, k]^T B[m, n]: a weight's gradient dW[out, in] += dY^T X.
void matmul_tn_acc(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n);

// RMSNorm of one row: y = x / rms(x) * w; returns 1 / rms(x) for the backward pass.
float rms_norm_fwd(const float* x, const float* w, float eps, int64_t n, float* y);
// Backward of `rms_norm_fwd` given its saved `inv`: dx (+)= ..., dw += ...
void rms_norm_bwd(const float* x, const float* w, float inv, const float* dy, int64_t n, float* dx,
                  float* dw, bool accumulate_dx);

// NeoX RoPE (element i rotates with i + n/2) of one head at position `pos`, with
// the engine's angle recurrence; `inverse` applies the transposed rotation, which
// is the backward pass.
void rope_neox(float* x, int head_dim, int64_t pos, float freq_base, bool inverse);

}  // namespace strata::train
