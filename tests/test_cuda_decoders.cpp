// The CUDA backend's block dot products (src/ops/cuda/dequant.cuh) and half
// conversions (fp_bits.cuh), compiled for the host and held to the CPU reference
// bit for bit. They are the most intricate part of the GPU kernels — every
// format's bit packing transcribed — and this test runs on every machine, GPU or
// not, with or without the CUDA toolkit: the CUDA qualifiers and rounding
// intrinsics are spelled as plain C++ below (on the host, a float product is
// rounded once, which is what __fmul_rn asks of the device).

#include "ops/cpu/dot.h"
#include "ops/cpu/matmul.h"
#include "random_blocks.h"
#include "tensor/fp16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

// The device spellings the two headers use, as host C++.
#define __device__
#define __forceinline__ inline
#define __constant__
namespace strata::ops::cuda {
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __uint_as_float(uint32_t u) { return std::bit_cast<float>(u); }
inline uint32_t __float_as_uint(float f) { return std::bit_cast<uint32_t>(f); }
}  // namespace strata::ops::cuda
#include "ops/cuda/dequant.cuh"
#undef __device__
#undef __forceinline__
#undef __constant__

namespace strata {
namespace {

namespace cu = ops::cuda;
using test::kDotTypes;
using test::random_floats;
using test::random_row;

TEST(CudaDecoders, HalfConversionsEqualTheHostsOnEveryInput) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const auto x = static_cast<uint16_t>(h);
        ASSERT_EQ(std::bit_cast<uint32_t>(cu::fp16_to_fp32(x)), std::bit_cast<uint32_t>(fp16_to_fp32(x))) << h;
        ASSERT_EQ(std::bit_cast<uint32_t>(cu::bf16_to_fp32(x)), std::bit_cast<uint32_t>(bf16_to_fp32(x))) << h;
    }
    // Every float with a random low half and every high half: all exponents, the
    // rounding boundaries, subnormals, infinities and NaNs.
    std::mt19937 rng(3);
    for (uint32_t hi = 0; hi < 0x10000; ++hi) {
        for (uint32_t lo : {0u, 0x1000u, 0x2000u, 0x0FFFu, 0x1001u, 0xFFFFu, static_cast<uint32_t>(rng() & 0xFFFF)}) {
            const float f = std::bit_cast<float>(hi << 16 | lo);
            ASSERT_EQ(cu::fp32_to_fp16(f), fp32_to_fp16(f)) << std::hex << (hi << 16 | lo);
        }
    }
}

// One block pair's term, as the device computes it.
template <typename Dot>
float device_term(const uint8_t* w, const uint8_t* a, int64_t b) {
    typename Dot::W wb;
    typename Dot::A ab;
    std::memcpy(&wb, w + b * sizeof(wb), sizeof(wb));
    std::memcpy(&ab, a + b * sizeof(ab), sizeof(ab));
    return Dot::block(wb, ab);
}

float device_term(TensorType t, const uint8_t* w, const uint8_t* a, int64_t b) {
    switch (t) {
        case TensorType::F32: return device_term<cu::DotF32>(w, a, b);
        case TensorType::F16: return device_term<cu::DotF16>(w, a, b);
        case TensorType::BF16: return device_term<cu::DotBF16>(w, a, b);
        case TensorType::Q4_0: return device_term<cu::DotQ4_0>(w, a, b);
        case TensorType::Q4_1: return device_term<cu::DotQ4_1>(w, a, b);
        case TensorType::Q5_0: return device_term<cu::DotQ5_0>(w, a, b);
        case TensorType::Q5_1: return device_term<cu::DotQ5_1>(w, a, b);
        case TensorType::Q8_0: return device_term<cu::DotQ8_0>(w, a, b);
        case TensorType::Q2_K: return device_term<cu::DotQ2_K>(w, a, b);
        case TensorType::Q3_K: return device_term<cu::DotQ3_K>(w, a, b);
        case TensorType::Q4_K: return device_term<cu::DotQ4_K>(w, a, b);
        case TensorType::Q5_K: return device_term<cu::DotQ5_K>(w, a, b);
        case TensorType::Q6_K: return device_term<cu::DotQ6_K>(w, a, b);
        case TensorType::IQ4_NL: return device_term<cu::DotIQ4_NL>(w, a, b);
        case TensorType::IQ4_XS: return device_term<cu::DotIQ4_XS>(w, a, b);
        case TensorType::MXFP4: return device_term<cu::DotMXFP4>(w, a, b);
        default: ADD_FAILURE() << "no device decoder for " << type_name(t); return 0;
    }
}

// The scalar reference over a single block is 0 + (the block's term), so it must
// equal the device's term exactly: same codes, same integer sums, same float
// operations. Random bytes exercise every code and scale bit pattern.
TEST(CudaDecoders, EveryBlockTermEqualsTheScalarReferenceExactly) {
    std::mt19937 rng(4);
    const int64_t n = 1024;
    for (TensorType t : kDotTypes) {
        const int64_t bs = type_traits(t).block_size;
        const TensorType at = ops::dot_act_type(t);
        const int64_t abs_ = type_traits(at).block_size;
        const size_t wsz = type_traits(t).type_size, asz = type_traits(at).type_size;
        const ops::DotFn dot = ops::scalar_dot_kernels().dot[static_cast<size_t>(t)];
        for (int rep = 0; rep < 4; ++rep) {
            const auto w = random_row(t, n, rng);
            const auto x = random_floats(n, rng, rep % 2 ? 0.01f : 3.0f);
            ops::PackedActs a;
            ops::pack_acts(t, x.data(), n, n, 1, a, nullptr, ops::scalar_dot_kernels());
            ASSERT_EQ(bs, abs_) << type_name(t) << ": weight and activation blocks cover the same elements";
            for (int64_t b = 0; b < n / bs; ++b) {
                const float want = dot(bs, w.data() + b * wsz, a.data.data() + b * asz);
                // The reference starts its sum at 0, which turns a -0 term into +0.
                const float got = 0.0f + device_term(t, w.data(), a.data.data(), b);
                ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
                    << type_name(t) << " block " << b << ": " << got << " vs " << want;
            }
        }
    }
}

}  // namespace
}  // namespace strata
