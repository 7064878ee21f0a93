// The feed-forward blocks: dense FFN and the MoE layer, both run as "FFN jobs".
//
// A job is one FFN (a routed expert, the shared expert, or a dense FFN) applied
// to a group of tokens. A MoE layer routes every token, groups the tokens by
// expert into jobs, and then runs all jobs together in three parallel regions:
// gate/up products with the activation, packing of the hidden rows, and the down
// product. Work items are (job, block of rows), taken dynamically by the pool's
// threads, so a decode step's k small experts keep every thread busy, and each
// expert's rows are read once for all the tokens routed to it (a matrix-vector
// product in decode, matrix-matrix in prefill). A last region sums each token's
// weighted expert outputs, in job order, so results do not depend on the thread
// count.

#include "model/blocks.h"

#include "ops/cpu/ops.h"
#include "util/check.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <span>
#include <utility>

namespace strata {

namespace {

// Rows of a matrix per work item: enough dot products to amortise taking an
// item, few enough that a decode step has several items per thread (Qwen3's 8
// experts give 48 gate/up and 128 down items) and the threads finish a region
// close together. With each thread on its own share of the items (see
// `ThreadPool::for_each_dynamic`), two-thread Qwen3-30B-A3B decode (16 layers,
// Q4_K, Zen 5) ran at 52.3-56.8 tokens/s with 128 rows, 48.4-51.2 with 32 and
// 52.6-54.5 with 256 (three alternating rounds each, 2026-12-07). A 32-row down
// item is 14 KiB, about a microsecond of reading, against which taking the item
// and calling the kernels for it count.
constexpr int64_t kItemRows = 128;

const float* bias_of(const TensorView& b, int64_t expert) {
    return b.valid() ? b.f32() + expert * b.ne[0] : nullptr;
}

struct FfnJob {
    TensorView gate, up, down;  // [n_embd, n_ff], [n_embd, n_ff], [n_ff, n_embd]
    const float *gate_b = nullptr, *up_b = nullptr, *down_b = nullptr;
    std::vector<int32_t> tokens;  // rows of the layer input this job reads
    std::vector<float> hidden;    // [tokens, n_ff] after the activation
    ops::PackedActs hidden_q;     // the same, packed for `down`
    std::vector<float> y;         // [tokens, n_embd]

    int expert = -1;  // routed jobs: the expert
    // Disk-tier experts' bytes (see `bind_expert`), held while the job runs.
    std::vector<std::shared_ptr<const void>> holds;

