// AVX-512 VNNI kernels for Q4_K and IQ4_XS: Q4_K_64 and IQ4_XS_64
// (tensor/repack.h) against Q8_K activations laid out as `ActLayout::KLanes`
// (dot.h), and the GGML layouts against plain Q8_K blocks, giving the same
// results to the bit. (IQ4_XS, Q3_K and Q2_K: see `lanes_tile`'s section below.)
//
// A Q4_K block has eight sub-blocks of 32 codes, each with its own 6-bit scale.
// In GGML's order each 32-bit lane of a `vpdpbusd` product covers one sub-block
// in one register and another in the next, so every product needed its own
// scale vector (a shuffle) and its own multiply-add before the sums could meet:
// 19 cycles a block on Zen 4, a row at 26 GB/s in L2, below one core's share of
// the memory bandwidth on a quiet host. Q4_K_64 and KLanes put the codes and
// activations so that lane l of all four 64-code runs belongs to sub-block
// l % 8: the four products add in one accumulator, and one `vpmaddwd` by the
// lanes' scales finishes the block. Per block: two code loads, six nibble
// operations, four `vpdpbusd`, one scale shuffle and one multiply-add.
//
// The GGML-layout kernel (mapped weights) sums each sub-block's products
// across lanes instead, with three rounds of horizontal adds, and multiplies by
// the scales. Both give, per block, the eight lanes scale j times sub-block j's
// integer sum and minimum j times its activations' sum, exact integers that
// then take the same float steps, so a model's logits do not depend on whether
// its Q4_K weights were copied (and repacked) or mapped.

#include "ops/cpu/dot.h"

#include "tensor/blocks.h"

#include <cstring>
#include <type_traits>

#if defined(__x86_64__) && !defined(__clang__)

#include <immintrin.h>

// See dot_x86.cpp for why these warnings are off inside the target region.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")

namespace strata::ops::k4_lanes {
namespace {

inline __m256i load32(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

inline float hsum(__m256 v) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

#include "ops/cpu/row_groups.inc"

// Q4_K_64's eight scales and eight minimums, six bits each, as the bytes of
// two words: the low nibbles from the scale bytes, the top two bits put in
// place from the tops word.
struct ScaleWords {
    uint64_t scales, mins;
};
inline ScaleWords scale_words(const uint8_t* block) {
    constexpr uint64_t kLow = 0x0F0F0F0F0F0F0F0F, kTops = 0x3030303030303030;
    uint64_t low;
    uint32_t tops;
    std::memcpy(&low, block + 4, 8);
    std::memcpy(&tops, block + 12, 4);
    return {(low & kLow) | _pdep_u64(tops, kTops),
            ((low >> 4) & kLow) | _pdep_u64(tops >> 16, kTops)};
}

// The same words from GGML's packing of the twelve bytes as three words w0..w2:
// scales and minimums 0..3 are the low six bits of w0's and w1's bytes; 4..7
// take their low nibbles from w2 (scales the low, minimums the high nibbles)
// and their top two bits from the top of w0's and w1's bytes.
inline ScaleWords ggml_scale_words(const uint8_t* bytes) {
    uint32_t w[3];
    std::memcpy(w, bytes, 12);
    constexpr uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
    const uint32_t scales_hi = (w[2] & low4) | ((w[0] >> 6) & low2) << 4;
    const uint32_t mins_hi = ((w[2] >> 4) & low4) | ((w[1] >> 6) & low2) << 4;
    return {(w[0] & low6) | uint64_t{scales_hi} << 32, (w[1] & low6) | uint64_t{mins_hi} << 32};
}

// `vpshufb` control putting scale byte l % 8 in the low byte of 32-bit lane l
// and zeros in the others, so `vpmaddwd` multiplies each lane's low 16 bits by
// its sub-block's scale and its high 16 bits by zero.
struct LaneScales {
    alignas(64) uint8_t bytes[64] = {};
    constexpr LaneScales() {
        for (int p = 0; p < 64; ++p) bytes[p] = p % 4 == 0 ? static_cast<uint8_t>(p / 4 % 8) : 0x80;
    }
};
constexpr LaneScales kLaneScales;

// A Q4_K_64 (or Q5_K_64) block's weight side, unpacked once for every activation row it
// meets: its four runs of codes, its scales, its minimums, and d and dmin as
// floats (lanes 0 and 1).
//
// Two variants of the same integer sums. In prefill a block meets four
// activation rows, so what can be done once per block is: the high nibbles
// shifted down, and the scales spread to the lanes (`lane_scales`) for a 16-bit
// multiply before the lanes of a sub-block meet. In decode (`kDecode`) a block
// meets one row, so work is moved after the products, where it is done once
// for all four runs: the high nibbles stay in place, sixteen times the codes,
// and their products are divided by sixteen once; the two lanes of each
// sub-block are added first and multiplied by the scales in 32 bits, which
// needs no spreading. Per block that is two fewer 512-bit operations. With the
// accumulators kept in registers (below), `dot/Q4_K_64` in L2 went from 35.4
// to 39.5 GB/s (the best of 15 repetitions over six rounds alternating with
// the old build; single rounds moved by up to 25% with the host's load).
//
// Q5_K_64 (`kFifth`) is Q4_K_64 with each run's fifth bits as one 64-bit mask
// that adds 16 to the codes it marks. Its sums can exceed 16 bits, so it takes
// decode's fold and 32-bit multiply in prefill too, and its high nibbles are
// shifted down (16 times a code with its fifth bit would not fit a byte).
struct Unpacked {
    __m512i codes[4], lane_scales;
    uint64_t scales, mins;
    __m128 d;
};

// Where a Q4_K_64 or Q5_K_64 block's parts are.
template <bool kFifth>
struct K64 {
    static constexpr int64_t kBlockBytes = kFifth ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
    static constexpr int kCodesAt = kFifth ? 48 : 16, kFifthAt = 16;
    // The high nibbles left in place, sixteen times the codes (see above).
    static constexpr bool high_times_16(bool decode) { return decode && !kFifth; }
    // Lane scales for a 16-bit multiply before a sub-block's lanes meet.
    static constexpr bool madd(bool decode) { return !decode && !kFifth; }
};

template <bool kDecode, bool kFifth = false>
inline Unpacked unpack(const uint8_t* block) {
    using F = K64<kFifth>;
    const __m512i low4 = _mm512_set1_epi8(0x0F), high4 = _mm512_set1_epi8(static_cast<char>(0xF0));
    __m512i q0 = _mm512_loadu_si512(block + F::kCodesAt),
            q1 = _mm512_loadu_si512(block + F::kCodesAt + 64);
    // Left alone, GCC loads each code register twice (once per nibble) as memory
    // operands, and the loads, not the arithmetic, bound the kernel.
    __asm__("" : "+v"(q0), "+v"(q1));
    const ScaleWords sw = scale_words(block);
    int32_t d;
    std::memcpy(&d, block, 4);
    auto high = [&](__m512i q) {
        return F::high_times_16(kDecode) ? _mm512_and_si512(q, high4)
                                         : _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
    };
    Unpacked u{{_mm512_and_si512(q0, low4), high(q0), _mm512_and_si512(q1, low4), high(q1)},
               F::madd(kDecode)
                   ? _mm512_shuffle_epi8(_mm512_set1_epi64(static_cast<int64_t>(sw.scales)),
                                         _mm512_load_si512(kLaneScales.bytes))
                   : _mm512_setzero_si512(),
               sw.scales,
               sw.mins,
               _mm_cvtph_ps(_mm_cvtsi32_si128(d))};
    if constexpr (kFifth) {
        uint64_t bits[4];
        std::memcpy(bits, block + F::kFifthAt, sizeof bits);
        const __m512i sixteen = _mm512_set1_epi8(16);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r)
            u.codes[r] = _mm512_mask_add_epi8(u.codes[r], bits[r], u.codes[r], sixteen);
    }
    return u;
}

// A 64-code run's lanes summed in eight: lane l plus lane l + 8.
inline __m256i fold(__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

// Two runs' products in one set of lanes: codes c0 times activations a0 plus
// c1 times a1, four products per 32-bit lane from each.
inline __m512i two_runs(__m512i c0, __m512i a0, __m512i c1, __m512i a1) {
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), c0, a0), c1, a1);
}

