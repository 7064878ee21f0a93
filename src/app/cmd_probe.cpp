// `strata probe MODEL [--json]`: what a GGUF holds, without loading weights.

#include "app/commands.h"
#include "gguf/file.h"
#include "model/info.h"
#include "util/format.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>

namespace strata::app {

int fail(const std::string& message) {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    return 1;
}

namespace {

std::string tokenizer_kind(const std::string& model) {
    if (model == "llama") return "SentencePiece (llama)";
    if (model == "gpt2") return "byte-level BPE (gpt2)";
    if (model.empty()) return "none";
    return model;
}

std::string percent(uint64_t part, uint64_t whole) {
    return whole ? fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole))
                 : "-";
}

nlohmann::json types_json(const std::vector<TypeUsage>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const TypeUsage& u : v)
        a.push_back({{"type", u.type}, {"tensors", u.n_tensors}, {"elements", u.n_elements},
                     {"bytes", u.n_bytes}});
    return a;
}

nlohmann::json to_json(const ModelInfo& m) {
    nlohmann::json j = {
        {"path", m.path},
        {"file_size", m.file_size},
        {"parts", m.n_parts},
        {"gguf_version", m.version},
        {"architecture", m.architecture},
        {"name", m.name},
        {"vocab_only", m.vocab_only},
        {"tokenizer", {{"model", m.tokenizer_model}, {"pre", m.tokenizer_pre},
                       {"vocab_size", m.vocab_size}, {"chat_template", m.has_chat_template}}},
        {"tensors", m.n_tensors},
        {"params", m.n_params},
        {"bytes_by_type", types_json(m.by_type)},
        {"routed_expert_bytes", m.expert_bytes},
        {"other_bytes", m.other_bytes},
        {"routed_expert_types", types_json(m.expert_types)},
    };
    if (m.hparams) {
        const HParams& h = *m.hparams;
        j["hparams"] = {
            {"n_layer", h.n_layer},         {"n_embd", h.n_embd},
            {"n_head", h.n_head},           {"n_head_kv", h.n_head_kv},
            {"n_embd_head_k", h.n_embd_head_k}, {"n_embd_head_v", h.n_embd_head_v},
            {"n_ctx_train", h.n_ctx_train}, {"n_ff", h.n_ff},
            {"n_vocab", h.n_vocab},         {"n_expert", h.n_expert},
            {"n_expert_used", h.n_expert_used}, {"n_expert_shared", h.n_expert_shared},
            {"n_ff_exp", h.n_ff_exp},       {"n_ff_shexp", h.n_ff_shexp},
            {"n_layer_dense_lead", h.n_layer_dense_lead}, {"n_swa", h.n_swa},
            {"rope_freq_base", h.rope_freq_base},
        };
    } else if (!m.hparams_error.empty()) {
        j["hparams_error"] = m.hparams_error;
    }
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerBytes& l : m.layers)
        layers.push_back({{"layer", l.layer}, {"routed_expert_bytes", l.expert_bytes},
                          {"other_bytes", l.other_bytes}});
    j["layers"] = layers;
    return j;
}

void print_text(const ModelInfo& m) {
    fmt::print("file            {} ({}, GGUF v{}, {} part{})\n", m.path, format_bytes(m.file_size),
               m.version, m.n_parts, m.n_parts == 1 ? "" : "s");
    fmt::print("architecture    {}\n", m.architecture.empty() ? "(none)" : m.architecture);
    if (!m.name.empty()) fmt::print("name            {}\n", m.name);
    if (m.vocab_only) fmt::print("contents        vocabulary only (no tensors): a tokenizer file\n");
    if (m.hparams) {
        const HParams& h = *m.hparams;
        fmt::print("layers          {}\n", h.n_layer);
        fmt::print("embedding       {}\n", h.n_embd);
        fmt::print("heads           {} query, {} KV; head dim {} (K) / {} (V)\n", h.n_head,
                   h.n_head_kv, h.n_embd_head_k, h.n_embd_head_v);
        fmt::print("context         {} (trained)\n", h.n_ctx_train);
        if (h.is_moe()) {
            fmt::print("experts         {} total, {} used per token, {} shared\n", h.n_expert,
                       h.n_expert_used, h.n_expert_shared);
            fmt::print("expert FFN      {}\n", h.n_ff_exp);
            if (h.n_expert_shared > 0 || h.n_ff_shexp != h.n_ff_exp)
                fmt::print("shared FFN      {}\n", h.n_ff_shexp);
            if (h.n_layer_dense_lead) fmt::print("dense lead      {} layers\n", h.n_layer_dense_lead);
        } else {
            fmt::print("experts         none (dense model)\n");
        }
        fmt::print("dense FFN       {}\n", h.n_ff);
        fmt::print("sliding window  {}\n", h.n_swa ? fmt::format("{}", h.n_swa) : "none");
    } else if (!m.hparams_error.empty()) {
        fmt::print("hparams         unreadable: {}\n", m.hparams_error);
    }
    fmt::print("tokenizer       {}, {} tokens{}\n", tokenizer_kind(m.tokenizer_model), m.vocab_size,
               m.tokenizer_pre.empty() ? "" : fmt::format(", pre-tokenizer '{}'", m.tokenizer_pre));
    fmt::print("chat template   {}\n", m.has_chat_template ? "present" : "none");
    if (m.vocab_only) return;

    fmt::print("tensors         {} ({} parameters, {})\n", m.n_tensors, format_count(m.n_params),
               format_bytes(m.expert_bytes + m.other_bytes));
    fmt::print("\nbytes by type\n");
    for (const TypeUsage& u : m.by_type)
        fmt::print("  {:<8} {:>5} tensors  {:>12}  {:>6}\n", u.type, u.n_tensors, format_bytes(u.n_bytes),
                   percent(u.n_bytes, m.expert_bytes + m.other_bytes));
    const uint64_t total = m.expert_bytes + m.other_bytes;
    std::string etypes;
    for (const TypeUsage& u : m.expert_types) etypes += (etypes.empty() ? "" : ", ") + u.type;
    fmt::print("\nrouted experts  {} ({}){}\n", format_bytes(m.expert_bytes), percent(m.expert_bytes, total),
               etypes.empty() ? "" : " in " + etypes);
    fmt::print("everything else {} ({})\n", format_bytes(m.other_bytes), percent(m.other_bytes, total));
    if (m.layers.empty()) return;
    fmt::print("\n  layer  routed experts          other\n");
    for (const LayerBytes& l : m.layers)
        fmt::print("  {:>5}  {:>14}  {:>13}\n", l.layer, format_bytes(l.expert_bytes),
                   format_bytes(l.other_bytes));
}

}  // namespace

void add_probe_command(CLI::App& app, int& exit_code) {
    struct Options {
        std::string model;
        bool json = false;
    };
    auto opt = std::make_shared<Options>();
    CLI::App* cmd = app.add_subcommand("probe", "Show what a GGUF model holds, without loading it");
    cmd->add_option("model", opt->model, "GGUF file (the first part of a split model)")->required();
    cmd->add_flag("--json", opt->json, "Print JSON instead of text");
    cmd->callback([opt, &exit_code] {
        auto f = gguf::File::open(opt->model);
        if (!f) {
            exit_code = fail(f.error().message);
            return;
        }
        const ModelInfo info = describe_model(*f);
        if (opt->json) {
            fmt::print("{}\n", to_json(info).dump(2));
        } else {
            print_text(info);
        }
        if (!info.vocab_only && !info.hparams) exit_code = 1;
    });
}

}  // namespace strata::app
