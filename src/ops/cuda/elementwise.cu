// The element-wise ops: bias and residual adds, the gated activations, the KV
// store, and the row gather/scatter of the MoE layer. Each is one thread per
// element with a grid-stride loop; the arithmetic is the CPU backend's
// (ops/cpu/backend_cpu.cpp, ops/cpu/ops.h) with the separate roundings spelled
// out (__fmul_rn, __fadd_rn) so nvcc does not fuse what the CPU rounds twice.
#include "ops/cuda/common.cuh"
#include "ops/cuda/kernels.h"

#include <algorithm>

namespace strata::ops::cuda {

namespace {

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU; larger arrays loop.
constexpr int64_t kMaxBlocks = 65536;

unsigned grid_for(int64_t n) {
    return static_cast<unsigned>(std::min<int64_t>(blocks_for(n, kThreads), kMaxBlocks));
}

__device__ __forceinline__ int64_t first_index() {
    return int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t stride() {
    return int64_t{gridDim.x} * blockDim.x;
}

__global__ void add_bias_kernel(float* y, const float* b, int64_t n, int64_t width) {
    for (int64_t i = first_index(); i < n; i += stride()) y[i] = __fadd_rn(y[i], b[i % width]);
}

__global__ void add_kernel(float* y, const float* x, int64_t n) {
    for (int64_t i = first_index(); i < n; i += stride()) y[i] = __fadd_rn(y[i], x[i]);
}

// ops::glu: silu(g) * u, or gpt-oss's clamped variant. expf is within 2 ulp of
// the host's expf (CUDA math guide), the rest rounds as the CPU does.
__global__ void glu_kernel(Activation act, const float* gate, const float* up, int64_t n,
                           float* out) {
    for (int64_t i = first_index(); i < n; i += stride()) {
        const float g0 = gate[i], u0 = up[i];
        if (act == Activation::SwiGlu) {
            const float silu = __fdiv_rn(g0, __fadd_rn(1.0f, expf(-g0)));
            out[i] = __fmul_rn(silu, u0);
        } else {
            // std::min and std::clamp's comparisons, so a NaN passes through as on the CPU.
            const float g = kOaiLimit < g0 ? kOaiLimit : g0;
            const float u = u0 < -kOaiLimit ? -kOaiLimit : (kOaiLimit < u0 ? kOaiLimit : u0);
            const float sig = __fadd_rn(1.0f, expf(__fmul_rn(-kOaiAlpha, g)));
            out[i] = __fmul_rn(__fdiv_rn(g, sig), __fadd_rn(u, 1.0f));
        }
    }
}

__global__ void gather_kernel(const float* x, int64_t width, const int32_t* rows, int64_t n,
                              float* out) {
    for (int64_t i = first_index(); i < n * width; i += stride()) {
        const int64_t r = i / width, c = i % width;
        out[i] = x[int64_t{rows[r]} * width + c];
    }
}

// `rows` holds no row twice (backend.h), so no two threads write one element.
__global__ void scatter_add_kernel(float* out, int64_t width, const float* y,
                                   const int32_t* rows, const float* weights, int64_t n) {
    for (int64_t i = first_index(); i < n * width; i += stride()) {
        const int64_t r = i / width, c = i % width;
        float* o = out + int64_t{rows[r]} * width + c;
        *o = __fadd_rn(*o, __fmul_rn(weights[r], y[i]));
    }
}

// Row t of k (k_width floats) and of v to positions pos0 + t; halves with the
// host's rounding (common.cuh), so both backends store identical bits.
__global__ void kv_store_kernel(void* kc, void* vc, bool f16, int64_t k_width, int64_t v_width,
                                int64_t pos0, int64_t n_tok, const float* k, const float* v) {
    const int64_t nk = n_tok * k_width, nv = n_tok * v_width;
    for (int64_t i = first_index(); i < nk + nv; i += stride()) {
        const bool is_k = i < nk;
        const int64_t j = is_k ? i : i - nk;
        const float val = is_k ? k[j] : v[j];
        // Rows are contiguous on both sides, so element j of the batch lands at
        // element pos0 * width + j of the cache.
        const int64_t dst = pos0 * (is_k ? k_width : v_width) + j;
        void* base = is_k ? kc : vc;
        if (f16) {
            static_cast<uint16_t*>(base)[dst] = fp32_to_fp16(val);
        } else {
            static_cast<float*>(base)[dst] = val;
        }
    }
}

}  // namespace

void add_bias(float* y, const float* b, int64_t n_rows, int64_t width, cudaStream_t s) {
    add_bias_kernel<<<grid_for(n_rows * width), kThreads, 0, s>>>(y, b, n_rows * width, width);
    check_launch("add_bias");
}

void add(float* y, const float* x, int64_t n, cudaStream_t s) {
    add_kernel<<<grid_for(n), kThreads, 0, s>>>(y, x, n);
    check_launch("add");
}

void glu(Activation act, const float* gate, const float* up, int64_t n, float* out,
         cudaStream_t s) {
    glu_kernel<<<grid_for(n), kThreads, 0, s>>>(act, gate, up, n, out);
    check_launch("glu");
}

void gather_rows(const float* x, int64_t width, const int32_t* rows, int64_t n, float* out,
                 cudaStream_t s) {
    gather_kernel<<<grid_for(n * width), kThreads, 0, s>>>(x, width, rows, n, out);
    check_launch("gather_rows");
}

void scatter_add(float* out, int64_t width, const float* y, const int32_t* rows,
                 const float* weights, int64_t n, cudaStream_t s) {
    scatter_add_kernel<<<grid_for(n * width), kThreads, 0, s>>>(out, width, y, rows, weights, n);
    check_launch("scatter_add");
}

void kv_store(const KvLayer& kv, int64_t pos0, int64_t n_tok, const float* k, const float* v,
              cudaStream_t s) {
    const int64_t n = n_tok * (kv.k_width + kv.v_width);
    kv_store_kernel<<<grid_for(n), kThreads, 0, s>>>(kv.k, kv.v, kv.f16, kv.k_width, kv.v_width,
                                                     pos0, n_tok, k, v);
    check_launch("kv_store");
}

}  // namespace strata::ops::cuda
