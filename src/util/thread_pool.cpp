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

// A share's word: items [front, back) and a tag. The tag changes whenever a
// thief refills its own emptied share, so a compare-and-swap made from an old
// reading of a share cannot succeed on the refilled one, even where the new
// bounds equal the old. Within one filling, front only rises and back only
// falls, so those readings never repeat.
constexpr int kIndexBits = 24;
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
// Items per region, so that a share's back (at most the count) fits its bits;
// more go in rounds.
constexpr int64_t kMaxItems = static_cast<int64_t>(kIndexMask);

struct ShareBounds {
    int64_t front, back;
    uint64_t tag;
};

ShareBounds unpack(uint64_t w) {
    return {static_cast<int64_t>(w & kIndexMask),
            static_cast<int64_t>((w >> kIndexBits) & kIndexMask), w >> (2 * kIndexBits)};
}

uint64_t pack(int64_t front, int64_t back, uint64_t tag) {
    return static_cast<uint64_t>(front) | static_cast<uint64_t>(back) << kIndexBits |
           (tag & 0xFFFF) << (2 * kIndexBits);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : shares_(std::make_unique<Share[]>(std::max(1, n_threads))) {
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
    if (n > kMaxItems) {  // more than a share's word can count: in rounds
        for (int64_t base = 0; base < n; base += kMaxItems)
            for_each_dynamic(std::min(kMaxItems, n - base), [&](int64_t i) { fn(base + i); });
        return;
    }
    const int threads = size();
    for (int t = 0; t < threads; ++t)
        shares_[t].word.store(pack(n * t / threads, n * (t + 1) / threads, 0),
                              std::memory_order_relaxed);
    // (`run_on_all` publishes the shares: it bumps the generation after these stores.)
    run_on_all([&](int me) {
        for (;;) {
            int64_t i = take_own(me);
            if (i < 0) i = steal(me);
            if (i < 0) return;
            fn(i);
        }
    });
}

// The front item of thread `me`'s share, or -1 when the share is empty.
int64_t ThreadPool::take_own(int me) {
    std::atomic<uint64_t>& share = shares_[me].word;
    uint64_t w = share.load(std::memory_order_acquire);
    for (;;) {
        const ShareBounds s = unpack(w);
        if (s.front >= s.back) return -1;
        if (share.compare_exchange_weak(w, pack(s.front + 1, s.back, s.tag),
                                        std::memory_order_acq_rel))
            return s.front;
    }
}

// Moves the back half of the largest other share (or its only item) to thread
// `me`'s empty share and returns the first of them; -1 when every share is
// empty. Items a thief has taken but not yet put in its share are invisible to
// others for that moment; they are that thief's to run, so none is lost.
int64_t ThreadPool::steal(int me) {
    const int threads = size();
    for (;;) {
        int victim = -1;
        uint64_t seen = 0;
        int64_t most = 0;
        for (int t = 0; t < threads; ++t) {
            if (t == me) continue;
            const uint64_t w = shares_[t].word.load(std::memory_order_acquire);
            const ShareBounds s = unpack(w);
            if (s.back - s.front > most) most = s.back - s.front, victim = t, seen = w;
        }
        if (victim < 0) return -1;
        const ShareBounds s = unpack(seen);
        const int64_t mid = s.front + (s.back - s.front) / 2;
        if (!shares_[victim].word.compare_exchange_strong(seen, pack(s.front, mid, s.tag),
                                                          std::memory_order_acq_rel))
            continue;  // the owner or another thief moved first: look again
        std::atomic<uint64_t>& own = shares_[me].word;
        const uint64_t tag = unpack(own.load(std::memory_order_relaxed)).tag + 1;
        own.store(pack(mid + 1, s.back, tag), std::memory_order_release);
        return mid;
    }
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
