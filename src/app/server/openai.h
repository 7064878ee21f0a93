#pragma once
// The OpenAI-compatible endpoints: GET /v1/models, POST /v1/chat/completions,
// POST /v1/completions, with OpenAI's error shape.

#include "app/server/context.h"

#include <httplib.h>

namespace strata::app::server {

void add_openai_routes(httplib::Server& http, ServerContext& ctx);
// `{"error": {"message", "type", "param", "code"}}` with the error's status.
void openai_error(httplib::Response& res, const ApiError& e);

}  // namespace strata::app::server
