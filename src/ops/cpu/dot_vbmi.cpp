// AVX-512 VBMI kernels for the 32-element block formats (Q4_0, Q5_0, Q8_0,
// IQ4_NL, MXFP4) against Q8_0 activations laid out as `ActLayout::Groups4` (dot.h).
//
// A decode step reads every weight byte once, so a kernel must consume bytes as
// fast as one core's share of the memory bandwidth delivers them. The AVX-512
// kernels of dot_x86.inc spend about 30 instructions per two blocks (scales
// converted one by one, the sign trick on every activation) and so reach only
// about half that on MXFP4. These take four blocks per step, in a constant number
// of instructions:
//  - one or two 64-byte loads, and a `vpermt2b` per register that gathers the
//    four blocks' codes into place: one register for the first 16 codes of each
//    block, one for the last 16 (a 4-bit block's low and high nibbles);
//  - codes are made unsigned by an offset o (a code book lookup that adds it, or
//    Q8_0's top bit flipped), so `vpdpbusd` multiplies them by the signed
//    activation codes as they are; o times the activations' sum comes off by
//    starting the accumulator at o times the layout's precomputed minus sums;
//  - one permute gathers the four scales into lanes, converted in one or two
//    instructions (MXFP4: see `Mxfp4`) and multiplied by the activations'
//    scales, which the layout already holds per lane.
// The integer sums are exact, so every block's term is the reference's; only
// the order in which the 16 lanes' float terms are added differs. Over the GGML
// layout (mapped weights), decode takes four weight rows per call (`rows4`),
// sharing each activation group's loads and prefetching the next four rows as
// it reads these, and prefill four tokens per weight row (`dot4`). Weights
// copied to RAM are repacked with eight rows interleaved (the _R8 layouts, see
// `r8_tile`), which decode reads as one stream and prefill unpacks once for four
// tokens and four rows.

#include "ops/cpu/dot.h"

#include "tensor/blocks.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && !defined(__clang__)

#include <immintrin.h>

// See dot_x86.cpp for why these warnings are off inside the target region.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi")

namespace strata::ops::vbmi {
namespace {

// A byte index vector for the permutes.
struct Index {
    alignas(64) uint8_t b[64] = {};
    __m512i load() const { return _mm512_load_si512(b); }
};

// Codes 0..15 of block k at bytes 16k.., from `first` in a block of `bb` bytes
// (`skip` bytes before the permute's sources begin).
constexpr Index codes_index(int bb, int first, int skip = 0) {
    Index x;
    for (int k = 0; k < 4; ++k) {
        for (int m = 0; m < 16; ++m)
            x.b[16 * k + m] = static_cast<uint8_t>(bb * k + first + m - skip);
    }
    return x;
}

// A 2-byte scale at the start of each block into 16-bit word 4k + j (j = 0..3).
constexpr Index half_scale_index(int bb) {
    Index x;
    for (int w = 0; w < 16; ++w) {
        x.b[2 * w] = static_cast<uint8_t>(bb * (w / 4));
        x.b[2 * w + 1] = static_cast<uint8_t>(bb * (w / 4) + 1);
    }
    return x;
}

// A 1-byte exponent at the start of each block into byte `at` of lane 4k + j.
constexpr Index exponent_index(int bb, int at) {
    Index x;
    for (int w = 0; w < 16; ++w) x.b[4 * w + at] = static_cast<uint8_t>(bb * (w / 4));
    return x;
}

// The first `k` bytes of a 64-byte load (none for k <= 0, all for k >= 64).
inline __mmask64 first_bytes(int64_t k) {
    if (k <= 0) return 0;
    if (k >= 64) return ~__mmask64{0};
    return (__mmask64{1} << k) - 1;
}

// The 64 bytes at p + off of a group whose first `valid` bytes exist. Masked-out
// bytes read as zero and cannot fault, so a row's last, partial group never
// reads past the tensor.
template <bool Full>
inline __m512i load64(const uint8_t* p, int64_t off, int64_t valid) {
    if constexpr (Full) {
        if (off + 64 <= valid) return _mm512_loadu_si512(p + off);
    }
    return _mm512_maskz_loadu_epi8(first_bytes(valid - off), p + off);
}

// Four blocks unpacked: unsigned codes (weight code + the format's offset) of the
// first and second halves, and per lane the weight's scale (see each format's
// `scale` for what it holds).
struct Group {
    __m512i lo, hi;
    __m512 scale;
    bool rare = false;  // MXFP4 only: see `Mxfp4`
};

inline __m512i book(const int8_t* values, int offset) {
    alignas(16) int8_t b[16];
    for (int i = 0; i < 16; ++i) b[i] = static_cast<int8_t>(values[i] + offset);
    return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(b)));
}

