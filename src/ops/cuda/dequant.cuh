#pragma once
// Per-type block dot products on the device: one weight block times the matching
// block of quantised activations, computed exactly as the scalar reference
// (ops/cpu/dot_scalar.cpp) computes one iteration of its loop: the codes are
// decoded the same way, multiplied with the activation codes in integers (exact),
// and scaled by the two blocks' scales with the same float operations in the same
// order. The scale products use __fmul_rn/__fadd_rn so nvcc does not fuse them
// into a multiply-add the reference does not do; a row's dot product then differs
// from the CPU's only by the order in which the per-block floats are summed.
//
// Each `Dot*` struct names its weight block (W), its activation block (A) and
// `block(w, a)`, the contribution of one block pair.

#include "ops/cuda/fp_bits.cuh"
#include "tensor/blocks.h"

#include <cstdint>

namespace strata::ops::cuda {

static __constant__ int8_t kValuesIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                               1,    13,   25,  38,  53,  69,  89,  113};
static __constant__ int8_t kValuesMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12,
                                               0, -1, -2, -3, -4, -6, -8, -12};

// Element j (0..31) of 32 codes packed as nibbles: j < 16 low nibbles, then high.
__device__ __forceinline__ int nibble(const uint8_t* qs, int j) {
    return j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
}

// The fifth bit of element j, from a little-endian u32 stored as 4 bytes (the
// block's byte alignment does not allow a 32-bit load).
__device__ __forceinline__ int q5_high_bit(const uint8_t* qh, int j) {
    return ((qh[j / 8] >> (j % 8)) & 1) << 4;
}

