#pragma once
// The syntax tree of a parsed template. Nodes are plain structs tagged by kind;
// every node keeps the byte offset it came from so that errors can name the
// line and column.

#include "text/jinja_value.h"

#include <memory>
#include <string>
#include <vector>

namespace strata::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Arg {
    std::string name;  // empty for a positional argument
    ExprPtr value;
};

// `|name(args)` in an expression, a `{% filter %}` block or a `{% set %}` block.
struct FilterCall {
    std::string name;
    std::vector<Arg> args;
    uint32_t off = 0;
};

enum class ExprKind : uint8_t {
    Literal,  // literal
    Name,     // name
    GetAttr,  // kids[0].name
    GetItem,  // kids[0][kids[1]]
    Slice,    // kids[0][kids[1]:kids[2]:kids[3]], absent parts null
    Call,     // kids[0](args)
    Filter,   // kids[0] | filter
    Test,     // kids[0] is [not] name(args)
    Unary,    // op kids[0]: "-", "+", "not"
    Binary,   // kids[0] op kids[1]: + - * / // % ** ~
    And,
    Or,
    Compare,  // kids[0] ops[0] kids[1] ops[1] kids[2] ...
    Cond,     // kids[1] if kids[0] else kids[2] (kids[2] may be null)
    List,
    Tuple,
    Dict,     // kids: key, value, key, value...
};

struct Expr {
    ExprKind kind = ExprKind::Literal;
    uint32_t off = 0;
    Value literal;
    std::string name;              // Name, GetAttr, Test; the operator of Unary and Binary
    std::vector<ExprPtr> kids;
    std::vector<Arg> args;         // Call and Test arguments
    std::vector<std::string> ops;  // Compare operators: == != < <= > >= in notin
    FilterCall filter;             // Filter
    bool negated = false;          // Test
};

enum class StmtKind : uint8_t {
    Text,         // text
    Emit,         // {{ exprs[0] }}
    If,           // exprs[i] selects bodies[i]; a final extra body is the else
    For,          // for names in exprs[0] [if exprs[1]]: bodies[0], else bodies[1]
    Set,          // set names = exprs[0]
    SetAttr,      // set names[0].text = exprs[0]
    SetBlock,     // set names[0] | filters: bodies[0]
    Macro,        // macro text(names = exprs defaults, null where none): bodies[0]
    CallBlock,    // call(names = exprs) exprs.back(): bodies[0]
    FilterBlock,  // filter filters: bodies[0]
    Break,
    Continue,
    Do,           // do exprs[0]
    Block,        // a body rendered in place (`generation`)
};

struct Stmt {
    StmtKind kind = StmtKind::Text;
    uint32_t off = 0;
    std::string text;
    std::vector<std::string> names;
    std::vector<ExprPtr> exprs;
    std::vector<Body> bodies;
    std::vector<FilterCall> filters;
    bool uses_loop = false;  // For: whether the body mentions `loop`
};

}  // namespace strata::jinja
