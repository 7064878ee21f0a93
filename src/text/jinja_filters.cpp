// Jinja2's built-in filters and tests that chat templates use, with
// `tojson` as Hugging Face overrides it (`json.dumps`, non-ASCII kept).

#include "text/jinja_interp.h"
#include "text/jinja_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>

namespace strata::jinja {

namespace {

using Args = CallArgs;

bool arg_bool(const Args& a, size_t i, std::string_view name, bool def) {
    const Value* v = a.get(i, name);
    return v ? truthy(*v) : def;
}

std::string arg_str(const Args& a, size_t i, std::string_view name, std::string def) {
    const Value* v = a.get(i, name);
    return v && !v->is_none() ? to_str(*v) : def;
}

size_t length_of(const Value& v) {
    switch (v.kind) {
        case Kind::Undefined: return 0;
        case Kind::String: return utf8_length(v.s);
        case Kind::List: return v.list->items.size();
        case Kind::Dict: return v.dict->items.size();
        default: throw RenderError(fmt::format("object of type '{}' has no len()", type_name(v)));
    }
}

// Jinja2's attribute getter for `attribute=` arguments: "a.b.0" walks dicts and lists.
Value get_path(Interp& in, const Value& v, const std::string& path) {
    Value cur = v;
    size_t start = 0;
    while (start <= path.size()) {
        size_t dot = path.find('.', start);
        std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
        cur = numeric ? in.get_item(cur, Value::integer(std::stoll(part))) : in.get_item(cur, Value::string(part));
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return cur;
}

Value f_abs(Interp&, Value& v, Args&) {
    if (v.kind == Kind::Float) return Value::number(std::fabs(v.f));
    if (v.kind == Kind::Int || v.kind == Kind::Bool) {
        int64_t x = v.kind == Kind::Bool ? v.b : v.i;
        if (x == INT64_MIN) throw RenderError("integer overflow");
        return Value::integer(x < 0 ? -x : x);
    }
    throw RenderError(fmt::format("bad operand type for abs(): '{}'", type_name(v)));
}

Value f_attr(Interp& in, Value& v, Args& a) {
    const Value* n = a.get(0, "name");
    if (!n) throw RenderError("attr filter needs a name");
    return in.get_attr(v, to_str(*n));
}

Value f_capitalize(Interp&, Value& v, Args&) {
    std::string s = ascii_lower(to_str(v));
    if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
    return Value::string(std::move(s));
}

Value f_center(Interp&, Value& v, Args& a) {
    std::string s = to_str(v);
    const Value* w = a.get(0, "width");
    const int64_t width = w ? to_int(*w, "center") : 80;
    const auto len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value::string(s);
    const int64_t total = width - len;
    const int64_t left = total / 2 + (total & width & 1);
    return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                         std::string(static_cast<size_t>(total - left), ' '));
}

Value f_length(Interp&, Value& v, Args&) { return Value::integer(static_cast<int64_t>(length_of(v))); }

Value f_default(Interp&, Value& v, Args& a) {
    const Value* d = a.get(0, "default_value");
    const bool boolean = arg_bool(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !truthy(v))) return d ? *d : Value::string("");
    return v;
}

std::vector<Value> sorted(Interp& in, std::vector<Value> items, bool reverse, bool case_sensitive,
                          const std::string& attribute) {
    in.count_iterations(items.size());
    auto key = [&](const Value& x) { return attribute.empty() ? x : get_path(in, x, attribute); };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        int c = compare(key(x), key(y), case_sensitive);
        return reverse ? c > 0 : c < 0;
    });
    return items;
}

Value f_dictsort(Interp& in, Value& v, Args& a) {
    if (!v.is_dict()) throw RenderError(fmt::format("dictsort expects a dict, not '{}'", type_name(v)));
    const bool cs = arg_bool(a, 0, "case_sensitive", false);
    const std::string by = arg_str(a, 1, "by", "key");
    const bool reverse = arg_bool(a, 2, "reverse", false);
    if (by != "key" && by != "value") throw RenderError("dictsort: 'by' must be 'key' or 'value'");
    std::vector<Value> pairs;
    for (const auto& [k, x] : v.dict->items) pairs.push_back(Value::new_list({k, x}, true));
    in.count_iterations(pairs.size());
    const size_t idx = by == "key" ? 0 : 1;
    std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
        int c = compare(x.list->items[idx], y.list->items[idx], cs);
        return reverse ? c > 0 : c < 0;
    });
    return Value::new_list(std::move(pairs));
}

}  // namespace

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

