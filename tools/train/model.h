#pragma once
// The trained model: a qwen3moe-shaped transformer (RMSNorm, per-head q/k
// RMSNorm, NeoX RoPE, causal attention, softmax top-k routing with the k weights
// renormalised, SwiGLU experts, an untied output head) with its forward pass and
// its hand-written backward pass, in the same math as the engine's
// src/model/model.cpp so the exported weights mean the same thing there.
//
// All parameters live in one flat float vector; `Layout` gives each tensor's
// offset, with matrices stored [out, in] row-major, i.e. exactly GGUF's
// ne = {in, out} (and expert stacks [n_expert, out, in]).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace strata::train {

struct Config {
    int n_vocab = 1024;
    int n_embd = 128;
    int n_head = 4;
    int n_layer = 4;
    int n_expert = 8;
    int n_expert_used = 2;
    int n_ff_exp = 256;
    int n_ctx = 128;
    float rms_eps = 1e-6f;
    float rope_base = 10000.0f;
    float aux_loss_coef = 0.01f;  // weight of the load-balancing loss

    int head_dim() const { return n_embd / n_head; }
};

struct LayerOffsets {
    size_t attn_norm, wq, wk, wv, wo, q_norm, k_norm, ffn_norm, router, gate_exps, up_exps,
        down_exps;
};

struct TensorRef {
    std::string name;          // the GGUF tensor name
    size_t offset;             // into the flat parameter vector
    std::vector<uint64_t> ne;  // GGUF dims, innermost first
    bool is_norm;              // norm weights: initialised to 1, no weight decay
};

struct Layout {
    size_t tok_embd = 0, output_norm = 0, output = 0;
    std::vector<LayerOffsets> layers;
    std::vector<TensorRef> tensors;
    size_t total = 0;
};

Layout make_layout(const Config& c);

// Loss pieces of one sequence, averaged over its predicted positions.
struct SeqLoss {
    double ce = 0.0;   // cross-entropy (nats per token)
    double aux = 0.0;  // load-balancing loss (1.0 when perfectly balanced)
};

// Expert choices counted per layer: counts[il * n_expert + e].
struct RoutingCounts {
    std::vector<int64_t> counts;
};

class Model {
  public:
    Model(Config c, std::vector<float> params);
    const Config& config() const { return cfg_; }
    const Layout& layout() const { return layout_; }
    std::span<const float> params() const { return params_; }
    // Writable parameters: call `update_transposed` after changing them.
    std::span<float> params() { return params_; }
    // Refreshes the transposed copy of every matrix that the forward pass reads
    // (y = x W^T as x times a row-major W^T), made once per optimizer step rather
    // than once per sequence.
    void update_transposed();

    // Forward and backward over `tokens` (predicting tokens[1..] from tokens[..n-1]):
    // adds this sequence's gradient, scaled by `scale`, into `grad` (layout-sized),
    // and returns its losses. The loss the gradient is of is ce + aux_loss_coef * aux.
    SeqLoss forward_backward(std::span<const int32_t> tokens, float scale, std::span<float> grad,
                             RoutingCounts* routing = nullptr) const;

    // Logits [n_tokens, n_vocab] for every position of `tokens` (no gradient).
    std::vector<float> logits(std::span<const int32_t> tokens) const;
    // The experts each token was routed to: [n_layer][n_tokens][n_expert_used].
    std::vector<int> routes(std::span<const int32_t> tokens) const;

  private:
    struct Acts;
    // Runs the forward pass, keeping what the backward pass needs in `a`.
    void forward(std::span<const int32_t> tokens, Acts& a) const;
    const float* p(size_t off) const { return params_.data() + off; }
    const float* pt(size_t off) const { return transposed_.data() + off; }

    Config cfg_;
    Layout layout_;
    std::vector<float> params_;
    std::vector<float> transposed_;  // each matrix (each expert's) transposed, at its own offset
};

// Fresh parameters: N(0, 0.02) matrices (residual projections scaled down by
// sqrt(2 n_layer), as GPT-2 does), norm weights 1.
std::vector<float> init_params(const Config& c, uint64_t seed);

}  // namespace strata::train
