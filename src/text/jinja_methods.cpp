// The methods of Python's str, list and dict that chat templates call
// (`message.content.strip()`, `tool.get('name')`, `'{}'.format(x)`), and the
// two Python string formatting mini-languages (`str.format` and `%`).

#include "text/jinja_interp.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>

namespace strata::jinja {

std::string ascii_lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::string ascii_upper(std::string s) {
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right) {
    std::vector<uint32_t> set;
    if (chars) {
        const std::string cs = to_str(*chars);
        for (size_t i = 0; i < cs.size();) set.push_back(utf8_next(cs, i));
    }
    auto strip_it = [&](uint32_t cp) {
        return chars ? std::find(set.begin(), set.end(), cp) != set.end() : is_py_space(cp);
    };
    size_t b = 0, e = s.size();
    if (left)
        while (b < e) {
            size_t i = b;
            if (!strip_it(utf8_next(s, i))) break;
            b = i;
        }
    if (right)
        while (e > b) {
            size_t start = e - 1;
            while (start > b && (static_cast<unsigned char>(s[start]) & 0xc0) == 0x80) --start;
            size_t i = start;
            if (!strip_it(utf8_next(s, i))) break;
            e = start;
        }
    return s.substr(b, e - b);
}

namespace {

const char* const kStrMethods[] = {"strip",     "lstrip",     "rstrip",  "split",   "rsplit",  "splitlines",
                                   "startswith", "endswith",  "upper",   "lower",   "replace", "title",
                                   "capitalize", "format",    "join",    "find",    "rfind",   "index",
                                   "count",     "isdigit",    "isalpha", "isalnum", "isspace", "isupper",
                                   "islower",   "center",     "ljust",   "rjust",   "zfill",   "partition",
                                   "rpartition", "swapcase",  "removeprefix", "removesuffix", "casefold"};
const char* const kListMethods[] = {"append", "pop", "extend", "insert", "remove", "index", "count",
                                    "reverse", "copy", "clear", "sort"};
const char* const kDictMethods[] = {"items", "keys", "values", "get", "pop", "update", "copy", "setdefault",
                                    "clear", "popitem"};

template <size_t N>
bool in_list(const char* const (&names)[N], std::string_view n) {
    for (const char* x : names)
        if (n == x) return true;
    return false;
}

const Value& need(const CallArgs& a, size_t i, const char* name, const char* method) {
    const Value* v = a.get(i, name);
    if (!v) throw RenderError(fmt::format("{}() missing argument '{}'", method, name));
    return *v;
}

std::string need_str(const CallArgs& a, size_t i, const char* name, const char* method) {
    const Value& v = need(a, i, name, method);
    if (!v.is_string())
        throw RenderError(fmt::format("{}() argument '{}' must be str, not {}", method, name, type_name(v)));
    return v.s;
}

Value split(const std::string& s, const CallArgs& a, bool from_right) {
    const Value* sepv = a.get(0, "sep");
    const Value* maxv = a.get(1, "maxsplit");
    int64_t maxsplit = maxv ? to_int(*maxv, "split maxsplit") : -1;
    std::vector<std::string> parts;
    if (!sepv || sepv->is_none()) {
        // Runs of whitespace separate; leading and trailing whitespace is dropped.
        std::vector<std::pair<size_t, size_t>> words;
        size_t i = 0;
        while (i < s.size()) {
            size_t k = i;
            if (is_py_space(utf8_next(s, k))) {
                i = k;
                continue;
            }
            size_t start = i;
            while (i < s.size()) {
                k = i;
                if (is_py_space(utf8_next(s, k))) break;
                i = k;
            }
            words.emplace_back(start, i);
        }
        if (maxsplit < 0 || static_cast<size_t>(maxsplit) + 1 >= words.size()) {
            for (auto [b, e] : words) parts.push_back(s.substr(b, e - b));
        } else if (!from_right) {
            for (int64_t k = 0; k < maxsplit; ++k) parts.push_back(s.substr(words[static_cast<size_t>(k)].first, words[static_cast<size_t>(k)].second - words[static_cast<size_t>(k)].first));
            parts.push_back(strip_chars(s.substr(words[static_cast<size_t>(maxsplit)].first), nullptr, false, true));
        } else {
            const size_t first = words.size() - static_cast<size_t>(maxsplit);
            parts.push_back(strip_chars(s.substr(0, words[first - 1].second), nullptr, true, false));
            for (size_t k = first; k < words.size(); ++k) parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
        }
    } else {
        if (!sepv->is_string()) throw RenderError("split() separator must be str or None");
        const std::string& sep = sepv->s;
        if (sep.empty()) throw RenderError("split(): empty separator");
        if (!from_right) {
            size_t start = 0;
            for (;;) {
                size_t p = (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) ? s.find(sep, start)
                                                                                            : std::string::npos;
                if (p == std::string::npos) {
                    parts.push_back(s.substr(start));
                    break;
                }
                parts.push_back(s.substr(start, p - start));
                start = p + sep.size();
            }
        } else {
            size_t end = s.size();
            std::vector<std::string> rev;
            for (;;) {
                size_t p = (maxsplit < 0 || static_cast<int64_t>(rev.size()) < maxsplit) && end >= sep.size()
                               ? s.rfind(sep, end - sep.size())
                               : std::string::npos;
                if (p == std::string::npos) {
                    rev.push_back(s.substr(0, end));
                    break;
                }
                rev.push_back(s.substr(p + sep.size(), end - p - sep.size()));
                end = p;
            }
            parts.assign(rev.rbegin(), rev.rend());
        }
    }
    std::vector<Value> out;
    out.reserve(parts.size());
    for (auto& p : parts) out.push_back(Value::string(std::move(p)));
    return Value::new_list(std::move(out));
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
    auto one = [&](const Value& x) {
        if (!x.is_string()) throw RenderError("startswith/endswith expect str or a tuple of str");
        if (x.s.size() > s.size()) return false;
        return prefix ? s.compare(0, x.s.size(), x.s) == 0 : s.compare(s.size() - x.s.size(), x.s.size(), x.s) == 0;
    };
    if (affix.is_list()) {
        for (const Value& x : affix.list->items)
            if (one(x)) return true;
        return false;
    }
    return one(affix);
}

std::string py_title(const std::string& s) {
    std::string out;
    bool prev_cased = false;
    for (char c : s) {
        const bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        if (lower || upper) {
            if (prev_cased) out += upper ? static_cast<char>(c - 'A' + 'a') : c;
            else out += lower ? static_cast<char>(c - 'a' + 'A') : c;
            prev_cased = true;
        } else {
            out += c;
            prev_cased = false;
        }
    }
    return out;
}

Value string_method(Interp& in, const std::string& s, const std::string& m, CallArgs& a) {
    if (m == "strip" || m == "lstrip" || m == "rstrip") {
        const Value* chars = a.get(0, "chars");
        if (chars && chars->is_none()) chars = nullptr;
        return Value::string(strip_chars(s, chars, m != "rstrip", m != "lstrip"));
    }
    if (m == "split") return split(s, a, false);
    if (m == "rsplit") return split(s, a, true);
    if (m == "splitlines") {
        std::vector<Value> out;
        std::string cur;
        for (size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '\n' || s[i] == '\r') {
                if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
                out.push_back(Value::string(std::move(cur)));
                cur.clear();
            } else {
                cur += s[i];
            }
        }
        if (!cur.empty()) out.push_back(Value::string(std::move(cur)));
        return Value::new_list(std::move(out));
    }
    if (m == "startswith" || m == "endswith") {
        std::string sub = s;
        const Value* st = a.get(1, "start");
        const Value* en = a.get(2, "end");
        if (st || en) {
            auto chars = utf8_chars(s);
            const auto n = static_cast<int64_t>(chars.size());
            int64_t b = st && !st->is_none() ? to_int(*st, m.c_str()) : 0;
            int64_t e = en && !en->is_none() ? to_int(*en, m.c_str()) : n;
            if (b < 0) b = std::max<int64_t>(0, b + n);
            if (e < 0) e = std::max<int64_t>(0, e + n);
            e = std::min(e, n);
            sub.clear();
            for (int64_t k = b; k < e; ++k) sub += chars[static_cast<size_t>(k)];
        }
        return Value::boolean(affix_match(sub, need(a, 0, "prefix", m.c_str()), m == "startswith"));
    }
    if (m == "upper") return Value::string(ascii_upper(s));
    if (m == "lower" || m == "casefold") return Value::string(ascii_lower(s));
    if (m == "swapcase") {
        std::string out = s;
        for (char& c : out)
            c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A')
                : (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        return Value::string(std::move(out));
    }
    if (m == "title") return Value::string(py_title(s));
    if (m == "capitalize") {
        std::string out = ascii_lower(s);
        if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
        return Value::string(std::move(out));
    }
    if (m == "replace") {
        const std::string old = need_str(a, 0, "old", "replace"), repl = need_str(a, 1, "new", "replace");
        const Value* cv = a.get(2, "count");
        int64_t count = cv && !cv->is_none() ? to_int(*cv, "replace count") : -1;
        std::string out;
        if (old.empty()) {
            auto chars = utf8_chars(s);
            int64_t done = 0;
            for (size_t k = 0; k <= chars.size(); ++k) {
                if (count < 0 || done < count) {
                    out += repl;
                    ++done;
                }
                if (k < chars.size()) out += chars[k];
                in.check_size(out.size());
            }
            return Value::string(std::move(out));
        }
        size_t start = 0;
        int64_t done = 0;
        for (;;) {
            size_t p = (count < 0 || done < count) ? s.find(old, start) : std::string::npos;
            if (p == std::string::npos) break;
            out.append(s, start, p - start);
            out += repl;
            in.check_size(out.size());
            start = p + old.size();
            ++done;
        }
        out.append(s, start, std::string::npos);
        in.check_size(out.size());
        in.made_bytes(out.size());
        return Value::string(std::move(out));
    }
    if (m == "format") return Value::string(str_format(in, s, a));
    if (m == "join") {
        std::string out;
        bool first = true;
        for (const Value& x : iterate(need(a, 0, "iterable", "join"))) {
            if (!x.is_string()) throw RenderError(fmt::format("join() expects str items, found {}", type_name(x)));
            if (!first) out += s;
            first = false;
            out += x.s;
            in.check_size(out.size());
        }
        return Value::string(std::move(out));
    }
    if (m == "find" || m == "rfind" || m == "index") {
        const std::string sub = need_str(a, 0, "sub", m.c_str());
        size_t p = m == "rfind" ? s.rfind(sub) : s.find(sub);
        if (p == std::string::npos) {
            if (m == "index") throw RenderError("substring not found");
            return Value::integer(-1);
        }
        return Value::integer(static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, p))));
    }
    if (m == "count") {
        const std::string sub = need_str(a, 0, "sub", "count");
        if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
        int64_t n = 0;
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
        return Value::integer(n);
    }
    if (m == "removeprefix" || m == "removesuffix") {
        const std::string x = need_str(a, 0, "affix", m.c_str());
        if (m == "removeprefix" && s.compare(0, x.size(), x) == 0) return Value::string(s.substr(x.size()));
        if (m == "removesuffix" && !x.empty() && s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0)
            return Value::string(s.substr(0, s.size() - x.size()));
        return Value::string(s);
    }
    if (m.rfind("is", 0) == 0) {
        if (s.empty()) return Value::boolean(false);
        bool ok = true, any_cased = false;
        for (size_t i = 0; i < s.size();) {
            uint32_t c = utf8_next(s, i);
            const bool digit = c >= '0' && c <= '9', lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
            any_cased = any_cased || lower || upper;
            if (m == "isdigit") ok = ok && digit;
            else if (m == "isalpha") ok = ok && (lower || upper);
            else if (m == "isalnum") ok = ok && (lower || upper || digit);
            else if (m == "isspace") ok = ok && is_py_space(c);
            else if (m == "isupper") ok = ok && !lower;
            else if (m == "islower") ok = ok && !upper;
        }
        if (m == "isupper" || m == "islower") ok = ok && any_cased;
        return Value::boolean(ok);
    }
    if (m == "center" || m == "ljust" || m == "rjust" || m == "zfill") {
        const int64_t width = to_int(need(a, 0, "width", m.c_str()), m.c_str());
        const std::string fill = m == "zfill" ? "0" : (a.get(1, "fillchar") ? to_str(*a.get(1, "fillchar")) : " ");
        const auto len = static_cast<int64_t>(utf8_length(s));
        if (width <= len) return Value::string(s);
        in.check_size(static_cast<size_t>(width) * fill.size());
        const int64_t pad = width - len;
        int64_t left = m == "ljust" ? 0 : (m == "center" ? pad / 2 + (pad & width & 1) : pad);
        auto rep = [&](int64_t n) {
            std::string r;
            for (int64_t k = 0; k < n; ++k) r += fill;
            return r;
        };
        if (m == "zfill" && !s.empty() && (s[0] == '-' || s[0] == '+'))
            return Value::string(s.substr(0, 1) + rep(pad) + s.substr(1));
        return Value::string(rep(left) + s + rep(pad - left));
    }
    if (m == "partition" || m == "rpartition") {
        const std::string sep = need_str(a, 0, "sep", m.c_str());
        if (sep.empty()) throw RenderError("empty separator");
        size_t p = m == "partition" ? s.find(sep) : s.rfind(sep);
        if (p == std::string::npos)
            return m == "partition" ? Value::new_list({Value::string(s), Value::string(""), Value::string("")}, true)
                                    : Value::new_list({Value::string(""), Value::string(""), Value::string(s)}, true);
        return Value::new_list({Value::string(s.substr(0, p)), Value::string(sep), Value::string(s.substr(p + sep.size()))}, true);
    }
    throw RenderError(fmt::format("'str' object has no attribute '{}'", m));
}