namespace {

Value f_escape(Interp&, Value& v, Args&) {
    if (v.is_string() && v.safe) return v;
    Value out = Value::string(html_escape(to_str(v)));
    out.safe = true;
    return out;
}

Value f_forceescape(Interp&, Value& v, Args&) {
    Value out = Value::string(html_escape(to_str(v)));
    out.safe = true;
    return out;
}

Value f_first(Interp&, Value& v, Args&) {
    std::vector<Value> items = iterate(v);
    return items.empty() ? Value::undefined("no first item, sequence was empty") : items.front();
}

Value f_last(Interp&, Value& v, Args&) {
    std::vector<Value> items = iterate(v);
    return items.empty() ? Value::undefined("no last item, sequence was empty") : items.back();
}

bool parse_float(const std::string& s, double& out) {
    std::string t = strip_chars(s, nullptr, true, true);
    std::string clean;
    for (char c : t)
        if (c != '_') clean += c;
    if (clean.empty()) return false;
    char* end = nullptr;
    out = std::strtod(clean.c_str(), &end);
    return end == clean.c_str() + clean.size();
}

Value f_float(Interp&, Value& v, Args& a) {
    const Value* d = a.get(0, "default");
    if (v.is_number()) return Value::number(v.as_double());
    double x = 0;
    if (v.is_string() && parse_float(v.s, x)) return Value::number(x);
    return d ? *d : Value::number(0.0);
}

Value f_int(Interp&, Value& v, Args& a) {
    const Value* d = a.get(0, "default");
    const Value* b = a.get(1, "base");
    const int base = b ? static_cast<int>(to_int(*b, "int base")) : 10;
    if (v.kind == Kind::Int) return v;
    if (v.kind == Kind::Bool) return Value::integer(v.b);
    if (v.kind == Kind::Float && std::isfinite(v.f) && std::fabs(v.f) < 9.2e18)
        return Value::integer(static_cast<int64_t>(v.f));
    if (v.is_string()) {
        std::string t = strip_chars(v.s, nullptr, true, true), clean;
        for (char c : t)
            if (c != '_') clean += c;
        if (!clean.empty() && base >= 2 && base <= 36) {
            char* end = nullptr;
            errno = 0;
            long long x = std::strtoll(clean.c_str(), &end, base);
            if (errno == 0 && end == clean.c_str() + clean.size()) return Value::integer(x);
        }
        double x = 0;
        if (parse_float(v.s, x) && std::isfinite(x) && std::fabs(x) < 9.2e18)
            return Value::integer(static_cast<int64_t>(x));
    }
    return d ? *d : Value::integer(0);
}

Value f_format(Interp& in, Value& v, Args& a) {
    if (!a.kw.empty()) {
        Value d = Value::new_dict();
        for (auto& [k, x] : a.kw) d.dict->set(k, x);
        return Value::string(percent_format(in, to_str(v), d));
    }
    return Value::string(percent_format(in, to_str(v), Value::new_list(a.pos, true)));
}

// Python's `str.splitlines()`.
std::vector<std::string> split_lines(const std::string& s) {
    std::vector<std::string> lines;
    std::string cur;
    for (size_t i = 0; i < s.size();) {
        size_t start = i;
        uint32_t cp = utf8_next(s, i);
        if (cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) || cp == 0x85 ||
            cp == 0x2028 || cp == 0x2029) {
            if (cp == '\r' && i < s.size() && s[i] == '\n') ++i;
            lines.push_back(std::move(cur));
            cur.clear();
        } else {
            cur.append(s, start, i - start);
        }
    }
    if (!cur.empty()) lines.push_back(std::move(cur));
    return lines;
}

