#pragma once
// Random inputs for kernel tests: rows of any block type with ordinary scales,
// normal floats, and a dequantiser that also reads the Q8_1 activation format.
// Shared by the CPU kernel tests and the backend-op tests.

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/repack.h"
#include "tensor/type.h"

#include <cstddef>
#include <cstring>
#include <random>
#include <vector>

namespace strata::test {

// Byte offsets of the half-float scale fields of each block type: random bytes
// elsewhere are valid codes, but a random half may be a NaN or infinity, so the
// scales are overwritten with halves of ordinary size.
inline std::vector<size_t> half_fields(TensorType t) {
    switch (t) {
        case TensorType::Q4_0:
        case TensorType::Q5_0:
        case TensorType::Q8_0:
        case TensorType::IQ4_NL:
        case TensorType::IQ4_XS: return {0};
        case TensorType::Q4_1:
        case TensorType::Q5_1:
        case TensorType::Q4_K:
        case TensorType::Q5_K: return {0, 2};
        case TensorType::Q2_K: return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
        case TensorType::Q3_K: return {offsetof(BlockQ3_K, d)};
        case TensorType::Q6_K: return {offsetof(BlockQ6_K, d)};
        default: return {};
    }
}

// A random row of `n` elements of type `t`.
inline std::vector<uint8_t> random_row(TensorType t, int64_t n, std::mt19937& rng) {
    if (t != layout_source(t)) {  // strata's own layouts: random rows of the source, repacked
        // A row-interleaved layout's row lives in its group: the group's first row,
        // with random rows after it (the kernels read only the first).
        const int64_t g = type_traits(t).row_group;
        std::vector<uint8_t> rows;
        for (int64_t r = 0; r < g; ++r) {
            const std::vector<uint8_t> row = random_row(layout_source(t), n, rng);
            rows.insert(rows.end(), row.begin(), row.end());
        }
        repack_rows(t, rows.data(), g, n, rows.size() / static_cast<size_t>(g));
        return rows;
    }
    const TypeTraits& tt = type_traits(t);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint8_t> row(static_cast<size_t>(n / tt.block_size) * tt.type_size);
    if (!tt.quantized) {
        std::vector<float> f(static_cast<size_t>(n));
        for (float& v : f) v = normal(rng);
        tt.quantize(f.data(), row.data(), n);
        return row;
    }
    for (uint8_t& b : row) b = static_cast<uint8_t>(rng());
    std::uniform_real_distribution<float> scale(0.001f, 0.05f);
    for (size_t blk = 0; blk < row.size() / tt.type_size; ++blk) {
        uint8_t* p = row.data() + blk * tt.type_size;
        for (size_t off : half_fields(t)) {
            const uint16_t h = fp32_to_fp16(scale(rng) * (rng() % 2 ? 1.0f : -1.0f));
            std::memcpy(p + off, &h, 2);
        }
        if (t == TensorType::MXFP4) p[0] = static_cast<uint8_t>(115 + rng() % 16);  // scales 2^-12 .. 2^3
    }
    return row;
}

inline std::vector<float> random_floats(int64_t n, std::mt19937& rng, float sigma = 1.0f) {
    std::normal_distribution<float> normal(0.0f, sigma);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = normal(rng);
    return x;
}

inline std::vector<float> dequantize(TensorType t, const void* data, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    if (t == TensorType::Q8_1) {  // an activation format only: no table entry
        const auto* b = static_cast<const BlockQ8_1*>(data);
        for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(b[i / 32].d) * b[i / 32].qs[i % 32];
        return out;
    }
    type_traits(t).dequantize(data, out.data(), n);
    return out;
}

// Every weight type with a CPU dot kernel.
inline constexpr TensorType kDotTypes[] = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0,   TensorType::Q4_1,
    TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K,   TensorType::Q3_K,
    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS,
    TensorType::MXFP4};

}  // namespace strata::test
