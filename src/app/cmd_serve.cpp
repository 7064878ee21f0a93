// `strata serve`: serve GGUF models over OpenAI- and Ollama-compatible HTTP APIs
// until SIGINT or SIGTERM. The first signal stops accepting and lets running
// requests finish for up to --drain-timeout seconds, then ends the rest with an
// error event and exits 0; a second signal exits at once.

#include "app/commands.h"
#include "app/placement_flags.h"
#include "app/server/server.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <pthread.h>
#include <thread>

namespace strata::app {
namespace {

// Takes the first SIGINT or SIGTERM: stops accepting, waits for the requests in
// flight up to `drain_s` seconds, then stops the server (ending what is left).
// A second signal meanwhile, or while the server winds down, exits at once.
void handle_signals(const sigset_t& set, server::HttpServer& s, int drain_s, const std::atomic<bool>& finished) {
    int sig = 0;
    sigwait(&set, &sig);
    if (finished.load()) return;
    fmt::print(stderr, "strata: stopping: {} requests in flight, waiting up to {} s (signal again to exit now)\n",
               s.context().in_flight(), drain_s);
    s.stop_accepting();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(drain_s);
    const timespec tick{.tv_sec = 0, .tv_nsec = 50'000'000};
    while (s.context().in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
        if (const int again = sigtimedwait(&set, nullptr, &tick); again > 0) {
            if (finished.load()) return;
            std::_Exit(128 + again);
        }
    }
    if (s.context().in_flight() > 0)
        fmt::print(stderr, "strata: ending {} requests still in flight\n", s.context().in_flight());
    s.stop();
    sigwait(&set, &sig);
    if (!finished.load()) std::_Exit(128 + sig);
}

int serve(const server::ServerOptions& options, int drain_s) {
    if (options.parallel < 1) return fail(fmt::format("--parallel {}: expected at least 1", options.parallel));
    if (options.max_queue < 0) return fail(fmt::format("--queue {}: expected 0 or more", options.max_queue));
    if (options.n_ctx < 0) return fail(fmt::format("--ctx {}: expected 0 or more", options.n_ctx));
    if (options.max_loaded < 0) return fail(fmt::format("--max-loaded {}: expected 0 or more", options.max_loaded));
    if (options.read_timeout < 1) return fail(fmt::format("--read-timeout {}: expected at least 1", options.read_timeout));
    if (options.write_timeout < 1)
        return fail(fmt::format("--write-timeout {}: expected at least 1", options.write_timeout));
    if (drain_s < 0) return fail(fmt::format("--drain-timeout {}: expected 0 or more", drain_s));
    for (const auto& [flag, value] : {std::pair{"--max-connections", options.max_connections},
                                      {"--max-messages", options.max_messages},
                                      {"--max-stop", options.max_stop},
                                      {"--max-stop-bytes", options.max_stop_bytes}})
        if (value < 1) return fail(fmt::format("{} {}: expected at least 1", flag, value));
    if (options.max_body_bytes < 1) return fail("--max-body: expected at least 1 byte");
    if (!options.api_key.empty() && options.api_key.size() < 8)
        return fail("--api-key: use at least 8 characters, or it can be guessed");

    // Signals are taken by a thread of our own (sigwait) rather than a handler, so
    // stopping the server runs as ordinary code. Threads started after this
    // inherit the mask. A client that hangs up must not kill us with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    auto srv = server::HttpServer::create(options);
    if (!srv) return fail(srv.error().message);
    auto port = (*srv)->bind();
    if (!port) return fail(port.error().message);
    fmt::print(stderr, "models: {}\n", (*srv)->context().registry().names());
    fmt::print("strata: listening on http://{}:{}\n", options.host, *port);
    std::fflush(stdout);

    server::HttpServer* s = srv->get();
    std::atomic<bool> finished{false};
    std::thread waiter([&] { handle_signals(set, *s, drain_s, finished); });
    s->run();
    // `run` returns once stopped (or when listening fails): wake the waiter,
    // which then knows this signal is ours, so it can be joined.
    finished.store(true);
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
    auto o = std::make_shared<server::ServerOptions>();
    CLI::App* cmd = app.add_subcommand("serve", "Serve models over OpenAI- and Ollama-compatible HTTP APIs, with Prometheus metrics at /metrics");
    cmd->add_option("--host", o->host,
                    "Address to listen on. On a loopback address only requests whose Host is localhost, 127.0.0.1 "
                    "or [::1] are answered; 0.0.0.0 serves the network (use --api-key)")
        ->capture_default_str();
    cmd->add_option("--port", o->port, "Port to listen on (0: any free port)")->capture_default_str();
    cmd->add_option("-m,--model", o->models,
                    "GGUF model to serve (repeatable); named by its file stem. With no model given or discovered, "
                    "the built-in strata-tiny-moe is served");
    cmd->add_option("--model-dir", o->model_dirs, "Folder whose *.gguf files are served, 6 levels deep (repeatable)");
    o->discover = true;
    cmd->add_flag("!--no-discover", o->discover,
                  "Serve only --model and --model-dir, not ./models, $STRATA_MODELS, or the Hugging Face, Ollama "
                  "and LM Studio stores");
    CLI::Option* ctx = cmd->add_option("-c,--ctx", o->n_ctx,
                                       "Context size per slot in tokens (0: the model's training context); by "
                                       "default 4096, or a model's training context when that is smaller")
                           ->capture_default_str();
    cmd->add_option("--parallel", o->parallel,
                    "Requests generating at once per model, batched into one forward pass per token")
        ->capture_default_str();
    cmd->add_option("--queue", o->max_queue, "Requests per model that may wait for a slot; more get 503")
        ->capture_default_str();
    cmd->add_option("--max-loaded", o->max_loaded,
                    "Models loaded at once; loading another unloads the least recently used idle one (0: no limit)")
        ->capture_default_str();
    cmd->add_option("--max-connections", o->max_connections, "Connections served at once; more are answered 503")
        ->capture_default_str();
    cmd->add_option("--max-body", o->max_body_bytes, "Bytes a request body may have; more are answered 413")
        ->capture_default_str();
    cmd->add_option("--max-messages", o->max_messages, "Messages a chat request may have")->capture_default_str();
    cmd->add_option("--max-stop", o->max_stop, "Stop strings a request may give")->capture_default_str();
    cmd->add_option("--max-stop-bytes", o->max_stop_bytes, "Bytes each stop string may have")->capture_default_str();
    cmd->add_option("--read-timeout", o->read_timeout,
                    "Seconds a client may take to send a request's headers, then its body (then 408), or stay "
                    "silent while sending them")
        ->capture_default_str();
    cmd->add_option("--write-timeout", o->write_timeout,
                    "Seconds a write to a client may wait before the client is dropped")
        ->capture_default_str();
    auto drain = std::make_shared<int>(10);
    cmd->add_option("--drain-timeout", *drain,
                    "Seconds that running requests may take to finish after SIGINT or SIGTERM; then they end with "
                    "an error")
        ->capture_default_str();
    cmd->add_option("--api-key", o->api_key,
                    "Require 'Authorization: Bearer KEY' or 'X-Api-Key: KEY' on every request but /health");
    cmd->add_option("--cors-origin", o->cors_origins,
                    "Let browser pages from this origin call the API, e.g. http://localhost:3000 (repeatable; '*': "
                    "any). Off by default")
        ->delimiter(',');
    cmd->add_option("-t,--threads", o->threads, "Threads per model (default: physical cores)");
    cmd->add_flag("!--no-prefetch", o->prefetch, "Do not read all weights in at load");
    auto placement = std::make_shared<PlacementFlags>();
    add_placement_flags(cmd, *placement);
    cmd->callback([o, placement, drain, ctx, &exit_code] {
        o->cap_ctx_at_training = ctx->count() == 0;
        auto p = placement_options(*placement);
        if (!p) {
            exit_code = fail(p.error().message);
            return;
        }
        o->placement = std::move(*p);
        exit_code = serve(*o, *drain);
    });
}

}  // namespace strata::app