Value f_indent(Interp& in, Value& v, Args& a) {
    const Value* w = a.get(0, "width");
    std::string ind = !w ? "    " : w->is_string() ? w->s : std::string(static_cast<size_t>(std::max<int64_t>(0, to_int(*w, "indent"))), ' ');
    const bool first = arg_bool(a, 1, "first", false);
    const bool blank = arg_bool(a, 2, "blank", false);
    std::vector<std::string> lines = split_lines(to_str(v) + "\n");
    std::string rv;
    if (blank) {
        for (size_t k = 0; k < lines.size(); ++k) rv += (k ? "\n" + ind : "") + lines[k];
    } else {
        rv = lines.empty() ? "" : lines[0];
        for (size_t k = 1; k < lines.size(); ++k) rv += "\n" + (lines[k].empty() ? "" : ind) + lines[k];
    }
    if (first) rv = ind + rv;
    in.check_size(rv.size());
    in.made_bytes(rv.size());
    return Value::string(std::move(rv));
}

Value f_items(Interp&, Value& v, Args&) {
    if (v.is_undefined()) return Value::new_list();
    if (!v.is_dict()) throw RenderError(fmt::format("items expects a mapping, not '{}'", type_name(v)));
    std::vector<Value> pairs;
    for (const auto& [k, x] : v.dict->items) pairs.push_back(Value::new_list({k, x}, true));
    return Value::new_list(std::move(pairs));
}

Value f_join(Interp& in, Value& v, Args& a) {
    const std::string sep = arg_str(a, 0, "d", "");
    const std::string attr = arg_str(a, 1, "attribute", "");
    std::string out;
    bool first = true;
    std::vector<Value> items = iterate(v);
    in.count_iterations(items.size());
    for (const Value& x : items) {
        if (!first) out += sep;
        first = false;
        out += to_str(attr.empty() ? x : get_path(in, x, attr));
        in.check_size(out.size());
    }
    in.made_bytes(out.size());
    return Value::string(std::move(out));
}

Value f_list(Interp&, Value& v, Args&) { return Value::new_list(iterate(v)); }

Value f_lower(Interp&, Value& v, Args&) { return Value::string(ascii_lower(to_str(v))); }
Value f_upper(Interp&, Value& v, Args&) { return Value::string(ascii_upper(to_str(v))); }

Value f_map(Interp& in, Value& v, Args& a) {
    // Jinja2 maps and selects over `value` only `if value`: none gives nothing.
    std::vector<Value> items = truthy(v) ? iterate(v) : std::vector<Value>{};
    in.count_iterations(items.size());
    std::vector<Value> out;
    if (const Value* attr = a.kwarg("attribute")) {
        const Value* def = a.kwarg("default");
        for (const Value& x : items) {
            Value y = get_path(in, x, to_str(*attr));
            out.push_back(y.is_undefined() && def ? *def : y);
        }
        return Value::new_list(std::move(out));
    }
    if (a.pos.empty()) throw RenderError("map needs a filter name or attribute=");
    const std::string name = to_str(a.pos[0]);
    Args rest;
    rest.pos.assign(a.pos.begin() + 1, a.pos.end());
    rest.kw = a.kw;
    for (const Value& x : items) {
        Args copy = rest;
        out.push_back(in.apply_filter(name, x, copy));
    }
    return Value::new_list(std::move(out));
}

Value min_max(Interp& in, Value& v, Args& a, bool want_max) {
    const bool cs = arg_bool(a, 0, "case_sensitive", false);
    const std::string attr = arg_str(a, 1, "attribute", "");
    std::vector<Value> items = iterate(v);
    if (items.empty()) return Value::undefined("no min or max item, sequence was empty");
    size_t best = 0;
    for (size_t k = 1; k < items.size(); ++k) {
        const Value x = attr.empty() ? items[k] : get_path(in, items[k], attr);
        const Value y = attr.empty() ? items[best] : get_path(in, items[best], attr);
        int c = compare(x, y, cs);
        if (want_max ? c > 0 : c < 0) best = k;
    }
    return items[best];
}
Value f_max(Interp& in, Value& v, Args& a) { return min_max(in, v, a, true); }
Value f_min(Interp& in, Value& v, Args& a) { return min_max(in, v, a, false); }