inline __m256i bytes_to_lanes(uint64_t bytes) {
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(bytes)));
}

// Scale j times sub-block j's sum of codes times activations (runs a0..a3), in
// lane j.
//
// Range: a lane of one `vpdpbusd` adds four codes (at most 15) times
// activations (at most 128 in magnitude), and four products add up, so a lane
// holds at most 16 * 15 * 128 = 30720 in magnitude: its own low 16 bits, which
// is what `vpmaddwd` multiplies. In decode the high nibbles' lanes hold at most
// 16 * 2 * 7680 before the exact division, and a sub-block's two lanes together
// 61440, times a scale of at most 63.
// Q5_K_64's lanes hold at most 16 * 31 * 128 before the fold, twice that
// after, times a scale of at most 63.
template <bool kDecode, bool kFifth = false>
inline __m256i lanes_sums(const Unpacked& w, __m512i a0, __m512i a1, __m512i a2, __m512i a3) {
    using F = K64<kFifth>;
    const __m512i s = two_runs(w.codes[0], a0, w.codes[2], a2);
    __m512i t = two_runs(w.codes[1], a1, w.codes[3], a3);
    if constexpr (F::madd(kDecode)) {
        return fold(_mm512_madd_epi16(_mm512_add_epi32(s, t), w.lane_scales));
    } else {
        if constexpr (F::high_times_16(kDecode)) t = _mm512_srai_epi32(t, 4);
        return _mm256_mullo_epi32(fold(_mm512_add_epi32(s, t)), bytes_to_lanes(w.scales));
    }
}

// Minimum j times sub-block j's activation sum, in lane j. The sums (at most
// 32 * 128 in magnitude) are int32 whose low 16 bits are the value; the
// minimums' high halves are zero.
inline __m256i lanes_mins(uint64_t mins, __m256i sums) {
    return _mm256_madd_epi16(sums, bytes_to_lanes(mins));
}

// A block's d and dmin (two halves at `d`) times the activations' scale, in
// lanes 0 and 1: the products `half(d) * yd` would give, with one conversion.
inline __m128 block_scales(const void* d, __m128 yd) {
    int32_t both;
    std::memcpy(&both, d, 4);
    return _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(both)), yd);
}

