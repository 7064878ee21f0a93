#pragma once
// The generation loop shared by `strata run`, `strata chat` and the server:
// prompt in, text pieces out through a callback, until end of generation, a stop
// string, the token limit, the context limit, or the caller cancels.

#include "engine/engine.h"
#include "engine/sampler.h"
#include "engine/stop.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct GenerateParams {
    int n_predict = -1;  // -1: until end of generation or the context is full
    SamplingParams sampling;
    std::vector<std::string> stop;  // stop strings; never emitted
    bool ignore_eos = false;
};

enum class FinishReason { Stop, Length, Cancelled };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled"

struct GenerateResult {
    int64_t n_prompt = 0;     // prompt tokens
    int64_t n_reused = 0;     // of those, taken from the session's cache
    int64_t n_generated = 0;  // tokens sampled (including a final end-of-generation token)
    double prompt_seconds = 0;  // prompt processing: time to the first token's logits
    double generate_seconds = 0;
    FinishReason finish = FinishReason::Length;
    std::string text;  // everything emitted
    std::vector<int32_t> tokens;  // every token sampled, in order (n_generated of them)
};

// Receives each piece of text as it becomes safe to show (valid UTF-8, not part
// of a stop string); returns false to cancel.
using PieceFn = std::function<bool(std::string_view piece)>;

// One generation's token-by-token logic, apart from how its forward passes run:
// `generate` drives it with one session, the `Scheduler` with many sessions in
// one batched pass. Each call to `next` samples a token from the logits after
// `history`, streams its text, and says whether generation goes on.
class Generation {
public:
    Generation(const text::Tokenizer& tok, const GenerateParams& p, PieceFn on_piece);

    // The sampled token while generation goes on (the caller evaluates it and
    // calls again with the logits after it); nullopt once finished — end of
    // generation, a stop string, `n_predict`, a full context of `n_ctx` tokens,
    // or `on_piece` cancelling.
    std::optional<int32_t> next(std::span<const float> logits, std::span<const int32_t> history, int64_t n_ctx);
    // Ends the generation as cancelled (the client went away).
    void cancel() { finish(FinishReason::Cancelled); }
    bool finished() const { return finished_; }
    // Everything so far; complete once `finished`.
    const GenerateResult& result() const { return r_; }

private:
    bool emit(const std::string& text);
    void finish(FinishReason reason);

    const text::Tokenizer& tok_;
    GenerateParams p_;
    PieceFn on_piece_;
    Sampler sampler_;
    StopMatcher stops_;
    text::StreamDecoder decoder_;
    std::vector<float> logits_;
    GenerateResult r_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_, first_;
};

Result<GenerateResult> generate(Session& session, std::span<const int32_t> prompt, const GenerateParams& p,
                                const PieceFn& on_piece);

}  // namespace strata
