#pragma once
// `HttpServer`: `strata serve`'s HTTP side — the httplib server, its worker pool,
// authentication, body limits, /health, and the OpenAI and Ollama routes over
// one `ServerContext`. Tests run it in-process on an ephemeral port.

#include "app/server/connection.h"
#include "app/server/context.h"

#include <httplib.h>

#include <atomic>
#include <memory>

namespace strata::app::server {

class HttpServer {
public:
    // Finds the models and sets up the routes; binds nothing yet.
    static Result<std::unique_ptr<HttpServer>> create(const ServerOptions& options);

    // Binds `options.host`:`options.port` (any free port when 0); the bound port.
    Result<int> bind();
    // Serves until `stop`; call after `bind`.
    void run();
    // The first step of a graceful stop: accept no more connections and refuse
    // new requests (503); those in flight go on. Safe from any thread.
    void stop_accepting();
    // Ends the requests still in flight (streams get an error event) and stops;
    // `run` returns once their workers are done. Safe from any thread.
    void stop();

    ServerContext& context() { return ctx_; }

private:
    explicit HttpServer(const ServerOptions& options);
    void setup();

    ServerContext ctx_;
    HttpCore http_;
    std::atomic<bool> stopped_{false};
};

}  // namespace strata::app::server
