#include "model/blocks.h"

#include "ops/cpu/ops.h"
#include "util/check.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace strata {

void norm_rows(NormKind kind, const float* x, int64_t n_tok, int64_t width, const TensorView& w,
               const TensorView& b, float eps, float* out) {
    const float* wp = w.valid() ? w.f32() : nullptr;
    const float* bp = b.valid() ? b.f32() : nullptr;
    for (int64_t t = 0; t < n_tok; ++t) {
        const float* xi = x + t * width;
        float* yi = out + t * width;
        if (kind == NormKind::Layer) {
            ops::layer_norm(xi, width, wp, bp, eps, yi);
        } else {
            // RMSNorm, plus a bias where the architecture has one (phimoe).
            ops::rms_norm(xi, width, wp, eps, yi);
            if (bp) {
                for (int64_t i = 0; i < width; ++i) yi[i] += bp[i];
            }
        }
    }
}

void attention(const float* q, int64_t n_tok, int64_t pos0, const KvCache& cache, int layer,
               const AttentionParams& p, float* out, ThreadPool& pool) {
    ops::attention(q, n_tok, pos0, cache.layer(layer), p, out, pool);
}

void linear(const TensorView& w, const TensorView& b, const float* x, int64_t n_tok, float* y,
            ThreadPool& pool) {
    const Linear out{&w, &b, y};
    linear_many({&out, 1}, x, n_tok, pool);
}

void linear_many(std::span<const Linear> outs, const float* x, int64_t n_tok, ThreadPool& pool) {
    std::vector<ops::MatmulTarget> targets;
    for (const Linear& o : outs) {
        const int64_t n_out = o.w->ne[1];
        targets.push_back({.w = o.w, .row0 = 0, .n_out = n_out, .y = o.y, .y_stride = n_out});
        CHECK(o.w->ne[0] == outs[0].w->ne[0], "linear_many's matrices take the same input");
    }
    ops::matmul_many(targets, x, outs[0].w->ne[0], n_tok, pool);
    for (const Linear& o : outs) {
        if (!o.b->valid()) continue;
        const int64_t n_out = o.w->ne[1];
        const float* bp = o.b->f32();
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t i = 0; i < n_out; ++i) o.y[t * n_out + i] += bp[i];
        }
    }
}

}  // namespace strata
