#include "app/server/http_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace strata::app::server {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void set_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(dump(j), "application/json");
}

void post(httplib::Server& http, const ServerOptions& options, const std::string& pattern,
          void (*on_error)(httplib::Response&, const ApiError&),
          std::function<void(const std::string& body, httplib::Response& res)> handler) {
    const size_t max_bytes = options.max_body_bytes;
    const auto timeout = std::chrono::seconds(std::max(1, options.read_timeout));
    http.Post(pattern, [=](const httplib::Request&, httplib::Response& res, const httplib::ContentReader& reader) {
        // The deadline runs from the end of the headers, which is when httplib
        // hands the request over.
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string body;
        bool too_large = false, too_slow = false;
        const bool ok = reader([&](const char* data, size_t n) {
            if (body.size() + n > max_bytes) return too_large = true, false;
            if (std::chrono::steady_clock::now() > deadline) return too_slow = true, false;
            body.append(data, n);
            return true;
        });
        if (ok) return handler(body, res);
        // What is left of the body is not read, so the connection cannot carry
        // another request.
        res.set_header("Connection", "close");
        if (too_large || res.status == 413) {
            return on_error(res, {.status = 413,
                                  .message = fmt::format("the request body is larger than the limit of {} bytes",
                                                         max_bytes)});
        }
        if (too_slow) {
            return on_error(res, {.status = 408,
                                  .message = fmt::format("the request body did not arrive within {} seconds",
                                                         timeout.count())});
        }
        on_error(res, {.status = 400, .message = "the request body could not be read"});
    });
}

bool writable(httplib::DataSink& sink) { return !sink.is_writable || sink.is_writable(); }

bool write(httplib::DataSink& sink, const std::string& data) {
    if (!writable(sink)) return false;
    return sink.write(data.data(), data.size());
}

void stream(httplib::Response& res, const char* content_type, std::function<void(httplib::DataSink&)> body) {
    res.status = 200;
    res.set_header("Cache-Control", "no-cache");
    auto fn = std::make_shared<std::function<void(httplib::DataSink&)>>(std::move(body));
    res.set_chunked_content_provider(content_type, [fn](size_t, httplib::DataSink& sink) {
        (*fn)(sink);
        sink.done();
        return true;
    });
}

}  // namespace strata::app::server
