#pragma once
// `jinja::Template`: parse a Jinja2 template once, render it many times (from
// many threads at once). This is the only header the rest of strata needs from
// the Jinja implementation, besides values (jinja_value.h) and JSON conversion
// (jinja_json.h).

#include "text/jinja_interp.h"
#include "text/jinja_value.h"
#include "util/result.h"

#include <memory>
#include <string>
#include <string_view>

namespace strata::jinja {

struct TemplateOptions {
    // Hugging Face's `apply_chat_template` environment: both on, the final
    // newline of the template dropped.
    bool trim_blocks = true;
    bool lstrip_blocks = true;
    bool keep_trailing_newline = false;
    Limits limits;
};

class Template {
public:
    // Errors name the line and column: "line 3, column 12: syntax error: ...".
    static Result<Template> parse(std::string_view source, const TemplateOptions& opts = {});

    // Renders with `vars` (a dict value: names to values). Errors, including a
    // template's `raise_exception(msg)` and any limit hit, name the line and column.
    Result<std::string> render(const Value& vars, const Clock& clock = {}) const;

private:
    struct Program;
    std::shared_ptr<const Program> prog_;
};

}  // namespace strata::jinja
