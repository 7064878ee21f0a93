// `strata probe MODEL [placement flags] [--ctx N] [--parallel N] [--json]`: what
// a GGUF holds and where its tensors would live, without loading weights.

#include "app/commands.h"
#include "app/placement_flags.h"
#include "gguf/file.h"
#include "model/info.h"
#include "model/memory.h"
#include "util/format.h"
#include "util/meminfo.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <map>
#include <optional>

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


// Per layer: how many experts live in each tier (an expert counts in the slowest
// tier any of its slices is in, the one that bounds its read time), and the
// routed-expert bytes per tier.
struct LayerSplit {
    int layer = 0;
    std::array<uint64_t, kTierCount> experts{}, bytes{};
};

std::vector<LayerSplit> layer_splits(const MemoryPlan& plan) {
    std::map<int, std::vector<Tier>> slowest;
    std::map<int, LayerSplit> out;
    for (const TensorPlacement& tp : plan.tensors) {
        if (!tp.stacked()) continue;
        std::vector<Tier>& s = slowest[tp.layer];
        s.resize(std::max(s.size(), tp.experts.size()), Tier::Gpu);
        for (size_t e = 0; e < tp.experts.size(); ++e) s[e] = std::max(s[e], tp.experts[e]);
        LayerSplit& l = out[tp.layer];
        l.layer = tp.layer;
        for (Tier t : kTiers) l.bytes[static_cast<size_t>(t)] += tp.bytes_in(t);
    }
    std::vector<LayerSplit> v;
    for (auto& [layer, l] : out) {
        for (Tier t : slowest[layer]) l.experts[static_cast<size_t>(t)] += 1;
        v.push_back(l);
    }
    return v;
}

nlohmann::json plan_json(const MemoryPlan& plan, const MemoryRequest& req) {
    nlohmann::json tiers = nlohmann::json::object();
    for (Tier t : kTiers) {
        const auto i = static_cast<size_t>(t);
        tiers[tier_name(t)] = {{"weight_bytes", plan.weight_bytes(t)}, {"total_bytes", plan.total_bytes(t)},
                               {"budget_bytes", plan.budget[i]}, {"margin_bytes", plan.margin[i]}};
    }
    nlohmann::json moved = nlohmann::json::array();
    for (const TensorPlacement& tp : plan.tensors) {
        nlohmann::json j = {{"name", tp.name}, {"type", tp.type}, {"bytes", tp.n_bytes}, {"tier", tier_name(tp.tier)},
                            {"rule", tp.rule}};
        if (tp.stacked()) {
            nlohmann::json e = nlohmann::json::array();
            for (Tier t : tp.experts) e.push_back(tier_name(t));
            j["experts"] = e;
        }
        moved.push_back(j);
    }
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerSplit& l : layer_splits(plan)) {
        nlohmann::json j = {{"layer", l.layer}};
        for (Tier t : kTiers) {
            j[fmt::format("experts_{}", tier_name(t))] = l.experts[static_cast<size_t>(t)];
            j[fmt::format("bytes_{}", tier_name(t))] = l.bytes[static_cast<size_t>(t)];
        }
        layers.push_back(j);
    }
    nlohmann::json problems = nlohmann::json::array();
    for (const std::string& p : plan.problems) problems.push_back(p);
    return {{"default_tier", tier_name(plan.default_tier)},
            {"n_ctx", req.n_ctx},
            {"parallel", req.n_parallel},
            {"kv_type", req.kv_type == KvType::F32 ? "f32" : "f16"},
            {"kv_cache_bytes", plan.kv_bytes},
            {"scratch_bytes", plan.scratch_bytes},
            {"expert_cache_bytes", plan.cache_bytes},
            {"tiers", tiers},
            {"fits", plan.fits()},
            {"problems", problems},
            {"layers", layers},
            {"tensors", moved}};
}

