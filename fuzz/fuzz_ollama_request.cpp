// Fuzzes the Ollama request-body parser (`parse_ollama_request`): each input is
// one HTTP body, read both as /api/chat and as /api/generate. This is the code
// every network client reaches first, before any model is involved.
//
// Checked beyond "no crash": a refused body's error has a 4xx status and a
// message; an accepted one names a model and holds what the engine relies on
// (messages that are objects with string `role` and `content`, unless raw).

#include "app/server/ollama.h"
#include "util/check.h"

#include <cstdint>
#include <string>

using namespace strata::app::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    for (bool chat : {true, false}) {
        ApiError error;
        auto r = parse_ollama_request(body, chat, error);
        if (!r) {
            CHECK(error.status >= 400 && error.status < 500, "a refused body must be the client's error");
            CHECK(!error.message.empty(), "an error without a message");
            continue;
        }
        const CompletionRequest& c = r->completion;
        CHECK(!c.model.empty(), "a request without a model was accepted");
        if (c.chat) {
            CHECK(r->load_only || !c.messages.empty(), "a chat without messages was not load-only");
            for (const auto& m : c.messages)
                CHECK(m.is_object() && m.contains("role") && m.contains("content") && m["role"].is_string() &&
                          m["content"].is_string(),
                      "an accepted message lacks a string role or content");
        } else {
            CHECK(!chat && c.parse_special, "only a raw generate prompt skips the template");
        }
        CHECK(c.gen.n_predict >= -1, "a negative num_predict was accepted");
    }
    return 0;
}
