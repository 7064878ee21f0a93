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

// Sorted order for the cuts: larger logit first, ties to the lower id (a strict
// total order, so the kept set does not depend on the sort's algorithm).
bool by_logit(const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

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

float max_logit(const std::vector<Candidate>& c) {
    float top = c[0].logit;
    for (const Candidate& x : c) top = x.logit > top ? x.logit : top;
    return top;
}

// exp((logit - top) / temperature) for each candidate, divided by `total`, or by
// their own sum when `total` is 0.
std::vector<float> softmax(const std::vector<Candidate>& c, float top, float temperature,
                           double total = 0) {
    std::vector<float> probs(c.size());
    double sum = 0;
    for (size_t i = 0; i < c.size(); ++i) {
        probs[i] = std::exp((c[i].logit - top) / temperature);
        sum += probs[i];
    }
    if (total == 0) total = sum;
    for (float& x : probs) x = static_cast<float>(x / total);
    return probs;
}

// The largest of `x` (NaNs skipped): eight running maxima, which vectorise,
// where one is a chain of dependent comparisons.
float max_of(std::span<const float> x) {
    float m[8];
    std::fill(std::begin(m), std::end(m), -std::numeric_limits<float>::infinity());
    size_t i = 0;
    for (; i + 8 <= x.size(); i += 8) {
        for (size_t j = 0; j < 8; ++j) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    }
    for (; i < x.size(); ++i) m[0] = x[i] > m[0] ? x[i] : m[0];
    return *std::max_element(std::begin(m), std::end(m));
}

// A token can be drawn unless its logit is -inf (banned) or NaN.
bool drawable(float logit) {
    return logit > -std::numeric_limits<float>::infinity();
}

std::vector<Candidate> drawable_tokens(std::span<const float> logits) {
    std::vector<Candidate> c;
    c.reserve(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) {
        if (drawable(logits[i])) c.push_back({static_cast<int32_t>(i), logits[i]});
    }
    return c;
}

// Without top-k, top-p and min-p keep a head of the sorted order, usually a few
// tokens of a vocabulary of 100k-200k, and sorting all of them cost 17 ms per
// token for 152k (more than half a decode step of a 30B MoE). Instead, one pass
// bins the tokens by how far their logit is below the best and sums each bin's
// probability mass; the head is every token above the bin where the mass reaches
// top-p (one bin more, and a margin, for the float rounding of the exact cut),
// and above log(min_p) below the best. Only those are sorted, into `head`; the
// cuts themselves are then made exactly as after top-k.
// Returns the mass of all drawable tokens at temperature 1, relative to the best.
double keep_head(std::span<const float> logits, const SamplingParams& p,
                 std::vector<Candidate>& head) {
    const float top = max_of(logits);
    if (!drawable(top)) return 0;
    constexpr int kPerUnit = 8, kBins = 64 * kPerUnit;  // bins of 1/8, down to 64 below the best
    std::vector<double> mass(kBins, 0.0);
    double total = 0;
    for (float l : logits) {
        if (!drawable(l)) continue;
        const float gap = top - l;
        const double e = std::exp(-gap);
        total += e;
        mass[gap < kBins / kPerUnit ? static_cast<size_t>(gap * kPerUnit) : kBins - 1] += e;
    }
    float threshold = -std::numeric_limits<float>::infinity();
    if (p.top_p < 1.0f) {
        double cum = 0;
        for (int b = 0; b < kBins; ++b) {
            cum += mass[b];
            if (cum >= p.top_p * total * (1 + 1e-4)) {
                threshold = top - static_cast<float>(b + 2) / kPerUnit;
                break;
            }
        }
    }
    if (p.min_p > 0.0f) threshold = std::max(threshold, top + std::log(p.min_p) - 1.0f / kPerUnit);
    for (size_t i = 0; i < logits.size(); ++i) {
        if (drawable(logits[i]) && logits[i] >= threshold)
            head.push_back({static_cast<int32_t>(i), logits[i]});
    }
    std::sort(head.begin(), head.end(), by_logit);
    return total;
}

}  // namespace

int32_t argmax(std::span<const float> logits) {
    // The largest value by vectorised maxima, then its first position: a single
    // pass keeping the index is a chain of dependent compares, 0.4 ms per token
    // for a 152k vocabulary.
    const float top = max_of(logits);
    const auto at = std::find(logits.begin(), logits.end(), top);
    return at == logits.end() ? 0 : static_cast<int32_t>(at - logits.begin());
}

std::vector<SampleCandidate> sampling_distribution(std::span<const float> logits,
                                                   const SamplingParams& p) {
    // The candidates' mass at temperature 1 relative to the best, where the
    // cuts below see only part of them (0: the ones they see).
    double total = 0;
    std::vector<Candidate> c;
    const bool top_k_cuts = p.top_k > 0 && static_cast<size_t>(p.top_k) < logits.size();
    const bool cut = top_k_cuts || p.top_p < 1.0f || p.min_p > 0.0f;
    if (top_k_cuts) {
        c = drawable_tokens(logits);
        const auto k =
            static_cast<std::ptrdiff_t>(std::min(c.size(), static_cast<size_t>(p.top_k)));
        std::partial_sort(c.begin(), c.begin() + k, c.end(), by_logit);
        c.resize(static_cast<size_t>(k));
    } else if (cut) {
        total = keep_head(logits, p, c);
    } else {
        c = drawable_tokens(logits);
    }
    if (c.empty()) return {};

    if (cut) {
        // top-p and min-p are judged on the distribution at temperature 1, as the
        // reference does, then the survivors are reweighted by the temperature.
        const std::vector<float> probs = softmax(c, c[0].logit, 1.0f, total);
        size_t keep = c.size();
        if (p.top_p < 1.0f) {
            float cum = 0;
            for (size_t i = 0; i < c.size(); ++i) {
                cum += probs[i];
                if (cum >= p.top_p) {
                    keep = i + 1;
                    break;
                }
            }
        }
        if (p.min_p > 0.0f) {
            const float threshold = probs[0] * p.min_p;
            size_t kept = 1;
            while (kept < keep && probs[kept] >= threshold) ++kept;
            keep = kept;
        }
        c.resize(keep);
    }
    const std::vector<float> probs = softmax(c, max_logit(c), p.temperature);
    std::vector<SampleCandidate> out(c.size());
    for (size_t i = 0; i < c.size(); ++i) out[i] = {c[i].id, c[i].logit, probs[i]};
    return out;
}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
    for (const auto& [id, bias] : p_.logit_bias) {
        if (id >= 0 && static_cast<size_t>(id) < logits.size())
            logits[static_cast<size_t>(id)] += bias;
    }
    apply_penalties(logits, history, p_);

    if (p_.temperature <= 0.0f) return argmax(logits);
    const std::vector<SampleCandidate> c = sampling_distribution(logits, p_);
    if (c.empty()) return 0;
    std::vector<float> probs(c.size());
    for (size_t i = 0; i < c.size(); ++i) probs[i] = c[i].prob;
    std::discrete_distribution<size_t> pick(probs.begin(), probs.end());
    return c[pick(rng_)].id;
}

}  // namespace strata