void print_plan(const MemoryPlan& plan, const MemoryRequest& req) {
    fmt::print("\nplacement       default tier {}; KV cache {} ({} tokens x {}, {}), scratch {}\n",
               tier_name(plan.default_tier), format_bytes(plan.kv_bytes), req.n_ctx, req.n_parallel,
               req.kv_type == KvType::F32 ? "f32" : "f16", format_bytes(plan.scratch_bytes));
    fmt::print("  tier       weights        total       budget\n");
    for (Tier t : kTiers) {
        const auto i = static_cast<size_t>(t);
        const std::string budget =
            plan.budget[i] ? fmt::format("{} (margin {})", format_bytes(plan.budget[i]), format_bytes(plan.margin[i]))
                           : "-";
        fmt::print("  {:<4} {:>12} {:>12}  {}\n", tier_name(t), format_bytes(plan.weight_bytes(t)),
                   format_bytes(plan.total_bytes(t)), budget);
    }
    if (plan.cache_bytes) fmt::print("  (host total includes a disk-tier expert cache of {})\n", format_bytes(plan.cache_bytes));
    for (const std::string& p : plan.problems) fmt::print("  does not fit: {}\n", p);
    const std::vector<LayerSplit> splits = layer_splits(plan);
    if (splits.empty()) return;
    fmt::print("\n  layer  experts gpu/host/disk   expert bytes gpu / host / disk\n");
    for (const LayerSplit& l : splits)
        fmt::print("  {:>5}  {:>9}/{}/{}   {} / {} / {}\n", l.layer, l.experts[0], l.experts[1], l.experts[2],
                   format_bytes(l.bytes[0]), format_bytes(l.bytes[1]), format_bytes(l.bytes[2]));
}

}  // namespace

void add_probe_command(CLI::App& app, int& exit_code) {
    struct Options {
        std::string model;
        bool json = false;
        PlacementFlags placement;
        MemoryRequest memory;
        std::string kv_type = "f16";
    };
    auto opt = std::make_shared<Options>();
    CLI::App* cmd = app.add_subcommand(
        "probe", "Show what a GGUF model holds and where its tensors would live, without loading it");
    cmd->add_option("model", opt->model, "GGUF file (the first part of a split model)")->required();
    cmd->add_flag("--json", opt->json, "Print JSON instead of text");
    cmd->add_option("-c,--ctx", opt->memory.n_ctx, "Context size the KV cache is planned for (0: the model's training context)")
        ->capture_default_str();
    cmd->add_option("--parallel", opt->memory.n_parallel, "Sequences at once, each with its own KV cache")
        ->capture_default_str();
    cmd->add_option("--kv-type", opt->kv_type, "KV cache type: f16 or f32")->capture_default_str();
    add_placement_flags(cmd, opt->placement);
    cmd->callback([opt, &exit_code] {
        auto placement = placement_options(opt->placement);
        if (!placement) {
            exit_code = fail(placement.error().message);
            return;
        }
        if (opt->kv_type != "f16" && opt->kv_type != "f32") {
            exit_code = fail(fmt::format("--kv-type '{}': expected f16 or f32", opt->kv_type));
            return;
        }
        opt->memory.kv_type = opt->kv_type == "f32" ? KvType::F32 : KvType::F16;
        auto f = gguf::File::open(opt->model);
        if (!f) {
            exit_code = fail(f.error().message);
            return;
        }
        const ModelInfo info = describe_model(*f);
        std::optional<MemoryPlan> plan;
        if (info.hparams && !info.vocab_only) {
            // As at load: --fit without --ram-budget fits what the machine has available.
            if (placement->fit && !placement->ram_budget) placement->ram_budget = available_memory();
            auto p = plan_memory(*f, *placement, opt->memory);
            if (!p) {
                exit_code = fail(p.error().message);
                return;
            }
            plan = std::move(*p);
        }
        MemoryRequest shown = opt->memory;
        if (info.hparams && shown.n_ctx == 0) shown.n_ctx = info.hparams->n_ctx_train;
        if (opt->json) {
            nlohmann::json j = to_json(info);
            if (plan) j["placement"] = plan_json(*plan, shown);
            fmt::print("{}\n", j.dump(2));
        } else {
            print_text(info);
            if (plan) print_plan(*plan, shown);
        }
        if (!info.vocab_only && !info.hparams) exit_code = 1;
    });
}

}  // namespace strata::app
