// Fuzzes the OpenAI request-body parser (`parse_openai_request`): each input is
// one HTTP body, read both as /v1/chat/completions and as /v1/completions. This is
// the code every network client reaches first, before any model is involved.
// Checked beyond "no crash": request_checks.h, and that an accepted chat has
// messages.

#include "app/server/openai.h"
#include "request_checks.h"

#include <cstdint>
#include <string>

using namespace strata;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    for (bool chat : {true, false}) {
        app::server::ApiError error;
        auto r = app::server::parse_openai_request(body, chat, error);
        if (!r) {
            fuzz::check_refusal(error);
            continue;
        }
        CHECK(r->completion.chat == chat, "the request kind changed");
        CHECK(!chat || !r->completion.messages.empty(), "a chat without messages was accepted");
        fuzz::check_messages(r->completion);
    }
    return 0;
}
