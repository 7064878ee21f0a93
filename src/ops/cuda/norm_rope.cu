// RMSNorm, LayerNorm and RoPE, with the CPU kernels' arithmetic (ops/cpu/ops.cpp,
// ops/cpu/attention.cpp): norms sum in double and scale in float, RoPE advances
// each pair's angle by the same repeated float multiplication and takes the same
// host-computed constants, so only cosf/sinf (within 2 ulp, CUDA math guide) and
// the double sums' order can differ from the CPU.
#include "ops/cuda/common.cuh"
#include "ops/cuda/kernels.h"

#include <algorithm>
#include <cmath>

namespace strata::ops::cuda {

namespace {

constexpr int kNormThreads = 256;

// The sum of `v` over the thread block (kNormThreads threads), in every thread.
__device__ double block_sum(double v) {
    __shared__ double partial[kNormThreads / kWarp];
    __syncthreads();  // a previous call's readers are done with `partial`
    v = warp_sum_double(v);
    if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = v;
    __syncthreads();
    double total = 0.0;
    for (int w = 0; w < kNormThreads / kWarp; ++w) total += partial[w];  // same order everywhere
    return total;
}

// One thread block per row.
__global__ void rms_norm_kernel(const float* x, int64_t width, const float* w, const float* b,
                                float eps, float* out) {
    const float* xr = x + int64_t{blockIdx.x} * width;
    float* o = out + int64_t{blockIdx.x} * width;
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < width; i += kNormThreads) sum += double{xr[i]} * xr[i];
    sum = block_sum(sum);
    const float scale =
        1.0f / sqrtf(__fadd_rn(static_cast<float>(sum / static_cast<double>(width)), eps));
    for (int64_t i = threadIdx.x; i < width; i += kNormThreads) {
        float v = __fmul_rn(__fmul_rn(xr[i], scale), w ? w[i] : 1.0f);
        if (b) v = __fadd_rn(v, b[i]);
        o[i] = v;
    }
}

__global__ void layer_norm_kernel(const float* x, int64_t width, const float* w, const float* b,
                                  float eps, float* out) {
    const float* xr = x + int64_t{blockIdx.x} * width;
    float* o = out + int64_t{blockIdx.x} * width;
    double mean = 0.0;
    for (int64_t i = threadIdx.x; i < width; i += kNormThreads) mean += xr[i];
    mean = block_sum(mean) / static_cast<double>(width);
    double var = 0.0;
    for (int64_t i = threadIdx.x; i < width; i += kNormThreads) {
        const double d = xr[i] - mean;
        var += d * d;
    }
    var = block_sum(var) / static_cast<double>(width);
    const float scale = 1.0f / sqrtf(__fadd_rn(static_cast<float>(var), eps));
    for (int64_t i = threadIdx.x; i < width; i += kNormThreads) {
        float v = __fmul_rn(static_cast<float>(xr[i] - mean), scale);
        if (w) v = __fmul_rn(v, w[i]);
        if (b) v = __fadd_rn(v, b[i]);
        o[i] = v;
    }
}

// The per-call constants of ops/cpu/attention.cpp's rope_cache, computed on the
// host with the same library calls.
struct RopeConsts {
    float theta_scale, low, high, mscale, freq_scale, ext_factor;
    int half;
    bool norm;
};

float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot_beta, float base) {
    return static_cast<float>(n_dims) *
           std::log(static_cast<float>(n_ctx_orig) /
                    (n_rot_beta * 2.0f * static_cast<float>(M_PI))) /
           (2.0f * std::log(base));
}

RopeConsts rope_consts(const RopeParams& p) {
    RopeConsts c{};
    c.theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    if (p.ext_factor != 0.0f) {
        c.low = std::max(0.0f,
                         std::floor(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_fast, p.freq_base)));
        c.high = std::min(static_cast<float>(p.n_rot - 1),
                          std::ceil(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_slow, p.freq_base)));
    }
    c.mscale = p.attn_factor;
    if (p.ext_factor != 0.0f) c.mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
    c.freq_scale = p.freq_scale;
    c.ext_factor = p.ext_factor;
    c.half = p.n_rot / 2;
    c.norm = p.kind == RopeKind::Norm;
    return c;
}

// One thread per (token, head, rotation pair).
__global__ void rope_kernel(float* x, int64_t n_tok, int64_t row_stride, int n_heads,
                            int head_dim, int64_t pos0, RopeConsts c) {
    const int64_t n = n_tok * n_heads * c.half;
    for (int64_t job = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; job < n;
         job += int64_t{gridDim.x} * blockDim.x) {
        const int i = static_cast<int>(job % c.half);
        const int h = static_cast<int>(job / c.half % n_heads);
        const int64_t t = job / c.half / n_heads;
        // The CPU advances the angle pair by pair, so pair i's angle is pos times
        // theta_scale i times, each product rounded.
        float theta_extrap = static_cast<float>(pos0 + t);
        for (int k = 0; k < i; ++k) theta_extrap = __fmul_rn(theta_extrap, c.theta_scale);
        const float theta_interp = __fmul_rn(c.freq_scale, theta_extrap);
        float theta = theta_interp;
        if (c.ext_factor != 0.0f) {
            const float y = __fdiv_rn(__fsub_rn(static_cast<float>(i), c.low),
                                      fmaxf(0.001f, __fsub_rn(c.high, c.low)));
            const float ramp = __fsub_rn(1.0f, fminf(1.0f, fmaxf(0.0f, y)));
            const float mix = __fmul_rn(ramp, c.ext_factor);
            theta = __fadd_rn(__fmul_rn(theta_interp, __fsub_rn(1.0f, mix)),
                              __fmul_rn(theta_extrap, mix));
        }
        const float cs = __fmul_rn(cosf(theta), c.mscale);
        const float sn = __fmul_rn(sinf(theta), c.mscale);
        float* v = x + t * row_stride + int64_t{h} * head_dim;
        const int a = c.norm ? 2 * i : i;
        const int b = c.norm ? 2 * i + 1 : i + c.half;
        const float x0 = v[a], x1 = v[b];
        v[a] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
        v[b] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, cs));
    }
}

}  // namespace

void rms_norm(const float* x, int64_t n_rows, int64_t width, const float* w, const float* b,
              float eps, float* out, cudaStream_t s) {
    rms_norm_kernel<<<static_cast<unsigned>(n_rows), kNormThreads, 0, s>>>(x, width, w, b, eps,
                                                                           out);
    check_launch("rms_norm");
}

void layer_norm(const float* x, int64_t n_rows, int64_t width, const float* w, const float* b,
                float eps, float* out, cudaStream_t s) {
    layer_norm_kernel<<<static_cast<unsigned>(n_rows), kNormThreads, 0, s>>>(x, width, w, b, eps,
                                                                             out);
    check_launch("layer_norm");
}

void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim, int64_t pos0,
          const RopeParams& p, cudaStream_t s) {
    const RopeConsts c = rope_consts(p);
    const int64_t n = n_tok * n_heads * c.half;
    constexpr int kThreads = 256;
    const auto grid = static_cast<unsigned>(std::min<int64_t>(blocks_for(n, kThreads), 65536));
    rope_kernel<<<grid, kThreads, 0, s>>>(x, n_tok, row_stride, n_heads, head_dim, pos0, c);
    check_launch("rope");
}

}  // namespace strata::ops::cuda
