// `strata run [MODEL] -p PROMPT`: stream a completion to stdout, then a one-line
// summary on stderr. `--chat` formats the prompt with the model's chat template.
// `strata chat [MODEL]`: an interactive conversation in the terminal. Without
// MODEL both use the built-in model, and say so.

#include "app/builtin_model.h"
#include "app/commands.h"
#include "app/placement_flags.h"
#include "util/meminfo.h"
#include "engine/generate.h"
#include "engine/prompt.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <iostream>
#include <memory>

namespace strata::app {
namespace {

struct RunArgs {
    std::string model, prompt, kv_type = "f16", chat_template_file;
    int n_predict = -1;
    int threads = 0;
    int64_t n_ctx = 4096;
    bool chat = false;
    bool no_prefetch = false;
    GenerateParams gen;
    PlacementFlags placement;
    std::string save_usage;
    const CLI::Option* ctx_option = nullptr;  // -c, to tell a given size from the default
};

void add_common_options(CLI::App* cmd, RunArgs& a) {
    cmd->add_option("model", a.model, fmt::format("GGUF model (default: the built-in {})", kBuiltinModelName));
    cmd->add_option("-n,--n-predict", a.n_predict, "Tokens to generate (-1: until end of generation)")
        ->capture_default_str();
    cmd->add_option("--temp", a.gen.sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
    cmd->add_option("--top-k", a.gen.sampling.top_k, "Top-k (0: off)")->capture_default_str();
    cmd->add_option("--top-p", a.gen.sampling.top_p, "Top-p (1: off)")->capture_default_str();
    cmd->add_option("--min-p", a.gen.sampling.min_p, "Min-p (0: off)")->capture_default_str();
    cmd->add_option("--repeat-penalty", a.gen.sampling.repeat_penalty, "Repetition penalty (1: off)")
        ->capture_default_str();
    cmd->add_option("--presence-penalty", a.gen.sampling.presence_penalty, "Presence penalty")->capture_default_str();
    cmd->add_option("--frequency-penalty", a.gen.sampling.frequency_penalty, "Frequency penalty")
        ->capture_default_str();
    cmd->add_option("--seed", a.gen.sampling.seed, "Sampling seed (same seed and prompt, same output)")
        ->capture_default_str();
    cmd->add_option("--stop", a.gen.stop, "Stop string (repeatable); never printed");
    a.ctx_option = cmd->add_option("-c,--ctx-size", a.n_ctx, "Context size in tokens (0: the model's training context)")
        ->capture_default_str();
    cmd->add_option("--kv-type", a.kv_type, "KV cache type: f16 or f32")->capture_default_str();
    cmd->add_option("-t,--threads", a.threads, "Threads (default: physical cores)");
    cmd->add_flag("--no-prefetch", a.no_prefetch, "Do not read all weights in at load");
    cmd->add_option("--chat-template", a.chat_template_file, "Jinja chat template file replacing the model's own");
    add_placement_flags(cmd, a.placement);
    cmd->add_option("--save-expert-usage", a.save_usage,
                    "Write the routing counts of this run, per layer and expert, for --expert-usage");
}

Result<std::unique_ptr<Engine>> load_engine(const RunArgs& a, KvType kv_type) {
    const bool tty = ::isatty(STDERR_FILENO);
    auto placement = placement_options(a.placement);
    if (!placement) return placement.error();
    EngineOptions opt{.threads = a.threads,
                      .prefetch = !a.no_prefetch,
                      .placement = std::move(*placement),
                      .memory = {.n_ctx = a.n_ctx, .n_parallel = 1, .kv_type = kv_type},
                      .log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); }};
    if (!a.chat_template_file.empty()) {
        std::ifstream in(a.chat_template_file, std::ios::binary);
        if (!in) return err("--chat-template: cannot read '{}'", a.chat_template_file);
        opt.chat_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (tty) {
        opt.progress = [](uint64_t done, uint64_t total) {
            fmt::print(stderr, "\rloading {:5.1f}% ({} of {} MiB)", 100.0 * static_cast<double>(done) / static_cast<double>(total),
                       done >> 20, total >> 20);
            if (done == total) fmt::print(stderr, "\r\033[K");
        };
    }
    auto e = Engine::load(a.model, opt);
    if (!e) return e.error();
    fmt::print(stderr, "{}\n", (*e)->load_summary());
    if ((*e)->chat_template_is_fallback() && a.chat)
        fmt::print(stderr, "note: the model has no chat template; using ChatML\n");
    return e;
}

// No MODEL: the built-in model, whose context is its training context unless -c
// says otherwise (it was never trained on positions past that, and it has no
// habit of ending its text, so a run stops there).
Status use_builtin_model_if_none(RunArgs& a) {
    if (!a.model.empty()) return {};
    auto path = builtin_model_path();
    if (!path) return path.error();
    a.model = *path;
    if (a.ctx_option && a.ctx_option->count() == 0) a.n_ctx = 0;
    fmt::print(stderr, "no model given; using the built-in {}\n", kBuiltinModelName);
    return {};
}

Result<KvType> parse_kv_type(const std::string& s) {
    if (s == "f16") return KvType::F16;
    if (s == "f32") return KvType::F32;
    return err("--kv-type '{}': expected f16 or f32", s);
}

// The disk tier's cache, when the run read experts through it, and the peak
// resident memory against the RAM budget, when there is one.
void print_cache_stats(const Engine& e) {
    const uint64_t budget = e.plan().budget[static_cast<size_t>(Tier::Host)];
    if (auto peak = peak_resident_memory(); peak && budget)
        fmt::print(stderr, "[peak resident memory {:.1f} MiB, RAM budget {:.1f} MiB]\n",
                   static_cast<double>(*peak) / 0x1p20, static_cast<double>(budget) / 0x1p20);
    const ExpertCacheStats s = e.expert_cache_stats();
    if (s.hits + s.misses == 0) return;
    fmt::print(stderr, "[expert cache: {}]\n", describe(s));
}

void print_summary(const GenerateResult& r) {
    const double gen_tps = r.generate_seconds > 0 ? static_cast<double>(r.n_generated) / r.generate_seconds : 0;
    fmt::print(stderr,
               "\n[prompt {} tokens ({} cached) in {:.2f} s, first token after {:.2f} s; generated {} tokens in {:.2f} s, "
               "{:.1f} tokens/s; finish: {}]\n",
               r.n_prompt, r.n_reused, r.prompt_seconds, r.prompt_seconds, r.n_generated, r.generate_seconds, gen_tps,
               finish_reason_name(r.finish));
}

// After the last generation: the cache and memory figures, and the routing
// counts when asked for.
int finish(const RunArgs& a, const Engine& e) {
    print_cache_stats(e);
    if (!a.save_usage.empty()) {
        if (Status s = save_expert_usage(a.save_usage, e.model().expert_usage().snapshot()); !s)
            return fail(s.error().message);
    }
    return 0;
}

PieceFn print_piece() {
    return [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
    };
}

int run_once(RunArgs a) {
    if (Status s = use_builtin_model_if_none(a); !s) return fail(s.error().message);
    auto kv = parse_kv_type(a.kv_type);
    if (!kv) return fail(kv.error().message);
    auto engine = load_engine(a, *kv);
    if (!engine) return fail(engine.error().message);
    Engine& e = **engine;
    std::string text = a.prompt;
    if (a.chat) {
        auto rendered = render_chat(e, nlohmann::ordered_json::array({{{"role", "user"}, {"content", a.prompt}}}));
        if (!rendered) return fail(rendered.error().message);
        text = *rendered;
    }
    const auto ids = prompt_tokens(e, text, a.chat);
    if (ids.empty()) return fail("the prompt is empty");
    auto session = Session::create(e, a.n_ctx, *kv);
    if (!session) return fail(session.error().message);
    a.gen.n_predict = a.n_predict;
    if (!a.chat) std::fwrite(a.prompt.data(), 1, a.prompt.size(), stdout);
    auto r = generate(**session, ids, a.gen, print_piece());
    if (!r) return fail(r.error().message);
    print_summary(*r);
    return finish(a, e);
}

int run_chat(RunArgs a) {
    if (Status s = use_builtin_model_if_none(a); !s) return fail(s.error().message);
    auto kv = parse_kv_type(a.kv_type);
    if (!kv) return fail(kv.error().message);
    a.chat = true;
    auto engine = load_engine(a, *kv);
    if (!engine) return fail(engine.error().message);
    Engine& e = **engine;
    auto session = Session::create(e, a.n_ctx, *kv);
    if (!session) return fail(session.error().message);
    a.gen.n_predict = a.n_predict;
    auto messages = nlohmann::ordered_json::array();
    fmt::print(stderr, "chat with {}; an empty line or end of input quits\n", e.file().path());
    for (std::string line;;) {
        fmt::print(stderr, "> ");
        if (!std::getline(std::cin, line) || line.empty()) break;
        messages.push_back({{"role", "user"}, {"content", line}});
        auto rendered = render_chat(e, messages);
        if (!rendered) return fail(rendered.error().message);
        const auto ids = prompt_tokens(e, *rendered, true);
        // The session keeps the conversation so far; only the new turn is computed.
        auto r = generate(**session, ids, a.gen, print_piece());
        if (!r) return fail(r.error().message);
        print_summary(*r);
        messages.push_back({{"role", "assistant"}, {"content", r->text}});
    }
    return finish(a, e);
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
    auto args = std::make_shared<RunArgs>();
    CLI::App* cmd = app.add_subcommand("run", "Generate a completion of a prompt, streamed to stdout (MODEL defaults to the built-in one)");
    add_common_options(cmd, *args);
    cmd->add_option("-p,--prompt", args->prompt, "Prompt text")->required();
    cmd->add_flag("--chat", args->chat, "Format the prompt as a user message with the model's chat template");
    cmd->callback([args, &exit_code] { exit_code = run_once(*args); });

    auto chat_args = std::make_shared<RunArgs>();
    CLI::App* chat = app.add_subcommand("chat", "Chat with a model in the terminal (MODEL defaults to the built-in one)");
    add_common_options(chat, *chat_args);
    chat->callback([chat_args, &exit_code] { exit_code = run_chat(*chat_args); });
}

}  // namespace strata::app
