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

// Where element v of a Q4_K block's codes lives: GGML keeps elements 64 c + l and
// 64 c + 32 + l (l < 32) in the low and high nibble of byte 32 c + l; Q4_K_64
// elements 128 k + j and 128 k + 64 + j (j < 64) in those of byte 64 k + j.
struct Nibble {
    int byte, shift;
};
Nibble ggml_nibble(int v) {
    return {32 * (v / 64) + v % 32, 4 * (v / 32 % 2)};
}
Nibble q4_k_64_nibble(int v) {
    return {64 * (v / 128) + v % 64, 4 * (v / 64 % 2)};
}

// Moves the 256 codes of `from` (at `from_at`) to `to` (at `to_at`).
void move_codes(const uint8_t* from, Nibble (*from_at)(int), uint8_t* to, Nibble (*to_at)(int)) {
    std::memset(to, 0, 128);
    for (int v = 0; v < qk_k; ++v) {
        const Nibble f = from_at(v), t = to_at(v);
        to[t.byte] = static_cast<uint8_t>(to[t.byte] | (((from[f.byte] >> f.shift) & 0xF) << t.shift));
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

// Q5_K's fifth bits: GGML keeps element 64 c + 32 h + l's in bit 2 c + h of
// qh[l]; Q5_K_64 element v's in bit v % 8 of byte v / 8.
void fifth_bits_to_64(const uint8_t* src, uint8_t* dst) {
    std::memset(dst, 0, 32);
    for (int v = 0; v < qk_k; ++v) {
        const int bit = (src[v % 32] >> (v / 32)) & 1;
        dst[v / 8] = static_cast<uint8_t>(dst[v / 8] | bit << (v % 8));
    }
}

void fifth_bits_from_64(const uint8_t* src, uint8_t* dst) {
    std::memset(dst, 0, 32);
    for (int v = 0; v < qk_k; ++v) {
        const int bit = (src[v / 8] >> (v % 8)) & 1;
        dst[v % 32] = static_cast<uint8_t>(dst[v % 32] | bit << (v / 32));
    }
}

// One block of Q4_K or Q5_K into its layout (`to`) or back (`from`): the head,
// then Q5_K's fifth bits, then the codes, at the same offsets in both.
void k4_block_to_64(const uint8_t* src, uint8_t* dst, bool fifth) {
    head_to_64(src, dst);
    if (fifth) fifth_bits_to_64(src + 16, dst + 16);
    const int codes = fifth ? 48 : 16;
    move_codes(src + codes, ggml_nibble, dst + codes, q4_k_64_nibble);
}

void k4_block_from_64(const uint8_t* src, uint8_t* dst, bool fifth) {
    head_from_64(src, dst);
    if (fifth) fifth_bits_from_64(src + 16, dst + 16);
    const int codes = fifth ? 48 : 16;
    move_codes(src + codes, q4_k_64_nibble, dst + codes, ggml_nibble);
}

// Where element v of a Q6_K block keeps its low four bits (a nibble of `ql`)
// and its top two (a pair of bits of `qh`). GGML: in half h = v / 128, quarter
// q = v % 128 / 32 and l = v % 32, nibble q / 2 of ql[64 h + 32 (q % 2) + l] and
// pair q of qh[32 h + l]. Q6_K_64: nibble v / 64 % 2 of ql[64 (v / 128) + v % 64]
// and pair v / 64 of qh[v % 64].
struct SixBits {
    Nibble low;
    int high_byte, high_shift;
};
SixBits q6_k_ggml(int v) {
    const int h = v / 128, q = v % 128 / 32, l = v % 32;
    return {{64 * h + 32 * (q % 2) + l, 4 * (q / 2)}, 32 * h + l, 2 * q};
}
SixBits q6_k_64(int v) {
    return {q4_k_64_nibble(v), v % 64, 2 * (v / 64)};
}

// Moves the 256 6-bit codes of a Q6_K block between layouts (ql and qh are
// contiguous in both: 128 bytes then 64).
void move_six_bits(const uint8_t* from, SixBits (*from_at)(int), uint8_t* to, SixBits (*to_at)(int)) {
    std::memset(to, 0, 192);
    for (int v = 0; v < qk_k; ++v) {
        const SixBits f = from_at(v), t = to_at(v);
        const int low = (from[f.low.byte] >> f.low.shift) & 0xF;
        const int high = (from[128 + f.high_byte] >> f.high_shift) & 3;
        to[t.low.byte] = static_cast<uint8_t>(to[t.low.byte] | low << t.low.shift);
        to[128 + t.high_byte] = static_cast<uint8_t>(to[128 + t.high_byte] | high << t.high_shift);
    }
}

}  // namespace

TensorType layout_source(TensorType t) {
    switch (t) {
        case TensorType::MXFP4_X4: return TensorType::MXFP4;
        case TensorType::Q4_K_64: return TensorType::Q4_K;
        case TensorType::Q5_K_64: return TensorType::Q5_K;
        case TensorType::Q6_K_64: return TensorType::Q6_K;
        default: return t;
    }
}

void repack_rows(TensorType to, void* rows, int64_t n_rows, int64_t n, size_t row_bytes) {
    const TypeTraits& tr = type_traits(layout_source(to));
    CHECK(layout_source(to) != to && n % tr.block_size == 0, "a layout strata repacks into");
    const size_t bytes = static_cast<size_t>(n / tr.block_size) * tr.type_size;
    std::vector<uint8_t> row(bytes);
    auto* base = static_cast<uint8_t*>(rows);
    for (int64_t r = 0; r < n_rows; ++r) {
        uint8_t* p = base + static_cast<size_t>(r) * row_bytes;
        std::memcpy(row.data(), p, bytes);
        if (to == TensorType::MXFP4_X4) {
            mxfp4_to_x4(reinterpret_cast<const BlockMXFP4*>(row.data()), p, n / 32);
        } else if (to == TensorType::Q4_K_64 || to == TensorType::Q5_K_64) {
            for (int64_t b = 0; b < n / qk_k; ++b) {
                const size_t at = static_cast<size_t>(b) * tr.type_size;
                k4_block_to_64(row.data() + at, p + at, to == TensorType::Q5_K_64);
            }
        } else {  // Q6_K_64: the codes move, the scales and d stay
            for (int64_t b = 0; b < n / qk_k; ++b) {
                const size_t at = static_cast<size_t>(b) * sizeof(BlockQ6_K);
                move_six_bits(row.data() + at, q6_k_ggml, p + at, q6_k_64);
            }
        }
    }
}

void unpack_row(TensorType from, const void* src, void* dst, int64_t n) {
    const TypeTraits& tr = type_traits(layout_source(from));
    CHECK(layout_source(from) != from && n % tr.block_size == 0, "a layout strata repacks into");
    const auto* s = static_cast<const uint8_t*>(src);
    if (from == TensorType::MXFP4_X4) {
        x4_to_mxfp4(s, static_cast<BlockMXFP4*>(dst), n / 32);
    } else if (from == TensorType::Q4_K_64 || from == TensorType::Q5_K_64) {
        for (int64_t b = 0; b < n / qk_k; ++b) {
            const size_t at = static_cast<size_t>(b) * tr.type_size;
            k4_block_from_64(s + at, static_cast<uint8_t*>(dst) + at, from == TensorType::Q5_K_64);
        }
    } else {
        auto* d = static_cast<uint8_t*>(dst);
        std::memcpy(d, s, static_cast<size_t>(n / qk_k) * sizeof(BlockQ6_K));
        for (int64_t b = 0; b < n / qk_k; ++b) {
            const size_t at = static_cast<size_t>(b) * sizeof(BlockQ6_K);
            move_six_bits(s + at, q6_k_64, d + at, q6_k_ggml);
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

}  // namespace strata