// The 4-bit formats: `First` is where a block's 16 code bytes start; element j
// is the low nibble of byte j, element j + 16 its high nibble.
template <int BB, int First>
struct Nibbles {
    template <bool Full>
    static __m512i gather(const uint8_t* p, int64_t valid, __m512i& head) {
        static constexpr Index idx = codes_index(BB, First);
        head = load64<Full>(p, 0, valid);
        const __m512i tail = load64<false>(p, 64, std::min<int64_t>(valid, 4 * BB));
        return _mm512_permutex2var_epi8(head, idx.load(), tail);
    }
    static __m512i low(__m512i q) { return _mm512_and_si512(q, _mm512_set1_epi8(0x0F)); }
    static __m512i high(__m512i q) {
        return _mm512_and_si512(_mm512_srli_epi16(q, 4), _mm512_set1_epi8(0x0F));
    }
};

inline __m512 half_scales(__m512i bytes, const Index& idx) {
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(idx.load(), bytes)));
}

// Q4_0: codes 0..15 are the weight + 8, already unsigned.
struct Q4_0 {
    static constexpr int kBlockBytes = 18, kShift = 3;
    using N = Nibbles<18, 2>;
    template <bool Full>
    static Group load(const uint8_t* p, int64_t valid) {
        static constexpr Index scale_idx = half_scale_index(18);
        __m512i head;
        const __m512i q = N::gather<Full>(p, valid, head);
        return {N::low(q), N::high(q), half_scales(head, scale_idx)};
    }
    static __m512 act_scale(__m512 d) { return d; }
    static __m512 scale(const Group& g, __m512 d) { return _mm512_mul_ps(g.scale, d); }
};

// Q5_0: codes 0..31 (the weight + 16), a nibble as in Q4_0 plus a fifth bit:
// bit j of a block's 32-bit qh belongs to element j. The group's qh words give
// one 64-bit mask per half (16 bits per block, in the codes' order) under which
// 16 is added to the nibbles: general-register work, off the vector units.
// llama.cpp stores Q4_K_M's Q4_K tensors whose rows are not a multiple of 256
// long as Q5_0 (the experts' down matrices of DeepSeek-MoE and Qwen1.5-MoE).
struct Q5_0 {
    static constexpr int kBlockBytes = 22, kShift = 4;
    using N = Nibbles<22, 6>;
    template <bool Full>
    static Group load(const uint8_t* p, int64_t valid) {
        static constexpr Index scale_idx = half_scale_index(22);
        __m512i head;
        const __m512i q = N::gather<Full>(p, valid, head);
        // Block 3's scale is at byte 66, past `head`: both loads feed the permute.
        const __m512i tail = load64<false>(p, 64, std::min<int64_t>(valid, 4 * kBlockBytes));
        const __m512 scale = _mm512_cvtph_ps(
            _mm512_castsi512_si256(_mm512_permutex2var_epi8(head, scale_idx.load(), tail)));
        uint64_t first = 0, second = 0;
        const int blocks = Full ? 4 : static_cast<int>(valid / kBlockBytes);
        for (int k = 0; k < blocks; ++k) {
            uint32_t qh;
            std::memcpy(&qh, p + kBlockBytes * k + 2, 4);
            first |= static_cast<uint64_t>(qh & 0xFFFF) << (16 * k);
            second |= static_cast<uint64_t>(qh >> 16) << (16 * k);
        }
        const __m512i sixteen = _mm512_set1_epi8(16), lo = N::low(q), hi = N::high(q);
        return {_mm512_mask_add_epi8(lo, first, lo, sixteen),
                _mm512_mask_add_epi8(hi, second, hi, sixteen), scale};
    }
    static __m512 act_scale(__m512 d) { return d; }
    static __m512 scale(const Group& g, __m512 d) { return _mm512_mul_ps(g.scale, d); }
};

