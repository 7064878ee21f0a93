// Fuzzes the Ollama request-body parser (`parse_ollama_request`): each input is
// one HTTP body, read both as /api/chat and as /api/generate. This is the code
// every network client reaches first, before any model is involved. Checked
// beyond "no crash": request_checks.h, that an accepted request names a model,
// and that only a raw generate prompt bypasses the chat template.

#include "app/server/ollama.h"
#include "request_checks.h"

#include <cstdint>
#include <string>

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    for (bool chat : {true, false}) {
        app::server::ApiError error;
        auto r = app::server::parse_ollama_request(body, chat, error);
        if (!r) {
            fuzz::check_refusal(error);
            continue;
        }
        const app::server::CompletionRequest& c = r->completion;
        CHECK(!c.model.empty(), "a request without a model was accepted");
        if (c.chat) CHECK(r->load_only || !c.messages.empty(), "a chat without messages was not load-only");
        else CHECK(!chat && c.parse_special, "only a raw generate prompt skips the template");
        fuzz::check_messages(c);
    }
    return 0;
}
