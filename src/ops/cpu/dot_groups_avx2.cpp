// AVX2 kernels for Q4_0, Q5_0, IQ4_NL and MXFP4 against Q8_0 activations laid out as
// `ActLayout::Groups4` (dot.h), for CPUs without AVX-512.
//
// The block-at-a-time kernels of dot_x86.inc pay per 32-element block for the
// sign trick on the activations, a horizontal widening, and two scalar half
// conversions for the block's scale; one thread read Q4_0 and MXFP4 at 11-12
// GB/s in L2. These take a group of four blocks, two per 256-bit register,
// as the VBMI kernels do (dot_vbmi.cpp), with the same ideas where AVX2 has
// the instructions:
//  - codes are made unsigned by an offset o (Q4_0's codes are the weight + 8,
//    Q5_0's + 16; MXFP4's code book plus 16), so `maddubs` multiplies them by the signed
//    activation codes as they are; o times the activations' sum comes off by
//    adding o times the layout's minus sums;
//  - a block's two halves meet the layout's first and second halves, so their
//    int16 pair sums add before one `madd` widens them, and each 32-bit lane is
//    the lane the layout's minus sums and scales are given for;
//  - the four weight scales are converted together and spread over the lanes
//    by one permute per register.
// IQ4_NL's codes cannot take an offset (see Iq4Nl) and keep the sign trick.
// The integer sums are exact, so each block's term is the reference's up to
// the order in which the float terms are added.

#include "ops/cpu/dot.h"

#include "tensor/blocks.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) && !defined(__clang__)

#include <immintrin.h>

// See dot_x86.cpp for why this warning is off inside the target region.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace strata::ops::groups_avx2 {
namespace {

// (Every helper of a group's load is inlined: a `Group` returned from a call
// goes through memory, which halved Q5_0's rate.)
//
// Four blocks unpacked: per pair of blocks (0-1, 2-3), the unsigned codes of
// their first and second halves, one block per 128-bit lane; and the four
// blocks' weight scales.
struct Group {
    __m256i first[2], second[2];
    __m128 scale;
};

// The 16 code bytes of blocks 2h and 2h + 1 (zero for blocks past `blocks`).
template <int BB, int First>
inline __m256i code_bytes(const uint8_t* p, int h, int blocks) {
    const auto bytes = [&](int k) {
        return k < blocks ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + BB * k + First))
                          : _mm_setzero_si128();
    };
    return _mm256_inserti128_si256(_mm256_castsi128_si256(bytes(2 * h)), bytes(2 * h + 1), 1);
}

// The codes of four blocks whose element j is the low nibble of code byte j and
// element j + 16 its high nibble, each nibble mapped by `map`.
template <int BB, int First, typename Map>
inline void nibbles(const uint8_t* p, int blocks, Group& g, Map map) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
        const __m256i q = code_bytes<BB, First>(p, h, blocks);
        g.first[h] = map(_mm256_and_si256(q, low4));
        g.second[h] = map(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4));
    }
}

// The half scales at the start of `blocks` blocks of BB bytes, as floats.
template <int BB>
[[gnu::always_inline]] inline __m128 half_scales(const uint8_t* p, int blocks) {
    uint64_t halves = 0;
#pragma GCC unroll 4
    for (int k = 0; k < blocks; ++k) {
        uint16_t d;
        std::memcpy(&d, p + BB * k, 2);
        halves |= uint64_t{d} << (16 * k);
    }
    return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<int64_t>(halves)));
}

// `load<true>` takes a whole group of four blocks, `load<false>` a row's last
// `blocks` (1 to 3), reading nothing past them.
//
// Q4_0: codes 0..15 are the weight + 8; the scale is a half at the block's start.
struct Q4_0 {
    static constexpr int kBlockBytes = 18, kShift = 3;
    template <bool Full>
    [[gnu::always_inline]] static Group load(const uint8_t* p, int blocks) {
        if constexpr (Full) blocks = 4;
        Group g;
        nibbles<18, 2>(p, blocks, g, [](__m256i u) { return u; });
        g.scale = half_scales<18>(p, blocks);
        return g;
    }
};

