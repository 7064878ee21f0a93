#pragma once
// `ModelRegistry`: the models a server offers, by name, and the engines (with
// their schedulers) of those loaded. Names are file stems (`stories260K` for
// `stories260K.gguf`; a split set `X-00001-of-00003.gguf` is the one model `X`).
// The list is fixed when the server starts, so lookups need no lock; each model
// loads on first use under its own mutex (other models stay usable meanwhile).
// With `max_loaded`, loading one more model first unloads the least recently used
// one that no request holds; a request holds its model through the
// `shared_ptr<LoadedModel>` it got, so a model in use is never freed under it.
//
// Each use compares the file's identity (device, inode, size, modification time)
// with the one loaded: a file replaced on disk is loaded again, whole and fully
// validated, and the old copy stays with the requests that hold it until they
// end. A file changed in place (truncated, rewritten) fails the requests running
// on it (see `Engine::file_changed`) and is loaded again likewise. A load that
// fails is remembered with the identity of the file it read: later requests get
// the same error at once, until the file changes.

#include "engine/engine.h"
#include "engine/scheduler.h"
#include "util/result.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::app::server {

struct ModelInfo {
    std::string name;
    std::string path;       // the file, or the first part of a split set
    uint64_t size = 0;      // bytes, all parts together
    int64_t modified = 0;   // seconds since the epoch
    std::string arch;       // `general.architecture`
    std::string quant;      // `general.file_type` by name ("Q4_K_M"), else the type with the most bytes
    uint64_t n_params = 0;  // elements of all tensors
    int64_t n_ctx_train = 0;
};

// One loaded model: its weights and the scheduler that runs its requests
// (declared after the engine, so it stops before the engine goes).
struct LoadedModel {
    std::unique_ptr<Engine> engine;
    std::unique_ptr<Scheduler> scheduler;
};

struct RegistryOptions {
    EngineOptions engine;
    SchedulerOptions scheduler;  // `n_ctx` 0: each model's training context (4096 when unknown)
    int max_loaded = 0;          // models kept loaded at once; 0: no limit
    // Cap `n_ctx` at each model's training context (when the file gives it).
    bool cap_ctx_at_training = false;
};

class ModelRegistry {
public:
    explicit ModelRegistry(RegistryOptions options) : options_(std::move(options)) {}

    // Adds one GGUF file, named `name` or else by its stem; an error when it
    // cannot be read or its name is taken.
    Status add_file(const std::string& path, const std::string& name = {});
    // Adds every *.gguf in `dir` (not recursive); unreadable files are skipped
    // with a warning on stderr, so one bad download does not stop the server.
    Status add_dir(const std::string& dir);

    std::vector<const ModelInfo*> list() const;
    // An exact match first, else Ollama's tagged form `name:latest` for `name`.
    const ModelInfo* find(std::string_view name) const;
    // "a, b, c", for errors that list what exists.
    std::string names() const;

    struct Loaded {
        std::shared_ptr<LoadedModel> model;  // held: the model stays loaded while this lives
        double load_seconds = 0;  // time this call spent loading; 0 when it was loaded already
    };
    // The model, loading it (and unloading the least recently used idle one past
    // `max_loaded`) when it is not loaded.
    Result<Loaded> get(const ModelInfo& model);
    // The model when loaded, else null; does not count as a use.
    std::shared_ptr<LoadedModel> loaded(const ModelInfo& model) const;
    // Loaded models, most recently used first.
    std::vector<std::pair<const ModelInfo*, std::shared_ptr<LoadedModel>>> loaded_models() const;
    // Loads tried since the start, failed or not.
    uint64_t load_attempts() const { return load_attempts_.load(); }

    // What identifies one version of a file on disk.
    struct FileId {
        uint64_t dev = 0, ino = 0, size = 0;
        int64_t mtime_ns = 0;
        bool operator==(const FileId&) const = default;
    };

private:
    struct Entry {
        ModelInfo info;
        std::mutex load_mu;  // one load at a time per model
        std::shared_ptr<LoadedModel> model;  // under the registry's `mu_`
        FileId loaded_id;                    // of `model`'s file
        std::optional<FileId> failed_id;     // the file version whose load failed ...
        std::string failed_error;            // ... and why
        uint64_t last_used = 0;
    };
    Entry* entry(const ModelInfo& model) const;
    // Takes out the least recently used models no request holds until fewer than
    // `limit` stay loaded; the caller frees them outside `mu_`.
    std::vector<std::shared_ptr<LoadedModel>> evict_to(int limit);

    RegistryOptions options_;
    std::vector<std::unique_ptr<Entry>> entries_;
    mutable std::mutex mu_;
    uint64_t uses_ = 0;
    std::atomic<uint64_t> load_attempts_{0};
};

}  // namespace strata::app::server
