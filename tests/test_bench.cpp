// `strata bench`: the routing it counts, the bytes per token and prefill flops it
// derives from them (checked against sums written here from the file's tensor
// list), and its CSV (llama-bench's columns first, one row per test). Nothing
// here asserts on a time: speeds only have to be positive.

#include "engine/bench.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>

namespace strata {
namespace {

using test::data_path;
using test::run_strata;

// gpt-oss with MXFP4 experts: 2 layers, 8 experts of which 2 are used, and
// per-expert biases ([n_ff, n_expert], a 2-D routed-expert tensor).
const std::string kModel = "reference/gpt-oss-MXFP4_MOE.gguf";
constexpr int kPrompt = 6, kGen = 3, kReps = 2;

// What a forward pass reads, summed independently of `WeightCost`: per-layer,
// per-expert slices by name, the embedding table by one row, the rest whole.
struct Expected {
    double dense_bytes = 0, embd_row_bytes = 0;
    double dense_params = 0, output_params = 0;
    std::map<int, double> expert_bytes, expert_params;  // per layer, one expert
};

Expected expected_costs(const gguf::File& f) {
    Expected x;
    for (const gguf::TensorInfo& t : f.tensors()) {
        const std::string& n = t.name;
        if (n.find("_exps.") != std::string::npos) {
            const int il = std::atoi(n.c_str() + 4);  // "blk.N."
            const double n_expert = static_cast<double>(t.ne[t.n_dims - 1]);
            x.expert_bytes[il] += static_cast<double>(t.n_bytes) / n_expert;
            if (t.n_dims == 3) x.expert_params[il] += static_cast<double>(t.n_elements) / n_expert;
        } else if (n == "token_embd.weight") {
            x.embd_row_bytes = static_cast<double>(t.n_bytes) / static_cast<double>(t.ne[1]);
        } else {
            x.dense_bytes += static_cast<double>(t.n_bytes);
            if (n == "output.weight") {
                x.output_params = static_cast<double>(t.n_elements);
            } else if (t.n_dims >= 2) {
                x.dense_params += static_cast<double>(t.n_elements);
            }
        }
    }
    return x;
}

Result<BenchResult> bench_fixture(Engine& e) {
    return run_bench(e, {.n_prompt = kPrompt, .n_gen = kGen, .repetitions = kReps});
}

TEST(Bench, CountsEveryRoutingChoiceOfEveryRepetition) {
    auto e = Engine::load(data_path(kModel), {.threads = 2});
    ASSERT_TRUE(e.ok()) << e.error().message;
    auto r = bench_fixture(**e);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->reps.size(), static_cast<size_t>(kReps));
    const HParams& hp = (*e)->hparams();
    ASSERT_EQ(r->gen_usage.size(), hp.n_layer);
    ASSERT_EQ(r->prompt_usage.size(), hp.n_layer);
    for (uint32_t il = 0; il < hp.n_layer; ++il) {
        // Each token picks n_expert_used experts in each layer; the warm-up's
        // choices must not leak in.
        uint64_t gen = 0, prompt = 0;
        for (uint64_t c : r->gen_usage[il]) gen += c;
        for (uint64_t c : r->prompt_usage[il]) prompt += c;
        EXPECT_EQ(gen, uint64_t{kGen} * kReps * hp.n_expert_used) << "layer " << il;
        EXPECT_EQ(prompt, uint64_t{kPrompt} * kReps * hp.n_expert_used) << "layer " << il;
    }
    for (const BenchRep& rep : r->reps) {
        EXPECT_GT(rep.prompt_seconds, 0);
        EXPECT_GT(rep.gen_seconds, 0);
        EXPECT_LE(rep.first_decode_seconds, rep.gen_seconds);
    }
}

TEST(Bench, BytesPerTokenAndPrefillFlopsFollowTheRouting) {
    auto e = Engine::load(data_path(kModel), {.threads = 2});
    ASSERT_TRUE(e.ok()) << e.error().message;
    auto r = bench_fixture(**e);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const Expected x = expected_costs((*e)->file());
    ASSERT_EQ(x.expert_bytes.size(), 2u);

    double expert_bytes = 0, expert_params = 0;
    for (size_t il = 0; il < r->gen_usage.size(); ++il) {
        for (uint64_t c : r->gen_usage[il]) expert_bytes += static_cast<double>(c) * x.expert_bytes.at(int(il));
        for (uint64_t c : r->prompt_usage[il]) expert_params += static_cast<double>(c) * x.expert_params.at(int(il));
    }
    const double want_bytes = x.dense_bytes + x.embd_row_bytes + expert_bytes / (kGen * kReps);
    // Both sides add the same integers in doubles; only the order differs.
    EXPECT_NEAR(r->bytes_per_token, want_bytes, want_bytes * 1e-12);
    // One forward pass per prefill: the output head runs for its last token only.
    const double want_flops = 2.0 * (kPrompt * x.dense_params + x.output_params + expert_params / kReps);
    EXPECT_NEAR(r->flops_per_prompt, want_flops, want_flops * 1e-12);
}

TEST(Bench, DenseModelDecodeWithoutPromptTestReadsEveryWeightButTheEmbeddingTable) {
    auto e = Engine::load(data_path("reference/llama.gguf"), {.threads = 2});
    ASSERT_TRUE(e.ok()) << e.error().message;
    auto r = run_bench(**e, {.n_prompt = 0, .n_gen = 2, .repetitions = 1});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->reps.at(0).prompt_seconds, 0);  // no prefill test: its one token is not timed
    EXPECT_GT(r->reps.at(0).gen_seconds, 0);
    EXPECT_EQ(r->flops_per_prompt, 0);
    const Expected x = expected_costs((*e)->file());
    EXPECT_TRUE(x.expert_bytes.empty());
    EXPECT_DOUBLE_EQ(r->bytes_per_token, x.dense_bytes + x.embd_row_bytes);
}

