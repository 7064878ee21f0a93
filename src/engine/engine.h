#pragma once
// `Engine`: one loaded model — the mapped file, its weights bound for the
// architecture, and the thread pool its forward passes run on. Shared by
// sessions; one forward pass runs at a time (the pool serves one caller).
// `Session`: one KV-cache timeline on an engine.

#include "engine/sampler.h"
#include "gguf/file.h"
#include "model/model.h"
#include "util/result.h"
#include "util/thread_pool.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace strata {

struct EngineOptions {
    int threads = 0;  // 0: physical cores
};

class Engine {
public:
    static Result<std::unique_ptr<Engine>> load(const std::string& path, const EngineOptions& options);

    const gguf::File& file() const { return *file_; }
    const Model& model() const { return *model_; }
    const HParams& hparams() const { return model_->hparams(); }
    int threads() const { return pool_->size(); }
    double load_seconds() const { return load_seconds_; }

    // Runs a forward pass; serialised across sessions.
    Status forward(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits, float* logits);

private:
    Engine() = default;
    std::unique_ptr<gguf::File> file_;
    std::unique_ptr<Model> model_;
    std::unique_ptr<ThreadPool> pool_;
    std::mutex forward_mu_;
    double load_seconds_ = 0;
};

class Session {
public:
    // A timeline of up to `n_ctx` tokens (the model's training context when 0).
    Session(Engine& engine, int64_t n_ctx, KvType kv_type);

    int64_t n_ctx() const { return cache_->n_ctx(); }
    const std::vector<int32_t>& tokens() const { return tokens_; }
    // The logits after the last token evaluated.
    std::span<const float> logits() const { return logits_; }
    // Tokens of the last `set_prompt` that came from the cache instead of being computed.
    int64_t n_reused() const { return n_reused_; }

    // Makes the timeline hold exactly `prompt`, computing only what differs from
    // what it holds (the longest common prefix is kept), in batches of `n_batch`.
    Status set_prompt(std::span<const int32_t> prompt, int64_t n_batch = 512);
    // Appends one token and computes its logits.
    Status append(int32_t token);

private:
    Status evaluate(std::span<const int32_t> tokens, int64_t n_batch);

    Engine& engine_;
    std::unique_ptr<KvCache> cache_;
    std::vector<int32_t> tokens_;
    std::vector<float> logits_;
    int64_t n_reused_ = 0;
};

}  // namespace strata
