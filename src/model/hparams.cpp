#include "model/hparams.h"

#include <fmt/format.h>

#include <algorithm>

namespace strata {

namespace {

// Some files store per-layer values (head counts, FFN widths) as arrays; the
// largest entry is what sizes buffers.
Result<std::optional<uint32_t>> read_u32(const gguf::File& f, const std::string& key) {
    const gguf::Value* v = f.find(key);
    if (!v) return std::optional<uint32_t>{};
    int64_t x = 0;
    if (v->type == gguf::ValueType::ARRAY && gguf::is_integer(v->array().elem_type)) {
        const gguf::Array& a = v->array();
        for (uint64_t i = 0; i < a.count; ++i) x = std::max(x, a.get_int(i));
    } else {
        auto r = f.get_int(key);
        if (!r) return r.error();
        x = *r;
    }
    if (x < 0 || x > 0xffffffffll) return err("{}: key '{}' is {}, out of range", f.path(), key, x);
    return std::optional<uint32_t>(static_cast<uint32_t>(x));
}

Status read_opt(const gguf::File& f, const std::string& key, uint32_t& out) {
    auto r = read_u32(f, key);
    if (!r) return r.error();
    if (r->has_value()) out = **r;
    return {};
}

Status read_req(const gguf::File& f, const std::string& key, uint32_t& out) {
    auto r = read_u32(f, key);
    if (!r) return r.error();
    if (!r->has_value()) return err("{}: required key '{}' is missing", f.path(), key);
    out = **r;
    return {};
}

Status read_opt(const gguf::File& f, const std::string& key, float& out) {
    auto r = f.find_float(key);
    if (!r) return r.error();
    if (r->has_value()) out = static_cast<float>(**r);
    return {};
}

}  // namespace

Result<HParams> read_hparams(const gguf::File& f) {
    HParams hp;
    auto arch = f.get_string("general.architecture");
    if (!arch) return arch.error();
    hp.arch = std::string(*arch);
    const std::string p = hp.arch + ".";

    STRATA_TRY(read_req(f, p + "block_count", hp.n_layer));
    // Every layer has tensors of its own, so a count past the file's tensors is a
    // lie; caught here, before anything is sized or looped over by it (the GGUF
    // fuzzer found an 18 KiB file claiming 65536 blocks that took seconds to
    // refuse, and 2^32 - 1 would never finish).
    if (hp.n_layer == 0 || hp.n_layer > f.tensors().size())
        return err("{}: key '{}block_count' is {}, but the file has {} tensors", f.path(), p, hp.n_layer,
                   f.tensors().size());
    STRATA_TRY(read_req(f, p + "embedding_length", hp.n_embd));
    STRATA_TRY(read_req(f, p + "attention.head_count", hp.n_head));
    hp.n_head_kv = hp.n_head;
    STRATA_TRY(read_opt(f, p + "attention.head_count_kv", hp.n_head_kv));
    STRATA_TRY(read_opt(f, p + "context_length", hp.n_ctx_train));
    STRATA_TRY(read_opt(f, p + "feed_forward_length", hp.n_ff));
    if (hp.n_head == 0) return err("{}: key '{}attention.head_count' is 0", f.path(), p);
    if (hp.n_head_kv == 0 || hp.n_head % hp.n_head_kv != 0)
        return err("{}: {} KV heads do not divide {} attention heads", f.path(), hp.n_head_kv,
                   hp.n_head);
    hp.n_embd_head_k = hp.n_embd / hp.n_head;
    STRATA_TRY(read_opt(f, p + "attention.key_length", hp.n_embd_head_k));
    hp.n_embd_head_v = hp.n_embd_head_k;
    STRATA_TRY(read_opt(f, p + "attention.value_length", hp.n_embd_head_v));
    hp.n_rot = hp.n_embd_head_k;
    STRATA_TRY(read_opt(f, p + "rope.dimension_count", hp.n_rot));

    STRATA_TRY(read_opt(f, p + "expert_count", hp.n_expert));
    STRATA_TRY(read_opt(f, p + "expert_used_count", hp.n_expert_used));
    STRATA_TRY(read_opt(f, p + "expert_shared_count", hp.n_expert_shared));
    hp.n_ff_exp = hp.n_ff;
    STRATA_TRY(read_opt(f, p + "expert_feed_forward_length", hp.n_ff_exp));
    hp.n_ff_shexp = hp.n_ff_exp * std::max<uint32_t>(hp.n_expert_shared, 1);
    STRATA_TRY(read_opt(f, p + "expert_shared_feed_forward_length", hp.n_ff_shexp));
    STRATA_TRY(read_opt(f, p + "leading_dense_block_count", hp.n_layer_dense_lead));
    STRATA_TRY(read_opt(f, p + "expert_weights_scale", hp.expert_weights_scale));
    uint64_t n_elements = 0;
    for (const auto& t : f.tensors()) n_elements += t.n_elements;
    if (hp.n_expert > n_elements)  // each expert has weights of its own
        return err("{}: key '{}expert_count' is {}, more than the {} weights in the file", f.path(), p, hp.n_expert,
                   n_elements);
    if (hp.n_expert > 0 && (hp.n_expert_used == 0 || hp.n_expert_used > hp.n_expert))
        return err("{}: key '{}expert_used_count' is {}, expected 1 to {} (the expert count)",
                   f.path(), p, hp.n_expert_used, hp.n_expert);

    STRATA_TRY(read_opt(f, p + "attention.sliding_window", hp.n_swa));
    STRATA_TRY(read_opt(f, p + "rope.freq_base", hp.rope_freq_base));
    STRATA_TRY(read_opt(f, p + "rope.scaling.factor", hp.rope_scaling_factor));
    STRATA_TRY(read_opt(f, p + "rope.scaling.original_context_length", hp.n_ctx_orig_yarn));
    if (f.find(p + "rope.scaling.type")) {
        auto type = f.get_string(p + "rope.scaling.type");
        if (!type) return type.error();
        hp.rope_scaling_type = std::string(*type);
    }
    STRATA_TRY(read_opt(f, p + "attention.layer_norm_rms_epsilon", hp.norm_rms_eps));
    STRATA_TRY(read_opt(f, p + "attention.layer_norm_epsilon", hp.norm_eps));

    // The vocabulary size: the explicit key, else the tokenizer's token list, else
    // the embedding matrix's row count.
    STRATA_TRY(read_opt(f, p + "vocab_size", hp.n_vocab));
    if (hp.n_vocab == 0) {
        if (const gguf::Value* toks = f.find("tokenizer.ggml.tokens");
            toks && toks->type == gguf::ValueType::ARRAY)
            hp.n_vocab = static_cast<uint32_t>(toks->array().count);
        else if (const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight"))
            hp.n_vocab = static_cast<uint32_t>(emb->ne[1]);
    }
    return hp;
}

}  // namespace strata
