#include "engine/engine.h"

#include "model/info.h"
#include "ops/cpu/dot.h"
#include "util/format.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <new>

namespace strata {

namespace {

// Touches every page of every tensor so the weights are resident before the
// first token; with the kernel's read-ahead asked for first, this streams the
// file at disk speed instead of faulting page by page during decode.
void prefetch(const gguf::File& f, const LoadProgressFn& progress) {
    uint64_t total = 0, done = 0, reported = 0;
    for (const gguf::TensorInfo& t : f.tensors()) total += t.n_bytes;
    constexpr uintptr_t kPage = 4096;
    volatile uint8_t sink = 0;
    for (const gguf::TensorInfo& t : f.tensors()) {
        const auto begin = reinterpret_cast<uintptr_t>(t.data) & ~(kPage - 1);
        ::madvise(reinterpret_cast<void*>(begin), reinterpret_cast<uintptr_t>(t.data) + t.n_bytes - begin,
                  MADV_WILLNEED);
        for (uint64_t off = 0; off < t.n_bytes; off += kPage) sink = sink + t.data[off];
        done += t.n_bytes;
        if (progress && (done - reported >= (64ull << 20) || done == total)) {
            progress(done, total);
            reported = done;
        }
    }
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::load(const std::string& path, const EngineOptions& options) {
    const auto start = std::chrono::steady_clock::now();
    auto file = gguf::File::open(path);
    if (!file) return file.error();
    std::unique_ptr<Engine> e(new Engine());
    e->file_ = std::make_unique<gguf::File>(std::move(*file));
    auto model = Model::load(*e->file_);
    if (!model) return model.error();
    e->model_ = std::move(*model);
    auto tokenizer = text::Tokenizer::load(*e->file_);
    if (!tokenizer) return tokenizer.error();
    e->tokenizer_ = std::move(*tokenizer);
    if (!options.chat_template.empty()) {
        auto tmpl = text::ChatTemplate::parse(options.chat_template);
        if (!tmpl) return err("chat template: {}", tmpl.error().message);
        e->chat_template_ = std::move(*tmpl);
    } else if (const gguf::Value* v = e->file_->find("tokenizer.chat_template");
               v && v->type == gguf::ValueType::STRING) {
        auto tmpl = text::ChatTemplate::parse(v->str);
        if (!tmpl) return err("{}: tokenizer.chat_template: {}", path, tmpl.error().message);
        e->chat_template_ = std::move(*tmpl);
    } else {
        e->chat_template_ = text::ChatTemplate::chatml();
        e->chat_template_fallback_ = true;
    }
    e->pool_ = std::make_unique<ThreadPool>(options.threads > 0 ? options.threads : physical_core_count());
    if (options.prefetch) prefetch(*e->file_, options.progress);
    e->load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return e;
}

std::string Engine::token_text(int32_t id) const {
    const text::Vocab& v = tokenizer_->vocab();
    return v.valid(id) ? v.text(id) : std::string();
}

std::string Engine::load_summary() const {
    const ModelInfo info = describe_model(*file_);
    std::string types;
    for (const TypeUsage& u : info.by_type) {
        types += fmt::format("{}{} {}", types.empty() ? "" : ", ", u.type, format_bytes(u.n_bytes));
    }
    return fmt::format(
        "loaded {} ({}) in {:.2f} s: {} tensors, {} ({}); all weights in host memory (mapped file); {} threads, {} "
        "kernels",
        info.name.empty() ? info.architecture : info.name, info.architecture, load_seconds_, info.n_tensors,
        format_bytes(info.expert_bytes + info.other_bytes), types, threads(), ops::dot_kernels().isa);
}

Status Engine::forward(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache, bool all_logits,
                       float* logits) {
    std::lock_guard<std::mutex> lock(forward_mu_);
    return model_->forward(tokens, pos0, cache, all_logits, logits, *pool_);
}

Status Engine::forward_batch(std::span<const SeqBatch> seqs) {
    std::lock_guard<std::mutex> lock(forward_mu_);
    return model_->forward_batch(seqs, *pool_);
}

namespace {

// MemAvailable from /proc/meminfo, in bytes; nullopt where it cannot be read.
std::optional<uint64_t> available_memory() {
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return std::nullopt;
    char line[256];
    std::optional<uint64_t> bytes;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long kib = 0;
        if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) bytes = uint64_t{kib} * 1024;
    }
    std::fclose(f);
    return bytes;
}

}  // namespace

Result<std::unique_ptr<Session>> Session::create(Engine& engine, int64_t n_ctx, KvType kv_type) {
    const HParams& hp = engine.hparams();
    const int64_t ctx = std::max<int64_t>(1, n_ctx > 0 ? n_ctx : static_cast<int64_t>(hp.n_ctx_train));
    const uint64_t per_token = uint64_t{hp.n_layer} * hp.n_head_kv * (hp.n_embd_head_k + hp.n_embd_head_v) *
                               (kv_type == KvType::F32 ? 4 : 2);
    const uint64_t need = per_token * static_cast<uint64_t>(ctx);
    if (auto avail = available_memory(); avail && need > *avail) {
        return err("a KV cache of {} tokens needs {} but only {} of memory is available; use a smaller context",
                   ctx, format_bytes(need), format_bytes(*avail));
    }
    try {
        return std::unique_ptr<Session>(new Session(engine, engine.model().new_cache(ctx, kv_type)));
    } catch (const std::bad_alloc&) {
        return err("cannot allocate a KV cache of {} tokens ({})", ctx, format_bytes(need));
    }
}

Session::Session(Engine& engine, std::unique_ptr<KvCache> cache) : engine_(engine), cache_(std::move(cache)) {
    logits_.resize(engine.hparams().n_vocab);
}

Status Session::evaluate(std::span<const int32_t> tokens, int64_t n_batch) {
    for (size_t done = 0; done < tokens.size();) {
        const size_t n = std::min(tokens.size() - done, static_cast<size_t>(std::max<int64_t>(1, n_batch)));
        const auto chunk = tokens.subspan(done, n);
        const SeqBatch b = batch(chunk, true);
        STRATA_TRY(engine_.forward_batch({&b, 1}));
        advance(chunk);
        done += n;
    }
    return {};
}

Result<int64_t> Session::keep_prefix(std::span<const int32_t> prompt) {
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
    return n_reused_;
}

SeqBatch Session::batch(std::span<const int32_t> tokens, bool want_logits) {
    return {.tokens = tokens,
            .pos0 = static_cast<int64_t>(tokens_.size()),
            .cache = cache_.get(),
            .logits = want_logits ? logits_.data() : nullptr};
}

void Session::advance(std::span<const int32_t> tokens) { tokens_.insert(tokens_.end(), tokens.begin(), tokens.end()); }

Status Session::set_prompt(std::span<const int32_t> prompt, int64_t n_batch) {
    auto common = keep_prefix(prompt);
    if (!common) return common.error();
    return evaluate(prompt.subspan(static_cast<size_t>(*common)), n_batch);
}

Status Session::append(int32_t token) {
    if (static_cast<int64_t>(tokens_.size()) >= n_ctx()) {
        return err("the context of {} tokens is full", n_ctx());
    }
    const int32_t one[1] = {token};
    return evaluate(one, 1);
}

}  // namespace strata
