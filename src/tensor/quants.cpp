// Scalar encoders and decoders for the block formats in blocks.h. These are the
// reference kernels: every faster variant is tested against them, and they are
// written to reproduce the reference implementation (ggml-quants.c) bit for bit.
//
// Bit-exactness rests on doing the same float operations in the same order. In the
// decoders most products are exact anyway (an 11-bit half scale times a 6-bit
// sub-scale times a code of a few bits fits in a float's 24), so what can round is
// the subtraction of a minimum (`dl * q - ml` in Q4_1, Q2_K, Q4_K, ...) and the f32
// scale of Q8_K; those keep the reference's two separate roundings. The encoders are
// more sensitive: their least-squares searches compare sums whose low bits decide
// between candidate scales, so they keep the reference's accumulation order,
// expression shapes, and its `nearest_int`, which rounds halves to even where
// `std::round` (used, like the reference's `roundf`, only by Q8_0) rounds them away
// from zero.
//
// Decoders walk each block in element order and compute where the element's code
// lives, instead of mirroring the reference's pointer-bumping loops; the packing
// rules are spelled out once per format next to its decoder.

#include "tensor/quants.h"

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "util/check.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

// The reference results are those of separately rounded operations: ggml-quants.c is
// built as ISO C, where GCC does not fuse `a * b + c` into one multiply-add. Fusing
// rounds once instead of twice and changes low bits (measured: about 5% of Q4_K
// blocks encode differently), so it is switched off for this file. Clang fuses within
// an expression by default, and GCC in C++ mode across expressions, once the target
// has FMA (-march=native); the baseline x86-64 build has none, but the pragmas keep
// the file exact under either flag set.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace strata {
namespace {

// The number of blocks in `n` elements. Callers guarantee whole blocks (tensor
// shapes were validated against the type table when the file was opened).
template <typename Block>
int64_t block_count(int64_t n) {
    CHECK(n >= 0 && n % Block::block_size == 0, "element count is not a whole number of blocks");
    return n / Block::block_size;
}

// Round to nearest, ties to even, by adding 1.5 * 2^23: the sum's spacing is 1, so the
// FPU's own rounding does the work, and the integer sits in the low mantissa bits. This
// is the reference's `nearest_int`; valid for |x| <= 2^22 - 1, which every caller's
// values satisfy by construction (codes of at most 8 bits times a bounded factor).
int nearest_int(float x) {
    const float shifted = x + 12582912.0f;
    return static_cast<int>(std::bit_cast<uint32_t>(shifted) & 0x007FFFFF) - 0x00400000;
}

// The element of largest magnitude, with its sign: the first of equal ones, 0
// when all are 0 (NaNs are passed over). The symmetric formats pin it to their
// extreme code.
float largest_magnitude(const float* x, int n) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

}  // namespace

// ---------------------------------------------------------------- plain floats

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}

void quantize_row_f32(const float* src, void* dst, int64_t n) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f16(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}

void quantize_row_bf16(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}

// ---------------------------------------------------------------- 32-element blocks
//
// Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL and MXFP4 share one nibble layout: byte `qs[j]`
// holds element j in its low nibble and element j + 16 in its high nibble.

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ4_0*>(src);
    const int64_t nb = block_count<BlockQ4_0>(n);
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            dst[j] = static_cast<float>((x[i].qs[j] & 0xF) - 8) * d;
            dst[j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ4_1*>(src);
    const int64_t nb = block_count<BlockQ4_1>(n);
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const float d = fp16_to_fp32(x[i].d);
        const float m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < 16; ++j) {
            dst[j] = static_cast<float>(x[i].qs[j] & 0xF) * d + m;
            dst[j + 16] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
        }
    }
}

namespace {
// The fifth bits of a Q5_0 / Q5_1 block: bit j of the little-endian u32 in `qh`
// belongs to element j, so it becomes 0 or 16 to add to the nibble.
inline int fifth_bit(uint32_t qh, int j) {
    return static_cast<int>((qh >> j) & 1) << 4;
}
}  // namespace

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ5_0*>(src);
    const int64_t nb = block_count<BlockQ5_0>(n);
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const float d = fp16_to_fp32(x[i].d);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < 16; ++j) {
            const int q0 = ((x[i].qs[j] & 0xF) | fifth_bit(qh, j)) - 16;
            const int q1 = ((x[i].qs[j] >> 4) | fifth_bit(qh, j + 16)) - 16;
            dst[j] = static_cast<float>(q0) * d;
            dst[j + 16] = static_cast<float>(q1) * d;
        }
    }
}

void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ5_1*>(src);
    const int64_t nb = block_count<BlockQ5_1>(n);
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const float d = fp16_to_fp32(x[i].d);
        const float m = fp16_to_fp32(x[i].m);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, sizeof qh);
        for (int j = 0; j < 16; ++j) {
            const int q0 = (x[i].qs[j] & 0xF) | fifth_bit(qh, j);
            const int q1 = (x[i].qs[j] >> 4) | fifth_bit(qh, j + 16);
            dst[j] = static_cast<float>(q0) * d + m;
            dst[j + 16] = static_cast<float>(q1) * d + m;
        }
    }
}

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ8_0*>(src);
    const int64_t nb = block_count<BlockQ8_0>(n);
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