// Splits one CSV line whose fields are all quoted, as llama-bench writes them.
std::vector<std::string> csv_fields(const std::string& line) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < line.size()) {
        std::string f;
        if (line[i] == '"') {
            for (++i; i < line.size(); ++i) {
                if (line[i] == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                    f += '"';
                    ++i;
                } else if (line[i] == '"') {
                    ++i;
                    break;
                } else {
                    f += line[i];
                }
            }
        } else {
            while (i < line.size() && line[i] != ',') f += line[i++];
        }
        out.push_back(f);
        if (i < line.size() && line[i] == ',') ++i;
    }
    return out;
}

// On a shared machine the read bandwidth moves from minute to minute, so when
// asked, bench measures it again just before each repetition's decode (and
// only then: a prefill-only run or a run that does not ask measures nothing).
TEST(Bench, MeasuresTheReadBandwidthBeforeEachDecodeWhenAsked) {
    auto e = Engine::load(data_path(kModel), {.threads = 2});
    ASSERT_TRUE(e.ok()) << e.error().message;
    auto asked = run_bench(
        **e, {.n_prompt = 2, .n_gen = 2, .repetitions = 3, .read_bytes_each_rep = 64 << 20});
    ASSERT_TRUE(asked.ok()) << asked.error().message;
    ASSERT_EQ(asked->reps.size(), 3u);
    for (const BenchRep& rep : asked->reps) EXPECT_GT(rep.read_gbps, 0);
    auto not_asked = run_bench(**e, {.n_prompt = 2, .n_gen = 2, .repetitions = 2});
    ASSERT_TRUE(not_asked.ok());
    for (const BenchRep& rep : not_asked->reps) EXPECT_EQ(rep.read_gbps, 0);
    auto prefill_only = run_bench(
        **e, {.n_prompt = 2, .n_gen = 0, .repetitions = 2, .read_bytes_each_rep = 64 << 20});
    ASSERT_TRUE(prefill_only.ok());
    for (const BenchRep& rep : prefill_only->reps) EXPECT_EQ(rep.read_gbps, 0);
}

