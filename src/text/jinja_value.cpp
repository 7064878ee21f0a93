// Python semantics for Jinja values: truthiness, `str`, `repr`, equality and
// ordering, and the UTF-8 helpers that let strings count code points as Python does.

#include "text/jinja_value.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstring>

namespace strata::jinja {

namespace {
// Printing or comparing a list that contains itself (possible after `append`)
// would recurse forever; deeper than this is treated as a cycle.
constexpr int kMaxNesting = 512;

void check_nesting(int depth) {
    if (depth > kMaxNesting) throw RenderError("value nested too deeply (or contains itself)");
}
}  // namespace

const Value* CallArgs::get(size_t i, std::string_view name) const {
    if (i < pos.size()) return &pos[i];
    return kwarg(name);
}

const Value* CallArgs::kwarg(std::string_view name) const {
    for (const auto& [k, v] : kw)
        if (k == name) return &v;
    return nullptr;
}

Value Value::undefined(std::string hint) {
    Value v;
    v.s = std::move(hint);
    return v;
}
Value Value::none() {
    Value v;
    v.kind = Kind::None;
    return v;
}
Value Value::boolean(bool x) {
    Value v;
    v.kind = Kind::Bool;
    v.b = x;
    return v;
}
Value Value::integer(int64_t x) {
    Value v;
    v.kind = Kind::Int;
    v.i = x;
    return v;
}
Value Value::number(double x) {
    Value v;
    v.kind = Kind::Float;
    v.f = x;
    return v;
}
Value Value::string(std::string x) {
    Value v;
    v.kind = Kind::String;
    v.s = std::move(x);
    return v;
}
Value Value::new_list(std::vector<Value> items, bool tuple) {
    Value v;
    v.kind = Kind::List;
    v.list = std::make_shared<ListData>();
    v.list->items = std::move(items);
    v.list->tuple = tuple;
    return v;
}
Value Value::new_dict() {
    Value v;
    v.kind = Kind::Dict;
    v.dict = std::make_shared<DictData>();
    return v;
}
Value Value::new_namespace() {
    Value v = new_dict();
    v.dict->ns = true;
    return v;
}
Value Value::callable(std::string name, std::function<Value(Interp&, CallArgs&)> fn) {
    Value v;
    v.kind = Kind::Callable;
    v.fn = std::make_shared<Callable>(Callable{std::move(name), std::move(fn)});
    return v;
}

bool Value::is_tuple() const { return kind == Kind::List && list->tuple; }
bool Value::is_namespace() const { return kind == Kind::Dict && dict->ns; }

double Value::as_double() const {
    switch (kind) {
        case Kind::Int: return static_cast<double>(i);
        case Kind::Float: return f;
        case Kind::Bool: return b ? 1.0 : 0.0;
        default: return 0.0;
    }
}

Value* DictData::find(const Value& key) {
    for (auto& [k, v] : items)
        if (equals(k, key)) return &v;
    return nullptr;
}

Value* DictData::find(std::string_view key) {
    for (auto& [k, v] : items)
        if (k.kind == Kind::String && k.s == key) return &v;
    return nullptr;
}

void DictData::set(Value key, Value v) {
    if (Value* old = find(key)) {
        *old = std::move(v);
        return;
    }
    items.emplace_back(std::move(key), std::move(v));
}

bool DictData::erase(const Value& key) {
    for (auto it = items.begin(); it != items.end(); ++it)
        if (equals(it->first, key)) {
            items.erase(it);
            return true;
        }
    return false;
}

bool truthy(const Value& v) {
    switch (v.kind) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return v.b;
        case Kind::Int: return v.i != 0;
        case Kind::Float: return v.f != 0.0;
        case Kind::String: return !v.s.empty();
        case Kind::List: return !v.list->items.empty();
        case Kind::Dict: return v.dict->ns || !v.dict->items.empty();
        case Kind::Callable: return true;
    }
    return false;
}

