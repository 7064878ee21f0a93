#include "app/server/metrics.h"

#include <fmt/format.h>

namespace strata::app::server {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
    size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    std::lock_guard lock(mu_);
    ++counts_[i];
    sum_ += value;
    ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
    std::lock_guard lock(mu_);
    out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
        cum += counts_[i];
        out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
    }
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name,
                       sum_, name, count_);
}

std::string label_value(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

// Seconds. First tokens wait for the prompt (and the queue), so their buckets
// reach further than those between tokens.
Metrics::Metrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void Metrics::request(const std::string& endpoint, int status) {
    std::lock_guard lock(mu_);
    ++requests_[{endpoint, status}];
}

void Metrics::finished(int64_t prompt_tokens, int64_t generated_tokens, bool cancelled) {
    prompt_tokens_.fetch_add(static_cast<uint64_t>(prompt_tokens));
    generated_tokens_.fetch_add(static_cast<uint64_t>(generated_tokens));
    if (cancelled) cancelled_.fetch_add(1);
}

namespace {

void header(std::string& out, const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string Metrics::render(const ModelRegistry& registry) const {
    std::string out;
    header(out, "strata_requests_total", "counter",
           "HTTP requests answered, by endpoint and status.");
    {
        std::lock_guard lock(mu_);
        for (const auto& [key, n] : requests_) {
            out += fmt::format("strata_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n",
                               label_value(key.first), key.second, n);
        }
    }
    header(out, "strata_prompt_tokens_total", "counter", "Prompt tokens of finished generations.");
    out += fmt::format("strata_prompt_tokens_total {}\n", prompt_tokens_.load());
    header(out, "strata_generated_tokens_total", "counter", "Tokens generated.");
    out += fmt::format("strata_generated_tokens_total {}\n", generated_tokens_.load());
    header(out, "strata_requests_cancelled_total", "counter",
           "Generations ended because their client went away, queued or running.");
    out += fmt::format("strata_requests_cancelled_total {}\n", cancelled_.load());
    ttft_.render(out, "strata_time_to_first_token_seconds",
                 "Seconds from a request's arrival in the queue to its first generated token.");
    itl_.render(out, "strata_inter_token_latency_seconds",
                "Seconds between two generated tokens of one request.");

    const auto loaded = registry.loaded_models();
    // One sample per loaded model of a number from its scheduler's stats.
    auto per_model = [&](const char* name, const char* type, const char* help, auto field) {
        header(out, name, type, help);
        for (const auto& [info, m] : loaded) {
            out += fmt::format("{}{{model=\"{}\"}} {}\n", name, label_value(info->name),
                               field(m->scheduler->stats()));
        }
    };
    using Stats = Scheduler::Stats;
    per_model("strata_sessions_active", "gauge", "Sequences generating, per loaded model.",
              [](const Stats& s) { return s.active; });
    per_model("strata_sessions_queued", "gauge", "Requests waiting for a slot, per loaded model.",
              [](const Stats& s) { return s.queued; });
    per_model("strata_slots", "gauge", "Generation slots (--parallel), per loaded model.",
              [](const Stats& s) { return s.slots; });
    per_model("strata_batch_steps_total", "counter",
              "Batched forward passes run, per loaded model.",
              [](const Stats& s) { return s.steps; });
    per_model("strata_batch_sequences_total", "counter",
              "Sequences in those passes, summed; divided by the steps, the mean batch.",
              [](const Stats& s) { return s.sequences; });
    // Every weight lives in host memory (the mapped file) until placement moves
    // some to other tiers; the gauge is per tier so dashboards need not change then.
    header(out, "strata_memory_bytes", "gauge",
           "Bytes per memory tier, model and kind (weights, kv_cache).");
    for (const auto& [info, m] : loaded) {
        const std::string model = label_value(info->name);
        out +=
            fmt::format("strata_memory_bytes{{tier=\"host\",model=\"{}\",kind=\"weights\"}} {}\n",
                        model, info->size);
        out +=
            fmt::format("strata_memory_bytes{{tier=\"host\",model=\"{}\",kind=\"kv_cache\"}} {}\n",
                        model, m->scheduler->stats().kv_bytes);
    }
    header(out, "strata_device_memory_bytes", "gauge",
           "Bytes a GPU device holds, per model and kind (weights, kv_cache, scratch); no "
           "samples when no model runs on a device.");
    for (const auto& [info, m] : loaded) {
        const Engine::DeviceMemory d = m->engine->device_memory();
        if (d.device.empty()) continue;
        for (const auto& [kind, bytes] :
             {std::pair{"weights", d.weights}, std::pair{"kv_cache", d.kv_cache},
              std::pair{"scratch", d.scratch}}) {
            out += fmt::format(
                "strata_device_memory_bytes{{device=\"{}\",model=\"{}\",kind=\"{}\"}} {}\n",
                label_value(d.device), label_value(info->name), kind, bytes);
        }
    }
    header(out, "strata_expert_hits_total", "counter",
           "Routing choices of each expert of each MoE layer since the model was loaded.");
    for (const auto& [info, m] : loaded) {
        const ExpertUsage& usage = m->engine->model().expert_usage();
        const std::string model = label_value(info->name);
        for (int il = 0; il < usage.n_layer(); ++il) {
            for (int e = 0; e < usage.n_expert(); ++e) {
                out += fmt::format(
                    "strata_expert_hits_total{{model=\"{}\",layer=\"{}\",expert=\"{}\"}} {}\n",
                    model, il, e, usage.count(il, e));
            }
        }
    }
    // The disk tier, per layer and expert; experts it never served are left out,
    // which Prometheus reads as zero.
    struct CacheCounter {
        const char* name;
        const char* help;
        uint64_t ExpertSliceStats::*field;
    };
    for (const CacheCounter& c : {
             CacheCounter{
                 "strata_expert_cache_hits_total",
                 "Disk-tier slices of each expert found in the cache (prefetched ones included).",
                 &ExpertSliceStats::hits},
             CacheCounter{"strata_expert_cache_prefetch_hits_total",
                          "First uses of disk-tier slices that a prefetch had read ahead of need.",
                          &ExpertSliceStats::prefetch_hits},
             CacheCounter{"strata_expert_cache_misses_total",
                          "Disk-tier slices of each expert read while the forward pass waited.",
                          &ExpertSliceStats::misses},
             CacheCounter{"strata_expert_cache_read_bytes_total",
                          "Bytes of each expert read from the model file by the disk tier.",
                          &ExpertSliceStats::bytes_read},
         }) {
        header(out, c.name, "counter", c.help);
        for (const auto& [info, m] : loaded) {
            const auto layers = m->engine->expert_cache_layers();
            const std::string model = label_value(info->name);
            for (size_t il = 0; il < layers.size(); ++il) {
                for (size_t e = 0; e < layers[il].size(); ++e) {
                    if (const uint64_t v = layers[il][e].*c.field)
                        out += fmt::format("{}{{model=\"{}\",layer=\"{}\",expert=\"{}\"}} {}\n",
                                           c.name, model, il, e, v);
                }
            }
        }
    }
    return out;
}

}  // namespace strata::app::server
