// Conversions between JSON and Jinja values, and `json.dumps` formatting.

#include "text/jinja_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace strata::jinja {

namespace {

template <typename J>
Value convert(const J& j, int depth) {
    if (depth > 512) throw RenderError("JSON nested too deeply");
    switch (j.type()) {
        case nlohmann::json::value_t::null: return Value::none();
        case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
        case nlohmann::json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
        case nlohmann::json::value_t::number_unsigned: {
            uint64_t u = j.template get<uint64_t>();
            if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
            return Value::number(static_cast<double>(u));
        }
        case nlohmann::json::value_t::number_float: return Value::number(j.template get<double>());
        case nlohmann::json::value_t::string:
            return Value::string(utf8_sanitize(j.template get_ref<const std::string&>()));
        case nlohmann::json::value_t::array: {
            std::vector<Value> items;
            items.reserve(j.size());
            for (const auto& x : j) items.push_back(convert(x, depth + 1));
            return Value::new_list(std::move(items));
        }
        case nlohmann::json::value_t::object: {
            Value d = Value::new_dict();
            d.dict->items.reserve(j.size());
            for (auto it = j.begin(); it != j.end(); ++it)
                d.dict->items.emplace_back(Value::string(utf8_sanitize(it.key())), convert(it.value(), depth + 1));
            return d;
        }
        default: return Value::none();  // binary and discarded values do not occur in parsed JSON
    }
}

std::string key_string(const Value& k) {
    switch (k.kind) {
        case Kind::String: return k.s;
        case Kind::None: return "null";
        case Kind::Bool: return k.b ? "true" : "false";
        case Kind::Int: return std::to_string(k.i);
        case Kind::Float: return float_repr(k.f);
        default:
            throw RenderError(fmt::format("keys must be str, int, float, bool or None, not {}", type_name(k)));
    }
}

void dump(std::string& out, const Value& v, const JsonDumpOptions& o, int level) {
    if (level > 512) throw RenderError("value nested too deeply for tojson (or contains itself)");
    auto newline = [&](int lv) {
        out += '\n';
        for (int k = 0; k < lv; ++k) out += *o.indent;
    };
    switch (v.kind) {
        case Kind::None: out += "null"; return;
        case Kind::Bool: out += v.b ? "true" : "false"; return;
        case Kind::Int: out += std::to_string(v.i); return;
        case Kind::Float:
            if (std::isnan(v.f)) out += "NaN";
            else if (std::isinf(v.f)) out += v.f < 0 ? "-Infinity" : "Infinity";
            else out += float_repr(v.f);
            return;
        case Kind::String: append_json_string(out, v.s, o.ensure_ascii); return;
        case Kind::List: {
            const auto& items = v.list->items;
            if (items.empty()) {
                out += "[]";
                return;
            }
            out += '[';
            for (size_t k = 0; k < items.size(); ++k) {
                if (k) out += o.item_sep;
                if (o.indent) newline(level + 1);
                dump(out, items[k], o, level + 1);
            }
            if (o.indent) newline(level);
            out += ']';
            return;
        }
        case Kind::Dict: {
            if (v.dict->ns) throw RenderError("Object of type Namespace is not JSON serializable");
            std::vector<std::pair<std::string, const Value*>> items;
            items.reserve(v.dict->items.size());
            for (const auto& [k, x] : v.dict->items) items.emplace_back(key_string(k), &x);
            if (o.sort_keys)
                std::stable_sort(items.begin(), items.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
            if (items.empty()) {
                out += "{}";
                return;
            }
            out += '{';
            for (size_t k = 0; k < items.size(); ++k) {
                if (k) out += o.item_sep;
                if (o.indent) newline(level + 1);
                append_json_string(out, items[k].first, o.ensure_ascii);
                out += o.key_sep;
                dump(out, *items[k].second, o, level + 1);
            }
            if (o.indent) newline(level);
            out += '}';
            return;
        }
        case Kind::Undefined: throw RenderError("Object of type Undefined is not JSON serializable");
        case Kind::Callable: throw RenderError("Object of type function is not JSON serializable");
    }
}

}  // namespace

Value from_json(const nlohmann::ordered_json& j) { return convert(j, 0); }
Value from_json(const nlohmann::json& j) { return convert(j, 0); }

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
    out += '"';
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            size_t start = i;
            uint32_t cp = utf8_next(s, i);
            if (!ensure_ascii) {
                out.append(s.substr(start, i - start));
            } else if (cp >= 0x10000) {
                cp -= 0x10000;
                out += fmt::format("\\u{:04x}\\u{:04x}", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                out += fmt::format("\\u{:04x}", cp);
            }
            continue;
        }
        ++i;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) out += fmt::format("\\u{:04x}", c);
                else out += static_cast<char>(c);
        }
    }
    out += '"';
}

std::string to_json(const Value& v, const JsonDumpOptions& opts) {
    std::string out;
    dump(out, v, opts, 0);
    return out;
}

}  // namespace strata::jinja
