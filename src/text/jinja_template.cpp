// Template: lexer, parser and interpreter glued behind one error-value API.

#include "text/jinja_template.h"

#include "text/jinja_lexer.h"
#include "text/jinja_parser.h"

namespace strata::jinja {

struct Template::Program {
    std::string source;  // normalised; syntax-tree offsets point into it
    Body body;
    Limits limits;
};

Result<Template> Template::parse(std::string_view source, const TemplateOptions& opts) {
    auto prog = std::make_shared<Program>();
    prog->source = normalize_source(source, opts.keep_trailing_newline);
    prog->limits = opts.limits;
    auto tokens = lex(prog->source, LexOptions{.trim_blocks = opts.trim_blocks,
                                                .lstrip_blocks = opts.lstrip_blocks,
                                                .keep_trailing_newline = opts.keep_trailing_newline});
    if (!tokens) return tokens.error();
    auto body = jinja::parse(*tokens, prog->source);
    if (!body) return body.error();
    prog->body = std::move(*body);
    Template t;
    t.prog_ = std::move(prog);
    return t;
}

Result<std::string> Template::render(const Value& vars, const Clock& clock) const {
    Interp in(prog_->source, prog_->limits, clock);
    try {
        return in.render(prog_->body, vars);
    } catch (const RenderError& e) {
        return Error{e.what()};
    }
}

}  // namespace strata::jinja
