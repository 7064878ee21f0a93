#include "app/placement_flags.h"

namespace strata::app {

void add_placement_flags(CLI::App* cmd, PlacementFlags& f) {
    const char* group = "Placement";
    cmd->add_option("--override-tensor,--ot", f.overrides,
                    "REGEX=TIER: put tensors whose name matches REGEX in TIER (gpu, host or disk); repeatable, "
                    "first match wins, e.g. 'blk\\.(1[0-9])\\.ffn_.*_exps=disk'")
        ->group(group);
    cmd->add_flag("--cpu-moe", f.cpu_moe, "Keep all routed-expert tensors off the GPU (in host RAM)")->group(group);
    cmd->add_option("--n-cpu-moe", f.n_cpu_moe, "Keep the routed experts of the first N layers off the GPU")
        ->group(group);
    cmd->add_flag("--fit", f.fit,
                  "Fit the budgets: what every token needs, the KV cache and scratch in the fastest tier, then the "
                  "most-used experts (else in layer order) in what is left, then RAM, then disk; 5% of each budget "
                  "is kept free")
        ->group(group);
    cmd->add_option("--gpu-mem", f.gpu_mem, "GPU memory to plan for, e.g. 12GiB (the default tier becomes gpu)")
        ->group(group);
    cmd->add_option("--ram-budget", f.ram_budget,
                    "RAM the model may use, e.g. 24GiB, 3.5GB, 800MiB; disk-tier experts are cached in what is "
                    "left (with --fit and none given: the memory the machine has available)")
        ->group(group);
}

Result<PlacementOptions> placement_options(const PlacementFlags& f) {
    PlacementOptions o{.overrides = f.overrides, .cpu_moe = f.cpu_moe, .n_cpu_moe = f.n_cpu_moe, .fit = f.fit};
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
    return o;
}

}  // namespace strata::app
