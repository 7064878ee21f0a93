// Recursive descent over the token stream, one function per precedence level as
// in Jinja2's parser (so `a + b | f` filters `b`, `not x is y` negates the test,
// and `~` binds looser than `*` but tighter than `+`).

#include "text/jinja_parser.h"

#include <fmt/format.h>

#include <initializer_list>

namespace strata::jinja {

namespace {

struct SyntaxError {
    uint32_t off;
    std::string message;
};

class Parser {
public:
    Parser(const std::vector<Token>& t) : t_(t) {}

    Body parse_template() {
        std::string found;
        Body b = parse_body({}, found);
        return b;
    }

private:
    const Token& cur() const { return t_[p_]; }
    const Token& peek(size_t k = 1) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
    bool is_op(const char* op) const { return cur().kind == Tok::Op && cur().text == op; }
    bool is_name(const char* n) const { return cur().kind == Tok::Name && cur().text == n; }

    [[noreturn]] void fail(uint32_t off, std::string msg) const { throw SyntaxError{off, std::move(msg)}; }
    [[noreturn]] void fail_here(const std::string& expected) const {
        fail(cur().off, fmt::format("expected {}, found {}", expected, describe(cur())));
    }

    static std::string describe(const Token& t) {
        switch (t.kind) {
            case Tok::Text: return "text";
            case Tok::VarBegin: return "'{{'";
            case Tok::VarEnd: return "'}}'";
            case Tok::BlockBegin: return "'{%'";
            case Tok::BlockEnd: return "'%}'";
            case Tok::Eof: return "end of template";
            case Tok::String: return "a string";
            default: return "'" + t.text + "'";
        }
    }

    void expect_op(const char* op) {
        if (!is_op(op)) fail_here(fmt::format("'{}'", op));
        ++p_;
    }
    void expect_block_end() {
        if (cur().kind != Tok::BlockEnd) fail_here("'%}'");
        ++p_;
    }
    std::string expect_name() {
        if (cur().kind != Tok::Name) fail_here("a name");
        return t_[p_++].text;
    }

    struct DepthGuard {
        Parser& p;
        explicit DepthGuard(Parser& parser) : p(parser) {
            if (++p.depth_ > kMaxParseDepth)
                p.fail(p.cur().off, fmt::format("template nested deeper than {} levels", kMaxParseDepth));
        }
        ~DepthGuard() { --p.depth_; }
    };

    // Statements until a block tag named in `ends`; returns with that name consumed.
    Body parse_body(std::initializer_list<const char*> ends, std::string& found) {
        DepthGuard g(*this);
        Body body;
        for (;;) {
            const Token& t = cur();
            if (t.kind == Tok::Eof) {
                if (ends.size() == 0) return body;
                std::string names;
                for (const char* e : ends) names += (names.empty() ? "'" : " or '") + std::string(e) + "'";
                fail(t.off, "unexpected end of template, expected " + names);
            }
            if (t.kind == Tok::Text) {
                auto s = std::make_unique<Stmt>();
                s->kind = StmtKind::Text;
                s->off = t.off;
                s->text = t.text;
                body.push_back(std::move(s));
                ++p_;
            } else if (t.kind == Tok::VarBegin) {
                ++p_;
                auto s = std::make_unique<Stmt>();
                s->kind = StmtKind::Emit;
                s->off = cur().off;
                s->exprs.push_back(parse_tuple(true));
                if (cur().kind != Tok::VarEnd) fail_here("'}}'");
                ++p_;
                body.push_back(std::move(s));
            } else if (t.kind == Tok::BlockBegin) {
                ++p_;
                if (cur().kind != Tok::Name) fail_here("a statement name");
                for (const char* e : ends)
                    if (cur().text == e) {
                        found = e;
                        ++p_;
                        return body;
                    }
                body.push_back(parse_statement());
            } else {
                fail_here("text or a tag");
            }
        }
    }

    StmtPtr make(StmtKind k, uint32_t off) {
        auto s = std::make_unique<Stmt>();
        s->kind = k;
        s->off = off;
        return s;
    }

