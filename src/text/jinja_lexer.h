#pragma once
// The Jinja lexer: template text and the tokens inside `{{ }}`, `{% %}` and
// `{# #}` tags, with Jinja2's whitespace control applied here as Jinja2 does it
// (`-`/`+` markers, `trim_blocks`, `lstrip_blocks`, the dropped final newline).

#include "util/result.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::jinja {

enum class Tok : uint8_t { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, Int, Float, String, Op, Eof };

struct Token {
    Tok kind = Tok::Eof;
    uint32_t off = 0;  // byte offset into the (newline-normalised) source
    std::string text;  // Text, Name, Op, and the decoded String
    int64_t ival = 0;
    double fval = 0.0;
};

struct LexOptions {
    bool trim_blocks = true;
    bool lstrip_blocks = true;
    bool keep_trailing_newline = false;
};

// Normalises newlines to "\n" and drops one trailing newline unless kept, as
// Jinja2 does before lexing; token offsets refer to the returned text.
std::string normalize_source(std::string_view src, bool keep_trailing_newline);

Result<std::vector<Token>> lex(std::string_view normalized_src, const LexOptions& opts);

// "line 3, column 7" for a byte offset (columns count code points from 1).
std::string describe_position(std::string_view src, uint32_t off);

}  // namespace strata::jinja
