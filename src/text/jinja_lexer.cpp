// Lexing follows Jinja2's own lexer rule for rule, because whitespace control is
// where real templates are most fragile: a tag's `-` strips all whitespace on
// that side, `trim_blocks` removes the first newline after a block or comment
// tag, and `lstrip_blocks` removes spaces and tabs before a block or comment tag
// that starts its line (never before `{{`).

#include "text/jinja_lexer.h"

#include "text/jinja_value.h"

#include <fmt/format.h>

#include <cstring>

namespace strata::jinja {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class Lexer {
public:
    Lexer(std::string_view src, const LexOptions& o) : s_(src), o_(o) {}

    Result<std::vector<Token>> run() {
        while (pos_ < s_.size()) {
            size_t start = find_tag(pos_);
            if (start == std::string_view::npos) {
                text(s_.substr(pos_), pos_);
                pos_ = s_.size();
                break;
            }
            const char kind = s_[start + 1];
            size_t after = start + 2;
            char sign = 0;
            if (after < s_.size() && (s_[after] == '-' || s_[after] == '+')) sign = s_[after];
            std::string_view t = s_.substr(pos_, start - pos_);
            if (sign == '-') {
                while (!t.empty() && is_ws(t.back())) t.remove_suffix(1);
            } else if (sign != '+' && o_.lstrip_blocks && kind != '{') {
                size_t l_pos = t.rfind('\n');
                l_pos = l_pos == std::string_view::npos ? 0 : l_pos + 1;
                if ((l_pos > 0 || line_starting_) && l_pos < t.size()) {
                    bool blank = true;
                    for (size_t k = l_pos; k < t.size(); ++k) blank = blank && is_ws(t[k]);
                    if (blank) t = t.substr(0, l_pos);
                }
            }
            text(t, pos_);
            pos_ = after + (sign ? 1 : 0);
            line_starting_ = false;
            Status st = kind == '#' ? comment(start) : kind == '%' ? block(start) : variable(start);
            if (!st.ok()) return st.error();
        }
        out_.push_back(Token{.kind = Tok::Eof, .off = static_cast<uint32_t>(s_.size())});
        return std::move(out_);
    }

private:
    size_t find_tag(size_t from) const {
        for (size_t p = s_.find('{', from); p != std::string_view::npos; p = s_.find('{', p + 1))
            if (p + 1 < s_.size() && (s_[p + 1] == '{' || s_[p + 1] == '%' || s_[p + 1] == '#')) return p;
        return std::string_view::npos;
    }

    void text(std::string_view t, size_t off) {
        if (t.empty()) return;
        out_.push_back(Token{.kind = Tok::Text, .off = static_cast<uint32_t>(off), .text = std::string(t)});
    }

    Error error_at(size_t off, const std::string& msg) const {
        return err("{}: {}", describe_position(s_, static_cast<uint32_t>(off)), msg);
    }

    // After a tag's end: `-` strips all following whitespace, `+` keeps it, and
    // otherwise `trim_blocks` drops one newline (block and comment tags only).
    void after_end(char sign, bool trims) {
        if (sign == '-') {
            while (pos_ < s_.size() && is_ws(s_[pos_])) ++pos_;
        } else if (sign != '+' && trims && o_.trim_blocks && pos_ < s_.size() && s_[pos_] == '\n') {
            ++pos_;
        }
        line_starting_ = pos_ > 0 && s_[pos_ - 1] == '\n';
    }

    Status comment(size_t start) {
        size_t q = s_.find("#}", pos_);
        if (q == std::string_view::npos) return error_at(start, "unterminated comment (missing '#}')");
        char sign = 0;
        if (q > pos_ && (s_[q - 1] == '-' || s_[q - 1] == '+')) sign = s_[q - 1];
        pos_ = q + 2;
        after_end(sign, true);
        return {};
    }

    bool match_word(size_t& p, std::string_view w) const {
        if (s_.substr(p, w.size()) != w) return false;
        if (p + w.size() < s_.size() && is_name_char(s_[p + w.size()])) return false;
        p += w.size();
        return true;
    }

