#pragma once
// The disk tier: experts that stay in the file and are read on demand into a
// bounded cache in RAM.
//
// A miss reads exactly one expert's slice of one stacked tensor with a single
// `pread` (not page faults through the mapping, which read ahead and leave the
// pages to the kernel's judgement), then drops those pages from the page cache,
// so the process's memory for the disk tier is the cache and nothing else.
//
// Reads can also start ahead of need, on the cache's I/O threads: the MoE layer
// asks for the slices of the experts it will run next (certain) and of the
// experts the next layer's router is likely to pick (a guess), so the disk
// works while the CPU computes. Prefetches only take free room or room held by
// slices already used; they never push out a slice fetched ahead that has not
// been used yet, so the cache never exceeds its capacity by prefetching.
//
// Eviction ranks slices by frequency with recency (LRFU): each use adds 1 to a
// score that halves every `half_life` requests, and the slice with the lowest
// score goes first. An expert the router picks often outlives one picked once a
// moment ago, which plain LRU would keep instead.

#include "placement/plan.h"
#include "tensor/view.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace strata {

// Figures for one expert of one layer (summed over its gate, up and down slices).
struct ExpertSliceStats {
    uint64_t hits = 0;           // found ready in the cache (prefetched ones included)
    uint64_t prefetch_hits = 0;  // of those, the first use of a slice a prefetch brought in
    uint64_t misses = 0;         // read while the forward pass waited
    uint64_t bytes_read = 0;     // by misses and prefetches
};

struct ExpertCacheStats {
    uint64_t capacity = 0;
    uint64_t hits = 0, misses = 0;
    uint64_t waits = 0;           // hits on a slice whose prefetch was still reading
    uint64_t prefetch_hits = 0;   // first uses of prefetched slices
    uint64_t prefetches = 0;      // prefetch reads started (ahead + guessed)
    uint64_t guesses = 0;         // of those, the next layer's guessed experts
    uint64_t guess_hits = 0;      // guessed slices that were then used
    uint64_t prefetch_wasted = 0; // prefetched slices evicted before any use
    uint64_t bytes_read = 0;      // by misses and prefetches
    uint64_t evictions = 0;
    uint64_t resident_bytes = 0;  // slices held now
    uint64_t peak_bytes = 0;      // the most ever held at once
    uint64_t read_errors = 0;
};

// Where a slice lives in the file and whose it is, for reads and statistics.
struct SliceRef {
    int fd = -1;
    uint64_t offset = 0;
    uint64_t n_bytes = 0;
    const std::string* what = nullptr;  // the tensor's name, for errors
    int layer = -1, expert = -1;        // for per-expert statistics; -1: none
};

enum class Prefetch { Ahead, Guess };

class ExpertCache {
public:
    // `n_layer` x `n_expert` sizes the per-expert statistics; `io_threads` read
    // prefetches (0: no prefetching).
    ExpertCache(uint64_t capacity_bytes, int n_layer = 0, int n_expert = 0, int io_threads = 2);
    ~ExpertCache();
    ExpertCache(const ExpertCache&) = delete;
    ExpertCache& operator=(const ExpertCache&) = delete;

    // Slice `key`: from the cache (a hit, waiting if its prefetch is still
    // reading), or read now (a miss). An error names the tensor when the read
    // fails or comes up short (the file changed or vanished under us).
    Result<ExpertBytes> get(uint64_t key, const SliceRef& ref);
    // Starts reading slice `key` on an I/O thread if it is not cached and there is
    // room for it without evicting anything not yet used; otherwise does nothing.
    void prefetch(uint64_t key, const SliceRef& ref, Prefetch kind);

    ExpertCacheStats stats() const;
    // [layer][expert] figures; empty when the cache was built without the shape.
    std::vector<std::vector<ExpertSliceStats>> expert_stats() const;
    uint64_t capacity() const { return capacity_; }
    // Keeps the first error until `take_error` returns it.
    void record_error(std::string message);
    // The first read error since the last call, then clears it; empty when none.
    std::string take_error();

private:
    enum class State { Loading, Ready, Failed };
    enum class Origin { Demand, Ahead, Guess };
    struct Entry {
        std::shared_ptr<uint8_t[]> bytes;
        uint64_t size = 0;
        State state = State::Loading;
        Origin origin = Origin::Demand;
        bool used = false;      // demanded since it arrived
        double log_score = 0;   // log2 of the LRFU score at `last`
        uint64_t last = 0;      // request clock at the last use
        int layer = -1, expert = -1;
        std::string error;
    };
    struct Job {
        uint64_t key;
        SliceRef ref;
    };

    // Evicts unheld, ready slices, lowest rank first, until `n_bytes` more fit;
    // `keep_unused` spares prefetched slices not yet used. False if it cannot.
    bool make_room(uint64_t n_bytes, bool keep_unused);
    void erase(std::unordered_map<uint64_t, Entry>::iterator it);
    // The entry's eviction rank: log2(score) + last / half_life grows as the score
    // decays, so ranks computed at different times compare directly.
    double rank(const Entry& e) const;
    // A use of entry `key` now; `counted` when its arrival already counted it.
    void touch(uint64_t key, Entry& e, bool counted);
    Entry& insert_loading(uint64_t key, const SliceRef& ref, Origin origin);
    void finish_read(uint64_t key, Status read);
    void io_loop();
    ExpertSliceStats* slot(int layer, int expert);

    const uint64_t capacity_;
    const int n_layer_, n_expert_;
    double half_life_ = 0;  // in requests; set from the first slice's size
    uint64_t clock_ = 0;    // requests so far

    mutable std::mutex mu_;
    std::condition_variable ready_cv_;  // a read finished
    std::condition_variable work_cv_;   // a prefetch was queued, or stop
    std::unordered_map<uint64_t, Entry> entries_;
    std::set<std::pair<double, uint64_t>> order_;  // (rank, key) of every entry, lowest first
    std::deque<Job> queue_;
    bool stop_ = false;
    std::vector<std::thread> io_;
    ExpertCacheStats stats_;
    std::vector<ExpertSliceStats> per_expert_;
    std::string error_;
};

// One line of the cache's figures for logs and reports: hits (prefetched, waited
// for), misses, bytes read, evictions, peak use, and how the prefetches fared.
std::string describe(const ExpertCacheStats& s);

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
        int layer = -1;  // the block this tensor belongs to, for statistics
        const uint8_t* mapped = nullptr;  // the tensor's bytes in the mapping
        int fd = -1;
        uint64_t file_offset = 0;
        uint64_t expert_bytes = 0;
        std::vector<Tier> tiers;  // per expert
    };
    explicit TieredExperts(Params p) : p_(std::move(p)) {}
    ExpertBytes expert(int64_t e) const override;
    void prefetch(int64_t e, bool guess) const override;

private:
    SliceRef ref(int64_t e) const;
    Params p_;
};

}  // namespace strata