// Q5_0: codes 0..31 are the weight + 16: a nibble as in Q4_0 plus a fifth bit,
// bit j of the block's 32-bit qh for element j. Each block's qh lands in its
// lane of a register (the same loads as the codes', 4 bytes earlier), a byte
// shuffle copies qh byte j / 8 to code byte j, and each copy is tested
// against its bit.
struct Q5_0 {
    static constexpr int kBlockBytes = 22, kShift = 4;
    template <bool Full>
    [[gnu::always_inline]] static Group load(const uint8_t* p, int blocks) {
        if constexpr (Full) blocks = 4;
        Group g;
        nibbles<22, 6>(p, blocks, g, [](__m256i u) { return u; });
        g.scale = half_scales<22>(p, blocks);
        const __m256i first_bytes =
            _mm256_setr_epi64x(0, 0x0101010101010101, 0, 0x0101010101010101);
        const __m256i second_bytes = _mm256_setr_epi64x(0x0202020202020202, 0x0303030303030303,
                                                        0x0202020202020202, 0x0303030303030303);
        const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
        const __m256i sixteen = _mm256_set1_epi8(16);
        const auto fifth = [&](__m256i qh, __m256i bytes) {
            const __m256i spread = _mm256_and_si256(_mm256_shuffle_epi8(qh, bytes), bit);
            return _mm256_and_si256(_mm256_cmpeq_epi8(spread, bit), sixteen);
        };
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            const __m256i qh = code_bytes<22, 2>(p, h, blocks);
            g.first[h] = _mm256_or_si256(g.first[h], fifth(qh, first_bytes));
            g.second[h] = _mm256_or_si256(g.second[h], fifth(qh, second_bytes));
        }
        return g;
    }
};

// MXFP4: the doubled code book (-12..12) plus 16; the scale 2^(e - 127) / 2 of
// the block's exponent byte e, built from bits as `e8m0_to_fp32_half` does.
struct Mxfp4 {
    static constexpr int kBlockBytes = 17, kShift = 4;
    template <bool Full>
    [[gnu::always_inline]] static Group load(const uint8_t* p, int blocks) {
        if constexpr (Full) blocks = 4;
        alignas(16) int8_t values[16];
        for (int i = 0; i < 16; ++i) values[i] = static_cast<int8_t>(kvalues_mxfp4[i] + 16);
        const __m256i book =
            _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(values)));
        Group g;
        nibbles<17, 1>(p, blocks, g, [&](__m256i u) { return _mm256_shuffle_epi8(book, u); });
        uint32_t exps = 0;
#pragma GCC unroll 4
        for (int k = 0; k < blocks; ++k) exps |= uint32_t{p[17 * k]} << (8 * k);
        const __m128i e = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(static_cast<int>(exps)));
        // e < 2: 0x200000 << e (2^-128, 2^-127, subnormal); else (e - 1) << 23.
        const __m128i small = _mm_sllv_epi32(_mm_set1_epi32(0x200000), e);
        const __m128i large = _mm_slli_epi32(_mm_sub_epi32(e, _mm_set1_epi32(1)), 23);
        const __m128i is_small = _mm_cmpgt_epi32(_mm_set1_epi32(2), e);
        g.scale = _mm_castsi128_ps(_mm_blendv_epi8(large, small, is_small));
        return g;
    }
};

// IQ4_NL: signed codes from the code book (-127..113), as they are: plus 128
// they would reach 241, and two such products overflow an int16 pair. So no
// offset (`kSigned`), and the products take the sign trick instead.
struct Iq4Nl {
    static constexpr int kBlockBytes = 18;
    static constexpr bool kSigned = true;
    template <bool Full>
    [[gnu::always_inline]] static Group load(const uint8_t* p, int blocks) {
        if constexpr (Full) blocks = 4;
        const __m256i book =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl)));
        Group g;
        nibbles<18, 2>(p, blocks, g, [&](__m256i u) { return _mm256_shuffle_epi8(book, u); });
        g.scale = half_scales<18>(p, blocks);
        return g;
    }
};

