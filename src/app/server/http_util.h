#pragma once
// Small pieces the adapters share: JSON out, and the streaming response whose
// content provider runs a generation and cancels it when the client is gone.

#include "app/server/context.h"

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>

namespace strata::app::server {

// `j` as a string; invalid UTF-8 (never expected from the engine) becomes U+FFFD
// rather than an exception.
std::string dump(const json& j);
void set_json(httplib::Response& res, int status, const json& j);

// Registers POST `pattern`. The body is read here rather than by httplib so that
// a client sending it slower than `options.read_timeout` allows is cut off (408)
// and one sending more than `options.max_body_bytes` is refused (413), each in
// the API's error shape written by `on_error`; `handler` gets the whole body.
void post(httplib::Server& http, const ServerOptions& options, const std::string& pattern,
          void (*on_error)(httplib::Response&, const ApiError&),
          std::function<void(const std::string& body, httplib::Response& res)> handler);

// Whether a streaming response's client is still connected.
bool writable(httplib::DataSink& sink);

// Writes `data` to a streaming response; false once the client is gone, which
// the caller turns into cancelling its generation.
bool write(httplib::DataSink& sink, const std::string& data);

// Streams a response of `content_type` whose body `body` writes through the sink.
// `body` runs on the HTTP worker after the headers are sent and owns what it
// captures (the `Job`, hence its slot) until the response is finished.
void stream(httplib::Response& res, const char* content_type, std::function<void(httplib::DataSink&)> body);

}  // namespace strata::app::server