// A Q4_K or Q5_K block's two terms in one 512-bit accumulator: lanes 0-7 take
// d times the scaled sub-block sums, lanes 8-15 dmin times the minimums' terms.
// One conversion, one multiply-add and one permute of the scales, where two
// 256-bit accumulators took two of each and a shuffle: on Zen 5 a 512-bit
// operation costs what a 256-bit one does. Each lane sees the operations it saw
// in its own accumulator, so the results did not change.
inline __m512 add_both(__m512 acc, __m128 scales, __m256i sums, __m256i mins) {
    const __m512 scale =
        _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                              _mm512_castps128_ps512(scales));
    const __m512i lanes = _mm512_inserti64x4(_mm512_castsi256_si512(sums), mins, 1);
    return _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(lanes), acc);
}

// `add_both`'s accumulator's result: the sums' terms less the minimums'.
inline float both_result(__m512 acc) {
    return hsum(_mm512_castps512_ps256(acc)) - hsum(_mm512_extractf32x8_ps(acc, 1));
}

// Four accumulators' `both_result`s, to the bit.
inline void both_results4(const __m512* acc, float* out) {
    auto sums = [](__m512 v) { return _mm512_castps512_ps256(v); };
    auto mins = [](__m512 v) { return _mm512_extractf32x8_ps(v, 1); };
    _mm_storeu_ps(out, _mm_sub_ps(hsum4(sums(acc[0]), sums(acc[1]), sums(acc[2]), sums(acc[3])),
                                  hsum4(mins(acc[0]), mins(acc[1]), mins(acc[2]), mins(acc[3]))));
}

// `NR` Q4_K_64 (or with `kFifth` Q5_K_64) rows against `NT` KLanes rows (one
// of them 1); a row's blocks are four blocks apart (the layout interleaves
// groups of four rows). Each (row, activation row) pair sees the same
// operations whatever NR and NT are, so `rows4` and `dot4` give `dot`'s results.
template <bool kFifth, int NR, int NT>
void k64_tile(int64_t n, const void* const* w, const void* const* a, float* out) {
    static_assert((NR == 1 || NT == 1) && (NR * NT == 1 || NR * NT == 4));
    constexpr bool kDecode = NT == 1;
    constexpr int64_t kStride = 4 * K64<kFifth>::kBlockBytes;
    const uint8_t* x[NR];
    const uint8_t* y[NT];
    __m512 acc[NR * NT];
    for (int r = 0; r < NR; ++r) x[r] = static_cast<const uint8_t*>(w[r]);
    for (int t = 0; t < NT; ++t) y[t] = static_cast<const uint8_t*>(a[t]);
        // Every loop over the accumulators unrolled, or GCC keeps them on the stack
        // and stores them back every block.
#pragma GCC unroll 4
    for (int i = 0; i < NR * NT; ++i) acc[i] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / qk_k; ++i) {
        if constexpr (NT == 1) {  // decode: the activations in registers for all rows
            const uint8_t* act = y[0] + i * KLanes::kBytes;
            __m512i a0 = _mm512_loadu_si512(act), a1 = _mm512_loadu_si512(act + 64),
                    a2 = _mm512_loadu_si512(act + 128), a3 = _mm512_loadu_si512(act + 192);
            // Loaded once for all rows (else GCC reloads them for each row).
            __asm__("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3));
            const __m256i sums = load32(act + KLanes::kSumsAt);
            const __m128 yd = _mm_broadcast_ss(reinterpret_cast<const float*>(act + KLanes::kScaleAt));
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) {
                const Unpacked u = unpack<kDecode, kFifth>(x[r] + i * kStride);
                const __m128 d = _mm_mul_ps(u.d, yd);
                acc[r] = add_both(acc[r], d, lanes_sums<kDecode, kFifth>(u, a0, a1, a2, a3),
                                  lanes_mins(u.mins, sums));
            }
        } else {  // prefill: one row's block unpacked once for NT tokens
            const Unpacked u = unpack<kDecode, kFifth>(x[0] + i * kStride);
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                const uint8_t* act = y[t] + i * KLanes::kBytes;
                const __m128 d =
                    _mm_mul_ps(u.d, _mm_broadcast_ss(reinterpret_cast<const float*>(act + KLanes::kScaleAt)));
                acc[t] = add_both(acc[t], d,
                                  lanes_sums<kDecode, kFifth>(
                                      u, _mm512_loadu_si512(act), _mm512_loadu_si512(act + 64),
                                      _mm512_loadu_si512(act + 128), _mm512_loadu_si512(act + 192)),
                                  lanes_mins(u.mins, load32(act + KLanes::kSumsAt)));
            }
        }
    }
    if constexpr (NR * NT == 4) {
        both_results4(acc, out);
    } else {
        out[0] = both_result(acc[0]);
    }
}

template <bool kFifth>
float dot_k64(int64_t n, const void* w, const void* a) {
    float out;
    k64_tile<kFifth, 1, 1>(n, &w, &a, &out);
    return out;
}