// IQ4_NL: the code book (-127..113) plus 128, looked up with `vpermb` (see Mxfp4).
struct Iq4Nl {
    static constexpr int kBlockBytes = 18, kShift = 7;
    using N = Nibbles<18, 2>;
    template <bool Full>
    static Group load(const uint8_t* p, int64_t valid) {
        static constexpr Index scale_idx = half_scale_index(18);
        const __m512i b = book(kvalues_iq4nl, 128);
        __m512i head;
        const __m512i q = N::gather<Full>(p, valid, head);
        return {_mm512_permutexvar_epi8(q, b), _mm512_permutexvar_epi8(_mm512_srli_epi16(q, 4), b),
                half_scales(head, scale_idx)};
    }
    static __m512 act_scale(__m512 d) { return d; }
    static __m512 scale(const Group& g, __m512 d) { return _mm512_mul_ps(g.scale, d); }
};

// MXFP4: the doubled code book (-12..12) plus 16, looked up with `vpermb`, which
// reads only an index's low six bits: the book repeated four times makes the
// nibble mask unnecessary. The weight scale is 2^(e - 127) / 2 for the block's
// exponent byte e. The reference multiplies that by the activation scale and
// rounds once; here `act_scale` halves the activation scale (exact: it came from
// a half, so it is never subnormal in float) and the group holds 2^(e - 127)
// built from e's bits (e shifted into the exponent field; e = 0 gives 0, which
// the max turns into 2^-127, the subnormal 0x400000), so the one multiplication
// rounds the same exact product. e = 255 would give infinity, where the
// reference has 2^127: such a group (never seen in real weights) takes
// `vscalefps` instead, which rounds the same product too.
struct Mxfp4 {
    static constexpr int kBlockBytes = 17, kShift = 4;
    using N = Nibbles<17, 1>;
    template <bool Full>
    static Group load(const uint8_t* p, int64_t valid) {
        static constexpr Index exp_idx = exponent_index(17, 3);
        __m512i head;
        const __m512i q = N::gather<Full>(p, valid, head);
        return group(q, _mm512_maskz_permutexvar_epi8(0x8888888888888888ull, exp_idx.load(), head));
    }
    // The group of block k's 16 code bytes at bytes 16k of `q` and its exponent e
    // in the top byte of lanes 4k..4k+3 of `e`.
    static Group group(__m512i q, __m512i e) {
        const __m512i b = book(kvalues_mxfp4, 16);
        Group g{_mm512_permutexvar_epi8(q, b), _mm512_permutexvar_epi8(_mm512_srli_epi16(q, 4), b),
                _mm512_castsi512_ps(
                    _mm512_max_epu32(_mm512_srli_epi32(e, 1), _mm512_set1_epi32(0x400000)))};
        if (_mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(static_cast<int>(0xFF000000u))) != 0)
            [[unlikely]] {
            g.rare = true;
            g.scale =
                _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(e, 24)), _mm512_set1_ps(127.0f));
        }
        return g;
    }
    static __m512 act_scale(__m512 d) { return _mm512_mul_ps(d, _mm512_set1_ps(0.5f)); }
    static __m512 scale(const Group& g, __m512 d) {
        if (g.rare) [[unlikely]]
            return _mm512_scalef_ps(d, g.scale);
        return _mm512_mul_ps(g.scale, d);
    }
};

