#pragma once
// Device ports of tensor/fp16.cpp's conversions, on the bit patterns, so device
// and host agree on every input (NaN payloads included). This header and
// dequant.cuh use nothing from the CUDA runtime, only qualifiers and intrinsics,
// so tests/test_cuda_decoders.cpp can compile them for the host (with those
// spelled as plain C++) and check them against the CPU reference bit for bit on
// machines without a GPU.

#include <cstdint>

namespace strata::ops::cuda {

// tensor/fp16.cpp's conversions on the bit patterns, so device and host agree on
// every input (NaN payloads included), not just on the finite ones.
__device__ __forceinline__ float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = uint32_t{h & 0x8000u} << 16;
    const uint32_t exponent = (h >> 10) & 0x1F;
    const uint32_t mantissa = h & 0x3FF;
    if (exponent == 0) {
        const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31) {
        const uint32_t quiet = mantissa ? 0x00400000u : 0;
        return __uint_as_float(sign | 0x7F800000u | (mantissa << 13) | quiet);
    }
    return __uint_as_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

__device__ __forceinline__ uint16_t fp32_to_fp16(float f) {
    const uint32_t bits = __float_as_uint(f);
    const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
    const uint32_t magnitude = bits & 0x7FFFFFFF;
    if (magnitude > 0x7F800000) return sign | 0x7E00;
    if (magnitude >= 0x477FF000) return sign | 0x7C00;
    const uint32_t exponent = magnitude >> 23;
    if (exponent < 113) {
        const uint32_t shift = 126 - exponent;
        if (shift > 24) return sign;
        const uint32_t m = (magnitude & 0x7FFFFF) | 0x800000;
        uint32_t q = m >> shift;
        const uint32_t rest = m & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rest > half || (rest == half && (q & 1))) ++q;
        return sign | static_cast<uint16_t>(q);
    }
    uint32_t q = ((exponent - 112) << 10) | ((magnitude >> 13) & 0x3FF);
    const uint32_t rest = magnitude & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (q & 1))) ++q;
    return sign | static_cast<uint16_t>(q);
}

__device__ __forceinline__ float bf16_to_fp32(uint16_t h) {
    return __uint_as_float(uint32_t{h} << 16);
}

}  // namespace strata::ops::cuda
