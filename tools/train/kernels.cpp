#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace strata::train {

namespace {

// Blocks of B that stay in L2 while every row of A passes over them.
constexpr int64_t kBlockK = 64, kBlockN = 256;

}  // namespace

// AVX2+FMA where the CPU has it, chosen once at load time by the dynamic linker
// (GCC's target_clones); the baseline clone keeps the tool portable.
__attribute__((target_clones("arch=x86-64-v3", "default"))) void matmul_nn(
    const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool accumulate) {
    if (!accumulate) std::memset(c, 0, static_cast<size_t>(m * n) * sizeof(float));
    for (int64_t j0 = 0; j0 < n; j0 += kBlockN) {
        const int64_t nb = std::min(kBlockN, n - j0);
        for (int64_t p0 = 0; p0 < k; p0 += kBlockK) {
            const int64_t p1 = std::min(k, p0 + kBlockK);
            for (int64_t i = 0; i < m; ++i) {
                float* __restrict ci = c + i * n + j0;
                const float* ai = a + i * k;
                int64_t p = p0;
                // Four rows of B per pass over a row of C quarter its loads and stores.
                for (; p + 4 <= p1; p += 4) {
                    const float a0 = ai[p], a1 = ai[p + 1], a2 = ai[p + 2], a3 = ai[p + 3];
                    const float* __restrict b0 = b + p * n + j0;
                    const float* __restrict b1 = b0 + n;
                    const float* __restrict b2 = b1 + n;
                    const float* __restrict b3 = b2 + n;
                    for (int64_t j = 0; j < nb; ++j)
                        ci[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
                }
                for (; p < p1; ++p) {
                    const float ap = ai[p];
                    const float* __restrict bp = b + p * n + j0;
                    for (int64_t j = 0; j < nb; ++j) ci[j] += ap * bp[j];
                }
            }
        }
    }
}

__attribute__((target_clones("arch=x86-64-v3", "default"))) void matmul_tn_acc(
    const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n) {
    // Row p of C stays in L1 while all m rows of B (a few hundred KB at most) pass.
    for (int64_t p = 0; p < k; ++p) {
        float* __restrict cp = c + p * n;
        int64_t i = 0;
        for (; i + 4 <= m; i += 4) {
            const float a0 = a[i * k + p], a1 = a[(i + 1) * k + p], a2 = a[(i + 2) * k + p],
                        a3 = a[(i + 3) * k + p];
            const float* __restrict b0 = b + i * n;
            const float* __restrict b1 = b0 + n;
            const float* __restrict b2 = b1 + n;
            const float* __restrict b3 = b2 + n;
            for (int64_t j = 0; j < n; ++j)
                cp[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j];
        }
        for (; i < m; ++i) {
            const float ai = a[i * k + p];
            const float* __restrict bi = b + i * n;
            for (int64_t j = 0; j < n; ++j) cp[j] += ai * bi[j];
        }
    }
}

float rms_norm_fwd(const float* x, const float* w, float eps, int64_t n, float* y) {
    // Summed in double, as the engine's `ops::rms_norm` does, so both agree.
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double{x[i]} * x[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv * w[i];
    return inv;
}

void rms_norm_bwd(const float* x, const float* w, float inv, const float* dy, int64_t n, float* dx,
                  float* dw, bool accumulate_dx) {
    // y_i = w_i x_i r with r = (mean(x^2) + eps)^-1/2, dr/dx_j = -r^3 x_j / n.
    double dot = 0.0;
    for (int64_t i = 0; i < n; ++i) dot += double{dy[i]} * w[i] * x[i];
    const float c = static_cast<float>(dot) * inv * inv * inv / static_cast<float>(n);
    for (int64_t i = 0; i < n; ++i) {
        const float g = dy[i] * w[i] * inv - x[i] * c;
        dx[i] = accumulate_dx ? dx[i] + g : g;
        dw[i] += dy[i] * x[i] * inv;
    }
}

void rope_neox(float* x, int head_dim, int64_t pos, float freq_base, bool inverse) {
    const int half = head_dim / 2;
    const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(head_dim));
    float theta = static_cast<float>(pos);
    for (int i = 0; i < half; ++i) {
        const float c = std::cos(theta), s = inverse ? -std::sin(theta) : std::sin(theta);
        const float x0 = x[i], x1 = x[i + half];
        x[i] = x0 * c - x1 * s;
        x[i + half] = x0 * s + x1 * c;
        theta *= theta_scale;
    }
}

}  // namespace strata::train