// MXFP4 repacked at load (MXFP4_X4, tensor/repack.h): a group's codes are one
// 64-byte load already in place, and its four exponents one 4-byte broadcast
// that per-lane shifts move into place, so two of the four permutes a GGML
// group takes (the code gather and the exponent permute) are gone. The layout
// stores each exponent e as e ^ 0x80, a signed byte worth e - 128, so an
// arithmetic shift gives the power of two of the reference's scale
// 2^(e - 128) (the E8M0 half) and `vscalefps` multiplies the activation scale
// by it: one rounding of the same exact product for every e, 0 and 255
// included, so no group needs a check or another path.
struct Mxfp4X4 {
    static constexpr int kBlockBytes = 17, kShift = 4;
    template <bool Full>
    static Group load(const uint8_t* p, int64_t valid) {
        __m512i q;
        uint32_t exps = 0;
        if constexpr (Full) {
            q = _mm512_loadu_si512(p);
            std::memcpy(&exps, p + 64, 4);
        } else {  // a row's last r < 4 blocks: 16 r code bytes, then r exponents
            const int64_t r = valid / kBlockBytes;
            q = _mm512_maskz_loadu_epi8(first_bytes(16 * r), p);
            std::memcpy(&exps, p + 16 * r, static_cast<size_t>(r));
        }
        // Exponent byte k into the top byte of lanes 4k..4k+3, then down, signed.
        const __m512i up = _mm512_set_epi32(0, 0, 0, 0, 8, 8, 8, 8, 16, 16, 16, 16, 24, 24, 24, 24);
        const __m512i e =
            _mm512_srai_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(static_cast<int>(exps)), up), 24);
        const __m512i b = book(kvalues_mxfp4, 16);
        return {_mm512_permutexvar_epi8(q, b), _mm512_permutexvar_epi8(_mm512_srli_epi16(q, 4), b),
                _mm512_cvtepi32_ps(e)};
    }
    static __m512 act_scale(__m512 d) { return d; }
    static __m512 scale(const Group& g, __m512 d) { return _mm512_scalef_ps(d, g.scale); }
};

// Q8_0: signed codes with the top bit flipped are the code + 128. A group spans
// 136 bytes, so the second halves are gathered from a window 8 bytes later.
struct Q8_0 {
    static constexpr int kBlockBytes = 34, kShift = 7;
    template <bool Full>
    static Group load(const uint8_t* p, int64_t valid) {
        static constexpr Index lo_idx = codes_index(34, 2), hi_idx = codes_index(34, 18, 8);
        static constexpr Index scale_idx = half_scale_index(34);
        const __m512i a = load64<Full>(p, 0, valid), b = load64<Full>(p, 64, valid);
        const __m512i a8 = load64<Full>(p, 8, valid), b8 = load64<Full>(p, 72, valid);
        const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
        const __m512 s = _mm512_cvtph_ps(
            _mm512_castsi512_si256(_mm512_permutex2var_epi8(a, scale_idx.load(), b)));
        return {_mm512_xor_si512(_mm512_permutex2var_epi8(a, lo_idx.load(), b), flip),
                _mm512_xor_si512(_mm512_permutex2var_epi8(a8, hi_idx.load(), b8), flip), s};
    }
    static __m512 act_scale(__m512 d) { return d; }
    static __m512 scale(const Group& g, __m512 d) { return _mm512_mul_ps(g.scale, d); }
};

// One activation row's side of a group, as every weight row takes it: the
// accumulator's start (minus sums times the format's offset), the codes, and the
// scales as the format's `scale` takes them.
struct Act {
    __m512i start, lo, hi;
    __m512 d;
};

template <typename F>
inline Act act(const uint8_t* y) {
    return {_mm512_slli_epi32(_mm512_loadu_si512(y + Groups4::kNsumAt), F::kShift),
            _mm512_loadu_si512(y), _mm512_loadu_si512(y + Groups4::kSecondAt),
            F::act_scale(_mm512_loadu_ps(y + Groups4::kScaleAt))};
}

// One group's term for one weight row and one activation row, added to `acc`.
template <typename F>
inline __m512 step(const Group& q, const Act& y, __m512 acc) {
    __m512i s = _mm512_dpbusd_epi32(y.start, q.lo, y.lo);
    s = _mm512_dpbusd_epi32(s, q.hi, y.hi);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), F::scale(q, y.d), acc);
}