int64_t list_index(const Value& idx, size_t n, bool insert) {
    int64_t i = to_int(idx, "list index");
    const auto len = static_cast<int64_t>(n);
    if (i < 0) i += len;
    if (insert) return std::clamp<int64_t>(i, 0, len);
    if (i < 0 || i >= len) throw RenderError("list index out of range");
    return i;
}

Value list_method(Interp& in, const Value& obj, const std::string& m, CallArgs& a) {
    auto& items = obj.list->items;
    const bool tuple = obj.list->tuple;
    auto mutate = [&] {
        if (tuple) throw RenderError(fmt::format("'tuple' object has no attribute '{}'", m));
    };
    if (m == "append") {
        mutate();
        in.check_items(items.size() + 1);
        check_insert(in, obj, need(a, 0, "object", "append"));
        items.push_back(need(a, 0, "object", "append"));
        return Value::none();
    }
    if (m == "extend") {
        mutate();
        std::vector<Value> more = iterate(need(a, 0, "iterable", "extend"));
        in.check_items(items.size() + more.size());
        for (const Value& x : more) check_insert(in, obj, x);
        items.insert(items.end(), more.begin(), more.end());
        return Value::none();
    }
    if (m == "insert") {
        mutate();
        in.check_items(items.size() + 1);
        const int64_t i = list_index(need(a, 0, "index", "insert"), items.size(), true);
        check_insert(in, obj, need(a, 1, "object", "insert"));
        items.insert(items.begin() + i, need(a, 1, "object", "insert"));
        return Value::none();
    }
    if (m == "pop") {
        mutate();
        if (items.empty()) throw RenderError("pop from empty list");
        const Value* iv = a.get(0, "index");
        const int64_t i = iv ? list_index(*iv, items.size(), false) : static_cast<int64_t>(items.size()) - 1;
        Value v = items[static_cast<size_t>(i)];
        items.erase(items.begin() + i);
        return v;
    }
    if (m == "remove") {
        mutate();
        const Value& x = need(a, 0, "value", "remove");
        for (auto it = items.begin(); it != items.end(); ++it)
            if (equals(*it, x)) {
                items.erase(it);
                return Value::none();
            }
        throw RenderError("list.remove(x): x not in list");
    }
    if (m == "index" || m == "count") {
        const Value& x = need(a, 0, "value", m.c_str());
        int64_t n = 0;
        for (size_t k = 0; k < items.size(); ++k)
            if (equals(items[k], x)) {
                if (m == "index") return Value::integer(static_cast<int64_t>(k));
                ++n;
            }
        if (m == "index") throw RenderError("value is not in list");
        return Value::integer(n);
    }
    if (m == "reverse") {
        mutate();
        std::reverse(items.begin(), items.end());
        return Value::none();
    }
    if (m == "sort") {
        mutate();
        const bool rev = a.kwarg("reverse") && truthy(*a.kwarg("reverse"));
        std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
            return rev ? compare(x, y) > 0 : compare(x, y) < 0;
        });
        return Value::none();
    }
    if (m == "copy") return Value::new_list(items, tuple);
    if (m == "clear") {
        mutate();
        items.clear();
        return Value::none();
    }
    throw RenderError(fmt::format("'list' object has no attribute '{}'", m));
}

