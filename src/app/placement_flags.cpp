#include "app/placement_flags.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace strata::app {

void add_placement_flags(CLI::App* cmd, PlacementFlags& f) {
    const char* group = "Placement";
    cmd->add_option("--override-tensor,--ot", f.overrides,
                    "REGEX=TIER: put tensors whose name matches REGEX in TIER (gpu, host or disk); "
                    "repeatable, "
                    "first match wins, e.g. 'blk\\.(1[0-9])\\.ffn_.*_exps=disk'")
        ->group(group);
    cmd->add_flag("--cpu-moe", f.cpu_moe,
                  "Keep all routed-expert tensors off the GPU (in host RAM)")
        ->group(group);
    cmd->add_option("--n-cpu-moe", f.n_cpu_moe,
                    "Keep the routed experts of the first N layers off the GPU")
        ->group(group);
    cmd->add_flag("--fit", f.fit,
                  "Fit the budgets: what every token needs, the KV cache and scratch in the "
                  "fastest tier, then the "
                  "most-used experts (else in layer order) in what is left, then RAM, then disk; "
                  "5% of each budget "
                  "is kept free")
        ->group(group);
    cmd->add_option("--device", f.device,
                    "The device that is the gpu tier: auto (the first CUDA device, if any), none "
                    "(CPU only), "
                    "cuda:N, or cpu (the GPU tier's forward pass on the CPU backend, for testing "
                    "without a GPU)")
        ->group(group);
    cmd->add_option("--gpu-mem", f.gpu_mem,
                    "GPU memory to plan for, e.g. 12GiB (the default tier becomes gpu)")
        ->group(group);
    cmd->add_option("--ram-budget", f.ram_budget,
                    "RAM the model may use, e.g. 24GiB, 3.5GB, 800MiB; disk-tier experts are "
                    "cached in what is "
                    "left (with --fit and none given: the memory the machine has available)")
        ->group(group);
    cmd->add_flag("--mmap", f.mmap,
                  "Read host-RAM weights in place from the file's mapping: faster load and shared "
                  "page cache, but decode reads through 4 KiB pages (by default they are copied "
                  "into memory backed by huge pages)")
        ->group(group);
    cmd->add_option("--expert-usage", f.expert_usage,
                    "JSON routing counts per layer and expert (from `strata run "
                    "--save-expert-usage`) that --fit "
                    "ranks experts by")
        ->group(group);
}

namespace {

Result<std::vector<std::vector<uint64_t>>> load_expert_usage(const std::string& path) {
    std::ifstream in(path);
    if (!in) return err("--expert-usage: cannot read '{}'", path);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    const nlohmann::json& counts =
        j.is_object() && j.contains("expert_usage") ? j["expert_usage"] : j;
    const auto bad = err(
        "--expert-usage '{}': expected {{\"expert_usage\": [[count per expert] per layer]}}", path);
    if (!counts.is_array()) return bad;
    std::vector<std::vector<uint64_t>> out;
    for (const nlohmann::json& layer : counts) {
        if (!layer.is_array()) return bad;
        std::vector<uint64_t>& row = out.emplace_back();
        for (const nlohmann::json& c : layer) {
            if (!c.is_number_unsigned() && !(c.is_number_integer() && c.get<int64_t>() >= 0))
                return bad;
            row.push_back(c.get<uint64_t>());
        }
    }
    return out;
}

}  // namespace

Status save_expert_usage(const std::string& path,
                         const std::vector<std::vector<uint64_t>>& counts) {
    std::ofstream out(path);
    if (!out) return err("--save-expert-usage: cannot write '{}'", path);
    out << nlohmann::json{{"expert_usage", counts}}.dump() << "\n";
    return {};
}

Result<PlacementOptions> placement_options(const PlacementFlags& f) {
    PlacementOptions o{
        .overrides = f.overrides, .cpu_moe = f.cpu_moe, .n_cpu_moe = f.n_cpu_moe, .fit = f.fit, .mmap = f.mmap};
    o.device = f.device;
    if (f.n_cpu_moe < 0) return err("--n-cpu-moe {}: expected 0 or more", f.n_cpu_moe);
    if (!f.gpu_mem.empty()) {
        auto s = parse_size(f.gpu_mem, "--gpu-mem");
        if (!s) return s.error();
        o.gpu_mem = *s;
    }
    if (!f.ram_budget.empty()) {
        auto s = parse_size(f.ram_budget, "--ram-budget");
        if (!s) return s.error();
        o.ram_budget = *s;
    }
    if (!f.expert_usage.empty()) {
        auto u = load_expert_usage(f.expert_usage);
        if (!u) return u.error();
        o.usage = std::move(*u);
    }
    return o;
}

}  // namespace strata::app
