#include "app/server/registry.h"

#include "gguf/file.h"
#include "model/info.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>

#include <sys/stat.h>

namespace strata::app::server {
namespace {

namespace fs = std::filesystem;

// `X-00001-of-00003.gguf`: part 1 of 3 of model `X`.
const std::regex& split_re() {
    static const std::regex re(R"(^(.*)-(\d{5})-of-(\d{5})\.gguf$)");
    return re;
}

// llama.cpp's names for `general.file_type` (enum `llama_ftype`), which say how
// a whole file was quantised; gaps are retired values.
std::string file_type_name(int64_t ft) {
    static const char* const names[] = {
        "F32",     "F16",     "Q4_0",   "Q4_1",    nullptr,  nullptr,   nullptr,  "Q8_0",
        "Q5_0",    "Q5_1",    "Q2_K",   "Q3_K_S",  "Q3_K_M", "Q3_K_L",  "Q4_K_S", "Q4_K_M",
        "Q5_K_S",  "Q5_K_M",  "Q6_K",   "IQ2_XXS", "IQ2_XS", "Q2_K_S",  "IQ3_XS", "IQ3_XXS",
        "IQ1_S",   "IQ4_NL",  "IQ3_S",  "IQ3_M",   "IQ2_S",  "IQ2_M",   "IQ4_XS", "IQ1_M",
        "BF16",    nullptr,   nullptr,  nullptr,   "TQ1_0",  "TQ2_0",   "MXFP4_MOE"};
    if (ft < 0 || ft >= static_cast<int64_t>(std::size(names)) || !names[ft]) return {};
    return names[ft];
}

Result<ModelInfo> read_info(const std::string& path, const std::string& name) {
    auto f = gguf::File::open(path);
    if (!f) return f.error();
    ModelInfo m;
    m.path = path;
    const std::string file = fs::path(path).filename().string();
    std::smatch sm;
    m.name = !name.empty()                              ? name
             : std::regex_match(file, sm, split_re()) ? sm[1].str()
                                                      : fs::path(path).stem().string();
    m.size = f->file_size();
    // `stat` rather than `fs::last_write_time`: libstdc++ 12 lacks `clock_cast` to
    // turn a file time into a calendar time.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) m.modified = st.st_mtime;
    if (auto a = f->get_string("general.architecture")) m.arch = std::string(*a);
    for (const auto& ti : f->tensors()) m.n_params += ti.n_elements;
    if (auto ft = f->find_int("general.file_type"); ft && *ft) m.quant = file_type_name(**ft);
    if (m.quant.empty()) {
        const auto described = describe_model(*f);
        if (!described.by_type.empty()) m.quant = described.by_type.front().type;
    }
    if (!m.arch.empty())
        if (auto n = f->find_int(m.arch + ".context_length"); n && *n) m.n_ctx_train = **n;
    return m;
}

// The identity of the file at `path` now; nullopt when it cannot be read.
std::optional<ModelRegistry::FileId> file_id(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return ModelRegistry::FileId{.dev = static_cast<uint64_t>(st.st_dev),
                                 .ino = static_cast<uint64_t>(st.st_ino),
                                 .size = static_cast<uint64_t>(st.st_size),
                                 .mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

}  // namespace

Status ModelRegistry::add_file(const std::string& path, const std::string& name) {
    auto info = read_info(path, name);
    if (!info) return info.error();
    if (const ModelInfo* other = find(info->name))
        return err("model name '{}' of {} is taken by {}", info->name, path, other->path);
    auto e = std::make_unique<Entry>();
    e->info = std::move(*info);
    entries_.push_back(std::move(e));
    return {};
}

Status ModelRegistry::add_dir(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return err("--model-dir '{}': not a directory", dir);
    std::vector<std::string> files;
    for (const auto& de : fs::directory_iterator(dir, ec)) {
        if (!de.is_regular_file(ec) || de.path().extension() != ".gguf") continue;
        const std::string file = de.path().filename().string();
        std::smatch sm;
        // Later parts of a split set are opened through the first.
        if (std::regex_match(file, sm, split_re()) && sm[2].str() != "00001") continue;
        files.push_back(de.path().string());
    }
    if (ec) return err("--model-dir '{}': {}", dir, ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
        if (Status s = add_file(f); !s) fmt::print(stderr, "warning: skipping {}: {}\n", f, s.error().message);
    return {};
}

std::vector<const ModelInfo*> ModelRegistry::list() const {
    std::vector<const ModelInfo*> out;
    for (const auto& e : entries_) out.push_back(&e->info);
    return out;
}

const ModelInfo* ModelRegistry::find(std::string_view name) const {
    for (const auto& e : entries_)
        if (e->info.name == name) return &e->info;
    if (!name.ends_with(":latest")) return nullptr;
    name.remove_suffix(7);
    for (const auto& e : entries_)
        if (e->info.name == name) return &e->info;
    return nullptr;
}

std::string ModelRegistry::names() const {
    std::string s;
    for (const auto& e : entries_) s += (s.empty() ? "" : ", ") + e->info.name;
    return s.empty() ? "(none)" : s;
}

ModelRegistry::Entry* ModelRegistry::entry(const ModelInfo& model) const {
    for (const auto& e : entries_)
        if (&e->info == &model) return e.get();
    return nullptr;
}

Result<ModelRegistry::Loaded> ModelRegistry::get(const ModelInfo& model) {
    Entry* e = entry(model);
    if (!e) return err("model '{}' is not registered", model.name);
    // A file that cannot be read now (being replaced, say) leaves a loaded copy
    // serving: its mapping stays valid.
    auto current = [&]() -> std::optional<Loaded> {
        const auto id = file_id(e->info.path);
        std::lock_guard lock(mu_);
        if (!e->model || (id && *id != e->loaded_id)) return std::nullopt;
        // Changed in place and put back as it was (even its mtime): the mapping
        // may still hold zeros where a read fell past a truncated end.
        if (e->model->engine->file_changed()) return std::nullopt;
        e->last_used = ++uses_;
        return Loaded{.model = e->model};
    };
    if (auto l = current()) return *l;
    std::lock_guard load_lock(e->load_mu);
    if (auto l = current()) return *l;  // loaded by another request while this one waited

    const auto before = file_id(e->info.path);
    if (!before) return err("model '{}': cannot read {}", e->info.name, e->info.path);
    {
        std::lock_guard lock(mu_);
        if (e->failed_id == before)
            return err("loading model '{}' failed (tried again once the file changes): {}", e->info.name,
                       e->failed_error);
        if (e->model) fmt::print(stderr, "{}: {} changed on disk; loading it again\n", e->info.name, e->info.path);
    }
    // Make room first, so the memory of what is unloaded is free for this load.
    if (options_.max_loaded > 0) {
        std::vector<std::shared_ptr<LoadedModel>> unloaded;
        {
            std::lock_guard lock(mu_);
            unloaded = evict_to(options_.max_loaded);
        }
        unloaded.clear();  // joins their schedulers and unmaps their files, outside `mu_`
    }
    const auto t0 = std::chrono::steady_clock::now();
    load_attempts_.fetch_add(1);
    EngineOptions eo = options_.engine;
    SchedulerOptions so = options_.scheduler;
    if (so.n_ctx <= 0) so.n_ctx = e->info.n_ctx_train > 0 ? e->info.n_ctx_train : 4096;
    if (options_.cap_ctx_at_training && e->info.n_ctx_train > 0) so.n_ctx = std::min(so.n_ctx, e->info.n_ctx_train);
    eo.memory.n_ctx = so.n_ctx;
    auto engine = Engine::load(e->info.path, eo);
    // A file that changed while it was read may mix two versions: load it again
    // on the next request rather than serve it.
    if (engine && file_id(e->info.path) != before)
        return err("model '{}': {} changed while it was loading; try again", e->info.name, e->info.path);
    if (!engine) {
        std::lock_guard lock(mu_);
        e->failed_id = before;
        e->failed_error = engine.error().message;
        return err("loading model '{}': {}", e->info.name, engine.error().message);
    }
    auto loaded = std::make_shared<LoadedModel>();
    loaded->engine = std::move(*engine);
    loaded->scheduler = std::make_unique<Scheduler>(*loaded->engine, so);
    fmt::print(stderr, "{}: {}\n", e->info.name, loaded->engine->load_summary());
    std::shared_ptr<LoadedModel> replaced;  // freed outside `mu_` once no request holds it
    std::lock_guard lock(mu_);
    replaced = std::move(e->model);
    e->model = loaded;
    e->loaded_id = *before;
    e->failed_id.reset();
    e->last_used = ++uses_;
    return Loaded{.model = std::move(loaded),
                  .load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

std::vector<std::shared_ptr<LoadedModel>> ModelRegistry::evict_to(int limit) {
    std::vector<std::shared_ptr<LoadedModel>> out;
    while (true) {
        int n_loaded = 0;
        Entry* lru = nullptr;
        for (const auto& e : entries_) {
            if (!e->model) continue;
            ++n_loaded;
            // Held by a request (its `Loaded`) when anyone but the registry has it.
            if (e->model.use_count() == 1 && (!lru || e->last_used < lru->last_used)) lru = e.get();
        }
        if (n_loaded < limit || !lru) return out;
        fmt::print(stderr, "{}: unloaded (least recently used of {} loaded, --max-loaded {})\n", lru->info.name,
                   n_loaded, limit);
        out.push_back(std::move(lru->model));
        lru->model.reset();
    }
}

std::shared_ptr<LoadedModel> ModelRegistry::loaded(const ModelInfo& model) const {
    const Entry* e = entry(model);
    if (!e) return nullptr;
    std::lock_guard lock(mu_);
    return e->model;
}

std::vector<std::pair<const ModelInfo*, std::shared_ptr<LoadedModel>>> ModelRegistry::loaded_models() const {
    std::vector<std::pair<const ModelInfo*, std::shared_ptr<LoadedModel>>> out;
    std::vector<uint64_t> used;
    {
        std::lock_guard lock(mu_);
        for (const auto& e : entries_) {
            if (!e->model) continue;
            out.emplace_back(&e->info, e->model);
            used.push_back(e->last_used);
        }
    }
    std::vector<size_t> order(out.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return used[a] > used[b]; });
    std::vector<std::pair<const ModelInfo*, std::shared_ptr<LoadedModel>>> sorted;
    for (size_t i : order) sorted.push_back(std::move(out[i]));
    return sorted;
}

}  // namespace strata::app::server
