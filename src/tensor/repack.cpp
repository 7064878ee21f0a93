#include "tensor/repack.h"

#include "tensor/blocks.h"
#include "tensor/quants.h"
#include "util/check.h"

#include <algorithm>
#include <array>
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
        dst[at.exponent] = static_cast<uint8_t>(src[b].e ^ 0x80);
    }
}

void x4_to_mxfp4(const uint8_t* src, BlockMXFP4* dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; ++b) {
        const X4Place at = x4_place(b, n_blocks);
        std::memcpy(dst[b].qs, src + at.codes, 16);
        dst[b].e = static_cast<uint8_t>(src[at.exponent] ^ 0x80);
    }
}

// The first 16 bytes of a Q4_K or Q5_K block (d, dmin and the GGML-packed
// scales) into Q4_K_64's (d, dmin, scale nibbles, top bits), and back.
void head_to_64(const uint8_t* src, uint8_t* dst) {
    std::memcpy(dst, src, 4);  // d, dmin
    uint32_t tops = 0;
    for (int j = 0; j < 8; ++j) {
        const ScaleMin sm = scale_min_k4(j, src + 4);
        dst[4 + j] = static_cast<uint8_t>((sm.scale & 0xF) | ((sm.min & 0xF) << 4));
        tops |= uint32_t{sm.scale} >> 4 << (2 * j) | uint32_t{sm.min} >> 4 << (16 + 2 * j);
    }
    for (int i = 0; i < 4; ++i) dst[12 + i] = static_cast<uint8_t>(tops >> (8 * i));
}

void head_from_64(const uint8_t* src, uint8_t* dst) {
    std::memcpy(dst, src, 4);
    uint32_t tops = 0;
    for (int i = 0; i < 4; ++i) tops |= uint32_t{src[12 + i]} << (8 * i);
    uint8_t scale[8], min[8];
    for (int j = 0; j < 8; ++j) {
        scale[j] = static_cast<uint8_t>((src[4 + j] & 0xF) | ((tops >> (2 * j)) & 3) << 4);
        min[j] = static_cast<uint8_t>((src[4 + j] >> 4) | ((tops >> (16 + 2 * j)) & 3) << 4);
    }
    pack_scale_min_k4(scale, min, dst + 4);
}

// Q5_K's fifth bits (and Q3_K's high bits): GGML keeps element e's in bit
// e / 32 of qh[e % 32]; Q5_K_64 (Q3_K_64) in run r's 64-bit mask, bit 4 l + b
// where element e's code is, in Q4_K_64's lanes (`lanes_position`: 64 r + 4 l +
// b): sub-block j = e / 32, its 4-element chunk c = e % 32 / 4 is run c / 2,
// lane j + 8 (c % 2), and b = e % 4.
int lanes_position(int e) {
    const int j = e / 32, c = e % 32 / 4;
    return 64 * (c / 2) + 4 * (j + 8 * (c % 2)) + e % 4;
}

// At load, a byte at a time: with l = e % 32, run r = l / 8 takes in its half
// h = l / 4 % 2 the bits of qh[8 r + 4 h + b] (b = l % 4), bit j going to
// 32 h + 4 j + b. `kSpread` spreads a byte's bit j to bit 4 j. (Bit by bit, this
// ran at about 290 MB/s, slower than reading the file.)
constexpr std::array<uint32_t, 256> kSpread = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t x = 0; x < 256; ++x) {
        for (int j = 0; j < 8; ++j) t[x] |= ((x >> j) & 1u) << (4 * j);
    }
    return t;
}();

void fifth_bits_to_runs(const uint8_t* qh, uint8_t* dst) {
    uint64_t runs[4] = {};
    for (int r = 0; r < 4; ++r) {
        for (int h = 0; h < 2; ++h) {
            uint32_t half = 0;
            for (int b = 0; b < 4; ++b) half |= kSpread[qh[8 * r + 4 * h + b]] << b;
            runs[r] |= uint64_t{half} << (32 * h);
        }
    }
    std::memcpy(dst, runs, sizeof runs);
}

void fifth_bits_from_runs(const uint8_t* src, uint8_t* qh) {
    uint64_t runs[4];
    std::memcpy(runs, src, sizeof runs);
    std::memset(qh, 0, 32);
    for (int e = 0; e < qk_k; ++e) {
        const int at = lanes_position(e);
        qh[e % 32] =
            static_cast<uint8_t>(qh[e % 32] | ((runs[at / 64] >> (at % 64)) & 1) << (e / 32));
    }
}