    // `{% raw %}...{% endraw %}`: the content is text, tags and all.
    bool try_raw(size_t start, Status& st) {
        size_t p = pos_;
        while (p < s_.size() && is_ws(s_[p])) ++p;
        if (!match_word(p, "raw")) return false;
        while (p < s_.size() && is_ws(s_[p])) ++p;
        char sign = 0;
        if (p < s_.size() && s_[p] == '-') sign = s_[p++];
        if (s_.substr(p, 2) != "%}") return false;
        pos_ = p + 2;
        if (sign == '-')
            while (pos_ < s_.size() && is_ws(s_[pos_])) ++pos_;
        for (size_t q = s_.find("{%", pos_); q != std::string_view::npos; q = s_.find("{%", q + 1)) {
            size_t r = q + 2;
            char begin_sign = 0;
            if (r < s_.size() && (s_[r] == '-' || s_[r] == '+')) begin_sign = s_[r++];
            while (r < s_.size() && is_ws(s_[r])) ++r;
            if (!match_word(r, "endraw")) continue;
            while (r < s_.size() && is_ws(s_[r])) ++r;
            char end_sign = 0;
            if (r < s_.size() && (s_[r] == '-' || s_[r] == '+')) end_sign = s_[r++];
            if (s_.substr(r, 2) != "%}") continue;
            std::string_view content = s_.substr(pos_, q - pos_);
            if (begin_sign == '-')
                while (!content.empty() && is_ws(content.back())) content.remove_suffix(1);
            text(content, pos_);
            pos_ = r + 2;
            after_end(end_sign, true);
            return true;
        }
        st = error_at(start, "unterminated raw block (missing '{% endraw %}')");
        return true;
    }

    Status block(size_t start) {
        Status st;
        if (try_raw(start, st)) return st;
        out_.push_back(Token{.kind = Tok::BlockBegin, .off = static_cast<uint32_t>(start)});
        return inside(start, true);
    }

    Status variable(size_t start) {
        out_.push_back(Token{.kind = Tok::VarBegin, .off = static_cast<uint32_t>(start)});
        return inside(start, false);
    }

    Status inside(size_t start, bool is_block) {
        int depth = 0;
        for (;;) {
            while (pos_ < s_.size() && is_ws(s_[pos_])) ++pos_;
            if (pos_ >= s_.size())
                return error_at(start, fmt::format("unterminated tag (missing '{}')", is_block ? "%}" : "}}"));
            const std::string_view rest = s_.substr(pos_);
            if (depth == 0) {
                const char* end = is_block ? "%}" : "}}";
                char sign = 0;
                size_t len = 0;
                if ((rest[0] == '-' || (is_block && rest[0] == '+')) && rest.substr(1, 2) == end) {
                    sign = rest[0];
                    len = 3;
                } else if (rest.substr(0, 2) == end) {
                    len = 2;
                }
                if (len) {
                    out_.push_back(Token{.kind = is_block ? Tok::BlockEnd : Tok::VarEnd,
                                         .off = static_cast<uint32_t>(pos_)});
                    pos_ += len;
                    after_end(sign, is_block);
                    return {};
                }
            }
            Status st = token(depth);
            if (!st.ok()) return st;
        }
    }

    Status token(int& depth) {
        const size_t start = pos_;
        const char c = s_[pos_];
        if (is_name_start(c)) {
            while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
            out_.push_back(Token{.kind = Tok::Name, .off = static_cast<uint32_t>(start),
                                 .text = std::string(s_.substr(start, pos_ - start))});
            return {};
        }
        if (is_digit(c)) return number();
        if (c == '\'' || c == '"') return string();
        static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~",
                                           "<",  ">",  "=",  "(",  ")",  "[",  "]", "{", "}", ",", ".", ":",
                                           "|",  ";"};
        for (const char* op : kOps) {
            size_t n = std::strlen(op);
            if (s_.substr(pos_, n) == op) {
                if (n == 1 && (c == '(' || c == '[' || c == '{')) ++depth;
                if (n == 1 && (c == ')' || c == ']' || c == '}') && depth > 0) --depth;
                pos_ += n;
                out_.push_back(Token{.kind = Tok::Op, .off = static_cast<uint32_t>(start), .text = op});
                return {};
            }
        }
        return error_at(start, fmt::format("unexpected character '{}'", c));
    }

    void digits(std::string& out) {
        while (pos_ < s_.size() && (is_digit(s_[pos_]) || (s_[pos_] == '_' && pos_ + 1 < s_.size() &&
                                                            is_digit(s_[pos_ + 1])))) {
            if (s_[pos_] != '_') out += s_[pos_];
            ++pos_;
        }
    }

