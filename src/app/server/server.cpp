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

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::create(const ServerOptions& options) {
    std::unique_ptr<HttpServer> s(new HttpServer(options));
    STRATA_TRY(s->ctx_.discover());
    s->setup();
    return s;
}

void HttpServer::setup() {
    const ServerOptions& o = ctx_.options();
    // Workers: one per slot, one per queued request (they wait in `admit`), and
    // some for cheap requests (/health, listings) and idle keep-alive connections.
    const size_t n_workers = static_cast<size_t>(std::max(1, o.parallel) + std::max(0, o.max_queue) + 8);
    http_.new_task_queue = [n_workers] { return new httplib::ThreadPool(n_workers); };
    http_.set_payload_max_length(o.max_body_bytes);
    http_.set_tcp_nodelay(true);

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
    if (o.log_requests) {
        http_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
            fmt::print(stderr, "{} {} {}\n", req.method, req.path, res.status);
        });
    }

    http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
        const auto s = ctx_.slots().stats();
        set_json(res, 200,
                 {{"status", "ok"},
                  {"slots_total", s.total},
                  {"slots_busy", s.busy},
                  {"queued", s.queued},
                  {"requests_cancelled", ctx_.cancelled()}});
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

void HttpServer::stop() { http_.stop(); }

}  // namespace strata::app::server
