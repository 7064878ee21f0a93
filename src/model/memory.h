#pragma once
// The memory a model needs, per tier, before anything is loaded: the plan's
// input (every tensor's bytes, which ones stack experts) read from a GGUF, the KV
// cache for a context and parallelism, and an estimate of the activations of one
// batch. `strata probe` prints the result; `Engine::load` follows it.

#include "gguf/file.h"
#include "model/hparams.h"
#include "model/kv_cache.h"
#include "placement/plan.h"
#include "util/result.h"

#include <cstdint>

namespace strata {

struct MemoryRequest {
    int64_t n_ctx = 4096;  // per sequence; 0: the model's training context
    int n_parallel = 1;    // sequences at once, each with its own KV cache
    KvType kv_type = KvType::F16;
    int64_t n_batch = 512;  // tokens per forward pass (prompt processing)
};

// Bytes of one sequence's KV cache of `n_ctx` tokens, as `KvCache` allocates it
// (every layer holds the whole context, sliding-window layers too).
uint64_t kv_cache_bytes(const HParams& hp, int64_t n_ctx, KvType type);

// Activations of one forward pass of `n_batch` tokens, as the CPU forward pass
// allocates them: the residual stream, q/k/v and attention output, the router's
// logits and one expert's gate/up rows for every token, plus one output row of
// logits per sequence and attention scores over the whole context for every head.
uint64_t scratch_bytes(const HParams& hp, const MemoryRequest& req);

// The plan's input for `f`: tensors (routed-expert matrices stacked by expert),
// KV cache and scratch for `req`.
Result<PlanInput> plan_input(const gguf::File& f, const HParams& hp, const MemoryRequest& req);

// Reads the hyper-parameters of `f` and places its tensors by `opt`.
Result<MemoryPlan> plan_memory(const gguf::File& f, const PlacementOptions& opt, const MemoryRequest& req);

}  // namespace strata
