#include "engine/validate.h"

#include "engine/generate.h"
#include "engine/prompt.h"
#include "engine/repetition.h"

#include <algorithm>
#include <chrono>

namespace strata {

bool Sample::passed() const {
    return error.empty() &&
           std::all_of(checks.begin(), checks.end(), [](const CheckResult& c) { return c.pass; });
}

int max_tokens(const SuitePrompt& prompt, const ValidateParams& p) {
    return p.max_tokens_cap > 0 ? std::min(prompt.max_tokens, p.max_tokens_cap) : prompt.max_tokens;
}

void score_sample(Sample& s, const SuitePrompt& prompt, const ValidateParams& p,
                  std::span<const int32_t> tokens) {
    s.length_capped = p.max_tokens_cap > 0 && p.max_tokens_cap < prompt.max_tokens;
    s.word_repetition = word_trigram_repetition(s.text);
    if (!tokens.empty()) s.token_repetition = ngram_repetition(tokens, kTokenNgram);
    s.checks = run_checks(prompt, s.text, s.length_capped);
}

namespace {

Result<std::vector<int32_t>> prompt_ids(const Engine& e, const SuitePrompt& sp, bool chat) {
    if (!chat) return prompt_tokens(e, sp.prompt, false);
    auto messages = nlohmann::ordered_json::array();
    if (!sp.system.empty()) messages.push_back({{"role", "system"}, {"content", sp.system}});
    messages.push_back({{"role", "user"}, {"content", sp.prompt}});
    auto rendered = render_chat(e, messages);
    if (!rendered) return rendered.error();
    return prompt_tokens(e, *rendered, true);
}

Result<Sample> run_one(Engine& e, const SuitePrompt& sp, const ValidateParams& p,
                       double temperature, int rep, int64_t n_ctx, KvType kv_type) {
    using Clock = std::chrono::steady_clock;
    // The session (its KV cache allocated) is made before the clock starts, as a
    // server holds its slots before a request arrives; rendering and tokenising
    // the prompt are timed, as a server does them per request.
    auto session = Session::create(e, n_ctx, kv_type);
    if (!session) return session.error();
    const auto t0 = Clock::now();
    std::optional<Clock::time_point> first;
    auto ids = prompt_ids(e, sp, p.chat);
    if (!ids) return ids.error();
    GenerateParams gp{.n_predict = max_tokens(sp, p)};
    gp.sampling.temperature = static_cast<float>(temperature);
    gp.sampling.seed = p.seed + static_cast<uint64_t>(rep);
    auto r = generate(**session, *ids, gp, [&](std::string_view piece) {
        if (!first && !piece.empty()) first = Clock::now();
        return true;
    });
    if (!r) return err("prompt '{}': {}", sp.name, r.error().message);
    const auto t1 = Clock::now();
    Sample s{.prompt = sp.name, .temperature = temperature, .repeat = rep, .mode = "in-process"};
    s.prompt_tokens = r->n_prompt;
    s.completion_tokens = r->n_generated;
    s.total_s = std::chrono::duration<double>(t1 - t0).count();
    if (first) s.ttft_s = std::chrono::duration<double>(*first - t0).count();
    // The decode rate `strata run` reports: tokens over the time from the first
    // sampled token to the end.
    if (r->generate_seconds > 0)
        s.tokens_per_s = static_cast<double>(r->n_generated) / r->generate_seconds;
    if (s.total_s > 0) s.e2e_tokens_per_s = static_cast<double>(r->n_generated) / s.total_s;
    s.finish = finish_reason_name(r->finish);
    s.text = r->text;
    score_sample(s, sp, p, r->tokens);
    return s;
}

}  // namespace

Result<std::vector<Sample>> validate_in_process(Engine& engine, const Suite& suite,
                                                const ValidateParams& p, int64_t n_ctx,
                                                KvType kv_type, const SampleFn& on_sample) {
    std::vector<Sample> out;
    for (const double t : p.temperatures) {
        for (const SuitePrompt& sp : suite.prompts) {
            for (int rep = 0; rep < p.repeat; ++rep) {
                auto s = run_one(engine, sp, p, t, rep, n_ctx, kv_type);
                if (!s) return s.error();
                if (on_sample) on_sample(*s);
                out.push_back(std::move(*s));
            }
        }
    }
    return out;
}

}  // namespace strata
