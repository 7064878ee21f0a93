#pragma once
// The placement flags `serve`, `run`, `bench` and `probe` share, defined once:
// `add_placement_flags` adds them to a command, `placement_options` turns what
// was parsed into the plan's options (sizes checked, errors naming the flag).

#include "placement/plan.h"
#include "util/result.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace strata::app {

struct PlacementFlags {
    std::vector<std::string> overrides;
    bool cpu_moe = false;
    int n_cpu_moe = 0;
    bool fit = false;
    std::string gpu_mem, ram_budget;
    std::string device = "auto";
    std::string expert_usage;  // JSON file of routing counts that `--fit` ranks experts by
    bool mmap = false;         // read host-tier weights in place (PlacementOptions::mmap)
};

void add_placement_flags(CLI::App* cmd, PlacementFlags& flags);
Result<PlacementOptions> placement_options(const PlacementFlags& flags);

// Writes routing counts, [layer][expert], as the JSON `--expert-usage` reads:
// {"expert_usage": [[...], ...]}.
Status save_expert_usage(const std::string& path, const std::vector<std::vector<uint64_t>>& counts);

}  // namespace strata::app
