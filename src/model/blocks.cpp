#include "model/blocks.h"

#include "ops/cpu/ops.h"
#include "util/check.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace strata {

void norm_rows(NormKind kind, const float* x, int64_t n_tok, int64_t width, const TensorView& w, const TensorView& b,
               float eps, float* out) {
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
           std::log(static_cast<float>(n_ctx_orig) / (n_rot_beta * 2.0f * static_cast<float>(M_PI))) /
           (2.0f * std::log(base));
}

// cos and sin of each rotation pair at one position.
void rope_cache(int64_t pos, const RopeParams& p, float* cos_out, float* sin_out) {
    const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    float low = 0, high = 0;
    if (p.ext_factor != 0.0f) {
        low = std::max(0.0f, std::floor(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_fast, p.freq_base)));
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

void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim, int64_t pos0, const RopeParams& p) {
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

void attention(const float* q, int64_t n_tok, int64_t pos0, const KvCache& cache, int layer,
               const AttentionParams& p, float* out, ThreadPool& pool) {
    const int group = p.n_head / p.n_head_kv;
    const int64_t q_stride = int64_t{p.n_head} * p.head_dim_k;
    const int64_t o_stride = int64_t{p.n_head} * p.head_dim_v;
    pool.parallel_for(n_tok * p.n_head, [&](int64_t begin, int64_t end) {
        std::vector<float> scores, k(static_cast<size_t>(p.head_dim_k)), v(static_cast<size_t>(p.head_dim_v));
        for (int64_t job = begin; job < end; ++job) {
            const int64_t t = job / p.n_head;
            const int h = static_cast<int>(job % p.n_head);
            const int kv_head = h / group;
            const int64_t pos = pos0 + t;
            const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
            const float* qh = q + t * q_stride + int64_t{h} * p.head_dim_k;
            scores.resize(static_cast<size_t>(pos - first + 1));
            for (int64_t j = first; j <= pos; ++j) {
                cache.load_k(layer, j, int64_t{kv_head} * p.head_dim_k, p.head_dim_k, k.data());
                float dot = 0.0f;
                for (int i = 0; i < p.head_dim_k; ++i) dot += qh[i] * k[i];
                scores[j - first] = dot * p.scale;
            }
            // Softmax; a sink is one more logit in the max and the sum that has no value.
            float max = *std::max_element(scores.begin(), scores.end());
            if (p.sinks) max = std::max(max, p.sinks[h]);
            double sum = p.sinks ? std::exp(double{p.sinks[h]} - max) : 0.0;
            for (float& s : scores) {
                s = std::exp(s - max);
                sum += s;
            }
            const float inv = static_cast<float>(1.0 / sum);
            float* oh = out + t * o_stride + int64_t{h} * p.head_dim_v;
            std::fill(oh, oh + p.head_dim_v, 0.0f);
            for (int64_t j = first; j <= pos; ++j) {
                cache.load_v(layer, j, int64_t{kv_head} * p.head_dim_v, p.head_dim_v, v.data());
                const float w = scores[j - first] * inv;
                for (int i = 0; i < p.head_dim_v; ++i) oh[i] += w * v[i];
            }
        }
    });
}

void linear(const TensorView& w, const TensorView& b, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
    const int64_t n_out = w.ne[1];
    ops::matmul(w, 0, n_out, x, w.ne[0], n_tok, y, n_out, pool);
    if (b.valid()) {
        const float* bp = b.f32();
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t i = 0; i < n_out; ++i) y[t * n_out + i] += bp[i];
        }
    }
}

namespace {

// gpt-oss's SwiGLU: the gate is clamped from above only, the up projection on
// both sides and shifted by one.
constexpr float kOaiAlpha = 1.702f;
constexpr float kOaiLimit = 7.0f;

void activate(Activation act, const float* gate, const float* up, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) {
        if (act == Activation::SwiGlu) {
            out[i] = ops::silu(gate[i]) * up[i];
        } else {
            const float g = std::min(gate[i], kOaiLimit);
            const float u = std::clamp(up[i], -kOaiLimit, kOaiLimit);
            out[i] = g / (1.0f + std::exp(-kOaiAlpha * g)) * (u + 1.0f);
        }
    }
}

// One expert (or dense FFN) on a group of tokens: rows [e * n_ff, (e + 1) * n_ff)
// of the stacked gate/up tensors and [e * n_embd, ...) of down.
void expert_ffn(const TensorView& gate, const TensorView& up, const TensorView& down, const float* gate_b,
                const float* up_b, const float* down_b, int64_t expert, Activation act, const float* x, int64_t n_tok,
                float* out, ThreadPool& pool) {
    const int64_t n_in = gate.ne[0], n_ff = gate.ne[1], n_out = down.ne[1];
    std::vector<float> g(static_cast<size_t>(n_tok * n_ff)), u(g.size());
    ops::matmul(gate, expert * n_ff, n_ff, x, n_in, n_tok, g.data(), n_ff, pool);
    ops::matmul(up, expert * n_ff, n_ff, x, n_in, n_tok, u.data(), n_ff, pool);
    for (int64_t t = 0; t < n_tok; ++t) {
        float* gt = g.data() + t * n_ff;
        float* ut = u.data() + t * n_ff;
        if (gate_b) {
            for (int64_t i = 0; i < n_ff; ++i) gt[i] += gate_b[i];
        }
        if (up_b) {
            for (int64_t i = 0; i < n_ff; ++i) ut[i] += up_b[i];
        }
        activate(act, gt, ut, n_ff, gt);
    }
    ops::matmul(down, expert * n_out, n_out, g.data(), n_ff, n_tok, out, n_out, pool);
    if (down_b) {
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t i = 0; i < n_out; ++i) out[t * n_out + i] += down_b[i];
        }
    }
}