// `NR` weight rows against `NT` activation rows (one of them 1). Each pair sees
// the same operations in the same order whatever NR and NT are, so batching
// never changes a result. One accumulator per pair: a group's other work takes
// longer than the FMA's latency, and the _R8 kernels, which must add each row's
// terms in this order, then need only four per activation row.
template <typename F, int NR, int NT>
void dot_tile(int64_t n, const void* const* w, const void* const* a, float* out,
              ptrdiff_t prefetch = 0) {
    static_assert(NR == 1 || NT == 1);
    constexpr int64_t bb = F::kBlockBytes, gb = 4 * F::kBlockBytes;
    const int64_t n_blocks = n / 32, full = n_blocks / 4, rest = n_blocks % 4;
    const uint8_t* x[NR];
    const uint8_t* y[NT];
    __m512 acc[NR * NT];
    for (int r = 0; r < NR; ++r) x[r] = static_cast<const uint8_t*>(w[r]);
    for (int t = 0; t < NT; ++t) y[t] = static_cast<const uint8_t*>(a[t]);
    for (int i = 0; i < NR * NT; ++i) acc[i] = _mm512_setzero_ps();
    // Pair (r, t) is accumulator r + t (one of them is 0).
    int64_t g = 0;
    for (; g + 2 <= full; g += 2) {
        if constexpr (NT == 1) {
            // The same bytes `prefetch` further on: the next rows of a matrix
            // while these are multiplied, asked for as evenly as they are used.
            if (prefetch) {
#pragma GCC unroll 4
                for (int r = 0; r < NR; ++r) {
                    const uint8_t* ahead = x[r] + prefetch + g * gb;
                    for (int64_t off = 0; off < 2 * gb; off += 64)
                        __builtin_prefetch(ahead + off, 0, 1);
                    __builtin_prefetch(ahead + 2 * gb - 1, 0, 1);
                }
            }
            const Act a0 = act<F>(y[0] + g * Groups4::kBytes),
                      a1 = act<F>(y[0] + (g + 1) * Groups4::kBytes);
            // Unrolled, so the accumulators stay in registers.
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) {
                acc[r] = step<F>(F::template load<true>(x[r] + g * gb, gb), a0, acc[r]);
                acc[r] = step<F>(F::template load<true>(x[r] + (g + 1) * gb, gb), a1, acc[r]);
            }
        } else {
            const Group q0 = F::template load<true>(x[0] + g * gb, gb);
            const Group q1 = F::template load<true>(x[0] + (g + 1) * gb, gb);
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) {
                acc[t] = step<F>(q0, act<F>(y[t] + g * Groups4::kBytes), acc[t]);
                acc[t] = step<F>(q1, act<F>(y[t] + (g + 1) * Groups4::kBytes), acc[t]);
            }
        }
    }
    // The last whole group, then a partial one (masked loads that stop at the
    // row's end).
    auto tail = [&]<bool Full>(int64_t valid) {
#pragma GCC unroll 4
        for (int i = 0; i < NR * NT; ++i) {
            const int r = NR == 1 ? 0 : i, t = NT == 1 ? 0 : i;
            acc[i] = step<F>(F::template load<Full>(x[r] + g * gb, valid),
                             act<F>(y[t] + g * Groups4::kBytes), acc[i]);
        }
    };
    if (g < full) {
        tail.template operator()<true>(gb);
        ++g;
    }
    if (rest) tail.template operator()<false>(rest * bb);
    for (int i = 0; i < NR * NT; ++i) out[i] = _mm512_reduce_add_ps(acc[i]);
}

template <typename F>
float dot1(int64_t n, const void* w, const void* a) {
    float out;
    dot_tile<F, 1, 1>(n, &w, &a, &out);
    return out;
}

template <typename F>
void dot4(int64_t n, const void* w, const void* const* a, float* out) {
    dot_tile<F, 1, 4>(n, &w, a, out);
}

template <typename F>
void rows4(int64_t n, const void* const* w, const void* a, float* out, ptrdiff_t prefetch) {
    dot_tile<F, 4, 1>(n, w, &a, out, prefetch);
}

