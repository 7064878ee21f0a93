// The memory plan (plan.h): flag parsing for sizes, tiers and overrides, the
// rules that pin tensors, and `--fit`, which places what no rule pinned expert
// by expert against the budgets and sizes the disk tier's cache.

#include "placement/plan.h"

#include "placement/tensor_class.h"
#include "util/format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <regex>

namespace strata {

const char* tier_name(Tier t) {
    switch (t) {
        case Tier::Gpu: return "gpu";
        case Tier::Host: return "host";
        case Tier::Disk: return "disk";
    }
    return "host";
}

Result<Tier> parse_tier(std::string_view s) {
    std::string lower(s);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "gpu" || lower == "cuda") return Tier::Gpu;
    if (lower == "host" || lower == "cpu" || lower == "ram") return Tier::Host;
    if (lower == "disk") return Tier::Disk;
    return err("unknown tier '{}' (expected gpu, host or disk)", s);
}

Result<uint64_t> parse_size(std::string_view text, std::string_view flag) {
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + i, value);
    if (i == 0 || ec != std::errc() || end != text.data() + i)
        return err("{} '{}': expected a size such as 12GiB, 3.5GB or 800MiB", flag, text);
    std::string unit(text.substr(i));
    std::erase(unit, ' ');
    for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const std::map<std::string, double> units = {
        {"", 1.0},    {"b", 1.0},
        {"k", 0x1p10}, {"kib", 0x1p10}, {"m", 0x1p20}, {"mib", 0x1p20},
        {"g", 0x1p30}, {"gib", 0x1p30}, {"t", 0x1p40}, {"tib", 0x1p40},
        {"kb", 1e3},  {"mb", 1e6},     {"gb", 1e9},   {"tb", 1e12},
    };
    auto it = units.find(unit);
    if (it == units.end())
        return err("{} '{}': unknown unit '{}' (use B, KiB, MiB, GiB, TiB or KB, MB, GB, TB)", flag, text,
                   text.substr(i));
    const double bytes = std::round(value * it->second);
    if (!(bytes < 0x1p64)) return err("{} '{}': too large", flag, text);
    return static_cast<uint64_t>(bytes);
}

uint64_t TensorPlacement::bytes_in(Tier t) const {
    if (experts.empty()) return tier == t ? n_bytes : 0;
    return expert_bytes() * static_cast<uint64_t>(std::count(experts.begin(), experts.end(), t));
}

uint64_t MemoryPlan::weight_bytes(Tier t) const {
    uint64_t n = 0;
    for (const TensorPlacement& tp : tensors) n += tp.bytes_in(t);
    return n;
}

uint64_t MemoryPlan::total_bytes(Tier t) const {
    uint64_t n = weight_bytes(t);
    if (t == default_tier) n += kv_bytes + scratch_bytes;
    if (t == Tier::Host) n += cache_bytes;
    return n;
}

const TensorPlacement* MemoryPlan::find(std::string_view name) const {
    for (const TensorPlacement& tp : tensors) {
        if (tp.name == name) return &tp;
    }
    return nullptr;
}