// A Q4_K block's 128 code bytes between the GGML layout and Q4_K_64's (see
// repack.h). GGML keeps sub-block j's element e in nibble j % 2 of byte
// 32 (j / 2) + e. Q4_K_64 pairs elements e and e + 8 of one sub-block in a byte:
// for half h, sub-block j's elements 16 h + 0..3 (low nibbles) and 16 h + 8..11
// (high) are bytes 64 h + 4 j + 0..3, its elements 16 h + 4..7 and 16 h +
// 12..15 bytes 64 h + 32 + 4 j + 0..3. Eight bytes at a time, so the copy at
// load stays cheap: one word holds a sub-block's sixteen nibbles of a half.
constexpr uint64_t kNibbles = 0x0F0F0F0F0F0F0F0F;

void k4_codes_to_lanes(const uint8_t* src, uint8_t* dst) {
    for (int j = 0; j < 8; ++j) {
        for (int h = 0; h < 2; ++h) {
            uint64_t first, second;  // elements 16 h + 0..7 and 16 h + 8..15
            std::memcpy(&first, src + 32 * (j / 2) + 16 * h, 8);
            std::memcpy(&second, src + 32 * (j / 2) + 16 * h + 8, 8);
            const int shift = 4 * (j % 2);
            const uint64_t pairs = ((first >> shift) & kNibbles) | ((second >> shift) & kNibbles)
                                                                       << 4;
            std::memcpy(dst + 64 * h + 4 * j, &pairs, 4);
            std::memcpy(dst + 64 * h + 32 + 4 * j, reinterpret_cast<const uint8_t*>(&pairs) + 4, 4);
        }
    }
}

void k4_codes_from_lanes(const uint8_t* src, uint8_t* dst) {
    for (int m = 0; m < 4; ++m) {
        for (int h = 0; h < 2; ++h) {
            uint64_t pairs[2];  // sub-blocks 2 m and 2 m + 1, as k4_codes_to_lanes made them
            for (int t = 0; t < 2; ++t) {
                auto* bytes = reinterpret_cast<uint8_t*>(&pairs[t]);
                std::memcpy(bytes, src + 64 * h + 4 * (2 * m + t), 4);
                std::memcpy(bytes + 4, src + 64 * h + 32 + 4 * (2 * m + t), 4);
            }
            const uint64_t first = (pairs[0] & kNibbles) | (pairs[1] & kNibbles) << 4;
            const uint64_t second = (pairs[0] >> 4 & kNibbles) | (pairs[1] >> 4 & kNibbles) << 4;
            std::memcpy(dst + 32 * m + 16 * h, &first, 8);
            std::memcpy(dst + 32 * m + 16 * h + 8, &second, 8);
        }
    }
}

// An IQ4_XS block's 128 code bytes into Q4_K's code order and back. IQ4_XS
// keeps sub-block j's element e in nibble e / 16 of byte 16 j + e % 16; Q4_K
// in nibble j % 2 of byte 32 (j / 2) + e. For sub-blocks 2 m and 2 m + 1 (IQ4_XS
// bytes a = 32 m .. and b = 32 m + 16 ..), Q4_K's byte 32 m + e is a[e]'s and
// b[e]'s low nibbles for e < 16 and their high nibbles for e >= 16: eight
// bytes at a time. The exchange is its own inverse, so it converts both ways.
void swap_iq4_xs_k4_order(const uint8_t* src, uint8_t* dst) {
    for (int m = 0; m < 4; ++m) {
        for (int w = 0; w < 2; ++w) {
            uint64_t a, b;
            std::memcpy(&a, src + 32 * m + 8 * w, 8);
            std::memcpy(&b, src + 32 * m + 16 + 8 * w, 8);
            const uint64_t low = (a & kNibbles) | (b & kNibbles) << 4;
            const uint64_t high = (a >> 4 & kNibbles) | (b & ~kNibbles);
            std::memcpy(dst + 32 * m + 8 * w, &low, 8);
            std::memcpy(dst + 32 * m + 16 + 8 * w, &high, 8);
        }
    }
}

// IQ4_XS's 8-byte head stays; the codes go through Q4_K's order into lanes.
void iq4_xs_block_to_64(const uint8_t* src, uint8_t* dst) {
    std::memcpy(dst, src, 8);
    uint8_t k4[128];
    swap_iq4_xs_k4_order(src + 8, k4);
    k4_codes_to_lanes(k4, dst + 8);
}

void iq4_xs_block_from_64(const uint8_t* src, uint8_t* dst) {
    std::memcpy(dst, src, 8);
    uint8_t k4[128];
    k4_codes_from_lanes(src + 8, k4);
    swap_iq4_xs_k4_order(k4, dst + 8);
}

