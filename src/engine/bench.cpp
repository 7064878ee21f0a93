#include "engine/bench.h"

#include "ops/cpu/limits.h"
#include "placement/tensor_class.h"

#include <algorithm>
#include <chrono>
#include <random>

namespace strata {

MachineLimits measure_machine_limits(int threads, bool fma, uint64_t read_bytes) {
    ThreadPool pool(threads > 0 ? threads : physical_core_count());
    const ops::ReadBandwidth bw = ops::measure_read_bandwidth(pool, read_bytes);
    MachineLimits m{.threads = pool.size(), .read_gbps = bw.gbps, .read_bytes = bw.bytes, .read_isa = bw.isa};
    if (fma) {
        const ops::FmaPeak peak = ops::measure_fma_peak(pool);
        m.fma_gflops = peak.gflops;
        m.fma_isa = peak.isa;
    }
    return m;
}

WeightCost::WeightCost(const gguf::File& f) {
    for (const gguf::TensorInfo& t : f.tensors()) {
        if (is_routed_expert(t.name)) {
            // Stacked [n_in, n_out, n_expert] (biases [n_out, n_expert]): one
            // expert's share is an equal slice along the outermost dimension.
            const auto il = tensor_layer(t.name);
            if (!il) continue;
            const uint64_t n_expert = t.ne[t.n_dims - 1];
            const auto l = static_cast<size_t>(*il);
            if (expert_bytes_.size() <= l) {
                expert_bytes_.resize(l + 1);
                expert_params_.resize(l + 1);
            }
            expert_bytes_[l] += t.n_bytes / n_expert;
            if (t.n_dims >= 3) expert_params_[l] += t.n_elements / n_expert;
            continue;
        }
        const TensorClass c = classify_tensor(t.name);
        if (c == TensorClass::Embedding) {
            // A token reads only its own row of the table.
            embd_row_bytes_ = t.n_dims >= 2 ? t.n_bytes / t.ne[1] : t.n_bytes;
            continue;
        }
        dense_bytes_ += t.n_bytes;
        if (t.n_dims < 2) continue;  // norms, biases, sinks: no multiply-adds worth counting
        (t.name.rfind("output.", 0) == 0 ? output_params_ : dense_params_) += t.n_elements;
    }
}

double WeightCost::decode_bytes(const UsageCounts& usage, int64_t n_tokens) const {
    double bytes = static_cast<double>(n_tokens) * static_cast<double>(dense_bytes_ + embd_row_bytes_);
    for (size_t il = 0; il < usage.size() && il < expert_bytes_.size(); ++il) {
        for (uint64_t n : usage[il]) bytes += static_cast<double>(n) * static_cast<double>(expert_bytes_[il]);
    }
    return bytes;
}

double WeightCost::prefill_flops(const UsageCounts& usage, int64_t n_tokens, int64_t n_batches) const {
    double params = static_cast<double>(n_tokens) * static_cast<double>(dense_params_) +
                    static_cast<double>(n_batches) * static_cast<double>(output_params_);
    for (size_t il = 0; il < usage.size() && il < expert_params_.size(); ++il) {
        for (uint64_t n : usage[il]) params += static_cast<double>(n) * static_cast<double>(expert_params_[il]);
    }
    return 2.0 * params;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// after - before, element by element; `sum` accumulates it.
void add_difference(const UsageCounts& before, const UsageCounts& after, UsageCounts& sum) {
    if (sum.empty()) sum.assign(after.size(), std::vector<uint64_t>(after.empty() ? 0 : after[0].size()));
    for (size_t il = 0; il < after.size(); ++il) {
        for (size_t e = 0; e < after[il].size(); ++e) sum[il][e] += after[il][e] - before[il][e];
    }
}

}  // namespace

Status check_bench_params(const BenchParams& p) {
    if (p.n_prompt < 0 || p.n_gen < 0 || p.n_prompt + p.n_gen == 0) {
        return err("nothing to measure: -p {} -n {}", p.n_prompt, p.n_gen);
    }
    if (p.repetitions < 1) return err("-r {}: at least one repetition is needed", p.repetitions);
    if (p.n_batch < 1) return err("a batch of {} tokens cannot hold a prompt", p.n_batch);
    return {};
}

Result<BenchResult> run_bench(Engine& engine, const BenchParams& p) {
    STRATA_TRY(check_bench_params(p));
    const HParams& hp = engine.hparams();
    // Decode needs a token to follow: without a prompt test, one untimed token.
    const int n_start = std::max(p.n_prompt, 1);
    const int64_t n_ctx = int64_t{n_start} + p.n_gen;
    std::mt19937_64 rng(p.seed);
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(hp.n_vocab) - 1);
    std::vector<int32_t> prompt(static_cast<size_t>(n_start));
    for (int32_t& id : prompt) id = pick(rng);

    // Warm-up: the first pass pays for page faults in the weights and scratch
    // buffers that every later pass would not.
    {
        auto s = Session::create(engine, n_ctx, KvType::F16);
        if (!s) return s.error();
        const size_t n_warm = std::min<size_t>(prompt.size(), 16);
        STRATA_TRY((*s)->set_prompt(std::span(prompt).first(n_warm), p.n_batch));
        if (p.n_gen > 0) STRATA_TRY((*s)->append(argmax((*s)->logits())));
    }

    const WeightCost cost(engine.file());
    const ExpertUsage& usage = engine.model().expert_usage();
    BenchResult r;
    for (int rep = 0; rep < p.repetitions; ++rep) {
        auto s = Session::create(engine, n_ctx, KvType::F16);
        if (!s) return s.error();
        Session& session = **s;
        BenchRep t;
        UsageCounts before = usage.snapshot();
        auto start = Clock::now();
        STRATA_TRY(session.set_prompt(prompt, p.n_batch));
        if (p.n_prompt > 0) {
            t.prompt_seconds = seconds_since(start);
            add_difference(before, usage.snapshot(), r.prompt_usage);
        }
        if (p.n_gen > 0 && p.read_bytes_each_rep > 0) {
            t.read_gbps =
                measure_machine_limits(engine.threads(), false, p.read_bytes_each_rep).read_gbps;
        }
        before = usage.snapshot();
        start = Clock::now();
        for (int i = 0; i < p.n_gen; ++i) {
            STRATA_TRY(session.append(argmax(session.logits())));
            if (i == 0) t.first_decode_seconds = seconds_since(start);
        }
        t.gen_seconds = seconds_since(start);
        add_difference(before, usage.snapshot(), r.gen_usage);
        r.reps.push_back(t);
    }
    const int64_t n_gen_total = int64_t{p.n_gen} * p.repetitions;
    if (n_gen_total > 0) {
        r.bytes_per_token = cost.decode_bytes(r.gen_usage, n_gen_total) / static_cast<double>(n_gen_total);
    }
    if (p.n_prompt > 0) {
        const int64_t n_batches = (p.n_prompt + p.n_batch - 1) / p.n_batch;
        r.flops_per_prompt =
            cost.prefill_flops(r.prompt_usage, int64_t{p.n_prompt} * p.repetitions, n_batches * p.repetitions) /
            p.repetitions;
    }
    return r;
}

}  // namespace strata
