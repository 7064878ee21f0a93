#include "app/server/server.h"

#include "app/server/http_util.h"
#include "app/server/ollama.h"
#include "app/server/openai.h"

#include <fmt/format.h>

#include <arpa/inet.h>

#include <algorithm>
#include <string_view>

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

// ":8080": a port suffix of a Host header.
bool port_suffix(std::string_view s) {
    return s.size() >= 2 && s.size() <= 6 && s[0] == ':' &&
           std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Whether `host` — a Host header (name or address, optional port) or a --host
// address — names the loopback interface: localhost, 127.0.0.0/8 or ::1.
bool loopback_name(std::string_view host) {
    if (host == "::1") return true;
    if (host.starts_with('[')) {
        const size_t end = host.find(']');
        if (end == std::string_view::npos) return false;
        const std::string_view rest = host.substr(end + 1);
        return host.substr(1, end - 1) == "::1" && (rest.empty() || port_suffix(rest));
    }
    if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
        if (!port_suffix(host.substr(colon))) return false;
        host = host.substr(0, colon);
    }
    if (host == "localhost" || host == "localhost.") return true;
    in_addr a{};
    return inet_pton(AF_INET, std::string(host).c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

// Compares a client's key with the server's in time that depends only on the
// server key's length, so response times leak nothing of its content.
bool same_key(std::string_view given, std::string_view key) {
    unsigned diff = given.size() != key.size();
    for (size_t i = 0; i < key.size(); ++i) diff |= static_cast<unsigned char>(i < given.size() ? given[i] : 0) ^ static_cast<unsigned char>(key[i]);
    return diff == 0;
}

// The API key a request carries: `Authorization: Bearer KEY` or `X-Api-Key: KEY`.
std::string request_key(const httplib::Request& req) {
    const std::string auth = req.get_header_value("Authorization");
    if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0)) return auth.substr(7);
    return req.get_header_value("X-Api-Key");
}

}  // namespace

HttpServer::HttpServer(const ServerOptions& options)
    : ctx_(options),
      http_({.max_connections = options.max_connections, .header_timeout = std::max(1, options.read_timeout)},
            [this](const httplib::Request& req, httplib::Response& res) {
                api_error(req, res,
                          {.status = 503,
                           .message = fmt::format("the server is busy: {} connections are open (--max-connections)",
                                                  ctx_.options().max_connections)});
            }) {}

Result<std::unique_ptr<HttpServer>> HttpServer::create(const ServerOptions& options) {
    std::unique_ptr<HttpServer> s(new HttpServer(options));
    STRATA_TRY(s->ctx_.discover());
    s->setup();
    return s;
}

void HttpServer::setup() {
    const ServerOptions& o = ctx_.options();
    http_.set_payload_max_length(o.max_body_bytes);
    http_.set_tcp_nodelay(true);
    // Per socket read and write: a client silent this long is dropped. A body
    // trickled byte by byte is cut off by `post` (http_util) after the same time.
    http_.set_read_timeout(std::max(1, o.read_timeout), 0);
    http_.set_write_timeout(std::max(1, o.write_timeout), 0);

    // Checks every request passes before its route: the Host header (DNS
    // rebinding), CORS, then the API key.
    http_.set_pre_routing_handler([this, loopback = loopback_name(o.host)](const httplib::Request& req,
                                                                             httplib::Response& res) {
        using R = httplib::Server::HandlerResponse;
        const ServerOptions& o = ctx_.options();
        // A web page whose own name an attacker re-points at 127.0.0.1 reaches a
        // loopback-only server from the browser, but its requests still carry
        // the page's name in `Host`: answer only loopback names there. (A client
        // that sends no Host is not a browser.)
        const std::string host = req.get_header_value("Host");
        if (loopback && !host.empty() && !loopback_name(host)) {
            api_error(req, res,
                      {.status = 403,
                       .message = fmt::format("Host '{}' is not a loopback name: a server listening on {} answers only "
                                              "localhost, 127.0.0.1 and [::1] (protection from DNS rebinding)",
                                              host, o.host)});
            return R::Handled;
        }
        // Browsers may call the API from the listed origins only; no origin is
        // ever allowed credentials (cookies), so '*' cannot expose them.
        const std::string origin = req.get_header_value("Origin");
        const bool any = std::find(o.cors_origins.begin(), o.cors_origins.end(), "*") != o.cors_origins.end();
        if (!origin.empty() &&
            (any || std::find(o.cors_origins.begin(), o.cors_origins.end(), origin) != o.cors_origins.end())) {
            res.set_header("Access-Control-Allow-Origin", any ? "*" : origin);
            if (!any) res.set_header("Vary", "Origin");
            if (req.method == "OPTIONS") {  // a preflight carries no key
                res.status = 204;
                res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
                res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key");
                res.set_header("Access-Control-Max-Age", "600");
                return R::Handled;
            }
        }
        if (o.api_key.empty() || req.path == "/health" || same_key(request_key(req), o.api_key)) return R::Unhandled;
        api_error(req, res,
                  {.status = 401,
                   .message = "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'",
                   .code = "invalid_api_key"});
        return R::Handled;
    });
    // httplib's own refusals (unknown route, body too large, malformed HTTP) get
    // each API's error shape instead of an empty body.
    http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || res.is_chunked_content_provider_) return;
        std::string message;
        // A request whose head did not arrive in time or in the byte budget
        // (connection.h); httplib reports both as 400.
        if (res.status == 400 && current_header_fault() == HeaderFault::Timeout) res.status = 408;
        if (res.status == 400 && current_header_fault() == HeaderFault::TooLarge) res.status = 431;
        switch (res.status) {
            case 404: message = fmt::format("no endpoint {} {}", req.method, req.path); break;
            case 413:
                message = fmt::format("the request body is larger than the limit of {} bytes", ctx_.options().max_body_bytes);
                break;
            case 408:
                message = fmt::format("the request headers did not arrive within {} seconds (--read-timeout)",
                                      ctx_.options().read_timeout);
                break;
            case 431: message = "the request line and headers are larger than the limit of 64 KiB"; break;
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
                  {"requests_cancelled", s.cancelled},
                  {"connections_open", http_.open_connections()},
                  {"connections_refused", http_.rejected_connections()}});
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

void HttpServer::stop_accepting() {
    ctx_.drain();
    if (!stopped_.exchange(true)) http_.stop();
}

void HttpServer::stop() {
    // Streams end first (with an error event), so their workers are free to be joined.
    ctx_.shutdown();
    stop_accepting();
}

}  // namespace strata::app::server
