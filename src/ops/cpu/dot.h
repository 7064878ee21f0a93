#pragma once
// Dot products of one weight row with one activation row: the inner loop of every
// matrix product. Each weight type pairs with an activation format: the integer
// block types with an 8-bit block format that activations are quantised to on the
// fly (Q8_0, Q8_1 where the weight has a minimum, Q8_K for the 256-element super-
// blocks), so the inner loop is integer multiply-adds; the float types with plain
// F32 activations. The pairing is the reference implementation's, so strata's
// quantised models round the way the reference's do.
//
// A `DotKernels` table holds one function per weight type. The scalar table is the
// reference; faster tables (AVX2, ...) are chosen once at start-up by CPU feature
// detection (`dot_kernels()`), and every entry of every table is tested against
// the scalar one.

#include "tensor/type.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace strata::ops {

// sum over n elements of w[i] * a[i]; `w` is one row of the weight type, `a` one
// row of the activation format, both n elements long (n a multiple of the blocks).
using DotFn = float (*)(int64_t n, const void* w, const void* a);

// How a row of activations is laid out. `Blocks`: the activation type's own blocks,
// as the reference stores them. `Groups4` (Q8_0 only): the same codes and scales
// rearranged for kernels that unpack four weight blocks into one 512-bit register
// per half (see dot_vbmi.cpp) or two 256-bit ones (dot_groups_avx2.cpp): per 128 elements (four
// blocks; a row's last group is padded with zeros), 256 bytes:
//   int8  qs[128]   the first 16 codes of blocks 0..3, then their last 16 codes
//   int32 nsum[16]  lane 4k + j: minus the sum of codes 4j..4j+3 and 16+4j..16+4j+3
//                   of block k (the codes one 32-bit lane of each half multiplies)
//   f32   d[16]     lane 4k + j: block k's scale
// The values are exactly those of Q8_0, so results do not depend on the layout.
// `KLanes` (Q8_K only), for the lanes layouts Q2_K_64, Q3_K_64, Q4_K_64, Q5_K_64
// and IQ4_XS_64 (tensor/repack.h): per 256-element block, 384 bytes (so each
// block's codes start 64 bytes after the last's):
//   int8  qs[256]   four 64-byte runs r; byte 4 l + b of run r is element
//                   4 (2 r + l / 8) + b of sub-block l % 8, as in Q4_K_64
//   int32 sums[8]   sub-block j's 32 codes summed (Q8_K's bsums in pairs)
//   f32   d         the block's scale
//   int16 bsums[16] at byte 320: Q8_K's sums of 16 codes (Q2_K_64's and
//                   Q3_K_64's sub-blocks), then zeros to 384 bytes
// again with exactly Q8_K's values.
enum class ActLayout : uint8_t { Blocks, Groups4, KLanes };

// Where the parts of a `Groups4` group are, in bytes.
struct Groups4 {
    static constexpr int64_t kElements = 128, kBytes = 256;
    static constexpr int kSecondAt = 64, kNsumAt = 128, kScaleAt = 192;
};

// Where the parts of a `KLanes` block are, in bytes.
struct KLanes {
    static constexpr int64_t kBytes = 384;
    static constexpr int kSumsAt = 256, kScaleAt = 288, kBsumsAt = 320;
    // Where element e of a block is in its qs.
    static constexpr int position(int e) {
        const int j = e / 32, c = e % 32 / 4, b = e % 4;
        return 64 * (c / 2) + 4 * (j + 8 * (c % 2)) + b;
    }
};

// The same for four activation rows: out[t] = dot(w, a[t]), bit-identical to
// four calls of the one-row kernel (so batching never changes a result), but
// unpacking each weight block once.
using Dot4Fn = void (*)(int64_t n, const void* w, const void* const* a, float* out);

// The other way round, for decode: four weight rows against one activation row,
// out[r] = dot(w[r], a), each bit-identical to the one-row kernel. The activation
// side of each block (its loads, sums and scale) is shared between the rows.
// Unless `prefetch` is 0, a kernel over rows that lie apart (the GGML layouts)
// also prefetches, as it reads each row, the bytes `prefetch` further on (in a
// matrix: the rows that come next); kernels over a row-interleaved layout read
// one sequential stream and ignore it (see dot_k4_lanes.cpp).
using Rows4Fn = void (*)(int64_t n, const void* const* w, const void* a, float* out,
                         ptrdiff_t prefetch);