Value dict_method(Interp& in, const Value& obj, const std::string& m, CallArgs& a) {
    auto& d = *obj.dict;
    if (m == "items" || m == "keys" || m == "values") {
        std::vector<Value> out;
        out.reserve(d.items.size());
        for (const auto& [k, v] : d.items) {
            if (m == "items") out.push_back(Value::new_list({k, v}, true));
            else out.push_back(m == "keys" ? k : v);
        }
        return Value::new_list(std::move(out));
    }
    if (m == "get") {
        const Value& key = need(a, 0, "key", "get");
        if (Value* v = d.find(key)) return *v;
        const Value* def = a.get(1, "default");
        return def ? *def : Value::none();
    }
    if (m == "pop") {
        const Value& key = need(a, 0, "key", "pop");
        if (Value* v = d.find(key)) {
            Value out = *v;
            d.erase(key);
            return out;
        }
        if (const Value* def = a.get(1, "default")) return *def;
        throw RenderError(fmt::format("KeyError: {}", repr(key)));
    }
    if (m == "setdefault") {
        const Value& key = need(a, 0, "key", "setdefault");
        if (Value* v = d.find(key)) return *v;
        const Value* def = a.get(1, "default");
        if (def) check_insert(in, obj, *def);
        d.set(key, def ? *def : Value::none());
        return def ? *def : Value::none();
    }
    if (m == "update") {
        if (!a.pos.empty()) {
            if (!a.pos[0].is_dict()) throw RenderError("dict.update() expects a dict");
            check_insert(in, obj, a.pos[0]);
            for (const auto& [k, v] : a.pos[0].dict->items) d.set(k, v);
        }
        for (const auto& [k, v] : a.kw) {
            check_insert(in, obj, v);
            d.set(k, v);
        }
        return Value::none();
    }
    if (m == "copy") {
        Value c = Value::new_dict();
        c.dict->items = d.items;
        return c;
    }
    if (m == "clear") {
        d.items.clear();
        return Value::none();
    }
    if (m == "popitem") {
        if (d.items.empty()) throw RenderError("popitem(): dictionary is empty");
        auto kv = d.items.back();
        d.items.pop_back();
        return Value::new_list({kv.first, kv.second}, true);
    }
    throw RenderError(fmt::format("'dict' object has no attribute '{}'", m));
}

