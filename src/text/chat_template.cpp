// Chat-facing rendering: JSON conversation in, prompt text out.

#include "text/chat_template.h"

#include "text/jinja_json.h"

#include <cstdio>

namespace strata::text {

namespace {

constexpr std::string_view kChatML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source, const jinja::Limits& limits) {
    auto t = jinja::Template::parse(source, {.limits = limits});
    if (!t) return err("chat template: {}", t.error().message);
    ChatTemplate c;
    c.source_ = std::string(source);
    c.tmpl_ = std::move(*t);
    return c;
}

ChatTemplate ChatTemplate::chatml() {
    auto t = parse(kChatML);
    return std::move(*t);
}

Result<std::string> ChatTemplate::render(const ChatInputs& in) const {
    if (!in.messages.is_array()) return err("chat template: messages must be a JSON array");
    if (!in.extra.is_object() && !in.extra.is_null()) return err("chat template: extra variables must be a JSON object");
    jinja::Value vars = jinja::Value::new_dict();
    try {
        if (in.extra.is_object())
            for (auto it = in.extra.begin(); it != in.extra.end(); ++it)
                vars.dict->set(it.key(), jinja::from_json(it.value()));
        vars.dict->set("messages", jinja::from_json(in.messages));
    } catch (const jinja::RenderError& e) {
        return err("chat template: {}", e.what());
    }
    vars.dict->set("add_generation_prompt", jinja::Value::boolean(in.add_generation_prompt));
    vars.dict->set("bos_token", jinja::Value::string(jinja::utf8_sanitize(in.bos_token)));
    vars.dict->set("eos_token", jinja::Value::string(jinja::utf8_sanitize(in.eos_token)));
    auto out = tmpl_->render(vars, in.clock);
    if (!out) return err("chat template: {}", out.error().message);
    return out;
}

jinja::Clock fixed_clock(std::tm t) {
    // Normalise so that the weekday and day of the year agree with the date.
    std::tm n = t;
    n.tm_isdst = 0;
    timegm(&n);
    return [n] { return n; };
}

Result<std::tm> parse_datetime(std::string_view s) {
    std::tm t{};
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    char sep = 0;
    std::string str(s);
    int n = std::sscanf(str.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &y, &mo, &d, &sep, &h, &mi, &sec);
    if (n == 3) {
        sep = 'T';
    } else if (n < 6 || (sep != 'T' && sep != ' ')) {
        return err("invalid date and time '{}' (expected YYYY-MM-DDTHH:MM[:SS])", s);
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return err("invalid date and time '{}' (a field is out of range)", s);
    t.tm_year = y - 1900;
    t.tm_mon = mo - 1;
    t.tm_mday = d;
    t.tm_hour = h;
    t.tm_min = mi;
    t.tm_sec = sec;
    return t;
}

}  // namespace strata::text
