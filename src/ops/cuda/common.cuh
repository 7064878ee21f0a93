#pragma once
// What every CUDA file of the backend shares: error checking that turns a failed
// runtime call into an exception naming the call, launch helpers and warp
// reductions. Included only by .cu files, so no CUDA type leaks above ops/cuda/.

#include "ops/cuda/fp_bits.cuh"

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

}  // namespace strata::ops::cuda
