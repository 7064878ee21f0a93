// Matrix products of weights in their GGUF block format with float activations.
// As on the CPU (ops/cpu/matmul.cpp), the activations are first quantised into the
// weight type's activation format (Q8_0, Q8_1 or Q8_K; plain floats for the float
// types) with the reference's rounding, then each (row, token) pair is a sum of
// per-block dot products (dequant.cuh). Both halves reproduce the CPU's arithmetic,
// so a result differs from the CPU's only in the order the per-block floats are
// added: one warp per output row, lane l taking blocks l, l + 32, ... and a
// shuffle tree adding the 32 partial sums.
#include "ops/cuda/common.cuh"
#include "ops/cuda/dequant.cuh"
#include "ops/cuda/kernels.h"
// The CPU's choice of activation format per weight type: the GPU quantises
// activations to the same one, so both round alike.
#include "ops/cpu/dot.h"

#include "tensor/blocks.h"

namespace strata::ops::cuda {

namespace {

constexpr int kRowsPerBlock = 4;  // warps (output rows) per thread block
constexpr int kMaxGridY = 65535;  // the grid's y limit; tokens beyond it loop

// Q8_0 / Q8_1: one warp per 32-element block, lane j quantising element j as
// quantize_block_q8 in tensor/quants.cpp does: d = amax / 127, codes
// round(x / d) half away from zero, a non-finite product coded as 0.
template <bool kWithSum>
__global__ void quantize_q8_32(const float* x, int64_t n_blocks, void* out) {
    const int64_t b = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (b >= n_blocks) return;  // b is the same for the whole warp
    const float v = x[b * 32 + lane];
    const float amax = warp_max(fmaxf(0.0f, fabsf(v)));  // a NaN counts as 0, as std::max does
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const float r = roundf(__fmul_rn(v, id));
    const int q = r >= -127.0f && r <= 127.0f ? static_cast<int>(r) : 0;
    if constexpr (kWithSum) {
        auto* blk = static_cast<BlockQ8_1*>(out) + b;
        blk->qs[lane] = static_cast<int8_t>(q);
        const int sum = warp_sum_int(q);
        if (lane == 0) {
            blk->d = fp32_to_fp16(d);
            blk->s = fp32_to_fp16(__fmul_rn(static_cast<float>(sum), d));
        }
    } else {
        auto* blk = static_cast<BlockQ8_0*>(out) + b;
        blk->qs[lane] = static_cast<int8_t>(q);
        if (lane == 0) blk->d = fp32_to_fp16(d);
    }
}

// Q8_K: one warp per 256-element block, lane l taking elements 8l .. 8l + 7. The
// scale comes from the element of largest magnitude, the first one on a tie (as
// the CPU's strictly-greater scan picks), so the sign of the scale agrees too.
__global__ void quantize_q8_k(const float* x, int64_t n_blocks, BlockQ8_K* out) {
    const int64_t b = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (b >= n_blocks) return;
    const float* src = x + b * qk_k + lane * 8;
    float amax = 0.0f, max = 0.0f;
    int idx = qk_k;  // no element yet
    for (int j = 0; j < 8; ++j) {
        if (fabsf(src[j]) > amax) {
            amax = fabsf(src[j]);
            max = src[j];
            idx = lane * 8 + j;
        }
    }
    for (int o = kWarp / 2; o > 0; o /= 2) {
        const float oa = __shfl_xor_sync(0xffffffffu, amax, o);
        const float om = __shfl_xor_sync(0xffffffffu, max, o);
        const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (oa > amax || (oa == amax && oi < idx)) {
            amax = oa;
            max = om;
            idx = oi;
        }
    }
    BlockQ8_K& y = out[b];
    if (amax == 0.0f) {
        for (int j = 0; j < 8; ++j) y.qs[lane * 8 + j] = 0;
        if (lane < 16) y.bsums[lane] = 0;
        if (lane == 0) y.d = 0.0f;
        return;
    }
    const float iscale = -127.0f / max;
    int sum = 0;
    for (int j = 0; j < 8; ++j) {
        // The reference's nearest_int rounds half to even (rintf) and maps a NaN to 0.
        const float p = __fmul_rn(iscale, src[j]);
        const int q = isnan(p) ? 0 : min(127, static_cast<int>(rintf(p)));
        y.qs[lane * 8 + j] = static_cast<int8_t>(q);
        sum += q;
    }
    // Group g of 16 codes is lanes 2g and 2g + 1.
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    if (lane % 2 == 0) y.bsums[lane / 2] = static_cast<int16_t>(sum);
    if (lane == 0) y.d = 1.0f / iscale;
}

// y[t * n_rows + r] = sum over blocks b of Dot::block(w[r][b], a[t][b]). Warp w of
// thread block x takes row x * kRowsPerBlock + w; grid y walks the tokens.
template <typename Dot>
__global__ void matmul_rows(const uint8_t* w, size_t row_bytes, int64_t n_rows, int64_t nb,
                            const uint8_t* acts, size_t act_row_bytes, int64_t n_tok, float* y) {
    const int64_t r = int64_t{blockIdx.x} * kRowsPerBlock + threadIdx.x / kWarp;
    const int lane = threadIdx.x % kWarp;
    if (r >= n_rows) return;  // uniform per warp, so the shuffles below see all lanes
    const auto* wr = reinterpret_cast<const typename Dot::W*>(w + r * row_bytes);
    for (int64_t t = blockIdx.y; t < n_tok; t += gridDim.y) {
        const auto* a = reinterpret_cast<const typename Dot::A*>(acts + t * act_row_bytes);
        float sum = 0.0f;
        for (int64_t b = lane; b < nb; b += kWarp) sum += Dot::block(wr[b], a[b]);
        sum = warp_sum(sum);
        if (lane == 0) y[t * n_rows + r] = sum;
    }
}

template <typename Dot>
void launch(const Matrix& w, const void* acts, size_t act_row_bytes, int64_t n_tok, float* y,
            cudaStream_t s) {
    const int64_t nb = w.n_in / type_traits(w.type).block_size;
    const dim3 grid(blocks_for(w.n_rows, kRowsPerBlock),
                    static_cast<unsigned>(std::min<int64_t>(n_tok, kMaxGridY)));
    matmul_rows<Dot><<<grid, kRowsPerBlock * kWarp, 0, s>>>(
        static_cast<const uint8_t*>(w.data), w.row_bytes, w.n_rows, nb,
        static_cast<const uint8_t*>(acts), act_row_bytes, n_tok, y);
    check_launch("matmul_rows");
}

}  // namespace

bool matmul_supports(TensorType t) {
    switch (t) {
        case TensorType::F32:
        case TensorType::F16:
        case TensorType::BF16:
        case TensorType::Q4_0:
        case TensorType::Q4_1:
        case TensorType::Q5_0:
        case TensorType::Q5_1:
        case TensorType::Q8_0:
        case TensorType::Q2_K:
        case TensorType::Q3_K:
        case TensorType::Q4_K:
        case TensorType::Q5_K:
        case TensorType::Q6_K:
        case TensorType::IQ4_NL:
        case TensorType::IQ4_XS:
        case TensorType::MXFP4:
            return true;
        default:
            return false;
    }
}

size_t matmul_scratch_bytes(TensorType t, int64_t n_in, int64_t n_tok) {
    const TensorType a = dot_act_type(t);
    if (a == TensorType::F32) return 0;
    const TypeTraits& tt = type_traits(a);
    return static_cast<size_t>(n_in / tt.block_size) * tt.type_size * static_cast<size_t>(n_tok);
}

void matmul(const Matrix& w, const float* x, int64_t n_tok, float* y, void* scratch,
            cudaStream_t s) {
    const TensorType a = dot_act_type(w.type);
    const void* acts = x;
    size_t act_row_bytes = static_cast<size_t>(w.n_in) * sizeof(float);
    if (a != TensorType::F32) {
        const TypeTraits& at = type_traits(a);
        const int64_t n_blocks = w.n_in / at.block_size * n_tok;
        constexpr int kThreads = 256;  // 8 warps, one activation block each
        const unsigned grid = blocks_for(n_blocks, kThreads / kWarp);
        if (a == TensorType::Q8_0) {
            quantize_q8_32<false><<<grid, kThreads, 0, s>>>(x, n_blocks, scratch);
        } else if (a == TensorType::Q8_1) {
            quantize_q8_32<true><<<grid, kThreads, 0, s>>>(x, n_blocks, scratch);
        } else {
            quantize_q8_k<<<grid, kThreads, 0, s>>>(x, n_blocks, static_cast<BlockQ8_K*>(scratch));
        }
        check_launch("quantize activations");
        acts = scratch;
        act_row_bytes = static_cast<size_t>(w.n_in / at.block_size) * at.type_size;
    }
    switch (w.type) {
        case TensorType::F32:
            return launch<DotF32>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::F16:
            return launch<DotF16>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::BF16:
            return launch<DotBF16>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q4_0:
            return launch<DotQ4_0>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q4_1:
            return launch<DotQ4_1>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q5_0:
            return launch<DotQ5_0>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q5_1:
            return launch<DotQ5_1>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q8_0:
            return launch<DotQ8_0>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q2_K:
            return launch<DotQ2_K>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q3_K:
            return launch<DotQ3_K>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q4_K:
            return launch<DotQ4_K>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q5_K:
            return launch<DotQ5_K>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::Q6_K:
            return launch<DotQ6_K>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::IQ4_NL:
            return launch<DotIQ4_NL>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::IQ4_XS:
            return launch<DotIQ4_XS>(w, acts, act_row_bytes, n_tok, y, s);
        case TensorType::MXFP4:
            return launch<DotMXFP4>(w, acts, act_row_bytes, n_tok, y, s);
        default:
            throw std::invalid_argument("CUDA matmul: unsupported weight type");
    }
}

}  // namespace strata::ops::cuda
