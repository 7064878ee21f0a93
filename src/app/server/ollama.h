#pragma once
// The Ollama-compatible endpoints: POST /api/generate, POST /api/chat (NDJSON
// streams by default), GET /api/tags, POST /api/show, GET /api/ps,
// GET /api/version, with Ollama's error shape `{"error": "..."}`.

#include "app/server/context.h"

#include <httplib.h>

#include <optional>
#include <string>

namespace strata::app::server {

// A /api/generate or /api/chat (`chat`) request as its body asked for it.
struct OllamaRequest {
    CompletionRequest completion;
    bool stream = true;      // Ollama streams unless told `"stream": false`
    bool load_only = false;  // no prompt and no messages: just load the model
};

// Checks a generate or chat body field by field, without touching a model: the
// first problem becomes `error`, naming the field. Pure, so the fuzzer
// (fuzz/fuzz_ollama_request.cpp) can drive it alone.
std::optional<OllamaRequest> parse_ollama_request(const std::string& body, bool chat, ApiError& error);

void add_ollama_routes(httplib::Server& http, ServerContext& ctx);
void ollama_error(httplib::Response& res, const ApiError& e);

}  // namespace strata::app::server
