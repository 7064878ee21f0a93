#pragma once
// The pieces every architecture is built from, written once: norms, RoPE,
// attention over the KV cache, the dense FFN and the MoE FFN. Activations are
// row-major [n_tokens, width] float arrays; positions of a batch are contiguous.

#include "model/arch.h"
#include "model/expert_usage.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "ops/cpu/ops.h"
#include "util/thread_pool.h"

#include <cstdint>
#include <span>
#include <vector>

namespace strata {

// Norm of each of `n_tok` rows of `width` with weight (and bias for LayerNorm).
void norm_rows(NormKind kind, const float* x, int64_t n_tok, int64_t width, const TensorView& w,
               const TensorView& b, float eps, float* out);

using ops::AttentionParams;
using ops::RopeParams;

// Rotates `n_heads` heads of `head_dim` in each of `n_tok` rows (stride `row_stride`),
// row t at position pos0 + t (the CPU kernel, ops/cpu/attention.cpp).
using ops::rope;

// out[t] = softmax(scale * q[t] . K^T + mask) V over cache positions [0, pos0 + t].
void attention(const float* q, int64_t n_tok, int64_t pos0, const KvCache& cache, int layer,
               const AttentionParams& p, float* out, ThreadPool& pool);

// y = x W^T (+ b) for a [n_tok, n_in] x; y is [n_tok, w.ne[1]].
void linear(const TensorView& w, const TensorView& b, const float* x, int64_t n_tok, float* y,
            ThreadPool& pool);

// Several `linear`s of the same x in one parallel region (ops::matmul_many):
// a layer's Q, K and V projections.
struct Linear {
    const TensorView* w;
    const TensorView* b;
    float* y;
};
void linear_many(std::span<const Linear> outs, const float* x, int64_t n_tok, ThreadPool& pool);

// Dense FFN: down(act(gate x) * up x).
void dense_ffn(const TensorView& gate, const TensorView& up, const TensorView& down, Activation act,
               const float* x, int64_t n_tok, float* out, ThreadPool& pool);

struct MoeParams {
    int n_expert = 0, n_expert_used = 0;
    Gating gating = Gating::Softmax;
    bool norm_weights = false;
    float weights_scale = 1.0f;
    Activation act = Activation::SwiGlu;
};

// Per token, the k experts the router picks and their weights.
struct Routing {
    std::vector<int> chosen;    // [n_tok][k]
    std::vector<float> weight;  // [n_tok][k]
};

// The routing of `n_tok` rows of router logits [n_tok][n_expert] (overwritten
// with the gating's probabilities).
Routing route_logits(const MoeParams& p, float* logits, int64_t n_tok);

// Routed experts (and shared experts where the layer has them), tokens grouped by
// expert so each expert's weights are read once per batch. Adds nothing to `out`:
// it overwrites it. Each routing choice is counted in `usage` (layer `il`) when given.
// `next`, the following MoE layer's weights when there is one, lets the disk tier
// start reading the experts that layer will probably use.
void moe_ffn(const LayerWeights& w, const MoeParams& p, const float* x, int64_t n_tok,
             int64_t n_embd, float* out, ThreadPool& pool, ExpertUsage* usage = nullptr, int il = 0,
             const LayerWeights* next = nullptr);

// What `moe_experts` runs: the layer input x [n_tok, n_embd] and where the sum of
// the weighted outputs goes (overwritten).
struct MoeRun {
    const float* x = nullptr;
    int64_t n_tok = 0, n_embd = 0;
    float* out = nullptr;
    std::vector<char> only;  // per expert: run it here; empty: all of them
    bool shared = true;      // run the shared expert (where the layer has one)
};

// The second half of `moe_ffn`: the experts of a given routing, so a device
// backend can run some of a layer's experts and the CPU the others (MoeRun::only).
void moe_experts(const LayerWeights& w, const MoeParams& p, const Routing& routing,
                 const MoeRun& run, ThreadPool& pool, ExpertUsage* usage = nullptr, int il = 0,
                 const LayerWeights* next = nullptr);

}  // namespace strata
