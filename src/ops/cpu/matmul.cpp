#include "ops/cpu/matmul.h"

#include "util/check.h"

#include <algorithm>

namespace strata::ops {

namespace {

// Rows per block and tokens per tile: a block of weight rows (a few KiB each)
// and a tile of activation rows both stay in L2 while every pair is visited, so
// each weight byte comes from memory once however many tokens the batch has.
constexpr int64_t kRowBlock = 16;
constexpr int64_t kTokenTile = 64;
static_assert(kMatmulItemRows % kRowBlock == 0, "an item is whole row blocks");

// How much of a call's first rows its thread asks for before it starts. In
// decode each weight byte is used once, straight from memory. Read one row
// after another, or four interleaved rows at a time, a call's rows are one
// sequential stream, which Zen 4's hardware prefetcher follows once it has
// seen a few lines; asking for the first 4 KiB at once (into L2: `prefetcht2`,
// locality 1) saves that start. (The four-row kernels over rows that lie apart
// prefetch the next rows themselves: the hardware does not follow them.)
// Software prefetch further on only competed with the hardware's: with the
// rows 4 KiB ahead asked for as each row was multiplied, one thread decoded the
// 8-layer Q6_K Qwen3 at 28.5-29.7 tokens/s, with only the first rows at 32.5-34.0,
// with none at all at 25.4-30.0 (strata bench -p 1 -n 64 --threads 1, three
// alternating rounds, 2026-12-07).
constexpr int64_t kPrefetchBytes = 4096;

void prefetch_row(const uint8_t* row, size_t bytes) {
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(row + off, 0, 1);
}

}  // namespace

void resize_acts(TensorType weight, int64_t n, int64_t n_tok, PackedActs& out,
                 const DotKernels& k) {
    out.type = dot_act_type(weight);
    out.layout = k.layout[static_cast<size_t>(weight)];
    out.n = n;
    out.n_tok = n_tok;
    out.row_bytes = act_row_bytes(out.type, out.layout, n);
    out.data.resize(out.row_bytes * static_cast<size_t>(n_tok));
}

void pack_acts(TensorType weight, const float* x, int64_t x_stride, int64_t n, int64_t n_tok,
               PackedActs& out, ThreadPool* pool, const DotKernels& k) {
    resize_acts(weight, n, n_tok, out, k);
    auto pack = [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t)
            quantize_act(out.type, x + t * x_stride, out.row(t), n, out.layout, k);
    };
    if (pool && n_tok > 1) {
        pool->parallel_for(n_tok, pack, 8);
    } else {
        pack(0, n_tok);
    }
}

