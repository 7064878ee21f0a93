// RoPE and attention over one layer's KV rows: the CPU reference of the
// backend ops of the same names (ops/backend.h).
#include "ops/cpu/ops.h"

#include "tensor/fp16.h"
#include "util/check.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace strata::ops {

namespace {

// YaRN's blend between interpolated (low-frequency) and extrapolated
// (high-frequency) rotations for rotation pair i: 1 keeps the original frequency.
float yarn_ramp(float low, float high, int pair) {
    const float y = (static_cast<float>(pair) - low) / std::max(0.001f, high - low);
    return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

// The rotation pair index at which pairs complete `n_rot_beta` turns over the
// original context.
float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot_beta, float base) {
    return static_cast<float>(n_dims) *
           std::log(static_cast<float>(n_ctx_orig) /
                    (n_rot_beta * 2.0f * static_cast<float>(M_PI))) /
           (2.0f * std::log(base));
}

// cos and sin of each rotation pair at one position.
void rope_cache(int64_t pos, const RopeParams& p, float* cos_out, float* sin_out) {
    const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    float low = 0, high = 0;
    if (p.ext_factor != 0.0f) {
        low = std::max(0.0f,
                       std::floor(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_fast, p.freq_base)));
        high = std::min(static_cast<float>(p.n_rot - 1),
                        std::ceil(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_slow, p.freq_base)));
    }
    // The angle is advanced by repeated multiplication, as the reference does, so
    // rounding matches it rather than a fresh pow per pair.
    float theta_extrap = static_cast<float>(pos);
    for (int i = 0; i < p.n_rot / 2; ++i) {
        const float theta_interp = p.freq_scale * theta_extrap;
        float theta = theta_interp;
        float mscale = p.attn_factor;
        if (p.ext_factor != 0.0f) {
            const float mix = yarn_ramp(low, high, i) * p.ext_factor;
            theta = theta_interp * (1 - mix) + theta_extrap * mix;
            mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
        }
        cos_out[i] = std::cos(theta) * mscale;
        sin_out[i] = std::sin(theta) * mscale;
        theta_extrap *= theta_scale;
    }
}

}  // namespace

