// Fuzzes the Jinja chat-template engine: the input is a template's source
// (lexer, parser), rendered when it parses against two fixed conversations — a
// plain chat and one with tools and tool calls — as `ChatTemplate::render` does
// for a request (interpreter, filters, methods, `tojson`). A model file is the
// source of a template, so a hostile GGUF controls exactly this input.
//
// The render limits are tighter than the defaults so that one input stays under
// a few milliseconds; which limit is hit does not matter, only that hitting it is
// an error value and not a crash, hang or runaway allocation.

#include "text/chat_template.h"
#include "util/check.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>

using namespace strata;
using nlohmann::ordered_json;

namespace {

const ordered_json& plain_chat() {
    static const ordered_json j = ordered_json::parse(R"([
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Traduis \u00ab bonjour \u00bb en \u65e5\u672c\u8a9e \ud83e\udd99"}])");
    return j;
}

const ordered_json& tool_chat() {
    static const ordered_json j = ordered_json::parse(R"([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "reasoning_content": "Call the tool.",
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "w", "arguments": {"city": "Paris", "days": [1, 2.5, null, true]}}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "w", "content": "{\"t\": 21}"},
        {"role": "assistant", "content": [{"type": "text", "text": "21 \u00b0C"}]}])");
    return j;
}

const ordered_json& tools() {
    static const ordered_json j = ordered_json::parse(R"([{"type": "function", "function": {
        "name": "w", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]},
                       "days": {"type": "array", "items": {"type": "integer"}}}, "required": ["city"]}}}])");
    return j;
}

jinja::Clock fixed_now() {
    auto t = text::parse_datetime("2026-01-15T09:30");
    CHECK(t.ok(), "the fixed date does not parse");
    return text::fixed_clock(*t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view source(reinterpret_cast<const char*>(data), size);
    static const jinja::Limits limits{.max_call_depth = 40,
                                      .max_loop_iterations = 20'000,
                                      .max_total_bytes = 4u << 20,
                                      .max_output_bytes = 256u << 10,
                                      .max_items = 20'000};
    auto t = text::ChatTemplate::parse(source, limits);
    if (!t) {
        CHECK(!t.error().message.empty(), "a parse error without a message");
        return 0;
    }
    static const jinja::Clock clock = fixed_now();
    for (bool with_tools : {false, true}) {
        text::ChatInputs in{.messages = with_tools ? tool_chat() : plain_chat(),
                            .add_generation_prompt = !with_tools,
                            .bos_token = "<s>",
                            .eos_token = "</s>",
                            .clock = clock};
        if (with_tools) in.extra = {{"tools", tools()}, {"enable_thinking", true}};
        auto out = t->render(in);
        if (out) CHECK(out->size() <= limits.max_output_bytes, "a render exceeded the output limit");
        else CHECK(!out.error().message.empty(), "a render error without a message");
    }
    return 0;
}
