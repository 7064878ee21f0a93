#include "model/model.h"

#include "ops/cpu/ops.h"

#include "util/check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace strata {

Result<std::unique_ptr<Model>> Model::load(const gguf::File& file) {
    // The architecture first: a file of one not supported is named as such,
    // whatever its other keys say.
    auto arch_name = file.get_string("general.architecture");
    if (!arch_name) return arch_name.error();
    const ArchSpec* arch = find_arch(std::string(*arch_name));
    if (!arch) {
        return err(
            "{}: architecture '{}' is not supported (supported: llama, qwen2moe, qwen3moe, olmoe, "
            "deepseek, "
            "phimoe, gpt-oss)",
            file.path(), std::string(*arch_name));
    }
    auto hp = read_hparams(file);
    if (!hp) return hp.error();
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
    r.freq_scale =
        hp->rope_scaling_factor > 0 ? 1.0f / hp->rope_scaling_factor : hp->rope_freq_scale;
    r.ext_factor = hp->rope_scaling_type == "yarn" ? 1.0f : 0.0f;
    r.n_ctx_orig = static_cast<int>(hp->n_ctx_orig_yarn ? hp->n_ctx_orig_yarn : hp->n_ctx_train);

    MoeParams& e = m->moe_;
    e.n_expert = static_cast<int>(hp->n_expert);
    e.n_expert_used = static_cast<int>(hp->n_expert_used);
    e.gating = arch->gating;
    e.norm_weights = arch->norm_expert_weights;
    e.weights_scale = hp->expert_weights_scale;
    e.act = arch->activation;
    if (hp->n_expert > 0)
        m->usage_ = ExpertUsage(static_cast<int>(hp->n_layer), static_cast<int>(hp->n_expert));
    return m;
}

