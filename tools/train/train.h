#pragma once
// The training loop: random windows of the token stream, gradients of a batch
// computed on several threads (each thread a fixed set of the batch's sequences,
// summed in thread order, so a run is reproducible for a given thread count),
// AdamW steps, and the validation loss on held-out text.

#include "model.h"
#include "optim.h"

#include <cstdint>
#include <span>
#include <vector>

namespace strata::train {

struct TrainParams {
    AdamWParams opt;
    int batch = 16;  // sequences per step, each n_ctx tokens long
    int threads = 2;
    uint64_t seed = 1;
    int log_every = 10;
    int eval_every = 100;
    int eval_windows = 64;  // validation windows (fixed, evenly spaced)
};

struct TrainResult {
    double train_loss = 0.0;  // mean cross-entropy of the last `log_every` steps
    double val_loss = 0.0;
    double seconds = 0.0;
    RoutingCounts routing;  // expert choices over the last 10% of the steps
};

// Mean cross-entropy (nats/token) over `n_windows` windows of `data`.
double eval_loss(const Model& m, std::span<const int32_t> data, int n_windows, int threads);

TrainResult train(Model& m, std::span<const int32_t> train_data, std::span<const int32_t> val_data,
                  const TrainParams& p);

}  // namespace strata::train
