#include "optim.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace strata::train {

float lr_at(const AdamWParams& p, int step) {
    if (step < p.warmup_steps)
        return p.lr * static_cast<float>(step + 1) / static_cast<float>(p.warmup_steps);
    const float t = static_cast<float>(step - p.warmup_steps) /
                    static_cast<float>(std::max(1, p.total_steps - p.warmup_steps));
    const float cosine = 0.5f * (1.0f + std::cos(std::numbers::pi_v<float> * std::min(t, 1.0f)));
    return p.lr * (p.min_lr_ratio + (1.0f - p.min_lr_ratio) * cosine);
}

AdamW::AdamW(const Layout& layout, AdamWParams p)
    : p_(p), m_(layout.total, 0.0f), v_(layout.total, 0.0f), decay_(layout.total, 0) {
    for (const TensorRef& t : layout.tensors) {
        if (t.is_norm) continue;
        uint64_t n = 1;
        for (uint64_t d : t.ne) n *= d;
        std::fill_n(decay_.begin() + static_cast<int64_t>(t.offset), n, uint8_t{1});
    }
}

float AdamW::step(std::span<float> params, std::span<float> grad, int step_index) {
    double sq = 0.0;
    for (float g : grad) sq += double{g} * g;
    const auto norm = static_cast<float>(std::sqrt(sq));
    const float clip = norm > p_.clip_norm ? p_.clip_norm / norm : 1.0f;
    const float lr = lr_at(p_, step_index);
    const float bc1 = 1.0f - std::pow(p_.beta1, static_cast<float>(step_index + 1));
    const float bc2 = 1.0f - std::pow(p_.beta2, static_cast<float>(step_index + 1));
    for (size_t i = 0; i < params.size(); ++i) {
        const float g = grad[i] * clip;
        m_[i] = p_.beta1 * m_[i] + (1.0f - p_.beta1) * g;
        v_[i] = p_.beta2 * v_[i] + (1.0f - p_.beta2) * g * g;
        const float update = (m_[i] / bc1) / (std::sqrt(v_[i] / bc2) + p_.eps);
        if (decay_[i]) params[i] -= lr * p_.weight_decay * params[i];
        params[i] -= lr * update;
    }
    return norm;
}

}  // namespace strata::train
