// The CPU attention against the textbook formula computed in double: scores of
// every visible position, one softmax over them and the sink, the weighted sum.

#include "ops/cpu/ops.h"
#include "random_blocks.h"
#include "tensor/fp16.h"
#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace strata {
namespace {

using test::random_floats;

struct Case {
    bool f16;
    int64_t n_tok, pos0, window;
    bool sinks;
    int threads;
};

// Attention of 8 query heads on 2 KV heads over up to 150 positions (three
// blocks of 64 keys, so the running maximum is raised between blocks), keys
// and values of different widths. Decode with 1 thread takes a whole group of
// 4 heads per job; with 3 threads the groups are split down to one head per job,
// so both ways of cutting the work are held to the formula.
//
// The bound: a float score differs from the double one by the rounding of a
// 64-term dot, at most about 64 * 2^-24 of sum |q k| * scale (about 1e-5 with
// these values); the weights move by that relative amount, plus 2 ulp of the
// exponential and one rounding per rescale. Each output is a convex combination
// of value rows, so it lands within 5e-5 * max |v| of the formula's. A position
// masked wrongly, the wrong KV head or a lost sink moves outputs by percents.
TEST(Attention, MatchesTheFormulaInDoubleForEverySplitOfTheHeads) {
    const int n_head = 8, n_head_kv = 2, group = n_head / n_head_kv, dk = 64, dv = 48;
    const int64_t k_width = n_head_kv * dk, v_width = n_head_kv * dv, n_pos = 150;
    const Case cases[] = {
        {.f16 = true, .n_tok = 1, .pos0 = 149, .window = 0, .sinks = false, .threads = 1},
        {.f16 = true, .n_tok = 1, .pos0 = 149, .window = 0, .sinks = true, .threads = 3},
        {.f16 = false, .n_tok = 1, .pos0 = 100, .window = 0, .sinks = false, .threads = 3},
        {.f16 = true, .n_tok = 3, .pos0 = 140, .window = 70, .sinks = true, .threads = 2},
        {.f16 = false, .n_tok = 5, .pos0 = 0, .window = 0, .sinks = true, .threads = 2},
    };
    std::mt19937 rng(21);
    for (const Case& c : cases) {
        const size_t elem = c.f16 ? 2 : 4;
        std::vector<uint8_t> kc(n_pos * k_width * elem), vc(n_pos * v_width * elem);
        const ops::KvLayer kv{
            .k = kc.data(), .v = vc.data(), .f16 = c.f16, .k_width = k_width, .v_width = v_width};
        const auto ks = random_floats(n_pos * k_width, rng, 2.0f);
        const auto vs = random_floats(n_pos * v_width, rng);
        for (int64_t p = 0; p < n_pos; ++p) {
            ops::kv_store(kv, p, ks.data() + p * k_width, vs.data() + p * v_width);
        }
        // What the cache holds, as doubles.
        auto cached = [&](const std::vector<uint8_t>& cache, int64_t i) -> double {
            if (!c.f16) return reinterpret_cast<const float*>(cache.data())[i];
            return fp16_to_fp32(reinterpret_cast<const uint16_t*>(cache.data())[i]);
        };
        const auto q = random_floats(c.n_tok * n_head * dk, rng);
        const auto sinks = random_floats(n_head, rng, 2.0f);
        const ops::AttentionParams p{.n_head = n_head,
                                     .n_head_kv = n_head_kv,
                                     .head_dim_k = dk,
                                     .head_dim_v = dv,
                                     .scale = 1.0f / std::sqrt(float{dk}),
                                     .window = c.window,
                                     .sinks = c.sinks ? sinks.data() : nullptr};
        std::vector<float> out(c.n_tok * n_head * dv);
        ThreadPool pool(c.threads);
        ops::attention(q.data(), c.n_tok, c.pos0, kv, p, out.data(), pool);

        double vmax = 0;
        for (float x : vs) vmax = std::max(vmax, double{std::fabs(x)});
        for (int64_t t = 0; t < c.n_tok; ++t) {
            const int64_t pos = c.pos0 + t;
            const int64_t first = c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0;
            for (int h = 0; h < n_head; ++h) {
                const int kvh = h / group;
                std::vector<double> s;
                for (int64_t j = first; j <= pos; ++j) {
                    double dot = 0;
                    for (int e = 0; e < dk; ++e) {
                        dot += q[(t * n_head + h) * dk + e] * cached(kc, j * k_width + kvh * dk + e);
                    }
                    s.push_back(dot * p.scale);
                }
                double max = *std::max_element(s.begin(), s.end());
                if (c.sinks) max = std::max(max, double{sinks[h]});
                double sum = c.sinks ? std::exp(sinks[h] - max) : 0.0;
                for (double& x : s) sum += x = std::exp(x - max);
                for (int e = 0; e < dv; ++e) {
                    double want = 0;
                    for (size_t j = 0; j < s.size(); ++j) {
                        want += s[j] * cached(vc, (first + j) * v_width + kvh * dv + e);
                    }
                    want /= sum;
                    ASSERT_NEAR(out[(t * n_head + h) * dv + e], want, 5e-5 * vmax)
                        << "f16=" << c.f16 << " n_tok=" << c.n_tok << " threads=" << c.threads
                        << " t=" << t << " head=" << h << " e=" << e;
                }
            }
        }
    }
}

}  // namespace
}  // namespace strata
