#pragma once
// `ServerContext`: what every endpoint shares — options, the model registry, the
// slot pool — and the one path from a parsed request to generated text that the
// OpenAI and Ollama adapters both use: `admit` (resolve and load the model,
// render and tokenize the prompt, check it fits, take a slot) then `run`.

#include "app/server/fields.h"
#include "app/server/registry.h"
#include "app/server/slots.h"
#include "engine/generate.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace strata::app::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 11435;  // 0: any free port
    std::vector<std::string> models;      // --model FILE
    std::vector<std::string> model_dirs;  // --model-dir DIR
    // Also look in ./models, $STRATA_MODELS and the HF, Ollama and LM Studio
    // stores. Off by default so embedders and tests see only what they name;
    // `strata serve` turns it on unless `--no-discover`.
    bool discover = false;
    int64_t n_ctx = 4096;  // per slot; 0: the model's training context
    int parallel = 1;
    int max_queue = 16;
    std::string api_key;  // empty: no authentication
    int threads = 0;
    bool prefetch = true;
    PlacementOptions placement;  // --cpu-moe, --override-tensor, --fit ... (app/placement_flags.h)
    size_t max_body_bytes = 16u << 20;
    bool log_requests = true;
};

using Clock = std::chrono::steady_clock;

// A completion as both APIs describe it, after the adapter checked its fields.
struct CompletionRequest {
    std::string model;  // empty: the only model served, if there is one
    bool chat = false;
    json messages = json::array();  // chat: objects with `role` and string `content`
    std::string prompt;             // not chat
    bool parse_special = false;     // whether special-token texts in `prompt` become special tokens
    GenerateParams gen;
    int64_t n_ctx = 0;  // 0: the server's context; larger values are capped at it
    const char* prompt_field = "prompt";  // for errors about the prompt's length
};

// A request that holds a slot and is ready to generate.
struct Job {
    const ModelInfo* model = nullptr;
    Engine* engine = nullptr;
    std::shared_ptr<SlotPool::Lease> lease;
    std::vector<int32_t> prompt_ids;
    GenerateParams gen;
    double load_seconds = 0;
};

class ServerContext {
public:
    explicit ServerContext(ServerOptions options);

    // Registers the models of `--model` and `--model-dir`.
    Status discover();

    // The model named `name` (or the only one, when `name` is empty); a 400 or
    // 404 naming what exists when there is none.
    const ModelInfo* resolve(const std::string& name, ApiError& error) const;
    std::optional<Job> admit(const CompletionRequest& req, ApiError& error);
    Result<GenerateResult> run(Job& job, const PieceFn& on_piece);

    const ServerOptions& options() const { return options_; }
    ModelRegistry& registry() { return registry_; }
    SlotPool& slots() { return slots_; }
    uint64_t cancelled() const { return cancelled_.load(); }

private:
    ServerOptions options_;
    ModelRegistry registry_;
    SlotPool slots_;
    std::atomic<uint64_t> cancelled_{0};
};

// A seed for requests that give none, so that two such requests differ.
uint64_t random_seed();
// Seconds since the epoch.
int64_t unix_seconds();
// The time now as RFC 3339 in UTC with nanoseconds, as Ollama writes `created_at`.
std::string rfc3339_now();
std::string rfc3339(int64_t unix_seconds);

}  // namespace strata::app::server