    int64_t n_ff() const { return gate.ne[1]; }
    int64_t n_out() const { return down.ne[1]; }
    int64_t m() const { return static_cast<int64_t>(tokens.size()); }
};

// Expert `e`'s matrices and biases for `job`. This is where an expert's bytes are
// located: `expert_rows` reads them in place, or from the disk tier's cache,
// whose copies the job holds until it is done with them.
void bind_expert(FfnJob& job, const LayerWeights& w, int e) {
    job.expert = e;
    for (auto [view, stacked] : {std::pair{&job.gate, &w.gate_exps}, std::pair{&job.up, &w.up_exps},
                                 std::pair{&job.down, &w.down_exps}}) {
        ExpertRows r = expert_rows(*stacked, e);
        *view = r.view;
        if (r.hold) job.holds.push_back(std::move(r.hold));
    }
    job.gate_b = bias_of(w.gate_exps_b, e);
    job.up_b = bias_of(w.up_exps_b, e);
    job.down_b = bias_of(w.down_exps_b, e);
}

// A (job, first row) pair: one unit of work for the pool.
struct Item {
    size_t job;
    int64_t row0;
};

std::vector<Item> row_items(std::span<const FfnJob> jobs, int64_t (FfnJob::*rows)() const) {
    std::vector<Item> items;
    for (size_t j = 0; j < jobs.size(); ++j) {
        for (int64_t r = 0; r < (jobs[j].*rows)(); r += kItemRows) items.push_back({j, r});
    }
    return items;
}

// The layer input packed per activation format, filled as jobs need formats and
// kept across `run_jobs` calls, so jobs run one at a time (the disk tier) pack
// the input once per layer, not once per expert.
// Keyed by what the kernel table takes for a weight type: its activation type and layout.
using ActFormat = std::pair<TensorType, ops::ActLayout>;
using PackedInput = std::map<ActFormat, ops::PackedActs>;

ActFormat act_format(const TensorView& w) {
    return {ops::dot_act_type(w.type), ops::dot_kernels().layout[static_cast<size_t>(w.type)]};
}

// Runs every job: afterwards each job's `y` holds down(act(gate x) * up x) (+ biases)
// for its tokens. `x` is the layer input [n_tok, n_embd].
void run_jobs(std::span<FfnJob> jobs, Activation act, const float* x, int64_t n_tok, int64_t n_embd,
              PackedInput& packed, ThreadPool& pool) {
    for (const FfnJob& j : jobs) {
        for (const TensorView* w : {&j.gate, &j.up}) {
            auto [it, fresh] = packed.try_emplace(act_format(*w));
            if (fresh) ops::pack_acts(w->type, x, n_embd, n_embd, n_tok, it->second, &pool);
        }
    }
    auto acts_for = [&](const TensorView& w) -> const ops::PackedActs& {
        return packed.at(act_format(w));
    };
    for (FfnJob& j : jobs) {
        j.hidden.resize(static_cast<size_t>(j.m() * j.n_ff()));
        j.y.resize(static_cast<size_t>(j.m() * j.n_out()));
        ops::resize_acts(j.down.type, j.n_ff(), j.m(), j.hidden_q);
    }

    // Gate and up for a block of rows, then the activation of that block.
    const auto up_items = row_items(jobs, &FfnJob::n_ff);
    pool.for_each_dynamic(static_cast<int64_t>(up_items.size()), [&](int64_t i) {
        FfnJob& j = jobs[up_items[i].job];
        const int64_t r0 = up_items[i].row0, r1 = std::min(j.n_ff(), r0 + kItemRows), m = j.m();
        std::vector<float> g(static_cast<size_t>(m * kItemRows)), u(g.size());
        ops::matmul_rows({.w = &j.gate,
                          .row_begin = r0,
                          .row_end = r1,
                          .acts = &acts_for(j.gate),
                          .tokens = j.tokens.data(),
                          .n_tok = m,
                          .y = g.data(),
                          .y_stride = kItemRows,
                          .y_row0 = r0});
        ops::matmul_rows({.w = &j.up,
                          .row_begin = r0,
                          .row_end = r1,
                          .acts = &acts_for(j.up),
                          .tokens = j.tokens.data(),
                          .n_tok = m,
                          .y = u.data(),
                          .y_stride = kItemRows,
                          .y_row0 = r0});
        for (int64_t t = 0; t < m; ++t) {
            for (int64_t r = r0; r < r1; ++r) {
                float gv = g[t * kItemRows + (r - r0)], uv = u[t * kItemRows + (r - r0)];
                if (j.gate_b) gv += j.gate_b[r];
                if (j.up_b) uv += j.up_b[r];
                j.hidden[t * j.n_ff() + r] = ops::glu(act, gv, uv);
            }
        }
    });

    // Hidden rows into the down matrix's activation format.
    std::vector<Item> rows;
    for (size_t j = 0; j < jobs.size(); ++j) {
        for (int64_t t = 0; t < jobs[j].m(); ++t) rows.push_back({j, t});
    }
    pool.for_each_dynamic(static_cast<int64_t>(rows.size()), [&](int64_t i) {
        FfnJob& j = jobs[rows[i].job];
        const int64_t t = rows[i].row0;
        ops::pack_row(j.hidden_q, t, j.hidden.data() + t * j.n_ff());
    });

    const auto down_items = row_items(jobs, &FfnJob::n_out);
    pool.for_each_dynamic(static_cast<int64_t>(down_items.size()), [&](int64_t i) {
        FfnJob& j = jobs[down_items[i].job];
        const int64_t r0 = down_items[i].row0, r1 = std::min(j.n_out(), r0 + kItemRows);
        ops::matmul_rows({.w = &j.down,
                          .row_begin = r0,
                          .row_end = r1,
                          .acts = &j.hidden_q,
                          .n_tok = j.m(),
                          .y = j.y.data() + r0,
                          .y_stride = j.n_out(),
                          .y_row0 = r0});
        if (j.down_b) {
            for (int64_t t = 0; t < j.m(); ++t) {
                for (int64_t r = r0; r < r1; ++r) j.y[t * j.n_out() + r] += j.down_b[r];
            }
        }
    });
}

std::vector<int32_t> all_tokens(int64_t n_tok) {
    std::vector<int32_t> t(static_cast<size_t>(n_tok));
    std::iota(t.begin(), t.end(), 0);
    return t;
}

Routing route(const LayerWeights& w, const MoeParams& p, const float* x, int64_t n_tok,
              ThreadPool& pool) {
    std::vector<float> logits(static_cast<size_t>(n_tok * p.n_expert));
    linear(w.gate_inp, w.gate_inp_b, x, n_tok, logits.data(), pool);
    return route_logits(p, logits.data(), n_tok);
}

bool has_streamed_experts(const LayerWeights& w) {
    return w.gate_exps.experts || w.up_exps.experts || w.down_exps.experts;
}

// Asks the disk tier to start reading expert `e`'s slices.
void prefetch_expert(const LayerWeights& w, int e, bool guess) {
    for (const TensorView* t : {&w.gate_exps, &w.up_exps, &w.down_exps}) {
        if (t->experts) t->experts->prefetch(e, guess);
    }
}

// The experts the next layer will probably pick: its router applied to this
// layer's FFN input. The residual stream changes little from one layer to the
// next, so this guesses most of the next layer's choices, early enough for the
// disk to fetch them while this layer computes.
std::vector<int> guess_next_experts(const LayerWeights& next, const MoeParams& p, const float* x,
                                    int64_t n_tok, ThreadPool& pool) {
    const Routing r = route(next, p, x, n_tok, pool);
    std::vector<int> experts(r.chosen);
    std::sort(experts.begin(), experts.end());
    experts.erase(std::unique(experts.begin(), experts.end()), experts.end());
    return experts;
}

}  // namespace

void dense_ffn(const TensorView& gate, const TensorView& up, const TensorView& down, Activation act,
               const float* x, int64_t n_tok, float* out, ThreadPool& pool) {
    std::vector<FfnJob> jobs(1);
    jobs[0].gate = gate;
    jobs[0].up = up;
    jobs[0].down = down;
    jobs[0].tokens = all_tokens(n_tok);
    PackedInput packed;
    run_jobs(jobs, act, x, n_tok, gate.ne[0], packed, pool);
    std::copy(jobs[0].y.begin(), jobs[0].y.end(), out);
}

void moe_ffn(const LayerWeights& w, const MoeParams& p, const float* x, int64_t n_tok,
             int64_t n_embd, float* out, ThreadPool& pool, ExpertUsage* usage, int il,
             const LayerWeights* next) {
    const Routing routing = route(w, p, x, n_tok, pool);
    moe_experts(w, p, routing, {.x = x, .n_tok = n_tok, .n_embd = n_embd, .out = out}, pool, usage,
                il, next);
}

void moe_experts(const LayerWeights& w, const MoeParams& p, const Routing& routing,
                 const MoeRun& run, ThreadPool& pool, ExpertUsage* usage, int il,
                 const LayerWeights* next) {
    const float* x = run.x;
    const int64_t n_tok = run.n_tok, n_embd = run.n_embd;
    float* out = run.out;
    const int n_exp = p.n_expert, k = p.n_expert_used;
    const std::vector<int>& chosen = routing.chosen;
    const std::vector<float>& weight = routing.weight;

    // Experts some of which the disk tier holds: see the `run_jobs` calls below.
    const bool streamed = has_streamed_experts(w);

    // One job per used expert, in expert order; `slot[e]` is expert e's job.
    std::vector<int> slot(static_cast<size_t>(n_exp), -1);
    std::vector<FfnJob> jobs;
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int j = 0; j < k; ++j) {
            const int e = chosen[t * k + j];
            if (run.only.empty() || run.only[static_cast<size_t>(e)])
                slot[static_cast<size_t>(e)] = 0;
        }
    }
    for (int e = 0; e < n_exp; ++e) {
        if (slot[e] < 0) continue;
        slot[e] = static_cast<int>(jobs.size());
        FfnJob& job = jobs.emplace_back();
        if (!streamed) {
            bind_expert(job, w, e);
        } else {
            // Shapes only, for now: the bytes are fetched when the job runs.
            job.expert = e;
            job.gate = w.gate_exps;
            job.up = w.up_exps;
            job.down = w.down_exps;
        }
    }
    const size_t n_routed = jobs.size();
    // Where token t's j-th choice landed: (job, row in that job).
    std::vector<std::pair<int, int>> where(chosen.size());
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int j = 0; j < k; ++j) {
            if (slot[static_cast<size_t>(chosen[t * k + j])] < 0) continue;  // not run here
            FfnJob& job = jobs[static_cast<size_t>(slot[static_cast<size_t>(chosen[t * k + j])])];
            where[t * k + j] = {slot[static_cast<size_t>(chosen[t * k + j])],
                                static_cast<int>(job.tokens.size())};
            job.tokens.push_back(static_cast<int32_t>(t));
        }
    }
    if (usage) {
        for (int e = 0; e < n_exp; ++e) {
            if (slot[e] >= 0) usage->add(il, e, jobs[static_cast<size_t>(slot[e])].tokens.size());
        }
    }

    // The shared expert runs on every token, as one more job.
    std::vector<float> shared_scale(static_cast<size_t>(n_tok), 1.0f);
    if (w.gate_shexp.valid() && run.shared) {
        FfnJob& job = jobs.emplace_back();
        job.gate = w.gate_shexp;
        job.up = w.up_shexp;
        job.down = w.down_shexp;
        job.tokens = all_tokens(n_tok);
        if (w.gate_inp_shexp.valid()) {
            // The same product kernel as every other matrix (a device pass uses it
            // too, so both round the gate alike).
            linear(w.gate_inp_shexp, TensorView{}, x, n_tok, shared_scale.data(), pool);
            for (float& s : shared_scale) s = ops::sigmoid(s);
        }
    }

    PackedInput packed;
    if (!streamed) {
        run_jobs(jobs, p.act, x, n_tok, n_embd, packed, pool);
    } else {
        // Disk-tier experts are fetched, run and released one job at a time, so
        // the cache never needs more than one expert's slices in use at once (the
        // plan sizes it for that). Each job's arithmetic is independent of the
        // others, so the outputs are the same as running them all together.
        // Before each job, the slices of the jobs after it, then the next layer's
        // likely experts, are asked for: reads start as room frees up and run on
        // the cache's I/O threads while this job computes.
        const std::vector<int> guessed = next && has_streamed_experts(*next)
                                             ? guess_next_experts(*next, p, x, n_tok, pool)
                                             : std::vector<int>();
        for (size_t j = 0; j < n_routed; ++j) {
            for (size_t a = j; a < n_routed; ++a) prefetch_expert(w, jobs[a].expert, false);
            for (int e : guessed) prefetch_expert(*next, e, true);
            bind_expert(jobs[j], w, jobs[j].expert);
            run_jobs(std::span(jobs).subspan(j, 1), p.act, x, n_tok, n_embd, packed, pool);
            jobs[j].holds.clear();
        }
        if (jobs.size() > n_routed) {
            run_jobs(std::span(jobs).subspan(n_routed), p.act, x, n_tok, n_embd, packed, pool);
        }
    }

    // Each token's output: its experts' outputs weighted, in expert order, then the
    // shared expert's.
    pool.parallel_for(n_tok, [&](int64_t begin, int64_t end) {
        std::vector<int> js(static_cast<size_t>(k));
        for (int64_t t = begin; t < end; ++t) {
            float* o = out + t * n_embd;
            std::fill(o, o + n_embd, 0.0f);
            std::iota(js.begin(), js.end(), 0);
            std::sort(js.begin(), js.end(),
                      [&](int a, int b) { return chosen[t * k + a] < chosen[t * k + b]; });
            for (int j : js) {
                if (slot[static_cast<size_t>(chosen[t * k + j])] < 0) continue;
                const auto [job, row] = where[t * k + j];
                const float* y =
                    jobs[static_cast<size_t>(job)].y.data() + static_cast<int64_t>(row) * n_embd;
                const float wt = weight[t * k + j];
                for (int64_t c = 0; c < n_embd; ++c) o[c] += wt * y[c];
            }
            if (jobs.size() > n_routed) {
                const float* y = jobs.back().y.data() + t * n_embd;
                for (int64_t c = 0; c < n_embd; ++c) o[c] += shared_scale[t] * y[c];
            }
        }
    });
}

