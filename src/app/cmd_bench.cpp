// `strata bench MODEL`: prefill and decode speed the way llama-bench reports it
// (tokens/s, mean ± stdev over repetitions), with the figures that matter for
// MoE beside it: time to first token, weight bytes read per generated token,
// the bandwidth that achieves and its share of the machine's measured read
// bandwidth, and prefill GFLOP/s against the measured FMA peak.
// `strata bench --membw`: the read bandwidth alone.

#include "app/commands.h"
#include "app/expert_map.h"
#include "app/placement_flags.h"
#include "engine/bench.h"
#include "model/info.h"
#include "util/format.h"
#include "util/stats.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

namespace strata::app {
namespace {

struct BenchArgs {
    std::string model;
    BenchParams params;
    int threads = 0;
    uint64_t membw_mib = 1024;
    bool csv = false;
    bool membw = false;
    PlacementFlags placement;
    std::string expert_map;  // SVG heatmap of routing, written when given
    bool expert_stats = false;
};

// One test (a prefill or a decode run) summarised over its repetitions.
struct Row {
    std::string test;  // "pp512", "tg128"
    int n_prompt = 0, n_gen = 0;
    double avg_ts = 0, stddev_ts = 0;
    std::optional<double> ttft_ms, bytes_per_token, gbps, gflops;
    // Decode: the mean over repetitions of each one's GB/s over the read
    // bandwidth measured just before it, and the mean of those bandwidths.
    std::optional<double> read_pct, read_gbps;
};

// What each row says about the model.
struct ModelLabel {
    std::string filename, name, arch, types;
    uint64_t size = 0, n_params = 0;
};

ModelLabel label_model(const Engine& e) {
    const ModelInfo info = describe_model(e.file());
    ModelLabel m{.filename = std::filesystem::path(info.path).filename().string(),
                 .name = info.name,
                 .arch = info.architecture,
                 .size = info.expert_bytes + info.other_bytes,
                 .n_params = info.n_params};
    // Types by bytes, largest first; those under 1% (norms, routers) would only
    // make the label longer.
    for (const TypeUsage& u : info.by_type) {
        if (!m.types.empty() && u.n_bytes * 100 < m.size) continue;
        m.types += (m.types.empty() ? "" : "+") + u.type;
    }
    return m;
}

std::vector<Row> summarise(const BenchParams& p, const BenchResult& r) {
    std::vector<double> pp_ts, tg_ts, ttft;
    for (const BenchRep& rep : r.reps) {
        if (p.n_prompt > 0) pp_ts.push_back(p.n_prompt / rep.prompt_seconds);
        if (p.n_gen > 0) tg_ts.push_back(p.n_gen / rep.gen_seconds);
        ttft.push_back(1e3 * (rep.prompt_seconds + rep.first_decode_seconds));
    }
    std::optional<double> ttft_ms;
    if (p.n_prompt > 0 && p.n_gen > 0) ttft_ms = mean_stddev(ttft).first;
    std::vector<Row> rows;
    if (p.n_prompt > 0) {
        Row row{.test = fmt::format("pp{}", p.n_prompt), .n_prompt = p.n_prompt, .ttft_ms = ttft_ms};
        std::tie(row.avg_ts, row.stddev_ts) = mean_stddev(pp_ts);
        row.gflops = r.flops_per_prompt / p.n_prompt * row.avg_ts / 1e9;
        rows.push_back(row);
    }
    if (p.n_gen > 0) {
        Row row{.test = fmt::format("tg{}", p.n_gen), .n_gen = p.n_gen, .ttft_ms = ttft_ms};
        std::tie(row.avg_ts, row.stddev_ts) = mean_stddev(tg_ts);
        row.bytes_per_token = r.bytes_per_token;
        row.gbps = r.bytes_per_token * row.avg_ts / 1e9;
        std::vector<double> pct, bw;
        for (const BenchRep& rep : r.reps) {
            if (rep.read_gbps <= 0) continue;
            const double gbps = r.bytes_per_token * (p.n_gen / rep.gen_seconds) / 1e9;
            pct.push_back(100.0 * gbps / rep.read_gbps);
            bw.push_back(rep.read_gbps);
        }
        if (!pct.empty()) {
            row.read_pct = mean_stddev(pct).first;
            row.read_gbps = mean_stddev(bw).first;
        }
        rows.push_back(row);
    }
    return rows;
}

std::string limits_line(const MachineLimits& m) {
    std::string s = fmt::format("read bandwidth {:.1f} GB/s ({} threads, {} loads, {} per pass)", m.read_gbps,
                                m.threads, m.read_isa, format_bytes(m.read_bytes));
    if (m.fma_gflops > 0) s += fmt::format("; FMA peak {:.1f} GFLOP/s ({}, f32)", m.fma_gflops, m.fma_isa);
    return s;
}

// Every field quoted, quotes doubled, as llama-bench writes its CSV.
std::string csv_field(const std::string& s) {
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string opt(const std::optional<double>& v, const char* spec) {
    return v ? fmt::format(fmt::runtime(spec), *v) : std::string();
}

void print_csv(const ModelLabel& m, const MachineLimits& lim, const std::vector<Row>& rows) {
    fmt::print(
        "model_filename,model_type,model_size,model_n_params,n_threads,n_prompt,n_gen,avg_ts,stddev_ts,"
        "ttft_ms,bytes_per_token,gbps,membw_gbps,membw_pct,gflops,peak_gflops,peak_pct\n");
    const std::string type = fmt::format("{} {} {}", m.arch, format_count(m.n_params), m.types);
    for (const Row& r : rows) {
        std::optional<double> membw_pct = r.read_pct, peak_pct;
        if (r.gbps && !membw_pct) membw_pct = 100.0 * *r.gbps / lim.read_gbps;
        if (r.gflops) peak_pct = 100.0 * *r.gflops / lim.fma_gflops;
        const std::vector<std::string> fields = {
            m.filename, type, std::to_string(m.size), std::to_string(m.n_params), std::to_string(lim.threads),
            std::to_string(r.n_prompt), std::to_string(r.n_gen), fmt::format("{:.6f}", r.avg_ts),
            fmt::format("{:.6f}", r.stddev_ts), opt(r.ttft_ms, "{:.3f}"), opt(r.bytes_per_token, "{:.0f}"),
            opt(r.gbps, "{:.4f}"), fmt::format("{:.4f}", r.read_gbps.value_or(lim.read_gbps)),
            opt(membw_pct, "{:.2f}"),
            opt(r.gflops, "{:.4f}"), fmt::format("{:.4f}", lim.fma_gflops), opt(peak_pct, "{:.2f}")};
        std::string line;
        for (const std::string& f : fields) line += (line.empty() ? "" : ",") + csv_field(f);
        fmt::print("{}\n", line);
    }
}

void print_table(const ModelLabel& m, const MachineLimits& lim, const std::vector<Row>& rows) {
    fmt::print("{}\n", limits_line(lim));
    for (const Row& r : rows) {
        if (r.read_gbps)
            fmt::print("{}: % read bw against the read bandwidth measured just before each "
                       "repetition (mean {:.1f} GB/s)\n",
                       r.test, *r.read_gbps);
    }
    fmt::print("\n");
    fmt::print("| model | arch | types | size | params | threads | test | t/s | ttft ms | bytes/token | GB/s | "
               "% read bw | GFLOP/s | % FMA peak |\n");
    fmt::print("|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    const std::string name = m.name.empty() ? m.filename : m.name;
    for (const Row& r : rows) {
        std::optional<double> membw_pct = r.read_pct, peak_pct;
        if (r.gbps && !membw_pct) membw_pct = 100.0 * *r.gbps / lim.read_gbps;
        if (r.gflops) peak_pct = 100.0 * *r.gflops / lim.fma_gflops;
        std::optional<double> mib;
        if (r.bytes_per_token) mib = *r.bytes_per_token / (1 << 20);
        fmt::print("| {} | {} | {} | {} | {} | {} | {} | {:.2f} ± {:.2f} | {} | {} | {} | {} | {} | {} |\n", name,
                   m.arch, m.types, format_bytes(m.size), format_count(m.n_params), lim.threads, r.test, r.avg_ts,
                   r.stddev_ts, opt(r.ttft_ms, "{:.1f}"), mib ? fmt::format("{:.2f} MiB", *mib) : "",
                   opt(r.gbps, "{:.2f}"), opt(membw_pct, "{:.1f}%"), opt(r.gflops, "{:.2f}"),
                   opt(peak_pct, "{:.1f}%"));
    }
}

// The routing of every timed prefill and decode, as statistics and as a picture,
// and the disk tier's cache figures where the plan put experts there.
int report_routing(const BenchArgs& a, const Engine& e, const BenchResult& r) {
    RoutingCounts counts = r.prompt_usage;
    for (size_t il = 0; il < counts.size() && il < r.gen_usage.size(); ++il) {
        for (size_t x = 0; x < counts[il].size(); ++x) counts[il][x] += r.gen_usage[il][x];
    }
    if (a.expert_stats) {
        fmt::print("\n{}", counts.empty() ? std::string("no routed experts: a dense model\n")
                                          : expert_stats_text(counts, e.expert_cache_layers()));
        const ExpertCacheStats c = e.expert_cache_stats();
        if (c.capacity > 0) fmt::print("disk-tier cache: {}\n", describe(c));
    }
    if (!a.expert_map.empty()) {
        if (counts.empty()) return fail("--expert-map: the model has no routed experts");
        std::ofstream out(a.expert_map, std::ios::binary);
        const std::string title = fmt::format("{}: routing over {} prompt + {} generated tokens x {} repetitions",
                                              std::filesystem::path(a.model).filename().string(), a.params.n_prompt,
                                              a.params.n_gen, a.params.repetitions);
        out << expert_map_svg(counts, title);
        if (!out) return fail(fmt::format("--expert-map: cannot write '{}'", a.expert_map));
        fmt::print(stderr, "wrote the routing heatmap to {}\n", a.expert_map);
    }
    return 0;
}

int run_bench_command(const BenchArgs& a) {
    if (a.membw) {
        const MachineLimits lim = measure_machine_limits(a.threads, false, a.membw_mib << 20);
        fmt::print("{}\n", limits_line(lim));
        return 0;
    }
    if (a.model.empty()) return fail("bench needs a MODEL (or --membw)");
    if (Status st = check_bench_params(a.params); !st.ok()) return fail(st.error().message);
    auto placement = placement_options(a.placement);
    if (!placement) return fail(placement.error().message);
    const int64_t n_ctx = int64_t{std::max(a.params.n_prompt, 1)} + a.params.n_gen;
    auto engine = Engine::load(a.model, {.threads = a.threads,
                                         .prefetch = true,
                                         .placement = std::move(*placement),
                                         .memory = {.n_ctx = n_ctx, .n_parallel = 1},
                                         .log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); }});
    if (!engine) return fail(engine.error().message);
    Engine& e = **engine;
    fmt::print(stderr, "{}\n", e.load_summary());
    fmt::print(stderr, "measuring read bandwidth and FMA peak with {} threads\n", e.threads());
    const MachineLimits lim = measure_machine_limits(e.threads(), true, a.membw_mib << 20);
    fmt::print(stderr, "running {} repetitions of pp{} + tg{}\n", a.params.repetitions, a.params.n_prompt,
               a.params.n_gen);
    BenchParams params = a.params;
    params.read_bytes_each_rep = a.membw_mib << 20;
    auto r = run_bench(e, params);
    if (!r) return fail(r.error().message);
    const std::vector<Row> rows = summarise(a.params, *r);
    const ModelLabel m = label_model(e);
    if (a.csv) {
        print_csv(m, lim, rows);
    } else {
        print_table(m, lim, rows);
    }
    return report_routing(a, e, *r);
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<BenchArgs>();
    CLI::App* cmd = app.add_subcommand(
        "bench", "Measure prefill and decode speed, bytes read per token and the share of the machine's limits");
    cmd->add_option("model", args->model, "GGUF model");
    cmd->add_option("-p,--n-prompt", args->params.n_prompt, "Prompt tokens per prefill test (0: none)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("-n,--n-gen", args->params.n_gen, "Tokens generated per decode test (0: none)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("-r,--repetitions", args->params.repetitions, "Repetitions of each test")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("-t,--threads", args->threads, "Threads (default: physical cores)");
    add_placement_flags(cmd, args->placement);
    cmd->add_option("--seed", args->params.seed, "Seed of the random prompt")->capture_default_str();
    cmd->add_flag("--csv", args->csv, "CSV with llama-bench's column names, then strata's own");
    cmd->add_flag("--expert-stats", args->expert_stats,
                  "Per layer: routing choices, experts used, the busiest expert's share, routing entropy; and the "
                  "disk-tier cache's hits and misses");
    cmd->add_option("--expert-map", args->expert_map, "Write a layers x experts heatmap of routing (SVG)");
    cmd->add_flag("--membw", args->membw, "Only measure and print the read bandwidth");
    cmd->add_option("--membw-mib", args->membw_mib,
                    "MiB streamed per bandwidth pass; must dwarf the last-level cache")
        ->capture_default_str()
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
    cmd->callback([args, &exit_code] { exit_code = run_bench_command(*args); });
}

}  // namespace strata::app