    StmtPtr parse_statement() {
        const Token& t = cur();
        const std::string& n = t.text;
        const uint32_t off = t.off;
        if (n == "if") return parse_if();
        if (n == "for") return parse_for();
        if (n == "set") return parse_set();
        if (n == "macro") return parse_macro();
        if (n == "call") return parse_call_block();
        if (n == "filter") {
            ++p_;
            auto s = make(StmtKind::FilterBlock, off);
            s->filters.push_back(parse_filter_call());
            while (is_op("|")) {
                ++p_;
                s->filters.push_back(parse_filter_call());
            }
            expect_block_end();
            std::string found;
            s->bodies.push_back(parse_body({"endfilter"}, found));
            expect_block_end();
            return s;
        }
        if (n == "break" || n == "continue") {
            if (loop_depth_ == 0) fail(off, fmt::format("'{}' outside of a loop", n));
            ++p_;
            expect_block_end();
            return make(n == "break" ? StmtKind::Break : StmtKind::Continue, off);
        }
        if (n == "do") {
            ++p_;
            auto s = make(StmtKind::Do, off);
            s->exprs.push_back(parse_tuple(true));
            expect_block_end();
            return s;
        }
        if (n == "generation") {
            ++p_;
            expect_block_end();
            auto s = make(StmtKind::Block, off);
            std::string found;
            s->bodies.push_back(parse_body({"endgeneration"}, found));
            expect_block_end();
            return s;
        }
        fail(off, fmt::format("unknown or unsupported tag '{}'", n));
    }

    StmtPtr parse_if() {
        auto s = make(StmtKind::If, cur().off);
        ++p_;
        s->exprs.push_back(parse_tuple(true));
        expect_block_end();
        for (;;) {
            std::string found;
            s->bodies.push_back(parse_body({"elif", "else", "endif"}, found));
            if (found == "elif") {
                s->exprs.push_back(parse_tuple(true));
                expect_block_end();
            } else if (found == "else") {
                expect_block_end();
                s->bodies.push_back(parse_body({"endif"}, found));
                expect_block_end();
                return s;
            } else {
                expect_block_end();
                return s;
            }
        }
    }

    void parse_targets(std::vector<std::string>& names) {
        const bool paren = is_op("(");
        if (paren) ++p_;
        names.push_back(expect_name());
        while (is_op(",")) {
            ++p_;
            if (cur().kind != Tok::Name) break;
            names.push_back(expect_name());
        }
        if (paren) expect_op(")");
    }

    StmtPtr parse_for() {
        auto s = make(StmtKind::For, cur().off);
        ++p_;
        parse_targets(s->names);
        if (!is_name("in")) fail_here("'in'");
        ++p_;
        s->exprs.push_back(parse_tuple(false));
        if (is_name("if")) {
            ++p_;
            s->exprs.push_back(parse_expression(true));
        }
        if (is_name("recursive")) fail(cur().off, "recursive loops are not supported");
        expect_block_end();
        const int refs_before = loop_refs_;
        ++loop_depth_;
        std::string found;
        s->bodies.push_back(parse_body({"endfor", "else"}, found));
        --loop_depth_;
        if (found == "else") {
            expect_block_end();
            s->bodies.push_back(parse_body({"endfor"}, found));
        }
        expect_block_end();
        s->uses_loop = loop_refs_ != refs_before;
        return s;
    }

    StmtPtr parse_set() {
        const uint32_t off = cur().off;
        ++p_;
        std::string first = expect_name();
        if (is_op(".")) {
            ++p_;
            auto s = make(StmtKind::SetAttr, off);
            s->names.push_back(first);
            s->text = expect_name();
            expect_op("=");
            s->exprs.push_back(parse_tuple(true));
            expect_block_end();
            return s;
        }
        std::vector<std::string> names{first};
        while (is_op(",")) {
            ++p_;
            names.push_back(expect_name());
        }
        if (is_op("=")) {
            ++p_;
            auto s = make(StmtKind::Set, off);
            s->names = std::move(names);
            s->exprs.push_back(parse_tuple(true));
            expect_block_end();
            return s;
        }
        if (names.size() != 1) fail_here("'='");
        auto s = make(StmtKind::SetBlock, off);
        s->names = std::move(names);
        while (is_op("|")) {
            ++p_;
            s->filters.push_back(parse_filter_call());
        }
        expect_block_end();
        std::string found;
        s->bodies.push_back(parse_body({"endset"}, found));
        expect_block_end();
        return s;
    }

