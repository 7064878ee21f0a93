#include "engine/generate.h"

namespace strata {

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Cancelled: return "cancelled";
    }
    return "stop";
}

Generation::Generation(const text::Tokenizer& tok, const GenerateParams& p, PieceFn on_piece)
    : tok_(tok), p_(p), on_piece_(std::move(on_piece)), sampler_(p.sampling), stops_(p.stop),
      // A continuation keeps the space its first word carries.
      decoder_(tok, {.remove_space_prefix = false}), start_(std::chrono::steady_clock::now()) {
    r_.finish = FinishReason::Length;
}

bool Generation::emit(const std::string& text) {
    if (text.empty()) return true;
    r_.text += text;
    return on_piece_ ? on_piece_(text) : true;
}

void Generation::finish(FinishReason reason) {
    if (finished_) return;
    finished_ = true;
    r_.finish = reason;
    if (reason != FinishReason::Cancelled && !stops_.stopped()) emit(stops_.push(decoder_.finish()) + stops_.flush());
    const auto now = std::chrono::steady_clock::now();
    if (r_.n_generated == 0) first_ = now;
    r_.prompt_seconds = std::chrono::duration<double>(first_ - start_).count();
    r_.generate_seconds = std::chrono::duration<double>(now - first_).count();
}

std::optional<int32_t> Generation::next(std::span<const float> logits, std::span<const int32_t> history,
                                        int64_t n_ctx) {
    if (finished_) return std::nullopt;
    if (r_.n_generated == 0) first_ = std::chrono::steady_clock::now();
    if (p_.n_predict == 0) return finish(FinishReason::Length), std::nullopt;
    logits_.assign(logits.begin(), logits.end());
    const int32_t id = sampler_.sample(logits_, history);
    ++r_.n_generated;
    r_.tokens.push_back(id);
    if (!p_.ignore_eos && tok_.vocab().is_eog(id)) return finish(FinishReason::Stop), std::nullopt;
    if (!emit(stops_.push(decoder_.push(id)))) return finish(FinishReason::Cancelled), std::nullopt;
    if (stops_.stopped()) return finish(FinishReason::Stop), std::nullopt;
    // No room to evaluate `id`: the context is full ("length").
    if (static_cast<int64_t>(history.size()) >= n_ctx) return finish(FinishReason::Length), std::nullopt;
    if (p_.n_predict >= 0 && r_.n_generated >= p_.n_predict) return finish(FinishReason::Length), std::nullopt;
    return id;
}

Result<GenerateResult> generate(Session& session, std::span<const int32_t> prompt, const GenerateParams& p,
                                const PieceFn& on_piece) {
    Generation g(session.engine().tokenizer(), p, on_piece);
    STRATA_TRY(session.set_prompt(prompt));
    while (auto id = g.next(session.logits(), session.tokens(), session.n_ctx())) STRATA_TRY(session.append(*id));
    GenerateResult r = g.result();
    r.n_prompt = static_cast<int64_t>(prompt.size());
    r.n_reused = session.n_reused();
    return r;
}

}  // namespace strata
