// The forward pass keeps every activation the backward pass reads (`Acts`); the
// backward pass walks the layers in reverse, each step the transposed chain rule
// of its forward step. Experts run grouped: the tokens routed to an expert are
// gathered into one matrix so each expert is one matrix product, forward and back.
#include "model.h"

#include "kernels.h"
#include "model_acts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace strata::train {

Layout make_layout(const Config& c) {
    Layout l;
    const uint64_t D = c.n_embd, V = c.n_vocab, E = c.n_expert, F = c.n_ff_exp, hd = c.head_dim();
    auto add = [&](std::string name, std::vector<uint64_t> ne, bool is_norm) {
        uint64_t n = 1;
        for (uint64_t d : ne) n *= d;
        l.tensors.push_back({std::move(name), l.total, std::move(ne), is_norm});
        l.total += n;
        return l.tensors.back().offset;
    };
    l.tok_embd = add("token_embd.weight", {D, V}, false);
    l.output_norm = add("output_norm.weight", {D}, true);
    l.output = add("output.weight", {D, V}, false);
    for (int il = 0; il < c.n_layer; ++il) {
        const std::string b = fmt::format("blk.{}.", il);
        LayerOffsets o{};
        o.attn_norm = add(b + "attn_norm.weight", {D}, true);
        o.wq = add(b + "attn_q.weight", {D, D}, false);
        o.wk = add(b + "attn_k.weight", {D, D}, false);
        o.wv = add(b + "attn_v.weight", {D, D}, false);
        o.wo = add(b + "attn_output.weight", {D, D}, false);
        o.q_norm = add(b + "attn_q_norm.weight", {hd}, true);
        o.k_norm = add(b + "attn_k_norm.weight", {hd}, true);
        o.ffn_norm = add(b + "ffn_norm.weight", {D}, true);
        o.router = add(b + "ffn_gate_inp.weight", {D, E}, false);
        o.gate_exps = add(b + "ffn_gate_exps.weight", {D, F, E}, false);
        o.up_exps = add(b + "ffn_up_exps.weight", {D, F, E}, false);
        o.down_exps = add(b + "ffn_down_exps.weight", {F, D, E}, false);
        l.layers.push_back(o);
    }
    return l;
}

std::vector<float> init_params(const Config& c, uint64_t seed) {
    const Layout l = make_layout(c);
    std::vector<float> p(l.total);
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    const float resid_scale = 1.0f / std::sqrt(2.0f * static_cast<float>(c.n_layer));
    for (const TensorRef& t : l.tensors) {
        uint64_t n = 1;
        for (uint64_t d : t.ne) n *= d;
        const bool resid =
            t.name.ends_with("attn_output.weight") || t.name.ends_with("ffn_down_exps.weight");
        for (uint64_t i = 0; i < n; ++i)
            p[t.offset + i] = t.is_norm ? 1.0f : normal(rng) * (resid ? resid_scale : 1.0f);
    }
    return p;
}

Model::Model(Config c, std::vector<float> params)
    : cfg_(c), layout_(make_layout(c)), params_(std::move(params)) {
    update_transposed();
}

void Model::update_transposed() {
    transposed_.resize(params_.size());
    for (const TensorRef& t : layout_.tensors) {
        if (t.ne.size() < 2) continue;
        const uint64_t in = t.ne[0], out = t.ne[1], n_mat = t.ne.size() > 2 ? t.ne[2] : 1;
        for (uint64_t e = 0; e < n_mat; ++e) {
            const float* w = params_.data() + t.offset + e * in * out;  // [out, in]
            float* wt = transposed_.data() + t.offset + e * in * out;   // [in, out]
            for (uint64_t o = 0; o < out; ++o) {
                for (uint64_t i = 0; i < in; ++i) wt[i * out + o] = w[o * in + i];
            }
        }
    }
}

