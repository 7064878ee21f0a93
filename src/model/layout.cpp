#include "model/layout.h"

#include "model/arch.h"

#include <fmt/format.h>

#include <algorithm>

namespace strata {
namespace {

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
        for (const ArchSpec* a : all_archs()) v.emplace_back(a->name);
        return v;
    }();
    return names;
}

const char* ffn_norm_name(const ArchSpec& arch) { return arch.post_attn_norm_name ? "post_attention_norm" : "ffn_norm"; }

uint64_t shared_expert_width(const ArchSpec& arch, const HParams& hp) {
    switch (arch.shared) {
        case SharedExpert::None: return 0;
        // qwen2moe names its shared expert's width.
        case SharedExpert::SigmoidGated: return hp.n_ff_shexp;
        // deepseek runs n_expert_shared experts of the routed width side by side,
        // which is one FFN that wide.
        case SharedExpert::Plain: return uint64_t{hp.n_expert_shared} * hp.n_ff_exp;
    }
    return 0;
}

Result<std::vector<TensorDesc>> tensor_layout(const HParams& hp) {
    const ArchSpec* arch = find_arch(hp.arch);
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
        if (arch->qk_norm == QkNorm::PerHead) {
            b.norm(blk + "attn_q_norm", hp.n_embd_head_k, false);
            b.norm(blk + "attn_k_norm", hp.n_embd_head_k, false);
        }
        if (arch->qk_norm == QkNorm::Full) {
            b.norm(blk + "attn_q_norm", q_width, false);
            b.norm(blk + "attn_k_norm", k_width, false);
        }
        if (arch->attn_sinks) b.add(blk + "attn_sinks.weight", {hp.n_head}, TensorRole::Bias);
        b.norm(blk + ffn_norm_name(*arch), n_embd, arch->norm_bias);

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
        const uint64_t n_ff_shexp = shared_expert_width(*arch, hp);
        if (n_ff_shexp > 0) {
            b.linear(blk + "ffn_gate_shexp", n_embd, n_ff_shexp, false);
            b.linear(blk + "ffn_up_shexp", n_embd, n_ff_shexp, false);
            b.linear(blk + "ffn_down_shexp", n_ff_shexp, n_embd, false);
            if (arch->shared == SharedExpert::SigmoidGated) {
                b.add(blk + "ffn_gate_inp_shexp.weight", {n_embd}, TensorRole::Bias);
            }
        }
    }
    return std::move(b.out);
}

}  // namespace strata
