#include "app/server/server.h"

#include "app/server/http_util.h"
#include "app/server/ollama.h"
#include "app/server/openai.h"

#include <fmt/format.h>

#include <algorithm>

namespace strata::app::server {
namespace {

// Which API a path belongs to decides the shape of its errors.
bool is_openai(const std::string& path) { return path.starts_with("/v1/"); }

void api_error(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
    if (is_openai(req.path)) openai_error(res, e);
    else ollama_error(res, e);
}

// The route a path belongs to, as the `endpoint` label of the request counter:
// a fixed set, so clients cannot grow the metrics with made-up paths.
std::string endpoint_of(const std::string& path) {
    static const char* const routes[] = {"/health",      "/metrics",     "/v1/models",   "/v1/chat/completions",
                                         "/v1/completions", "/api/generate", "/api/chat",  "/api/tags",
                                         "/api/show",    "/api/ps",      "/api/version"};
    for (const char* r : routes)
        if (path == r) return r;
    if (path.starts_with("/v1/models/")) return "/v1/models/{model}";
    return "other";
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::create(const ServerOptions& options) {
    std::unique_ptr<HttpServer> s(new HttpServer(options));
    STRATA_TRY(s->ctx_.discover());
    s->setup();
    return s;
}

void HttpServer::setup() {
    const ServerOptions& o = ctx_.options();
    // Workers: one per slot and one per queued request (each waits on its
    // request's text) of each model that may be loaded at once — all that
    // --max-loaded allows, else a few — and some for cheap requests (/health,
    // listings), idle keep-alive connections and clients still sending.
    const int n_models = static_cast<int>(ctx_.registry().list().size());
    const int n_busy_models = std::max(1, std::min(n_models, o.max_loaded > 0 ? o.max_loaded : 4));
    const size_t n_workers =
        static_cast<size_t>(n_busy_models * (std::max(1, o.parallel) + std::max(0, o.max_queue)) + 8);
    http_.new_task_queue = [n_workers] { return new httplib::ThreadPool(n_workers); };
    http_.set_payload_max_length(o.max_body_bytes);
    http_.set_tcp_nodelay(true);
    // Per socket read and write: a client silent this long is dropped. A body
    // trickled byte by byte is cut off by `post` (http_util) after the same time.
    http_.set_read_timeout(std::max(1, o.read_timeout), 0);
    http_.set_write_timeout(std::max(1, o.write_timeout), 0);

    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        const std::string& key = ctx_.options().api_key;
        if (key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
        if (req.get_header_value("Authorization") == "Bearer " + key) return httplib::Server::HandlerResponse::Unhandled;
        api_error(req, res,
                  {.status = 401,
                   .message = "a valid API key is required: send 'Authorization: Bearer <key>'",
                   .code = "invalid_api_key"});
        return httplib::Server::HandlerResponse::Handled;
    });
    // httplib's own refusals (unknown route, body too large, malformed HTTP) get
    // each API's error shape instead of an empty body.
    http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.is_chunked_content_provider_) return;
        std::string message;
        switch (res.status) {
            case 404: message = fmt::format("no endpoint {} {}", req.method, req.path); break;
            case 413:
                message = fmt::format("the request body is larger than the limit of {} bytes", ctx_.options().max_body_bytes);
                break;
            default: message = fmt::format("HTTP {}", res.status); break;
        }
        api_error(req, res, {.status = res.status, .message = message});
    });
    http_.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        api_error(req, res, {.status = 500, .message = fmt::format("internal error: {}", what)});
    });
    // Called once each response is written (a stream: when it ends).
    http_.set_logger([this, log = o.log_requests](const httplib::Request& req, const httplib::Response& res) {
        ctx_.metrics().request(endpoint_of(req.path), res.status);
        if (log) fmt::print(stderr, "{} {} {}\n", req.method, req.path, res.status);
    });

    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        const auto s = ctx_.scheduler_stats();
        set_json(res, 200,
                 {{"status", "ok"},
                  {"slots_total", s.slots},
                  {"slots_busy", s.active},
                  {"queued", s.queued},
                  {"requests_cancelled", s.cancelled}});
    });
    http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(ctx_.metrics().render(ctx_.registry()), "text/plain; version=0.0.4; charset=utf-8");
    });
    add_openai_routes(http_, ctx_);
    add_ollama_routes(http_, ctx_);
}

Result<int> HttpServer::bind() {
    const ServerOptions& o = ctx_.options();
    if (o.port == 0) {
        const int port = http_.bind_to_any_port(o.host);
        if (port <= 0) return err("cannot listen on {}: no free port", o.host);
        return port;
    }
    if (!http_.bind_to_port(o.host, o.port)) return err("cannot listen on {}:{} (in use, or not an address here)", o.host, o.port);
    return o.port;
}

void HttpServer::run() { http_.listen_after_bind(); }

void HttpServer::stop() {
    // Streams end first (as cancelled), so their workers are free to be joined.
    ctx_.shutdown();
    http_.stop();
}

}  // namespace strata::app::server