// The _R8 layouts (tensor/repack.h): block b of four adjacent rows of a group
// (its first four or its last four) is four adjacent GGML blocks, a "unit",
// which a format's loader unpacks as it unpacks a GGML row's four blocks, so
// lanes 4k..4k+3 hold row k's block b. Every row multiplies activation block b:
// its four lanes' parts, broadcast.
template <typename F>
inline Act act_block(const uint8_t* y, int64_t b) {
    const uint8_t* p = y + b / 4 * Groups4::kBytes + 16 * (b % 4);
    auto lanes = [](const uint8_t* q) {
        return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    };
    return {_mm512_slli_epi32(lanes(p + Groups4::kNsumAt), F::kShift), lanes(p),
            lanes(p + Groups4::kSecondAt),
            F::act_scale(_mm512_castsi512_ps(lanes(p + Groups4::kScaleAt)))};
}

// Each row's sum from four rows' four accumulators: row i's lanes put back in
// `dot_tile`'s places (lane j of accumulator k to lane 4k + j), then reduced as
// it reduces them.
// (By value: an accumulator whose address is taken is kept in memory.)
inline void r8_reduce(__m512 a0, __m512 a1, __m512 a2, __m512 a3, float* out) {
    alignas(64) float sum[4][16];
    _mm512_store_ps(sum[0], a0);
    _mm512_store_ps(sum[1], a1);
    _mm512_store_ps(sum[2], a2);
    _mm512_store_ps(sum[3], a3);
    for (int i = 0; i < 4; ++i) {
        alignas(64) float row[16];
        for (int k = 0; k < 4; ++k) std::memcpy(row + 4 * k, sum[k] + 4 * i, 16);
        out[i] = _mm512_reduce_add_ps(_mm512_load_ps(row));
    }
}

// NH halves of an _R8 group (the four rows at w, then the next four) against NT
// activation rows; out[4 (NH t + h) + i] is row i of half h against token t.
// Each row's terms are added in the order `dot_tile` adds them over the GGML
// row, so the results are the GGML kernels' to the bit: dot_tile's lane 4k + j
// accumulates lane j of the row's blocks 4g + k, g = 0, 1, ... Here acc[h][t][k]
// accumulates those of a half's four rows, row i in lanes 4i..4i+3, and the end
// puts each row's lanes back in dot_tile's places. Decode takes both halves, so
// each activation block's loads serve eight rows that are read as one stream;
// prefill one half against four tokens, so each unit is unpacked once for four.
// Every loop over the accumulators is unrolled: one indexed at run time would
// keep them all in memory.
template <typename F, int NH, int NT>
void r8_tile(int64_t n, const uint8_t* w, const void* const* a, float* out) {
    constexpr int64_t ub = 4 * F::kBlockBytes;  // one unit
    const int64_t n_blocks = n / 32;
    const uint8_t* y[NT];
    __m512 acc[NH][NT][4];
    for (int t = 0; t < NT; ++t) y[t] = static_cast<const uint8_t*>(a[t]);
#pragma GCC unroll 2
    for (int h = 0; h < NH; ++h) {
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) {
#pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) acc[h][t][k] = _mm512_setzero_ps();
        }
    }
    // Block b, with K = b % 4 known at compile time so the accumulators stay in
    // registers.
    auto block = [&]<int K>(int64_t b) {
        Act act[NT];
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) act[t] = act_block<F>(y[t], b);
#pragma GCC unroll 2
        for (int h = 0; h < NH; ++h) {
            const Group q = F::template load<true>(w + (2 * b + h) * ub, ub);
#pragma GCC unroll 4
            for (int t = 0; t < NT; ++t) acc[h][t][K] = step<F>(q, act[t], acc[h][t][K]);
        }
    };
    int64_t b = 0;
    for (; b + 4 <= n_blocks; b += 4) {
        block.template operator()<0>(b);
        block.template operator()<1>(b + 1);
        block.template operator()<2>(b + 2);
        block.template operator()<3>(b + 3);
    }
    if (b < n_blocks) block.template operator()<0>(b);
    if (b + 1 < n_blocks) block.template operator()<1>(b + 1);
    if (b + 2 < n_blocks) block.template operator()<2>(b + 2);
#pragma GCC unroll 2
    for (int h = 0; h < NH; ++h) {
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t)
            r8_reduce(acc[h][t][0], acc[h][t][1], acc[h][t][2], acc[h][t][3],
                      out + 4 * (NH * t + h));
    }
}

