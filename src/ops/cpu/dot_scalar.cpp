// The scalar reference dot products, one per weight type, and the activation
// pairing. Per block, codes are multiplied with activation codes in integers
// (exact), then scaled once by both blocks' scales in float, in the order the
// reference's generic kernels use, so that a SIMD variant which sums the same
// integers differs only by float summation order.

#include "ops/cpu/dot.h"

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/quants.h"
#include "tensor/repack.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace strata::ops {

namespace {

template <typename B>
const B* blocks(const void* p) {
    return static_cast<const B*>(p);
}

float dot_f32(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) sum += x[i] * y[i];
    return sum;
}

float dot_f16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const float*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(x[i]) * y[i];
    return sum;
}

float dot_bf16(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const float*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n; ++i) sum += bf16_to_fp32(x[i]) * y[i];
    return sum;
}

// The 32-element formats: `code(block, j)` is element j's signed integer value
// before the block scale.
template <typename B, typename CodeFn>
float dot_q8_0_acts(int64_t n, const void* w, const void* a, float (*scale)(const B&), CodeFn code) {
    const auto* x = blocks<B>(w);
    const auto* y = blocks<BlockQ8_0>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; ++i) {
        int sumi = 0;
        for (int j = 0; j < 32; ++j) sumi += code(x[i], j) * y[i].qs[j];
        sum += static_cast<float>(sumi) * (scale(x[i]) * fp16_to_fp32(y[i].d));
    }
    return sum;
}

template <typename B>
float half_scale(const B& b) {
    return fp16_to_fp32(b.d);
}

int nibble(const uint8_t* qs, int j) { return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4; }

int q5_high_bit(const uint8_t* qh, int j) {
    uint32_t bits;
    std::memcpy(&bits, qh, 4);
    return static_cast<int>((bits >> j) & 1) << 4;
}

float dot_q4_0(int64_t n, const void* w, const void* a) {
    return dot_q8_0_acts<BlockQ4_0>(n, w, a, half_scale<BlockQ4_0>,
                                    [](const BlockQ4_0& b, int j) { return nibble(b.qs, j) - 8; });
}

float dot_q5_0(int64_t n, const void* w, const void* a) {
    return dot_q8_0_acts<BlockQ5_0>(n, w, a, half_scale<BlockQ5_0>, [](const BlockQ5_0& b, int j) {
        return (nibble(b.qs, j) | q5_high_bit(b.qh, j)) - 16;
    });
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
    return dot_q8_0_acts<BlockQ8_0>(n, w, a, half_scale<BlockQ8_0>, [](const BlockQ8_0& b, int j) { return int{b.qs[j]}; });
}

float dot_iq4_nl(int64_t n, const void* w, const void* a) {
    return dot_q8_0_acts<BlockIQ4_NL>(n, w, a, half_scale<BlockIQ4_NL>,
                                      [](const BlockIQ4_NL& b, int j) { return int{kvalues_iq4nl[nibble(b.qs, j)]}; });
}

float dot_mxfp4(int64_t n, const void* w, const void* a) {
    return dot_q8_0_acts<BlockMXFP4>(
        n, w, a, [](const BlockMXFP4& b) { return e8m0_to_fp32_half(b.e); },
        [](const BlockMXFP4& b, int j) { return int{kvalues_mxfp4[nibble(b.qs, j)]}; });
}

// strata's layouts (tensor/repack.h), as the GGML blocks they hold.
template <TensorType Layout, typename B, DotFn Dot>
float dot_unpacked(int64_t n, const void* w, const void* a) {
    std::vector<B> row(static_cast<size_t>(n / B::block_size));
    unpack_row(Layout, w, row.data(), n);
    return Dot(n, row.data(), a);
}

// Q4_1 and Q5_1: value = d * q + m, so the dot is d * da * sum(q * qa) + m * sa,
// where sa = da * sum(qa) comes with the Q8_1 block.
template <typename B, typename CodeFn>
float dot_q8_1_acts(int64_t n, const void* w, const void* a, CodeFn code) {
    const auto* x = blocks<B>(w);
    const auto* y = blocks<BlockQ8_1>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / 32; ++i) {
        int sumi = 0;
        for (int j = 0; j < 32; ++j) sumi += code(x[i], j) * y[i].qs[j];
        sum += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * static_cast<float>(sumi) +
               fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    return sum;
}

float dot_q4_1(int64_t n, const void* w, const void* a) {
    return dot_q8_1_acts<BlockQ4_1>(n, w, a, [](const BlockQ4_1& b, int j) { return nibble(b.qs, j); });
}

float dot_q5_1(int64_t n, const void* w, const void* a) {
    return dot_q8_1_acts<BlockQ5_1>(n, w, a,
                                    [](const BlockQ5_1& b, int j) { return nibble(b.qs, j) | q5_high_bit(b.qh, j); });
}