void dequantize_row_iq4_nl(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockIQ4_NL*>(src);
    const int64_t nb = block_count<BlockIQ4_NL>(n);
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            dst[j] = d * static_cast<float>(kvalues_iq4nl[x[i].qs[j] & 0xF]);
            dst[j + 16] = d * static_cast<float>(kvalues_iq4nl[x[i].qs[j] >> 4]);
        }
    }
}

void dequantize_row_mxfp4(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockMXFP4*>(src);
    const int64_t nb = block_count<BlockMXFP4>(n);
    for (int64_t i = 0; i < nb; ++i, dst += 32) {
        // The table holds E2M1 values doubled, and this scale is halved to match, so
        // every product is an integer times a power of two and exact.
        const float d = e8m0_to_fp32_half(x[i].e);
        for (int j = 0; j < 16; ++j) {
            dst[j] = static_cast<float>(kvalues_mxfp4[x[i].qs[j] & 0xF]) * d;
            dst[j + 16] = static_cast<float>(kvalues_mxfp4[x[i].qs[j] >> 4]) * d;
        }
    }
}

// Symmetric 4-bit: the element of largest magnitude, with its sign, becomes code 0
// (value -8 d), so the other 15 codes cover [-8 d, 7 d] on the side that needs the
// extra level. Truncating `x / d + 8.5` rounds to nearest (halves up) because the sum
// is never negative.
void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ4_0*>(dst);
    const int64_t nb = block_count<BlockQ4_0>(n);
    for (int64_t i = 0; i < nb; ++i, src += 32) {
        const float max = largest_magnitude(src, 32);
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < 16; ++j) {
            const int q0 = std::min(15, static_cast<int>(src[j] * id + 8.5f));
            const int q1 = std::min(15, static_cast<int>(src[j + 16] * id + 8.5f));
            y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

namespace {
// A block's smallest and largest element (the reference's loop, starting from
// +-FLT_MAX, so NaNs are skipped).
std::pair<float, float> min_max(const float* x, int n) {
    float min = std::numeric_limits<float>::max();
    float max = -std::numeric_limits<float>::max();
    for (int j = 0; j < n; ++j) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    return {min, max};
}

// Codes of 4 or 5 bits as their low nibbles (element j low, j + 16 high) and the
// fifth bits as bit j of the little-endian `qh`.
void pack_5bit_codes(const int* q, uint8_t* qs, uint8_t* qh) {
    uint32_t h = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
        h |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
        h |= static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
    }
    std::memcpy(qh, &h, 4);
}

// The reference's `(uint8_t)(v + 0.5f)` (or its int8_t cast), for v >= 0: rounds
// halves up. Outside the code range (only from NaN or infinite input) it gives 0,
// where the reference's conversion is undefined.
int round_up_code(float v, int max) {
    return v >= 0.0f && v < static_cast<float>(max) + 1.0f ? static_cast<int>(v) : 0;
}
}  // namespace

// Asymmetric 4-bit: the block's range in 15 steps from its minimum, which is stored
// as is.
void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ4_1*>(dst);
    const int64_t nb = block_count<BlockQ4_1>(n);
    for (int64_t i = 0; i < nb; ++i, src += 32) {
        const auto [min, max] = min_max(src, 32);
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        for (int j = 0; j < 16; ++j) {
            const int q0 = std::min(15, round_up_code((src[j] - min) * id + 0.5f, 127));
            const int q1 = std::min(15, round_up_code((src[j + 16] - min) * id + 0.5f, 127));
            y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

// Symmetric 5-bit, as Q4_0 with 16 levels on each side.
void quantize_row_q5_0(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ5_0*>(dst);
    const int64_t nb = block_count<BlockQ5_0>(n);
    for (int64_t i = 0; i < nb; ++i, src += 32) {
        const float max = largest_magnitude(src, 32);
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        int q[32];
        for (int j = 0; j < 32; ++j) q[j] = std::min(31, round_up_code(src[j] * id + 16.5f, 127));
        pack_5bit_codes(q, y[i].qs, y[i].qh);
    }
}

// Asymmetric 5-bit, as Q4_1 in 31 steps.
void quantize_row_q5_1(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ5_1*>(dst);
    const int64_t nb = block_count<BlockQ5_1>(n);
    for (int64_t i = 0; i < nb; ++i, src += 32) {
        const auto [min, max] = min_max(src, 32);
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        int q[32];
        for (int j = 0; j < 32; ++j) q[j] = round_up_code((src[j] - min) * id + 0.5f, 255);
        pack_5bit_codes(q, y[i].qs, y[i].qh);
    }
}

namespace {
// One block of 32 symmetric 8-bit codes: the largest magnitude maps to +-127 and
// codes round half away from zero (`std::round`, as the reference's `roundf`).
// Returns the scale.
float quantize_block_q8(const float* src, int8_t* qs) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) {
        // Finite inputs already land in [-127, 127]; the clamp only gives a NaN or
        // infinite activation a defined code instead of an out-of-range conversion.
        const float v = std::round(src[j] * id);
        qs[j] = static_cast<int8_t>(v >= -127.0f && v <= 127.0f ? v : 0.0f);
    }
    return d;
}
}  // namespace

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ8_0*>(dst);
    const int64_t nb = block_count<BlockQ8_0>(n);
    for (int64_t i = 0; i < nb; ++i, src += 32) y[i].d = fp32_to_fp16(quantize_block_q8(src, y[i].qs));
}

