#pragma once
// The disk tier: experts that stay in the file and are read on demand into a
// bounded cache in RAM.
//
// A miss reads exactly one expert's slice of one stacked tensor with a single
// `pread` (not page faults through the mapping, which read ahead and leave the
// pages to the kernel's judgement), then drops those pages from the page cache,
// so the process's memory for the disk tier is the cache and nothing else.
// Eviction is least-recently-used over slices nobody holds: an expert's gate, up
// and down slices are in use together while it runs, and the plan makes the
// cache at least that large, so the cache never grows past its capacity.

#include "placement/plan.h"
#include "tensor/view.h"

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace strata {

struct ExpertCacheStats {
    uint64_t capacity = 0;
    uint64_t hits = 0, misses = 0;
    uint64_t bytes_read = 0;  // by misses; equals the sum of the missed slices' sizes
    uint64_t evictions = 0;
    uint64_t resident_bytes = 0;  // slices held now
    uint64_t peak_bytes = 0;      // the most ever held at once
    uint64_t read_errors = 0;
};

class ExpertCache {
public:
    explicit ExpertCache(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

    // Slice `key`: from the cache (a hit), or `n_bytes` read at `offset` of `fd`
    // (a miss). An error names `what` when the read fails or comes up short (the
    // file changed or vanished under us).
    Result<ExpertBytes> get(uint64_t key, int fd, uint64_t offset, uint64_t n_bytes, const std::string& what);

    ExpertCacheStats stats() const;
    uint64_t capacity() const { return capacity_; }
    // Keeps the first error until `take_error` returns it.
    void record_error(std::string message);
    // The first read error since the last call, then clears it; empty when none.
    std::string take_error();

private:
    struct Entry {
        std::shared_ptr<uint8_t[]> bytes;
        uint64_t size = 0;
        std::list<uint64_t>::iterator lru;
    };
    void evict_for(uint64_t n_bytes);

    const uint64_t capacity_;
    mutable std::mutex mu_;
    std::list<uint64_t> lru_;  // most recent first
    std::unordered_map<uint64_t, Entry> entries_;
    ExpertCacheStats stats_;
    std::string error_;
};

// A stacked tensor whose experts live in different tiers: those not on disk are
// read in place from the mapping, those on disk through the cache. When a read
// fails, the expert reads as zeros and the error waits in the cache for
// `Engine::forward` to return it, so one bad request does not crash a server.
class TieredExperts : public ExpertSource {
public:
    struct Params {
        ExpertCache* cache = nullptr;
        uint64_t key_base = 0;  // distinct per tensor: keys are key_base + expert
        std::string name;
        const uint8_t* mapped = nullptr;  // the tensor's bytes in the mapping
        int fd = -1;
        uint64_t file_offset = 0;
        uint64_t expert_bytes = 0;
        std::vector<Tier> tiers;  // per expert
    };
    explicit TieredExperts(Params p) : p_(std::move(p)) {}
    ExpertBytes expert(int64_t e) const override;

private:
    Params p_;
};

}  // namespace strata
