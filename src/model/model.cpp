#include "model/model.h"

#include "ops/cpu/ops.h"

#include <cmath>
#include <vector>

namespace strata {

Result<std::unique_ptr<Model>> Model::load(const gguf::File& file) {
    auto hp = read_hparams(file);
    if (!hp) return hp.error();
    const ArchSpec* arch = find_arch(hp->arch);
    if (!arch) {
        return err("{}: architecture '{}' is not supported (supported: llama, qwen2moe, qwen3moe, olmoe, deepseek, "
                   "phimoe, gpt-oss)",
                   file.path(), hp->arch);
    }
    auto weights = bind_weights(file, *arch, *hp);
    if (!weights) return weights.error();

    std::unique_ptr<Model> m(new Model());
    m->hp_ = *hp;
    m->arch_ = arch;
    m->weights_ = std::move(*weights);

    RopeParams& r = m->rope_;
    r.kind = arch->rope;
    r.n_rot = static_cast<int>(hp->n_rot);
    r.freq_base = hp->rope_freq_base;
    r.freq_scale = hp->rope_scaling_factor > 0 ? 1.0f / hp->rope_scaling_factor : hp->rope_freq_scale;
    r.ext_factor = hp->rope_scaling_type == "yarn" ? 1.0f : 0.0f;
    r.n_ctx_orig = static_cast<int>(hp->n_ctx_orig_yarn ? hp->n_ctx_orig_yarn : hp->n_ctx_train);

    MoeParams& e = m->moe_;
    e.n_expert = static_cast<int>(hp->n_expert);
    e.n_expert_used = static_cast<int>(hp->n_expert_used);
    e.gating = arch->gating;
    e.norm_weights = arch->norm_expert_weights;
    e.weights_scale = hp->expert_weights_scale;
    e.act = arch->activation;
    if (hp->n_expert > 0) m->usage_ = ExpertUsage(static_cast<int>(hp->n_layer), static_cast<int>(hp->n_expert));
    return m;
}

std::unique_ptr<KvCache> Model::new_cache(int64_t n_ctx, KvType type) const {
    return std::make_unique<KvCache>(static_cast<int>(hp_.n_layer), n_ctx, int64_t{hp_.n_head_kv} * hp_.n_embd_head_k,
                                     int64_t{hp_.n_head_kv} * hp_.n_embd_head_v, type);
}

bool Model::attach_experts(std::string_view name, const ExpertSource* source) {
    for (LayerWeights& l : weights_.layers) {
        for (TensorView* v : {&l.gate_exps, &l.up_exps, &l.down_exps}) {
            if (v->valid() && v->name == name) {
                v->experts = source;
                return true;
            }
        }
    }
    return false;
}

void Model::layer(int il, float* x, int64_t n_tok, int64_t pos0, KvCache& cache, ThreadPool& pool) const {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(il)];
    const int64_t n_embd = hp_.n_embd;
    const int hk = static_cast<int>(hp_.n_embd_head_k), hv = static_cast<int>(hp_.n_embd_head_v);
    const int64_t q_width = int64_t{hp_.n_head} * hk, k_width = int64_t{hp_.n_head_kv} * hk;
    const int64_t v_width = int64_t{hp_.n_head_kv} * hv, o_width = int64_t{hp_.n_head} * hv;
    const float eps = arch_->norm == NormKind::Layer ? hp_.norm_eps : hp_.norm_rms_eps;

    std::vector<float> cur(static_cast<size_t>(n_tok * n_embd));
    norm_rows(arch_->norm, x, n_tok, n_embd, w.attn_norm, w.attn_norm_b, eps, cur.data());

