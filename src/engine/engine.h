#pragma once
// `Engine`: one loaded model — the mapped file, its weights bound for the
// architecture, and the thread pool its forward passes run on. Shared by
// sessions; one forward pass runs at a time (the pool serves one caller).
// `Session`: one KV-cache timeline on an engine.

#include "engine/sampler.h"
#include "gguf/file.h"
#include "model/device_model.h"
#include "model/memory.h"
#include "model/model.h"
#include "placement/expert_cache.h"
#include "placement/plan.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "util/huge_buffer.h"
#include "util/result.h"
#include "util/thread_pool.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

namespace strata {

// Called while weights are read in: bytes done and total.
using LoadProgressFn = std::function<void(uint64_t done, uint64_t total)>;
// Receives the load's log lines (placement decisions), without a newline.
using LogFn = std::function<void(const std::string& line)>;

struct EngineOptions {
    int threads = 0;  // 0: physical cores
    bool prefetch =
        false;  // read every weight page at load, so the first token does not wait on the disk
    LoadProgressFn progress;     // optional, with prefetch
    std::string chat_template;   // Jinja source replacing the model's own; empty: the model's
    PlacementOptions placement;  // where tensors live (placement/plan.h)
    MemoryRequest memory;        // the context and parallelism the plan sizes the KV cache for
    LogFn log;                   // optional
};

class Engine {
  public:
    static Result<std::unique_ptr<Engine>> load(const std::string& path,
                                                const EngineOptions& options);

    const gguf::File& file() const { return *file_; }
    const Model& model() const { return *model_; }
    const HParams& hparams() const { return model_->hparams(); }
    const text::Tokenizer& tokenizer() const { return *tokenizer_; }
    // The model's chat template, or ChatML when the file has none (see
    // `chat_template_is_fallback`).
    const text::ChatTemplate& chat_template() const { return *chat_template_; }
    bool chat_template_is_fallback() const { return chat_template_fallback_; }
    // Text of the BOS / EOS tokens, as chat templates receive them.
    std::string token_text(int32_t id) const;
    int threads() const { return pool_->size(); }
    double load_seconds() const { return load_seconds_; }
    // One line for logs: time, size, bytes per type and where they live.
    std::string load_summary() const;
    // Where every tensor lives.
    const MemoryPlan& plan() const { return plan_; }
    // The disk tier's expert cache; all zero when nothing is on disk.
    ExpertCacheStats expert_cache_stats() const {
        return cache_ ? cache_->stats() : ExpertCacheStats{};
    }
    // Its figures per [layer][expert]; empty when nothing is on disk.
    std::vector<std::vector<ExpertSliceStats>> expert_cache_layers() const {
        return cache_ ? cache_->expert_stats() : std::vector<std::vector<ExpertSliceStats>>{};
    }

    // The device that is the gpu tier ("NVIDIA ... (cuda:0), 3.2 GiB of weights"),
    // or empty when the model runs on the CPU alone.
    std::string device_summary() const;
    // What the device holds, for /metrics: its name ("cuda:0") and the bytes of
    // weights, KV caches and scratch. Empty name when there is no device.
    struct DeviceMemory {
        std::string device;
        uint64_t weights = 0, kv_cache = 0, scratch = 0;
    };
    DeviceMemory device_memory() const;

    // Whether a model file was changed in place since it was loaded (it was
    // truncated or rewritten: weights read from it may be zeros or a mix of two
    // versions). Forward passes check it and fail; the server reloads the model.
    bool file_changed() const { return file_->changed_part() != nullptr; }

    // Runs a forward pass; serialised across sessions. Fails, naming the file,
    // when the model file changed in place during or before the pass.
    Status forward(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits, float* logits);
    // Runs several sessions' tokens in one pass (see `Model::forward_batch`).
    Status forward_batch(std::span<const SeqBatch> seqs);

  private:
    Engine() = default;
    // An error the disk tier met while the last pass read experts, once.
    Status cache_error();
    // An error naming the model file when it changed in place, else the pass's own status.
    Status check_pass(Status pass) const;
    // Plans placement, logs it, copies host-tier weights out of the mapping
    // (unless `mmap`), and backs disk-tier experts with the cache.
    Status place(const EngineOptions& options);
    // Copies every tensor read from host memory whole (no expert on disk, none
    // uploaded to a device) into `host_weights_` and points the model at it.
    Status copy_host_weights(const EngineOptions& options);
    std::unique_ptr<gguf::File> file_;
    std::unique_ptr<Model> model_;
    MemoryPlan plan_;
    // Copies of the host-tier weights (see PlacementOptions::mmap), and which
    // file tensors they are.
    HugeBuffer host_weights_;
    std::unordered_set<std::string> copied_;
    std::unique_ptr<ExpertCache> cache_;
    std::vector<std::unique_ptr<TieredExperts>> tiered_;
    std::unique_ptr<ThreadPool> pool_;
    // The gpu tier, when there is a device: its backend and the model's pass on it.
    std::unique_ptr<ops::Backend> backend_;
    std::unique_ptr<DeviceModel> device_model_;
    std::optional<text::Tokenizer> tokenizer_;
    std::optional<text::ChatTemplate> chat_template_;
    bool chat_template_fallback_ = false;
    std::mutex forward_mu_;
    double load_seconds_ = 0;
};

class Session {
  public:
    // A timeline of up to `n_ctx` tokens (the model's training context when 0).
    // An error, saying how much memory the KV cache needs, when the machine does
    // not have it.
    static Result<std::unique_ptr<Session>> create(Engine& engine, int64_t n_ctx, KvType kv_type);

    Engine& engine() const { return engine_; }
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

    // The pieces of `set_prompt` and `append` for the scheduler, which evaluates
    // many sessions in one batched pass. `keep_prefix` trims the timeline to its
    // longest common prefix with `prompt` (all of it but the last token at most,
    // whose logits are wanted) and returns that length; `batch` describes
    // evaluating `tokens` next, into `logits()` when `want_logits`; `advance`
    // records them once that pass has run.
    Result<int64_t> keep_prefix(std::span<const int32_t> prompt);
    SeqBatch batch(std::span<const int32_t> tokens, bool want_logits);
    void advance(std::span<const int32_t> tokens);
    uint64_t cache_bytes() const { return cache_->bytes(); }

  private:
    Session(Engine& engine, std::unique_ptr<KvCache> cache);
    Status evaluate(std::span<const int32_t> tokens, int64_t n_batch);

    Engine& engine_;
    std::unique_ptr<KvCache> cache_;
    std::vector<int32_t> tokens_;
    std::vector<float> logits_;
    int64_t n_reused_ = 0;
};

}  // namespace strata
