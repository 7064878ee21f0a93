// Attention over one layer's KV cache (F16 or F32), one thread block per (token,
// query head), as ops/cpu/attention.cpp computes it: the query head reads KV head
// h / (n_head / n_head_kv) (GQA), positions [first, pos] where first is 0 or, with
// a sliding window, pos - window + 1; an online softmax keeps the running max,
// sum (in double, as on the CPU) and output; a sink adds one logit to the max and
// the sum that has no value.
//
// Each of the kWarps warps runs the CPU's online softmax over every kWarps-th
// position (score: lanes split the head's dimensions, a shuffle tree adds them),
// then the warps' states are merged: m = max of the warps' maxima, each warp's sum
// and output scaled by exp(m_w - m). That is the CPU's result up to the order of
// the additions (and expf within 2 ulp of the host's).
#include "ops/cuda/common.cuh"
#include "ops/cuda/kernels.h"

#include <cmath>
#include <stdexcept>

namespace strata::ops::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kPerLane = kMaxHeadDimV / kWarp;  // output dims each lane accumulates

struct AttnArgs {
    const float* q;
    float* out;
    const uint8_t* k;
    const uint8_t* v;
    bool f16;
    int64_t k_width, v_width;
    int n_head, group, dk, dv;
    float scale;
    int64_t window, pos0;
    const float* sinks;
};

__device__ __forceinline__ float load(const uint8_t* base, bool f16, int64_t i) {
    return f16 ? fp16_to_fp32(reinterpret_cast<const uint16_t*>(base)[i])
               : reinterpret_cast<const float*>(base)[i];
}

// Shared memory: the query head (dk floats), then each warp's output (dv floats),
// maxima and sums.
__global__ void attention_kernel(AttnArgs a) {
    extern __shared__ float smem[];
    float* qs = smem;
    float* outs = qs + a.dk;
    __shared__ float maxes[kWarps];
    __shared__ double sums[kWarps];

    const int64_t t = blockIdx.x / a.n_head;
    const int h = static_cast<int>(blockIdx.x % a.n_head);
    const int kv_head = h / a.group;
    const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
    const int64_t pos = a.pos0 + t;
    const int64_t first = a.window > 0 ? max(int64_t{0}, pos - a.window + 1) : 0;

    const float* qh = a.q + t * int64_t{a.n_head} * a.dk + int64_t{h} * a.dk;
    for (int i = threadIdx.x; i < a.dk; i += blockDim.x) qs[i] = qh[i];
    __syncthreads();

    float acc[kPerLane];
    for (int k = 0; k < kPerLane; ++k) acc[k] = 0.0f;
    float m = -INFINITY;
    double sum = 0.0;
    for (int64_t j = first + warp; j <= pos; j += kWarps) {
        const int64_t k0 = j * a.k_width + int64_t{kv_head} * a.dk;
        float partial = 0.0f;
        for (int i = lane; i < a.dk; i += kWarp) partial += load(a.k, a.f16, k0 + i) * qs[i];
        const float s = __fmul_rn(warp_sum(partial), a.scale);  // the same in every lane
        if (s > m) {
            const float correction = expf(m - s);
            for (int k = 0; k < kPerLane; ++k) acc[k] *= correction;
            sum *= correction;
            m = s;
        }
        const float w = expf(s - m);
        sum += w;
        const int64_t v0 = j * a.v_width + int64_t{kv_head} * a.dv;
        for (int k = 0; k < kPerLane; ++k) {
            const int d = lane + k * kWarp;
            if (d < a.dv) acc[k] += w * load(a.v, a.f16, v0 + d);
        }
    }
    for (int k = 0; k < kPerLane; ++k) {
        const int d = lane + k * kWarp;
        if (d < a.dv) outs[warp * a.dv + d] = acc[k];
    }
    if (lane == 0) {
        maxes[warp] = m;
        sums[warp] = sum;
    }
    __syncthreads();

    // Merge: every thread computes the same totals (same order), then writes its
    // share of the output dims. A warp that saw no position has m = -inf and
    // weight exp(-inf) = 0; at least one warp saw position pos, so mx is finite.
    float mx = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, maxes[w]);
    float f[kWarps];
    double total = 0.0;
    for (int w = 0; w < kWarps; ++w) {
        f[w] = maxes[w] == -INFINITY ? 0.0f : expf(maxes[w] - mx);
        total += sums[w] * f[w];
    }
    float sink_correction = 1.0f;
    if (a.sinks) {
        const float sink = a.sinks[h];
        if (sink > mx) {
            sink_correction = expf(mx - sink);
            total *= sink_correction;
            mx = sink;
        }
        total += exp(double{sink} - mx);
    }
    const float inv = static_cast<float>(1.0 / total);
    float* oh = a.out + t * int64_t{a.n_head} * a.dv + int64_t{h} * a.dv;
    for (int d = threadIdx.x; d < a.dv; d += blockDim.x) {
        float o = 0.0f;
        for (int w = 0; w < kWarps; ++w) o += outs[w * a.dv + d] * f[w];
        oh[d] = o * sink_correction * inv;
    }
}

}  // namespace

void attention(const float* q, int64_t n_tok, int64_t pos0, const KvLayer& kv,
               const AttentionParams& p, float* out, cudaStream_t s) {
    AttnArgs a{};
    a.q = q;
    a.out = out;
    a.k = static_cast<const uint8_t*>(kv.k);
    a.v = static_cast<const uint8_t*>(kv.v);
    a.f16 = kv.f16;
    a.k_width = kv.k_width;
    a.v_width = kv.v_width;
    a.n_head = p.n_head;
    a.group = p.n_head / p.n_head_kv;
    a.dk = p.head_dim_k;
    a.dv = p.head_dim_v;
    a.scale = p.scale;
    a.window = p.window;
    a.pos0 = pos0;
    a.sinks = p.sinks;
    const size_t smem = (static_cast<size_t>(a.dk) + size_t{kWarps} * a.dv) * sizeof(float);
    // The default dynamic shared memory limit; heads this wide do not exist in practice.
    if (smem > 48 * 1024) throw std::invalid_argument("CUDA attention: heads too wide");
    const auto grid = static_cast<unsigned>(n_tok * p.n_head);
    attention_kernel<<<grid, kWarps * kWarp, smem, s>>>(a);
    check_launch("attention");
}

}  // namespace strata::ops::cuda
