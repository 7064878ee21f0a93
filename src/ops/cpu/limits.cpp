#include "ops/cpu/limits.h"

#include "util/check.h"
#include "util/huge_buffer.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace strata::ops {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Folds the results into a volatile, so the loops that made them cannot be
// dropped as dead code.
template <typename T>
void keep_alive(const std::vector<T>& sinks) {
    volatile T sink{};
    for (T v : sinks) sink = sink + v;
}

// The read loops fold every loaded word into a few accumulators with XOR: one
// cheap operation per load, and a result the compiler cannot prove unused, so
// the loads stay. Several accumulators keep many loads in flight.

__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t* p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        const auto* v = reinterpret_cast<const __m256i*>(p + i);
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(v + 0));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256(v + 1));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256(v + 2));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256(v + 3));
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(v + 4));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256(v + 5));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256(v + 6));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256(v + 7));
    }
    const __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return static_cast<uint64_t>(_mm256_extract_epi64(a, 0) ^ _mm256_extract_epi64(a, 1) ^
                                 _mm256_extract_epi64(a, 2) ^ _mm256_extract_epi64(a, 3));
}

uint64_t read_portable(const uint8_t* p, size_t n) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const auto* w = reinterpret_cast<const uint64_t*>(p);
    for (size_t i = 0; i + 4 <= n / 8; i += 4) {
        a0 ^= w[i];
        a1 ^= w[i + 1];
        a2 ^= w[i + 2];
        a3 ^= w[i + 3];
    }
    return a0 ^ a1 ^ a2 ^ a3;
}

// Independent chains `acc = acc * m + a`: each FMA waits only on its own chain's
// previous one, so with at least latency x FMA-units chains the units never
// idle. m < 1 and small a keep the values finite (they converge towards a / (1 - m)).
constexpr float kMul = 0.999999f;

__attribute__((target("avx512f"))) float fma_avx512(int64_t iters, float seed) {
    constexpr int kChains = 16;  // of 32 registers; covers latency 4 x 2 units with room
    const __m512 m = _mm512_set1_ps(kMul), a = _mm512_set1_ps(seed * 1e-6f);
    __m512 acc[kChains];
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(seed + static_cast<float>(j));
    for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
        for (int j = 0; j < kChains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], m, a);
    }
    __m512 s = acc[0];
    for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, acc[j]);
    // Stored and summed by hand: GCC 12 warns inside `_mm512_reduce_add_ps`.
    float lanes[16];
    _mm512_storeu_ps(lanes, s);
    float sum = 0;
    for (float v : lanes) sum += v;
    return sum;
}

__attribute__((target("avx2,fma"))) float fma_avx2(int64_t iters, float seed) {
    constexpr int kChains = 12;  // of 16 registers, leaving two for the constants
    const __m256 m = _mm256_set1_ps(kMul), a = _mm256_set1_ps(seed * 1e-6f);
    __m256 acc[kChains];
    for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_ps(seed + static_cast<float>(j));
    for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
        for (int j = 0; j < kChains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], m, a);
    }
    __m256 s = acc[0];
    for (int j = 1; j < kChains; ++j) s = _mm256_add_ps(s, acc[j]);
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    float sum = 0;
    for (float v : lanes) sum += v;
    return sum;
}

float fma_scalar(int64_t iters, float seed) {
    constexpr int kChains = 8;
    const float a = seed * 1e-6f;
    float acc[kChains];
    for (int j = 0; j < kChains; ++j) acc[j] = seed + static_cast<float>(j);
    for (int64_t i = 0; i < iters; ++i) {
        for (float& v : acc) v = v * kMul + a;
    }
    float sum = 0;
    for (float v : acc) sum += v;
    return sum;
}

struct FmaKernel {
    const char* isa;
    float (*fn)(int64_t iters, float seed);
    int lanes, chains;
};

FmaKernel best_fma_kernel() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return {"avx512f", fma_avx512, 16, 16};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"avx2+fma", fma_avx2, 8, 12};
    return {"scalar", fma_scalar, 1, 8};
}

}  // namespace

ReadBandwidth measure_read_bandwidth(ThreadPool& pool, size_t total_bytes, int passes) {
    const int n = pool.size();
    // Whole 256-byte steps per thread, so every byte counted is a byte read.
    const size_t per_thread = std::max<size_t>(256, total_bytes / static_cast<size_t>(n) / 256 * 256);
    // In huge pages, as the engine's copied weights are: through 4 KiB pages a
    // stream takes a TLB miss every 64 lines and the hardware prefetcher stops
    // at each page's end, so the figure would be below what decode reaches.
    std::vector<HugeBuffer> buffers(static_cast<size_t>(n));
    pool.parallel_for(
        n,
        [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                auto buf = HugeBuffer::allocate(per_thread);
                CHECK(buf.ok(), "cannot allocate the bandwidth test's buffer");
                // Distinct non-zero bytes, so no page is the shared zero page.
                std::memset(buf->data(), static_cast<int>(i + 1), per_thread);
                buffers[static_cast<size_t>(i)] = std::move(*buf);
            }
        },
        1);

    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2");
    std::vector<uint64_t> sinks(static_cast<size_t>(n));
    ReadBandwidth r{.bytes = per_thread * static_cast<size_t>(n), .threads = n, .isa = avx2 ? "avx2" : "portable"};
    for (int pass = 0; pass < std::max(1, passes); ++pass) {
        const auto start = std::chrono::steady_clock::now();
        pool.parallel_for(
            n,
            [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) {
                    const uint8_t* p = buffers[static_cast<size_t>(i)].data();
                    sinks[static_cast<size_t>(i)] ^= avx2 ? read_avx2(p, per_thread) : read_portable(p, per_thread);
                }
            },
            1);
        const double s = seconds_since(start);
        r.gbps = std::max(r.gbps, static_cast<double>(r.bytes) / s / 1e9);
    }
    keep_alive(sinks);
    return r;
}

FmaPeak measure_fma_peak(ThreadPool& pool, int passes) {
    const FmaKernel k = best_fma_kernel();
    const int n = pool.size();
    // About 0.03 s per pass on a 4 GHz core with two FMA units; long enough that
    // the start and end of the parallel region do not count.
    const int64_t iters = int64_t{1} << 24;
    std::vector<float> sinks(static_cast<size_t>(n));
    FmaPeak r{.threads = n, .isa = k.isa};
    for (int pass = 0; pass < std::max(1, passes); ++pass) {
        const auto start = std::chrono::steady_clock::now();
        pool.parallel_for(
            n,
            [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) {
                    sinks[static_cast<size_t>(i)] += k.fn(iters, 1.0f + static_cast<float>(i + pass));
                }
            },
            1);
        const double s = seconds_since(start);
        const double flops = 2.0 * static_cast<double>(iters) * k.chains * k.lanes * n;
        r.gflops = std::max(r.gflops, flops / s / 1e9);
    }
    keep_alive(sinks);
    return r;
}

}  // namespace strata::ops