Value select_impl(Interp& in, Value& v, Args& a, bool by_attr, bool keep) {
    std::vector<Value> items = truthy(v) ? iterate(v) : std::vector<Value>{};
    in.count_iterations(items.size());
    size_t next = 0;
    std::string attr;
    if (by_attr) {
        if (a.pos.empty()) throw RenderError("selectattr/rejectattr need an attribute name");
        attr = to_str(a.pos[next++]);
    }
    std::string test;
    if (next < a.pos.size()) test = to_str(a.pos[next++]);
    Args targs;
    targs.pos.assign(a.pos.begin() + static_cast<std::ptrdiff_t>(next), a.pos.end());
    std::vector<Value> out;
    for (const Value& x : items) {
        const Value subject = by_attr ? get_path(in, x, attr) : x;
        bool ok = test.empty() ? truthy(subject) : in.apply_test(test, subject, targs);
        if (ok == keep) out.push_back(x);
    }
    return Value::new_list(std::move(out));
}
Value f_select(Interp& in, Value& v, Args& a) { return select_impl(in, v, a, false, true); }
Value f_reject(Interp& in, Value& v, Args& a) { return select_impl(in, v, a, false, false); }
Value f_selectattr(Interp& in, Value& v, Args& a) { return select_impl(in, v, a, true, true); }
Value f_rejectattr(Interp& in, Value& v, Args& a) { return select_impl(in, v, a, true, false); }

Value f_replace(Interp& in, Value& v, Args& a) {
    Args m;
    m.pos.push_back(a.get(0, "old") ? *a.get(0, "old") : Value::string(""));
    m.pos.push_back(a.get(1, "new") ? *a.get(1, "new") : Value::string(""));
    if (const Value* c = a.get(2, "count"); c && !c->is_none()) m.pos.push_back(*c);
    return call_method(in, Value::string(to_str(v)), "replace", m);
}

Value f_reverse(Interp&, Value& v, Args&) {
    if (v.is_string()) {
        auto chars = utf8_chars(v.s);
        std::string out;
        for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
        return Value::string(std::move(out));
    }
    std::vector<Value> items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::new_list(std::move(items));
}

Value f_round(Interp&, Value& v, Args& a) {
    const Value* p = a.get(0, "precision");
    const int64_t prec = p ? to_int(*p, "round") : 0;
    const std::string method = arg_str(a, 1, "method", "common");
    if (!v.is_number()) throw RenderError(fmt::format("round expects a number, not '{}'", type_name(v)));
    const double x = v.as_double();
    if (method == "common") {
        if (v.kind != Kind::Float) return Value::integer(v.kind == Kind::Bool ? v.b : v.i);
        if (!std::isfinite(x) || prec > 300 || prec < -300) return Value::number(x);
        if (prec >= 0) {
            // printf rounds the exact binary value half-to-even, as Python's `round` does.
            std::string s = fmt::format("{:.{}f}", x, prec);
            return Value::number(std::strtod(s.c_str(), nullptr));
        }
        const double m = std::pow(10.0, static_cast<double>(-prec));
        return Value::number(std::nearbyint(x / m) * m);
    }
    const double m = std::pow(10.0, static_cast<double>(prec));
    if (method == "floor") return Value::number(std::floor(x * m) / m);
    if (method == "ceil") return Value::number(std::ceil(x * m) / m);
    throw RenderError("round: method must be 'common', 'ceil' or 'floor'");
}

Value f_safe(Interp&, Value& v, Args&) {
    Value out = Value::string(to_str(v));
    out.safe = true;
    return out;
}

Value f_sort(Interp& in, Value& v, Args& a) {
    return Value::new_list(sorted(in, iterate(v), arg_bool(a, 0, "reverse", false),
                                  arg_bool(a, 1, "case_sensitive", false), arg_str(a, 2, "attribute", "")));
}

Value f_string(Interp&, Value& v, Args&) { return Value::string(to_str(v)); }