// 2-bit fields of a 256-element super-block: bits 2k..2k+1 of byte 32c + l for
// e = 128c + 32k + l.
__device__ __forceinline__ int crumb(const uint8_t* q, int e) {
    return (q[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

// Nibbles of a super-block across 64-element quarters (Q4_K, Q5_K).
__device__ __forceinline__ int k_nibble(const uint8_t* q, int e) {
    return (q[32 * (e / 64) + e % 32] >> (4 * ((e % 64) / 32))) & 0xF;
}

// blocks.h's e8m0_to_fp32_half: 2^(e - 127) / 2 from bits.
__device__ __forceinline__ float e8m0_half(uint8_t e) {
    const uint32_t bits = e < 2 ? (uint32_t{0x00200000} << e) : (uint32_t{e} - 1) << 23;
    return __uint_as_float(bits);
}

// blocks.h's scale_min_k4.
__device__ __forceinline__ void scale_min_k4_dev(int j, const uint8_t* s, int& scale, int& min) {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// blocks.h's q3_k_scale (still offset by 32).
__device__ __forceinline__ int q3_k_scale_dev(const uint8_t* scales, int j) {
    const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return low | (high << 4);
}

// blocks.h's iq4_xs_scale (still offset by 32).
__device__ __forceinline__ int iq4_xs_scale_dev(const BlockIQ4_XS& b, int sb) {
    const int low = (b.scales_l[sb / 2] >> (4 * (sb % 2))) & 0xF;
    const int high = (b.scales_h >> (2 * sb)) & 3;
    return low | (high << 4);
}

// ---- float weights: one "block" is one element, activations are plain floats.

struct DotF32 {
    using W = float;
    using A = float;
    static __device__ float block(const W& w, const A& a) { return __fmul_rn(w, a); }
};
struct DotF16 {
    using W = uint16_t;
    using A = float;
    static __device__ float block(const W& w, const A& a) { return __fmul_rn(fp16_to_fp32(w), a); }
};
struct DotBF16 {
    using W = uint16_t;
    using A = float;
    static __device__ float block(const W& w, const A& a) { return __fmul_rn(bf16_to_fp32(w), a); }
};

// ---- 32-element weights with Q8_0 activations: sumi * (scale * da).

template <typename Derived, typename Block>
struct DotQ80Acts {
    using W = Block;
    using A = BlockQ8_0;
    static __device__ float block(const W& w, const A& a) {
        int sumi = 0;
        for (int j = 0; j < 32; ++j) sumi += Derived::code(w, j) * a.qs[j];
        return __fmul_rn(static_cast<float>(sumi), __fmul_rn(Derived::scale(w), fp16_to_fp32(a.d)));
    }
};

struct DotQ4_0 : DotQ80Acts<DotQ4_0, BlockQ4_0> {
    static __device__ int code(const BlockQ4_0& b, int j) { return nibble(b.qs, j) - 8; }
    static __device__ float scale(const BlockQ4_0& b) { return fp16_to_fp32(b.d); }
};
struct DotQ5_0 : DotQ80Acts<DotQ5_0, BlockQ5_0> {
    static __device__ int code(const BlockQ5_0& b, int j) {
        return (nibble(b.qs, j) | q5_high_bit(b.qh, j)) - 16;
    }
    static __device__ float scale(const BlockQ5_0& b) { return fp16_to_fp32(b.d); }
};
struct DotQ8_0 : DotQ80Acts<DotQ8_0, BlockQ8_0> {
    static __device__ int code(const BlockQ8_0& b, int j) { return b.qs[j]; }
    static __device__ float scale(const BlockQ8_0& b) { return fp16_to_fp32(b.d); }
};
struct DotIQ4_NL : DotQ80Acts<DotIQ4_NL, BlockIQ4_NL> {
    static __device__ int code(const BlockIQ4_NL& b, int j) { return kValuesIq4nl[nibble(b.qs, j)]; }
    static __device__ float scale(const BlockIQ4_NL& b) { return fp16_to_fp32(b.d); }
};
struct DotMXFP4 : DotQ80Acts<DotMXFP4, BlockMXFP4> {
    static __device__ int code(const BlockMXFP4& b, int j) { return kValuesMxfp4[nibble(b.qs, j)]; }
    static __device__ float scale(const BlockMXFP4& b) { return e8m0_half(b.e); }
};

// ---- Q4_1 / Q5_1 with Q8_1 activations: d * da * sumi + m * sa.

template <typename Derived, typename Block>
struct DotQ81Acts {
    using W = Block;
    using A = BlockQ8_1;
    static __device__ float block(const W& w, const A& a) {
        int sumi = 0;
        for (int j = 0; j < 32; ++j) sumi += Derived::code(w, j) * a.qs[j];
        const float dd = __fmul_rn(__fmul_rn(fp16_to_fp32(w.d), fp16_to_fp32(a.d)),
                                   static_cast<float>(sumi));
        return __fadd_rn(dd, __fmul_rn(fp16_to_fp32(w.m), fp16_to_fp32(a.s)));
    }
};
struct DotQ4_1 : DotQ81Acts<DotQ4_1, BlockQ4_1> {
    static __device__ int code(const BlockQ4_1& b, int j) { return nibble(b.qs, j); }
};
struct DotQ5_1 : DotQ81Acts<DotQ5_1, BlockQ5_1> {
    static __device__ int code(const BlockQ5_1& b, int j) { return nibble(b.qs, j) | q5_high_bit(b.qh, j); }
};

// ---- 256-element super-blocks with Q8_K activations.

struct DotQ2_K {
    using W = BlockQ2_K;
    using A = BlockQ8_K;
    static __device__ float block(const W& x, const A& y) {
        int isum = 0, summs = 0;
        for (int sb = 0; sb < 16; ++sb) {
            int s = 0;
            for (int t = 0; t < 16; ++t) s += crumb(x.qs, 16 * sb + t) * y.qs[16 * sb + t];
            isum += (x.scales[sb] & 0xF) * s;
            summs += (x.scales[sb] >> 4) * y.bsums[sb];
        }
        const float a = __fmul_rn(__fmul_rn(y.d, fp16_to_fp32(x.d)), static_cast<float>(isum));
        const float b = __fmul_rn(__fmul_rn(y.d, fp16_to_fp32(x.dmin)), static_cast<float>(summs));
        return __fsub_rn(a, b);
    }
};

struct DotQ3_K {
    using W = BlockQ3_K;
    using A = BlockQ8_K;
    static __device__ float block(const W& x, const A& y) {
        int isum = 0;
        for (int sb = 0; sb < 16; ++sb) {
            int s = 0;
            for (int t = 0; t < 16; ++t) {
                const int e = 16 * sb + t;
                const bool high = x.hmask[e % 32] & (1 << (e / 32));
                s += (crumb(x.qs, e) - (high ? 0 : 4)) * y.qs[e];
            }
            isum += (q3_k_scale_dev(x.scales, sb) - 32) * s;
        }
        return __fmul_rn(__fmul_rn(fp16_to_fp32(x.d), y.d), static_cast<float>(isum));
    }
};

// Q4_K and Q5_K: d * da * sum(scale * s) - dmin * da * sum(min * bsums).
template <typename Derived, typename Block>
struct DotK4Family {
    using W = Block;
    using A = BlockQ8_K;
    static __device__ float block(const W& x, const A& y) {
        int isum = 0, summs = 0;
        for (int sb = 0; sb < 8; ++sb) {
            int scale = 0, min = 0;
            scale_min_k4_dev(sb, x.scales, scale, min);
            int s = 0;
            for (int l = 0; l < 32; ++l) s += Derived::code(x, 32 * sb + l) * y.qs[32 * sb + l];
            isum += scale * s;
            summs += min * (y.bsums[2 * sb] + y.bsums[2 * sb + 1]);
        }
        const float a = __fmul_rn(__fmul_rn(fp16_to_fp32(x.d), y.d), static_cast<float>(isum));
        const float b = __fmul_rn(__fmul_rn(fp16_to_fp32(x.dmin), y.d), static_cast<float>(summs));
        return __fsub_rn(a, b);
    }
};
struct DotQ4_K : DotK4Family<DotQ4_K, BlockQ4_K> {
    static __device__ int code(const BlockQ4_K& b, int e) { return k_nibble(b.qs, e); }
};
struct DotQ5_K : DotK4Family<DotQ5_K, BlockQ5_K> {
    static __device__ int code(const BlockQ5_K& b, int e) {
        return k_nibble(b.qs, e) | (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
    }
};

struct DotQ6_K {
    using W = BlockQ6_K;
    using A = BlockQ8_K;
    static __device__ float block(const W& x, const A& y) {
        int isum = 0;
        for (int g = 0; g < 16; ++g) {
            int s = 0;
            for (int t = 0; t < 16; ++t) {
                const int e = 16 * g + t;
                const int c = e / 128, k = (e % 128) / 32, l = e % 32;
                const int low = (x.ql[64 * c + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
                const int q = (low | (crumb(x.qh, e) << 4)) - 32;
                s += q * y.qs[e];
            }
            isum += x.scales[g] * s;
        }
        return __fmul_rn(__fmul_rn(fp16_to_fp32(x.d), y.d), static_cast<float>(isum));
    }
};

struct DotIQ4_XS {
    using W = BlockIQ4_XS;
    using A = BlockQ8_K;
    static __device__ float block(const W& x, const A& y) {
        int isum = 0;
        for (int sb = 0; sb < 8; ++sb) {
            int s = 0;
            for (int j = 0; j < 32; ++j) s += kValuesIq4nl[nibble(x.qs + 16 * sb, j)] * y.qs[32 * sb + j];
            isum += (iq4_xs_scale_dev(x, sb) - 32) * s;
        }
        return __fmul_rn(__fmul_rn(fp16_to_fp32(x.d), y.d), static_cast<float>(isum));
    }
};

}  // namespace strata::ops::cuda