// Element e of a 256-element super-block packed as 2-bit fields (Q2_K, Q3_K,
// Q6_K's high bits): bits 2k..2k+1 of byte 32 c + l for e = 128 c + 32 k + l.
int crumb(const uint8_t* q, int e) { return (q[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

// Element e of a super-block packed as nibbles across 64-element quarters (Q4_K, Q5_K).
int k_nibble(const uint8_t* q, int e) { return (q[32 * (e / 64) + e % 32] >> (4 * ((e % 64) / 32))) & 0xF; }

float dot_q2_k(int64_t n, const void* w, const void* a) {
    const auto* x = blocks<BlockQ2_K>(w);
    const auto* y = blocks<BlockQ8_K>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk_k; ++i) {
        int isum = 0, summs = 0;
        for (int sb = 0; sb < 16; ++sb) {
            int s = 0;
            for (int t = 0; t < 16; ++t) s += crumb(x[i].qs, 16 * sb + t) * y[i].qs[16 * sb + t];
            isum += (x[i].scales[sb] & 0xF) * s;
            summs += (x[i].scales[sb] >> 4) * y[i].bsums[sb];
        }
        sum += y[i].d * fp16_to_fp32(x[i].d) * static_cast<float>(isum) -
               y[i].d * fp16_to_fp32(x[i].dmin) * static_cast<float>(summs);
    }
    return sum;
}

float dot_q3_k(int64_t n, const void* w, const void* a) {
    const auto* x = blocks<BlockQ3_K>(w);
    const auto* y = blocks<BlockQ8_K>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk_k; ++i) {
        int isum = 0;
        for (int sb = 0; sb < 16; ++sb) {
            int s = 0;
            for (int t = 0; t < 16; ++t) {
                const int e = 16 * sb + t;
                const bool high = x[i].hmask[e % 32] & (1 << (e / 32));
                s += (crumb(x[i].qs, e) - (high ? 0 : 4)) * y[i].qs[e];
            }
            isum += (q3_k_scale(x[i].scales, sb) - 32) * s;
        }
        sum += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    return sum;
}

// Q4_K and Q5_K: value = d * scale * q - dmin * min per 32-element sub-block; the
// minimum's part is dmin * da * sum(min * activation codes), from the 16-sums.
template <typename B, typename CodeFn>
float dot_k4_family(int64_t n, const void* w, const void* a, CodeFn code) {
    const auto* x = blocks<B>(w);
    const auto* y = blocks<BlockQ8_K>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk_k; ++i) {
        int isum = 0, summs = 0;
        for (int sb = 0; sb < 8; ++sb) {
            const ScaleMin sm = scale_min_k4(sb, x[i].scales);
            int s = 0;
            for (int l = 0; l < 32; ++l) s += code(x[i], 32 * sb + l) * y[i].qs[32 * sb + l];
            isum += sm.scale * s;
            summs += sm.min * (y[i].bsums[2 * sb] + y[i].bsums[2 * sb + 1]);
        }
        sum += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum) -
               fp16_to_fp32(x[i].dmin) * y[i].d * static_cast<float>(summs);
    }
    return sum;
}

float dot_q4_k(int64_t n, const void* w, const void* a) {
    return dot_k4_family<BlockQ4_K>(n, w, a, [](const BlockQ4_K& b, int e) { return k_nibble(b.qs, e); });
}

float dot_q5_k(int64_t n, const void* w, const void* a) {
    return dot_k4_family<BlockQ5_K>(n, w, a, [](const BlockQ5_K& b, int e) {
        return k_nibble(b.qs, e) | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
    });
}

