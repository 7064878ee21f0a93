// `strata validate`: prompt suites against a model, in-process or through a
// server's URL, with per-prompt tokens, time to first token, tokens/s,
// repetition scores and checks; a temperature sweep; and `--compare`, which
// runs the suite under a second placement and demands byte-identical outputs.
//
// Exit status: 0 when every check passed (and, with --compare, every output
// is identical); 1 on an error that stopped the run (bad flags or suite, a
// model that does not load, a server that cannot be reached); 2 when the run
// completed but a check failed; 3 when --compare found outputs that differ.
// Failed checks are not errors — a weak model fails them honestly — but a
// script gating on them must not have to parse the table; 3 separates "the
// engine changed the result" from "the model answered badly".

#include "app/builtin_model.h"
#include "app/commands.h"
#include "app/placement_flags.h"
#include "app/validate_client.h"
#include "app/validate_report.h"
#include "engine/validate.h"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <memory>

namespace strata::app {
namespace {

struct ValidateArgs {
    std::string model, url, model_name, api_key, suite = "basic", temperatures = "0", compare,
                                                 json_out, kv_type = "f16";
    std::string stream = "both";
    ValidateParams params;
    bool no_chat = false, show_output = false;
    int threads = 0;
    int64_t n_ctx = 4096;
    CLI::Option* ctx_option = nullptr;
    PlacementFlags placement;
};

Result<std::vector<double>> parse_temperatures(const std::string& text) {
    std::vector<double> out;
    size_t pos = 0;
    while (pos <= text.size()) {
        const size_t comma = std::min(text.find(',', pos), text.size());
        const std::string item = text.substr(pos, comma - pos);
        double t = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), t);
        if (item.empty() || ec != std::errc() || end != item.data() + item.size() || t < 0 || t > 2)
            return err("--temperatures '{}': '{}' is not a temperature from 0 to 2", text, item);
        out.push_back(t);
        pos = comma + 1;
    }
    return out;
}

// The placement flags as a user would type them, for the comparison's labels.
std::string describe(const PlacementFlags& f) {
    std::string s;
    auto add = [&s](const std::string& part) { s += (s.empty() ? "" : " ") + part; };
    for (const std::string& o : f.overrides) add("--override-tensor '" + o + "'");
    if (f.cpu_moe) add("--cpu-moe");
    if (f.n_cpu_moe) add(fmt::format("--n-cpu-moe {}", f.n_cpu_moe));
    if (f.fit) add("--fit");
    if (!f.gpu_mem.empty()) add("--gpu-mem " + f.gpu_mem);
    if (!f.ram_budget.empty()) add("--ram-budget " + f.ram_budget);
    if (!f.expert_usage.empty()) add("--expert-usage " + f.expert_usage);
    return s.empty() ? "default placement" : s;
}

bool any_placement(const PlacementFlags& f) {
    return describe(f) != "default placement";
}

// `--compare`'s text parsed as the placement flags every command takes.
Result<PlacementFlags> parse_compare(const std::string& text) {
    CLI::App parser{"--compare"};
    PlacementFlags f;
    add_placement_flags(&parser, f);
    try {
        parser.parse(text, false);
    } catch (const CLI::ParseError& e) {
        return err("--compare '{}': {}", text, e.what());
    }
    if (!parser.remaining().empty())
        return err("--compare '{}': only placement flags belong here", text);
    if (auto o = placement_options(f); !o) return err("--compare: {}", o.error().message);
    return f;
}

// One in-process run of the suite, and what the disk tier's cache did in it.
struct InProcessRun {
    std::vector<Sample> samples;
    ExpertCacheStats cache;
};