TEST(BenchCli, CsvHasLlamaBenchColumnsOneRowPerTestAndTheBytesPerToken) {
    auto res = run_strata("bench " + data_path(kModel) + " --csv -p 6 -n 3 -r 2 --threads 2 --membw-mib 64", true);
    ASSERT_EQ(res.exit_code, 0) << res.out;
    std::istringstream in(res.out);
    std::vector<std::vector<std::string>> rows;
    for (std::string line; std::getline(in, line);) rows.push_back(csv_fields(line));
    ASSERT_EQ(rows.size(), 3u) << res.out;  // header, pp6, tg3
    const std::vector<std::string> header = {
        "model_filename", "model_type", "model_size", "model_n_params", "n_threads", "n_prompt", "n_gen", "avg_ts",
        "stddev_ts", "ttft_ms", "bytes_per_token", "gbps", "membw_gbps", "membw_pct", "gflops", "peak_gflops",
        "peak_pct"};
    ASSERT_EQ(rows[0], header);
    auto col = [&](size_t row, const std::string& name) {
        const size_t c = static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
        return rows[row].at(c);
    };
    for (size_t r = 1; r < rows.size(); ++r) {
        ASSERT_EQ(rows[r].size(), header.size());
        EXPECT_EQ(col(r, "model_filename"), "gpt-oss-MXFP4_MOE.gguf");
        EXPECT_EQ(col(r, "model_type").rfind("gpt-oss ", 0), 0u) << col(r, "model_type");
        EXPECT_NE(col(r, "model_type").find("MXFP4"), std::string::npos) << col(r, "model_type");
        EXPECT_EQ(col(r, "n_threads"), "2");
        EXPECT_GT(std::stod(col(r, "avg_ts")), 0);
        EXPECT_GT(std::stod(col(r, "membw_gbps")), 0);
        EXPECT_GT(std::stod(col(r, "peak_gflops")), 0);
        EXPECT_GT(std::stod(col(r, "ttft_ms")), 0);
    }
    // llama-bench's convention: a prefill row has n_gen 0, a decode row n_prompt 0.
    EXPECT_EQ(col(1, "n_prompt"), "6");
    EXPECT_EQ(col(1, "n_gen"), "0");
    EXPECT_EQ(col(1, "bytes_per_token"), "");
    EXPECT_GT(std::stod(col(1, "gflops")), 0);
    EXPECT_EQ(col(2, "n_prompt"), "0");
    EXPECT_EQ(col(2, "n_gen"), "3");
    EXPECT_EQ(col(2, "gflops"), "");

    // Same seed, same prompt, same greedy tokens: the routing, and so the bytes
    // per token, are those of an in-process run, summed here from the tensors.
    auto e = Engine::load(data_path(kModel), {.threads = 2});
    ASSERT_TRUE(e.ok()) << e.error().message;
    auto r = bench_fixture(**e);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const Expected x = expected_costs((*e)->file());
    double expert_bytes = 0;
    for (size_t il = 0; il < r->gen_usage.size(); ++il) {
        for (uint64_t c : r->gen_usage[il]) expert_bytes += static_cast<double>(c) * x.expert_bytes.at(int(il));
    }
    const double want = x.dense_bytes + x.embd_row_bytes + expert_bytes / (kGen * kReps);
    // The CSV rounds to whole bytes.
    EXPECT_NEAR(std::stod(col(2, "bytes_per_token")), want, 0.5);
    EXPECT_NEAR(std::stod(col(2, "gbps")), want * std::stod(col(2, "avg_ts")) / 1e9, 1e-4);
    // GFLOP/s = flops of one prefill / its tokens x tokens/s; printed to 4 decimals.
    EXPECT_NEAR(std::stod(col(1, "gflops")), r->flops_per_prompt / kPrompt * std::stod(col(1, "avg_ts")) / 1e9, 1e-3);
}

// The heatmap has one cell per (layer, expert) whose tooltip counts, per layer,
// add up to every token's choices: (prompt + generated) tokens x experts used x
// repetitions, the same total the stats table prints. A map that dropped a test
// or a repetition, or mislabelled cells, would not add up.
TEST(BenchCli, ExpertMapAndStatsCoverEveryRoutingChoice) {
    test::TempDir dir;
    const std::string svg_path = dir.file("map.svg");
    auto res = run_strata("bench " + data_path(kModel) + " -p 6 -n 3 -r 2 --threads 2 --membw-mib 64 --expert-stats " +
                              "--expert-map " + svg_path,
                          true);
    ASSERT_EQ(res.exit_code, 0) << res.out;
    const auto bytes = test::read_file(svg_path);
    const std::string svg(bytes.begin(), bytes.end());
    ASSERT_EQ(svg.rfind("<svg", 0), 0u);
    EXPECT_NE(svg.find("</svg>"), std::string::npos);
    const int n_layer = 2, n_expert = 8, used = 2;
    const uint64_t per_layer = uint64_t{6 + 3} * used * 2;
    std::vector<uint64_t> sums(n_layer, 0);
    int cells = 0;
    const std::regex cell(R"(<title>layer (\d+) expert (\d+): (\d+)</title>)");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), cell); it != std::sregex_iterator(); ++it) {
        const int il = std::stoi((*it)[1]), e = std::stoi((*it)[2]);
        ASSERT_LT(il, n_layer);
        ASSERT_LT(e, n_expert);
        sums[il] += std::stoull((*it)[3]);
        ++cells;
    }
    EXPECT_EQ(cells, n_layer * n_expert);
    for (int il = 0; il < n_layer; ++il) EXPECT_EQ(sums[il], per_layer) << "layer " << il;
    // The stats table: one line per layer with the same total.
    for (int il = 0; il < n_layer; ++il) {
        EXPECT_TRUE(std::regex_search(res.out, std::regex("\\n *" + std::to_string(il) + " +" + std::to_string(per_layer) + " ")))
            << res.out;
    }
}

TEST(BenchCli, MembwAloneAndErrors) {
    auto res = run_strata("bench --membw --membw-mib 64 --threads 1");
    ASSERT_EQ(res.exit_code, 0) << res.out;
    EXPECT_EQ(res.out.rfind("read bandwidth ", 0), 0u) << res.out;
    EXPECT_GT(std::stod(res.out.substr(15)), 0) << res.out;

    res = run_strata("bench");
    EXPECT_NE(res.exit_code, 0);
    EXPECT_NE(res.out.find("bench needs a MODEL"), std::string::npos) << res.out;
    res = run_strata("bench " + data_path(kModel) + " -p 0 -n 0");
    EXPECT_NE(res.exit_code, 0);
    EXPECT_NE(res.out.find("nothing to measure"), std::string::npos) << res.out;
}

}  // namespace
}  // namespace strata