void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim, int64_t pos0,
          const RopeParams& p) {
    CHECK(p.n_rot > 0 && p.n_rot <= head_dim && p.n_rot % 2 == 0, "rotary dims fit the head");
    std::vector<float> cs(static_cast<size_t>(p.n_rot / 2)), sn(cs.size());
    const int half = p.n_rot / 2;
    for (int64_t t = 0; t < n_tok; ++t) {
        rope_cache(pos0 + t, p, cs.data(), sn.data());
        for (int h = 0; h < n_heads; ++h) {
            float* v = x + t * row_stride + static_cast<int64_t>(h) * head_dim;
            for (int i = 0; i < half; ++i) {
                // NORM rotates adjacent pairs; NeoX rotates element i with i + n_rot/2.
                const int a = p.kind == RopeKind::Norm ? 2 * i : i;
                const int b = p.kind == RopeKind::Norm ? 2 * i + 1 : i + half;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * cs[i] - x1 * sn[i];
                v[b] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
}

void attention(const float* q, int64_t n_tok, int64_t pos0, const KvLayer& kv,
               const AttentionParams& p, float* out, ThreadPool& pool) {
    const int group = p.n_head / p.n_head_kv;
    const int64_t q_stride = int64_t{p.n_head} * p.head_dim_k;
    const int64_t o_stride = int64_t{p.n_head} * p.head_dim_v;
    const size_t elem = kv.f16 ? sizeof(uint16_t) : sizeof(float);
    const auto* k_base = static_cast<const uint8_t*>(kv.k);
    const auto* v_base = static_cast<const uint8_t*>(kv.v);
    // Scores and the weighted sum of values through the kernels of the cache's
    // type, reading keys and values in place.
    const auto kv_type = static_cast<size_t>(kv.f16 ? TensorType::F16 : TensorType::F32);
    const ScoresFn scores = dot_kernels().scores[kv_type];
    const WeightedSumFn weighted_sum = dot_kernels().weighted_sum[kv_type];
    const ExpFn exp_shifted = dot_kernels().exp;
    auto key = [&](int64_t j, int kv_head) {
        return k_base +
               (static_cast<size_t>(j * kv.k_width) + static_cast<size_t>(kv_head) * p.head_dim_k) *
                   elem;
    };
    auto value = [&](int64_t j, int kv_head) {
        return v_base +
               (static_cast<size_t>(j * kv.v_width) + static_cast<size_t>(kv_head) * p.head_dim_v) *
                   elem;
    };
    // A job is one token's query heads that share a KV head, so each cached row
    // is read and converted once for all of them. Groups are halved while that
    // would leave threads without work (decode of a model with few KV heads).
    int heads = group;
    while (heads % 2 == 0 && n_tok * (p.n_head / heads) < 2 * int64_t{pool.size()}) heads /= 2;
    const int64_t jobs_per_token = p.n_head / heads;
    pool.parallel_for(n_tok * jobs_per_token, [&](int64_t begin, int64_t end) {
        // Keys a block at a time: their scores, then each head's block maximum,
        // then all its weights with one vectorised exponential. A head's running
        // output and sum are rescaled at most once per block (online softmax), so
        // no score row longer than a block is kept and long contexts cost no
        // memory beyond the output; per key there is no branch and no scalar `exp`.
        constexpr int64_t kBlock = 64;
        std::vector<float> score(static_cast<size_t>(heads * kBlock)), weight(score.size());
        std::vector<float> max(static_cast<size_t>(heads));
        std::vector<double> sum(max.size());
        for (int64_t job = begin; job < end; ++job) {
            const int64_t t = job / jobs_per_token;
            const int h0 = static_cast<int>(job % jobs_per_token) * heads;
            const int kv_head = h0 / group;
            const int64_t pos = pos0 + t;
            const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
            const float* qh = q + t * q_stride + int64_t{h0} * p.head_dim_k;
            float* oh = out + t * o_stride + int64_t{h0} * p.head_dim_v;
            std::fill(max.begin(), max.end(), -std::numeric_limits<float>::infinity());
            std::fill(sum.begin(), sum.end(), 0.0);
            std::fill(oh, oh + int64_t{heads} * p.head_dim_v, 0.0f);
            // Rescales head i's output and sum to a new maximum.
            auto raise_max = [&](int i, float new_max) {
                const float correction = std::exp(max[i] - new_max);
                float* o = oh + int64_t{i} * p.head_dim_v;
                for (int e = 0; e < p.head_dim_v; ++e) o[e] *= correction;
                sum[i] *= correction;
                max[i] = new_max;
            };
            for (int64_t j0 = first; j0 <= pos; j0 += kBlock) {
                const int64_t nb = std::min(kBlock, pos + 1 - j0);
                scores(p.head_dim_k, key(j0, kv_head), kv.k_width, nb, qh, p.head_dim_k, heads,
                       score.data());
                for (int i = 0; i < heads; ++i) {
                    float* s = score.data() + i * nb;
                    float block_max = -std::numeric_limits<float>::infinity();
                    for (int64_t b = 0; b < nb; ++b) {
                        s[b] *= p.scale;
                        block_max = std::max(block_max, s[b]);
                    }
                    if (block_max > max[i]) raise_max(i, block_max);
                    float* w = weight.data() + i * nb;
                    exp_shifted(nb, s, max[i], w);
                    for (int64_t b = 0; b < nb; ++b) sum[i] += w[b];
                }
                weighted_sum(p.head_dim_v, value(j0, kv_head), kv.v_width, nb, weight.data(), heads,
                             oh, p.head_dim_v);
            }
            for (int i = 0; i < heads; ++i) {
                // A sink is one more logit in the max and the sum that has no value.
                if (p.sinks) {
                    const float sink = p.sinks[h0 + i];
                    if (sink > max[i]) raise_max(i, sink);
                    sum[i] += std::exp(double{sink} - max[i]);
                }
                const float inv = static_cast<float>(1.0 / sum[i]);
                float* o = oh + int64_t{i} * p.head_dim_v;
                for (int e = 0; e < p.head_dim_v; ++e) o[e] *= inv;
            }
        }
    });
}

void kv_store(const KvLayer& kv, int64_t pos, const float* k, const float* v) {
    if (kv.f16) {
        auto* kd = static_cast<uint16_t*>(kv.k) + pos * kv.k_width;
        auto* vd = static_cast<uint16_t*>(kv.v) + pos * kv.v_width;
        for (int64_t i = 0; i < kv.k_width; ++i) kd[i] = fp32_to_fp16(k[i]);
        for (int64_t i = 0; i < kv.v_width; ++i) vd[i] = fp32_to_fp16(v[i]);
    } else {
        std::copy_n(k, kv.k_width, static_cast<float*>(kv.k) + pos * kv.k_width);
        std::copy_n(v, kv.v_width, static_cast<float*>(kv.v) + pos * kv.v_width);
    }
}

}  // namespace strata::ops
