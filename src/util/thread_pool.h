#pragma once
// A fixed set of worker threads owned by an engine. `parallel_for` splits a range
// into contiguous chunks, runs them on the workers and the calling thread, and
// returns when all are done. One caller at a time: an engine runs one forward
// pass at a time and calls it from that pass.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
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

    // Calls fn(begin, end) on disjoint chunks covering [0, n). Chunks are at least
    // `min_chunk` long so tiny ranges are not split across threads for nothing.
    using RangeFn = std::function<void(int64_t begin, int64_t end)>;
    void parallel_for(int64_t n, const RangeFn& fn, int64_t min_chunk = 1);

private:
    void worker_loop(int index);
    void run_chunk(int index);

    std::vector<std::thread> workers_;
    std::mutex mu_;
    std::condition_variable start_cv_, done_cv_;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stop_ = false;
    // The job of the current generation.
    const RangeFn* fn_ = nullptr;
    int64_t n_ = 0;
    int n_chunks_ = 0;
};

// Physical cores, the default thread count: hyper-threads share the memory
// bandwidth and vector units decode needs, so they add little.
int physical_core_count();

}  // namespace strata