// Q2_K's and Q3_K's low two bits: GGML keeps element 128 c + 32 k + l's in
// bits 2 k of qs[32 c + l]; Q2_K_64 and Q3_K_64 in bits 2 r of byte p, where
// lanes_position(e) = 64 r + p. With l = 8 r + 4 h + b, that byte is
// 16 c + 4 k + 32 h + b: for each (c, h), a transpose of four words' crumbs,
// which is its own inverse. (Crumb by crumb, the copy ran at 100-140 MB/s.)
void transpose_crumbs(const uint8_t* src, uint8_t* dst, bool to_runs) {
    for (int c = 0; c < 2; ++c) {
        for (int h = 0; h < 2; ++h) {
            auto ggml = [&](int r) { return 32 * c + 8 * r + 4 * h; };
            auto runs = [&](int k) { return 16 * c + 4 * k + 32 * h; };
            uint32_t in[4];
            for (int i = 0; i < 4; ++i) std::memcpy(&in[i], src + (to_runs ? ggml(i) : runs(i)), 4);
            for (int o = 0; o < 4; ++o) {
                uint32_t word = 0;
                for (int i = 0; i < 4; ++i) word |= ((in[i] >> (2 * o)) & 0x03030303u) << (2 * i);
                std::memcpy(dst + (to_runs ? runs(o) : ggml(o)), &word, 4);
            }
        }
    }
}

void crumbs_to_runs(const uint8_t* src, uint8_t* dst) {
    transpose_crumbs(src, dst, true);
}
void crumbs_from_runs(const uint8_t* src, uint8_t* dst) {
    transpose_crumbs(src, dst, false);
}

// Q3_K: hmask (0), qs (32), then scales and d as they are.
void q3_k_block_to_64(const uint8_t* src, uint8_t* dst) {
    fifth_bits_to_runs(src, dst);
    crumbs_to_runs(src + 32, dst + 32);
    std::memcpy(dst + 96, src + 96, 14);
}

void q3_k_block_from_64(const uint8_t* src, uint8_t* dst) {
    fifth_bits_from_runs(src, dst);
    crumbs_from_runs(src + 32, dst + 32);
    std::memcpy(dst + 96, src + 96, 14);
}

// Q2_K: scales (0) and d, dmin (80) as they are, qs (16).
void q2_k_block_to_64(const uint8_t* src, uint8_t* dst, bool to) {
    std::memcpy(dst, src, 16);
    (to ? crumbs_to_runs : crumbs_from_runs)(src + 16, dst + 16);
    std::memcpy(dst + 80, src + 80, 4);
}

// One block of Q4_K or Q5_K into its layout (`to`) or back (`from`): the head,
// then Q5_K's fifth bits, then the codes, at the same offsets in both.
void k4_block_to_64(const uint8_t* src, uint8_t* dst, bool fifth) {
    head_to_64(src, dst);
    const int codes = fifth ? 48 : 16;
    if (fifth) fifth_bits_to_runs(src + 16, dst + 16);
    k4_codes_to_lanes(src + codes, dst + codes);
}

void k4_block_from_64(const uint8_t* src, uint8_t* dst, bool fifth) {
    head_from_64(src, dst);
    const int codes = fifth ? 48 : 16;
    if (fifth) fifth_bits_from_runs(src + 16, dst + 16);
    k4_codes_from_lanes(src + codes, dst + codes);
}

// A Q6_K block's top bit pairs (qh, 64 bytes) between the GGML layout and
// Q6_K_64's. GGML keeps element 128 h + 32 q + l's (l < 32) in pair q of
// qh[32 h + l]; Q6_K_64 element 64 r + j's (j < 64) in pair r of qh[j]. The low
// nibbles (ql) are where Q6_K_64 wants them already: within each half, byte l
// holds quarters 0 and 2 and byte 32 + l quarters 1 and 3, which are elements
// j = l and j = 32 + l of runs 2 h and 2 h + 1.
uint8_t pair(const uint8_t* bytes, int byte, int pair) {
    return static_cast<uint8_t>((bytes[byte] >> (2 * pair)) & 3);
}

