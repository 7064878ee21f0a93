// AVX-512 VBMI kernels for the 32-element block formats (Q4_0, Q8_0, IQ4_NL,
// MXFP4) against Q8_0 activations laid out as `ActLayout::Groups4` (dot.h).
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
//  - one permute gathers the four scales into lanes, converted in one instruction
//    and multiplied by the activations' scales, which the layout already holds
//    per lane.
// The integer sums are exact, so every block's term is the reference's; only
// the order in which the 16 lanes' float terms are added differs.

#include "ops/cpu/dot.h"

#include "tensor/blocks.h"

#include <algorithm>
#include <cstring>

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

// The `ActLayout::Groups4` group: 128 elements in 256 bytes, codes first
// (first halves, then second halves), then the minus sums, then the scales.
constexpr int64_t kGroupBytes = 256;
constexpr int kNsumAt = 128, kScaleAt = 192;

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
        for (int m = 0; m < 16; ++m) x.b[16 * k + m] = static_cast<uint8_t>(bb * k + first + m - skip);
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

// A 1-byte exponent at the start of each block into the low byte of lane 4k + j.
constexpr Index exponent_index(int bb) {
    Index x;
    for (int w = 0; w < 16; ++w) x.b[4 * w] = static_cast<uint8_t>(bb * (w / 4));
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
// first and second halves, and per lane the weight's scale (for MXFP4 its
// exponent; see `Mxfp4::scale`).
struct Group {
    __m512i lo, hi;
    __m512 scale;
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
    static __m512i high(__m512i q) { return _mm512_and_si512(_mm512_srli_epi16(q, 4), _mm512_set1_epi8(0x0F)); }
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
    static __m512 scale(const Group& g, __m512 d_act) { return _mm512_mul_ps(g.scale, d_act); }
};

// IQ4_NL: the code book (-127..113) plus 128.
struct Iq4Nl {
    static constexpr int kBlockBytes = 18, kShift = 7;
    using N = Nibbles<18, 2>;
    template <bool Full>
    static Group load(const uint8_t* p, int64_t valid) {
        static constexpr Index scale_idx = half_scale_index(18);
        const __m512i b = book(kvalues_iq4nl, 128);
        __m512i head;
        const __m512i q = N::gather<Full>(p, valid, head);
        return {_mm512_shuffle_epi8(b, N::low(q)), _mm512_shuffle_epi8(b, N::high(q)), half_scales(head, scale_idx)};
    }
    static __m512 scale(const Group& g, __m512 d_act) { return _mm512_mul_ps(g.scale, d_act); }
};

// MXFP4: the doubled code book (-12..12) plus 16; the scale 2^(e - 127) / 2 is
// applied with `vscalefps` as the activation scale times 2^(e - 128), which is
// the reference's product d_w * d_act rounded once, subnormal results included.
struct Mxfp4 {
    static constexpr int kBlockBytes = 17, kShift = 4;
    using N = Nibbles<17, 1>;
    template <bool Full>
    static Group load(const uint8_t* p, int64_t valid) {
        static constexpr Index exp_idx = exponent_index(17);
        const __m512i b = book(kvalues_mxfp4, 16);
        __m512i head;
        const __m512i q = N::gather<Full>(p, valid, head);
        const __m512i e = _mm512_maskz_permutexvar_epi8(0x1111111111111111ull, exp_idx.load(), head);
        return {_mm512_shuffle_epi8(b, N::low(q)), _mm512_shuffle_epi8(b, N::high(q)),
                _mm512_sub_ps(_mm512_cvtepi32_ps(e), _mm512_set1_ps(128.0f))};
    }
    static __m512 scale(const Group& g, __m512 d_act) { return _mm512_scalef_ps(d_act, g.scale); }
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
        const __m512 s =
            _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi8(a, scale_idx.load(), b)));
        return {_mm512_xor_si512(_mm512_permutex2var_epi8(a, lo_idx.load(), b), flip),
                _mm512_xor_si512(_mm512_permutex2var_epi8(a8, hi_idx.load(), b8), flip), s};
    }
    static __m512 scale(const Group& g, __m512 d_act) { return _mm512_mul_ps(g.scale, d_act); }
};

// One group's term for one activation row, added to `acc`.
template <typename F>
inline __m512 step(const Group& q, const uint8_t* y, __m512 acc) {
    __m512i s = _mm512_slli_epi32(_mm512_loadu_si512(y + kNsumAt), F::kShift);
    s = _mm512_dpbusd_epi32(s, q.lo, _mm512_loadu_si512(y));
    s = _mm512_dpbusd_epi32(s, q.hi, _mm512_loadu_si512(y + 64));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), F::scale(q, _mm512_loadu_ps(y + kScaleAt)), acc);
}

// `NT` activation rows against one weight row; each row sees the same operations
// in the same order whatever NT is, so batching never changes a result. Two
// accumulators (even and odd groups) keep the FMA latency off the critical path.
template <typename F, int NT>
void dot_rows(int64_t n, const void* w, const void* const* a, float* out) {
    constexpr int64_t bb = F::kBlockBytes;
    const auto* x = static_cast<const uint8_t*>(w);
    const int64_t n_blocks = n / 32, full = n_blocks / 4, rest = n_blocks % 4;
    const uint8_t* y[NT];
    __m512 acc0[NT], acc1[NT];
    for (int t = 0; t < NT; ++t) {
        y[t] = static_cast<const uint8_t*>(a[t]);
        acc0[t] = acc1[t] = _mm512_setzero_ps();
    }
    int64_t g = 0;
    for (; g + 2 <= full; g += 2) {
        const Group q0 = F::template load<true>(x + g * 4 * bb, 4 * bb);
        const Group q1 = F::template load<true>(x + (g + 1) * 4 * bb, 4 * bb);
        for (int t = 0; t < NT; ++t) {
            acc0[t] = step<F>(q0, y[t] + g * kGroupBytes, acc0[t]);
            acc1[t] = step<F>(q1, y[t] + (g + 1) * kGroupBytes, acc1[t]);
        }
    }
    if (g < full) {
        const Group q = F::template load<true>(x + g * 4 * bb, 4 * bb);
        for (int t = 0; t < NT; ++t) acc0[t] = step<F>(q, y[t] + g * kGroupBytes, acc0[t]);
        ++g;
    }
    if (rest) {
        const Group q = F::template load<false>(x + g * 4 * bb, rest * bb);
        for (int t = 0; t < NT; ++t) acc1[t] = step<F>(q, y[t] + g * kGroupBytes, acc1[t]);
    }
    for (int t = 0; t < NT; ++t) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t]));
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
    k.isa = "avx512vbmi";
    auto set = [&]<typename F>(TensorType t, F*) {
        const auto id = static_cast<size_t>(t);
        k.dot[id] = dot1<F>;
        k.dot4[id] = dot4<F>;
        k.layout[id] = ActLayout::Groups4;
    };
    set(TensorType::Q4_0, static_cast<Q4_0*>(nullptr));
    set(TensorType::Q8_0, static_cast<Q8_0*>(nullptr));
    set(TensorType::IQ4_NL, static_cast<Iq4Nl*>(nullptr));
    set(TensorType::MXFP4, static_cast<Mxfp4*>(nullptr));
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
const DotKernels* avx512vbmi_dot_kernels() { return nullptr; }
}  // namespace strata::ops

#endif