// Decode: four rows of a group, one sequential stream. No software prefetch:
// on Zen 4 the hardware prefetcher alone streamed one core's rows at 24-26
// GB/s, and `prefetcht2` four rows ahead cut that to 16.
template <bool kFifth>
void rows4_k64(int64_t n, const void* const* w, const void* a, float* out, ptrdiff_t) {
    k64_tile<kFifth, 4, 1>(n, w, &a, out);
}

// Prefill: four tokens per row.
template <bool kFifth>
void dot4_k64(int64_t n, const void* w, const void* const* a, float* out) {
    k64_tile<kFifth, 1, 4>(n, &w, a, out);
}

// The GGML layout against Q8_K blocks, to the same lanes: each sub-block's
// products (eight lanes) are summed across lanes, by pairs of sub-blocks at a
// time (`vphaddd` adds neighbouring lanes of two vectors within 128-bit
// halves), then the halves meet; the sums exceed 16 bits, so a 32-bit multiply
// applies the scales. Q5_K (`B` = BlockQ5_K): sub-block j's fifth bits, bit j of
// the qh bytes, moved to bit 4 of its codes.
template <typename B>
float dot_k4_ggml(int64_t n, const void* w, const void* a) {
    constexpr bool kFifth = std::is_same_v<B, BlockQ5_K>;
    const auto* x = static_cast<const B*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / qk_k; ++i) {
        __m256i qh = _mm256_setzero_si256();
        if constexpr (kFifth) qh = load32(x[i].qh);
        auto codes = [&](__m256i nibbles, int j) {
            if constexpr (!kFifth) return nibbles;
            const __m256i moved =
                j <= 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4);
            return _mm256_or_si256(nibbles, _mm256_and_si256(moved, bit4));
        };
        __m256i p[8];  // sub-block j: lane l sums its codes 4 l .. 4 l + 3 times activations
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
            const __m256i q = load32(x[i].qs + 32 * c);
            p[2 * c] =
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes(_mm256_and_si256(q, low4), 2 * c),
                                    load32(y[i].qs + 64 * c));
            p[2 * c + 1] = _mm256_dpbusd_epi32(
                _mm256_setzero_si256(),
                codes(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4), 2 * c + 1),
                load32(y[i].qs + 64 * c + 32));
        }
        const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]),
                      h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
        // Lane j of each half: sub-block j's (of 0..3, or 4..7) lanes 0..3 or 4..7.
        const __m256i g0 = _mm256_hadd_epi32(h01, h23), g1 = _mm256_hadd_epi32(h45, h67);
        const __m256i sub_block_sums = _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20),
                                                        _mm256_permute2x128_si256(g0, g1, 0x31));
        const ScaleWords sw = ggml_scale_words(x[i].scales);
        const __m256i isum = _mm256_mullo_epi32(sub_block_sums, bytes_to_lanes(sw.scales));
        // Q8_K's 16-code sums in pairs: sub-block j's activation sum in lane j.
        const __m256i bsums = _mm256_madd_epi16(load32(y[i].bsums), _mm256_set1_epi16(1));
        const __m128 d = block_scales(&x[i].d, _mm_set1_ps(y[i].d));
        acc = add_both(acc, d, isum, lanes_mins(sw.mins, bsums));
    }
    return both_result(acc);
}

// IQ4_XS: the IQ4_NL code book with a 6-bit scale (stored + 32) per sub-block.
// Both kernels look the codes up as the book plus 128 (unsigned, for
// `vpdpbusd`), gather each sub-block's sum of codes times activations into
// lane j, take 128 times the sub-block's activation sum off and multiply by
// the scale: the same exact integers in the same lanes, so IQ4_XS_64 (copied
// weights) and IQ4_XS (mapped) give the same results to the bit.
struct BookPlus128 {
    alignas(16) uint8_t bytes[16] = {};
    constexpr BookPlus128() {
        for (int i = 0; i < 16; ++i) bytes[i] = static_cast<uint8_t>(kvalues_iq4nl[i] + 128);
    }
};
constexpr BookPlus128 kBookPlus128;

inline __m512i book_plus_128() {
    return _mm512_broadcast_i32x4(
        _mm_load_si128(reinterpret_cast<const __m128i*>(kBookPlus128.bytes)));
}

// Sub-block j's signed scale in lane j, from a block's 8-byte head (d,
// scales_h, scales_l): low nibbles from scales_l's nibble j, top bits from
// scales_h's bits 2j, 2j + 1.
inline __m256i iq4_xs_scales(const uint8_t* head) {
    uint16_t high;
    uint32_t low;
    std::memcpy(&high, head + 2, 2);
    std::memcpy(&low, head + 4, 4);
    const uint64_t bytes = _pdep_u64(low, 0x0F0F0F0F0F0F0F0F) | _pdep_u64(high, 0x3030303030303030);
    return _mm256_sub_epi32(bytes_to_lanes(bytes), _mm256_set1_epi32(32));
}

// 64 code bytes' low and high nibbles through the book (the byte shuffle reads
// an index's low four bits, and zeroes where the top bit is set: both masked).
inline void iq4_lookup(__m512i q, __m512i book, __m512i& low, __m512i& high) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    low = _mm512_shuffle_epi8(book, _mm512_and_si512(q, low4));
    high = _mm512_shuffle_epi8(book, _mm512_and_si512(_mm512_srli_epi16(q, 4), low4));
}

