#pragma once
// The pieces every architecture is built from, written once: norms, RoPE,
// attention over the KV cache, the dense FFN and the MoE FFN. Activations are
// row-major [n_tokens, width] float arrays; positions of a batch are contiguous.

#include "model/arch.h"
#include "model/expert_usage.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "util/thread_pool.h"

#include <cstdint>
#include <vector>

namespace strata {

// Norm of each of `n_tok` rows of `width` with weight (and bias for LayerNorm).
void norm_rows(NormKind kind, const float* x, int64_t n_tok, int64_t width, const TensorView& w, const TensorView& b,
               float eps, float* out);

struct RopeParams {
    RopeKind kind = RopeKind::Norm;
    int n_rot = 0;           // rotated dims per head
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;  // 1 / context extension factor
    // YaRN (ext_factor > 0): blend of interpolated and extrapolated frequencies.
    float ext_factor = 0.0f;
    float attn_factor = 1.0f;
    float beta_fast = 32.0f, beta_slow = 1.0f;
    int n_ctx_orig = 0;
};

// Rotates `n_heads` heads of `head_dim` in each of `n_tok` rows (stride `row_stride`),
// row t at position pos0 + t.
void rope(float* x, int64_t n_tok, int64_t row_stride, int n_heads, int head_dim, int64_t pos0, const RopeParams& p);

struct AttentionParams {
    int n_head = 0, n_head_kv = 0, head_dim_k = 0, head_dim_v = 0;
    float scale = 1.0f;
    int64_t window = 0;           // sliding window (keys with pos_q - pos_k >= window are masked); 0 = none
    const float* sinks = nullptr;  // one logit per head, or null
};

// out[t] = softmax(scale * q[t] . K^T + mask) V over cache positions [0, pos0 + t].
void attention(const float* q, int64_t n_tok, int64_t pos0, const KvCache& cache, int layer,
               const AttentionParams& p, float* out, ThreadPool& pool);

// y = x W^T (+ b) for a [n_tok, n_in] x; y is [n_tok, w.ne[1]].
void linear(const TensorView& w, const TensorView& b, const float* x, int64_t n_tok, float* y, ThreadPool& pool);

// Dense FFN: down(act(gate x) * up x).
void dense_ffn(const TensorView& gate, const TensorView& up, const TensorView& down, Activation act, const float* x,
               int64_t n_tok, float* out, ThreadPool& pool);

struct MoeParams {
    int n_expert = 0, n_expert_used = 0;
    Gating gating = Gating::Softmax;
    bool norm_weights = false;
    float weights_scale = 1.0f;
    Activation act = Activation::SwiGlu;
};

// Routed experts (and shared experts where the layer has them), tokens grouped by
// expert so each expert's weights are read once per batch. Adds nothing to `out`:
// it overwrites it. Each routing choice is counted in `usage` (layer `il`) when given.
// `next`, the following MoE layer's weights when there is one, lets the disk tier
// start reading the experts that layer will probably use.
void moe_ffn(const LayerWeights& w, const MoeParams& p, const float* x, int64_t n_tok, int64_t n_embd, float* out,
             ThreadPool& pool, ExpertUsage* usage = nullptr, int il = 0, const LayerWeights* next = nullptr);

}  // namespace strata
