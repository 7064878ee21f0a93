#pragma once
// Byte layouts of the block-encoded tensor types, identical to the reference format
// (ggml-common.h), plus the small lookup tables and bit helpers their encoders and
// decoders share. A block is a fixed number of elements stored as one or two scales
// followed by packed integer codes; GGUF tensor data is an array of these structs.
//
// Scales stored as IEEE half are kept as raw `uint16_t` bits and converted with
// `fp16_to_fp32`, so the structs have no padding and no compiler-specific half type.
// The `static_assert`s pin every size and the offsets that matter: a file written by
// the reference implementation is read by casting (or copying) its bytes to these.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace strata {

// GGUF stores everything little-endian, and these structs are read straight from
// the file's bytes, so a big-endian host would need byte swapping that strata lacks.
static_assert(std::endian::native == std::endian::little, "strata assumes a little-endian host");

// Elements per super-block of the K-quants and the 256-element IQ types.
inline constexpr int qk_k = 256;

// Q4_0: 32 codes of 4 bits, value = (q - 8) * d.
struct BlockQ4_0 {
    static constexpr int block_size = 32;
    uint16_t d;      // half: scale
    uint8_t qs[16];  // element j in the low nibble of qs[j], element j + 16 in the high one
};
static_assert(sizeof(BlockQ4_0) == 18);

// Q4_1: 32 codes of 4 bits, value = q * d + m.
struct BlockQ4_1 {
    static constexpr int block_size = 32;
    uint16_t d;  // half: scale
    uint16_t m;  // half: minimum
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

// Q5_0: 32 codes of 5 bits, value = (q - 16) * d; the fifth bits live in `qh`.
struct BlockQ5_0 {
    static constexpr int block_size = 32;
    uint16_t d;     // half: scale
    uint8_t qh[4];  // bit j of this little-endian u32 is the fifth bit of element j
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_1: 32 codes of 5 bits, value = q * d + m.
struct BlockQ5_1 {
    static constexpr int block_size = 32;
    uint16_t d;  // half: scale
    uint16_t m;  // half: minimum
    uint8_t qh[4];
    uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

// Q8_0: 32 signed bytes, value = q * d.
struct BlockQ8_0 {
    static constexpr int block_size = 32;
    uint16_t d;  // half: scale
    int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q8_1: like Q8_0 plus `s = d * sum(qs)`; only ever an activation format, sized here.
struct BlockQ8_1 {
    static constexpr int block_size = 32;
    uint16_t d;  // half: scale
    uint16_t s;  // half: d * sum(qs)
    int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36);

// Q2_K: 16 sub-blocks of 16 elements; each has a 4-bit scale and a 4-bit minimum,
// value = d * scale * q - dmin * min with 2-bit q.
struct BlockQ2_K {
    static constexpr int block_size = qk_k;
    uint8_t scales[16];  // low nibble: scale, high nibble: minimum
    uint8_t qs[64];      // four 2-bit codes per byte
    uint16_t d;          // half: super-block scale of the scales
    uint16_t dmin;       // half: super-block scale of the minimums
};
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(offsetof(BlockQ2_K, d) == 80);

// Q3_K: 16 sub-blocks of 16 elements with 6-bit signed scales, 3-bit codes split into
// two low bits (`qs`) and one high bit (`hmask`), value = d * (scale - 32) * (q - 4).
struct BlockQ3_K {
    static constexpr int block_size = qk_k;
    uint8_t hmask[32];   // high bits: bit b of hmask[l] belongs to element 32 * b + l
    uint8_t qs[64];      // low two bits, four codes per byte
    uint8_t scales[12];  // sixteen 6-bit scales, packed
    uint16_t d;          // half: super-block scale
};
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(offsetof(BlockQ3_K, d) == 108);

// Q4_K: 8 sub-blocks of 32 elements with 6-bit scales and minimums,
// value = d * scale * q - dmin * min with 4-bit q.
struct BlockQ4_K {
    static constexpr int block_size = qk_k;
    uint16_t d;          // half: super-block scale of the scales
    uint16_t dmin;       // half: super-block scale of the minimums
    uint8_t scales[12];  // eight 6-bit scales and eight 6-bit minimums, packed
    uint8_t qs[128];     // two 4-bit codes per byte
};
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(offsetof(BlockQ4_K, qs) == 16);

// Q5_K: Q4_K with a fifth bit per code in `qh`.
struct BlockQ5_K {
    static constexpr int block_size = qk_k;
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[32];   // fifth bits: bit b of qh[l] belongs to element 32 * b + l
    uint8_t qs[128];  // low four bits
};
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(offsetof(BlockQ5_K, qs) == 48);

// Q6_K: 16 sub-blocks of 16 elements with signed 8-bit scales,
// value = d * scale * (q - 32) with 6-bit q split into `ql` (low 4) and `qh` (high 2).
struct BlockQ6_K {
    static constexpr int block_size = qk_k;
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;  // half: super-block scale
};
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(offsetof(BlockQ6_K, d) == 208);

// Q8_K: 256 signed bytes with an f32 scale and per-16 sums; the activation format
// the K-quant dot products pair with.
struct BlockQ8_K {
    static constexpr int block_size = qk_k;
    float d;
    int8_t qs[qk_k];
    int16_t bsums[16];  // sum of each group of 16 codes
};
static_assert(sizeof(BlockQ8_K) == 292);

// IQ4_NL: like Q4_0 but each code indexes the non-linear table `kvalues_iq4nl`.
struct BlockIQ4_NL {
    static constexpr int block_size = 32;
    uint16_t d;  // half: scale
    uint8_t qs[16];
};
static_assert(sizeof(BlockIQ4_NL) == 18);

// IQ4_XS: 8 sub-blocks of 32 IQ4_NL codes sharing one half scale, each with a
// 6-bit scale offset by 32 (low four bits in `scales_l`, high two in `scales_h`).
struct BlockIQ4_XS {
    static constexpr int block_size = qk_k;
    uint16_t d;  // half: super-block scale
    uint16_t scales_h;
    uint8_t scales_l[4];
    uint8_t qs[128];
};
static_assert(sizeof(BlockIQ4_XS) == 136);

// MXFP4 (OCP microscaling): 32 E2M1 codes sharing a power-of-two E8M0 scale.
struct BlockMXFP4 {
    static constexpr int block_size = 32;
    uint8_t e;  // E8M0: the scale is 2^(e - 127)
    uint8_t qs[16];
};
static_assert(sizeof(BlockMXFP4) == 17);

// E2M1 values doubled so they are integers: {0, 0.5, 1, 1.5, 2, 3, 4, 6} * 2 with the
// sign in bit 3. The doubling is undone by `e8m0_to_fp32_half`, which halves the scale.
inline constexpr int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// The IQ4_NL / IQ4_XS code book: a non-uniform grid denser near zero, where
// normally distributed weights are.
inline constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

// 2^(e - 127) / 2 as an f32, built from bits. The exponents 0 and 1 give 2^-128 and
// 2^-127, which are f32 subnormals, so they are written as mantissa bits; every other
// exponent is a normal f32 with biased exponent e - 1. The reference leaves e = 255
// (NaN in E8M0) as the finite 2^127, and so does this.
inline float e8m0_to_fp32_half(uint8_t e) {
    const uint32_t bits = e < 2 ? (uint32_t{0x00200000} << e) : (uint32_t{e} - 1) << 23;
    return std::bit_cast<float>(bits);
}

// The 6-bit scale and minimum of sub-block `j` (0..7) of a Q4_K or Q5_K block. The
// first four pairs sit in the low six bits of bytes 0..3 (scales) and 4..7 (minimums);
// the last four keep their low four bits in bytes 8..11 and their top two bits in the
// spare top bits of bytes 0..7.
struct ScaleMin {
    uint8_t scale;
    uint8_t min;
};
inline ScaleMin scale_min_k4(int j, const uint8_t* scales) {
    if (j < 4) {
        return {static_cast<uint8_t>(scales[j] & 63), static_cast<uint8_t>(scales[j + 4] & 63)};
    }
    return {static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4)),
            static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4))};
}

