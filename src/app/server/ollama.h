#pragma once
// The Ollama-compatible endpoints: POST /api/generate, POST /api/chat (NDJSON
// streams by default), GET /api/tags, POST /api/show, GET /api/ps,
// GET /api/version, with Ollama's error shape `{"error": "..."}`.

#include "app/server/context.h"

#include <httplib.h>

namespace strata::app::server {

void add_ollama_routes(httplib::Server& http, ServerContext& ctx);
void ollama_error(httplib::Response& res, const ApiError& e);

}  // namespace strata::app::server