namespace {

constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

struct Override {
    std::string pattern;
    std::regex re;
    Tier tier;
};

Result<std::vector<Override>> parse_overrides(const std::vector<std::string>& specs) {
    std::vector<Override> out;
    for (const std::string& spec : specs) {
        // The tier follows the last '=': a regex may itself contain '='.
        const size_t eq = spec.rfind('=');
        if (eq == std::string::npos || eq == 0)
            return err("--override-tensor '{}': expected REGEX=TIER, e.g. 'blk\\.1[0-9]\\.ffn_.*_exps=host'", spec);
        auto tier = parse_tier(spec.substr(eq + 1));
        if (!tier) return err("--override-tensor '{}': {}", spec, tier.error().message);
        Override o{.pattern = spec.substr(0, eq), .re = {}, .tier = *tier};
        try {
            o.re = std::regex(o.pattern, std::regex::ECMAScript | std::regex::optimize);
        } catch (const std::regex_error& e) {
            return err("--override-tensor '{}': invalid regex '{}': {}", spec, o.pattern, e.what());
        }
        out.push_back(std::move(o));
    }
    return out;
}

// The experts of one layer's unpinned stacked tensors, moved together by `--fit`:
// running expert e reads its slice of every one of them.
struct Unit {
    int layer = 0;
    uint32_t expert = 0;
    uint64_t bytes = 0;
    Tier min_tier = Tier::Gpu;
    std::vector<size_t> tensors;  // indices into the plan
};

// The expert units of every layer, most-used first when counts are given, else in
// layer order.
std::vector<Unit> expert_units(const MemoryPlan& p, const std::vector<bool>& pinned,
                               const std::vector<std::vector<uint64_t>>& usage) {
    std::map<int, std::vector<size_t>> by_layer;
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        if (p.tensors[i].stacked() && !pinned[i]) by_layer[p.tensors[i].layer].push_back(i);
    }
    std::vector<Unit> units;
    for (const auto& [layer, idx] : by_layer) {
        uint32_t n_expert = 0;
        for (size_t i : idx) n_expert = std::max<uint32_t>(n_expert, static_cast<uint32_t>(p.tensors[i].experts.size()));
        for (uint32_t e = 0; e < n_expert; ++e) {
            Unit u{.layer = layer, .expert = e};
            for (size_t i : idx) {
                const TensorPlacement& tp = p.tensors[i];
                if (e >= tp.experts.size()) continue;
                u.bytes += tp.expert_bytes();
                u.min_tier = std::max(u.min_tier, tp.experts[e]);
                u.tensors.push_back(i);
            }
            units.push_back(std::move(u));
        }
    }
    auto count = [&](const Unit& u) -> uint64_t {
        const auto l = static_cast<size_t>(u.layer);
        return l < usage.size() && u.expert < usage[l].size() ? usage[l][u.expert] : 0;
    };
    if (!usage.empty()) {
        std::stable_sort(units.begin(), units.end(), [&](const Unit& a, const Unit& b) { return count(a) > count(b); });
    }
    return units;
}

void place_unit(MemoryPlan& p, const Unit& u, Tier t) {
    for (size_t i : u.tensors) {
        TensorPlacement& tp = p.tensors[i];
        if (tp.experts[u.expert] != t) tp.rule = "--fit";
        tp.experts[u.expert] = t;
    }
}

// The largest expert unit of the disk tier: the cache must hold one expert's
// slices of a layer at once, as they are all in use while it runs.
uint64_t largest_disk_unit(const MemoryPlan& p, const PlanInput& in, uint64_t* working_set) {
    std::map<int, uint64_t> per_layer;  // bytes of one expert's disk slices, per layer
    for (const TensorPlacement& tp : p.tensors) {
        if (tp.stacked() && tp.bytes_in(Tier::Disk) > 0) per_layer[tp.layer] += tp.expert_bytes();
    }
    uint64_t largest = 0, set = 0;
    for (const auto& [_, b] : per_layer) {
        largest = std::max(largest, b);
        set += b * std::max<uint32_t>(in.n_expert_used, 1);
    }
    if (working_set) *working_set = set;
    return largest;
}

std::string budget_name(Tier t) { return t == Tier::Gpu ? "--gpu-mem" : "--ram-budget"; }