// The packing `scale_min_k4` undoes, of eight 6-bit scales and minimums.
inline void pack_scale_min_k4(const uint8_t* scale, const uint8_t* min, uint8_t* scales) {
    for (int j = 0; j < 4; ++j) {
        scales[j] = static_cast<uint8_t>(scale[j] | ((scale[j + 4] >> 4) << 6));
        scales[j + 4] = static_cast<uint8_t>(min[j] | ((min[j + 4] >> 4) << 6));
        scales[j + 8] = static_cast<uint8_t>((scale[j + 4] & 0xF) | ((min[j + 4] & 0xF) << 4));
    }
}

// The 6-bit scale of sub-block `j` (0..15) of a Q3_K block, still offset by 32: the
// low four bits are nibbles of bytes 0..7 (j < 8 low nibble, else high nibble of byte
// j - 8), the top two bits are pair j / 4 of byte 8 + j % 4.
inline int q3_k_scale(const uint8_t* scales, int j) {
    const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
    const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return low | (high << 4);
}

// A Q3_K block's sixteen 6-bit scales (stored + 32) as the bytes of two
// words, group order (see `q3_k_scale`): low nibbles from the first eight scale
// bytes (groups 0..7 their low nibbles, 8..15 their high ones), top two bits
// from the last four, whose byte j % 4 holds group j's at bits 2 (j / 4). For the
// SIMD kernels, built in registers: assembling the bytes in memory and reading
// them back as one vector stalled on the failed store forwarding.
struct Q3ScaleWords {
    uint64_t first, second;  // groups 0..7, 8..15
};
inline Q3ScaleWords q3_k_scale_words(const uint8_t* scales) {
    uint64_t low;
    uint32_t top;
    std::memcpy(&low, scales, 8);
    std::memcpy(&top, scales + 8, 4);
    const uint64_t tops = top | static_cast<uint64_t>(top >> 2)
                                    << 32;  // groups j and 4 + j in the low word
    constexpr uint64_t low4 = 0x0f0f0f0f0f0f0f0f, low2 = 0x0303030303030303;
    return {(low & low4) | (tops & low2) << 4, (low >> 4 & low4) | (tops >> 4 & low2) << 4};
}

// The 6-bit scale of sub-block `sb` (0..7) of an IQ4_XS block, still offset by 32.
inline int iq4_xs_scale(const BlockIQ4_XS& b, int sb) {
    const int low = (b.scales_l[sb / 2] >> (4 * (sb % 2))) & 0xF;
    const int high = (b.scales_h >> (2 * sb)) & 3;
    return low | (high << 4);
}

}  // namespace strata