const float* bias_of(const TensorView& b, int64_t expert) {
    return b.valid() ? b.f32() + expert * b.ne[0] : nullptr;
}

}  // namespace

void dense_ffn(const TensorView& gate, const TensorView& up, const TensorView& down, Activation act, const float* x,
               int64_t n_tok, float* out, ThreadPool& pool) {
    expert_ffn(gate, up, down, nullptr, nullptr, nullptr, 0, act, x, n_tok, out, pool);
}

void moe_ffn(const LayerWeights& w, const MoeParams& p, const float* x, int64_t n_tok, int64_t n_embd, float* out,
             ThreadPool& pool, ExpertUsage* usage, int il) {
    const int n_exp = p.n_expert, k = p.n_expert_used;
    std::vector<float> logits(static_cast<size_t>(n_tok * n_exp));
    linear(w.gate_inp, w.gate_inp_b, x, n_tok, logits.data(), pool);

    // Route: per token, k experts and their weights.
    std::vector<int> chosen(static_cast<size_t>(n_tok * k));
    std::vector<float> weight(chosen.size());
    std::vector<int> order(static_cast<size_t>(n_exp));
    for (int64_t t = 0; t < n_tok; ++t) {
        float* lt = logits.data() + t * n_exp;
        if (p.gating == Gating::Softmax) ops::softmax(lt, n_exp);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) { return lt[a] > lt[b]; });
        float* wt = weight.data() + t * k;
        for (int j = 0; j < k; ++j) {
            chosen[t * k + j] = order[j];
            wt[j] = lt[order[j]];
        }
        if (p.gating == Gating::SoftmaxTopK) ops::softmax(wt, k);
        if (p.norm_weights) {
            // The reference clamps the divisor so an all-zero selection stays finite.
            float sum = 0.0f;
            for (int j = 0; j < k; ++j) sum += wt[j];
            sum = std::max(sum, 6.103515625e-5f);
            for (int j = 0; j < k; ++j) wt[j] /= sum;
        }
        if (p.weights_scale != 0.0f && p.weights_scale != 1.0f) {
            for (int j = 0; j < k; ++j) wt[j] *= p.weights_scale;
        }
    }

    // Group tokens by expert so each expert's rows are read once for the batch.
    std::fill(out, out + n_tok * n_embd, 0.0f);
    std::vector<float> xs, ys;
    std::vector<int64_t> tokens;
    std::vector<float> token_w;
    for (int e = 0; e < n_exp; ++e) {
        tokens.clear();
        token_w.clear();
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int j = 0; j < k; ++j) {
                if (chosen[t * k + j] == e) {
                    tokens.push_back(t);
                    token_w.push_back(weight[t * k + j]);
                }
            }
        }
        if (tokens.empty()) continue;
        if (usage) usage->add(il, e, tokens.size());
        const auto m = static_cast<int64_t>(tokens.size());
        xs.resize(static_cast<size_t>(m * n_embd));
        ys.resize(xs.size());
        for (int64_t i = 0; i < m; ++i) std::copy_n(x + tokens[i] * n_embd, n_embd, xs.data() + i * n_embd);
        // Expert e's matrices, wherever their tier put them (the disk tier's cache).
        const ExpertRows gate = expert_rows(w.gate_exps, e), up = expert_rows(w.up_exps, e),
                         down = expert_rows(w.down_exps, e);
        expert_ffn(gate.view, up.view, down.view, bias_of(w.gate_exps_b, e), bias_of(w.up_exps_b, e),
                   bias_of(w.down_exps_b, e), 0, p.act, xs.data(), m, ys.data(), pool);
        for (int64_t i = 0; i < m; ++i) {
            float* o = out + tokens[i] * n_embd;
            const float* y = ys.data() + i * n_embd;
            for (int64_t c = 0; c < n_embd; ++c) o[c] += token_w[i] * y[c];
        }
    }

    if (!w.gate_shexp.valid()) return;
    std::vector<float> shared(static_cast<size_t>(n_tok * n_embd));
    dense_ffn(w.gate_shexp, w.up_shexp, w.down_shexp, p.act, x, n_tok, shared.data(), pool);
    for (int64_t t = 0; t < n_tok; ++t) {
        float scale = 1.0f;
        if (w.gate_inp_shexp.valid()) {
            const float* g = w.gate_inp_shexp.f32();
            float dot = 0.0f;
            for (int64_t c = 0; c < n_embd; ++c) dot += g[c] * x[t * n_embd + c];
            scale = ops::sigmoid(dot);
        }
        for (int64_t c = 0; c < n_embd; ++c) out[t * n_embd + c] += scale * shared[t * n_embd + c];
    }
}

}  // namespace strata
