#pragma once
// Matrix products of a weight tensor (any type with a dot kernel, see dot.h)
// with float activations. Activations are quantised once per product into the
// weight type's activation format (`PackedActs`), then every (row, token) pair is
// one call of the chosen dot kernel.
//
// `matmul` is the whole product on a thread pool. `matmul_rows` is the single-
// threaded piece that fused operations (the MoE layer) schedule themselves, so a
// layer's many small products share one parallel region instead of one each.

#include "ops/cpu/dot.h"
#include "tensor/view.h"
#include "util/thread_pool.h"

#include <cstdint>
#include <span>
#include <vector>

namespace strata::ops {

// Token rows in a weight type's activation format.
struct PackedActs {
    TensorType type = TensorType::F32;
    ActLayout layout = ActLayout::Blocks;
    int64_t n = 0;          // elements per row
    int64_t n_tok = 0;      // rows
    size_t row_bytes = 0;
    std::vector<uint8_t> data;

    const void* row(int64_t t) const { return data.data() + static_cast<size_t>(t) * row_bytes; }
    void* row(int64_t t) { return data.data() + static_cast<size_t>(t) * row_bytes; }
};

// Sizes `out` for `n_tok` rows of `n` elements in the activation format and
// layout that table `k` takes for `weight` (without filling it).
void resize_acts(TensorType weight, int64_t n, int64_t n_tok, PackedActs& out, const DotKernels& k = dot_kernels());
// Packs `n_tok` rows of `n` floats, `x_stride` apart.
void pack_acts(TensorType weight, const float* x, int64_t x_stride, int64_t n, int64_t n_tok, PackedActs& out,
               ThreadPool* pool = nullptr, const DotKernels& k = dot_kernels());
// Packs one row of `acts.n` floats as row `t`.
inline void pack_row(PackedActs& acts, int64_t t, const float* x) {
    quantize_act(acts.type, x, acts.row(t), acts.n, acts.layout);
}

struct RowsParams {
    const TensorView* w = nullptr;
    int64_t row_begin = 0, row_end = 0;  // absolute rows of `w`
    const PackedActs* acts = nullptr;
    // The activation rows to use, in order (null: 0 .. acts->n_tok - 1).
    const int32_t* tokens = nullptr;
    int64_t n_tok = 0;
    // Output: y[t * y_stride + (r - y_row0)] for the t-th token and row r.
    float* y = nullptr;
    int64_t y_stride = 0;
    int64_t y_row0 = 0;
};

// One thread's share: rows [row_begin, row_end) times the given tokens.
void matmul_rows(const RowsParams& p, const DotKernels& k = dot_kernels());

// y[t][r] = dot(row (row0 + r) of w, x[t]) for r in [0, n_out), t in [0, n_tok).
// x rows are w.ne[0] floats, `x_stride` apart; y rows `y_stride` apart.
void matmul(const TensorView& w, int64_t row0, int64_t n_out, const float* x, int64_t x_stride, int64_t n_tok,
            float* y, int64_t y_stride, ThreadPool& pool);

// Rows per work item of `matmul` and `matmul_many`: a few of `matmul_rows`'s
// 16-row blocks, so taking an item costs little against its dot products and a
// matrix has many items per thread.
inline constexpr int64_t kMatmulItemRows = 64;

// One matrix of `matmul_many`: rows [row0, row0 + n_out) of `w` into y (rows
// `y_stride` apart).
struct MatmulTarget {
    const TensorView* w = nullptr;
    int64_t row0 = 0, n_out = 0;
    float* y = nullptr;
    int64_t y_stride = 0;
};

// Several matrices applied to the same input rows, as one parallel region: the
// input is packed once per activation format, and every matrix's row blocks are
// one list of work items, so a layer's small matrices (K and V beside Q) cost
// no region of their own and leave no thread idle at their end. Each target's
// y is what `matmul` gives it.
void matmul_many(std::span<const MatmulTarget> targets, const float* x, int64_t x_stride,
                 int64_t n_tok, ThreadPool& pool);

}  // namespace strata::ops
