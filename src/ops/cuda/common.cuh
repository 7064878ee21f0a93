#pragma once
// What every CUDA file of the backend shares: error checking that turns a failed
// runtime call into an exception naming the call, and device ports of the host
// helpers whose rounding the kernels must reproduce bit for bit (half <-> float
// conversion, the reference's round-half-to-even). Included only by .cu files, so
// no CUDA type leaks above ops/cuda/.

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace strata::ops::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* call, const char* file, int line) {
    throw std::runtime_error(std::string("CUDA: ") + call + " failed (" + file + ":" +
                             std::to_string(line) + "): " + cudaGetErrorString(e));
}

#define STRATA_CUDA_CHECK(call)                                                              \
    do {                                                                                     \
        const cudaError_t strata_cuda_err_ = (call);                                         \
        if (strata_cuda_err_ != cudaSuccess)                                                 \
            ::strata::ops::cuda::throw_cuda(strata_cuda_err_, #call, __FILE__, __LINE__);    \
    } while (0)

// After a kernel launch: a bad configuration (or an earlier asynchronous fault) is
// reported by cudaGetLastError; the exception names the kernel.
inline void check_launch(const char* kernel) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) throw_cuda(e, kernel, "launch", 0);
}

// Grid sizes: the number of blocks of `per` covering `n`.
inline unsigned blocks_for(int64_t n, int64_t per) {
    return static_cast<unsigned>((n + per - 1) / per);
}

constexpr int kWarp = 32;

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ int warp_sum_int(int v) {
    for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ double warp_sum_double(double v) {
    for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

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
