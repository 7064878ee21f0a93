#include "model/layout.h"

#include <fmt/format.h>

#include <algorithm>

namespace strata {
namespace {

// What distinguishes the architectures' tensor lists. Everything not named here
// is common: embeddings, RMSNorm before attention and FFN, q/k/v/o projections,
// a dense SwiGLU FFN or stacked routed experts with a router.
struct ArchTraits {
    const char* name;
    bool attn_bias = false;        // q/k/v/o projections have biases (phimoe, gpt-oss)
    bool norm_bias = false;        // LayerNorm with bias instead of RMSNorm (phimoe)
    bool output_bias = false;      // the LM head has a bias (phimoe)
    bool qk_norm_per_head = false; // RMSNorm over each head's q and k (qwen3moe)
    bool qk_norm_full = false;     // RMSNorm over all of q and all of k (olmoe)
    bool attn_sinks = false;       // one learned sink logit per head (gpt-oss)
    bool post_attn_norm = false;   // the FFN's input norm is called post_attention_norm (gpt-oss)
    bool expert_bias = false;      // router and per-expert biases (gpt-oss)
    bool shexp_gate = false;       // shared expert scaled by a sigmoid gate (qwen2moe)
};

constexpr ArchTraits kArchs[] = {
    {.name = "llama"},
    {.name = "qwen2moe", .shexp_gate = true},
    {.name = "qwen3moe", .qk_norm_per_head = true},
    {.name = "olmoe", .qk_norm_full = true},
    {.name = "deepseek"},
    {.name = "phimoe", .attn_bias = true, .norm_bias = true, .output_bias = true},
    {.name = "gpt-oss", .attn_bias = true, .attn_sinks = true, .post_attn_norm = true, .expert_bias = true},
};

const ArchTraits* find_arch(const std::string& name) {
    for (const ArchTraits& a : kArchs) {
        if (name == a.name) return &a;
    }
    return nullptr;
}

class LayoutBuilder {
public:
    void add(std::string name, std::vector<uint64_t> ne, TensorRole role) {
        out.push_back({std::move(name), std::move(ne), role});
    }
    // A norm's weight, and its bias where the architecture uses LayerNorm.
    void norm(const std::string& prefix, uint64_t width, bool with_bias) {
        add(prefix + ".weight", {width}, TensorRole::Scale);
        if (with_bias) add(prefix + ".bias", {width}, TensorRole::Bias);
    }
    // A projection from `in` to `out` features: GGUF stores it as ne = {in, out}.
    void linear(const std::string& prefix, uint64_t in, uint64_t out_features, bool with_bias) {
        add(prefix + ".weight", {in, out_features}, TensorRole::Matrix);
        if (with_bias) add(prefix + ".bias", {out_features}, TensorRole::Bias);
    }

    std::vector<TensorDesc> out;
};

Status check_dims(const HParams& hp) {
    const std::pair<const char*, uint32_t> required[] = {
        {"block_count", hp.n_layer},       {"embedding_length", hp.n_embd},
        {"attention.head_count", hp.n_head}, {"attention.head_count_kv", hp.n_head_kv},
        {"key_length", hp.n_embd_head_k},  {"value_length", hp.n_embd_head_v},
        {"vocab size", hp.n_vocab},
    };
    for (const auto& [what, value] : required) {
        if (value == 0) return err("architecture '{}': {} is 0", hp.arch, what);
    }
    if (hp.n_expert > 0 && (hp.n_ff_exp == 0 || hp.n_expert_used == 0 || hp.n_expert_used > hp.n_expert))
        return err("architecture '{}': {} experts with {} used and expert width {} is not a valid MoE",
                   hp.arch, hp.n_expert, hp.n_expert_used, hp.n_ff_exp);
    const bool has_dense = hp.n_expert == 0 || hp.n_layer_dense_lead > 0;
    if (has_dense && hp.n_ff == 0) return err("architecture '{}': feed_forward_length is 0", hp.arch);
    return {};
}

}  // namespace

const std::vector<std::string>& known_architectures() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const ArchTraits& a : kArchs) v.emplace_back(a.name);
        return v;
    }();
    return names;
}