void Model::forward(std::span<const int32_t> tokens, Acts& a) const {
    const Config& c = cfg_;
    const int64_t T = static_cast<int64_t>(tokens.size()), D = c.n_embd, E = c.n_expert,
                  K = c.n_expert_used, F = c.n_ff_exp, H = c.n_head, hd = c.head_dim(),
                  V = c.n_vocab;
    a.T = T;
    a.layers.assign(static_cast<size_t>(c.n_layer), {});
    std::vector<float> x(static_cast<size_t>(T * D));
    for (int64_t t = 0; t < T; ++t)
        std::copy_n(p(layout_.tok_embd) + int64_t{tokens[t]} * D, D, x.data() + t * D);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

    for (int il = 0; il < c.n_layer; ++il) {
        const LayerOffsets& o = layout_.layers[static_cast<size_t>(il)];
        LayerActs& L = a.layers[static_cast<size_t>(il)];
        auto sized = [](std::vector<float>& v, int64_t n) {
            v.assign(static_cast<size_t>(n), 0.0f);
        };
        L.x_in = x;
        sized(L.inv1, T), sized(L.h1, T * D), sized(L.q_raw, T * D), sized(L.k_raw, T * D),
            sized(L.v, T * D);
        sized(L.q_inv, T * H), sized(L.k_inv, T * H), sized(L.probs, H * T * T),
            sized(L.att, T * D);
        sized(L.inv2, T), sized(L.h2, T * D), sized(L.rprob, T * E), sized(L.wts, T * K);
        L.chosen.assign(static_cast<size_t>(T * K), 0);

        for (int64_t t = 0; t < T; ++t)
            L.inv1[t] = rms_norm_fwd(&x[t * D], p(o.attn_norm), c.rms_eps, D, &L.h1[t * D]);
        matmul_nn(L.h1.data(), pt(o.wq), L.q_raw.data(), T, D, D, false);
        matmul_nn(L.h1.data(), pt(o.wk), L.k_raw.data(), T, D, D, false);
        matmul_nn(L.h1.data(), pt(o.wv), L.v.data(), T, D, D, false);
        L.q = L.q_raw;
        L.k = L.k_raw;
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t h = 0; h < H; ++h) {
                const int64_t off = t * D + h * hd;
                L.q_inv[t * H + h] =
                    rms_norm_fwd(&L.q_raw[off], p(o.q_norm), c.rms_eps, hd, &L.q[off]);
                L.k_inv[t * H + h] =
                    rms_norm_fwd(&L.k_raw[off], p(o.k_norm), c.rms_eps, hd, &L.k[off]);
                rope_neox(&L.q[off], static_cast<int>(hd), t, c.rope_base, false);
                rope_neox(&L.k[off], static_cast<int>(hd), t, c.rope_base, false);
            }
        }
        // Causal attention, one head at a time.
        for (int64_t h = 0; h < H; ++h) {
            for (int64_t i = 0; i < T; ++i) {
                float* pr = &L.probs[(h * T + i) * T];
                const float* qi = &L.q[i * D + h * hd];
                float mx = -INFINITY;
                for (int64_t j = 0; j <= i; ++j) {
                    const float* kj = &L.k[j * D + h * hd];
                    float s = 0.0f;
                    for (int64_t d = 0; d < hd; ++d) s += qi[d] * kj[d];
                    pr[j] = s * scale;
                    mx = std::max(mx, pr[j]);
                }
                float sum = 0.0f;
                for (int64_t j = 0; j <= i; ++j) sum += (pr[j] = std::exp(pr[j] - mx));
                float* out = &L.att[i * D + h * hd];
                for (int64_t j = 0; j <= i; ++j) {
                    pr[j] /= sum;
                    const float* vj = &L.v[j * D + h * hd];
                    for (int64_t d = 0; d < hd; ++d) out[d] += pr[j] * vj[d];
                }
            }
        }
        std::vector<float> attn_out(static_cast<size_t>(T * D));
        matmul_nn(L.att.data(), pt(o.wo), attn_out.data(), T, D, D, false);
        for (int64_t i = 0; i < T * D; ++i) x[i] += attn_out[i];
        L.x_mid = x;

        for (int64_t t = 0; t < T; ++t)
            L.inv2[t] = rms_norm_fwd(&x[t * D], p(o.ffn_norm), c.rms_eps, D, &L.h2[t * D]);
        matmul_nn(L.h2.data(), pt(o.router), L.rprob.data(), T, D, E, false);
        L.rows.assign(static_cast<size_t>(E), {});
        std::vector<int> order(static_cast<size_t>(E));
        for (int64_t t = 0; t < T; ++t) {
            float* pr = &L.rprob[t * E];
            const float mx = *std::max_element(pr, pr + E);
            float sum = 0.0f;
            for (int64_t e = 0; e < E; ++e) sum += (pr[e] = std::exp(pr[e] - mx));
            for (int64_t e = 0; e < E; ++e) pr[e] /= sum;
            // Top-k with ties to the lower index, as the engine chooses.
            std::iota(order.begin(), order.end(), 0);
            std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int x1, int x2) {
                return pr[x1] != pr[x2] ? pr[x1] > pr[x2] : x1 < x2;
            });
            float s = 0.0f;
            for (int64_t j = 0; j < K; ++j) s += pr[order[j]];
            for (int64_t j = 0; j < K; ++j) {
                L.chosen[t * K + j] = order[j];
                L.wts[t * K + j] = pr[order[j]] / s;
                L.rows[static_cast<size_t>(order[j])].push_back(
                    {static_cast<int>(t), static_cast<int>(j)});
            }
        }
        L.xe.assign(static_cast<size_t>(E), {}), L.g = L.xe, L.u = L.xe, L.hh = L.xe, L.y = L.xe;
        for (int64_t e = 0; e < E; ++e) {
            const auto& rows = L.rows[static_cast<size_t>(e)];
            const auto n = static_cast<int64_t>(rows.size());
            if (n == 0) continue;
            auto& xe = L.xe[e];
            xe.resize(static_cast<size_t>(n * D));
            for (int64_t r = 0; r < n; ++r) std::copy_n(&L.h2[rows[r].first * D], D, &xe[r * D]);
            sized(L.g[e], n * F), sized(L.u[e], n * F), sized(L.hh[e], n * F), sized(L.y[e], n * D);
            matmul_nn(xe.data(), pt(o.gate_exps) + e * F * D, L.g[e].data(), n, D, F, false);
            matmul_nn(xe.data(), pt(o.up_exps) + e * F * D, L.u[e].data(), n, D, F, false);
            for (int64_t i = 0; i < n * F; ++i) L.hh[e][i] = silu(L.g[e][i]) * L.u[e][i];
            matmul_nn(L.hh[e].data(), pt(o.down_exps) + e * D * F, L.y[e].data(), n, F, D, false);
        }
        // Each token adds its experts' weighted outputs in expert order, as the engine does.
        std::vector<std::pair<int, int>> where(static_cast<size_t>(T * K));
        for (int64_t e = 0; e < E; ++e) {
            const auto& rows = L.rows[static_cast<size_t>(e)];
            for (size_t r = 0; r < rows.size(); ++r)
                where[rows[r].first * K + rows[r].second] = {static_cast<int>(e),
                                                             static_cast<int>(r)};
        }
        std::vector<float> moe(static_cast<size_t>(D));
        std::vector<int> js(static_cast<size_t>(K));
        for (int64_t t = 0; t < T; ++t) {
            std::fill(moe.begin(), moe.end(), 0.0f);
            std::iota(js.begin(), js.end(), 0);
            std::sort(js.begin(), js.end(),
                      [&](int j1, int j2) { return L.chosen[t * K + j1] < L.chosen[t * K + j2]; });
            for (int j : js) {
                const auto [e, r] = where[t * K + j];
                const float* y = &L.y[e][r * D];
                for (int64_t d = 0; d < D; ++d) moe[d] += L.wts[t * K + j] * y[d];
            }
            for (int64_t d = 0; d < D; ++d) x[t * D + d] += moe[d];
        }
    }
    a.x_final = x;
    a.inv_f.assign(static_cast<size_t>(T), 0.0f);
    a.hf.assign(static_cast<size_t>(T * D), 0.0f);
    for (int64_t t = 0; t < T; ++t)
        a.inv_f[t] = rms_norm_fwd(&x[t * D], p(layout_.output_norm), c.rms_eps, D, &a.hf[t * D]);
    a.logits.assign(static_cast<size_t>(T * V), 0.0f);
    matmul_nn(a.hf.data(), pt(layout_.output), a.logits.data(), T, D, V, false);
}

std::vector<float> Model::logits(std::span<const int32_t> tokens) const {
    Acts a;
    forward(tokens, a);
    return std::move(a.logits);
}

std::vector<int> Model::routes(std::span<const int32_t> tokens) const {
    Acts a;
    forward(tokens, a);
    std::vector<int> out;
    for (const LayerActs& l : a.layers) out.insert(out.end(), l.chosen.begin(), l.chosen.end());
    return out;
}

}  // namespace strata::train