// Sum over each 32-bit lane of a block pair's codes times activations: unsigned
// codes' int16 pairs from the two halves added before one widening (at most
// 2 * 2 * 31 * 127 in magnitude), plus the offset times the minus sums; signed
// codes (`kSigned`) by the sign trick, each half widened on its own.
template <typename F>
[[gnu::always_inline]] inline __m256i lane_sums(__m256i first, __m256i second, __m256i a_first,
                                                __m256i a_second, __m256i nsum) {
    const __m256i ones = _mm256_set1_epi16(1);
    if constexpr (requires { F::kSigned; }) {
        const auto half = [&](__m256i q, __m256i act) {
            return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(act, q)),
                                     ones);
        };
        return _mm256_add_epi32(half(first, a_first), half(second, a_second));
    } else {
        const __m256i pairs =
            _mm256_add_epi16(_mm256_maddubs_epi16(first, a_first), _mm256_maddubs_epi16(second, a_second));
        return _mm256_add_epi32(_mm256_madd_epi16(pairs, ones), _mm256_slli_epi32(nsum, F::kShift));
    }
}

inline float hsum(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

// `NT` activation rows against one weight row: out[t] = dot(w, a[t]). Every row
// sees the same operations in the same order whatever NT is, so the four-row
// kernel gives each row the one-row kernel's result exactly.
template <typename F, int NT>
void dot_rows(int64_t n, const void* w, const void* const* a, float* out) {
    const auto* x = static_cast<const uint8_t*>(w);
    const int64_t n_blocks = n / 32;
    // The lanes of blocks 0-1 and 2-3 of a group, for the scale permute.
    const __m256i spread[2] = {_mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1),
                               _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3)};
    __m256 acc[NT][2];
    for (int t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; b += 4, x += 4 * F::kBlockBytes) {
        const int blocks = static_cast<int>(std::min<int64_t>(4, n_blocks - b));
        const Group q =
            blocks == 4 ? F::template load<true>(x, 4) : F::template load<false>(x, blocks);
        const __m256 scale = _mm256_castps128_ps256(q.scale);
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
            const uint8_t* y = static_cast<const uint8_t*>(a[t]) + b / 4 * Groups4::kBytes;
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
                const auto at = [&](int off) {
                    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y + off + 32 * h));
                };
                const __m256i sum = lane_sums<F>(q.first[h], q.second[h], at(0),
                                                 at(Groups4::kSecondAt), at(Groups4::kNsumAt));
                const __m256 d = _mm256_mul_ps(_mm256_permutevar8x32_ps(scale, spread[h]),
                                               _mm256_loadu_ps(reinterpret_cast<const float*>(
                                                   y + Groups4::kScaleAt + 32 * h)));
                acc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), d, acc[t][h]);
            }
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = hsum(_mm256_add_ps(acc[t][0], acc[t][1]));
}

template <typename F>
float dot1(int64_t n, const void* w, const void* a) {
    float out;
    dot_rows<F, 1>(n, w, &a, &out);
    return out;
}

template <typename F>
void dot4(int64_t n, const void* w, const void* const* a, float* out) {
    dot_rows<F, 4>(n, w, a, out);
}

}  // namespace

DotKernels build(const DotKernels& base) {
    DotKernels k = base;
    auto set = [&]<typename F>(TensorType t, F*) {
        const auto id = static_cast<size_t>(t);
        k.dot[id] = dot1<F>;
        k.dot4[id] = dot4<F>;
        k.rows4[id] = nullptr;
        k.layout[id] = ActLayout::Groups4;
    };
    set(TensorType::Q4_0, static_cast<Q4_0*>(nullptr));
    set(TensorType::Q5_0, static_cast<Q5_0*>(nullptr));
    set(TensorType::IQ4_NL, static_cast<Iq4Nl*>(nullptr));
    set(TensorType::MXFP4, static_cast<Mxfp4*>(nullptr));
    return k;
}

}  // namespace strata::ops::groups_avx2

#pragma GCC pop_options
#pragma GCC diagnostic pop

#endif
