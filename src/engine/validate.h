#pragma once
// `strata validate` below the CLI: one record per generation (a suite prompt
// at one temperature and repetition), filled in-process here or by the HTTP
// client in app/, scored the same way by `score_sample`.

#include "engine/engine.h"
#include "engine/suite.h"
#include "util/result.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace strata {

// Token n-grams of the token-level repetition score (word trigrams are fixed).
constexpr int kTokenNgram = 4;

struct ValidateParams {
    std::vector<double> temperatures = {0.0};
    int repeat = 1;  // generations per prompt and temperature; seeds seed, seed + 1, ...
    uint64_t seed = 42;
    int max_tokens_cap = 0;  // > 0: at most this many tokens per prompt (-n)
    bool chat = true;        // format prompts with the chat template; false: plain text completion
};

// One generation and what was measured of it.
struct Sample {
    std::string prompt;  // the suite prompt's name
    double temperature = 0;
    int repeat = 0;
    std::string mode;  // "in-process", "stream" or "non-stream"
    // Token counts: the engine's, or the usage the server returned; none when a
    // server returned no usage (never estimated from the text).
    std::optional<int64_t> prompt_tokens, completion_tokens;
    double total_s = 0;                      // request to last token
    std::optional<double> ttft_s;            // to the first text; none without streaming
    std::optional<double> tokens_per_s;      // completion tokens / (total - ttft): decode speed
    std::optional<double> e2e_tokens_per_s;  // completion tokens / total
    double word_repetition = 0;              // word trigrams
    std::optional<double>
        token_repetition;        // kTokenNgram-grams of token ids; none when the ids are unknown
    bool length_capped = false;  // `max_tokens_cap` was below the prompt's max_tokens
    std::string finish, text;
    std::vector<CheckResult> checks;
    std::string error;  // a failed request (URL mode); empty when it ran

    bool passed() const;
};

// The tokens a prompt may generate under `p`.
int max_tokens(const SuitePrompt& prompt, const ValidateParams& p);
// Fills `length_capped`, the repetition scores and the checks of `s` from its
// text (and `tokens`, when known).
void score_sample(Sample& s, const SuitePrompt& prompt, const ValidateParams& p,
                  std::span<const int32_t> tokens);

using SampleFn = std::function<void(const Sample&)>;

// Every prompt of `suite` at every temperature, `repeat` times, each in a fresh
// session (so no run reuses another's prompt cache and every TTFT includes the
// full prompt). `on_sample` sees each as it finishes.
Result<std::vector<Sample>> validate_in_process(Engine& engine, const Suite& suite,
                                                const ValidateParams& p, int64_t n_ctx,
                                                KvType kv_type, const SampleFn& on_sample);

}  // namespace strata
