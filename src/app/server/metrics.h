#pragma once
// `Metrics`: what `GET /metrics` reports, in Prometheus' text format (version
// 0.0.4): requests by endpoint and status, prompt and generated tokens,
// time-to-first-token and inter-token latency histograms, and — read from the
// registry when scraped — sessions active and queued, bytes per memory tier and
// per-layer expert hit counts of each loaded model.

#include "app/server/registry.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace strata::app::server {

// A Prometheus histogram: cumulative buckets with upper bounds `bounds`, a sum
// and a count.
class Histogram {
  public:
    explicit Histogram(std::vector<double> bounds);
    void observe(double value);
    // The `# HELP`, `# TYPE` and sample lines of metric `name`.
    void render(std::string& out, const std::string& name, const std::string& help) const;

  private:
    std::vector<double> bounds_;
    mutable std::mutex mu_;
    std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
    double sum_ = 0;
    uint64_t count_ = 0;
};

class Metrics {
  public:
    Metrics();

    // `endpoint` is a route pattern (never a raw path, so clients cannot grow the
    // label set).
    void request(const std::string& endpoint, int status);
    void finished(int64_t prompt_tokens, int64_t generated_tokens, bool cancelled);
    Histogram& time_to_first_token() { return ttft_; }
    Histogram& inter_token() { return itl_; }
    uint64_t cancelled() const { return cancelled_.load(); }

    std::string render(const ModelRegistry& registry) const;

  private:
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    std::atomic<uint64_t> prompt_tokens_{0}, generated_tokens_{0}, cancelled_{0};
    Histogram ttft_, itl_;
};

// `s` escaped for a Prometheus label value.
std::string label_value(const std::string& s);

}  // namespace strata::app::server
