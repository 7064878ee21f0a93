#pragma once
// What `strata bench` measures, below the CLI: the machine's limits (read
// bandwidth, FMA peak), the weight bytes and multiply-add parameters a token
// really uses given the routing the model chose, and the timed prefill/decode
// repetitions themselves. The app layer formats the results; it never sees a
// kernel or a tensor type.

#include "engine/engine.h"
#include "util/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

// [n_layer][n_expert] routing counts, as `ExpertUsage::snapshot` returns them.
using UsageCounts = std::vector<std::vector<uint64_t>>;

struct MachineLimits {
    int threads = 0;
    double read_gbps = 0;     // best pass, 1e9 bytes/s
    uint64_t read_bytes = 0;  // bytes per pass
    std::string read_isa;
    double fma_gflops = 0;    // 0 when not measured
    std::string fma_isa;
};

// Measures the read bandwidth with `threads` threads streaming `read_bytes` in
// all and, with `fma`, the FMA peak.
MachineLimits measure_machine_limits(int threads, bool fma, uint64_t read_bytes = uint64_t{1} << 30);

// The weights of a model split the way a forward pass reads them: the tensors
// every token reads whole, the one embedding row a token looks up, and per layer
// the bytes and parameters of one routed expert (its rows of every stacked
// `*_exps` tensor), read once for each time the router picks it.
class WeightCost {
public:
    explicit WeightCost(const gguf::File& f);

    // Bytes read for `n_tokens` decoded one at a time whose routing is `usage`.
    double decode_bytes(const UsageCounts& usage, int64_t n_tokens) const;
    // Multiply-adds x 2 for a prefill of `n_tokens` in `n_batches` forward
    // passes: every matrix once per token, except the output head, which runs
    // only for the last token of each pass. Attention's score and value products
    // are not counted (they grow with the context, not with the weights).
    double prefill_flops(const UsageCounts& usage, int64_t n_tokens, int64_t n_batches) const;

    uint64_t dense_bytes() const { return dense_bytes_; }
    uint64_t embd_row_bytes() const { return embd_row_bytes_; }
    const std::vector<uint64_t>& expert_bytes() const { return expert_bytes_; }

private:
    uint64_t dense_bytes_ = 0;     // non-expert tensors except the embedding table
    uint64_t embd_row_bytes_ = 0;  // one row of token_embd
    uint64_t dense_params_ = 0;    // non-expert matrices except token_embd and output
    uint64_t output_params_ = 0;
    std::vector<uint64_t> expert_bytes_, expert_params_;  // per layer, one expert
};

struct BenchParams {
    int n_prompt = 512;
    int n_gen = 128;
    int repetitions = 3;
    uint64_t seed = 42;     // of the random prompt ids
    int64_t n_batch = 512;  // prompt tokens per forward pass
    // When non-zero, the read bandwidth is measured again (the engine's thread
    // count, this many bytes per pass) right before each repetition's decode, so
    // each decode is set against the bandwidth of its own moment: on a shared
    // machine the bandwidth moves by a factor of two within minutes.
    uint64_t read_bytes_each_rep = 0;
};

// An error naming the flag when `p` asks for nothing or for no repetitions.
Status check_bench_params(const BenchParams& p);

// One repetition's timings, in seconds.
struct BenchRep {
    double prompt_seconds = 0;
    double first_decode_seconds = 0;  // the first of the n_gen steps
    double gen_seconds = 0;           // all n_gen steps
    double read_gbps = 0;             // measured just before the decode (0: not measured)
};

struct BenchResult {
    std::vector<BenchRep> reps;
    // Routing summed over all repetitions' prefills and decodes.
    UsageCounts prompt_usage, gen_usage;
    double bytes_per_token = 0;   // decode, averaged over repetitions
    double flops_per_prompt = 0;  // one prefill of n_prompt tokens
};

// A warm-up pass, then per repetition: a fresh session, a prefill of n_prompt
// random ids (fixed seed) and n_gen greedy decode steps. Routing counts are
// read as differences of `expert_usage()` snapshots, so counters others read
// (`/metrics`) are left alone.
Result<BenchResult> run_bench(Engine& engine, const BenchParams& p);

}  // namespace strata
