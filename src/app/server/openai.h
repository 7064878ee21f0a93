#pragma once
// The OpenAI-compatible endpoints: GET /v1/models, POST /v1/chat/completions,
// POST /v1/completions, with OpenAI's error shape.

#include "app/server/context.h"

#include <httplib.h>

#include <optional>
#include <string>

namespace strata::app::server {

// A chat (`chat`) or text completion request as its body asked for it.
struct OpenAIRequest {
    CompletionRequest completion;
    bool stream = false;
    bool include_usage = false;  // `stream_options.include_usage`
};

// Checks a /v1/chat/completions or /v1/completions body field by field, without
// touching a model: the first problem becomes `error`, naming the field. Pure, so
// the fuzzer (fuzz/fuzz_openai_request.cpp) can drive it alone.
std::optional<OpenAIRequest> parse_openai_request(const std::string& body, bool chat, ApiError& error);

void add_openai_routes(httplib::Server& http, ServerContext& ctx);
// `{"error": {"message", "type", "param", "code"}}` with the error's status.
void openai_error(httplib::Response& res, const ApiError& e);

}  // namespace strata::app::server
