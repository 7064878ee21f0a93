#pragma once
// The Jinja parser: tokens from the lexer into the syntax tree of jinja_ast.h,
// following Jinja2's grammar and operator precedence.

#include "text/jinja_ast.h"
#include "text/jinja_lexer.h"
#include "util/result.h"

#include <string_view>
#include <vector>

namespace strata::jinja {

// Nesting deeper than this (brackets, unary operators, blocks) is an error, so
// a hostile template cannot overflow the stack of the recursive-descent parser.
constexpr int kMaxParseDepth = 200;

// `src` is the normalised source the tokens came from, for error positions.
Result<Body> parse(const std::vector<Token>& tokens, std::string_view src);

}  // namespace strata::jinja
