#include "ops/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace strata::ops {

void matmul(const TensorView& w, int64_t row0, int64_t n_out, const float* x, int64_t x_stride, int64_t n_tok,
            float* y, int64_t y_stride, ThreadPool& pool) {
    const int64_t n_in = w.ne[0];
    // Each output row is dequantized once and then dotted with every token, so a
    // batch reads the weights once.
    pool.parallel_for(
        n_out,
        [&](int64_t begin, int64_t end) {
            std::vector<float> row(static_cast<size_t>(n_in));
            for (int64_t r = begin; r < end; ++r) {
                w.dequantize_row(row0 + r, row.data());
                for (int64_t t = 0; t < n_tok; ++t) {
                    const float* xt = x + t * x_stride;
                    float sum = 0.0f;
                    for (int64_t i = 0; i < n_in; ++i) sum += row[i] * xt[i];
                    y[t * y_stride + r] = sum;
                }
            }
        },
        16);
}

void rms_norm(const float* x, int64_t n, const float* w, float eps, float* out) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double{x[i]} * x[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void layer_norm(const float* x, int64_t n, const float* w, const float* b, float eps, float* out) {
    double mean = 0.0;
    for (int64_t i = 0; i < n; ++i) mean += x[i];
    mean /= static_cast<double>(n);
    double var = 0.0;
    for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= static_cast<double>(n);
    const float scale = 1.0f / std::sqrt(static_cast<float>(var) + eps);
    for (int64_t i = 0; i < n; ++i) {
        float v = static_cast<float>(x[i] - mean) * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        out[i] = v;
    }
}

void softmax(float* x, int64_t n) {
    const float max = *std::max_element(x, x + n);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - max);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace strata::ops
