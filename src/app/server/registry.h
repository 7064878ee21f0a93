#pragma once
// `ModelRegistry`: the models a server offers, by name, and the engines of those
// loaded so far. Names are file stems (`stories260K` for `stories260K.gguf`; a
// split set `X-00001-of-00003.gguf` is the one model `X`). The list is fixed when
// the server starts, so lookups need no lock; each model loads on first use under
// its own mutex (other models stay usable meanwhile) and stays loaded.

#include "engine/engine.h"
#include "util/result.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
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

class ModelRegistry {
public:
    explicit ModelRegistry(EngineOptions options) : options_(std::move(options)) {}

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
        Engine* engine = nullptr;
        double load_seconds = 0;  // time this call spent loading; 0 when it was loaded already
    };
    // The model's engine, loading it on first use.
    Result<Loaded> get(const ModelInfo& model);
    // The engine when loaded, else null.
    Engine* loaded(const ModelInfo& model) const;

private:
    struct Entry {
        ModelInfo info;
        std::mutex load_mu;
        std::unique_ptr<Engine> engine;  // written once, under `load_mu`
        std::atomic<Engine*> ready{nullptr};
    };
    Entry* entry(const ModelInfo& model) const;

    EngineOptions options_;
    std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace strata::app::server
