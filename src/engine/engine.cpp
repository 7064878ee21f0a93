#include "engine/engine.h"

#include <algorithm>
#include <chrono>

namespace strata {

Result<std::unique_ptr<Engine>> Engine::load(const std::string& path, const EngineOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    auto file = gguf::File::open(path);
    if (!file) return file.error();
    std::unique_ptr<Engine> e(new Engine());
    e->file_ = std::make_unique<gguf::File>(std::move(*file));
    auto model = Model::load(*e->file_);
    if (!model) return model.error();
    e->model_ = std::move(*model);
    e->pool_ = std::make_unique<ThreadPool>(options.threads > 0 ? options.threads : physical_core_count());
    e->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return e;
}

Status Engine::forward(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits,
                       float* logits) {
    std::lock_guard<std::mutex> lock(forward_mu_);
    return model_->forward(tokens, pos0, cache, all_logits, logits, *pool_);
}

Session::Session(Engine& engine, int64_t n_ctx, KvType kv_type) : engine_(engine) {
    const int64_t ctx = n_ctx > 0 ? n_ctx : static_cast<int64_t>(engine.hparams().n_ctx_train);
    cache_ = engine.model().new_cache(std::max<int64_t>(ctx, 1), kv_type);
    logits_.resize(engine.hparams().n_vocab);
}

Status Session::evaluate(std::span<const int32_t> tokens, int64_t n_batch) {
    for (size_t done = 0; done < tokens.size();) {
        const size_t n = std::min(tokens.size() - done, static_cast<size_t>(std::max<int64_t>(1, n_batch)));
        const auto chunk = tokens.subspan(done, n);
        STRATA_TRY(engine_.forward(chunk, static_cast<int64_t>(tokens_.size()), *cache_, false, logits_.data()));
        tokens_.insert(tokens_.end(), chunk.begin(), chunk.end());
        done += n;
    }
    return {};
}

Status Session::set_prompt(std::span<const int32_t> prompt, int64_t n_batch) {
    if (prompt.empty()) return err("the prompt is empty");
    if (static_cast<int64_t>(prompt.size()) > n_ctx()) {
        return err("the prompt is {} tokens, longer than the context of {}", prompt.size(), n_ctx());
    }
    size_t common = 0;
    while (common < tokens_.size() && common < prompt.size() && tokens_[common] == prompt[common]) ++common;
    // The last prompt token is always recomputed: its logits are the ones wanted.
    common = std::min(common, prompt.size() - 1);
    tokens_.resize(common);
    n_reused_ = static_cast<int64_t>(common);
    return evaluate(prompt.subspan(common), n_batch);
}

Status Session::append(int32_t token) {
    if (static_cast<int64_t>(tokens_.size()) >= n_ctx()) {
        return err("the context of {} tokens is full", n_ctx());
    }
    const int32_t one[1] = {token};
    return evaluate(one, 1);
}

}  // namespace strata