const char* type_name(const Value& v) {
    switch (v.kind) {
        case Kind::Undefined: return "Undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return "str";
        case Kind::List: return v.list->tuple ? "tuple" : "list";
        case Kind::Dict: return v.dict->ns ? "Namespace" : "dict";
        case Kind::Callable: return "function";
    }
    return "?";
}

std::string float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
    // The shortest round-tripping digits, then Python's layout: positional for
    // decimal exponents in [-4, 16), scientific with a two-digit exponent otherwise.
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, r.ptr);
    std::string out;
    if (sci[0] == '-') {
        out = "-";
        sci.erase(0, 1);
    }
    size_t e = sci.find('e');
    int exp10 = std::atoi(sci.c_str() + e + 1);
    std::string digits;
    for (size_t k = 0; k < e; ++k)
        if (sci[k] != '.') digits += sci[k];
    if (exp10 < -4 || exp10 >= 16) {
        out += digits[0];
        if (digits.size() > 1) out += "." + digits.substr(1);
        out += fmt::format("e{}{:02d}", exp10 < 0 ? '-' : '+', std::abs(exp10));
        return out;
    }
    if (exp10 < 0) {
        out += "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
    } else if (static_cast<size_t>(exp10) + 1 >= digits.size()) {
        out += digits + std::string(static_cast<size_t>(exp10) + 1 - digits.size(), '0') + ".0";
    } else {
        out += digits.substr(0, static_cast<size_t>(exp10) + 1) + "." +
               digits.substr(static_cast<size_t>(exp10) + 1);
    }
    return out;
}

namespace {

void append_str_repr(std::string& out, const std::string& s) {
    // Python picks single quotes unless the text has one and no double quote.
    char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    out += q;
    for (unsigned char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == static_cast<unsigned char>(q)) { out += '\\'; out += q; }
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
    out += q;
}

void append_str(std::string& out, const Value& v, int depth) {
    switch (v.kind) {
        case Kind::Undefined: return;
        case Kind::String: out += v.s; return;
        default: append_repr(out, v, depth);
    }
}

}  // namespace

void append_repr(std::string& out, const Value& v, int depth) {
    check_nesting(depth);
    switch (v.kind) {
        case Kind::Undefined: return;
        case Kind::None: out += "None"; return;
        case Kind::Bool: out += v.b ? "True" : "False"; return;
        case Kind::Int: out += std::to_string(v.i); return;
        case Kind::Float: out += float_repr(v.f); return;
        case Kind::String: append_str_repr(out, v.s); return;
        case Kind::List: {
            const bool tuple = v.list->tuple;
            out += tuple ? '(' : '[';
            const auto& items = v.list->items;
            for (size_t k = 0; k < items.size(); ++k) {
                if (k) out += ", ";
                append_repr(out, items[k], depth + 1);
            }
            if (tuple && items.size() == 1) out += ',';
            out += tuple ? ')' : ']';
            return;
        }
        case Kind::Dict: {
            if (v.dict->ns) out += "<Namespace ";
            out += '{';
            bool first = true;
            for (const auto& [k, x] : v.dict->items) {
                if (!first) out += ", ";
                first = false;
                append_repr(out, k, depth + 1);
                out += ": ";
                append_repr(out, x, depth + 1);
            }
            out += '}';
            if (v.dict->ns) out += '>';
            return;
        }
        case Kind::Callable: out += "<function " + v.fn->name + ">"; return;
    }
}

std::string to_str(const Value& v) {
    if (v.kind == Kind::String) return v.s;
    std::string out;
    append_str(out, v, 0);
    return out;
}

std::string repr(const Value& v) {
    std::string out;
    append_repr(out, v, 0);
    return out;
}