namespace {

// The rows of a call that make whole groups of a row-interleaved layout:
// [first, last). Rows before the first whole group or after the last (a range
// that does not start or end on a group, which the engine's never do) take the
// one-row kernel here.
struct WholeGroups {
    int64_t first, last;
};
WholeGroups whole_groups(const RowsParams& p, const DotKernels& k) {
    const TensorView& w = *p.w;
    const int64_t g = type_traits(w.type).row_group, n = w.ne[0];
    const DotFn dot = k.dot[static_cast<size_t>(w.type)];
    CHECK(dot != nullptr, "a dot kernel exists for the weight type");
    const int64_t first = std::min(p.row_end, (p.row_begin + g - 1) / g * g);
    const int64_t last = std::max(first, p.row_end / g * g);
    auto one_by_one = [&](int64_t r_begin, int64_t r_end) {
        for (int64_t r = r_begin; r < r_end; ++r) {
            for (int64_t t = 0; t < p.n_tok; ++t)
                p.y[t * p.y_stride + (r - p.y_row0)] =
                    dot(n, w.row(r), p.acts->row(p.tokens ? p.tokens[t] : t));
        }
    };
    one_by_one(p.row_begin, first);
    one_by_one(last, p.row_end);
    // The call's rows are one stream: its first bytes, asked for at once.
    if (first < last)
        prefetch_row(
            w.row(first),
            std::min<size_t>(kPrefetchBytes, static_cast<size_t>(last - first) * w.row_bytes));
    return {first, last};
}

// Decode over a row-interleaved layout: each token's whole groups in one call.
void matmul_row_groups(const RowsParams& p, const DotKernels& k) {
    const TensorView& w = *p.w;
    const RowGroupsFn groups = k.row_groups[static_cast<size_t>(w.type)];
    const int64_t g = type_traits(w.type).row_group;
    const auto [first, last] = whole_groups(p, k);
    if (first == last) return;
    for (int64_t t = 0; t < p.n_tok; ++t) {
        groups(w.ne[0], w.row(first), (last - first) / g, p.acts->row(p.tokens ? p.tokens[t] : t),
               p.y + t * p.y_stride + (first - p.y_row0));
    }
}

// Prefill over the _R8 layouts: rows four at a time (half a group), four
// tokens per call, and a last few tokens by whole groups.
void matmul_groups(const RowsParams& p, const DotKernels& k) {
    const TensorView& w = *p.w;
    const auto id = static_cast<size_t>(w.type);
    const int64_t n = w.ne[0];
    const Tile4Fn tile4 = k.tile4[id];
    const RowGroupsFn groups = k.row_groups[id];
    CHECK(tile4 && groups, "an _R8 layout's kernels");
    auto act = [&](int64_t t) { return p.acts->row(p.tokens ? p.tokens[t] : t); };
    const auto [first, last] = whole_groups(p, k);
    for (int64_t r0 = first; r0 < last; r0 += kRowBlock) {
        const int64_t r1 = std::min(last, r0 + kRowBlock);
        for (int64_t t0 = 0; t0 < p.n_tok; t0 += kTokenTile) {
            const int64_t t1 = std::min(p.n_tok, t0 + kTokenTile);
            static_assert(kRowBlock % 8 == 0 && kRowBlock >= 16, "whole groups; room for a tile");
            float out[kRowBlock];
            int64_t t = t0;
            for (; t + 4 <= t1; t += 4) {
                const void* a[4] = {act(t), act(t + 1), act(t + 2), act(t + 3)};
                for (int64_t r = r0; r < r1; r += 4) {
                    tile4(n, w.row(r), a, out);
                    for (int i = 0; i < 16; ++i)
                        p.y[(t + i / 4) * p.y_stride + (r + i % 4 - p.y_row0)] = out[i];
                }
            }
            for (; t < t1; ++t) {
                groups(n, w.row(r0), (r1 - r0) / 8, act(t), out);
                for (int64_t r = r0; r < r1; ++r)
                    p.y[t * p.y_stride + (r - p.y_row0)] = out[r - r0];
            }
        }
    }
}

}  // namespace

void matmul_rows(const RowsParams& p, const DotKernels& k) {
    const auto id = static_cast<size_t>(p.w->type);
    CHECK(p.acts->type == dot_act_type(p.w->type) && p.acts->layout == k.layout[id] &&
              p.acts->n == p.w->ne[0],
          "activations packed for this weight and kernel table");
    // Fewer tokens than a four-token kernel takes (decode), over whole groups.
    if (p.n_tok < 4 && k.row_groups[id]) return matmul_row_groups(p, k);
    if (k.tile4[id]) return matmul_groups(p, k);
    const TensorView& w = *p.w;
    const int64_t n = w.ne[0];
    const DotFn dot = k.dot[static_cast<size_t>(w.type)];
    const Dot4Fn dot4 = k.dot4[static_cast<size_t>(w.type)];
    // Fewer tokens than a four-token kernel takes (decode): four rows at a time
    // share each activation block instead.
    const Rows4Fn rows4 = p.n_tok < 4 ? k.rows4[static_cast<size_t>(w.type)] : nullptr;
    CHECK(dot != nullptr, "a dot kernel exists for the weight type");
    // The call's first rows, asked for at once so they are not read cold: about
    // kPrefetchBytes of them, or the first four for the four-row kernels.
    const int64_t ahead =
        rows4 ? 4
              : std::max<int64_t>(1, (kPrefetchBytes + static_cast<int64_t>(w.row_bytes) - 1) /
                                         static_cast<int64_t>(w.row_bytes));
    for (int64_t r = p.row_begin; r < std::min(p.row_end, p.row_begin + ahead); ++r)
        prefetch_row(w.row(r), w.row_bytes);
    for (int64_t r0 = p.row_begin; r0 < p.row_end; r0 += kRowBlock) {
        const int64_t r1 = std::min(p.row_end, r0 + kRowBlock);
        for (int64_t t0 = 0; t0 < p.n_tok; t0 += kTokenTile) {
            const int64_t t1 = std::min(p.n_tok, t0 + kTokenTile);
            int64_t r = r0;
            for (; rows4 && r + 4 <= r1; r += 4) {
                const void* rows[4] = {w.row(r), w.row(r + 1), w.row(r + 2), w.row(r + 3)};
                // The next four rows, while they are this call's.
                const ptrdiff_t next =
                    t0 == 0 && r + 8 <= p.row_end ? static_cast<ptrdiff_t>(4 * w.row_bytes) : 0;
                for (int64_t t = t0; t < t1; ++t) {
                    float out[4];
                    rows4(n, rows, p.acts->row(p.tokens ? p.tokens[t] : t), out,
                          t == t0 ? next : 0);
                    for (int i = 0; i < 4; ++i) p.y[t * p.y_stride + (r + i - p.y_row0)] = out[i];
                }
            }
            for (; r < r1; ++r) {
                const uint8_t* row = w.row(r);
                float* y = p.y + (r - p.y_row0);
                int64_t t = t0;
                if (dot4) {
                    for (; t + 4 <= t1; t += 4) {
                        const void* a[4];
                        float out[4];
                        for (int i = 0; i < 4; ++i)
                            a[i] = p.acts->row(p.tokens ? p.tokens[t + i] : t + i);
                        dot4(n, row, a, out);
                        for (int i = 0; i < 4; ++i) y[(t + i) * p.y_stride] = out[i];
                    }
                }
                for (; t < t1; ++t) {
                    const void* a = p.acts->row(p.tokens ? p.tokens[t] : t);
                    y[t * p.y_stride] = dot(n, row, a);
                }
            }
        }
    }
}

