#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace strata {

Sampler::Sampler(SamplingParams p) : p_(std::move(p)), rng_(p_.seed) {}

namespace {

struct Candidate {
    int32_t id;
    float logit;
};

void apply_penalties(std::span<float> logits, std::span<const int32_t> history, const SamplingParams& p) {
    if (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f) return;
    const size_t window = p.penalty_last_n < 0 ? history.size()
                                                : std::min(history.size(), static_cast<size_t>(p.penalty_last_n));
    std::unordered_map<int32_t, int> counts;
    for (int32_t id : history.subspan(history.size() - window)) ++counts[id];
    for (const auto& [id, count] : counts) {
        if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
        float& l = logits[static_cast<size_t>(id)];
        l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
        l -= static_cast<float>(count) * p.frequency_penalty + p.presence_penalty;
    }
}

// Softmax over the candidates (sorted by logit, largest first) into `probs`.
void softmax(const std::vector<Candidate>& c, std::vector<float>& probs, float temperature) {
    probs.resize(c.size());
    double sum = 0;
    for (size_t i = 0; i < c.size(); ++i) {
        probs[i] = std::exp((c[i].logit - c[0].logit) / temperature);
        sum += probs[i];
    }
    for (float& x : probs) x = static_cast<float>(x / sum);
}

}  // namespace

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
    for (const auto& [id, bias] : p_.logit_bias) {
        if (id >= 0 && static_cast<size_t>(id) < logits.size()) logits[static_cast<size_t>(id)] += bias;
    }
    apply_penalties(logits, history, p_);

    if (p_.temperature <= 0.0f) {
        return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }

    std::vector<Candidate> c;
    c.reserve(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) {
        if (logits[i] != -std::numeric_limits<float>::infinity()) c.push_back({static_cast<int32_t>(i), logits[i]});
    }
    if (c.empty()) return 0;
    auto by_logit = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
    const size_t k = p_.top_k > 0 ? std::min(c.size(), static_cast<size_t>(p_.top_k)) : c.size();
    std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(k), c.end(), by_logit);
    c.resize(k);

    // top-p and min-p are judged on the distribution at temperature 1, as the
    // reference does, then the survivors are reweighted by the temperature.
    std::vector<float> probs;
    softmax(c, probs, 1.0f);
    if (p_.top_p < 1.0f) {
        float cum = 0;
        size_t keep = c.size();
        for (size_t i = 0; i < c.size(); ++i) {
            cum += probs[i];
            if (cum >= p_.top_p) {
                keep = i + 1;
                break;
            }
        }
        c.resize(keep);
        probs.resize(keep);
    }
    if (p_.min_p > 0.0f) {
        const float threshold = probs[0] * p_.min_p;
        size_t keep = 1;
        while (keep < c.size() && probs[keep] >= threshold) ++keep;
        c.resize(keep);
    }
    softmax(c, probs, p_.temperature);
    std::discrete_distribution<size_t> pick(probs.begin(), probs.end());
    return c[pick(rng_)].id;
}

}  // namespace strata
