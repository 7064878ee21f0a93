#pragma once
// What the forward pass keeps for the backward pass (model.cpp, model_backward.cpp).
#include "model.h"

#include <cmath>
#include <utility>
#include <vector>

namespace strata::train {

struct LayerActs {
    std::vector<float> x_in, inv1, h1, q_raw, k_raw, q_inv, k_inv, q, k, v, probs, att, x_mid, inv2,
        h2;
    std::vector<float> rprob,
        wts;                  // [T, E] router probabilities; [T, K] renormalised top-k weights
    std::vector<int> chosen;  // [T, K]
    // Per expert: the (token, choice) rows routed to it and its activations.
    std::vector<std::vector<std::pair<int, int>>> rows;
    std::vector<std::vector<float>> xe, g, u, hh, y;
};

struct Model::Acts {
    int64_t T = 0;
    std::vector<LayerActs> layers;
    std::vector<float> x_final, inv_f, hf, logits;
};

inline float silu(float x) {
    return x / (1.0f + std::exp(-x));
}

}  // namespace strata::train
