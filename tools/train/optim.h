#pragma once
// AdamW (decoupled weight decay) with global-norm gradient clipping and a
// warmup-then-cosine learning-rate schedule.

#include "model.h"

#include <cstdint>
#include <span>
#include <vector>

namespace strata::train {

struct AdamWParams {
    float lr = 3e-3f;
    float min_lr_ratio = 0.1f;  // the schedule ends at lr * min_lr_ratio
    float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
    float weight_decay = 0.1f;
    float clip_norm = 1.0f;
    int warmup_steps = 50;
    int total_steps = 1000;
};

// The learning rate at `step` (0-based): linear warmup, then cosine decay.
float lr_at(const AdamWParams& p, int step);

class AdamW {
  public:
    AdamW(const Layout& layout, AdamWParams p);
    // Clips `grad` to `clip_norm`, applies one update to `params` and returns the
    // gradient's norm before clipping.
    float step(std::span<float> params, std::span<float> grad, int step_index);

  private:
    AdamWParams p_;
    std::vector<float> m_, v_;
    std::vector<uint8_t> decay_;  // 1 where weight decay applies (matrices, not norms)
};

}  // namespace strata::train