bool equals(const Value& a, const Value& b, int depth) {
    check_nesting(depth);
    if (a.is_number() && b.is_number()) {
        if (a.kind != Kind::Float && b.kind != Kind::Float)
            return (a.kind == Kind::Bool ? a.b : a.i) == (b.kind == Kind::Bool ? b.b : b.i);
        return a.as_double() == b.as_double();
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::String: return a.s == b.s;
        case Kind::List: {
            if (a.list == b.list) return true;
            if (a.list->tuple != b.list->tuple || a.list->items.size() != b.list->items.size()) return false;
            for (size_t k = 0; k < a.list->items.size(); ++k)
                if (!equals(a.list->items[k], b.list->items[k], depth + 1)) return false;
            return true;
        }
        case Kind::Dict: {
            if (a.dict == b.dict) return true;
            if (a.dict->ns || b.dict->ns) return false;
            if (a.dict->items.size() != b.dict->items.size()) return false;
            for (const auto& [k, x] : a.dict->items) {
                const Value* y = b.dict->find(k);
                if (!y || !equals(x, *y, depth + 1)) return false;
            }
            return true;
        }
        case Kind::Callable: return a.fn == b.fn;
        default: return false;
    }
}

namespace {

std::string lower_ascii(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

}  // namespace

int compare(const Value& a, const Value& b, bool case_sensitive) {
    if (a.is_number() && b.is_number()) {
        if (a.kind == Kind::Float || b.kind == Kind::Float) {
            double x = a.as_double(), y = b.as_double();
            return x < y ? -1 : (y < x ? 1 : 0);
        }
        int64_t x = a.kind == Kind::Bool ? a.b : a.i, y = b.kind == Kind::Bool ? b.b : b.i;
        return x < y ? -1 : (y < x ? 1 : 0);
    }
    if (a.kind == Kind::String && b.kind == Kind::String) {
        int c = case_sensitive ? a.s.compare(b.s) : lower_ascii(a.s).compare(lower_ascii(b.s));
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (a.kind == Kind::List && b.kind == Kind::List && a.list->tuple == b.list->tuple) {
        const auto& x = a.list->items;
        const auto& y = b.list->items;
        for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
            if (equals(x[k], y[k])) continue;
            return compare(x[k], y[k], case_sensitive);
        }
        return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    throw RenderError(fmt::format("'<' not supported between instances of '{}' and '{}'", type_name(a),
                                  type_name(b)));
}

bool less(const Value& a, const Value& b) { return compare(a, b) < 0; }

uint32_t utf8_next(std::string_view s, size_t& i) {
    const auto c0 = static_cast<unsigned char>(s[i]);
    if (c0 < 0x80) {
        ++i;
        return c0;
    }
    int n = c0 >= 0xf0 && c0 < 0xf5 ? 3 : c0 >= 0xe0 ? 2 : c0 >= 0xc2 && c0 < 0xe0 ? 1 : -1;
    if (n < 0 || i + static_cast<size_t>(n) >= s.size()) {
        ++i;
        return 0xfffd;
    }
    uint32_t cp = c0 & (0x3f >> n);
    for (int k = 1; k <= n; ++k) {
        const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
        if ((c & 0xc0) != 0x80) {
            ++i;
            return 0xfffd;
        }
        cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) {
        ++i;
        return 0xfffd;
    }
    i += static_cast<size_t>(n) + 1;
    return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (size_t i = 0; i < s.size();) {
        utf8_next(s, i);
        ++n;
    }
    return n;
}

std::vector<std::string_view> utf8_chars(std::string_view s) {
    std::vector<std::string_view> out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        size_t start = i;
        utf8_next(s, i);
        out.push_back(s.substr(start, i - start));
    }
    return out;
}

std::string utf8_sanitize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        size_t start = i;
        uint32_t cp = utf8_next(s, i);
        if (cp == 0xfffd && !(i - start == 3 && s.substr(start, 3) == "\xef\xbf\xbd")) append_utf8(out, cp);
        else out.append(s.substr(start, i - start));
    }
    return out;
}

bool is_py_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

}  // namespace strata::jinja