    // `(a, b=default, ...)` for macros and call blocks.
    void parse_params(Stmt& s) {
        expect_op("(");
        while (!is_op(")")) {
            if (!s.names.empty()) expect_op(",");
            if (is_op(")")) break;
            s.names.push_back(expect_name());
            if (is_op("=")) {
                ++p_;
                s.exprs.push_back(parse_expression(true));
            } else {
                s.exprs.push_back(nullptr);
            }
        }
        ++p_;
    }

    StmtPtr parse_macro() {
        auto s = make(StmtKind::Macro, cur().off);
        ++p_;
        s->text = expect_name();
        parse_params(*s);
        expect_block_end();
        const int saved = loop_depth_;
        loop_depth_ = 0;
        std::string found;
        s->bodies.push_back(parse_body({"endmacro"}, found));
        loop_depth_ = saved;
        if (cur().kind == Tok::Name && cur().text == s->text) ++p_;
        expect_block_end();
        return s;
    }

    StmtPtr parse_call_block() {
        auto s = make(StmtKind::CallBlock, cur().off);
        ++p_;
        if (is_op("(")) parse_params(*s);
        ExprPtr call = parse_expression(true);
        if (call->kind != ExprKind::Call) fail(call->off, "expected a call after 'call'");
        s->exprs.push_back(std::move(call));
        expect_block_end();
        std::string found;
        s->bodies.push_back(parse_body({"endcall"}, found));
        expect_block_end();
        return s;
    }

    ExprPtr make_expr(ExprKind k, uint32_t off) {
        auto e = std::make_unique<Expr>();
        e->kind = k;
        e->off = off;
        return e;
    }

    // Jinja2's `parse_tuple`: `a, b` without brackets is a tuple.
    ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens = false) {
        const uint32_t off = cur().off;
        std::vector<ExprPtr> items;
        bool is_tuple = false;
        for (;;) {
            if (!items.empty()) expect_op(",");
            const Token& t = cur();
            if (t.kind == Tok::VarEnd || t.kind == Tok::BlockEnd || (t.kind == Tok::Op && t.text == ")") ||
                (!items.empty() && t.kind == Tok::Name && (t.text == "if" || t.text == "recursive")))
                break;
            items.push_back(parse_expression(with_condexpr));
            if (is_op(",")) is_tuple = true;
            else break;
        }
        if (!is_tuple) {
            if (items.empty()) {
                if (!explicit_parens) fail_here("an expression");
                auto e = make_expr(ExprKind::Tuple, off);
                return e;
            }
            return std::move(items[0]);
        }
        auto e = make_expr(ExprKind::Tuple, off);
        e->kids = std::move(items);
        return e;
    }

    ExprPtr parse_expression(bool with_condexpr) {
        DepthGuard g(*this);
        if (!with_condexpr) return parse_or();
        ExprPtr e = parse_or();
        while (is_name("if")) {
            const uint32_t off = cur().off;
            ++p_;
            auto c = make_expr(ExprKind::Cond, off);
            c->kids.push_back(parse_or());
            c->kids.push_back(std::move(e));
            if (is_name("else")) {
                ++p_;
                c->kids.push_back(parse_expression(true));
            } else {
                c->kids.push_back(nullptr);
            }
            e = std::move(c);
        }
        return e;
    }