// Sub-block j's code sums (book + 128) in lane j -> scale j times the sums of
// the book's values: sums below 32 * 241 * 128 in magnitude, times at most 32.
inline __m256i iq4_xs_block_sums(__m256i code_sums, __m256i act_sums, __m256i scales) {
    return _mm256_mullo_epi32(_mm256_sub_epi32(code_sums, _mm256_slli_epi32(act_sums, 7)), scales);
}

inline __m256 add_scaled(__m256 acc, __m128 d, __m256i lanes) {
    return _mm256_fmadd_ps(_mm256_broadcastss_ps(d), _mm256_cvtepi32_ps(lanes), acc);
}

// A block of IQ4_XS_64 or Q3_K_64 unpacked once for every activation row it
// meets: its four runs of codes, what its format needs for the scales, and d
// as a float in lane 0.
struct OneScaleUnpacked {
    __m512i codes[4];
    __m256i scales, pairs;  // IQ4_XS, Q2_K: the scales; Q3_K: the scales as int16 pairs
    __m128 d;
};

inline __m128 half_in_lane0(const uint8_t* p) {
    int32_t d = 0;
    std::memcpy(&d, p, 2);
    return _mm_cvtph_ps(_mm_cvtsi32_si128(d));
}

// The formats with one float scale per block (no minimums), for `lanes_tile`.
struct Iq4XsLanes {
    static constexpr int64_t kBlockBytes = sizeof(BlockIQ4_XS);
    static OneScaleUnpacked unpack(const uint8_t* block) {
        OneScaleUnpacked u;
        const __m512i book = book_plus_128();
        __m512i q0 = _mm512_loadu_si512(block + 8), q1 = _mm512_loadu_si512(block + 72);
        __asm__("" : "+v"(q0), "+v"(q1));  // as in `unpack`
        iq4_lookup(q0, book, u.codes[0], u.codes[1]);
        iq4_lookup(q1, book, u.codes[2], u.codes[3]);
        u.scales = iq4_xs_scales(block);
        u.d = half_in_lane0(block);
        return u;
    }
    // Against one KLanes block (runs a0..a3, sums at `act`).
    static __m256i lanes(const OneScaleUnpacked& w, __m512i a0, __m512i a1, __m512i a2, __m512i a3,
                         const uint8_t* act) {
        const __m512i s = two_runs(w.codes[0], a0, w.codes[2], a2);
        const __m512i t = two_runs(w.codes[1], a1, w.codes[3], a3);
        return iq4_xs_block_sums(fold(_mm512_add_epi32(s, t)), load32(act + KLanes::kSumsAt),
                                 w.scales);
    }
    static __m256 add(__m256 acc, __m128 d, const OneScaleUnpacked& u, __m512i a0, __m512i a1,
                      __m512i a2, __m512i a3, const uint8_t* act) {
        return add_scaled(acc, d, lanes(u, a0, a1, a2, a3, act));
    }
};

// Q3_K: sixteen sub-blocks of 16 codes (two bits and a high bit, stored + 4),
// a 6-bit scale each (stored + 32). Q3_K_64's runs 0 and 1 hold the first
// sub-block of each KLanes sub-block j, runs 2 and 3 the second, so two folded
// sums give sub-blocks 2 j and 2 j + 1 in lane j; each takes its own scale
// (a lane's even and odd int16 scale), and 4 times the scaled activation sums
// (Q8_K's 16-code sums against the scales in pairs) come off. The GGML
// kernel builds the same lanes.
inline __m256i q3_k_scales_lanes(const uint8_t* bytes) {
    const Q3ScaleWords w = q3_k_scale_words(bytes);
    const __m128i b = _mm_set_epi64x(static_cast<int64_t>(w.second), static_cast<int64_t>(w.first));
    // Scales 2 j and 2 j + 1 in lane j.
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(b), _mm256_set1_epi16(32));
}

// Ranges: a code is at most 7, so a lane of two runs holds at most
// 2 * 4 * 7 * 128 in magnitude and a fold twice that, 14336: the two sub-blocks'
// sums pair up as int16 for one `vpmaddwd` by the scales' pairs (as Q2_K's do),
// where two 32-bit multiplies and an addition gave the same integers.
inline __m256i q3_k_block_sums(__m256i even_sums, __m256i odd_sums, __m256i bsums, __m256i pairs) {
    const __m256i sums = _mm256_blend_epi16(even_sums, _mm256_slli_epi32(odd_sums, 16), 0xAA);
    return _mm256_sub_epi32(_mm256_madd_epi16(sums, pairs),
                            _mm256_slli_epi32(_mm256_madd_epi16(bsums, pairs), 2));
}