Result<std::vector<TensorDesc>> tensor_layout(const HParams& hp) {
    const ArchTraits* arch = find_arch(hp.arch);
    if (!arch) {
        return err("unknown architecture '{}' (known: {})", hp.arch, fmt::join(known_architectures(), ", "));
    }
    STRATA_TRY(check_dims(hp));

    const uint64_t n_embd = hp.n_embd;
    const uint64_t q_width = uint64_t{hp.n_head} * hp.n_embd_head_k;
    const uint64_t k_width = uint64_t{hp.n_head_kv} * hp.n_embd_head_k;
    const uint64_t v_width = uint64_t{hp.n_head_kv} * hp.n_embd_head_v;
    const uint64_t attn_out_width = uint64_t{hp.n_head} * hp.n_embd_head_v;

    LayoutBuilder b;
    b.add("token_embd.weight", {n_embd, hp.n_vocab}, TensorRole::Matrix);
    b.norm("output_norm", n_embd, arch->norm_bias);
    b.linear("output", n_embd, hp.n_vocab, arch->output_bias);

    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        const std::string blk = fmt::format("blk.{}.", il);
        b.norm(blk + "attn_norm", n_embd, arch->norm_bias);
        b.linear(blk + "attn_q", n_embd, q_width, arch->attn_bias);
        b.linear(blk + "attn_k", n_embd, k_width, arch->attn_bias);
        b.linear(blk + "attn_v", n_embd, v_width, arch->attn_bias);
        b.linear(blk + "attn_output", attn_out_width, n_embd, arch->attn_bias);
        if (arch->qk_norm_per_head) {
            b.norm(blk + "attn_q_norm", hp.n_embd_head_k, false);
            b.norm(blk + "attn_k_norm", hp.n_embd_head_k, false);
        }
        if (arch->qk_norm_full) {
            b.norm(blk + "attn_q_norm", q_width, false);
            b.norm(blk + "attn_k_norm", k_width, false);
        }
        if (arch->attn_sinks) b.add(blk + "attn_sinks.weight", {hp.n_head}, TensorRole::Bias);
        b.norm(blk + (arch->post_attn_norm ? "post_attention_norm" : "ffn_norm"), n_embd, arch->norm_bias);

        const bool dense = hp.n_expert == 0 || il < hp.n_layer_dense_lead;
        if (dense) {
            b.linear(blk + "ffn_gate", n_embd, hp.n_ff, false);
            b.linear(blk + "ffn_up", n_embd, hp.n_ff, false);
            b.linear(blk + "ffn_down", hp.n_ff, n_embd, false);
            continue;
        }
        const uint64_t n_exp = hp.n_expert;
        const uint64_t n_ff_exp = hp.n_ff_exp;
        b.add(blk + "ffn_gate_inp.weight", {n_embd, n_exp}, TensorRole::Router);
        b.add(blk + "ffn_gate_exps.weight", {n_embd, n_ff_exp, n_exp}, TensorRole::Matrix);
        b.add(blk + "ffn_up_exps.weight", {n_embd, n_ff_exp, n_exp}, TensorRole::Matrix);
        b.add(blk + "ffn_down_exps.weight", {n_ff_exp, n_embd, n_exp}, TensorRole::Matrix);
        if (arch->expert_bias) {
            b.add(blk + "ffn_gate_inp.bias", {n_exp}, TensorRole::Bias);
            b.add(blk + "ffn_gate_exps.bias", {n_ff_exp, n_exp}, TensorRole::Bias);
            b.add(blk + "ffn_up_exps.bias", {n_ff_exp, n_exp}, TensorRole::Bias);
            b.add(blk + "ffn_down_exps.bias", {n_embd, n_exp}, TensorRole::Bias);
        }
        // qwen2moe names its shared expert's width; deepseek runs n_expert_shared
        // experts of the routed width side by side, which is one FFN that wide.
        const uint64_t n_ff_shexp = arch->shexp_gate ? hp.n_ff_shexp : uint64_t{hp.n_expert_shared} * hp.n_ff_exp;
        if (n_ff_shexp > 0 && (arch->shexp_gate || hp.n_expert_shared > 0)) {
            b.linear(blk + "ffn_gate_shexp", n_embd, n_ff_shexp, false);
            b.linear(blk + "ffn_up_shexp", n_embd, n_ff_shexp, false);
            b.linear(blk + "ffn_down_shexp", n_ff_shexp, n_embd, false);
            if (arch->shexp_gate) b.add(blk + "ffn_gate_inp_shexp.weight", {n_embd}, TensorRole::Bias);
        }
    }
    return std::move(b.out);
}

}  // namespace strata