// At load, eight bytes at a time: for j < 32, out[j] takes pairs 0 and 2 of
// qh[j] and of qh[32 + j], out[32 + j] pairs 1 and 3. (Pair by pair, the copy
// ran at about 630 MB/s per thread.)
void q6_k_top_bits_to_64(const uint8_t* qh, uint8_t* out) {
    constexpr uint64_t kPairs = 0x0303030303030303;
    auto take = [](uint64_t w, int pair) { return (w >> (2 * pair)) & kPairs; };
    for (int j = 0; j < 32; j += 8) {
        uint64_t a, b;
        std::memcpy(&a, qh + j, 8);
        std::memcpy(&b, qh + 32 + j, 8);
        const uint64_t low = take(a, 0) | take(a, 2) << 2 | take(b, 0) << 4 | take(b, 2) << 6;
        const uint64_t high = take(a, 1) | take(a, 3) << 2 | take(b, 1) << 4 | take(b, 3) << 6;
        std::memcpy(out + j, &low, 8);
        std::memcpy(out + 32 + j, &high, 8);
    }
}

void q6_k_top_bits_from_64(const uint8_t* qh, uint8_t* out) {
    for (int h = 0; h < 2; ++h) {
        for (int l = 0; l < 32; ++l) {
            uint8_t b = 0;
            for (int q = 0; q < 4; ++q) b |= pair(qh, 32 * (q % 2) + l, 2 * h + q / 2) << (2 * q);
            out[32 * h + l] = b;
        }
    }
}

}  // namespace

TensorType layout_source(TensorType t) {
    switch (t) {
        case TensorType::Q4_0_R8:
            return TensorType::Q4_0;
        case TensorType::Q5_0_R8:
            return TensorType::Q5_0;
        case TensorType::Q8_0_R8:
            return TensorType::Q8_0;
        case TensorType::IQ4_NL_R8:
            return TensorType::IQ4_NL;
        case TensorType::MXFP4_X4:
            return TensorType::MXFP4;
        case TensorType::Q4_K_64: return TensorType::Q4_K;
        case TensorType::Q5_K_64: return TensorType::Q5_K;
        case TensorType::Q6_K_64: return TensorType::Q6_K;
        case TensorType::IQ4_XS_64:
            return TensorType::IQ4_XS;
        case TensorType::Q3_K_64:
            return TensorType::Q3_K;
        case TensorType::Q2_K_64:
            return TensorType::Q2_K;
        default: return t;
    }
}

void repack_rows(TensorType to, void* rows, int64_t n_rows, int64_t n, size_t row_bytes) {
    const TypeTraits& tr = type_traits(layout_source(to));
    CHECK(layout_source(to) != to && n % tr.block_size == 0, "a layout strata repacks into");
    const size_t bytes = static_cast<size_t>(n / tr.block_size) * tr.type_size;
    auto* base = static_cast<uint8_t*>(rows);
    if (const int64_t g = type_traits(to).row_group; g > 1) {  // blocks of g rows interleaved
        CHECK(n_rows % g == 0 && row_bytes == bytes, "whole groups of adjacent rows");
        const size_t bb = tr.type_size;
        std::vector<uint8_t> group(static_cast<size_t>(g) * bytes);
        for (int64_t r = 0; r < n_rows; r += g) {
            uint8_t* p = base + static_cast<size_t>(r) * bytes;
            std::memcpy(group.data(), p, group.size());
            for (int64_t b = 0; b < n / tr.block_size; ++b) {
                for (int64_t j = 0; j < g; ++j) {
                    const uint8_t* from = group.data() + static_cast<size_t>(j) * bytes + static_cast<size_t>(b) * bb;
                    uint8_t* at = p + static_cast<size_t>(b * g + j) * bb;
                    if (to == TensorType::Q4_K_64 || to == TensorType::Q5_K_64) {
                        k4_block_to_64(from, at, to == TensorType::Q5_K_64);
                    } else if (to == TensorType::IQ4_XS_64) {
                        iq4_xs_block_to_64(from, at);
                    } else if (to == TensorType::Q3_K_64) {
                        q3_k_block_to_64(from, at);
                    } else if (to == TensorType::Q2_K_64) {
                        q2_k_block_to_64(from, at, true);
                    } else if (to == TensorType::Q6_K_64) {  // only the top bit pairs move
                        std::memcpy(at, from, bb);
                        q6_k_top_bits_to_64(from + 128, at + 128);
                    } else {  // the _R8 layouts: GGML blocks as they are
                        std::memcpy(at, from, bb);
                    }
                }
            }
        }
        return;
    }
    std::vector<uint8_t> row(bytes);
    for (int64_t r = 0; r < n_rows; ++r) {
        uint8_t* p = base + static_cast<size_t>(r) * row_bytes;
        std::memcpy(row.data(), p, bytes);
        mxfp4_to_x4(reinterpret_cast<const BlockMXFP4*>(row.data()), p, n / 32);  // MXFP4_X4
    }
}

