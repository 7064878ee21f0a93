// IEEE binary16 and bfloat16 conversions done on the bit patterns, so the results do
// not depend on the host's floating-point mode or on compiler support for a half type.
// They match the reference implementation bit for bit, including its choice of NaN:
// float -> half turns every NaN into the quiet NaN 0x7E00 with the input's sign.

#include "tensor/fp16.h"

#include <bit>

namespace strata {

float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = uint32_t{h & 0x8000u} << 16;
    const uint32_t exponent = (h >> 10) & 0x1F;
    const uint32_t mantissa = h & 0x3FF;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24 is exact in f32 (an integer below 2^10
        // scaled by a power of two that stays in the normal f32 range).
        const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31) {
        // Infinity keeps a zero mantissa; a NaN keeps its payload and is made quiet,
        // as the reference's arithmetic path (and the F16C instruction) does.
        const uint32_t quiet = mantissa ? 0x00400000u : 0;
        return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13) | quiet);
    }
    // Normal: re-bias the exponent from 15 to 127 and widen the mantissa.
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

uint16_t fp32_to_fp16(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
    const uint32_t magnitude = bits & 0x7FFFFFFF;

    if (magnitude > 0x7F800000) return sign | 0x7E00;  // NaN
    // 65520 (0x477FF000) is halfway between the largest half, 65504, and 2^16; ties go
    // to the even neighbour, which is 2^16, so it and everything above become infinity.
    if (magnitude >= 0x477FF000) return sign | 0x7C00;

    const uint32_t exponent = magnitude >> 23;
    if (exponent < 113) {
        // Below 2^-14 the result is a half subnormal: a count of 2^-24 units. The f32
        // value is m * 2^(exponent - 150) with the implicit bit in m, so in 2^-24 units
        // it is m >> (126 - exponent), rounded to nearest even on the bits shifted out.
        // Anything below 2^-25 (shift over 24, or an f32 subnormal) rounds to zero.
        const uint32_t shift = 126 - exponent;
        if (shift > 24) return sign;
        const uint32_t m = (magnitude & 0x7FFFFF) | 0x800000;
        uint32_t q = m >> shift;
        const uint32_t rest = m & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rest > half || (rest == half && (q & 1))) ++q;  // 1024 carries into 2^-14
        return sign | static_cast<uint16_t>(q);
    }

    // Normal: keep the top 10 mantissa bits and round the other 13 to nearest even. A
    // carry out of the mantissa correctly bumps the exponent; the overflow check above
    // already sent every value that would round to 2^16 to infinity.
    uint32_t q = ((exponent - 112) << 10) | ((magnitude >> 13) & 0x3FF);
    const uint32_t rest = magnitude & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (q & 1))) ++q;
    return sign | static_cast<uint16_t>(q);
}

float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(uint32_t{h} << 16); }

uint16_t fp32_to_bf16(float f) {
    const uint32_t bits = std::bit_cast<uint32_t>(f);
    if ((bits & 0x7FFFFFFF) > 0x7F800000) {
        // NaN: truncating could clear every payload bit left and make it infinity, so
        // keep the top bits and set the quiet bit.
        return static_cast<uint16_t>((bits >> 16) | 0x40);
    }
    // Round to nearest even on the 16 bits dropped: adding 0x7FFF rounds halves down,
    // and adding the kept part's lowest bit as well turns that into ties-to-even. A
    // carry into the exponent is correct, up to and including rounding to infinity.
    return static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

}  // namespace strata