Value f_sum(Interp& in, Value& v, Args& a) {
    const std::string attr = arg_str(a, 0, "attribute", "");
    const Value* start = a.get(1, "start");
    Value acc = start ? *start : Value::integer(0);
    for (const Value& x : iterate(v)) {
        Value y = attr.empty() ? x : get_path(in, x, attr);
        if (acc.is_number() && y.is_number()) {
            if (acc.kind != Kind::Float && y.kind != Kind::Float) {
                int64_t r;
                if (__builtin_add_overflow(acc.kind == Kind::Bool ? acc.b : acc.i, y.kind == Kind::Bool ? y.b : y.i, &r))
                    throw RenderError("integer overflow");
                acc = Value::integer(r);
            } else {
                acc = Value::number(acc.as_double() + y.as_double());
            }
        } else {
            throw RenderError(fmt::format("unsupported operand type(s) for +: '{}' and '{}'", type_name(acc), type_name(y)));
        }
    }
    return acc;
}

Value f_title(Interp&, Value& v, Args&) {
    // Jinja2 splits on runs of whitespace and the characters -({[< and
    // capitalises each piece.
    std::string s = to_str(v), out;
    bool start = true;
    for (char c : s) {
        const bool delim = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
                           c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
        if (delim) {
            out += c;
            start = true;
        } else if (start) {
            out += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
            start = false;
        } else {
            out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        }
    }
    return Value::string(std::move(out));
}

Value f_tojson(Interp& in, Value& v, Args& a) {
    // Hugging Face's signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
    JsonDumpOptions o;
    o.ensure_ascii = arg_bool(a, 0, "ensure_ascii", false);
    if (const Value* ind = a.get(1, "indent"); ind && !ind->is_none()) {
        o.indent = ind->is_string() ? ind->s : std::string(static_cast<size_t>(std::max<int64_t>(0, to_int(*ind, "tojson indent"))), ' ');
        o.item_sep = ",";
    }
    if (const Value* sep = a.get(2, "separators"); sep && !sep->is_none()) {
        if (!sep->is_list() || sep->list->items.size() != 2) throw RenderError("tojson: separators must be a pair");
        o.item_sep = to_str(sep->list->items[0]);
        o.key_sep = to_str(sep->list->items[1]);
    }
    o.sort_keys = arg_bool(a, 3, "sort_keys", false);
    std::string s = to_json(v, o);
    in.check_size(s.size());
    in.made_bytes(s.size());
    return Value::string(std::move(s));
}

Value f_trim(Interp&, Value& v, Args& a) {
    const Value* chars = a.get(0, "chars");
    return Value::string(strip_chars(to_str(v), chars && !chars->is_none() ? chars : nullptr, true, true));
}

Value f_truncate(Interp&, Value& v, Args& a) {
    std::string s = to_str(v);
    const Value* l = a.get(0, "length");
    const int64_t length = l ? to_int(*l, "truncate") : 255;
    const bool killwords = arg_bool(a, 1, "killwords", false);
    const std::string end = arg_str(a, 2, "end", "...");
    const Value* lw = a.get(3, "leeway");
    const int64_t leeway = lw ? to_int(*lw, "truncate") : 5;
    auto chars = utf8_chars(s);
    const auto n = static_cast<int64_t>(chars.size());
    if (n <= length + leeway) return Value::string(s);
    const int64_t keep = std::max<int64_t>(0, length - static_cast<int64_t>(utf8_length(end)));
    std::string head;
    for (int64_t k = 0; k < keep && k < n; ++k) head += chars[static_cast<size_t>(k)];
    if (!killwords) {
        size_t sp = head.rfind(' ');
        if (sp != std::string::npos) head.resize(sp);
    }
    return Value::string(head + end);
}

Value f_unique(Interp& in, Value& v, Args& a) {
    const bool cs = arg_bool(a, 0, "case_sensitive", false);
    const std::string attr = arg_str(a, 1, "attribute", "");
    std::vector<Value> seen, out;
    std::vector<Value> items = iterate(v);
    in.count_iterations(items.size() * items.size() / 16 + items.size());
    for (const Value& x : items) {
        Value key = attr.empty() ? x : get_path(in, x, attr);
        if (!cs && key.is_string()) key = Value::string(ascii_lower(key.s));
        bool dup = false;
        for (const Value& s : seen)
            if (equals(s, key)) {
                dup = true;
                break;
            }
        if (dup) continue;
        seen.push_back(std::move(key));
        out.push_back(x);
    }
    return Value::new_list(std::move(out));
}

Value f_wordcount(Interp&, Value& v, Args&) {
    std::string s = to_str(v);
    int64_t n = 0;
    bool in_word = false;
    for (unsigned char c : s) {
        const bool w = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
        if (w && !in_word) ++n;
        in_word = w;
    }
    return Value::integer(n);
}

