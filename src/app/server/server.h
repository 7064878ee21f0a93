#pragma once
// `HttpServer`: `strata serve`'s HTTP side — the httplib server, its worker pool,
// authentication, body limits, /health, and the OpenAI and Ollama routes over
// one `ServerContext`. Tests run it in-process on an ephemeral port.

#include "app/server/context.h"

#include <httplib.h>

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
    // Safe from any thread; `run` returns once in-flight requests finish.
    void stop();

    ServerContext& context() { return ctx_; }

private:
    explicit HttpServer(const ServerOptions& options) : ctx_(options) {}
    void setup();

    ServerContext ctx_;
    httplib::Server http_;
};

}  // namespace strata::app::server
