#pragma once
// What this machine can do at most, measured rather than looked up: the read
// bandwidth of RAM and the peak rate of float fused multiply-adds. Decode of an
// MoE model is bound by the first and prefill by the second, so `strata bench`
// divides its achieved figures by these to say how close to the ceiling it runs.

#include "util/thread_pool.h"

#include <cstddef>
#include <string>

namespace strata::ops {

struct ReadBandwidth {
    double gbps = 0;         // best pass, 1e9 bytes per second
    size_t bytes = 0;        // bytes read per pass, all threads together
    int threads = 0;
    std::string isa;         // the loads used: "avx2", "portable"
};

// Every thread of `pool` streams through its own buffer of `total_bytes /
// threads` (first touched by that thread, so it lives near it), `passes` times;
// the fastest pass counts. `total_bytes` must be far larger than the last-level
// cache or the figure is the cache's, not RAM's.
ReadBandwidth measure_read_bandwidth(ThreadPool& pool, size_t total_bytes = size_t{1} << 30, int passes = 5);

struct FmaPeak {
    double gflops = 0;       // best pass, 2 flops per lane per FMA
    int threads = 0;
    std::string isa;         // "avx512f", "avx2+fma", "scalar"
};

// Every thread of `pool` runs independent chains of float FMAs on the widest
// vectors the CPU has; the fastest of `passes` counts.
FmaPeak measure_fma_peak(ThreadPool& pool, int passes = 5);

}  // namespace strata::ops