Value f_from_json(Interp&, Value& v, Args&) {
    auto j = nlohmann::ordered_json::parse(to_str(v), nullptr, false);
    if (j.is_discarded()) throw RenderError("from_json: the string is not valid JSON");
    return from_json(j);
}

Value f_pprint(Interp&, Value& v, Args&) { return Value::string(repr(v)); }

Value f_batch(Interp&, Value& v, Args& a) {
    const Value* n = a.get(0, "linecount");
    const int64_t count = n ? to_int(*n, "batch") : 1;
    if (count <= 0) throw RenderError("batch: linecount must be positive");
    const Value* fill = a.get(1, "fill_with");
    std::vector<Value> out, cur;
    for (const Value& x : iterate(v)) {
        cur.push_back(x);
        if (static_cast<int64_t>(cur.size()) == count) {
            out.push_back(Value::new_list(std::move(cur)));
            cur.clear();
        }
    }
    if (!cur.empty()) {
        if (fill && !fill->is_none())
            while (static_cast<int64_t>(cur.size()) < count) cur.push_back(*fill);
        out.push_back(Value::new_list(std::move(cur)));
    }
    return Value::new_list(std::move(out));
}

const std::unordered_map<std::string_view, FilterFn>& filters() {
    static const std::unordered_map<std::string_view, FilterFn> m = {
        {"abs", f_abs},         {"attr", f_attr},         {"batch", f_batch},       {"capitalize", f_capitalize},
        {"center", f_center},   {"count", f_length},      {"d", f_default},         {"default", f_default},
        {"dictsort", f_dictsort}, {"e", f_escape},        {"escape", f_escape},     {"forceescape", f_forceescape},
        {"first", f_first},     {"float", f_float},       {"format", f_format},     {"from_json", f_from_json},
        {"indent", f_indent},   {"int", f_int},           {"items", f_items},       {"join", f_join},
        {"last", f_last},       {"length", f_length},     {"list", f_list},         {"lower", f_lower},
        {"map", f_map},         {"max", f_max},           {"min", f_min},           {"pprint", f_pprint},
        {"reject", f_reject},   {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse},
        {"round", f_round},     {"safe", f_safe},         {"select", f_select},     {"selectattr", f_selectattr},
        {"sort", f_sort},       {"string", f_string},     {"sum", f_sum},           {"title", f_title},
        {"tojson", f_tojson},   {"trim", f_trim},         {"truncate", f_truncate}, {"unique", f_unique},
        {"upper", f_upper},     {"wordcount", f_wordcount},
    };
    return m;
}

// ---- tests ----

int64_t test_int(const Value& v, const char* name) {
    if (v.kind == Kind::Int || v.kind == Kind::Bool) return v.kind == Kind::Bool ? v.b : v.i;
    throw RenderError(fmt::format("test '{}' expects an integer, not '{}'", name, type_name(v)));
}

const Value& test_arg(const Args& a, const char* name) {
    if (a.pos.empty()) throw RenderError(fmt::format("test '{}' needs an argument", name));
    return a.pos[0];
}

