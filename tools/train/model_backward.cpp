// The backward pass of `Model::forward`, layer by layer in reverse. `dx` is the
// gradient of the loss with respect to the residual stream at the point being
// undone; every weight gradient is accumulated into the caller's `grad`.
#include "kernels.h"
#include "model.h"
#include "model_acts.h"

#include <algorithm>
#include <cmath>

namespace strata::train {

SeqLoss Model::forward_backward(std::span<const int32_t> tokens, float gscale,
                                std::span<float> grad, RoutingCounts* routing) const {
    const Config& c = cfg_;
    const int64_t T = static_cast<int64_t>(tokens.size()) - 1, D = c.n_embd, E = c.n_expert,
                  K = c.n_expert_used, F = c.n_ff_exp, H = c.n_head, hd = c.head_dim(),
                  V = c.n_vocab;
    Acts a;
    forward(tokens.first(static_cast<size_t>(T)), a);
    float* g = grad.data();
    SeqLoss loss;

    // Cross-entropy of every position's prediction of the next token.
    std::vector<float> dlogits = std::move(a.logits);
    const float per_tok = gscale / static_cast<float>(T);
    for (int64_t t = 0; t < T; ++t) {
        float* row = &dlogits[t * V];
        const float mx = *std::max_element(row, row + V);
        double sum = 0.0;
        for (int64_t j = 0; j < V; ++j) sum += std::exp(double{row[j]} - mx);
        const int32_t target = tokens[static_cast<size_t>(t + 1)];
        loss.ce += std::log(sum) - (row[target] - mx);
        for (int64_t j = 0; j < V; ++j)
            row[j] = static_cast<float>(std::exp(double{row[j]} - mx) / sum) * per_tok;
        row[target] -= per_tok;
    }
    loss.ce /= static_cast<double>(T);

    std::vector<float> dx(static_cast<size_t>(T * D)), dh(static_cast<size_t>(T * D));
    matmul_tn_acc(dlogits.data(), a.hf.data(), g + layout_.output, T, V, D);
    matmul_nn(dlogits.data(), p(layout_.output), dh.data(), T, V, D, false);
    for (int64_t t = 0; t < T; ++t) {
        rms_norm_bwd(&a.x_final[t * D], p(layout_.output_norm), a.inv_f[t], &dh[t * D], D,
                     &dx[t * D], g + layout_.output_norm, false);
    }

    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    std::vector<float> dq(static_cast<size_t>(T * D)), dk(dq.size()), dv(dq.size()),
        dq_raw(dq.size()), dk_raw(dq.size()), datt(dq.size()), dlogit(static_cast<size_t>(T * E)),
        dw(static_cast<size_t>(T * K));
    for (int il = c.n_layer - 1; il >= 0; --il) {
        const LayerOffsets& o = layout_.layers[static_cast<size_t>(il)];
        const LayerActs& L = a.layers[static_cast<size_t>(il)];

        // Load balancing (Switch Transformer): E * sum_e f_e P_e, with f_e the share of
        // routing choices that went to expert e and P_e its mean router probability.
        // f is a count, so the gradient flows through P only.
        std::vector<float> f(static_cast<size_t>(E)), dp_aux(static_cast<size_t>(E));
        for (int64_t e = 0; e < E; ++e) {
            const auto n = static_cast<int64_t>(L.rows[e].size());
            f[e] = static_cast<float>(n) / static_cast<float>(T * K);
            double pe = 0.0;
            for (int64_t t = 0; t < T; ++t) pe += L.rprob[t * E + e];
            loss.aux += static_cast<double>(E) * f[e] * pe / static_cast<double>(T) / c.n_layer;
            dp_aux[e] = gscale * c.aux_loss_coef * static_cast<float>(E) * f[e] /
                        static_cast<float>(T) / c.n_layer;
            if (routing) routing->counts[static_cast<size_t>(il * E + e)] += n;
        }

        // Experts: the output of token t is sum_j w_tj y_e(h2_t).
        std::fill(dh.begin(), dh.end(), 0.0f);
        std::vector<float> dy, dhh, dgate, dup, dxe;
        for (int64_t e = 0; e < E; ++e) {
            const auto& rows = L.rows[e];
            const auto n = static_cast<int64_t>(rows.size());
            if (n == 0) continue;
            dy.assign(static_cast<size_t>(n * D), 0.0f);
            for (int64_t r = 0; r < n; ++r) {
                const auto [t, j] = rows[r];
                const float w = L.wts[t * K + j];
                float dot = 0.0f;
                for (int64_t d = 0; d < D; ++d) {
                    dy[r * D + d] = w * dx[t * D + d];
                    dot += dx[t * D + d] * L.y[e][r * D + d];
                }
                dw[t * K + j] = dot;
            }
            dhh.resize(static_cast<size_t>(n * F));
            matmul_nn(dy.data(), p(o.down_exps) + e * D * F, dhh.data(), n, D, F, false);
            matmul_tn_acc(dy.data(), L.hh[e].data(), g + o.down_exps + e * D * F, n, D, F);
            dgate.resize(dhh.size()), dup.resize(dhh.size());
            for (int64_t i = 0; i < n * F; ++i) {
                const float gv = L.g[e][i], s = 1.0f / (1.0f + std::exp(-gv));
                dup[i] = dhh[i] * gv * s;
                dgate[i] = dhh[i] * L.u[e][i] * s * (1.0f + gv * (1.0f - s));
            }
            dxe.resize(static_cast<size_t>(n * D));
            matmul_nn(dgate.data(), p(o.gate_exps) + e * F * D, dxe.data(), n, F, D, false);
            matmul_nn(dup.data(), p(o.up_exps) + e * F * D, dxe.data(), n, F, D, true);
            matmul_tn_acc(dgate.data(), L.xe[e].data(), g + o.gate_exps + e * F * D, n, F, D);
            matmul_tn_acc(dup.data(), L.xe[e].data(), g + o.up_exps + e * F * D, n, F, D);
            for (int64_t r = 0; r < n; ++r) {
                for (int64_t d = 0; d < D; ++d) dh[rows[r].first * D + d] += dxe[r * D + d];
            }
        }
        // Router: w_j = p_cj / S with S = sum_j p_cj, then the softmax.
        for (int64_t t = 0; t < T; ++t) {
            const float* pr = &L.rprob[t * E];
            float* dl = &dlogit[t * E];
            std::copy(dp_aux.begin(), dp_aux.end(), dl);
            float s = 0.0f, dw_w = 0.0f;
            for (int64_t j = 0; j < K; ++j) {
                s += pr[L.chosen[t * K + j]];
                dw_w += dw[t * K + j] * L.wts[t * K + j];
            }
            for (int64_t j = 0; j < K; ++j) dl[L.chosen[t * K + j]] += (dw[t * K + j] - dw_w) / s;
            float dot = 0.0f;
            for (int64_t e = 0; e < E; ++e) dot += pr[e] * dl[e];
            for (int64_t e = 0; e < E; ++e) dl[e] = pr[e] * (dl[e] - dot);
        }
        matmul_tn_acc(dlogit.data(), L.h2.data(), g + o.router, T, E, D);
        matmul_nn(dlogit.data(), p(o.router), dh.data(), T, E, D, true);
        for (int64_t t = 0; t < T; ++t) {
            rms_norm_bwd(&L.x_mid[t * D], p(o.ffn_norm), L.inv2[t], &dh[t * D], D, &dx[t * D],
                         g + o.ffn_norm, true);
        }

        // Attention output projection, then each head's softmax(q k^T) v.
        matmul_nn(dx.data(), p(o.wo), datt.data(), T, D, D, false);
        matmul_tn_acc(dx.data(), L.att.data(), g + o.wo, T, D, D);
        std::fill(dq.begin(), dq.end(), 0.0f), std::fill(dk.begin(), dk.end(), 0.0f);
        std::fill(dv.begin(), dv.end(), 0.0f);
        std::vector<float> dprob(static_cast<size_t>(T));
        for (int64_t h = 0; h < H; ++h) {
            for (int64_t i = 0; i < T; ++i) {
                const float* pr = &L.probs[(h * T + i) * T];
                const float* doi = &datt[i * D + h * hd];
                float sum = 0.0f;
                for (int64_t j = 0; j <= i; ++j) {
                    const float* vj = &L.v[j * D + h * hd];
                    float* dvj = &dv[j * D + h * hd];
                    float dpj = 0.0f;
                    for (int64_t d = 0; d < hd; ++d) {
                        dpj += doi[d] * vj[d];
                        dvj[d] += pr[j] * doi[d];
                    }
                    dprob[j] = dpj;
                    sum += pr[j] * dpj;
                }
                const float* qi = &L.q[i * D + h * hd];
                float* dqi = &dq[i * D + h * hd];
                for (int64_t j = 0; j <= i; ++j) {
                    const float ds = pr[j] * (dprob[j] - sum) * scale;
                    const float* kj = &L.k[j * D + h * hd];
                    float* dkj = &dk[j * D + h * hd];
                    for (int64_t d = 0; d < hd; ++d) {
                        dqi[d] += ds * kj[d];
                        dkj[d] += ds * qi[d];
                    }
                }
            }
        }
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t h = 0; h < H; ++h) {
                const int64_t off = t * D + h * hd;
                rope_neox(&dq[off], static_cast<int>(hd), t, c.rope_base, true);
                rope_neox(&dk[off], static_cast<int>(hd), t, c.rope_base, true);
                rms_norm_bwd(&L.q_raw[off], p(o.q_norm), L.q_inv[t * H + h], &dq[off], hd,
                             &dq_raw[off], g + o.q_norm, false);
                rms_norm_bwd(&L.k_raw[off], p(o.k_norm), L.k_inv[t * H + h], &dk[off], hd,
                             &dk_raw[off], g + o.k_norm, false);
            }
        }
        matmul_nn(dq_raw.data(), p(o.wq), dh.data(), T, D, D, false);
        matmul_nn(dk_raw.data(), p(o.wk), dh.data(), T, D, D, true);
        matmul_nn(dv.data(), p(o.wv), dh.data(), T, D, D, true);
        matmul_tn_acc(dq_raw.data(), L.h1.data(), g + o.wq, T, D, D);
        matmul_tn_acc(dk_raw.data(), L.h1.data(), g + o.wk, T, D, D);
        matmul_tn_acc(dv.data(), L.h1.data(), g + o.wv, T, D, D);
        for (int64_t t = 0; t < T; ++t) {
            rms_norm_bwd(&L.x_in[t * D], p(o.attn_norm), L.inv1[t], &dh[t * D], D, &dx[t * D],
                         g + o.attn_norm, true);
        }
    }
    for (int64_t t = 0; t < T; ++t) {
        float* ge = g + layout_.tok_embd + int64_t{tokens[static_cast<size_t>(t)]} * D;
        for (int64_t d = 0; d < D; ++d) ge[d] += dx[t * D + d];
    }
    return loss;
}

}  // namespace strata::train
