// Kernel microbenchmarks (Google Benchmark): `ops::matmul` for one token
// (decode: bound by reading the weights) and for a batch (prefill: bound by
// arithmetic) on a random matrix of every weight type the type table can
// quantize, at the shapes of real MoE models; each type's row dequantizer; and
// decode attention over an F16 cache at a few context lengths.
// They go through the same `ops::matmul` the model calls, so they measure
// whatever kernels that dispatches to. Rates are per wall-clock second (the
// matmul runs on a thread pool, so the main thread's CPU time would flatter it).
// Figures, not tests: nothing here asserts.
//
//   build/bench/strata_microbench [--threads=N] [--benchmark_filter=REGEX] ...

#include "ops/cpu/dot.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/ops.h"
#include "tensor/fp16.h"
#include "tensor/repack.h"
#include "tensor/type.h"
#include "tensor/view.h"
#include "util/check.h"
#include "util/huge_buffer.h"
#include "util/thread_pool.h"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace strata {
namespace {

struct Shape {
    const char* name;
    int64_t n_in, n_out;  // a matrix of n_out rows of n_in elements
};

// gpt-oss-20b's hidden width (attention projections, experts in and out);
// Qwen3-30B-A3B's expert gate/up (2048 in, 768 out) and down (768 in, 2048 out).
constexpr Shape kShapes[] = {
    {"gpt-oss_2880x2880", 2880, 2880},
    {"qwen3-expert-up_2048x768", 2048, 768},
    {"qwen3-expert-down_768x2048", 768, 2048},
};

constexpr int64_t kTokenCounts[] = {1, 64};

// A random matrix of one type, encoded once and shared by every benchmark of
// that (type, shape): quantizing 8 M elements takes longer than timing them.
struct Matrix {
    std::vector<uint8_t> bytes;
    TensorView view;
};

class Matrices {
  public:
    const Matrix& get(TensorType t, const Shape& s) {
        auto key = std::make_tuple(t, s.n_in, s.n_out);
        auto it = cache_.find(key);
        if (it != cache_.end()) return *it->second;
        auto m = std::make_unique<Matrix>();
        if (layout_source(t) != t) {  // strata's own layouts: the source's matrix, repacked
            const Matrix& src = get(layout_source(t), s);
            m->bytes = src.bytes;
            m->view = src.view;
            m->view.type = t;
            m->view.data = m->bytes.data();
            repack_rows(t, m->bytes.data(), s.n_out, s.n_in, m->view.row_bytes);
            return *cache_.emplace(key, std::move(m)).first->second;
        }
        const TypeTraits& tr = type_traits(t);
        const auto row_bytes = static_cast<size_t>(s.n_in / tr.block_size) * tr.type_size;
        m->bytes.resize(row_bytes * static_cast<size_t>(s.n_out));
        std::mt19937 rng(1234);
        std::normal_distribution<float> dist(0.0f, 1.0f);
        std::vector<float> row(static_cast<size_t>(s.n_in));
        for (int64_t r = 0; r < s.n_out && tr.quantize; ++r) {
            for (float& v : row) v = dist(rng);
            tr.quantize(row.data(), m->bytes.data() + static_cast<size_t>(r) * row_bytes, s.n_in);
        }
        if (!tr.quantize) {  // random codes: the kernels' speed does not depend on
                             // the values; Q5_K's d and dmin 2^-7 so its sums stay finite
            for (uint8_t& b : m->bytes) b = static_cast<uint8_t>(rng());
            for (size_t b = 0; t == TensorType::Q5_K && b < m->bytes.size(); b += tr.type_size) {
                m->bytes[b] = m->bytes[b + 2] = 0, m->bytes[b + 1] = m->bytes[b + 3] = 0x20;
            }
        }
        m->view = TensorView{.name = s.name,
                             .type = t,
                             .ne = {s.n_in, s.n_out, 1, 1},
                             .row_bytes = row_bytes,
                             .data = m->bytes.data()};
        return *cache_.emplace(key, std::move(m)).first->second;
    }