bool t_defined(Interp&, const Value& v, Args&) { return !v.is_undefined(); }
bool t_undefined(Interp&, const Value& v, Args&) { return v.is_undefined(); }
bool t_none(Interp&, const Value& v, Args&) { return v.is_none(); }
bool t_boolean(Interp&, const Value& v, Args&) { return v.kind == Kind::Bool; }
bool t_false(Interp&, const Value& v, Args&) { return v.kind == Kind::Bool && !v.b; }
bool t_true(Interp&, const Value& v, Args&) { return v.kind == Kind::Bool && v.b; }
bool t_integer(Interp&, const Value& v, Args&) { return v.kind == Kind::Int; }
bool t_float(Interp&, const Value& v, Args&) { return v.kind == Kind::Float; }
bool t_number(Interp&, const Value& v, Args&) { return v.is_number(); }
bool t_string(Interp&, const Value& v, Args&) { return v.is_string(); }
bool t_mapping(Interp&, const Value& v, Args&) { return v.is_dict() && !v.dict->ns; }
bool t_iterable(Interp&, const Value& v, Args&) {
    return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.dict->ns);
}
bool t_sequence(Interp&, const Value& v, Args&) {
    return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.dict->ns);
}
bool t_callable(Interp&, const Value& v, Args&) { return v.kind == Kind::Callable; }
bool t_odd(Interp&, const Value& v, Args&) { return test_int(v, "odd") % 2 != 0; }
bool t_even(Interp&, const Value& v, Args&) { return test_int(v, "even") % 2 == 0; }
bool t_divisibleby(Interp&, const Value& v, Args& a) {
    const int64_t d = test_int(test_arg(a, "divisibleby"), "divisibleby");
    if (d == 0) throw RenderError("divisibleby: division by zero");
    return test_int(v, "divisibleby") % d == 0;
}
bool t_eq(Interp&, const Value& v, Args& a) { return equals(v, test_arg(a, "eq")); }
bool t_ne(Interp&, const Value& v, Args& a) { return !equals(v, test_arg(a, "ne")); }
bool t_lt(Interp&, const Value& v, Args& a) { return compare(v, test_arg(a, "lt")) < 0; }
bool t_le(Interp&, const Value& v, Args& a) { return compare(v, test_arg(a, "le")) <= 0; }
bool t_gt(Interp&, const Value& v, Args& a) { return compare(v, test_arg(a, "gt")) > 0; }
bool t_ge(Interp&, const Value& v, Args& a) { return compare(v, test_arg(a, "ge")) >= 0; }
bool t_in(Interp&, const Value& v, Args& a) {
    const Value& seq = test_arg(a, "in");
    if (seq.is_string() && v.is_string()) return seq.s.find(v.s) != std::string::npos;
    if (seq.is_dict()) return seq.dict->find(v) != nullptr;
    for (const Value& x : iterate(seq))
        if (equals(x, v)) return true;
    return false;
}
bool t_sameas(Interp&, const Value& v, Args& a) {
    const Value& o = test_arg(a, "sameas");
    if (v.kind != o.kind) return false;
    switch (v.kind) {
        case Kind::List: return v.list == o.list;
        case Kind::Dict: return v.dict == o.dict;
        case Kind::Callable: return v.fn == o.fn;
        default: return equals(v, o);
    }
}
bool t_lower(Interp&, const Value& v, Args&) { return v.is_string() && ascii_lower(v.s) == v.s; }
bool t_upper(Interp&, const Value& v, Args&) { return v.is_string() && ascii_upper(v.s) == v.s; }
bool t_escaped(Interp&, const Value&, Args&) { return false; }
bool t_filter(Interp&, const Value& v, Args&) { return v.is_string() && find_filter(v.s) != nullptr; }
bool t_test(Interp&, const Value& v, Args&) { return v.is_string() && find_test(v.s) != nullptr; }

const std::unordered_map<std::string_view, TestFn>& tests() {
    static const std::unordered_map<std::string_view, TestFn> m = {
        {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none},       {"boolean", t_boolean},
        {"false", t_false},     {"true", t_true},           {"integer", t_integer}, {"float", t_float},
        {"number", t_number},   {"string", t_string},       {"mapping", t_mapping}, {"iterable", t_iterable},
        {"sequence", t_sequence}, {"callable", t_callable}, {"odd", t_odd},         {"even", t_even},
        {"divisibleby", t_divisibleby}, {"eq", t_eq},       {"equalto", t_eq},      {"==", t_eq},
        {"ne", t_ne},           {"!=", t_ne},               {"lt", t_lt},           {"lessthan", t_lt},
        {"<", t_lt},            {"le", t_le},               {"<=", t_le},           {"gt", t_gt},
        {"greaterthan", t_gt},  {">", t_gt},                {"ge", t_ge},           {">=", t_ge},
        {"in", t_in},           {"sameas", t_sameas},       {"lower", t_lower},     {"upper", t_upper},
        {"escaped", t_escaped}, {"filter", t_filter},       {"test", t_test},
    };
    return m;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
    auto it = filters().find(name);
    return it == filters().end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
    auto it = tests().find(name);
    return it == tests().end() ? nullptr : it->second;
}

}  // namespace strata::jinja