// A Python format spec subset: [[fill]align][sign][0][width][,][.precision][type].
std::string apply_spec(const Value& v, const std::string& spec) {
    if (spec.empty()) return to_str(v);
    size_t i = 0;
    char fill = ' ', align = 0, sign = '-';
    if (spec.size() >= 2 && (spec[1] == '<' || spec[1] == '>' || spec[1] == '^' || spec[1] == '=')) {
        fill = spec[0];
        align = spec[1];
        i = 2;
    } else if (!spec.empty() && (spec[0] == '<' || spec[0] == '>' || spec[0] == '^' || spec[0] == '=')) {
        align = spec[0];
        i = 1;
    }
    if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
    if (i < spec.size() && spec[i] == '0') {
        if (!align) {
            fill = '0';
            align = '=';
        }
        ++i;
    }
    int64_t width = 0;
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') width = std::min<int64_t>(width * 10 + (spec[i++] - '0'), 10000);
    bool comma = false;
    if (i < spec.size() && spec[i] == ',') {
        comma = true;
        ++i;
    }
    int precision = -1;
    if (i < spec.size() && spec[i] == '.') {
        ++i;
        precision = 0;
        while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') precision = std::min(precision * 10 + (spec[i++] - '0'), 100);
    }
    char type = i < spec.size() ? spec[i++] : 0;
    if (i != spec.size()) throw RenderError(fmt::format("invalid format specifier '{}'", spec));
    std::string body;
    const bool numeric = v.is_number();
    if (numeric && type != 's') {
        const double x = v.as_double();
        const bool is_int = v.kind != Kind::Float;
        switch (type) {
            case 0:
                body = is_int ? std::to_string(v.kind == Kind::Bool ? v.b : v.i)
                              : (precision >= 0 ? fmt::format("{:.{}g}", x, precision) : float_repr(x));
                break;
            case 'd': body = std::to_string(v.kind == Kind::Float ? static_cast<int64_t>(x) : (v.kind == Kind::Bool ? v.b : v.i)); break;
            case 'f': case 'F': body = fmt::format("{:.{}f}", x, precision < 0 ? 6 : precision); break;
            case 'e': case 'E': body = fmt::format("{:.{}e}", x, precision < 0 ? 6 : precision); break;
            case 'g': case 'G': body = fmt::format("{:.{}g}", x, precision < 0 ? 6 : precision); break;
            case '%': body = fmt::format("{:.{}f}%", x * 100, precision < 0 ? 6 : precision); break;
            case 'x': body = fmt::format("{:x}", static_cast<int64_t>(x)); break;
            case 'X': body = fmt::format("{:X}", static_cast<int64_t>(x)); break;
            case 'o': body = fmt::format("{:o}", static_cast<int64_t>(x)); break;
            case 'b': body = fmt::format("{:b}", static_cast<int64_t>(x)); break;
            default: throw RenderError(fmt::format("unknown format code '{}'", type));
        }
        if (comma) {
            size_t digits_end = body.find_first_not_of("-0123456789");
            if (digits_end == std::string::npos) digits_end = body.size();
            size_t digits_start = body[0] == '-' ? 1 : 0;
            for (int64_t p = static_cast<int64_t>(digits_end) - 3; p > static_cast<int64_t>(digits_start); p -= 3)
                body.insert(static_cast<size_t>(p), ",");
        }
        if (sign != '-' && body[0] != '-') body = std::string(1, sign) + body;
        if (!align) align = '>';
    } else {
        if (type && type != 's') throw RenderError(fmt::format("unknown format code '{}' for a string", type));
        body = to_str(v);
        if (precision >= 0) {
            auto chars = utf8_chars(body);
            if (chars.size() > static_cast<size_t>(precision)) {
                std::string t;
                for (int k = 0; k < precision; ++k) t += chars[static_cast<size_t>(k)];
                body = t;
            }
        }
        if (!align) align = '<';
    }
    const auto len = static_cast<int64_t>(utf8_length(body));
    if (width <= len) return body;
    const auto pad = static_cast<size_t>(width - len);
    switch (align) {
        case '<': return body + std::string(pad, fill);
        case '^': return std::string(pad / 2, fill) + body + std::string(pad - pad / 2, fill);
        case '=':
            if (!body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' '))
                return body.substr(0, 1) + std::string(pad, fill) + body.substr(1);
            return std::string(pad, fill) + body;
        default: return std::string(pad, fill) + body;
    }
}

}  // namespace