// Q8_0 plus `s = d * sum(codes)`, the activation format of the Q4_1 and Q5_1 dot
// products (their minimum multiplies the sum of the activations).
void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ8_1*>(dst);
    const int64_t nb = block_count<BlockQ8_1>(n);
    for (int64_t i = 0; i < nb; ++i, src += 32) {
        const float d = quantize_block_q8(src, y[i].qs);
        int sum = 0;
        for (int8_t q : y[i].qs) sum += q;
        y[i].d = fp32_to_fp16(d);
        y[i].s = fp32_to_fp16(static_cast<float>(sum) * d);
    }
}

// The K-quants' activation format: an f32 scale per 256 elements, chosen so the
// element of largest magnitude maps to -127 exactly (the reference divides by the
// signed maximum), and the sums of each 16 codes, which the K-quant dot products
// multiply by their per-sub-block minimums.
void quantize_row_q8_k(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ8_K*>(dst);
    const int64_t nb = block_count<BlockQ8_K>(n);
    for (int64_t i = 0; i < nb; ++i, src += qk_k) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < qk_k; ++j) {
            if (std::fabs(src[j]) > amax) {
                amax = std::fabs(src[j]);
                max = src[j];
            }
        }
        if (amax == 0.0f) {
            std::memset(&y[i], 0, sizeof(BlockQ8_K));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < qk_k; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * src[j])));
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += y[i].qs[16 * g + j];
            y[i].bsums[g] = static_cast<int16_t>(sum);
        }
        y[i].d = 1.0f / iscale;
    }
}

namespace {
// The code whose value `kvalues_mxfp4[i] * d` is nearest `x`; on a tie the lower
// index wins, so zero is always code 0, never the negative zero at code 8.
int best_index_mxfp4(float x, float d) {
    int best = 0;
    float best_err = std::fabs(static_cast<float>(kvalues_mxfp4[0]) * d - x);
    for (int i = 1; i < 16; ++i) {
        const float err = std::fabs(static_cast<float>(kvalues_mxfp4[i]) * d - x);
        if (err < best_err) {
            best = i;
            best_err = err;
        }
    }
    return best;
}
}  // namespace

