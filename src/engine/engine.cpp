#include "engine/engine.h"

#include "model/info.h"
#include "ops/cpu/dot.h"
#include "tensor/repack.h"
#include "util/check.h"
#include "util/format.h"
#include "util/meminfo.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>
#include <unordered_map>

namespace strata {

namespace {

// Threads that read disk-tier experts ahead of need. Two keep a request queued at
// the device while one finishes; they sleep in `pread`, so they take no compute.
constexpr int kExpertIoThreads = 2;

// Host-tier (and gpu-tier, with no GPU backend) tensors stay in the file's
// mapping rather than being copied into owned memory: the pages are shared with
// the page cache (no second copy while the kernel still holds the file's), with
// other processes mapping the same model, and loading costs only the disk read.
// The price is that the kernel may drop them under memory pressure; a budget
// that cannot hold them is exactly what `--fit` and the disk tier are for.
//
// Prefetch touches every page of every range not on disk so the weights are
// resident before the first token; with the kernel's read-ahead asked for first,
// this streams the file at disk speed instead of faulting page by page during
// decode. Disk-tier experts are never touched through the mapping.
struct Range {
    const uint8_t* data;
    uint64_t n_bytes;
};

std::vector<Range> resident_ranges(const gguf::File& f, const MemoryPlan& plan,
                                   const std::unordered_set<std::string>& copied) {
    std::vector<Range> out;
    for (const gguf::TensorInfo& t : f.tensors()) {
        if (copied.count(t.name)) continue;  // read in whole by the copy
        const TensorPlacement* tp = plan.find(t.name);
        if (!tp || !tp->stacked()) {
            if (!tp || tp->tier != Tier::Disk) out.push_back({t.data, t.n_bytes});
            continue;
        }
        for (size_t e = 0; e < tp->experts.size(); ++e) {
            if (tp->experts[e] != Tier::Disk)
                out.push_back({t.data + e * tp->expert_bytes(), tp->expert_bytes()});
        }
    }
    return out;
}

void prefetch(const std::vector<Range>& ranges, const LoadProgressFn& progress) {
    uint64_t total = 0, done = 0, reported = 0;
    for (const Range& r : ranges) total += r.n_bytes;
    constexpr uintptr_t kPage = 4096;
    volatile uint8_t sink = 0;
    for (const Range& r : ranges) {
        const auto begin = reinterpret_cast<uintptr_t>(r.data) & ~(kPage - 1);
        ::madvise(reinterpret_cast<void*>(begin),
                  reinterpret_cast<uintptr_t>(r.data) + r.n_bytes - begin, MADV_WILLNEED);
        for (uint64_t off = 0; off < r.n_bytes; off += kPage) sink = sink + r.data[off];
        done += r.n_bytes;
        if (progress && (done - reported >= (64ull << 20) || done == total)) {
            progress(done, total);
            reported = done;
        }
    }
}

// One line per tensor that leaves the default tier, then one per tier.
void log_plan(const MemoryPlan& plan, const LogFn& log) {
    for (const TensorPlacement& tp : plan.tensors) {
        if (tp.tier == plan.default_tier &&
            (!tp.stacked() || tp.bytes_in(plan.default_tier) == tp.n_bytes))
            continue;
        std::string where = tier_name(tp.tier);
        if (tp.stacked() && tp.bytes_in(tp.tier) != tp.n_bytes) {
            where.clear();
            for (Tier t : kTiers) {
                const auto n = std::count(tp.experts.begin(), tp.experts.end(), t);
                if (n)
                    where +=
                        fmt::format("{}{} experts {}", where.empty() ? "" : ", ", n, tier_name(t));
            }
        }
        log(fmt::format("placement: {} {} {} -> {} ({})", tp.name, format_bytes(tp.n_bytes),
                        tp.type, where, tp.rule));
    }
    for (Tier t : kTiers) {
        const uint64_t w = plan.weight_bytes(t);
        std::string extra;
        if (t == plan.default_tier)
            extra += fmt::format(" + KV cache {} + scratch {}", format_bytes(plan.kv_bytes),
                                 format_bytes(plan.scratch_bytes));
        if (t == Tier::Host && plan.cache_bytes)
            extra += fmt::format(" + expert cache {}", format_bytes(plan.cache_bytes));
        if (w || !extra.empty())
            log(fmt::format("placement: {:<4} {} of weights{}", tier_name(t), format_bytes(w),
                            extra));
    }
}

// The backend `device` names ("auto", "none", "cpu", "cuda:N"); null for none.
Result<std::unique_ptr<ops::Backend>> open_device(const std::string& device, ThreadPool& pool) {
    if (device == "none") return std::unique_ptr<ops::Backend>();
    if (device == "cpu") return ops::make_cpu_backend(pool);
    if (device == "auto") {
        if (ops::cuda_device_count() == 0) return std::unique_ptr<ops::Backend>();
        return ops::make_cuda_backend(0);
    }
    int index = -1;
    if (device.rfind("cuda:", 0) == 0 && device.size() > 5 && device.size() < 9 &&
        device.find_first_not_of("0123456789", 5) == std::string::npos) {
        index = std::stoi(device.substr(5));
    }
    if (index < 0) return err("--device '{}': expected auto, none, cpu or cuda:N", device);
    const int n = ops::cuda_device_count();
    if (index >= n) {
        return err("--device {}: {}", device,
                   n == 0 ? ops::cuda_status()
                          : fmt::format("there are {} CUDA devices (cuda:0 to cuda:{})", n, n - 1));
    }
    return ops::make_cuda_backend(index);
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::load(const std::string& path,
                                             const EngineOptions& options) {
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
    e->pool_ =
        std::make_unique<ThreadPool>(options.threads > 0 ? options.threads : physical_core_count());
    STRATA_TRY(e->place(options));
    if (options.prefetch)
        prefetch(resident_ranges(*e->file_, e->plan_, e->copied_), options.progress);
    e->load_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return e;
}

Status Engine::place(const EngineOptions& options) {
    PlacementOptions opt = options.placement;
    if (opt.fit && !opt.ram_budget) opt.ram_budget = available_memory();
    auto backend = open_device(opt.device, *pool_);
    if (!backend) return backend.error();
    backend_ = std::move(*backend);
    if (backend_) {
        // The device's free memory is the gpu tier's budget unless one was given.
        opt.has_gpu = true;
        if (opt.fit && !opt.gpu_mem) opt.gpu_mem = backend_->info().free_bytes;
    }
    auto plan = plan_memory(*file_, opt, options.memory);
    if (!plan) return err("{}: {}", file_->path(), plan.error().message);
    if (!plan->fits())
        return err("{}: the placement does not fit: {}", file_->path(),
                   fmt::join(plan->problems, "; "));
    plan_ = std::move(*plan);
    if (options.log) {
        log_plan(plan_, options.log);
        if (!backend_ && plan_.weight_bytes(Tier::Gpu) > 0)
            options.log(
                "placement: no GPU device is in use; gpu-tier tensors run from host memory");
    }

    if (!opt.mmap) STRATA_TRY(copy_host_weights(options));

    // Stacked tensors with experts on disk read them through the cache.
    if (plan_.cache_bytes > 0) {
        const HParams& hp = model_->hparams();
        cache_ = std::make_unique<ExpertCache>(plan_.cache_bytes, static_cast<int>(hp.n_layer),
                                               static_cast<int>(hp.n_expert), kExpertIoThreads);
    }
    for (size_t i = 0; i < plan_.tensors.size(); ++i) {
        const TensorPlacement& tp = plan_.tensors[i];
        if (!tp.stacked() || tp.bytes_in(Tier::Disk) == 0) continue;
        const gguf::TensorInfo* t = file_->find_tensor(tp.name);
        CHECK(t && cache_, "a planned disk tensor is in the file and has a cache");
        tiered_.push_back(std::make_unique<TieredExperts>(TieredExperts::Params{
            .cache = cache_.get(),
            .key_base = uint64_t{i} << 32,
            .name = tp.name,
            .layer = tp.layer,
            .mapped = t->data,
            .fd = file_->part_fd(t->file_index),
            .file_offset = t->file_offset,
            .expert_bytes = tp.expert_bytes(),
            .tiers = tp.experts,
        }));
        if (!model_->attach_experts(tp.name, tiered_.back().get()))
            return err(
                "{}: tensor '{}' is placed on disk but the model does not read it as stacked "
                "experts",
                file_->path(), tp.name);
    }
    if (backend_) {
        auto dm = DeviceModel::create(*model_, plan_, *backend_, *pool_);
        if (!dm) return err("{}: {}", file_->path(), dm.error().message);
        device_model_ = std::move(*dm);
        if (options.log) options.log("device: " + device_summary());
    }
    return {};
}

Status Engine::copy_host_weights(const EngineOptions& options) {
    // Each copy starts on a cache line, as a tensor in the file does.
    constexpr uint64_t kAlign = 64;
    std::vector<const gguf::TensorInfo*> chosen;
    uint64_t total = 0;
    for (const TensorPlacement& tp : plan_.tensors) {
        if (tp.bytes_in(Tier::Disk) > 0 || (backend_ && tp.bytes_in(Tier::Gpu) > 0)) continue;
        const gguf::TensorInfo* t = file_->find_tensor(tp.name);
        if (!t || t->n_bytes == 0) continue;
        chosen.push_back(t);
        total += (t->n_bytes + kAlign - 1) / kAlign * kAlign;
    }
    if (chosen.empty()) return {};
    auto buf = HugeBuffer::allocate(total);
    if (!buf) return err("{}: {} (--mmap reads them in place instead)", file_->path(), buf.error().message);
    host_weights_ = std::move(*buf);

    // Pieces of at most 16 MiB, read by the pool's threads a batch at a time
    // with `pread`, which copies from the page cache without faulting the
    // mapping's pages in one by one; progress is reported between batches.
    // Where the kernels read a type faster in one of strata's own layouts, each
    // piece is whole rows, repacked while they are still in cache.
    const ops::DotKernels& kernels = ops::dot_kernels();
    struct Piece {
        const gguf::TensorInfo* t;
        uint64_t off, n;
        uint8_t* to;
        std::optional<TensorType> repack;
        uint64_t row_bytes;
    };
    constexpr uint64_t kPiece = uint64_t{16} << 20;
    std::vector<Piece> pieces;
    std::unordered_map<const uint8_t*, Model::MovedWeights> moved;
    uint64_t at = 0, repacked = 0;
    for (const gguf::TensorInfo* t : chosen) {
        uint8_t* dst = host_weights_.data() + at;
        const std::optional<TensorType> to = kernels.repacked[static_cast<size_t>(t->type)];
        // Rows are far smaller than a piece for every type that is repacked.
        const Result<uint64_t> rb = type_bytes(t->type, t->ne[0]);
        const uint64_t row_bytes = to && rb ? *rb : 0;
        // Row-interleaved layouts take whole groups of each matrix's rows.
        const auto group = static_cast<uint64_t>(to ? type_traits(*to).row_group : 1);
        const bool repack = to && row_bytes > 0 && row_bytes * group <= kPiece &&
                            t->n_bytes % row_bytes == 0 && static_cast<uint64_t>(t->ne[1]) % group == 0;
        const uint64_t piece = repack ? kPiece / (row_bytes * group) * (row_bytes * group) : kPiece;
        for (uint64_t off = 0; off < t->n_bytes; off += piece) {
            pieces.push_back({t, off, std::min(piece, t->n_bytes - off), dst + off,
                              repack ? to : std::nullopt, row_bytes});
        }
        moved[t->data] = {dst, repack ? *to : t->type};
        if (repack) repacked += t->n_bytes;
        copied_.insert(t->name);
        at += (t->n_bytes + kAlign - 1) / kAlign * kAlign;
    }
    std::atomic<const gguf::TensorInfo*> short_read{nullptr};
    auto read_piece = [&](const Piece& p) {
        const int fd = file_->part_fd(p.t->file_index);
        if (fd < 0) {  // bytes without a file (see MappedFile::borrow)
            std::memcpy(p.to, p.t->data + p.off, p.n);
        } else {
            for (uint64_t done = 0; done < p.n;) {
                const ssize_t got = ::pread(fd, p.to + done, p.n - done,
                                            static_cast<off_t>(p.t->file_offset + p.off + done));
                if (got < 0 && errno == EINTR) continue;
                if (got <= 0) {
                    short_read = p.t;
                    return;
                }
                done += static_cast<uint64_t>(got);
            }
            // The page cache's copy of these bytes is not read again: dropping it
            // as the copy goes leaves free memory for the copy's huge pages, which
            // the kernel otherwise has to reclaim and compact for one by one.
            ::posix_fadvise(fd, static_cast<off_t>(p.t->file_offset + p.off),
                            static_cast<off_t>(p.n), POSIX_FADV_DONTNEED);
        }
        if (p.repack) {
            repack_rows(*p.repack, p.to, static_cast<int64_t>(p.n / p.row_bytes),
                        static_cast<int64_t>(p.t->ne[0]), p.row_bytes);
        }
    };
    constexpr size_t kBatch = 16;
    uint64_t done = 0;
    for (size_t b = 0; b < pieces.size(); b += kBatch) {
        const size_t n = std::min(kBatch, pieces.size() - b);
        pool_->for_each_dynamic(static_cast<int64_t>(n),
                                [&](int64_t i) { read_piece(pieces[b + static_cast<size_t>(i)]); });
        for (size_t i = b; i < b + n; ++i) done += pieces[i].n;
        if (options.progress) options.progress(done, total);
    }
    if (const gguf::TensorInfo* t = short_read.load())
        return err("{}: tensor '{}' could not be read whole (the file is shorter than its header "
                   "says, or changed while loading)",
                   file_->path(), t->name);
    if (const std::string* part = file_->changed_part())
        return err("{}: the file changed while its weights were read", *part);
    model_->move_weights(moved);
    if (options.log)
        options.log(fmt::format("weights: {} of host-tier weights copied into RAM (huge pages asked for; "
                                "--mmap reads them in place){}",
                                format_bytes(done),
                                repacked ? fmt::format(", {} of them repacked for the {} kernels",
                                                       format_bytes(repacked), kernels.isa)
                                         : std::string()));
    return {};
}

std::string Engine::device_summary() const {
    if (!device_model_) return {};
    const ops::DeviceInfo d = backend_->info();
    return fmt::format("{} ({}:{}), {} of weights uploaded, {} free of {}", d.name, d.backend,
                       d.index, format_bytes(device_model_->weight_bytes()),
                       format_bytes(d.free_bytes), format_bytes(d.total_bytes));
}

Engine::DeviceMemory Engine::device_memory() const {
    if (!device_model_) return {};
    const ops::DeviceInfo d = backend_->info();
    return {.device = fmt::format("{}:{}", d.backend, d.index),
            .weights = device_model_->weight_bytes(),
            .kv_cache = device_model_->kv_bytes(),
            .scratch = device_model_->scratch_bytes()};
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
    std::string tiers;
    for (Tier t : kTiers) {
        if (const uint64_t n = plan_.weight_bytes(t))
            tiers +=
                fmt::format("{}{} {}", tiers.empty() ? "" : ", ", tier_name(t), format_bytes(n));
    }
    return fmt::format(
        "loaded {} ({}) in {:.2f} s: {} tensors, {} ({}); weights by tier: {}; {} threads, {} "
        "kernels",
        info.name.empty() ? info.architecture : info.name, info.architecture, load_seconds_,
        info.n_tensors, format_bytes(info.expert_bytes + info.other_bytes), types, tiers, threads(),
        ops::dot_kernels().isa);
}

Status Engine::forward(std::span<const int32_t> tokens, int64_t pos0, KvCache& cache,
                       bool all_logits, float* logits) {
    std::lock_guard<std::mutex> lock(forward_mu_);
    Status st;
    if (device_model_) {
        const SeqBatch one{.tokens = tokens,
                           .pos0 = pos0,
                           .cache = &cache,
                           .logits = logits,
                           .all_logits = all_logits};
        st = device_model_->forward_batch({&one, 1});
    } else {
        st = model_->forward(tokens, pos0, cache, all_logits, logits, *pool_);
    }
    return check_pass(st ? cache_error() : st);
}

Status Engine::forward_batch(std::span<const SeqBatch> seqs) {
    std::lock_guard<std::mutex> lock(forward_mu_);
    Status st = device_model_ ? device_model_->forward_batch(seqs)
                              : model_->forward_batch(seqs, *pool_);
    return check_pass(st ? cache_error() : st);
}

Status Engine::check_pass(Status pass) const {
    // After the pass, not before: a truncation during it is what must not reach
    // the client. Checked even when the pass failed, since zeros or a torn read
    // may be why it did.
    if (const std::string* path = file_->changed_part())
        return err("model file {} changed on disk while loaded; it will be reloaded on next use", *path);
    return pass;
}

Status Engine::cache_error() {
    if (cache_) {
        if (std::string e = cache_->take_error(); !e.empty()) return err("{}", e);
    }
    return {};
}

Result<std::unique_ptr<Session>> Session::create(Engine& engine, int64_t n_ctx, KvType kv_type) {
    const HParams& hp = engine.hparams();
    const int64_t ctx =
        std::max<int64_t>(1, n_ctx > 0 ? n_ctx : static_cast<int64_t>(hp.n_ctx_train));
    const uint64_t need = kv_cache_bytes(hp, ctx, kv_type);
    if (auto avail = available_memory(); avail && need > *avail) {
        return err(
            "a KV cache of {} tokens needs {} but only {} of memory is available; use a smaller "
            "context",
            ctx, format_bytes(need), format_bytes(*avail));
    }
    try {
        return std::unique_ptr<Session>(
            new Session(engine, engine.model().new_cache(ctx, kv_type)));
    } catch (const std::bad_alloc&) {
        return err("cannot allocate a KV cache of {} tokens ({})", ctx, format_bytes(need));
    }
}

Session::Session(Engine& engine, std::unique_ptr<KvCache> cache)
    : engine_(engine), cache_(std::move(cache)) {
    logits_.resize(engine.hparams().n_vocab);
}

Status Session::evaluate(std::span<const int32_t> tokens, int64_t n_batch) {
    for (size_t done = 0; done < tokens.size();) {
        const size_t n =
            std::min(tokens.size() - done, static_cast<size_t>(std::max<int64_t>(1, n_batch)));
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
        return err("the prompt is {} tokens, longer than the context of {}", prompt.size(),
                   n_ctx());
    }
    size_t common = 0;
    while (common < tokens_.size() && common < prompt.size() && tokens_[common] == prompt[common])
        ++common;
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

void Session::advance(std::span<const int32_t> tokens) {
    tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
}

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