std::unique_ptr<KvCache> Model::new_cache(int64_t n_ctx, KvType type) const {
    return std::make_unique<KvCache>(static_cast<int>(hp_.n_layer), n_ctx,
                                     int64_t{hp_.n_head_kv} * hp_.n_embd_head_k,
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

void Model::move_weights(const std::unordered_map<const uint8_t*, MovedWeights>& to) {
    for_each_view(weights_, [&](TensorView& v) {
        if (auto it = to.find(v.data); v.data && it != to.end()) {
            v.data = it->second.data;
            v.type = it->second.type;
        }
    });
}

AttentionParams Model::attention_params(int il) const {
    AttentionParams ap;
    ap.n_head = static_cast<int>(hp_.n_head);
    ap.n_head_kv = static_cast<int>(hp_.n_head_kv);
    ap.head_dim_k = static_cast<int>(hp_.n_embd_head_k);
    ap.head_dim_v = static_cast<int>(hp_.n_embd_head_v);
    ap.scale = 1.0f / std::sqrt(static_cast<float>(hp_.n_embd_head_k));
    // gpt-oss slides its window on even layers; the others attend to everything.
    ap.window = arch_->swa_even_layers && hp_.n_swa > 0 && il % 2 == 0 ? hp_.n_swa : 0;
    return ap;
}

void Model::layer(int il, float* x, int64_t n_tok, std::span<const SeqBatch> seqs,
                  std::span<const int64_t> rows, ThreadPool& pool) const {
    const LayerWeights& w = weights_.layers[static_cast<size_t>(il)];
    const int64_t n_embd = hp_.n_embd;
    const int hk = static_cast<int>(hp_.n_embd_head_k), hv = static_cast<int>(hp_.n_embd_head_v);
    const int64_t q_width = int64_t{hp_.n_head} * hk, k_width = int64_t{hp_.n_head_kv} * hk;
    const int64_t v_width = int64_t{hp_.n_head_kv} * hv, o_width = int64_t{hp_.n_head} * hv;
    const float eps = arch_->norm == NormKind::Layer ? hp_.norm_eps : hp_.norm_rms_eps;

    std::vector<float> cur(static_cast<size_t>(n_tok * n_embd));
    norm_rows(arch_->norm, x, n_tok, n_embd, w.attn_norm, w.attn_norm_b, eps, cur.data());

    std::vector<float> q(static_cast<size_t>(n_tok * q_width)),
        k(static_cast<size_t>(n_tok * k_width)), v(static_cast<size_t>(n_tok * v_width));
    const Linear qkv[] = {{&w.wq, &w.bq, q.data()}, {&w.wk, &w.bk, k.data()}, {&w.wv, &w.bv, v.data()}};
    linear_many(qkv, cur.data(), n_tok, pool);
    if (arch_->qk_norm == QkNorm::Full) {
        norm_rows(NormKind::Rms, q.data(), n_tok, q_width, w.q_norm, {}, hp_.norm_rms_eps,
                  q.data());
        norm_rows(NormKind::Rms, k.data(), n_tok, k_width, w.k_norm, {}, hp_.norm_rms_eps,
                  k.data());
    } else if (arch_->qk_norm == QkNorm::PerHead) {
        norm_rows(NormKind::Rms, q.data(), n_tok * hp_.n_head, hk, w.q_norm, {}, hp_.norm_rms_eps,
                  q.data());
        norm_rows(NormKind::Rms, k.data(), n_tok * hp_.n_head_kv, hk, w.k_norm, {},
                  hp_.norm_rms_eps, k.data());
    }
    // Positions, the KV cache and attention belong to each sequence.
    for (size_t s = 0; s < seqs.size(); ++s) {
        const int64_t r = rows[s], n = static_cast<int64_t>(seqs[s].tokens.size()),
                      pos0 = seqs[s].pos0;
        rope(q.data() + r * q_width, n, q_width, static_cast<int>(hp_.n_head), hk, pos0, rope_);
        rope(k.data() + r * k_width, n, k_width, static_cast<int>(hp_.n_head_kv), hk, pos0, rope_);
        for (int64_t t = 0; t < n; ++t) {
            seqs[s].cache->store(il, pos0 + t, k.data() + (r + t) * k_width,
                                 v.data() + (r + t) * v_width);
        }
    }

    AttentionParams ap = attention_params(il);
    ap.sinks = w.sinks.valid() ? w.sinks.f32() : nullptr;
    std::vector<float> attn(static_cast<size_t>(n_tok * o_width));
    for (size_t s = 0; s < seqs.size(); ++s) {
        attention(q.data() + rows[s] * q_width, static_cast<int64_t>(seqs[s].tokens.size()),
                  seqs[s].pos0, *seqs[s].cache, il, ap, attn.data() + rows[s] * o_width, pool);
    }
    linear(w.wo, w.bo, attn.data(), n_tok, cur.data(), pool);
    for (size_t i = 0; i < cur.size(); ++i) x[i] += cur[i];

    norm_rows(arch_->norm, x, n_tok, n_embd, w.ffn_norm, w.ffn_norm_b, eps, cur.data());
    std::vector<float> ffn(cur.size());
    if (w.is_moe()) {
        const size_t n = static_cast<size_t>(il) + 1;
        const LayerWeights* next = n < weights_.layers.size() && weights_.layers[n].is_moe()
                                       ? &weights_.layers[n]
                                       : nullptr;
        moe_ffn(w, moe_, cur.data(), n_tok, n_embd, ffn.data(), pool, &usage_, il, next);
    } else {
        dense_ffn(w.ffn_gate, w.ffn_up, w.ffn_down, arch_->activation, cur.data(), n_tok,
                  ffn.data(), pool);
    }
    for (size_t i = 0; i < ffn.size(); ++i) x[i] += ffn[i];
}

Status Model::forward(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache,
                      bool all_logits, float* logits, ThreadPool& pool) const {
    const SeqBatch one{.tokens = tokens,
                       .pos0 = pos0,
                       .cache = &cache,
                       .logits = logits,
                       .all_logits = all_logits};
    return forward_batch({&one, 1}, pool);
}

Result<BatchLayout> Model::layout_batch(std::span<const SeqBatch> seqs) const {
    if (seqs.empty()) return err("no sequences to evaluate");
    BatchLayout l;
    l.rows.resize(seqs.size());
    for (size_t s = 0; s < seqs.size(); ++s) {
        const SeqBatch& b = seqs[s];
        const auto n = static_cast<int64_t>(b.tokens.size());
        const std::string which = seqs.size() > 1 ? fmt::format("sequence {}: ", s) : std::string();
        CHECK(b.cache != nullptr, "every sequence has a KV cache");
        if (n == 0) return err("{}no tokens to evaluate", which);
        if (b.pos0 < 0 || b.pos0 + n > b.cache->n_ctx()) {
            return err("{}{} tokens at position {} do not fit the context of {} tokens", which, n,
                       b.pos0, b.cache->n_ctx());
        }
        for (int32_t id : b.tokens) {
            if (id < 0 || static_cast<uint32_t>(id) >= hp_.n_vocab) {
                return err("{}token id {} is outside the vocabulary (0 to {})", which, id,
                           hp_.n_vocab - 1);
            }
        }
        for (size_t o = 0; o < s; ++o) {
            if (seqs[o].cache == b.cache)
                return err("sequences {} and {} share one KV cache", o, s);
        }
        l.rows[s] = l.n_tok;
        if (b.logits) {
            for (int64_t t = b.all_logits ? 0 : n - 1; t < n; ++t)
                l.out_rows.push_back(l.n_tok + t);
        }
        l.n_tok += n;
    }
    return l;
}

void Model::embed(std::span<const SeqBatch> seqs, const BatchLayout& l, float* x) const {
    const int64_t n_embd = hp_.n_embd;
    for (size_t s = 0; s < seqs.size(); ++s) {
        for (size_t t = 0; t < seqs[s].tokens.size(); ++t) {
            weights_.tok_embd.dequantize_row(seqs[s].tokens[t],
                                             x + (l.rows[s] + static_cast<int64_t>(t)) * n_embd);
        }
    }
}

void scatter_logits(std::span<const SeqBatch> seqs, const float* src, int64_t n_vocab) {
    for (const SeqBatch& b : seqs) {
        if (!b.logits) continue;
        const size_t n =
            static_cast<size_t>(b.all_logits ? b.tokens.size() : 1) * static_cast<size_t>(n_vocab);
        std::copy_n(src, n, b.logits);
        src += n;
    }
}

Status Model::forward_batch(std::span<const SeqBatch> seqs, ThreadPool& pool) const {
    auto layout = layout_batch(seqs);
    if (!layout) return layout.error();
    const std::vector<int64_t>& rows = layout->rows;
    const std::vector<int64_t>& out_rows = layout->out_rows;
    const int64_t n_tok = layout->n_tok;

    const int64_t n_embd = hp_.n_embd;
    std::vector<float> x(static_cast<size_t>(n_tok * n_embd));
    embed(seqs, *layout, x.data());

    for (uint32_t il = 0; il < hp_.n_layer; ++il)
        layer(static_cast<int>(il), x.data(), n_tok, seqs, rows, pool);
    if (out_rows.empty()) return {};

    // Only the rows whose logits are wanted go through the output norm and head,
    // all of them in one matrix multiply.
    const auto n_out = static_cast<int64_t>(out_rows.size());
    const int64_t n_vocab = hp_.n_vocab;
    const float eps = arch_->norm == NormKind::Layer ? hp_.norm_eps : hp_.norm_rms_eps;
    std::vector<float> normed(static_cast<size_t>(n_out * n_embd));
    for (int64_t i = 0; i < n_out; ++i) {
        norm_rows(arch_->norm, x.data() + out_rows[i] * n_embd, 1, n_embd, weights_.output_norm,
                  weights_.output_norm_b, eps, normed.data() + i * n_embd);
    }
    std::vector<float> out(static_cast<size_t>(n_out * n_vocab));
    linear(weights_.output, weights_.output_b, normed.data(), n_out, out.data(), pool);
    scatter_logits(seqs, out.data(), n_vocab);
    return {};
}

}  // namespace strata