void unpack_row(TensorType from, const void* src, void* dst, int64_t n) {
    const TypeTraits& tr = type_traits(layout_source(from));
    CHECK(layout_source(from) != from && n % tr.block_size == 0, "a layout strata repacks into");
    const auto* s = static_cast<const uint8_t*>(src);
    auto* d = static_cast<uint8_t*>(dst);
    if (from == TensorType::MXFP4_X4) return x4_to_mxfp4(s, static_cast<BlockMXFP4*>(dst), n / 32);
    // A row-interleaved layout's row: every g-th block from `src` on.
    const size_t stride = tr.type_size * static_cast<size_t>(type_traits(from).row_group);
    for (int64_t b = 0; b < n / tr.block_size; ++b) {
        const uint8_t* block = s + static_cast<size_t>(b) * stride;
        uint8_t* out = d + static_cast<size_t>(b) * tr.type_size;
        if (from == TensorType::Q4_K_64 || from == TensorType::Q5_K_64) {
            k4_block_from_64(block, out, from == TensorType::Q5_K_64);
        } else if (from == TensorType::IQ4_XS_64) {
            iq4_xs_block_from_64(block, out);
        } else if (from == TensorType::Q3_K_64) {
            q3_k_block_from_64(block, out);
        } else if (from == TensorType::Q2_K_64) {
            q2_k_block_to_64(block, out, false);
        } else if (from == TensorType::Q6_K_64) {
            std::memcpy(out, block, sizeof(BlockQ6_K));
            q6_k_top_bits_from_64(block + 128, out + 128);
        } else {  // the _R8 layouts
            std::memcpy(out, block, tr.type_size);
        }
    }
}

namespace {

// A layout's row dequantized as the source blocks it holds.
template <TensorType Layout, typename B, DequantizeFn Dequantize>
void dequantize_unpacked(const void* src, float* dst, int64_t n) {
    std::vector<B> row(static_cast<size_t>(n / B::block_size));
    unpack_row(Layout, src, row.data(), n);
    Dequantize(row.data(), dst, n);
}

}  // namespace

template <TensorType Layout>
void dequantize_row_r8(const void* src, float* dst, int64_t n) {
    const TypeTraits& source = type_traits(layout_source(Layout));
    std::vector<uint8_t> row(static_cast<size_t>(n / source.block_size) * source.type_size);
    unpack_row(Layout, src, row.data(), n);
    source.dequantize(row.data(), dst, n);
}

template void dequantize_row_r8<TensorType::Q4_0_R8>(const void*, float*, int64_t);
template void dequantize_row_r8<TensorType::Q5_0_R8>(const void*, float*, int64_t);
template void dequantize_row_r8<TensorType::Q8_0_R8>(const void*, float*, int64_t);
template void dequantize_row_r8<TensorType::IQ4_NL_R8>(const void*, float*, int64_t);

void dequantize_row_mxfp4_x4(const void* src, float* dst, int64_t n) {
    dequantize_unpacked<TensorType::MXFP4_X4, BlockMXFP4, dequantize_row_mxfp4>(src, dst, n);
}

void dequantize_row_q4_k_64(const void* src, float* dst, int64_t n) {
    dequantize_unpacked<TensorType::Q4_K_64, BlockQ4_K, dequantize_row_q4_k>(src, dst, n);
}

void dequantize_row_q5_k_64(const void* src, float* dst, int64_t n) {
    dequantize_unpacked<TensorType::Q5_K_64, BlockQ5_K, dequantize_row_q5_k>(src, dst, n);
}

void dequantize_row_q6_k_64(const void* src, float* dst, int64_t n) {
    dequantize_unpacked<TensorType::Q6_K_64, BlockQ6_K, dequantize_row_q6_k>(src, dst, n);
}

void dequantize_row_q2_k_64(const void* src, float* dst, int64_t n) {
    dequantize_unpacked<TensorType::Q2_K_64, BlockQ2_K, dequantize_row_q2_k>(src, dst, n);
}

void dequantize_row_q3_k_64(const void* src, float* dst, int64_t n) {
    dequantize_unpacked<TensorType::Q3_K_64, BlockQ3_K, dequantize_row_q3_k>(src, dst, n);
}

void dequantize_row_iq4_xs_64(const void* src, float* dst, int64_t n) {
    dequantize_unpacked<TensorType::IQ4_XS_64, BlockIQ4_XS, dequantize_row_iq4_xs>(src, dst, n);
}

}  // namespace strata