// The `--fit` pass over the tensors no rule pinned.
Status fit(MemoryPlan& p, const PlacementOptions& opt, const std::vector<bool>& pinned, uint32_t n_expert_used) {
    std::array<uint64_t, kTierCount> usable{}, used{};
    for (Tier t : kTiers) {
        const auto i = static_cast<size_t>(t);
        usable[i] = p.budget[i] ? p.budget[i] - p.margin[i] : kUnlimited;
        for (size_t k = 0; k < p.tensors.size(); ++k) {
            if (pinned[k]) used[i] += p.tensors[k].bytes_in(t);
        }
    }
    if (p.default_tier != Tier::Gpu) usable[static_cast<size_t>(Tier::Gpu)] = 0;
    usable[static_cast<size_t>(Tier::Disk)] = kUnlimited;

    // The tensors every token reads, with the KV cache and scratch, go to the
    // default (fastest) tier; routed-expert biases kept off the GPU go to host.
    used[static_cast<size_t>(p.default_tier)] += p.kv_bytes + p.scratch_bytes;
    for (size_t k = 0; k < p.tensors.size(); ++k) {
        if (!pinned[k] && !p.tensors[k].stacked()) used[static_cast<size_t>(p.tensors[k].tier)] += p.tensors[k].n_bytes;
    }
    for (Tier t : {Tier::Gpu, Tier::Host}) {
        const auto i = static_cast<size_t>(t);
        if (used[i] > usable[i] && p.budget[i]) {
            return err("the plan cannot fit: the tensors every token needs{} take {} in {}, but {} {} leaves {} after "
                       "a {} margin",
                       t == p.default_tier ? fmt::format(", the KV cache ({}) and scratch ({})",
                                                         format_bytes(p.kv_bytes), format_bytes(p.scratch_bytes))
                                           : "",
                       format_bytes(used[i]), tier_name(t), budget_name(t), format_bytes(p.budget[i]),
                       format_bytes(usable[i]), format_bytes(p.margin[i]));
        }
    }

    std::vector<Unit> units = expert_units(p, pinned, opt.usage);
    std::vector<const Unit*> left;
    // Fill the GPU first, expert by expert, in order.
    for (const Unit& u : units) {
        const auto g = static_cast<size_t>(Tier::Gpu);
        if (u.min_tier == Tier::Gpu && used[g] + u.bytes <= usable[g]) {
            used[g] += u.bytes;
            place_unit(p, u, Tier::Gpu);
        } else {
            left.push_back(&u);
        }
    }
    // Then RAM; when not everything fits, room for the disk tier's cache is kept
    // back first: the experts one token reads in every layer (n_expert_used per
    // layer) when the budget allows, and never less than one expert, which is in
    // use as a whole while it runs. A cache that holds a token's working set
    // serves the experts consecutive tokens share, whichever they are; pinning
    // arbitrary experts in RAM instead would only pay off with usage counts.
    const auto h = static_cast<size_t>(Tier::Host);
    uint64_t need = 0, largest = 0;
    std::map<int, uint64_t> layer_unit;
    for (const Unit* u : left) {
        if (u->min_tier <= Tier::Host) need += u->bytes;
        largest = std::max(largest, u->bytes);
        layer_unit[u->layer] = std::max(layer_unit[u->layer], u->bytes);
    }
    uint64_t working_set = 0;
    for (const auto& [_, b] : layer_unit) working_set += b * std::max<uint32_t>(n_expert_used, 1);
    uint64_t reserve = 0;
    const bool spill = used[h] + need > usable[h] || std::any_of(left.begin(), left.end(), [](const Unit* u) {
                           return u->min_tier == Tier::Disk;
                       });
    if (spill) {
        if (usable[h] < used[h] + largest) {
            return err("the plan cannot fit: {} {} leaves {} after the {} every token needs and a {} margin, less "
                       "than the {} one expert needs in the disk tier's cache",
                       budget_name(Tier::Host), format_bytes(p.budget[h]),
                       format_bytes(usable[h] > used[h] ? usable[h] - used[h] : 0), format_bytes(used[h]),
                       format_bytes(p.margin[h]), format_bytes(largest));
        }
        reserve = std::max(largest, std::min(working_set, usable[h] - used[h]));
        used[h] += reserve;
    }
    for (const Unit* u : left) {
        const bool host = u->min_tier <= Tier::Host && used[h] + u->bytes <= usable[h];
        if (host) used[h] += u->bytes;
        place_unit(p, *u, host ? Tier::Host : Tier::Disk);
    }
    if (spill) {
        // The cache gets whatever RAM the budget leaves, but no more than the disk tier holds.
        const uint64_t disk = p.weight_bytes(Tier::Disk);
        const uint64_t room = usable[h] == kUnlimited ? reserve : usable[h] - used[h] + reserve;
        p.cache_bytes = std::min(room, std::max(disk, largest));
    }
    return {};
}

}  // namespace