struct Q3KLanes {
    static constexpr int64_t kBlockBytes = sizeof(BlockQ3_K);
    static OneScaleUnpacked unpack(const uint8_t* block) {
        OneScaleUnpacked u;
        __m512i q = _mm512_loadu_si512(block + 32);
        __asm__("" : "+v"(q));
        const __m512i three = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
        uint64_t high[4];
        std::memcpy(high, block, sizeof high);
        u.codes[0] = _mm512_and_si512(q, three);
        u.codes[1] = _mm512_and_si512(_mm512_srli_epi16(q, 2), three);
        u.codes[2] = _mm512_and_si512(_mm512_srli_epi16(q, 4), three);
        u.codes[3] = _mm512_and_si512(_mm512_srli_epi16(q, 6), three);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r)
            u.codes[r] = _mm512_mask_add_epi8(u.codes[r], high[r], u.codes[r], four);
        u.pairs = q3_k_scales_lanes(block + 96);
        u.d = half_in_lane0(block + 108);
        return u;
    }
    static __m256i lanes(const OneScaleUnpacked& w, __m512i a0, __m512i a1, __m512i a2, __m512i a3,
                         const uint8_t* act) {
        const __m512i s = two_runs(w.codes[0], a0, w.codes[1], a1);
        const __m512i t = two_runs(w.codes[2], a2, w.codes[3], a3);
        return q3_k_block_sums(fold(s), fold(t), load32(act + KLanes::kBsumsAt), w.pairs);
    }
    static __m256 add(__m256 acc, __m128 d, const OneScaleUnpacked& u, __m512i a0, __m512i a1,
                      __m512i a2, __m512i a3, const uint8_t* act) {
        return add_scaled(acc, d, lanes(u, a0, a1, a2, a3, act));
    }
};

// Q2_K: sixteen sub-blocks of 16 two-bit codes, a 4-bit scale and a 4-bit
// minimum each (the low and high nibbles of `scales`), d and dmin. Q2_K_64's
// runs are Q3_K_64's low bits, so the same folds give sub-blocks 2 j and
// 2 j + 1 in lane j, each at most 4 * 4 * 3 * 128 in magnitude: they pair up
// as int16 for one `vpmaddwd` by the scales' pairs, and the minimums take
// Q8_K's 16-code sums the same way. A block's minimum term comes off the same
// accumulator, after its scaled term, in both kernels.
inline __m256i q2_k_block_sums(__m256i even_sums, __m256i odd_sums, __m256i scale_bytes16) {
    const __m256i pairs = _mm256_blend_epi16(even_sums, _mm256_slli_epi32(odd_sums, 16), 0xAA);
    return _mm256_madd_epi16(pairs, _mm256_and_si256(scale_bytes16, _mm256_set1_epi16(0xF)));
}

inline __m256 add_q2_k_block(__m256 acc, __m128 d, __m256i isum, __m256i scale_bytes16,
                             __m256i bsums) {
    const __m256i msum = _mm256_madd_epi16(bsums, _mm256_srli_epi16(scale_bytes16, 4));
    acc = add_scaled(acc, d, isum);
    return _mm256_fnmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(d)), _mm256_cvtepi32_ps(msum),
                            acc);
}

inline void two_bit_runs(__m512i q, __m512i* codes) {
    const __m512i three = _mm512_set1_epi8(3);
    codes[0] = _mm512_and_si512(q, three);
    codes[1] = _mm512_and_si512(_mm512_srli_epi16(q, 2), three);
    codes[2] = _mm512_and_si512(_mm512_srli_epi16(q, 4), three);
    codes[3] = _mm512_and_si512(_mm512_srli_epi16(q, 6), three);
}

struct Q2KLanes {
    static constexpr int64_t kBlockBytes = sizeof(BlockQ2_K);
    static OneScaleUnpacked unpack(const uint8_t* block) {
        OneScaleUnpacked u;
        __m512i q = _mm512_loadu_si512(block + 16);
        __asm__("" : "+v"(q));
        two_bit_runs(q, u.codes);
        u.scales = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block)));
        int32_t both;
        std::memcpy(&both, block + 80, 4);
        u.d = _mm_cvtph_ps(_mm_cvtsi32_si128(both));  // d, dmin
        return u;
    }
    static __m256 add(__m256 acc, __m128 d, const OneScaleUnpacked& u, __m512i a0, __m512i a1,
                      __m512i a2, __m512i a3, const uint8_t* act) {
        const __m512i s = two_runs(u.codes[0], a0, u.codes[1], a1);
        const __m512i t = two_runs(u.codes[2], a2, u.codes[3], a3);
        return add_q2_k_block(acc, d, q2_k_block_sums(fold(s), fold(t), u.scales), u.scales,
                              load32(act + KLanes::kBsumsAt));
    }
};