  private:
    std::map<std::tuple<TensorType, int64_t, int64_t>, std::unique_ptr<Matrix>> cache_;
};

std::vector<float> random_floats(size_t n) {
    std::mt19937 rng(99);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

void bench_matmul(benchmark::State& state, Matrices& mats, TensorType t, Shape s, int64_t n_tok,
                  ThreadPool& pool) {
    const Matrix& m = mats.get(t, s);
    const std::vector<float> x = random_floats(static_cast<size_t>(n_tok * s.n_in));
    std::vector<float> y(static_cast<size_t>(n_tok * s.n_out));
    for (auto _ : state) {
        ops::matmul(m.view, 0, s.n_out, x.data(), s.n_in, n_tok, y.data(), s.n_out, pool);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    // The weights are read once per call whatever the batch; every weight meets
    // every token in one multiply-add (2 flops).
    const double bytes = static_cast<double>(m.bytes.size());
    const double flops = 2.0 * static_cast<double>(s.n_in) * static_cast<double>(s.n_out) * n_tok;
    state.counters["bytes/s"] =
        benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["FLOP/s"] =
        benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_dequantize(benchmark::State& state, Matrices& mats, TensorType t, Shape s) {
    const Matrix& m = mats.get(t, s);
    std::vector<float> row(static_cast<size_t>(s.n_in));
    for (auto _ : state) {
        for (int64_t r = 0; r < s.n_out; ++r) {
            m.view.dequantize_row(r, row.data());
            benchmark::DoNotOptimize(row.data());
        }
        benchmark::ClobberMemory();
    }
    const double elements = static_cast<double>(s.n_in) * static_cast<double>(s.n_out);
    state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(m.bytes.size()),
                                                   benchmark::Counter::kIsIterationInvariantRate);
    state.counters["elements/s"] =
        benchmark::Counter(elements, benchmark::Counter::kIsIterationInvariantRate);
}

// One kernel table's dot product over 32 rows of 2048 elements (64 KiB or less of
// weights, resident in L2 across iterations): the kernel's own speed, apart from
// memory. Decode needs it well above one core's share of the RAM bandwidth, or
// the kernel, not the memory, bounds a token.
void bench_dot(benchmark::State& state, Matrices& mats, TensorType t, const ops::DotKernels* k) {
    static constexpr Shape kShape{"l2", 2048, 32};
    const Matrix& m = mats.get(t, kShape);
    ops::PackedActs acts;
    const std::vector<float> x = random_floats(kShape.n_in);
    ops::pack_acts(t, x.data(), kShape.n_in, kShape.n_in, 1, acts, nullptr, *k);
    const ops::DotFn dot = k->dot[static_cast<size_t>(t)];
    const ops::Rows4Fn rows4 = k->rows4[static_cast<size_t>(t)];
    const ops::RowGroupsFn groups = k->row_groups[static_cast<size_t>(t)];
    float sum = 0;
    for (auto _ : state) {
        if (groups) {  // the _R8 layouts: all the matrix's groups per call, as decode does
            float out[kShape.n_out];
            groups(kShape.n_in, m.view.data, kShape.n_out / 8, acts.row(0), out);
            for (float v : out) sum += v;
        } else if (rows4) {  // decode's path in ops::matmul, four rows per call
            for (int64_t r = 0; r < kShape.n_out; r += 4) {
                const void* w[4] = {m.view.row(r), m.view.row(r + 1), m.view.row(r + 2),
                                    m.view.row(r + 3)};
                float out[4];
                rows4(kShape.n_in, w, acts.row(0), out, 0);
                sum += out[0] + out[1] + out[2] + out[3];
            }
        } else {
            for (int64_t r = 0; r < kShape.n_out; ++r)
                sum += dot(kShape.n_in, m.view.row(r), acts.row(0));
        }
        benchmark::DoNotOptimize(sum);
    }
    state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(m.bytes.size()),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

// Decode from RAM: one token through a 256 MiB-plus matrix (far beyond any
// last-level cache) on the pool, rows handed out as `ops::matmul` hands them,
// with table `k` as it is (`rows4`) or without its four-weight-row kernel for
// this type (`rows1`), in memory backed by 2 MiB pages as the engine's copy of
// the weights is (`huge`) or by 4 KiB pages as the file's mapping is (`4k`).
// Random codes with fixed, modest scales (quantizing 500 M floats would take
// minutes; the kernels' speed does not depend on the values).
void bench_ram(benchmark::State& state, TensorType t, bool rows4, bool huge, ThreadPool& pool) {
    const TypeTraits& tt = type_traits(t);
    const int64_t n_in = 2880 % tt.block_size == 0 ? 2880 : 2048;  // gpt-oss, or Qwen3 for K-quants
    const int64_t row_bytes = n_in / tt.block_size * static_cast<int64_t>(tt.type_size);
    constexpr int64_t R = ops::kMatmulItemRows;  // rows per work item, as matmul takes them
    const int64_t n_out = ((int64_t{256} << 20) / row_bytes + R - 1) / R * R;
    const size_t n_bytes = static_cast<size_t>(row_bytes * n_out);
    auto buf = HugeBuffer::allocate(n_bytes);
    CHECK(buf.ok(), "the benchmark's matrix fits in memory");
    if (!huge) ::madvise(buf->data(), n_bytes, MADV_NOHUGEPAGE);  // before the first touch
    uint8_t* bytes = buf->data();
    std::mt19937 rng(1);
    for (size_t i = 0; i + 4 <= n_bytes; i += 4) {
        const uint32_t v = static_cast<uint32_t>(rng());
        std::memcpy(bytes + i, &v, 4);
    }
    // Each block's leading scale: 2^-7 for MXFP4's exponent byte, else the
    // half 2^-7 (0x2000) in the first two bytes (and Q4_K's second scale;
    // Q3_K's d is its last two bytes, Q2_K's d and dmin its last four).
    for (size_t b = 0; b < n_bytes; b += tt.type_size) {
        if (layout_source(t) == TensorType::MXFP4) {
            bytes[b] = 120;
        } else if (layout_source(t) == TensorType::Q3_K) {
            bytes[b + 108] = 0, bytes[b + 109] = 0x20;
        } else if (layout_source(t) == TensorType::Q2_K) {
            bytes[b + 80] = 0, bytes[b + 81] = 0x20, bytes[b + 82] = 0, bytes[b + 83] = 0x20;
        } else {
            bytes[b] = 0, bytes[b + 1] = 0x20;
            if (tt.block_size == 256) bytes[b + 2] = 0, bytes[b + 3] = 0x20;
        }
    }
    if (layout_source(t) != t) repack_rows(t, bytes, n_out, n_in, static_cast<size_t>(row_bytes));
    const TensorView w{.name = "w",
                       .type = t,
                       .ne = {n_in, n_out, 1, 1},
                       .row_bytes = static_cast<size_t>(row_bytes),
                       .data = bytes};
    ops::DotKernels k = ops::dot_kernels();
    if (!rows4) k.rows4[static_cast<size_t>(t)] = nullptr;
    const std::vector<float> x = random_floats(n_in);
    ops::PackedActs acts;
    ops::pack_acts(t, x.data(), n_in, n_in, 1, acts, nullptr, k);
    std::vector<float> y(static_cast<size_t>(n_out));
    for (auto _ : state) {
        pool.for_each_dynamic(n_out / R, [&](int64_t i) {
            ops::matmul_rows({.w = &w,
                              .row_begin = R * i,
                              .row_end = R * (i + 1),
                              .acts = &acts,
                              .n_tok = 1,
                              .y = y.data(),
                              .y_stride = 0},
                             k);
        });
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(n_bytes),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

// Decode attention at a context of `n_ctx` positions: one token's 32 query
// heads over 4 KV heads of 128 (Qwen3-30B-A3B) in an F16 cache, on the pool.
// A model's 48 layers each have their own cache, and by the time a layer comes
// round again its cache has left the CPU's caches: the benchmark cycles through
// 16 layers' caches, at least 64 MiB in all, so each is read from memory.
void bench_attention(benchmark::State& state, int64_t n_ctx, ThreadPool& pool) {
    const ops::AttentionParams p{.n_head = 32,
                                 .n_head_kv = 4,
                                 .head_dim_k = 128,
                                 .head_dim_v = 128,
                                 .scale = 1.0f / std::sqrt(128.0f)};
    const int64_t width = int64_t{p.n_head_kv} * p.head_dim_k;
    const size_t layer_bytes = static_cast<size_t>(2 * n_ctx * width) * sizeof(uint16_t);
    const int n_layers = static_cast<int>(
        std::max<size_t>(16, ((size_t{64} << 20) + layer_bytes - 1) / layer_bytes));
    std::vector<std::vector<uint16_t>> caches(static_cast<size_t>(n_layers));
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& c : caches) {
        c.resize(layer_bytes / sizeof(uint16_t));
        for (auto& h : c) h = fp32_to_fp16(normal(rng));
    }
    const std::vector<float> q = random_floats(int64_t{p.n_head} * p.head_dim_k);
    std::vector<float> out(static_cast<size_t>(p.n_head * p.head_dim_v));
    int layer = 0;
    for (auto _ : state) {
        uint16_t* c = caches[static_cast<size_t>(layer)].data();
        layer = (layer + 1) % n_layers;
        const ops::KvLayer kv{
            .k = c, .v = c + n_ctx * width, .f16 = true, .k_width = width, .v_width = width};
        ops::attention(q.data(), 1, n_ctx - 1, kv, p, out.data(), pool);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["bytes/s"] = benchmark::Counter(static_cast<double>(layer_bytes),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

// Removes `--threads=N` from argv (Google Benchmark rejects flags it does not
// know) and returns N, or 0 when absent.
int take_threads_flag(int& argc, char** argv) {
    int threads = 0;
    int out = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], "--threads=", 10) == 0) {
            threads = std::atoi(argv[i] + 10);
        } else {
            argv[out++] = argv[i];
        }
    }
    argc = out;
    return threads;
}

}  // namespace
}  // namespace strata

int main(int argc, char** argv) {
    using namespace strata;
    const int threads = take_threads_flag(argc, argv);
    ThreadPool pool(threads > 0 ? threads : physical_core_count());
    Matrices mats;
    // The file types strata can make, and the layouts the kernel table repacks them into.
    std::vector<const TypeTraits*> matmul_types;
    for (uint32_t id = 0; id < kTypeIdCount; ++id) {
        const TypeTraits* tr = type_traits(id);
        if (!tr || !tr->quantize || !tr->dequantize) continue;
        matmul_types.push_back(tr);
        if (const auto to = ops::dot_kernels().repacked[id])
            matmul_types.push_back(&type_traits(*to));
    }
    for (const TypeTraits* tr : matmul_types) {
        for (const Shape& s : kShapes) {
            // K-quants' 256-element blocks do not divide gpt-oss's 2880.
            if (s.n_in % tr->block_size != 0) continue;
            for (int64_t n_tok : kTokenCounts) {
                benchmark::RegisterBenchmark(
                    fmt::format("matmul/{}/{}/tokens:{}", tr->name, s.name, n_tok).c_str(),
                    bench_matmul, std::ref(mats), tr->type, s, n_tok, std::ref(pool))
                    ->UseRealTime()
                    ->Unit(benchmark::kMillisecond);
            }
            benchmark::RegisterBenchmark(fmt::format("dequantize/{}/{}", tr->name, s.name).c_str(),
                                         bench_dequantize, std::ref(mats), tr->type, s)
                ->UseRealTime()
                ->Unit(benchmark::kMillisecond);
        }
    }
    for (const ops::DotKernels* k : {&ops::scalar_dot_kernels(), ops::avx2_dot_kernels(),
                                     ops::avx512_dot_kernels(), ops::avx512vbmi_dot_kernels()}) {
        if (!k) continue;
        std::vector<TensorType> types;
        for (uint32_t id = 0; id < kTypeIdCount; ++id) {
            const TypeTraits* tr = type_traits(id);
            if (tr) types.push_back(tr->type);
        }
        // strata's own layouts, where the table asks for them.
        for (uint32_t id = 0; id < kTypeIdCount; ++id) {
            if (k->repacked[id]) types.push_back(*k->repacked[id]);
        }
        for (TensorType t : types) {
            if (!k->dot[static_cast<size_t>(t)]) continue;
            benchmark::RegisterBenchmark(fmt::format("dot/{}/{}", type_name(t), k->isa).c_str(),
                                         bench_dot, std::ref(mats), t, k);
        }
    }
    for (TensorType t :
         {TensorType::Q8_0, TensorType::Q8_0_R8, TensorType::MXFP4, TensorType::MXFP4_X4,
          TensorType::Q4_K, TensorType::Q4_K_64, TensorType::Q6_K_64, TensorType::IQ4_XS,
          TensorType::IQ4_XS_64, TensorType::Q3_K, TensorType::Q3_K_64, TensorType::Q2_K,
          TensorType::Q2_K_64}) {
        for (bool huge : {true, false}) {
            for (bool rows4 : {false, true}) {
                const auto id = static_cast<size_t>(t);
                // The _R8 layouts' rows are read a group at a time ("rows4") or not at all.
                const bool groups = ops::dot_kernels().row_groups[id] != nullptr;
                if (rows4 && !ops::dot_kernels().rows4[id] && !groups) continue;
                if (!rows4 && groups) continue;
                benchmark::RegisterBenchmark(
                    fmt::format("ram/{}/{}/{}", type_name(t), rows4 ? "rows4" : "rows1",
                                huge ? "huge" : "4k")
                        .c_str(),
                    bench_ram, t, rows4, huge, std::ref(pool))
                    ->UseRealTime()
                    ->Unit(benchmark::kMillisecond);
            }
        }
    }
    for (int64_t n_ctx : {512, 2048, 8192}) {
        benchmark::RegisterBenchmark(fmt::format("attention/decode/ctx:{}", n_ctx).c_str(),
                                     bench_attention, n_ctx, std::ref(pool))
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    }
    benchmark::AddCustomContext("threads", std::to_string(pool.size()));
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
