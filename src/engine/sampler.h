#pragma once
// The sampling chain, in the reference implementation's order: logit bias,
// repetition / presence / frequency penalties over the last tokens, top-k, top-p,
// min-p, temperature, then a seeded draw. Temperature 0 is greedy: the most
// likely token after bias and penalties.

#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <vector>

namespace strata {

struct SamplingParams {
    float temperature = 0.8f;
    int top_k = 40;           // 0: off
    float top_p = 0.95f;      // 1: off
    float min_p = 0.05f;      // 0: off
    float repeat_penalty = 1.0f;     // 1: off; divides positive logits, multiplies negative ones
    float presence_penalty = 0.0f;   // subtracted once from every token seen in the window
    float frequency_penalty = 0.0f;  // subtracted per occurrence in the window
    int penalty_last_n = 64;         // window of recent tokens the penalties look at; -1: all
    uint64_t seed = 0;
    std::map<int32_t, float> logit_bias;  // added to a token's logit; -inf bans it
};

// The index of the largest logit, the first of equal ones (NaNs never win;
// 0 when none is larger than -inf): greedy decoding's token.
int32_t argmax(std::span<const float> logits);

// A token the sampling chain can draw, with its probability.
struct SampleCandidate {
    int32_t id;
    float logit;
    float prob;  // at the sampling temperature, over the candidates returned
};

// What `Sampler::sample` draws from once bias and penalties are applied: the
// tokens that top-k, top-p and min-p keep, with their probabilities at
// `p.temperature` (> 0). Largest logit first (ties: lower id) whenever a cut
// applies; in id order when every token is kept.
std::vector<SampleCandidate> sampling_distribution(std::span<const float> logits,
                                                   const SamplingParams& p);

class Sampler {
public:
    explicit Sampler(SamplingParams p);

    // Picks the next token from `logits` (modified in place) given the tokens so
    // far (prompt and generated).
    int32_t sample(std::span<float> logits, std::span<const int32_t> history);

    const SamplingParams& params() const { return p_; }

private:
    SamplingParams p_;
    std::mt19937_64 rng_;
};

}  // namespace strata
