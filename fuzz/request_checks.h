#pragma once
// What both request-parser fuzzers check of a parse's outcome.

#include "app/server/context.h"
#include "util/check.h"

namespace strata::fuzz {

// A refused body is the client's error (4xx) and says why.
inline void check_refusal(const app::server::ApiError& e) {
    CHECK(e.status >= 400 && e.status < 500, "a refused body must be the client's error");
    CHECK(!e.message.empty(), "an error without a message");
}

// An accepted chat holds what the template renderer relies on: objects with a
// string `role` and a string `content`.
inline void check_messages(const app::server::CompletionRequest& c) {
    for (const auto& m : c.messages)
        CHECK(m.is_object() && m.contains("role") && m.contains("content") && m["role"].is_string() &&
                  m["content"].is_string(),
              "an accepted message lacks a string role or content");
    CHECK(c.gen.n_predict >= -1, "a negative token limit was accepted");
}

}  // namespace strata::fuzz
