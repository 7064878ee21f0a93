#pragma once
// strata's own in-memory layouts of GGML block types: the same blocks, with the
// same bytes per row, rearranged so the fastest kernels read them with fewer
// shuffles (and, in the row-interleaved layouts, as one stream of memory for
// four rows at once). Weights copied into RAM at load are rewritten into the layout the
// chosen kernel table asks for (`DotKernels::repacked`); files and mapped
// tensors always keep the GGML layout.
//
// MXFP4_X4 (from MXFP4): a row's blocks in groups of four. A group is the four
// blocks' 16 code bytes one after another (64 bytes), then their four exponent
// bytes, each e stored as e ^ 0x80 (as a signed byte, e - 128: the power of two
// of the block's scale); a row's last, partial group of r blocks is their 16 r
// code bytes, then their r exponents. So one 64-byte load holds a group's codes, in the order in
// which `ActLayout::Groups4` holds the activations they multiply, and one
// 4-byte load its exponents.
//
// Q4_0_R8, Q5_0_R8, Q8_0_R8, IQ4_NL_R8 (from the type before _R8): rows in
// groups of eight (`TypeTraits::row_group`), their GGML blocks interleaved:
// block i of the group's row j is the group's block 8 i + j. So block i of four
// adjacent rows (a group's first four or its last four) is the four adjacent
// blocks that the kernels (dot_vbmi.cpp) unpack in one step, and decode, which
// multiplies the eight rows against the same activations, reads one sequential
// stream, which the hardware prefetcher follows (two or four streams a group or
// a row apart it does not: see dot_k4_lanes.cpp). Rows of any number of blocks
// interleave so: gpt-oss's rows of 90 blocks, which MXFP4_X4's partial last
// group keeps from interleaving, do too.
//
// Q4_K_64 (from Q4_K): rows in groups of four (`TypeTraits::row_group`), their
// blocks interleaved: block i of the group's row j is the group's block 4 i + j,
// so decode, which multiplies four rows at a time against the same activations,
// reads one sequential stream, which the hardware prefetcher follows (four
// streams a row apart it does not: see dot_k4_lanes.cpp). Each 144-byte block
// keeps d and dmin, then
//   uint8_t scales[8]  sub-block j's scale (low nibble) and minimum (high
//                      nibble), their low four bits
//   uint8_t tops[4]    as a little-endian word: bits 2j, 2j + 1 the top two bits
//                      of scale j, bits 16 + 2j, 17 + 2j those of minimum j
//   uint8_t qs[128]    two 64-byte halves h. Read as 16 four-byte lanes l, the
//                      low nibbles of half h are run 2 h and the high ones run
//                      2 h + 1; lane l of run r holds elements 4 c .. 4 c + 3 of
//                      sub-block l % 8, where c = 2 r + l / 8
// so every lane of every run belongs to the same sub-block (l % 8), and a
// block's four runs times the activations they multiply (`ActLayout::KLanes`
// puts those in the same order) add up lane by lane before one multiply by the
// lanes' scales; the scales unpack with a few word operations (GGML's packing
// takes a dozen).
//
// Q3_K_64 (from Q3_K): rows in groups of four, their blocks interleaved as
// Q4_K_64's. Each 110-byte block keeps GGML's offsets, scales and d: hmask
// holds the high bits as Q5_K_64 holds its fifth bits (four 64-bit run masks),
// and qs element e's low two bits in bits 2 r .. 2 r + 1 of byte p, where its
// code is byte p of run r in Q4_K_64's lanes. So one 64-byte load holds all four
// runs, a run's codes take their high bits with one masked add, and the
// `ActLayout::KLanes` activations multiply them lane by lane: runs 0 and 1 of
// lane l hold the first 16 elements (a Q3_K sub-block) of 32-element sub-block
// l % 8, runs 2 and 3 the second 16.
//
// Q2_K_64 (from Q2_K): rows in groups of four, their blocks interleaved as
// Q4_K_64's. Each 84-byte block keeps GGML's scales, d and dmin; qs holds the
// two-bit codes as Q3_K_64's qs does.
//
// IQ4_XS_64 (from IQ4_XS): rows in groups of four, their blocks interleaved as
// Q4_K_64's. Each 136-byte block keeps d, scales_h and scales_l (8 bytes), then
// its 128 code bytes as Q4_K_64's (sub-block j's element e of IQ4_XS, where
// Q4_K has its sub-block j's element e), so a block multiplies the same
// `ActLayout::KLanes` activations lane by lane after one code book lookup per
// run.
//
// Q5_K_64 (from Q5_K): rows in groups of four, their blocks interleaved as
// Q4_K_64's. Each 176-byte block is Q4_K_64's first 16 bytes, then the fifth
// bits as four little-endian 64-bit masks, one per run of Q4_K_64's lanes (bit
// 4 l + b of run r's mask belongs to the code in byte 4 l + b of run r), then
// the 128 code bytes' low four bits as Q4_K_64's. So a run's codes take their
// fifth bits with one masked add and multiply the `ActLayout::KLanes`
// activations as Q4_K_64's do.
//
// Q6_K_64 (from Q6_K): rows in groups of four, their blocks interleaved as
// Q4_K_64's. Each 210-byte block keeps its scales and d; ql holds
// element 128 k + j's low four bits in the low nibble of byte 64 k + j and
// element 128 k + 64 + j's in the high one (as GGML's ql already is), and qh[j] the top two bits of
// elements j, 64 + j, 128 + j and 192 + j in bits 0-1, 2-3, 4-5 and 6-7. So each run of 64 codes,
// in the activations' order, comes out of two 64-byte loads with a few shifts, masks and one
// ternary logic operation.

#include "tensor/type.h"

#include <cstdint>

namespace strata {

// The GGML type whose blocks a layout rearranges (t itself for GGML types).
TensorType layout_source(TensorType t);

// Rewrites `n_rows` rows of `n` elements of `layout_source(to)`, `row_bytes`
// apart, into layout `to`, in place. For a row-interleaved layout, `n_rows` is
// whole groups of rows and `row_bytes` the rows' own size.
void repack_rows(TensorType to, void* rows, int64_t n_rows, int64_t n, size_t row_bytes);

// One row of layout `from` (where `TensorView::row` puts it) back into its
// source type's layout, into `dst`.
void unpack_row(TensorType from, const void* src, void* dst, int64_t n);

// Dequantize a row of a layout (the type table's entries for them).
void dequantize_row_mxfp4_x4(const void* src, float* dst, int64_t n);
template <TensorType Layout>
void dequantize_row_r8(const void* src, float* dst, int64_t n);
void dequantize_row_q4_k_64(const void* src, float* dst, int64_t n);
void dequantize_row_q5_k_64(const void* src, float* dst, int64_t n);
void dequantize_row_q6_k_64(const void* src, float* dst, int64_t n);
void dequantize_row_iq4_xs_64(const void* src, float* dst, int64_t n);
void dequantize_row_q3_k_64(const void* src, float* dst, int64_t n);
void dequantize_row_q2_k_64(const void* src, float* dst, int64_t n);

}  // namespace strata
