// Inputs the fuzzers (fuzz/) found mishandled, each kept as a test of the fix.

#include "app/server/ollama.h"
#include "app/server/openai.h"

#include <gtest/gtest.h>

namespace strata::app::server {
namespace {

// fuzz_openai_request: a number beyond double's range made nlohmann throw
// `out_of_range`, which `parse_body` did not catch, so the exception escaped the
// handler instead of becoming a 400.
TEST(FuzzRegressions, NumberBeyondDoubleRangeIsA400) {
    for (const char* body : {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1e400})",
                             R"({"model": "m", "prompt": "x", "options": {"temperature": 1e400}})"}) {
        for (bool chat : {true, false}) {
            ApiError e1, e2;
            EXPECT_FALSE(parse_openai_request(body, chat, e1).has_value());
            EXPECT_EQ(e1.status, 400);
            EXPECT_NE(e1.message.find("not valid JSON"), std::string::npos) << e1.message;
            EXPECT_FALSE(parse_ollama_request(body, chat, e2).has_value());
            EXPECT_EQ(e2.status, 400);
            EXPECT_NE(e2.message.find("number overflow"), std::string::npos) << e2.message;
        }
    }
}

}  // namespace
}  // namespace strata::app::server