bool has_method(const Value& obj, std::string_view name) {
    switch (obj.kind) {
        case Kind::String: return in_list(kStrMethods, name);
        case Kind::List: return in_list(kListMethods, name);
        case Kind::Dict: return !obj.dict->ns && in_list(kDictMethods, name);
        default: return false;
    }
}

Value call_method(Interp& in, const Value& obj, const std::string& name, CallArgs& args) {
    switch (obj.kind) {
        case Kind::String: return string_method(in, obj.s, name, args);
        case Kind::List: return list_method(in, obj, name, args);
        case Kind::Dict: return dict_method(in, obj, name, args);
        default: throw RenderError(fmt::format("'{}' object has no attribute '{}'", type_name(obj), name));
    }
}

std::string str_format(Interp& in, const std::string& f, const CallArgs& args) {
    std::string out;
    size_t auto_index = 0;
    bool used_auto = false, used_manual = false;
    for (size_t i = 0; i < f.size(); ++i) {
        const char c = f[i];
        if (c == '}') {
            if (i + 1 < f.size() && f[i + 1] == '}') ++i;
            else throw RenderError("single '}' encountered in format string");
            out += '}';
            continue;
        }
        if (c != '{') {
            out += c;
            continue;
        }
        if (i + 1 < f.size() && f[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        size_t close = f.find('}', i);
        if (close == std::string::npos) throw RenderError("single '{' encountered in format string");
        std::string field = f.substr(i + 1, close - i - 1);
        i = close;
        std::string spec;
        if (size_t colon = field.find(':'); colon != std::string::npos) {
            spec = field.substr(colon + 1);
            field.resize(colon);
        }
        bool conv_repr = false;
        if (size_t bang = field.find('!'); bang != std::string::npos) {
            conv_repr = field.substr(bang + 1) == "r";
            field.resize(bang);
        }
        // The field's first part picks the argument; `.attr` and `[key]` follow.
        size_t end = field.find_first_of(".[");
        std::string head = field.substr(0, end);
        Value v;
        if (head.empty()) {
            if (used_manual) throw RenderError("cannot switch from manual field specification to automatic field numbering");
            used_auto = true;
            if (auto_index >= args.pos.size()) throw RenderError("format: not enough positional arguments");
            v = args.pos[auto_index++];
        } else if (std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
            if (used_auto) throw RenderError("cannot switch from automatic field numbering to manual field specification");
            used_manual = true;
            size_t k = std::stoul(head);
            if (k >= args.pos.size()) throw RenderError("format: positional argument index out of range");
            v = args.pos[k];
        } else {
            const Value* kv = args.kwarg(head);
            if (!kv) throw RenderError(fmt::format("format: missing keyword argument '{}'", head));
            v = *kv;
        }
        while (end != std::string::npos && end < field.size()) {
            if (field[end] == '.') {
                size_t next = field.find_first_of(".[", end + 1);
                v = in.get_attr(v, field.substr(end + 1, next == std::string::npos ? std::string::npos : next - end - 1));
                end = next;
            } else {
                size_t rb = field.find(']', end);
                if (rb == std::string::npos) throw RenderError("format: missing ']'");
                std::string key = field.substr(end + 1, rb - end - 1);
                bool num = !key.empty() && std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; });
                v = in.get_item(v, num ? Value::integer(std::stoll(key)) : Value::string(key));
                end = rb + 1 < field.size() ? rb + 1 : std::string::npos;
            }
        }
        out += conv_repr ? repr(v) : apply_spec(v, spec);
        in.check_size(out.size());
    }
    in.made_bytes(out.size());
    return out;
}

