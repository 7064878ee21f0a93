#pragma once
// How often each routed expert of each layer has been chosen, counted once per
// (token, expert) pair as the router picks it. Decode reads an expert's bytes
// when it is chosen, so these counts give the bytes read per token (`strata
// bench`), the per-layer hit counts of `/metrics`, and the usage statistics that
// placement uses to keep the most-used experts in the fastest tier.

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace strata {

class ExpertUsage {
public:
    ExpertUsage() = default;
    ExpertUsage(int n_layer, int n_expert)
        : n_layer_(n_layer), n_expert_(n_expert),
          counts_(std::make_unique<std::atomic<uint64_t>[]>(static_cast<size_t>(n_layer) * n_expert)) {}

    int n_layer() const { return n_layer_; }
    int n_expert() const { return n_expert_; }

    void add(int il, int expert, uint64_t n = 1) {
        counts_[static_cast<size_t>(il) * n_expert_ + expert].fetch_add(n, std::memory_order_relaxed);
    }
    uint64_t count(int il, int expert) const {
        return counts_[static_cast<size_t>(il) * n_expert_ + expert].load(std::memory_order_relaxed);
    }
    // [n_layer][n_expert] copy of the counters.
    std::vector<std::vector<uint64_t>> snapshot() const {
        std::vector<std::vector<uint64_t>> out(static_cast<size_t>(n_layer_),
                                               std::vector<uint64_t>(static_cast<size_t>(n_expert_)));
        for (int il = 0; il < n_layer_; ++il) {
            for (int e = 0; e < n_expert_; ++e) out[il][e] = count(il, e);
        }
        return out;
    }
    void reset() {
        for (size_t i = 0; i < static_cast<size_t>(n_layer_) * n_expert_; ++i) counts_[i].store(0);
    }

private:
    int n_layer_ = 0, n_expert_ = 0;
    std::unique_ptr<std::atomic<uint64_t>[]> counts_;
};

}  // namespace strata
