// The trainer of the built-in model (tools/train): its hand-written backward pass
// against finite differences, and its tensor layout against the engine's.

#include "gguf_io.h"
#include "model.h"
#include "model/layout.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace strata::train {
namespace {

Config tiny_config() {
    return Config{.n_vocab = 40,
                  .n_embd = 16,
                  .n_head = 2,
                  .n_layer = 2,
                  .n_expert = 4,
                  .n_expert_used = 2,
                  .n_ff_exp = 8,
                  .n_ctx = 8,
                  .aux_loss_coef = 0.5f};
}

// Weights large enough that routing and attention are far from uniform, and norm
// weights away from 1, so every term of the backward pass matters.
std::vector<float> tiny_params(const Config& c) {
    std::vector<float> p = init_params(c, 7);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(0.5f, 1.5f);
    for (const TensorRef& t : make_layout(c).tensors) {
        uint64_t n = 1;
        for (uint64_t d : t.ne) n *= d;
        for (uint64_t i = 0; i < n; ++i)
            p[t.offset + i] = t.is_norm ? u(rng) : p[t.offset + i] * 10.0f;
    }
    return p;
}

// Every tensor's gradient (a few entries each) against central differences of the
// loss the gradient is of, ce + aux_loss_coef * aux. In float, a step of 1e-3 on
// a loss of about 4 leaves a rounding error near 4e-7 / 2e-3 = 2e-4 per
// difference, and the curvature error is O(h^2) = 1e-6; both are far below the
// 2% relative tolerance, which a wrong term in the backward pass (a missed
// factor, a transposed product) exceeds many times over.
TEST(Train, BackwardMatchesFiniteDifferences) {
    const Config c = tiny_config();
    Model m(c, tiny_params(c));
    const std::vector<int32_t> tokens = {3, 17, 5, 39, 0, 22, 8, 11, 30};
    std::vector<float> grad(m.layout().total, 0.0f);
    m.forward_backward(tokens, 1.0f, grad);
    auto loss = [&] {
        std::vector<float> scratch(m.layout().total, 0.0f);
        const SeqLoss l = m.forward_backward(tokens, 1.0f, scratch);
        return l.ce + c.aux_loss_coef * l.aux;
    };
    const float h = 1e-3f;
    for (const TensorRef& t : m.layout().tensors) {
        uint64_t n = 1;
        for (uint64_t d : t.ne) n *= d;
        double num_sq = 0.0, diff_sq = 0.0;
        for (uint64_t k = 0; k < 6; ++k) {
            const size_t i = t.offset + (k * 7919) % n;
            float& w = m.params()[i];
            const float w0 = w;
            w = w0 + h;
            m.update_transposed();
            const double up = loss();
            w = w0 - h;
            m.update_transposed();
            const double down = loss();
            w = w0;
            m.update_transposed();
            const double num = (up - down) / (2.0 * h);
            num_sq += num * num;
            diff_sq += (num - grad[i]) * (num - grad[i]);
        }
        EXPECT_LE(std::sqrt(diff_sq), 0.02 * std::sqrt(num_sq) + 1e-4) << t.name;
    }
}

// The trainer's tensors are exactly those the engine binds for qwen3moe.
TEST(Train, LayoutMatchesTheEnginesQwen3Moe) {
    const Config c = tiny_config();
    HParams hp;
    hp.arch = "qwen3moe";
    hp.n_layer = c.n_layer, hp.n_embd = c.n_embd, hp.n_head = c.n_head, hp.n_head_kv = c.n_head;
    hp.n_embd_head_k = hp.n_embd_head_v = c.head_dim();
    hp.n_expert = c.n_expert, hp.n_expert_used = c.n_expert_used, hp.n_ff_exp = c.n_ff_exp,
    hp.n_vocab = c.n_vocab;
    auto engine = tensor_layout(hp);
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    const Layout mine = make_layout(c);
    ASSERT_EQ(engine->size(), mine.tensors.size());
    for (const TensorDesc& d : *engine) {
        auto it = std::find_if(mine.tensors.begin(), mine.tensors.end(),
                               [&](const TensorRef& t) { return t.name == d.name; });
        ASSERT_NE(it, mine.tensors.end()) << d.name;
        EXPECT_EQ(it->ne, d.ne) << d.name;
    }
}

}  // namespace
}  // namespace strata::train