Result<InProcessRun> run_in_process(const ValidateArgs& a, const PlacementFlags& flags,
                                    const Suite& suite, KvType kv) {
    auto placement = placement_options(flags);
    if (!placement) return placement.error();
    auto engine = Engine::load(
        a.model, {.threads = a.threads,
                  .prefetch = true,
                  .placement = std::move(*placement),
                  .memory = {.n_ctx = a.n_ctx, .n_parallel = 1, .kv_type = kv},
                  .log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); }});
    if (!engine) return engine.error();
    Engine& e = **engine;
    fmt::print(stderr, "{}\n", e.load_summary());
    if (a.params.chat && e.chat_template_is_fallback())
        fmt::print(stderr,
                   "note: the model has no chat template; prompts use ChatML (--no-chat sends them "
                   "as plain text)\n");
    size_t done = 0;
    const size_t total =
        suite.prompts.size() * a.params.temperatures.size() * static_cast<size_t>(a.params.repeat);
    auto samples = validate_in_process(e, suite, a.params, a.n_ctx, kv, [&](const Sample& s) {
        fmt::print(stderr, "[{}/{}] {} t={:.2f} #{}: {} tokens, word rep3 {:.3f}, {}\n", ++done,
                   total, s.prompt, s.temperature, s.repeat, s.completion_tokens.value_or(0),
                   s.word_repetition, s.passed() ? "pass" : "FAIL");
    });
    if (!samples) return samples.error();
    const ExpertCacheStats c = e.expert_cache_stats();
    if (c.hits + c.misses > 0)
        fmt::print(stderr,
                   "[expert cache: {} hits, {} misses, {} evictions, {} bytes read from disk]\n",
                   c.hits, c.misses, c.evictions, c.bytes_read);
    return InProcessRun{std::move(*samples), c};
}

void print_outputs(const std::vector<Sample>& samples) {
    for (const Sample& s : samples)
        fmt::print("--- {} t={:.2f} #{} {} ---\n{}\n\n", s.prompt, s.temperature, s.repeat, s.mode,
                   s.text);
}

int validate(ValidateArgs a) {
    if (!a.model.empty() && !a.url.empty()) return fail("validate takes a MODEL file or --url, not both");
    if (a.model.empty() && a.url.empty()) {
        // Like run: the built-in model, within the context it was trained on.
        auto path = builtin_model_path();
        if (!path) return fail(path.error().message);
        a.model = *path;
        if (a.ctx_option->count() == 0) a.n_ctx = 0;
        fmt::print(stderr, "no model given; using the built-in {}\n", kBuiltinModelName);
    }
    auto temps = parse_temperatures(a.temperatures);
    if (!temps) return fail(temps.error().message);
    a.params.temperatures = *temps;
    a.params.chat = !a.no_chat;
    if (a.params.repeat < 1)
        return fail(fmt::format("--repeat {}: expected at least 1", a.params.repeat));
    if (a.params.max_tokens_cap < 0)
        return fail(fmt::format("-n {}: expected 0 (no cap) or more", a.params.max_tokens_cap));
    auto suite = load_suite(a.suite);
    if (!suite) return fail(suite.error().message);

    std::vector<Sample> samples;
    std::optional<Comparison> comparison;
    if (!a.url.empty()) {
        if (any_placement(a.placement) || !a.compare.empty())
            return fail(
                "placement flags and --compare apply to a MODEL run in-process, not to --url");
        if (a.stream != "both" && a.stream != "on" && a.stream != "off")
            return fail(fmt::format("--stream '{}': expected both, on or off", a.stream));
        const ClientOptions o{.url = a.url,
                              .model = a.model_name,
                              .api_key = a.api_key,
                              .stream = a.stream != "off",
                              .non_stream = a.stream != "on"};
        size_t done = 0;
        auto r = validate_url(o, *suite, a.params, [&](const Sample& s) {
            fmt::print(stderr, "[{}] {} t={:.2f} #{} {}: {}\n", ++done, s.prompt, s.temperature,
                       s.repeat, s.mode,
                       s.error.empty() ? (s.passed() ? "pass" : "FAIL") : "error: " + s.error);
        });
        if (!r) return fail(r.error().message);
        samples = std::move(*r);
    } else {
        if (!a.model_name.empty() || !a.api_key.empty())
            return fail("--model and --api-key go with --url");
        KvType kv = KvType::F16;
        if (a.kv_type == "f32")
            kv = KvType::F32;
        else if (a.kv_type != "f16")
            return fail(fmt::format("--kv-type '{}': expected f16 or f32", a.kv_type));
        // Parsed before the first run, so a mistyped flag does not wait for a whole suite.
        std::optional<PlacementFlags> flags;
        if (!a.compare.empty()) {
            auto f = parse_compare(a.compare);
            if (!f) return fail(f.error().message);
            flags = std::move(*f);
        }
        auto r = run_in_process(a, a.placement, *suite, kv);
        if (!r) return fail(r.error().message);
        samples = std::move(r->samples);
        if (flags) {
            fmt::print(stderr, "again with {}\n", describe(*flags));
            auto b = run_in_process(a, *flags, *suite, kv);
            if (!b) return fail(b.error().message);
            comparison = compare_samples(samples, b->samples);
            comparison->cache_b = b->cache;
            comparison->placement_a = describe(a.placement);
            comparison->placement_b = describe(*flags);
        }
    }

    if (a.show_output) print_outputs(samples);
    print_prompt_table(samples);
    print_temperature_table(samples);
    if (comparison) print_comparison(*comparison);
    if (!a.json_out.empty()) {
        const ReportInfo info{.target = a.url.empty() ? a.model : a.url,
                              .model = a.model_name,
                              .suite = suite->name,
                              .params = a.params};
        std::ofstream out(a.json_out, std::ios::binary);
        out << report_json(info, samples, comparison).dump(2) << "\n";
        if (!out) return fail(fmt::format("--json: cannot write '{}'", a.json_out));
    }
    if (comparison && !comparison->identical()) return 3;
    for (const Sample& s : samples) {
        if (!s.passed()) return 2;
    }
    return 0;
}

}  // namespace

