#pragma once
// A loaded model's forward pass: token ids in, logits out, keys and values kept
// in a KvCache. One implementation serves every architecture; what differs is
// read from the ArchSpec (arch.h) and the weights bound for it.

#include "gguf/file.h"
#include "model/arch.h"
#include "model/blocks.h"
#include "model/hparams.h"
#include "model/kv_cache.h"
#include "model/weights.h"
#include "util/result.h"
#include "util/thread_pool.h"

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <span>
#include <string_view>
#include <vector>

namespace strata {

// One sequence's part of a batched forward pass: `tokens` at positions pos0,
// pos0 + 1, ... of `cache`'s timeline. `logits` receives the last token's n_vocab
// logits (all n_tokens x n_vocab with `all_logits`); null when none are wanted (a
// prompt chunk that is not the prompt's last).
struct SeqBatch {
    std::span<const int32_t> tokens;
    int64_t pos0 = 0;
    KvCache* cache = nullptr;
    float* logits = nullptr;
    bool all_logits = false;
};

// Where each sequence's rows start in a batch's stacked activations, which rows
// go through the output head (each sequence's last, or all of its rows), and the
// batch's row count.
struct BatchLayout {
    std::vector<int64_t> rows, out_rows;
    int64_t n_tok = 0;
};

// Copies the output head's rows (`out_rows` order, n_vocab each) into each
// sequence's logits.
void scatter_logits(std::span<const SeqBatch> seqs, const float* src, int64_t n_vocab);

class Model {
  public:
    // Binds the weights of `file`, which must outlive the model (views point into
    // its mapping). Errors name the missing key or tensor, or the unsupported
    // architecture.
    static Result<std::unique_ptr<Model>> load(const gguf::File& file);

    const HParams& hparams() const { return hp_; }
    const ArchSpec& arch() const { return *arch_; }
    // Where the engine copied a tensor's bytes, and as which type: the file's,
    // or one of strata's own layouts of it (tensor/repack.h).
    struct MovedWeights {
        const uint8_t* data;
        TensorType type;
    };
    // Points every weight view whose bytes are at a key of `to` at its value
    // instead: the engine's copies of tensors (the same values elsewhere).
    void move_weights(const std::unordered_map<const uint8_t*, MovedWeights>& to);
    const ModelWeights& weights() const { return weights_; }
    // Routing choices counted since load (or the last reset); empty for dense models.
    const ExpertUsage& expert_usage() const { return usage_; }
    ExpertUsage& expert_usage() { return usage_; }

    std::unique_ptr<KvCache> new_cache(int64_t n_ctx, KvType type) const;

    // Makes the stacked expert tensor `name` read its experts through `source`
    // (which must outlive the model); false when no such tensor is bound.
    bool attach_experts(std::string_view name, const ExpertSource* source);

    // Runs `tokens` at positions pos0, pos0 + 1, ... of `cache`'s sequence. With
    // `all_logits`, writes n_tokens x n_vocab logits; otherwise only the last
    // token's n_vocab. Errors for token ids outside the vocabulary and positions
    // past the cache.
    Status forward(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits,
                   float* logits, ThreadPool& pool) const;

    // Runs several sequences in one pass (continuous batching): their tokens are
    // stacked into one activation matrix, so every weight matrix — attention
    // projections, experts, the output head — is read once for the whole batch;
    // only RoPE positions, the KV store and attention run per sequence. Each
    // sequence's result equals running it alone. Errors name the sequence.
    Status forward_batch(std::span<const SeqBatch> seqs, ThreadPool& pool) const;

    // The batch's layout; errors name the sequence with no tokens, token ids
    // outside the vocabulary, positions past the cache, or a shared cache.
    Result<BatchLayout> layout_batch(std::span<const SeqBatch> seqs) const;
    // The batch's token embeddings into x [n_tok, n_embd].
    void embed(std::span<const SeqBatch> seqs, const BatchLayout& l, float* x) const;

    const RopeParams& rope_params() const { return rope_; }
    // Layer `il`'s attention shape, scale and window (without its sinks).
    AttentionParams attention_params(int il) const;
    const MoeParams& moe_params() const { return moe_; }

  private:
    Model() = default;
    // `rows[i]` is the first row of `seqs[i]` in the stacked activations `x`.
    void layer(int il, float* x, int64_t n_tok, std::span<const SeqBatch> seqs,
               std::span<const int64_t> rows, ThreadPool& pool) const;

    HParams hp_;
    const ArchSpec* arch_ = nullptr;
    ModelWeights weights_;
    RopeParams rope_;
    MoeParams moe_;
    mutable ExpertUsage usage_;
};

}  // namespace strata