// Prefill over the _R8 layouts (tensor/repack.h): four rows of a group (its
// first four or its last four, from `w`) against four activation rows,
// out[4 t + j] = dot(row j, a[t]), each bit-identical to the one-row kernel,
// unpacking each block of the four rows once.
using Tile4Fn = void (*)(int64_t n, const void* w, const void* const* a, float* out);
// Decode over the row-interleaved layouts (the _R8 layouts and the K-quants'
// _64 ones): `n_groups` adjacent groups of `row_group` rows (eight or four,
// `TypeTraits::row_group`) from `w` on against one activation row,
// out[row_group * g + j] = dot(row j of group g, a), each bit-identical to the
// one-row kernel. One call takes a work item's rows.
using RowGroupsFn = void (*)(int64_t n, const void* w, int64_t n_groups, const void* a, float* out);

// Grouped-query attention over a block of n rows of the KV cache for the g query
// heads that share one KV head, so each cached row is loaded and converted once
// for all of them. Rows are d elements of the cache's type (F32 or F16), `stride`
// elements apart.
// Scores: s[i * n + j] = q_i . k_j, for g query rows q_i `q_stride` floats apart.
using ScoresFn = void (*)(int64_t d, const void* k, int64_t stride, int64_t n, const float* q,
                          int64_t q_stride, int g, float* s);
// Weighted sum: o_i += sum over j of w[i * n + j] * v_j, for g output rows o_i
// `o_stride` floats apart.
using WeightedSumFn = void (*)(int64_t d, const void* v, int64_t stride, int64_t n,
                               const float* w, int g, float* o, int64_t o_stride);

// y[i] = exp(x[i] - shift) for n floats: attention's softmax weights for a
// block of keys. The SIMD versions are a polynomial within 2 ulp of `std::exp`
// for results down to about the smallest normal float (smaller ones are 0).
using ExpFn = void (*)(int64_t n, const float* x, float shift, float* y);

struct DotKernels {
    const char* isa = "scalar";
    // Indexed by the weight's type id; null where the type has no kernel.
    std::array<DotFn, kTypeIdCount> dot{};
    std::array<Dot4Fn, kTypeIdCount> dot4{};    // optional
    std::array<Rows4Fn, kTypeIdCount> rows4{};  // optional
    std::array<Tile4Fn, kTypeIdCount> tile4{};  // the _R8 layouts
    std::array<RowGroupsFn, kTypeIdCount> row_groups{};      // row-interleaved layouts
    std::array<ScoresFn, kTypeIdCount> scores{};             // F32 and F16
    std::array<WeightedSumFn, kTypeIdCount> weighted_sum{};  // F32 and F16
    ExpFn exp = nullptr;
    // Floats into Q8_0 blocks, code for code the reference's quantize_row_q8_0:
    // the activations of every weight type paired with Q8_0 pass through it.
    QuantizeFn quantize_q8_0 = nullptr;
    // The same for Q8_K (quantize_row_q8_k), the K-quants' activations.
    QuantizeFn quantize_q8_k = nullptr;
    // The activation layout each weight type's kernels take.
    std::array<ActLayout, kTypeIdCount> layout{};
    // Where this table reads a GGML type faster in one of strata's own layouts
    // (tensor/repack.h), that layout: weights copied into RAM are repacked.
    std::array<std::optional<TensorType>, kTypeIdCount> repacked{};
};

// The activation format a weight type's dot product takes.
TensorType dot_act_type(TensorType weight);

const DotKernels& scalar_dot_kernels();
// The AVX2 table (scalar entries where no AVX2 kernel exists), or null when the
// CPU lacks AVX2/FMA/F16C.
const DotKernels* avx2_dot_kernels();
// The AVX-512 table (falling back to AVX2 entries), or null when the CPU lacks
// AVX-512 F/BW/VL/VNNI.
const DotKernels* avx512_dot_kernels();
// The AVX-512 table with the VBMI kernels that read four 32-element blocks at
// once (falling back to AVX-512 entries), or null when the CPU lacks AVX-512 VBMI.
const DotKernels* avx512vbmi_dot_kernels();
// The fastest table this CPU runs; chosen once. `STRATA_ISA=scalar|avx2|avx512|avx512vbmi`
// in the environment caps it (for comparisons and for tests of the fallbacks).
const DotKernels& dot_kernels();

// Quantises `n` floats into `act_type` (F32 copies them), laid out as `layout`.
void quantize_act(TensorType act_type, const float* x, void* out, int64_t n,
                  ActLayout layout = ActLayout::Blocks, const DotKernels& k = dot_kernels());
// Bytes of one row of `n` elements of `act_type` in `layout`.
size_t act_row_bytes(TensorType act_type, ActLayout layout, int64_t n);

}  // namespace strata::ops