// `NR` rows of a lanes format (`Fmt`: Iq4XsLanes, Q3KLanes, Q2KLanes) against
// `NT` KLanes rows (one of them 1), as `k64_tile`. `Fmt::add` adds a block's
// terms to a row's accumulator, given d (and Q2_K's dmin) times the
// activations' scale in lanes 0 (and 1).
template <typename Fmt, int NR, int NT>
void lanes_tile(int64_t n, const void* const* w, const void* const* a, float* out) {
    static_assert((NR == 1 || NT == 1) && (NR * NT == 1 || NR * NT == 4));
    constexpr int64_t kStride = 4 * Fmt::kBlockBytes;
    const uint8_t* x[NR];
    const uint8_t* y[NT];
    __m256 acc[NR * NT];
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) x[r] = static_cast<const uint8_t*>(w[r]);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) y[t] = static_cast<const uint8_t*>(a[t]);
#pragma GCC unroll 4
    for (int i = 0; i < NR * NT; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / qk_k; ++i) {
        if constexpr (NT == 1) {
            const uint8_t* act = y[0] + i * KLanes::kBytes;
            __m512i a0 = _mm512_loadu_si512(act), a1 = _mm512_loadu_si512(act + 64),
                    a2 = _mm512_loadu_si512(act + 128), a3 = _mm512_loadu_si512(act + 192);
            __asm__("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3));
            const __m128 yd =
                _mm_broadcast_ss(reinterpret_cast<const float*>(act + KLanes::kScaleAt));
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) {
                const OneScaleUnpacked u = Fmt::unpack(x[r] + i * kStride);
                acc[r] = Fmt::add(acc[r], _mm_mul_ps(u.d, yd), u, a0, a1, a2, a3, act);
            }
        } else {
            const OneScaleUnpacked u = Fmt::unpack(x[0] + i * kStride);
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                const uint8_t* act = y[t] + i * KLanes::kBytes;
                const __m128 d = _mm_mul_ps(
                    u.d, _mm_broadcast_ss(reinterpret_cast<const float*>(act + KLanes::kScaleAt)));
                acc[t] =
                    Fmt::add(acc[t], d, u, _mm512_loadu_si512(act), _mm512_loadu_si512(act + 64),
                             _mm512_loadu_si512(act + 128), _mm512_loadu_si512(act + 192), act);
            }
        }
    }
    if constexpr (NR * NT == 4) {
        _mm_storeu_ps(out, hsum4(acc[0], acc[1], acc[2], acc[3]));
    } else {
        out[0] = hsum(acc[0]);
    }
}

template <typename Fmt>
float dot_lanes(int64_t n, const void* w, const void* a) {
    float out;
    lanes_tile<Fmt, 1, 1>(n, &w, &a, &out);
    return out;
}

template <typename Fmt>
void rows4_lanes(int64_t n, const void* const* w, const void* a, float* out, ptrdiff_t) {
    lanes_tile<Fmt, 4, 1>(n, w, &a, out);
}

template <typename Fmt>
void dot4_lanes(int64_t n, const void* w, const void* const* a, float* out) {
    lanes_tile<Fmt, 1, 4>(n, &w, a, out);
}

// Q2_K in the GGML layout, as Q3_K's kernel without the high bits.
float dot_q2_k(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ2_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i three = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / qk_k; ++i) {
        __m256i p[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
            const int c = j / 4, k = j % 4;
            const __m256i codes =
                _mm256_and_si256(_mm256_srli_epi16(load32(x[i].qs + 32 * c), 2 * k), three);
            p[j] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes, load32(y[i].qs + 32 * j));
        }
        const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]),
                      h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
        const __m256i g0 = _mm256_hadd_epi32(h01, h23), g1 = _mm256_hadd_epi32(h45, h67);
        const __m256i scales =
            _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
        const __m256i isum = q2_k_block_sums(_mm256_permute2x128_si256(g0, g1, 0x20),
                                             _mm256_permute2x128_si256(g0, g1, 0x31), scales);
        acc = add_q2_k_block(acc, block_scales(&x[i].d, _mm_set1_ps(y[i].d)), isum, scales,
                             load32(y[i].bsums));
    }
    return hsum(acc);
}

// Q3_K in the GGML layout against Q8_K blocks: the 32 codes of each (c, k)
// (elements 128 c + 32 k + l: bits 2 k of qs[32 c + l], the high bit bit 4 c + k
// of hmask[l]) against 32 activations, then the Q4_K kernel's horizontal adds,
// whose lanes 0..3 and 4..7 of each 32 are sub-blocks 2 j and 2 j + 1.
float dot_q3_k(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockQ3_K*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m256i three = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / qk_k; ++i) {
        const __m256i hm = load32(x[i].hmask);
        __m256i p[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
            const int c = j / 4, k = j % 4, bit = 4 * c + k;
            const __m256i low =
                _mm256_and_si256(_mm256_srli_epi16(load32(x[i].qs + 32 * c), 2 * k), three);
            const __m256i moved =
                bit >= 2 ? _mm256_srli_epi16(hm, bit - 2) : _mm256_slli_epi16(hm, 2 - bit);
            p[j] = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                       _mm256_or_si256(low, _mm256_and_si256(moved, four)),
                                       load32(y[i].qs + 32 * j));
        }
        const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]),
                      h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
        const __m256i g0 = _mm256_hadd_epi32(h01, h23), g1 = _mm256_hadd_epi32(h45, h67);
        const __m256i isum = q3_k_block_sums(_mm256_permute2x128_si256(g0, g1, 0x20),
                                             _mm256_permute2x128_si256(g0, g1, 0x31),
                                             load32(y[i].bsums), q3_k_scales_lanes(x[i].scales));
        acc = add_scaled(acc,
                         _mm_mul_ps(half_in_lane0(reinterpret_cast<const uint8_t*>(&x[i].d)),
                                    _mm_set1_ps(y[i].d)),
                         isum);
    }
    return hsum(acc);
}

