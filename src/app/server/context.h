#pragma once
// `ServerContext`: what every endpoint shares — options, the model registry (each
// loaded model with its continuous-batching scheduler), the metrics — and the one
// path from a parsed request to generated text that the OpenAI and Ollama
// adapters both use: `admit` (resolve and load the model, render and tokenize the
// prompt, check it fits, queue it — or refuse with 503) then `run` (take its text
// on the HTTP worker as the scheduler's step thread makes it).

#include "app/server/fields.h"
#include "app/server/metrics.h"
#include "app/server/registry.h"
#include "engine/generate.h"
#include "engine/scheduler.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
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
    // `n_ctx` is the default rather than asked for: a model trained on fewer
    // positions gets its training context instead (it has not learnt the rest).
    bool cap_ctx_at_training = false;
    int parallel = 1;      // slots per model: sequences batched together
    int max_queue = 16;    // requests per model that may wait for a slot
    int max_loaded = 0;    // models loaded at once (least recently used unloaded); 0: no limit
    std::string api_key;  // empty: no authentication
    // Origins whose browser pages may call the API (CORS); empty: none; "*": any.
    std::vector<std::string> cors_origins;
    int threads = 0;
    bool prefetch = true;
    PlacementOptions placement;  // --cpu-moe, --override-tensor, --fit ... (app/placement_flags.h)
    // Limits on what one client may ask for; each refusal names its limit.
    size_t max_body_bytes = 16u << 20;
    int max_connections = 128;  // served at once; more get 503
    int max_messages = 4096;    // per chat
    int max_stop = 16;          // stop strings per request ...
    int max_stop_bytes = 256;   // ... and bytes in each
    // Seconds a client may take to send a request's headers, and then its body,
    // and that a socket read or write may wait; a client too slow is answered 408.
    int read_timeout = 30;
    int write_timeout = 30;
    bool log_requests = true;
};

using Clock = std::chrono::steady_clock;

// A completion as both APIs describe it, after the adapter checked its fields.
struct CompletionRequest {
    std::string model;  // empty: the only model served, if there is one
    bool chat = false;
    json messages = json::array();  // chat: objects with `role` and string `content`
    std::string prompt;             // not chat
    // A prompt sent as token ids (OpenAI's `prompt: [1, 2, 3]`): fed as they are,
    // no BOS added. Kept 64-bit until `admit` checks them against the vocabulary,
    // so a huge id is reported as sent rather than wrapped. `prompt_ids_field`
    // names the array for errors ("prompt", or "prompt[0]" for `[[1, 2, 3]]`).
    std::optional<std::vector<int64_t>> prompt_ids;
    std::string prompt_ids_field = "prompt";
    bool parse_special = false;     // whether special-token texts in `prompt` become special tokens
    GenerateParams gen;
    int64_t n_ctx = 0;  // 0: the server's context; larger values are capped at it
    // The field that set `gen.n_predict`, when a value past what the context
    // leaves after the prompt is an error (OpenAI's `max_tokens`); null: such a
    // value just ends generation when the context is full (Ollama's `num_predict`).
    const char* max_tokens_field = nullptr;
    const char* prompt_field = "prompt";  // for errors about the prompt's length
};

// What a request's generation hands its HTTP worker: the text pieces, then the
// result. The scheduler's step thread pushes and never waits on the client.
class Channel {
public:
    // Text not yet taken by a worker past which its client counts as stuck (it
    // stopped reading, so its worker waits on a write): the generation is then
    // cancelled rather than buffering without bound. Tokens are a few bytes, so
    // this is thousands of tokens behind.
    static constexpr size_t kMaxPending = 256u << 10;

    // Step thread: false once the worker stopped listening (its client is gone)
    // or fell `kMaxPending` bytes behind.
    bool push(std::string_view piece);
    void finish(Result<GenerateResult> result);
    // Worker: text arrived since the last call, and the result once finished;
    // waits up to `timeout` for either.
    struct Event {
        std::string text;
        std::optional<Result<GenerateResult>> done;
    };
    Event wait(std::chrono::milliseconds timeout);
    void close();

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::string text_;
    std::optional<Result<GenerateResult>> done_;
    bool closed_ = false;
};

// A queued request. Dropping it cancels its generation (a streaming response
// whose client left before it started).
struct Job {
    Job() = default;
    Job(Job&&) = default;
    Job& operator=(Job&&) = default;
    ~Job() {
        if (ticket) ticket->cancel();
    }

    const ModelInfo* model = nullptr;
    std::shared_ptr<LoadedModel> loaded;  // keeps the model loaded until the request is done
    std::vector<int32_t> prompt_ids;
    std::shared_ptr<Channel> channel;
    std::shared_ptr<Scheduler::Ticket> ticket;
    double load_seconds = 0;
    std::shared_ptr<void> in_flight;  // counts the request in `ServerContext::in_flight` while it lives
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
    // Waits for the job's text on this (HTTP worker) thread and hands it to
    // `on_piece`; false from `on_piece`, or from `alive` (asked while no text
    // comes, e.g. while queued), cancels the generation.
    Result<GenerateResult> run(Job& job, const PieceFn& on_piece, const std::function<bool()>& alive = {});

    // The server stops taking requests: `admit` refuses with 503.
    void drain() { draining_.store(true); }
    // The server is stopping: every `run` cancels its generation, so streams end
    // with an error saying so.
    void shutdown() { stopping_.store(true); }
    // Requests between `admit` and the end of `run` (queued or generating).
    int in_flight() const { return in_flight_.load(); }

    const ServerOptions& options() const { return options_; }
    ModelRegistry& registry() { return registry_; }
    Metrics& metrics() { return metrics_; }
    // Over every loaded model.
    Scheduler::Stats scheduler_stats() const;

private:
    ServerOptions options_;
    Metrics metrics_;  // before `registry_`: the schedulers report to it until they stop
    ModelRegistry registry_;
    std::atomic<bool> draining_{false}, stopping_{false};
    std::atomic<int> in_flight_{0};
};

// A seed for requests that give none, so that two such requests differ.
uint64_t random_seed();
// Seconds since the epoch.
int64_t unix_seconds();
// The time now as RFC 3339 in UTC with nanoseconds, as Ollama writes `created_at`.
std::string rfc3339_now();
std::string rfc3339(int64_t unix_seconds);

}  // namespace strata::app::server