void matmul(const TensorView& w, int64_t row0, int64_t n_out, const float* x, int64_t x_stride,
            int64_t n_tok, float* y, int64_t y_stride, ThreadPool& pool) {
    const MatmulTarget target{.w = &w, .row0 = row0, .n_out = n_out, .y = y, .y_stride = y_stride};
    matmul_many({&target, 1}, x, x_stride, n_tok, pool);
}

void matmul_many(std::span<const MatmulTarget> targets, const float* x, int64_t x_stride,
                 int64_t n_tok, ThreadPool& pool) {
    // The input once per (activation type, layout) the targets' kernels take.
    const DotKernels& k = dot_kernels();
    std::vector<PackedActs> packed;
    std::vector<size_t> acts_of(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
        const TensorView& w = *targets[i].w;
        const TensorType type = dot_act_type(w.type);
        const ActLayout layout = k.layout[static_cast<size_t>(w.type)];
        size_t a = 0;
        while (a < packed.size() &&
               !(packed[a].type == type && packed[a].layout == layout && packed[a].n == w.ne[0]))
            ++a;
        if (a == packed.size())
            pack_acts(w.type, x, x_stride, w.ne[0], n_tok, packed.emplace_back(), &pool);
        acts_of[i] = a;
    }
    // Items of a few row blocks, each thread taking its own share's in order and
    // then the rest of a slower thread's (`for_each_dynamic`): on a shared
    // machine one core may run slower than the other for a while, and a static
    // half each would leave the faster one idle until the slower one finished.
    struct Item {
        size_t target;
        int64_t begin, end;
    };
    std::vector<Item> items;
    for (size_t i = 0; i < targets.size(); ++i) {
        const MatmulTarget& t = targets[i];
        for (int64_t r = 0; r < t.n_out; r += kMatmulItemRows)
            items.push_back({i, t.row0 + r, t.row0 + std::min(t.n_out, r + kMatmulItemRows)});
    }
    pool.for_each_dynamic(static_cast<int64_t>(items.size()), [&](int64_t i) {
        const Item& item = items[static_cast<size_t>(i)];
        const MatmulTarget& t = targets[item.target];
        matmul_rows({.w = t.w,
                     .row_begin = item.begin,
                     .row_end = item.end,
                     .acts = &packed[acts_of[item.target]],
                     .n_tok = n_tok,
                     .y = t.y,
                     .y_stride = t.y_stride,
                     .y_row0 = t.row0});
    });
}

}  // namespace strata::ops
