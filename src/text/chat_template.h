#pragma once
// Chat templates: a model's Jinja template applied to a conversation, as
// Hugging Face's `apply_chat_template` does, so prompts match the reference byte
// for byte. When a model ships no template, `ChatTemplate::chatml()` stands in.

#include "text/jinja_template.h"
#include "util/result.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace strata::text {

struct ChatInputs {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    bool add_generation_prompt = true;
    std::string bos_token;
    std::string eos_token;
    // More template variables (`tools`, `documents`, `enable_thinking`, ...).
    // Like Hugging Face, a variable not given is undefined, not null.
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();
    jinja::Clock clock;  // for `strftime_now`; empty means the local time now
};

class ChatTemplate {
public:
    // `limits` bound each render (loops, strings, output); the fuzzer tightens them.
    static Result<ChatTemplate> parse(std::string_view source, const jinja::Limits& limits = {});
    // The ChatML template `<|im_start|>role\ncontent<|im_end|>\n`.
    static ChatTemplate chatml();

    Result<std::string> render(const ChatInputs& in) const;

    const std::string& source() const { return source_; }

private:
    std::string source_;
    std::optional<jinja::Template> tmpl_;
};

// A clock fixed at `t` (local time fields as given), for `strftime_now`.
jinja::Clock fixed_clock(std::tm t);
// Parses "2026-01-15T09:30" or "2026-01-15T09:30:00" (also with a space for 'T').
Result<std::tm> parse_datetime(std::string_view s);

}  // namespace strata::text