std::string percent_format(Interp& in, const std::string& f, const Value& args) {
    std::string out;
    std::vector<Value> pos;
    const Value* mapping = nullptr;
    if (args.is_tuple()) pos = args.list->items;
    else if (args.is_dict()) mapping = &args;
    else pos.push_back(args);
    size_t next = 0;
    for (size_t i = 0; i < f.size(); ++i) {
        if (f[i] != '%') {
            out += f[i];
            continue;
        }
        if (++i >= f.size()) throw RenderError("incomplete format");
        if (f[i] == '%') {
            out += '%';
            continue;
        }
        Value v;
        if (f[i] == '(') {
            size_t close = f.find(')', i);
            if (close == std::string::npos || !mapping) throw RenderError("format requires a mapping");
            const Value* x = mapping->dict->find(std::string_view(f).substr(i + 1, close - i - 1));
            if (!x) throw RenderError(fmt::format("KeyError: '{}'", f.substr(i + 1, close - i - 1)));
            v = *x;
            i = close + 1;
        } else {
            if (next >= pos.size()) throw RenderError("not enough arguments for format string");
            v = pos[next++];
        }
        std::string spec;
        while (i < f.size() && std::string_view("-+ #0123456789.").find(f[i]) != std::string_view::npos) spec += f[i++];
        if (i >= f.size()) throw RenderError("incomplete format");
        const char t = f[i];
        std::string py_spec;
        // Translate printf flags to a format spec: '-' left-aligns.
        std::string width = spec;
        bool left = false;
        if (!width.empty() && width[0] == '-') {
            left = true;
            width.erase(0, 1);
        }
        if (t == 's' || t == 'r') {
            std::string body = t == 'r' ? repr(v) : to_str(v);
            py_spec = (left ? "<" : ">") + width;
            out += apply_spec(Value::string(body), py_spec);
        } else if (t == 'd' || t == 'i' || t == 'f' || t == 'F' || t == 'e' || t == 'E' || t == 'g' || t == 'G' ||
                   t == 'x' || t == 'X' || t == 'o') {
            if (!v.is_number()) throw RenderError(fmt::format("%{} format: a number is required, not {}", t, type_name(v)));
            py_spec = (left ? "<" : "") + width + std::string(1, t == 'i' ? 'd' : t);
            out += apply_spec(v, py_spec);
        } else {
            throw RenderError(fmt::format("unsupported format character '{}'", t));
        }
        in.check_size(out.size());
    }
    if (!mapping && next < pos.size()) throw RenderError("not all arguments converted during string formatting");
    return out;
}

}  // namespace strata::jinja
