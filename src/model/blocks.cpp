#include "model/blocks.h"

#include "ops/cpu/ops.h"
#include "util/check.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

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
    const int64_t n_out = w.ne[1];
    ops::matmul(w, 0, n_out, x, w.ne[0], n_tok, y, n_out, pool);
    if (b.valid()) {
        const float* bp = b.f32();
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t i = 0; i < n_out; ++i) y[t * n_out + i] += bp[i];
        }
    }
}

}  // namespace strata