    ExprPtr binary(ExprKind k, const std::string& op, uint32_t off, ExprPtr a, ExprPtr b) {
        auto e = make_expr(k, off);
        e->name = op;
        e->kids.push_back(std::move(a));
        e->kids.push_back(std::move(b));
        return e;
    }

    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (is_name("or")) {
            const uint32_t off = t_[p_++].off;
            e = binary(ExprKind::Or, "or", off, std::move(e), parse_and());
        }
        return e;
    }

    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (is_name("and")) {
            const uint32_t off = t_[p_++].off;
            e = binary(ExprKind::And, "and", off, std::move(e), parse_not());
        }
        return e;
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            DepthGuard g(*this);
            auto e = make_expr(ExprKind::Unary, t_[p_++].off);
            e->name = "not";
            e->kids.push_back(parse_not());
            return e;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        ExprPtr first = parse_math1();
        ExprPtr cmp;
        for (;;) {
            std::string op;
            const Token& t = cur();
            if (t.kind == Tok::Op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" ||
                                      t.text == ">" || t.text == ">=")) {
                op = t.text;
                ++p_;
            } else if (is_name("in")) {
                op = "in";
                ++p_;
            } else if (is_name("not") && peek().kind == Tok::Name && peek().text == "in") {
                op = "notin";
                p_ += 2;
            } else {
                break;
            }
            if (!cmp) {
                cmp = make_expr(ExprKind::Compare, t.off);
                cmp->kids.push_back(std::move(first));
            }
            cmp->ops.push_back(op);
            cmp->kids.push_back(parse_math1());
        }
        return cmp ? std::move(cmp) : std::move(first);
    }

    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (is_op("+") || is_op("-")) {
            const Token& t = t_[p_++];
            e = binary(ExprKind::Binary, t.text, t.off, std::move(e), parse_concat());
        }
        return e;
    }

    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (is_op("~")) {
            const uint32_t off = t_[p_++].off;
            e = binary(ExprKind::Binary, "~", off, std::move(e), parse_math2());
        }
        return e;
    }

    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const Token& t = t_[p_++];
            e = binary(ExprKind::Binary, t.text, t.off, std::move(e), parse_pow());
        }
        return e;
    }

    ExprPtr parse_pow() {
        ExprPtr e = parse_unary(true);
        while (is_op("**")) {
            const uint32_t off = t_[p_++].off;
            e = binary(ExprKind::Binary, "**", off, std::move(e), parse_unary(true));
        }
        return e;
    }

    ExprPtr parse_unary(bool with_filter) {
        DepthGuard g(*this);
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            e = make_expr(ExprKind::Unary, cur().off);
            e->name = t_[p_++].text;
            e->kids.push_back(parse_unary(false));
        } else {
            e = parse_postfix(parse_primary());
        }
        if (with_filter) e = parse_filter_expr(std::move(e));
        return e;
    }

    ExprPtr parse_primary() {
        DepthGuard g(*this);
        const Token& t = cur();
        switch (t.kind) {
            case Tok::Name: {
                ++p_;
                auto e = make_expr(ExprKind::Literal, t.off);
                if (t.text == "true" || t.text == "True") e->literal = Value::boolean(true);
                else if (t.text == "false" || t.text == "False") e->literal = Value::boolean(false);
                else if (t.text == "none" || t.text == "None") e->literal = Value::none();
                else {
                    e->kind = ExprKind::Name;
                    e->name = t.text;
                    if (t.text == "loop") ++loop_refs_;
                }
                return e;
            }
            case Tok::String: {
                auto e = make_expr(ExprKind::Literal, t.off);
                std::string s;
                while (cur().kind == Tok::String) s += t_[p_++].text;
                e->literal = Value::string(std::move(s));
                return e;
            }
            case Tok::Int:
            case Tok::Float: {
                ++p_;
                auto e = make_expr(ExprKind::Literal, t.off);
                e->literal = t.kind == Tok::Int ? Value::integer(t.ival) : Value::number(t.fval);
                return e;
            }
            case Tok::Op:
                if (t.text == "(") {
                    ++p_;
                    ExprPtr e = parse_tuple(true, true);
                    expect_op(")");
                    return e;
                }
                if (t.text == "[") {
                    ++p_;
                    auto e = make_expr(ExprKind::List, t.off);
                    while (!is_op("]")) {
                        if (!e->kids.empty()) expect_op(",");
                        if (is_op("]")) break;
                        e->kids.push_back(parse_expression(true));
                    }
                    ++p_;
                    return e;
                }
                if (t.text == "{") {
                    ++p_;
                    auto e = make_expr(ExprKind::Dict, t.off);
                    while (!is_op("}")) {
                        if (!e->kids.empty()) expect_op(",");
                        if (is_op("}")) break;
                        e->kids.push_back(parse_expression(true));
                        expect_op(":");
                        e->kids.push_back(parse_expression(true));
                    }
                    ++p_;
                    return e;
                }
                break;
            default: break;
        }
        fail_here("an expression");
    }

    ExprPtr parse_postfix(ExprPtr e) {
        for (;;) {
            if (is_op(".")) {
                const uint32_t off = t_[p_++].off;
                if (cur().kind == Tok::Name) {
                    auto g = make_expr(ExprKind::GetAttr, off);
                    g->name = t_[p_++].text;
                    g->kids.push_back(std::move(e));
                    e = std::move(g);
                } else if (cur().kind == Tok::Int) {
                    auto g = make_expr(ExprKind::GetItem, off);
                    g->kids.push_back(std::move(e));
                    auto idx = make_expr(ExprKind::Literal, cur().off);
                    idx->literal = Value::integer(t_[p_++].ival);
                    g->kids.push_back(std::move(idx));
                    e = std::move(g);
                } else {
                    fail_here("an attribute name");
                }
            } else if (is_op("[")) {
                e = parse_subscript(std::move(e));
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr obj) {
        const uint32_t off = t_[p_++].off;
        ExprPtr start;
        if (!is_op(":")) start = parse_tuple(true);
        if (!is_op(":")) {
            expect_op("]");
            auto g = make_expr(ExprKind::GetItem, off);
            g->kids.push_back(std::move(obj));
            g->kids.push_back(std::move(start));
            return g;
        }
        ++p_;
        auto s = make_expr(ExprKind::Slice, off);
        s->kids.push_back(std::move(obj));
        s->kids.push_back(std::move(start));
        s->kids.push_back(is_op(":") || is_op("]") ? nullptr : parse_expression(true));
        if (is_op(":")) {
            ++p_;
            s->kids.push_back(is_op("]") ? nullptr : parse_expression(true));
        } else {
            s->kids.push_back(nullptr);
        }
        expect_op("]");
        return s;
    }

    std::vector<Arg> parse_args() {
        expect_op("(");
        std::vector<Arg> args;
        while (!is_op(")")) {
            if (!args.empty()) expect_op(",");
            if (is_op(")")) break;
            if (is_op("*") || is_op("**")) fail(cur().off, "'*' and '**' arguments are not supported");
            Arg a;
            if (cur().kind == Tok::Name && peek().kind == Tok::Op && peek().text == "=") {
                a.name = t_[p_].text;
                p_ += 2;
            }
            a.value = parse_expression(true);
            args.push_back(std::move(a));
        }
        ++p_;
        return args;
    }

    ExprPtr parse_call(ExprPtr callee) {
        auto c = make_expr(ExprKind::Call, cur().off);
        c->args = parse_args();
        c->kids.push_back(std::move(callee));
        return c;
    }

    FilterCall parse_filter_call() {
        FilterCall f;
        f.off = cur().off;
        f.name = expect_name();
        while (is_op(".")) {
            ++p_;
            f.name += "." + expect_name();
        }
        if (is_op("(")) f.args = parse_args();
        return f;
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        for (;;) {
            if (is_op("|")) {
                ++p_;
                auto f = make_expr(ExprKind::Filter, cur().off);
                f->filter = parse_filter_call();
                f->kids.push_back(std::move(e));
                e = std::move(f);
            } else if (is_name("is")) {
                const uint32_t off = t_[p_++].off;
                auto te = make_expr(ExprKind::Test, off);
                if (is_name("not")) {
                    te->negated = true;
                    ++p_;
                }
                te->name = expect_name();
                while (is_op(".")) {
                    ++p_;
                    te->name += "." + expect_name();
                }
                const Token& t = cur();
                if (is_op("(")) {
                    te->args = parse_args();
                } else if ((t.kind == Tok::Name || t.kind == Tok::String || t.kind == Tok::Int ||
                            t.kind == Tok::Float || (t.kind == Tok::Op && (t.text == "(" || t.text == "[" ||
                                                                          t.text == "{"))) &&
                           !(t.kind == Tok::Name && (t.text == "else" || t.text == "or" || t.text == "and"))) {
                    if (t.kind == Tok::Name && t.text == "is") fail(t.off, "tests cannot be chained with 'is'");
                    Arg a;
                    a.value = parse_postfix(parse_primary());
                    te->args.push_back(std::move(a));
                }
                te->kids.push_back(std::move(e));
                e = std::move(te);
            } else if (is_op("(")) {
                e = parse_call(std::move(e));
            } else {
                return e;
            }
        }
    }

    const std::vector<Token>& t_;
    size_t p_ = 0;
    int depth_ = 0;
    int loop_depth_ = 0;
    int loop_refs_ = 0;
};

}  // namespace

Result<Body> parse(const std::vector<Token>& tokens, std::string_view src) {
    try {
        return Parser(tokens).parse_template();
    } catch (const SyntaxError& e) {
        return err("{}: syntax error: {}", describe_position(src, e.off), e.message);
    }
}

}  // namespace strata::jinja