    Status number() {
        const size_t start = pos_;
        std::string num;
        digits(num);
        bool is_float = false;
        // After a `.` (as in `x.0.1`) only integers follow, as in Jinja2.
        const bool after_dot = !out_.empty() && out_.back().kind == Tok::Op && out_.back().text == ".";
        if (!after_dot && pos_ + 1 < s_.size() && s_[pos_] == '.' && is_digit(s_[pos_ + 1])) {
            is_float = true;
            num += '.';
            ++pos_;
            digits(num);
        }
        if (!after_dot && pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            size_t p = pos_ + 1;
            if (p < s_.size() && (s_[p] == '+' || s_[p] == '-')) ++p;
            if (p < s_.size() && is_digit(s_[p])) {
                is_float = true;
                num += 'e';
                num += s_.substr(pos_ + 1, p - pos_ - 1);
                pos_ = p;
                digits(num);
            }
        }
        Token t{.kind = is_float ? Tok::Float : Tok::Int, .off = static_cast<uint32_t>(start),
                .text = std::string(s_.substr(start, pos_ - start))};
        if (is_float) {
            t.fval = std::strtod(num.c_str(), nullptr);
        } else {
            errno = 0;
            t.ival = std::strtoll(num.c_str(), nullptr, 10);
            if (errno == ERANGE) return error_at(start, "integer literal too large");
        }
        out_.push_back(std::move(t));
        return {};
    }

    // Python's string escapes (Jinja2 decodes literals with "unicode-escape").
    Status string() {
        const size_t start = pos_;
        const char q = s_[pos_++];
        std::string out;
        while (pos_ < s_.size() && s_[pos_] != q) {
            char c = s_[pos_++];
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) break;
            char e = s_[pos_++];
            switch (e) {
                case '\n': break;
                case '\\': out += '\\'; break;
                case '\'': out += '\''; break;
                case '"': out += '"'; break;
                case 'a': out += '\a'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'v': out += '\v'; break;
                case 'x':
                case 'u':
                case 'U': {
                    const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                    uint32_t cp = 0;
                    for (int k = 0; k < n; ++k) {
                        int h = pos_ < s_.size() ? hex_value(s_[pos_]) : -1;
                        if (h < 0) return error_at(pos_, fmt::format("truncated \\{} escape in string", e));
                        cp = cp * 16 + static_cast<uint32_t>(h);
                        ++pos_;
                    }
                    if (cp > 0x10ffff) return error_at(start, "escape past U+10FFFF in string");
                    append_utf8(out, cp);
                    break;
                }
                default:
                    if (e >= '0' && e <= '7') {
                        uint32_t cp = static_cast<uint32_t>(e - '0');
                        for (int k = 0; k < 2 && pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '7'; ++k)
                            cp = cp * 8 + static_cast<uint32_t>(s_[pos_++] - '0');
                        append_utf8(out, cp);
                    } else {
                        out += '\\';
                        out += e;
                    }
            }
        }
        if (pos_ >= s_.size()) return error_at(start, "unterminated string literal");
        ++pos_;
        out_.push_back(Token{.kind = Tok::String, .off = static_cast<uint32_t>(start), .text = std::move(out)});
        return {};
    }

    std::string_view s_;
    const LexOptions& o_;
    size_t pos_ = 0;
    bool line_starting_ = true;
    std::vector<Token> out_;
};

}  // namespace

std::string normalize_source(std::string_view src, bool keep_trailing_newline) {
    std::string out;
    out.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
        if (src[i] == '\r') {
            out += '\n';
            if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
        } else {
            out += src[i];
        }
    }
    if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

Result<std::vector<Token>> lex(std::string_view src, const LexOptions& opts) {
    if (src.size() > UINT32_MAX) return err("template is larger than 4 GiB");
    return Lexer(src, opts).run();
}

std::string describe_position(std::string_view src, uint32_t off) {
    size_t line = 1, line_start = 0;
    const size_t end = std::min<size_t>(off, src.size());
    for (size_t k = 0; k < end; ++k)
        if (src[k] == '\n') {
            ++line;
            line_start = k + 1;
        }
    return fmt::format("line {}, column {}", line, utf8_length(src.substr(line_start, end - line_start)) + 1);
}

}  // namespace strata::jinja
