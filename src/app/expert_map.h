#pragma once
// Pictures and summaries of routing: how often each layer's router chose each
// expert. `strata bench --expert-map FILE.svg` draws a layers x experts heatmap
// a person can open in a browser; `--expert-stats` prints one line per layer.

#include "placement/expert_cache.h"

#include <cstdint>
#include <string>
#include <vector>

namespace strata::app {

// counts[layer][expert]: times the router chose that expert.
using RoutingCounts = std::vector<std::vector<uint64_t>>;

// A standalone SVG: one cell per (layer, expert), darker for more choices
// (relative to the largest count), each with a tooltip giving its count.
std::string expert_map_svg(const RoutingCounts& counts, const std::string& title);

// Per layer: choices, experts ever chosen, the busiest expert's share, and the
// routing entropy normalised to [0, 1] (1: every expert chosen equally often).
// With the disk tier's per-expert figures (`cache`, [layer][expert]; empty when
// nothing is on disk), also its hits, prefetched hits, misses and bytes read.
std::string expert_stats_text(const RoutingCounts& counts,
                              const std::vector<std::vector<ExpertSliceStats>>& cache = {});

}  // namespace strata::app