// The GGML layout against Q8_K blocks: 64 code bytes hold four sub-blocks' first
// 16 elements (low nibbles) and last 16 (high), so the activations are gathered
// to match (the 16-byte quarters 0, 2, 4, 6 and 1, 3, 5, 7 of 128 codes);
// lanes 4 k .. 4 k + 3 then hold sub-block k's products, and two permutes and
// a fold add each sub-block's into lane j.
struct SubBlockLanes {
    alignas(64) uint32_t even[16], odd[16];
    constexpr SubBlockLanes() : even{}, odd{} {
        for (int l = 0; l < 16; ++l) {
            // Lane l < 8: sub-block l's lanes 0 and 2 (of the first register for
            // l < 4, the second's from 16 on); lanes 8 + j its lanes 1 and 3.
            const int j = l % 8, base = (j < 4 ? 4 * j : 16 + 4 * (j - 4)) + l / 8;
            even[l] = static_cast<uint32_t>(base);
            odd[l] = static_cast<uint32_t>(base + 2);
        }
    }
};
constexpr SubBlockLanes kSubBlockLanes;

float dot_iq4_xs(int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const BlockIQ4_XS*>(w);
    const auto* y = static_cast<const BlockQ8_K*>(a);
    const __m512i book = book_plus_128();
    const __m512i even = _mm512_load_si512(kSubBlockLanes.even),
                  odd = _mm512_load_si512(kSubBlockLanes.odd);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / qk_k; ++i) {
        __m512i v[2];
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            __m512i low, high;
            iq4_lookup(_mm512_loadu_si512(x[i].qs + 64 * h), book, low, high);
            const __m512i l = _mm512_loadu_si512(y[i].qs + 128 * h),
                          u = _mm512_loadu_si512(y[i].qs + 128 * h + 64);
            v[h] = _mm512_dpbusd_epi32(
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), low, _mm512_shuffle_i64x2(l, u, 0x88)),
                high, _mm512_shuffle_i64x2(l, u, 0xDD));
        }
        const __m512i r = _mm512_add_epi32(_mm512_permutex2var_epi32(v[0], even, v[1]),
                                           _mm512_permutex2var_epi32(v[0], odd, v[1]));
        const __m256i sums =
            _mm256_add_epi32(_mm512_castsi512_si256(r), _mm512_extracti64x4_epi64(r, 1));
        // Q8_K's 16-code sums in pairs: sub-block j's activation sum in lane j.
        const __m256i act_sums = _mm256_madd_epi16(load32(y[i].bsums), _mm256_set1_epi16(1));
        const __m256i isum = iq4_xs_block_sums(
            sums, act_sums, iq4_xs_scales(reinterpret_cast<const uint8_t*>(&x[i])));
        acc = add_scaled(acc, block_scales(&x[i].d, _mm_set1_ps(y[i].d)), isum);
    }
    return hsum(acc);
}

}  // namespace

DotKernels build(const DotKernels& base) {
    DotKernels k = base;
    // A GGML type's one-row kernel (mapped weights) and its layout's kernels,
    // which copied weights are repacked for.
    auto set = [&](TensorType ggml, DotFn ggml_dot, TensorType layout, DotFn dot, Dot4Fn dot4,
                   Rows4Fn rows4, RowGroupsFn groups) {
        const auto g = static_cast<size_t>(ggml), l = static_cast<size_t>(layout);
        k.dot[g] = ggml_dot;
        k.dot4[g] = nullptr;
        k.rows4[g] = nullptr;
        k.layout[g] = ActLayout::Blocks;
        k.dot[l] = dot;
        k.dot4[l] = dot4;
        k.rows4[l] = rows4;
        k.row_groups[l] = groups;
        k.layout[l] = ActLayout::KLanes;
        k.repacked[g] = layout;
    };
    set(TensorType::Q4_K, dot_k4_ggml<BlockQ4_K>, TensorType::Q4_K_64, dot_k64<false>,
        dot4_k64<false>, rows4_k64<false>, row_groups4<K64<false>::kBlockBytes, rows4_k64<false>>);
    set(TensorType::Q5_K, dot_k4_ggml<BlockQ5_K>, TensorType::Q5_K_64, dot_k64<true>,
        dot4_k64<true>, rows4_k64<true>, row_groups4<K64<true>::kBlockBytes, rows4_k64<true>>);
    set(TensorType::IQ4_XS, dot_iq4_xs, TensorType::IQ4_XS_64, dot_lanes<Iq4XsLanes>,
        dot4_lanes<Iq4XsLanes>, rows4_lanes<Iq4XsLanes>,
        row_groups4<Iq4XsLanes::kBlockBytes, rows4_lanes<Iq4XsLanes>>);
    set(TensorType::Q3_K, dot_q3_k, TensorType::Q3_K_64, dot_lanes<Q3KLanes>, dot4_lanes<Q3KLanes>,
        rows4_lanes<Q3KLanes>, row_groups4<Q3KLanes::kBlockBytes, rows4_lanes<Q3KLanes>>);
    set(TensorType::Q2_K, dot_q2_k, TensorType::Q2_K_64, dot_lanes<Q2KLanes>, dot4_lanes<Q2KLanes>,
        rows4_lanes<Q2KLanes>, row_groups4<Q2KLanes::kBlockBytes, rows4_lanes<Q2KLanes>>);
    return k;
}

}  // namespace strata::ops::k4_lanes

#pragma GCC pop_options
#pragma GCC diagnostic pop

#endif
