#include "util/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace strata {

namespace {

// About 50-100 microseconds of `pause` on current x86 cores: longer than the gap
// between two parallel regions of a decode step, far shorter than a token.
constexpr int kSpinIterations = 20000;
constexpr int kCallerSpinIterations = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
    for (int i = 1; i < std::max(1, n_threads); ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true);
    generation_.fetch_add(1);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t now = generation_.load(std::memory_order_acquire);
        for (int spin = 0; now == seen && spin < kSpinIterations; ++spin) {
            // Pause first; then yield, so that on an oversubscribed machine a
            // spinning worker hands its core to whoever has work.
            if (spin < kCallerSpinIterations) {
                cpu_relax();
            } else {
                std::this_thread::yield();
            }
            now = generation_.load(std::memory_order_acquire);
        }
        if (now == seen) {
            generation_.wait(seen, std::memory_order_acquire);
            continue;
        }
        seen = now;
        if (stop_.load()) return;
        (*job_)(index);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::run_on_all(const ThreadFn& fn) {
    if (workers_.empty()) {
        fn(0);
        return;
    }
    job_ = &fn;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
    fn(0);
    // Stragglers are usually microseconds behind; when the machine is
    // oversubscribed a worker may instead be waiting for a core, and spinning
    // would only take that core from it.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
        if (spin < kCallerSpinIterations) {
            cpu_relax();
        } else {
            std::this_thread::yield();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn, int64_t min_chunk) {
    if (n <= 0) return;
    const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk));
    const int chunks = static_cast<int>(std::min<int64_t>(size(), max_chunks));
    if (chunks == 1) {
        fn(0, n);
        return;
    }
    run_on_all([&](int index) {
        if (index >= chunks) return;
        const int64_t begin = n * index / chunks;
        const int64_t end = n * (index + 1) / chunks;
        if (begin < end) fn(begin, end);
    });
}

void ThreadPool::for_each_dynamic(int64_t n, const ItemFn& fn) {
    if (n <= 0) return;
    if (n == 1 || workers_.empty()) {
        for (int64_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::atomic<int64_t> next{0};
    run_on_all([&](int) {
        for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
             i = next.fetch_add(1, std::memory_order_relaxed)) {
            fn(i);
        }
    });
}

int physical_core_count() {
    // Distinct (physical id, core id) pairs in /proc/cpuinfo; falls back to the
    // logical count where the file does not say.
    std::ifstream in("/proc/cpuinfo");
    std::set<std::pair<std::string, std::string>> cores;
    std::string line, physical = "0";
    while (std::getline(in, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string key = line.substr(0, colon);
        key.erase(key.find_last_not_of(" \t") + 1);
        const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
        if (key == "physical id") physical = value;
        if (key == "core id") cores.emplace(physical, value);
    }
    const int logical = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return cores.empty() ? logical : std::min(logical, static_cast<int>(cores.size()));
}

}  // namespace strata