// The shared exponent puts the block's largest magnitude in [4, 8) times the scale,
// so it lands on E2M1's top values 4 or 6 (the largest, 6, saturates values up to 8).
// `floor(log2f(amax))` rather than an exact exponent read from the bits keeps the
// reference's choice for magnitudes a hair below a power of two, where `log2f`
// rounds up to the integer.
void quantize_row_mxfp4(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockMXFP4*>(dst);
    const int64_t nb = block_count<BlockMXFP4>(n);
    for (int64_t i = 0; i < nb; ++i, src += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(src[j]));
        uint8_t e = 0;
        if (amax > 0.0f) {
            // The clamp only matters outside the format's range (below 2^-125 or
            // infinite), where the reference's conversion to uint8_t is undefined.
            const float biased = std::floor(std::log2(amax)) - 2 + 127;
            e = static_cast<uint8_t>(std::clamp(biased, 0.0f, 255.0f));
        }
        const float d = e8m0_to_fp32_half(e);
        y[i].e = e;
        for (int j = 0; j < 16; ++j) {
            const int q0 = best_index_mxfp4(src[j], d);
            const int q1 = best_index_mxfp4(src[j + 16], d);
            y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

// ---------------------------------------------------------------- K-quants (256 elements)
//
// Q2_K, Q3_K and Q6_K pack 2-bit fields four to a byte across 128-element halves:
// element 128 c + 32 k + l (k = 0..3, l = 0..31) takes bits 2k..2k+1 of byte 32 c + l.
// Q4_K and Q5_K pack nibbles across 64-element quarters: element 64 c + l takes the
// low nibble of qs[32 c + l], element 64 c + 32 + l its high nibble.

void dequantize_row_q2_k(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ2_K*>(src);
    const int64_t nb = block_count<BlockQ2_K>(n);
    for (int64_t i = 0; i < nb; ++i, dst += qk_k) {
        const float d = fp16_to_fp32(x[i].d);
        const float dmin = fp16_to_fp32(x[i].dmin);
        for (int sb = 0; sb < 16; ++sb) {  // sub-blocks of 16
            const uint8_t sc = x[i].scales[sb];
            const float dl = d * static_cast<float>(sc & 0xF);
            const float ml = dmin * static_cast<float>(sc >> 4);
            for (int t = 0; t < 16; ++t) {
                const int e = 16 * sb + t;
                const int c = e / 128, k = (e % 128) / 32, l = e % 32;
                const int q = (x[i].qs[32 * c + l] >> (2 * k)) & 3;
                dst[e] = dl * static_cast<float>(q) - ml;
            }
        }
    }
}


void dequantize_row_q3_k(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ3_K*>(src);
    const int64_t nb = block_count<BlockQ3_K>(n);
    for (int64_t i = 0; i < nb; ++i, dst += qk_k) {
        const float d = fp16_to_fp32(x[i].d);
        for (int sb = 0; sb < 16; ++sb) {
            const float dl = d * static_cast<float>(q3_k_scale(x[i].scales, sb) - 32);
            for (int t = 0; t < 16; ++t) {
                const int e = 16 * sb + t;
                const int c = e / 128, k = (e % 128) / 32, l = e % 32;
                const int low = (x[i].qs[32 * c + l] >> (2 * k)) & 3;
                // The stored high bit is set for codes >= 4, so a clear bit means the
                // code is `low - 4`: the codes are signed, -4..3.
                const bool high = x[i].hmask[l] & (1 << (4 * c + k));
                dst[e] = dl * static_cast<float>(low - (high ? 0 : 4));
            }
        }
    }
}

void dequantize_row_q4_k(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ4_K*>(src);
    const int64_t nb = block_count<BlockQ4_K>(n);
    for (int64_t i = 0; i < nb; ++i, dst += qk_k) {
        const float d = fp16_to_fp32(x[i].d);
        const float dmin = fp16_to_fp32(x[i].dmin);
        for (int sb = 0; sb < 8; ++sb) {  // sub-blocks of 32
            const ScaleMin sm = scale_min_k4(sb, x[i].scales);
            const float dl = d * static_cast<float>(sm.scale);
            const float ml = dmin * static_cast<float>(sm.min);
            const uint8_t* q = x[i].qs + 32 * (sb / 2);
            const int shift = 4 * (sb % 2);
            for (int l = 0; l < 32; ++l) {
                dst[32 * sb + l] = dl * static_cast<float>((q[l] >> shift) & 0xF) - ml;
            }
        }
    }
}

void dequantize_row_q5_k(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ5_K*>(src);
    const int64_t nb = block_count<BlockQ5_K>(n);
    for (int64_t i = 0; i < nb; ++i, dst += qk_k) {
        const float d = fp16_to_fp32(x[i].d);
        const float dmin = fp16_to_fp32(x[i].dmin);
        for (int sb = 0; sb < 8; ++sb) {
            const ScaleMin sm = scale_min_k4(sb, x[i].scales);
            const float dl = d * static_cast<float>(sm.scale);
            const float ml = dmin * static_cast<float>(sm.min);
            const uint8_t* q = x[i].qs + 32 * (sb / 2);
            const int shift = 4 * (sb % 2);
            for (int l = 0; l < 32; ++l) {
                // Sub-block sb's fifth bits are bit sb of qh[l].
                const int code = ((q[l] >> shift) & 0xF) | (((x[i].qh[l] >> sb) & 1) << 4);
                dst[32 * sb + l] = dl * static_cast<float>(code) - ml;
            }
        }
    }
}

void dequantize_row_q6_k(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ6_K*>(src);
    const int64_t nb = block_count<BlockQ6_K>(n);
    for (int64_t i = 0; i < nb; ++i, dst += qk_k) {
        const float d = fp16_to_fp32(x[i].d);
        for (int e = 0; e < qk_k; ++e) {
            // In each 128-element half c, the four 32-element quarters k take: the low
            // or high nibble (k / 2) of ql[64 c + 32 (k % 2) + l], and bits 2k..2k+1 of
            // qh[32 c + l] as the top two bits. Codes are offset by 32.
            const int c = e / 128, k = (e % 128) / 32, l = e % 32;
            const int low = (x[i].ql[64 * c + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
            const int high = (x[i].qh[32 * c + l] >> (2 * k)) & 3;
            const int q = (low | (high << 4)) - 32;
            dst[e] = d * static_cast<float>(x[i].scales[e / 16]) * static_cast<float>(q);
        }
    }
}

void dequantize_row_q8_k(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockQ8_K*>(src);
    const int64_t nb = block_count<BlockQ8_K>(n);
    for (int64_t i = 0; i < nb; ++i, dst += qk_k) {
        for (int j = 0; j < qk_k; ++j) dst[j] = x[i].d * static_cast<float>(x[i].qs[j]);
    }
}

void dequantize_row_iq4_xs(const void* src, float* dst, int64_t n) {
    const auto* x = static_cast<const BlockIQ4_XS*>(src);
    const int64_t nb = block_count<BlockIQ4_XS>(n);
    for (int64_t i = 0; i < nb; ++i, dst += qk_k) {
        const float d = fp16_to_fp32(x[i].d);
        for (int sb = 0; sb < 8; ++sb) {
            const float dl = d * static_cast<float>(iq4_xs_scale(x[i], sb) - 32);
            const uint8_t* q = x[i].qs + 16 * sb;
            float* y = dst + 32 * sb;
            for (int j = 0; j < 16; ++j) {
                y[j] = dl * static_cast<float>(kvalues_iq4nl[q[j] & 0xF]);
                y[j + 16] = dl * static_cast<float>(kvalues_iq4nl[q[j] >> 4]);
            }
        }
    }
}

namespace {

// Fits `x[i] ~ scale * L[i] - the_min` with codes L in 0..nmax, minimising the
// `weights`-weighted squared error; returns the scale and stores the (non-negative)
// minimum. The reference's make_qkx2_quants: start from the range (min clamped to <= 0,
// so zero stays representable), then try `nstep + 1` stretched or squeezed scales,
// each followed by a closed-form least-squares fit of scale and min to the codes it
// gives, and keep the best. The error is squared, or absolute where `use_mad`
// (Q2_K's choice). `Laux` is scratch of n codes.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad = false) {
    // The reference's `diff = use_mad ? fabsf(diff) : diff * diff`.
    auto error = [use_mad](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        min = std::min(min, x[i]);
        max = std::max(max, x[i]);
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        std::fill(L, L + n, uint8_t{0});
        *the_min = -min;
        return 0.0f;
    }
    float iscale = static_cast<float>(nmax) / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        L[i] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
        const float diff = scale * static_cast<float>(L[i]) + min - x[i];
        best_error += weights[i] * error(diff);
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            sum_l += w * static_cast<float>(l);
            sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
            sum_xl += w * static_cast<float>(l) * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if (this_min > 0) {
                // A positive offset is not representable (the format subtracts a
                // non-negative minimum), so refit the scale alone with min = 0.
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                const float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
                cur_error += weights[i] * error(diff);
            }
            if (cur_error < best_error) {
                std::copy(Laux, Laux + n, L);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// Fits `x[i] ~ scale * (L[i] - nmax)` with L in 0..2 nmax - 1, the element of largest
// magnitude pinned to -nmax (the side with the extra level); returns the scale. The
// reference's make_qx_quants with rmse_type 1 and no importance weights: squared-value
// weights, then 18 nearby scales tried, keeping the one with the best least-squares fit.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
    const float max = largest_magnitude(x, n);
    const float amax = std::fabs(max);
    // The reference's GROUP_MAX_EPS: a group this small is taken as all zero.
    if (amax < 1e-15f) {
        std::fill(L, L + n, int8_t{0});
        return 0.0f;
    }
    auto code = [nmax](float v) { return std::clamp(nearest_int(v), -nmax, nmax - 1); };
    float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = code(iscale * x[i]);
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = code(iscale * x[i]);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * static_cast<float>(l);
            suml2 += w * static_cast<float>(l) * static_cast<float>(l);
        }
        // sumlx^2 / suml2 is the error reduction of the least-squares scale; compare
        // it cross-multiplied so no division is needed.
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(code(iscale * x[i]) + nmax);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Fits `x[i] ~ scale * (L[i] - nmax)` with L in 0..2 nmax - 1, as `make_qx_quants`
// starts (the largest magnitude pinned to -nmax), then moves single codes while that
// improves the squared-value-weighted least-squares fit, for up to five passes. The
// reference's make_q3_quants with do_rmse.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
    const float max = largest_magnitude(x, n);
    const float amax = std::fabs(max);
    if (amax < 1e-15f) {  // GROUP_MAX_EPS, as in make_qx_quants
        std::fill(L, L + n, int8_t{0});
        return 0.0f;
    }
    const float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0;
    float suml2 = 0;
    for (int i = 0; i < n; ++i) {
        const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            const auto li = static_cast<float>(L[i]);
            float slx = sumlx - w * x[i] * li;
            if (slx <= 0) continue;
            float sl2 = suml2 - w * li * li;
            const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (new_l == L[i]) continue;
            slx += w * x[i] * static_cast<float>(new_l);
            sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
            // The new fit's error reduction slx^2 / sl2 beats the old one's.
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = static_cast<int8_t>(new_l);
                sumlx = slx;
                suml2 = sl2;
                ++n_changed;
            }
        }
        if (n_changed == 0) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace

namespace {

// Q4_K's and Q5_K's fit of one 256-element block: each 32-element sub-block gets a
// least-squares scale and min (make_qkx2_quants, weighted toward large magnitudes,
// codes 0..nmax, trying `nstep + 1` scales from range / (nmax + rmin) on), those
// 8 + 8 floats are quantised to 6 bits against the block's largest, and the
// elements are then re-coded against the scales as actually stored, so rounding of
// the scales does not leave codes fitted to the unrounded ones. Writes the block's
// d, dmin and packed scales, and the codes to L.
template <typename Block>
void fit_k4_block(const float* src, int nmax, float rmin, int nstep, Block& y, uint8_t* L) {
    uint8_t Laux[32];
    float weights[32];
    float scales[8];
    float mins[8];
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < 8; ++j) {
        const float* x = src + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[l] * x[l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[l]);
        scales[j] =
            make_qkx2_quants(32, nmax, x, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }

    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        // The reference converts to uint8_t before clamping; a negative fit (not
        // expected, but not excluded by the search) wraps and clamps to 63 there too.
        ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
        lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    }
    pack_scale_min_k4(ls, lm, y.scales);
    y.d = fp32_to_fp16(max_scale / 63.0f);
    y.dmin = fp32_to_fp16(max_min / 63.0f);

    for (int j = 0; j < 8; ++j) {
        const ScaleMin sm = scale_min_k4(j, y.scales);
        const float d = fp16_to_fp32(y.d) * static_cast<float>(sm.scale);
        if (d == 0.0f) continue;  // keeps the codes the fit chose
        const float dm = fp16_to_fp32(y.dmin) * static_cast<float>(sm.min);
        for (int l = 0; l < 32; ++l) {
            L[32 * j + l] =
                static_cast<uint8_t>(std::clamp(nearest_int((src[32 * j + l] + dm) / d), 0, nmax));
        }
    }
}

}  // namespace

void quantize_row_q4_k(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ4_K*>(dst);
    const int64_t nb = block_count<BlockQ4_K>(n);
    uint8_t L[qk_k];
    for (int64_t i = 0; i < nb; ++i, src += qk_k) {
        fit_k4_block(src, 15, -1.0f, 20, y[i], L);
        for (int c = 0; c < 4; ++c) {
            for (int l = 0; l < 32; ++l) {
                y[i].qs[32 * c + l] =
                    static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
            }
        }
    }
}

// Q4_K's fit with codes 0..31 (and the reference's narrower search); the low four
// bits pack as Q4_K's, the fifth goes to bit `sb` of qh[l] for element 32 sb + l.
void quantize_row_q5_k(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ5_K*>(dst);
    const int64_t nb = block_count<BlockQ5_K>(n);
    uint8_t L[qk_k];
    for (int64_t i = 0; i < nb; ++i, src += qk_k) {
        fit_k4_block(src, 31, -0.5f, 15, y[i], L);
        std::memset(y[i].qh, 0, sizeof y[i].qh);
        for (int c = 0; c < 4; ++c) {
            for (int l = 0; l < 32; ++l) {
                const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                y[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
                y[i].qh[l] |=
                    static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        }
    }
}

namespace {
// Q3_K's and Q6_K's sub-blocks: `fit(x, L)` gives each 16-element sub-block's
// signed scale and codes; returns the scale of largest magnitude, with its sign
// (the first of equal magnitudes).
template <typename Fit>
float fit_sub_blocks16(const float* src, float* scales, int8_t* L, Fit fit) {
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < 16; ++j) {
        scales[j] = fit(src + 16 * j, L + 16 * j);
        if (std::fabs(scales[j]) > amax) {
            amax = std::fabs(scales[j]);
            max_scale = scales[j];
        }
    }
    return max_scale;
}

// The codes again, against sub-block j's scale as stored (`d_of(j)`): codes
// -offset..offset - 1, stored + offset. A sub-block whose stored scale is 0
// keeps the codes of the fit.
template <typename Scale>
void recode_sub_blocks16(const float* src, int offset, int8_t* L, Scale d_of) {
    for (int j = 0; j < 16; ++j) {
        const float d = d_of(j);
        if (d == 0.0f) continue;
        for (int l = 0; l < 16; ++l) {
            const int q = std::clamp(nearest_int(src[16 * j + l] / d), -offset, offset - 1);
            L[16 * j + l] = static_cast<int8_t>(q + offset);
        }
    }
}

// Four 2-bit codes per byte across each 128-element half, as `dequantize_row_q2_k`
// reads them (Q3_K's low bits pack the same way).
void pack_2bit_codes(const uint8_t* L, uint8_t* qs) {
    for (int c = 0; c < 2; ++c) {
        for (int l = 0; l < 32; ++l) {
            const uint8_t* Lc = L + 128 * c + l;
            qs[32 * c + l] =
                static_cast<uint8_t>(Lc[0] | (Lc[32] << 2) | (Lc[64] << 4) | (Lc[96] << 6));
        }
    }
}
}  // namespace

// Each 16-element sub-block gets a scale and min fitted to codes 0..3 (make_qkx2_quants
// weighted by magnitude, judged by absolute rather than squared error), both
// quantised to 4 bits against the block's largest, then the elements are re-coded
// against the stored values.
void quantize_row_q2_k(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ2_K*>(dst);
    const int64_t nb = block_count<BlockQ2_K>(n);
    uint8_t L[qk_k];
    uint8_t Laux[16];
    float weights[16];
    float scales[16];
    float mins[16];
    constexpr float q4scale = 15.0f;
    for (int64_t i = 0; i < nb; ++i, src += qk_k) {
        float max_scale = 0;
        float max_min = 0;
        for (int j = 0; j < 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = std::fabs(src[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, src + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        // The reference stores nearest_int's result unclamped: the largest maps to 15.
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < 16; ++j)
                y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
            y[i].d = fp32_to_fp16(max_scale / q4scale);
        } else {
            std::memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = fp32_to_fp16(0.0f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < 16; ++j)
                y[i].scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = fp32_to_fp16(max_min / q4scale);
        } else {
            y[i].dmin = fp32_to_fp16(0.0f);
        }
        for (int j = 0; j < 16; ++j) {
            const float d = fp16_to_fp32(y[i].d) * static_cast<float>(y[i].scales[j] & 0xF);
            if (d == 0.0f) continue;
            const float dm = fp16_to_fp32(y[i].dmin) * static_cast<float>(y[i].scales[j] >> 4);
            for (int l = 0; l < 16; ++l) {
                L[16 * j + l] =
                    static_cast<uint8_t>(std::clamp(nearest_int((src[16 * j + l] + dm) / d), 0, 3));
            }
        }
        pack_2bit_codes(L, y[i].qs);
    }
}

// Each 16-element sub-block gets a signed scale for codes -4..3 (make_q3_quants),
// the 16 scales are quantised to 6 bits (offset by 32) against the largest, and the
// elements are re-coded against the stored scales; a code's bit 2 goes to hmask.
void quantize_row_q3_k(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ3_K*>(dst);
    const int64_t nb = block_count<BlockQ3_K>(n);
    int8_t L[qk_k];
    float scales[16];
    for (int64_t i = 0; i < nb; ++i, src += qk_k) {
        const float max_scale = fit_sub_blocks16(
            src, scales, L, [](const float* x, int8_t* l) { return make_q3_quants(16, 4, x, l); });
        std::memset(y[i].scales, 0, sizeof y[i].scales);
        if (max_scale != 0.0f) {
            const float iscale = -32.0f / max_scale;
            for (int j = 0; j < 16; ++j) {
                const int l = std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) {
                    y[i].scales[j] = static_cast<uint8_t>(l & 0xF);
                } else {
                    y[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
                }
                y[i].scales[j % 4 + 8] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = fp32_to_fp16(1 / iscale);
        } else {
            y[i].d = fp32_to_fp16(0.0f);
        }
        recode_sub_blocks16(src, 4, L, [&](int j) {
            return fp16_to_fp32(y[i].d) * static_cast<float>(q3_k_scale(y[i].scales, j) - 32);
        });
        // Element e's bit 2 is bit e / 32 of hmask[e % 32]; the low two bits pack as Q2_K's.
        std::memset(y[i].hmask, 0, sizeof y[i].hmask);
        uint8_t low[qk_k];
        for (int e = 0; e < qk_k; ++e) {
            if (L[e] > 3) y[i].hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
            low[e] = static_cast<uint8_t>(L[e] & 3);
        }
        pack_2bit_codes(low, y[i].qs);
    }
}

// Each 16-element sub-block gets a signed scale (make_qx_quants), the 16 scales are
// quantised to int8 against the largest (which becomes -128, clamped codes stay in
// -128..127), and the elements are re-coded against the stored scales.
void quantize_row_q6_k(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockQ6_K*>(dst);
    const int64_t nb = block_count<BlockQ6_K>(n);
    int8_t L[qk_k];
    float scales[16];
    for (int64_t i = 0; i < nb; ++i, src += qk_k) {
        const float max_scale = fit_sub_blocks16(
            src, scales, L, [](const float* x, int8_t* l) { return make_qx_quants(16, 32, x, l); });
        if (std::fabs(max_scale) < 1e-15f) {  // an all-zero block: every field zero
            std::memset(&y[i], 0, sizeof y[i]);
            continue;
        }

        const float iscale = -128.0f / max_scale;
        y[i].d = fp32_to_fp16(1 / iscale);
        for (int sb = 0; sb < 16; ++sb) {
            y[i].scales[sb] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[sb])));
        }

        recode_sub_blocks16(src, 32, L, [&](int sb) {
            return fp16_to_fp32(y[i].d) * static_cast<float>(y[i].scales[sb]);
        });

        // The layout `dequantize_row_q6_k` reads: per 128-element half c and quarter
        // k, low nibbles into ql (quarters 0/1 low, 2/3 high nibble) and top two bits
        // into bit pair k of qh.
        for (int c = 0; c < 2; ++c) {
            const int8_t* Lc = L + 128 * c;
            uint8_t* ql = y[i].ql + 64 * c;
            uint8_t* qh = y[i].qh + 32 * c;
            for (int l = 0; l < 32; ++l) {
                const int q0 = Lc[l], q1 = Lc[l + 32], q2 = Lc[l + 64], q3 = Lc[l + 96];
                ql[l] = static_cast<uint8_t>((q0 & 0xF) | ((q2 & 0xF) << 4));
                ql[l + 32] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
                qh[l] = static_cast<uint8_t>((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) |
                                             ((q3 >> 4) << 6));
            }
        }
    }
}

// ---------------------------------------------------------------- IQ4 encoders

namespace {

// The code whose table value is nearest x (x in units of the block scale); on a tie
// the upper. The reference's best_index_int8 over the sorted `kvalues_iq4nl`.
int best_index_iq4nl(float x) {
    const int8_t* val = kvalues_iq4nl;

    if (x <= static_cast<float>(val[0])) return 0;
    if (x >= static_cast<float>(val[15])) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        const int mav = (ml + mu) / 2;
        if (x < static_cast<float>(val[mav])) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    return x - static_cast<float>(val[mu - 1]) < static_cast<float>(val[mu]) - x ? mu - 1 : mu;
}

// Least-squares scale of 32 elements for the codes that scale `id` gives them,
// weighted by x^2: returns sum w q x and sum w q^2.
std::pair<float, float> iq4_fit(const float* x, float id, uint8_t* L = nullptr) {
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
        const int l = best_index_iq4nl(id * x[j]);
        if (L) L[j] = static_cast<uint8_t>(l);
        const auto q = static_cast<float>(kvalues_iq4nl[l]);
        const float w = x[j] * x[j];
        sumqx += w * q * x[j];
        sumq2 += w * q * q;
    }
    return {sumqx, sumq2};
}

// One 32-element block's scale for the IQ4 table: codes from the scale that maps
// the largest magnitude to the table's end, then (for `ntry` > 0) the best
// least-squares scale among 2 ntry + 1 nearby starts. The reference's
// quantize_row_iq4_nl_impl for one block, without importance weights.
float iq4_block_scale(const float* x, int ntry, uint8_t* L) {
    const float max = largest_magnitude(x, 32);
    const float amax = std::fabs(max);
    // GROUP_MAX_EPS: the block is taken as all zero, and its codes are left as
    // they are (see `quantize_row_iq4_nl`).
    if (amax < 1e-15f) return 0.0f;
    const auto v0 = static_cast<float>(kvalues_iq4nl[0]);
    float d = ntry > 0 ? -max / v0 : max / v0;
    auto [sumqx, sumq2] = iq4_fit(x, 1 / d, L);
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int itry = -ntry; itry <= ntry; ++itry) {
        const float id = static_cast<float>(itry + kvalues_iq4nl[0]) / max;
        const auto [qx, q2] = iq4_fit(x, id);
        if (q2 > 0 && qx * qx > best * q2) {
            d = qx / q2;
            best = d * qx;
        }
    }
    return d;
}

// Codes of one 32-element block: element j low nibble, j + 16 high.
void pack_iq4_codes(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

}  // namespace

// The block's least-squares scale for the codes of the largest magnitude's scale
// (the reference's row encoder tries no other scales for IQ4_NL).
void quantize_row_iq4_nl(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockIQ4_NL*>(dst);
    const int64_t nb = block_count<BlockIQ4_NL>(n);
    // An all-zero block (scale 0) keeps the codes of the block before it, as the
    // reference's do: they decode to zeros either way, and files stay byte-identical.
    uint8_t L[32] = {};
    for (int64_t i = 0; i < nb; ++i, src += 32) {
        y[i].d = fp32_to_fp16(iq4_block_scale(src, -1, L));
        pack_iq4_codes(L, y[i].qs);
    }
}

// Each 32-element sub-block's scale searched as IQ4_NL's with 15 tries, the eight
// quantised to 6 bits (offset by 32) against the largest, and the codes re-chosen
// for the stored sub-block scales.
void quantize_row_iq4_xs(const float* src, void* dst, int64_t n) {
    auto* y = static_cast<BlockIQ4_XS*>(dst);
    const int64_t nb = block_count<BlockIQ4_XS>(n);
    uint8_t L[qk_k];
    float scales[8];
    for (int64_t i = 0; i < nb; ++i, src += qk_k) {
        float max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < 8; ++ib) {
            scales[ib] = iq4_block_scale(src + 32 * ib, 7, L + 32 * ib);
            if (std::fabs(scales[ib]) > amax_scale) {
                amax_scale = std::fabs(scales[ib]);
                max_scale = scales[ib];
            }
        }
        const float d = -max_scale / 32;
        y[i].d = fp32_to_fp16(d);
        y[i].scales_h = 0;
        const float id = d != 0.0f ? 1 / d : 0.0f;
        for (int ib = 0; ib < 8; ++ib) {
            const int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
            const float dl = d * static_cast<float>(l);
            const float idl = dl != 0.0f ? 1 / dl : 0.0f;
            for (int j = 0; j < 32; ++j)
                L[32 * ib + j] = static_cast<uint8_t>(best_index_iq4nl(idl * src[32 * ib + j]));
            const int stored = l + 32;
            if (ib % 2 == 0) {
                y[i].scales_l[ib / 2] = static_cast<uint8_t>(stored & 0xF);
            } else {
                y[i].scales_l[ib / 2] |= static_cast<uint8_t>((stored & 0xF) << 4);
            }
            y[i].scales_h = static_cast<uint16_t>(y[i].scales_h | ((stored >> 4) << (2 * ib)));
            pack_iq4_codes(L + 32 * ib, y[i].qs + 16 * ib);
        }
    }
}

}  // namespace strata
