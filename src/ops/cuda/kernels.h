#pragma once
// The launchers of the backend's kernels, one per op of ops/backend.h, each
// enqueuing its work on `stream`. backend_cuda.cu checks arguments and owns
// memory; the .cu file of each kernel family defines its launchers.

#include "ops/backend.h"
#include "ops/params.h"

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace strata::ops::cuda {

// quant_matmul.cu. Whether a weight type has a kernel, the bytes of scratch the
// product needs for its quantised activations, and the product itself.
bool matmul_supports(TensorType t);
size_t matmul_scratch_bytes(TensorType t, int64_t n_in, int64_t n_tok);
void matmul(const Matrix& w, const float* x, int64_t n_tok, float* y, void* scratch,
            cudaStream_t stream);

// elementwise.cu
void add_bias(float* y, const float* b, int64_t n_rows, int64_t width, cudaStream_t s);
void add(float* y, const float* x, int64_t n, cudaStream_t s);
void glu(Activation act, const float* gate, const float* up, int64_t n, float* out,
         cudaStream_t s);
void gather_rows(const float* x, int64_t width, const int32_t* rows, int64_t n, float* out,
                 cudaStream_t s);
void scatter_add(float* out, int64_t width, const float* y, const int32_t* rows,
                 const float* weights, int64_t n, cudaStream_t s);
void kv_store(const KvLayer& kv, int64_t pos0, int64_t n_tok, const float* k, const float* v,
              cudaStream_t s);

// norm_rope.cu
void rms_norm(const float* x, int64_t n_rows, int64_t width, const float* w, const float* b,
              float eps, float* out, cudaStream_t s);
void layer_norm(const float* x, int64_t n_rows, int64_t width, const float* w, const float* b,
                float eps, float* out, cudaStream_t s);
void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim, int64_t pos0,
          const RopeParams& p, cudaStream_t s);

// attention.cu. The widest value head the kernel keeps in registers.
constexpr int kMaxHeadDimV = 512;
void attention(const float* q, int64_t n_tok, int64_t pos0, const KvLayer& kv,
               const AttentionParams& p, float* out, cudaStream_t s);

}  // namespace strata::ops::cuda