Result<MemoryPlan> make_plan(const PlanInput& in, const PlacementOptions& opt) {
    if (opt.n_cpu_moe < 0) return err("--n-cpu-moe {}: expected 0 or more", opt.n_cpu_moe);
    if (!(opt.margin >= 0.0 && opt.margin < 1.0)) return err("placement margin {} is not in [0, 1)", opt.margin);
    auto overrides = parse_overrides(opt.overrides);
    if (!overrides) return overrides.error();

    MemoryPlan p;
    p.default_tier = opt.has_gpu || opt.gpu_mem ? Tier::Gpu : Tier::Host;
    p.kv_bytes = in.kv_bytes;
    p.scratch_bytes = in.scratch_bytes;
    p.budget[static_cast<size_t>(Tier::Gpu)] = opt.gpu_mem.value_or(0);
    p.budget[static_cast<size_t>(Tier::Host)] = opt.ram_budget.value_or(0);
    for (size_t i = 0; i < kTierCount; ++i)
        p.margin[i] = static_cast<uint64_t>(static_cast<double>(p.budget[i]) * opt.margin);

    std::vector<bool> pinned;
    for (const PlanTensor& t : in.tensors) {
        TensorPlacement tp{.name = t.name, .type = t.type, .n_bytes = t.n_bytes};
        tp.layer = tensor_layer(t.name).value_or(-1);
        tp.routed = is_routed_expert(t.name);
        tp.tier = p.default_tier;
        tp.rule = "default";
        bool pin = false;
        for (const Override& o : *overrides) {
            if (std::regex_search(t.name, o.re)) {
                tp.tier = o.tier;
                tp.rule = fmt::format("override '{}'", o.pattern);
                pin = true;
                break;
            }
        }
        // A pass reads only its tokens' rows of the input embedding, so like
        // llama.cpp we keep it off the GPU: VRAM is better spent on experts.
        if (!pin && classify_tensor(t.name) == TensorClass::Embedding && tp.tier == Tier::Gpu) {
            tp.tier = Tier::Host;
            tp.rule = "input embedding";
        }
        if (!pin && tp.routed && (opt.cpu_moe || (tp.layer >= 0 && tp.layer < opt.n_cpu_moe))) {
            tp.tier = std::max(tp.tier, Tier::Host);
            tp.rule = opt.cpu_moe ? "--cpu-moe" : "--n-cpu-moe";
        }
        if (t.n_expert > 0) tp.experts.assign(t.n_expert, tp.tier);
        p.tensors.push_back(std::move(tp));
        pinned.push_back(pin);
    }

    if (opt.fit) {
        STRATA_TRY(fit(p, opt, pinned, in.n_expert_used));
    } else if (uint64_t working_set = 0, largest = largest_disk_unit(p, in, &working_set); largest > 0) {
        // Without --fit, the cache gets what the RAM budget leaves, or without one,
        // room for the experts one token uses in every layer.
        const auto h = static_cast<size_t>(Tier::Host);
        if (p.budget[h]) {
            const uint64_t used = p.total_bytes(Tier::Host) + p.margin[h];
            p.cache_bytes = p.budget[h] > used ? p.budget[h] - used : 0;
            if (p.cache_bytes < largest)
                p.problems.push_back(fmt::format("--ram-budget {} leaves {} for the disk tier's expert cache, less "
                                                 "than the {} one expert needs",
                                                 format_bytes(p.budget[h]), format_bytes(p.cache_bytes),
                                                 format_bytes(largest)));
            p.cache_bytes = std::min(p.cache_bytes, p.weight_bytes(Tier::Disk));
        } else {
            p.cache_bytes = std::min(std::max(working_set, largest), p.weight_bytes(Tier::Disk));
        }
    }
    for (TensorPlacement& tp : p.tensors) {
        if (tp.stacked()) tp.tier = *std::max_element(tp.experts.begin(), tp.experts.end());
    }
    for (Tier t : {Tier::Gpu, Tier::Host}) {
        const auto i = static_cast<size_t>(t);
        if (p.budget[i] && p.total_bytes(t) > p.budget[i] - p.margin[i]) {
            p.problems.push_back(fmt::format("the {} tier needs {}, more than {} {} allows after a {} margin", tier_name(t),
                                             format_bytes(p.total_bytes(t)), budget_name(t), format_bytes(p.budget[i]),
                                             format_bytes(p.margin[i])));
        }
    }
    return p;
}

}  // namespace strata
