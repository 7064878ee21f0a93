// `strata serve`: serve GGUF models over OpenAI- and Ollama-compatible HTTP APIs
// until SIGINT or SIGTERM.

#include "app/commands.h"
#include "app/placement_flags.h"
#include "app/server/server.h"

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <pthread.h>
#include <thread>

namespace strata::app {
namespace {

int serve(const server::ServerOptions& options) {
    if (options.parallel < 1) return fail(fmt::format("--parallel {}: expected at least 1", options.parallel));
    if (options.max_queue < 0) return fail(fmt::format("--queue {}: expected 0 or more", options.max_queue));
    if (options.n_ctx < 0) return fail(fmt::format("--ctx {}: expected 0 or more", options.n_ctx));
    if (options.max_loaded < 0) return fail(fmt::format("--max-loaded {}: expected 0 or more", options.max_loaded));
    if (options.read_timeout < 1) return fail(fmt::format("--read-timeout {}: expected at least 1", options.read_timeout));
    if (options.write_timeout < 1)
        return fail(fmt::format("--write-timeout {}: expected at least 1", options.write_timeout));

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
    std::thread waiter([set, s] {
        int sig = 0;
        sigwait(&set, &sig);
        s->stop();
    });
    s->run();
    // `run` also returns when listening fails; wake the waiter so it can be joined.
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
    auto o = std::make_shared<server::ServerOptions>();
    CLI::App* cmd = app.add_subcommand("serve", "Serve models over OpenAI- and Ollama-compatible HTTP APIs, with Prometheus metrics at /metrics");
    cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
    cmd->add_option("--port", o->port, "Port to listen on (0: any free port)")->capture_default_str();
    cmd->add_option("-m,--model", o->models,
                    "GGUF model to serve (repeatable); named by its file stem. With no model given or discovered, "
                    "the built-in strata-tiny-moe is served");
    cmd->add_option("--model-dir", o->model_dirs, "Folder whose *.gguf files are served, 6 levels deep (repeatable)");
    o->discover = true;
    cmd->add_flag("!--no-discover", o->discover,
                  "Serve only --model and --model-dir, not ./models, $STRATA_MODELS, or the Hugging Face, Ollama "
                  "and LM Studio stores");
    cmd->add_option("-c,--ctx", o->n_ctx, "Context size per slot in tokens (0: the model's training context)")
        ->capture_default_str();
    cmd->add_option("--parallel", o->parallel,
                    "Requests generating at once per model, batched into one forward pass per token")
        ->capture_default_str();
    cmd->add_option("--queue", o->max_queue, "Requests per model that may wait for a slot; more get 503")
        ->capture_default_str();
    cmd->add_option("--max-loaded", o->max_loaded,
                    "Models loaded at once; loading another unloads the least recently used idle one (0: no limit)")
        ->capture_default_str();
    cmd->add_option("--read-timeout", o->read_timeout,
                    "Seconds a client may take to send a request body (then 408), or stay silent while sending one")
        ->capture_default_str();
    cmd->add_option("--write-timeout", o->write_timeout,
                    "Seconds a write to a client may wait before the client is dropped")
        ->capture_default_str();
    cmd->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' on every request but /health");
    cmd->add_option("-t,--threads", o->threads, "Threads per model (default: physical cores)");
    cmd->add_flag("!--no-prefetch", o->prefetch, "Do not read all weights in at load");
    auto placement = std::make_shared<PlacementFlags>();
    add_placement_flags(cmd, *placement);
    cmd->callback([o, placement, &exit_code] {
        auto p = placement_options(*placement);
        if (!p) {
            exit_code = fail(p.error().message);
            return;
        }
        o->placement = std::move(*p);
        exit_code = serve(*o);
    });
}

}  // namespace strata::app