float dot_q6_k(int64_t n, const void* w, const void* a) {
    const auto* x = blocks<BlockQ6_K>(w);
    const auto* y = blocks<BlockQ8_K>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk_k; ++i) {
        int isum = 0;
        for (int g = 0; g < 16; ++g) {
            int s = 0;
            for (int t = 0; t < 16; ++t) {
                const int e = 16 * g + t;
                const int c = e / 128, k = (e % 128) / 32, l = e % 32;
                const int low = (x[i].ql[64 * c + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
                const int q = (low | (crumb(x[i].qh, e) << 4)) - 32;
                s += q * y[i].qs[e];
            }
            isum += x[i].scales[g] * s;
        }
        sum += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    return sum;
}

float dot_iq4_xs(int64_t n, const void* w, const void* a) {
    const auto* x = blocks<BlockIQ4_XS>(w);
    const auto* y = blocks<BlockQ8_K>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / qk_k; ++i) {
        int isum = 0;
        for (int sb = 0; sb < 8; ++sb) {
            int s = 0;
            for (int j = 0; j < 32; ++j) s += kvalues_iq4nl[nibble(x[i].qs + 16 * sb, j)] * y[i].qs[32 * sb + j];
            isum += (iq4_xs_scale(x[i], sb) - 32) * s;
        }
        sum += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    return sum;
}

// A KV cache element as a float.
float to_float(float x) { return x; }
float to_float(uint16_t x) { return fp16_to_fp32(x); }

template <DotFn Dot, class T>
void scores(int64_t d, const void* k, int64_t stride, int64_t n, const float* q, int64_t q_stride,
            int g, float* s) {
    for (int i = 0; i < g; ++i) {
        for (int64_t j = 0; j < n; ++j) {
            s[i * n + j] = Dot(d, static_cast<const T*>(k) + j * stride, q + i * q_stride);
        }
    }
}

template <class T>
void weighted_sum(int64_t d, const void* v, int64_t stride, int64_t n, const float* w, int g,
                  float* o, int64_t o_stride) {
    for (int64_t j = 0; j < n; ++j) {
        const T* row = static_cast<const T*>(v) + j * stride;
        for (int i = 0; i < g; ++i) {
            float* out = o + i * o_stride;
            const float wj = w[i * n + j];
            for (int64_t e = 0; e < d; ++e) out[e] += wj * to_float(row[e]);
        }
    }
}

void exp_shifted(int64_t n, const float* x, float shift, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - shift);
}

DotKernels make_scalar() {
    DotKernels k;
    k.exp = exp_shifted;
    k.quantize_q8_0 = quantize_row_q8_0;
    k.quantize_q8_k = quantize_row_q8_k;
    k.scores[static_cast<size_t>(TensorType::F32)] = scores<dot_f32, float>;
    k.scores[static_cast<size_t>(TensorType::F16)] = scores<dot_f16, uint16_t>;
    k.weighted_sum[static_cast<size_t>(TensorType::F32)] = weighted_sum<float>;
    k.weighted_sum[static_cast<size_t>(TensorType::F16)] = weighted_sum<uint16_t>;
    auto set = [&](TensorType t, DotFn f) { k.dot[static_cast<size_t>(t)] = f; };
    set(TensorType::F32, dot_f32);
    set(TensorType::F16, dot_f16);
    set(TensorType::BF16, dot_bf16);
    set(TensorType::Q4_0, dot_q4_0);
    set(TensorType::Q4_1, dot_q4_1);
    set(TensorType::Q5_0, dot_q5_0);
    set(TensorType::Q5_1, dot_q5_1);
    set(TensorType::Q8_0, dot_q8_0);
    set(TensorType::Q2_K, dot_q2_k);
    set(TensorType::Q3_K, dot_q3_k);
    set(TensorType::Q4_K, dot_q4_k);
    set(TensorType::Q5_K, dot_q5_k);
    set(TensorType::Q6_K, dot_q6_k);
    set(TensorType::IQ4_NL, dot_iq4_nl);
    set(TensorType::IQ4_XS, dot_iq4_xs);
    set(TensorType::MXFP4, dot_mxfp4);
    set(TensorType::Q4_0_R8, dot_unpacked<TensorType::Q4_0_R8, BlockQ4_0, dot_q4_0>);
    set(TensorType::Q5_0_R8, dot_unpacked<TensorType::Q5_0_R8, BlockQ5_0, dot_q5_0>);
    set(TensorType::Q8_0_R8, dot_unpacked<TensorType::Q8_0_R8, BlockQ8_0, dot_q8_0>);
    set(TensorType::IQ4_NL_R8, dot_unpacked<TensorType::IQ4_NL_R8, BlockIQ4_NL, dot_iq4_nl>);
    set(TensorType::MXFP4_X4, dot_unpacked<TensorType::MXFP4_X4, BlockMXFP4, dot_mxfp4>);
    set(TensorType::Q4_K_64, dot_unpacked<TensorType::Q4_K_64, BlockQ4_K, dot_q4_k>);
    set(TensorType::Q5_K_64, dot_unpacked<TensorType::Q5_K_64, BlockQ5_K, dot_q5_k>);
    set(TensorType::Q6_K_64, dot_unpacked<TensorType::Q6_K_64, BlockQ6_K, dot_q6_k>);
    set(TensorType::Q2_K_64, dot_unpacked<TensorType::Q2_K_64, BlockQ2_K, dot_q2_k>);
    set(TensorType::Q3_K_64, dot_unpacked<TensorType::Q3_K_64, BlockQ3_K, dot_q3_k>);
    set(TensorType::IQ4_XS_64, dot_unpacked<TensorType::IQ4_XS_64, BlockIQ4_XS, dot_iq4_xs>);
    return k;
}

}  // namespace

const DotKernels& scalar_dot_kernels() {
    static const DotKernels k = make_scalar();
    return k;
}

}  // namespace strata::ops