template <typename F>
void r8_row_groups(int64_t n, const void* w, int64_t n_groups, const void* a, float* out) {
    const int64_t group_bytes = n / 32 * 8 * F::kBlockBytes;
    for (int64_t g = 0; g < n_groups; ++g)
        r8_tile<F, 2, 1>(n, static_cast<const uint8_t*>(w) + g * group_bytes, &a, out + 8 * g);
}

template <typename F>
void r8_tile4(int64_t n, const void* w, const void* const* a, float* out) {
    r8_tile<F, 1, 4>(n, static_cast<const uint8_t*>(w), a, out);
}

// One row of an _R8 layout (every eighth block) gathered into a GGML row: for
// tests and completeness only, since matmul takes the rows four or eight at a
// time.
template <typename F>
float r8_dot1(int64_t n, const void* w, const void* a) {
    constexpr size_t bb = F::kBlockBytes;
    std::vector<uint8_t> row(static_cast<size_t>(n / 32) * bb);
    for (size_t b = 0; b < row.size() / bb; ++b)
        std::memcpy(row.data() + b * bb, static_cast<const uint8_t*>(w) + 8 * b * bb, bb);
    return dot1<F>(n, row.data(), a);
}

}  // namespace

DotKernels build(const DotKernels& base) {
    DotKernels k = base;
    k.isa = "avx512vbmi";
    auto set = [&]<typename F>(TensorType t, F*) {
        const auto id = static_cast<size_t>(t);
        k.dot[id] = dot1<F>;
        k.dot4[id] = dot4<F>;
        k.rows4[id] = rows4<F>;
        k.layout[id] = ActLayout::Groups4;
    };
    // A GGML type and its _R8 layout, into which weights copied to RAM are repacked.
    auto set_r8 = [&]<typename F>(TensorType t, TensorType r8, F* f) {
        set(t, f);
        const auto id = static_cast<size_t>(r8);
        k.dot[id] = r8_dot1<F>;
        k.row_groups[id] = r8_row_groups<F>;
        k.tile4[id] = r8_tile4<F>;
        k.layout[id] = ActLayout::Groups4;
        k.repacked[static_cast<size_t>(t)] = r8;
    };
    set_r8(TensorType::Q4_0, TensorType::Q4_0_R8, static_cast<Q4_0*>(nullptr));
    set_r8(TensorType::Q5_0, TensorType::Q5_0_R8, static_cast<Q5_0*>(nullptr));
    set_r8(TensorType::Q8_0, TensorType::Q8_0_R8, static_cast<Q8_0*>(nullptr));
    set_r8(TensorType::IQ4_NL, TensorType::IQ4_NL_R8, static_cast<Iq4Nl*>(nullptr));
    // MXFP4 keeps each row's blocks together (MXFP4_X4), which its kernels read
    // with two permutes fewer than the GGML blocks an _R8 layout holds: one
    // thread decoded gpt-oss-20b at 7.8-7.9 tokens/s with MXFP4_X4 and 6.8-7.1
    // with an MXFP4_R8 (strata bench -p 1 -n 48 --threads 1, three alternating
    // rounds, 2026-12-07), though prefill was 6% faster with it.
    set(TensorType::MXFP4, static_cast<Mxfp4*>(nullptr));
    set(TensorType::MXFP4_X4, static_cast<Mxfp4X4*>(nullptr));
    k.repacked[static_cast<size_t>(TensorType::MXFP4)] = TensorType::MXFP4_X4;
    return k;
}

}  // namespace strata::ops::vbmi

#pragma GCC pop_options
#pragma GCC diagnostic pop

namespace strata::ops {

const DotKernels* avx512vbmi_dot_kernels() {
    static const bool supported = avx512_dot_kernels() && __builtin_cpu_supports("avx512vbmi");
    if (!supported) return nullptr;
    static const DotKernels k = vbmi::build(*avx512_dot_kernels());
    return &k;
}

}  // namespace strata::ops

#else

namespace strata::ops {
const DotKernels* avx512vbmi_dot_kernels() {
    return nullptr;
}
}  // namespace strata::ops

#endif
