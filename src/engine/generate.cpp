#include "engine/generate.h"

#include "engine/stop.h"

#include <chrono>

namespace strata {

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Cancelled: return "cancelled";
    }
    return "stop";
}

Result<GenerateResult> generate(Session& session, std::span<const int32_t> prompt, const GenerateParams& p,
                                const PieceFn& on_piece) {
    using clock = std::chrono::steady_clock;
    GenerateResult r;
    r.n_prompt = static_cast<int64_t>(prompt.size());
    const auto t0 = clock::now();
    STRATA_TRY(session.set_prompt(prompt));
    r.n_reused = session.n_reused();
    const auto t1 = clock::now();
    r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

    const text::Tokenizer& tok = session.engine().tokenizer();
    Sampler sampler(p.sampling);
    StopMatcher stops(p.stop);
    // A continuation keeps the space its first word carries.
    text::StreamDecoder decoder(tok, {.remove_space_prefix = false});
    auto emit = [&](const std::string& text) {
        if (text.empty()) return true;
        r.text += text;
        return on_piece ? on_piece(text) : true;
    };

    std::vector<float> logits;
    r.finish = FinishReason::Length;
    while (p.n_predict < 0 || r.n_generated < p.n_predict) {
        logits.assign(session.logits().begin(), session.logits().end());
        const int32_t id = sampler.sample(logits, session.tokens());
        ++r.n_generated;
        if (!p.ignore_eos && tok.vocab().is_eog(id)) {
            r.finish = FinishReason::Stop;
            break;
        }
        if (!emit(stops.push(decoder.push(id)))) {
            r.finish = FinishReason::Cancelled;
            break;
        }
        if (stops.stopped()) {
            r.finish = FinishReason::Stop;
            break;
        }
        if (session.tokens().size() >= static_cast<size_t>(session.n_ctx())) break;  // context full: "length"
        if (p.n_predict >= 0 && r.n_generated >= p.n_predict) break;
        STRATA_TRY(session.append(id));
    }
    if (r.finish != FinishReason::Cancelled && !stops.stopped()) emit(stops.push(decoder.finish()) + stops.flush());
    r.generate_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return r;
}

}  // namespace strata