Routing route_logits(const MoeParams& p, float* logits, int64_t n_tok) {
    const int n_exp = p.n_expert, k = p.n_expert_used;
    Routing r;
    r.chosen.resize(static_cast<size_t>(n_tok * k));
    r.weight.resize(r.chosen.size());
    std::vector<int> order(static_cast<size_t>(n_exp));
    for (int64_t t = 0; t < n_tok; ++t) {
        float* lt = logits + t * n_exp;
        if (p.gating == Gating::Softmax) ops::softmax(lt, n_exp);
        std::iota(order.begin(), order.end(), 0);
        // NaN logits rank last and ties go to the lower index, so the order is a strict
        // weak ordering (as `partial_sort` requires) and the choice deterministic.
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
            const bool a_nan = std::isnan(lt[a]), b_nan = std::isnan(lt[b]);
            if (a_nan != b_nan) return b_nan;
            if (!a_nan && lt[a] != lt[b]) return lt[a] > lt[b];
            return a < b;
        });
        float* wt = r.weight.data() + t * k;
        for (int j = 0; j < k; ++j) {
            r.chosen[t * k + j] = order[j];
            wt[j] = lt[order[j]];
        }
        if (p.gating == Gating::SoftmaxTopK) ops::softmax(wt, k);
        if (p.norm_weights) {
            // The reference clamps the divisor so an all-zero selection stays finite.
            float sum = 0.0f;
            for (int j = 0; j < k; ++j) sum += wt[j];
            sum = std::max(sum, 6.103515625e-5f);
            for (int j = 0; j < k; ++j) wt[j] /= sum;
        }
        if (p.weights_scale != 0.0f && p.weights_scale != 1.0f) {
            for (int j = 0; j < k; ++j) wt[j] *= p.weights_scale;
        }
    }
    return r;
}

}  // namespace strata
