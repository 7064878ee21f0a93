#pragma once
// The memory plan: which tier — `gpu`, `host` (RAM) or `disk` (left in the file,
// read on demand into a bounded cache) — every tensor, and every expert of a
// stacked routed-expert tensor, lives in; plus the KV cache and scratch bytes,
// and the RAM the disk tier's expert cache may use.
//
// Rules, in priority order (as llama.cpp's `-ot`, `--cpu-moe`, `--n-cpu-moe`,
// `--fit`):
//   1. `--override-tensor REGEX=TIER`: the first pattern that matches a tensor's
//      name (searched, not anchored) pins it to TIER.
//   2. `--cpu-moe` / `--n-cpu-moe N`: routed-expert tensors (of the first N
//      layers) are kept off the GPU: host, or disk when `--fit` runs out of RAM.
//   3. The input embedding stays off the GPU (a pass reads only its tokens' rows).
//   4. Everything else goes to the default tier (the GPU when there is one or
//      `--gpu-mem` says to plan for one, else host); with `--fit`, the tensors
//      every token reads, the KV cache and scratch go to the fastest tier, then
//      the remaining fast memory is filled expert by expert — most-used first
//      when usage counts are given, else in layer order — then RAM, then disk.
//
// The plan is computed from plain numbers (`PlanInput`), so tests can check it
// against byte counts worked out by hand, and `strata probe` can show it before
// anything is loaded.

#include "util/result.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

enum class Tier : uint8_t { Gpu = 0, Host = 1, Disk = 2 };
constexpr size_t kTierCount = 3;
constexpr std::array<Tier, kTierCount> kTiers = {Tier::Gpu, Tier::Host, Tier::Disk};

const char* tier_name(Tier t);
// "gpu", "host" or "disk" (also "cpu" and "ram" for host, as llama.cpp users write "CPU").
Result<Tier> parse_tier(std::string_view s);

// A memory size: "12GiB", "3.5GB", "800MiB", "64k", or plain bytes. Binary (KiB,
// MiB, GiB, TiB, and K/M/G/T) and decimal (KB, MB, GB, TB) units, case-insensitive.
// Errors name `flag`.
Result<uint64_t> parse_size(std::string_view text, std::string_view flag);

struct PlacementOptions {
    std::vector<std::string> overrides;  // "REGEX=TIER", first match wins
    bool cpu_moe = false;
    int n_cpu_moe = 0;
    bool fit = false;
    // Plan for a GPU of this size (also when no GPU backend is built: `probe`
    // answers "how much VRAM would I need").
    std::optional<uint64_t> gpu_mem;
    std::optional<uint64_t> ram_budget;
    bool has_gpu = false;  // a GPU backend is present: the default tier is gpu
    // The device that is the gpu tier (the engine reads it; the plan does not):
    // "auto" (the first CUDA device, if any), "none", "cuda:N", or "cpu" (the CPU
    // backend standing in for a device: the GPU tier's pass, run without a GPU).
    std::string device = "auto";
    // Share of each budget kept free for what the plan does not count: allocator
    // slack, thread stacks, per-request buffers, the tokenizer and the program.
    double margin = 0.05;
    // The experts' usage counts, [layer][expert] (ExpertUsage's snapshot or a
    // stats file); empty when there are none.
    std::vector<std::vector<uint64_t>> usage;
    // Read host-tier weights in place from the file's mapping. Otherwise (the
    // default) the engine copies them at load into memory backed by huge pages,
    // which decode streams faster (util/huge_buffer.h); the plan is the same.
    bool mmap = false;
};

// One tensor as the plan sees it.
struct PlanTensor {
    std::string name;
    std::string type;  // "Q4_K", for logs and probe
    uint64_t n_bytes = 0;
    // Experts stacked in the outermost dimension of a routed-expert matrix
    // ([n_in, n_out, n_expert]); 0 for every other tensor.
    uint32_t n_expert = 0;
};

struct PlanInput {
    std::vector<PlanTensor> tensors;
    uint64_t kv_bytes = 0;       // KV cache for the requested context and parallelism
    uint64_t scratch_bytes = 0;  // activations of one batch (an estimate)
    uint32_t n_expert_used = 0;  // sizes the default expert cache when no RAM budget is given
};

struct TensorPlacement {
    std::string name, type;
    uint64_t n_bytes = 0;
    int layer = -1;  // -1 outside the blocks
    bool routed = false;
    Tier tier = Tier::Host;     // non-stacked tensors; for stacked ones the slowest expert's tier
    std::vector<Tier> experts;  // stacked tensors: one tier per expert
    std::string rule;           // what decided it: "default", "--cpu-moe", "--fit", "override 'RE'"

    bool stacked() const { return !experts.empty(); }
    uint64_t expert_bytes() const { return experts.empty() ? 0 : n_bytes / experts.size(); }
    uint64_t bytes_in(Tier t) const;
};

struct MemoryPlan {
    Tier default_tier = Tier::Host;  // also where the KV cache and scratch live
    std::vector<TensorPlacement> tensors;
    uint64_t kv_bytes = 0, scratch_bytes = 0;
    // RAM for the disk tier's expert cache (counted in host); 0 when nothing is on disk.
    uint64_t cache_bytes = 0;
    // Budgets (0: none given) and the margin kept free of each.
    std::array<uint64_t, kTierCount> budget{}, margin{};
    // Why the plan does not fit its budgets; empty when it does.
    std::vector<std::string> problems;

    // Weight bytes in tier `t`.
    uint64_t weight_bytes(Tier t) const;
    // Everything in tier `t`: weights, plus KV and scratch in the default tier, plus
    // the expert cache in host.
    uint64_t total_bytes(Tier t) const;
    bool fits() const { return problems.empty(); }
    const TensorPlacement* find(std::string_view name) const;
};

// Places every tensor of `in` by the rules of `opt`. Errors for bad flags (an
// invalid regex or unknown tier in an override, a negative --n-cpu-moe) and for
// impossible fits (the tensors every token needs do not fit the fastest tier's
// budget), with the numbers.
Result<MemoryPlan> make_plan(const PlanInput& in, const PlacementOptions& opt);

}  // namespace strata