void add_validate_command(CLI::App& app, int& exit_code) {
    auto a = std::make_shared<ValidateArgs>();
    CLI::App* cmd = app.add_subcommand("validate",
                                       "Run prompt suites against a model or a server: tokens, "
                                       "TTFT, tokens/s, repetition, checks");
    cmd->add_option("model", a->model, "GGUF model to run in-process (default: the built-in model)");
    cmd->add_option("--url", a->url,
                    "OpenAI-compatible server to measure instead, e.g. http://127.0.0.1:11435");
    cmd->add_option("--model", a->model_name, "With --url: the model name to request");
    cmd->add_option("--api-key", a->api_key, "With --url: sent as 'Authorization: Bearer KEY'");
    cmd->add_option("--suite", a->suite, "basic, reasoning, long, all, or a suite JSON file")
        ->capture_default_str();
    cmd->add_option("--temperatures,--temp", a->temperatures,
                    "Comma-separated temperatures to sweep, e.g. 0.1,0.3,0.7,0.9")
        ->capture_default_str();
    cmd->add_option("--repeat", a->params.repeat,
                    "Generations per prompt and temperature (seeds SEED, SEED+1, ...)")
        ->capture_default_str();
    cmd->add_option("--seed", a->params.seed, "Sampling seed of the first repetition")
        ->capture_default_str();
    cmd->add_option(
        "-n,--max-tokens", a->params.max_tokens_cap,
        "Cap every prompt's token budget (0: the suite's own); min_words is then not checked");
    cmd->add_flag("--no-chat", a->no_chat,
                  "Send prompts as plain text (completions), not through the chat template");
    cmd->add_option(
        "--compare", a->compare,
        "Run again with these placement flags, e.g. \"--ram-budget 64MiB --fit\", and require "
        "byte-identical outputs (exit 3 if not)");
    cmd->add_option("--stream", a->stream, "With --url: both, on (streamed only) or off")
        ->capture_default_str();
    cmd->add_option("--json", a->json_out, "Write the machine-readable report to FILE");
    cmd->add_flag("--show-output", a->show_output, "Print every generated text before the tables");
    a->ctx_option = cmd->add_option("-c,--ctx-size", a->n_ctx,
                                    "Context size in tokens (0: the model's training context)")
                        ->capture_default_str();
    cmd->add_option("--kv-type", a->kv_type, "KV cache type: f16 or f32")->capture_default_str();
    cmd->add_option("-t,--threads", a->threads, "Threads (default: physical cores)");
    add_placement_flags(cmd, a->placement);
    cmd->callback([a, &exit_code] { exit_code = validate(*a); });
}

}  // namespace strata::app
