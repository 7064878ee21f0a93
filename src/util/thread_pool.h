#pragma once
// A fixed set of worker threads owned by an engine. A decode step of a MoE model
// issues hundreds of parallel regions of a few microseconds each, so waking the
// workers must cost far less than that: between regions workers spin on an
// atomic generation counter for a short while (`kSpinIterations`) and only then
// sleep on it, and the caller waits for stragglers by spinning too. When the pool
// has been idle longer than the spin, a region pays one futex wake-up instead.
//
// One caller at a time: an engine runs one forward pass at a time and calls the
// pool from that pass.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace strata {

class ThreadPool {
public:
    // `n_threads` counts the calling thread: 1 means no workers.
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls fn(begin, end) on disjoint contiguous chunks covering [0, n), one per
    // thread. Chunks are at least `min_chunk` long so tiny ranges are not split
    // across threads for nothing.
    using RangeFn = std::function<void(int64_t begin, int64_t end)>;
    void parallel_for(int64_t n, const RangeFn& fn, int64_t min_chunk = 1);

    // Calls fn(i) once for every i in [0, n), for items of uneven cost or
    // threads of uneven speed. Each thread starts on its own contiguous share of
    // the indices and takes them in order; one that runs out takes the back half
    // of the largest share left. So a thread's items are mostly neighbours,
    // which matters when each item reads the next stretch of one matrix: the
    // hardware prefetcher follows a thread that reads on where it stopped, while
    // items dealt out one by one from a shared counter leave every thread
    // jumping over the other's. (Decode of one token through a 256 MiB Q4_K_64
    // matrix in 64-row items on two threads read 31-34 GB/s dealt out, 45-49
    // with each thread on its own half; `strata_microbench`'s `ram/` rows, Zen 5.)
    using ItemFn = std::function<void(int64_t i)>;
    void for_each_dynamic(int64_t n, const ItemFn& fn);

    // Calls fn(thread_index) on every thread of the pool (0 is the caller).
    using ThreadFn = std::function<void(int thread_index)>;
    void run_on_all(const ThreadFn& fn);

private:
    void worker_loop(int index);
    int64_t take_own(int me);
    int64_t steal(int me);

    // One thread's share of a `for_each_dynamic` region, packed in one word so
    // that its owner (taking from the front) and thieves (taking from the back)
    // agree through one compare-and-swap. On its own cache line: the owner
    // writes it for every item.
    struct alignas(64) Share {
        std::atomic<uint64_t> word{0};
    };
    std::unique_ptr<Share[]> shares_;

    std::vector<std::thread> workers_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    const ThreadFn* job_ = nullptr;  // the current region; written before `generation_` is bumped
};

// Physical cores, the default thread count: hyper-threads share the memory
// bandwidth and vector units decode needs, so they add little.
int physical_core_count();

}  // namespace strata
