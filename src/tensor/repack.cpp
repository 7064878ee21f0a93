#include "tensor/repack.h"

#include "tensor/blocks.h"
#include "tensor/quants.h"
#include "util/check.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace strata {

namespace {

constexpr int64_t kGroupBlocks = 4;

// Block b of a row in the MXFP4_X4 layout: where its codes and its exponent are.
struct X4Place {
    int64_t codes, exponent;
};
X4Place x4_place(int64_t b, int64_t n_blocks) {
    const int64_t group = b / kGroupBlocks, k = b % kGroupBlocks;
    const int64_t in_group = std::min(kGroupBlocks, n_blocks - group * kGroupBlocks);
    const int64_t start = group * kGroupBlocks * int64_t{sizeof(BlockMXFP4)};
    return {start + 16 * k, start + 16 * in_group + k};
}

void mxfp4_to_x4(const BlockMXFP4* src, uint8_t* dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; ++b) {
        const X4Place at = x4_place(b, n_blocks);
        std::memcpy(dst + at.codes, src[b].qs, 16);
        dst[at.exponent] = src[b].e;
    }
}

void x4_to_mxfp4(const uint8_t* src, BlockMXFP4* dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; ++b) {
        const X4Place at = x4_place(b, n_blocks);
        std::memcpy(dst[b].qs, src + at.codes, 16);
        dst[b].e = src[at.exponent];
    }
}

}  // namespace

TensorType layout_source(TensorType t) {
    return t == TensorType::MXFP4_X4 ? TensorType::MXFP4 : t;
}

void repack_rows(TensorType to, void* rows, int64_t n_rows, int64_t n, size_t row_bytes) {
    CHECK(to == TensorType::MXFP4_X4 && n % 32 == 0, "a layout strata repacks into");
    const int64_t n_blocks = n / 32;
    std::vector<BlockMXFP4> row(static_cast<size_t>(n_blocks));
    auto* base = static_cast<uint8_t*>(rows);
    for (int64_t r = 0; r < n_rows; ++r) {
        uint8_t* p = base + static_cast<size_t>(r) * row_bytes;
        std::memcpy(row.data(), p, row.size() * sizeof(BlockMXFP4));
        mxfp4_to_x4(row.data(), p, n_blocks);
    }
}

void unpack_row(TensorType from, const void* src, void* dst, int64_t n) {
    CHECK(from == TensorType::MXFP4_X4 && n % 32 == 0, "a layout strata repacks into");
    x4_to_mxfp4(static_cast<const uint8_t*>(src), static_cast<BlockMXFP4*>(dst), n / 32);
}

void dequantize_row_mxfp4_x4(const void* src, float* dst, int64_t n) {
    std::vector<BlockMXFP4> row(static_cast<size_t>(n / 32));
    unpack_row(TensorType::MXFP4_X4, src, row.data(), n);
    dequantize_row_mxfp4(row.data(), dst, n);
}

}  // namespace strata
