#include "train.h"

#include "util/thread_pool.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

namespace strata::train {

double eval_loss(const Model& m, std::span<const int32_t> data, int n_windows, int threads) {
    const int64_t T = m.config().n_ctx, V = m.config().n_vocab;
    const int64_t span = static_cast<int64_t>(data.size()) - T - 1;
    if (span <= 0 || n_windows <= 0) return NAN;
    std::vector<double> loss(static_cast<size_t>(n_windows));
    ThreadPool pool(threads);
    pool.for_each_dynamic(n_windows, [&](int64_t w) {
        const int64_t off = span * w / std::max(1, n_windows - 1);
        const auto win = data.subspan(static_cast<size_t>(off), static_cast<size_t>(T + 1));
        const std::vector<float> logits = m.logits(win.first(static_cast<size_t>(T)));
        double sum = 0.0;
        for (int64_t t = 0; t < T; ++t) {
            const float* row = &logits[static_cast<size_t>(t * V)];
            const float mx = *std::max_element(row, row + V);
            double z = 0.0;
            for (int64_t j = 0; j < V; ++j) z += std::exp(double{row[j]} - mx);
            sum += std::log(z) - (row[win[static_cast<size_t>(t + 1)]] - mx);
        }
        loss[static_cast<size_t>(w)] = sum / static_cast<double>(T);
    });
    double total = 0.0;
    for (double l : loss) total += l;
    return total / n_windows;
}

TrainResult train(Model& m, std::span<const int32_t> train_data, std::span<const int32_t> val_data,
                  const TrainParams& p) {
    const Config& c = m.config();
    const int64_t T = c.n_ctx;
    const int64_t span = static_cast<int64_t>(train_data.size()) - T - 1;
    ThreadPool pool(p.threads);
    const int n_threads = pool.size();
    std::vector<std::vector<float>> grads(static_cast<size_t>(n_threads),
                                          std::vector<float>(m.layout().total));
    std::vector<RoutingCounts> routing(static_cast<size_t>(n_threads));
    for (auto& r : routing) r.counts.assign(static_cast<size_t>(c.n_layer * c.n_expert), 0);
    AdamW opt(m.layout(), p.opt);
    std::mt19937_64 rng(p.seed);
    std::uniform_int_distribution<int64_t> pick(0, span);
    const int routing_from = p.opt.total_steps - std::max(1, p.opt.total_steps / 10);

    TrainResult result;
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    double window_ce = 0.0, window_aux = 0.0;
    int window_n = 0;
    std::vector<int64_t> offsets(static_cast<size_t>(p.batch));
    std::vector<SeqLoss> losses(offsets.size());
    for (int step = 0; step < p.opt.total_steps; ++step) {
        for (int64_t& o : offsets) o = pick(rng);
        const bool count = step >= routing_from;
        pool.run_on_all([&](int ti) {
            std::vector<float>& g = grads[static_cast<size_t>(ti)];
            std::fill(g.begin(), g.end(), 0.0f);
            for (int s = ti; s < p.batch; s += n_threads) {
                const auto seq =
                    train_data.subspan(static_cast<size_t>(offsets[s]), static_cast<size_t>(T + 1));
                losses[s] = m.forward_backward(seq, 1.0f / static_cast<float>(p.batch), g,
                                               count ? &routing[static_cast<size_t>(ti)] : nullptr);
            }
        });
        for (int ti = 1; ti < n_threads; ++ti) {
            const std::vector<float>& g = grads[static_cast<size_t>(ti)];
            for (size_t i = 0; i < g.size(); ++i) grads[0][i] += g[i];
        }
        const float gnorm = opt.step(m.params(), grads[0], step);
        m.update_transposed();
        for (const SeqLoss& l : losses) window_ce += l.ce / p.batch, window_aux += l.aux / p.batch;
        ++window_n;
        if ((step + 1) % p.log_every == 0 || step + 1 == p.opt.total_steps) {
            const double secs = elapsed();
            fmt::print(
                "step {:5d}/{}  loss {:.4f}  aux {:.4f}  |g| {:.3f}  lr {:.2e}  {:.0f} tok/s  "
                "{:.0f} s\n",
                step + 1, p.opt.total_steps, window_ce / window_n, window_aux / window_n, gnorm,
                lr_at(p.opt, step), static_cast<double>((step + 1) * p.batch * T) / secs, secs);
            std::fflush(stdout);
            result.train_loss = window_ce / window_n;
            window_ce = window_aux = 0.0;
            window_n = 0;
        }
        if (p.eval_every > 0 && (step + 1) % p.eval_every == 0 && step + 1 < p.opt.total_steps) {
            fmt::print("step {:5d}  validation loss {:.4f}\n", step + 1,
                       eval_loss(m, val_data, p.eval_windows, p.threads));
        }
    }
    result.seconds = elapsed();
    result.val_loss = eval_loss(m, val_data, p.eval_windows, p.threads);
    result.routing.counts.assign(routing[0].counts.size(), 0);
    for (const RoutingCounts& r : routing) {
        for (size_t i = 0; i < r.counts.size(); ++i) result.routing.counts[i] += r.counts[i];
    }
    return result;
}

}  // namespace strata::train