    std::vector<float> q(static_cast<size_t>(n_tok * q_width)), k(static_cast<size_t>(n_tok * k_width)),
        v(static_cast<size_t>(n_tok * v_width));
    linear(w.wq, w.bq, cur.data(), n_tok, q.data(), pool);
    linear(w.wk, w.bk, cur.data(), n_tok, k.data(), pool);
    linear(w.wv, w.bv, cur.data(), n_tok, v.data(), pool);
    if (arch_->qk_norm == QkNorm::Full) {
        norm_rows(NormKind::Rms, q.data(), n_tok, q_width, w.q_norm, {}, hp_.norm_rms_eps, q.data());
        norm_rows(NormKind::Rms, k.data(), n_tok, k_width, w.k_norm, {}, hp_.norm_rms_eps, k.data());
    } else if (arch_->qk_norm == QkNorm::PerHead) {
        norm_rows(NormKind::Rms, q.data(), n_tok * hp_.n_head, hk, w.q_norm, {}, hp_.norm_rms_eps, q.data());
        norm_rows(NormKind::Rms, k.data(), n_tok * hp_.n_head_kv, hk, w.k_norm, {}, hp_.norm_rms_eps, k.data());
    }
    rope(q.data(), n_tok, q_width, static_cast<int>(hp_.n_head), hk, pos0, rope_);
    rope(k.data(), n_tok, k_width, static_cast<int>(hp_.n_head_kv), hk, pos0, rope_);
    for (int64_t t = 0; t < n_tok; ++t) cache.store(il, pos0 + t, k.data() + t * k_width, v.data() + t * v_width);

    AttentionParams ap;
    ap.n_head = static_cast<int>(hp_.n_head);
    ap.n_head_kv = static_cast<int>(hp_.n_head_kv);
    ap.head_dim_k = hk;
    ap.head_dim_v = hv;
    ap.scale = 1.0f / std::sqrt(static_cast<float>(hk));
    // gpt-oss slides its window on even layers; the others attend to everything.
    ap.window = arch_->swa_even_layers && hp_.n_swa > 0 && il % 2 == 0 ? hp_.n_swa : 0;
    ap.sinks = w.sinks.valid() ? w.sinks.f32() : nullptr;
    std::vector<float> attn(static_cast<size_t>(n_tok * o_width));
    attention(q.data(), n_tok, pos0, cache, il, ap, attn.data(), pool);
    linear(w.wo, w.bo, attn.data(), n_tok, cur.data(), pool);
    for (size_t i = 0; i < cur.size(); ++i) x[i] += cur[i];

    norm_rows(arch_->norm, x, n_tok, n_embd, w.ffn_norm, w.ffn_norm_b, eps, cur.data());
    std::vector<float> ffn(cur.size());
    if (w.is_moe()) {
        moe_ffn(w, moe_, cur.data(), n_tok, n_embd, ffn.data(), pool, &usage_, il);
    } else {
        dense_ffn(w.ffn_gate, w.ffn_up, w.ffn_down, arch_->activation, cur.data(), n_tok, ffn.data(), pool);
    }
    for (size_t i = 0; i < ffn.size(); ++i) x[i] += ffn[i];
}

Status Model::forward(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits, float* logits,
                      ThreadPool& pool) const {
    const auto n_tok = static_cast<int64_t>(tokens.size());
    if (n_tok == 0) return err("no tokens to evaluate");
    if (pos0 < 0 || pos0 + n_tok > cache.n_ctx()) {
        return err("{} tokens at position {} do not fit the context of {} tokens", n_tok, pos0, cache.n_ctx());
    }
    for (int32_t id : tokens) {
        if (id < 0 || static_cast<uint32_t>(id) >= hp_.n_vocab) {
            return err("token id {} is outside the vocabulary (0 to {})", id, hp_.n_vocab - 1);
        }
    }
    const int64_t n_embd = hp_.n_embd;
    std::vector<float> x(static_cast<size_t>(n_tok * n_embd));
    for (int64_t t = 0; t < n_tok; ++t) weights_.tok_embd.dequantize_row(tokens[t], x.data() + t * n_embd);

    for (uint32_t il = 0; il < hp_.n_layer; ++il) layer(static_cast<int>(il), x.data(), n_tok, pos0, cache, pool);

    // Only the rows whose logits are wanted go through the output norm and head.
    const int64_t first = all_logits ? 0 : n_tok - 1;
    const int64_t n_out = n_tok - first;
    const float eps = arch_->norm == NormKind::Layer ? hp_.norm_eps : hp_.norm_rms_eps;
    std::vector<float> normed(static_cast<size_t>(n_out * n_embd));
    norm_rows(arch_->norm, x.data() + first * n_embd, n_out, n_embd, weights_.output_norm, weights_.output_norm_b, eps,
              normed.data());
    linear(weights_.output, weights_.output_b, normed.data(), n_out, logits, pool);
    return {};
}

}  // namespace strata
