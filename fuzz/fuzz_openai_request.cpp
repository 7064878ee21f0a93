// Fuzzes the OpenAI request-body parser (`parse_openai_request`): each input is
// one HTTP body, read both as /v1/chat/completions and as /v1/completions. This is
// the code every network client reaches first, before any model is involved.
//
// Checked beyond "no crash": a refused body's error has a 4xx status and a
// message; an accepted one holds what the engine relies on (chat messages that
// are objects with string `role` and `content`).

#include "app/server/openai.h"
#include "util/check.h"

#include <cstdint>
#include <string>

using namespace strata::app::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    for (bool chat : {true, false}) {
        ApiError error;
        auto r = parse_openai_request(body, chat, error);
        if (!r) {
            CHECK(error.status >= 400 && error.status < 500, "a refused body must be the client's error");
            CHECK(!error.message.empty(), "an error without a message");
            continue;
        }
        const CompletionRequest& c = r->completion;
        CHECK(c.chat == chat, "the request kind changed");
        if (chat) {
            CHECK(!c.messages.empty(), "a chat without messages was accepted");
            for (const auto& m : c.messages)
                CHECK(m.is_object() && m.contains("role") && m.contains("content") && m["role"].is_string() &&
                          m["content"].is_string(),
                      "an accepted message lacks a string role or content");
        }
        CHECK(c.gen.n_predict >= -1, "a negative max_tokens was accepted");
    }
    return 0;
}
