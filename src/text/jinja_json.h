#pragma once
// JSON in and out of Jinja values: chat messages and tools arrive as JSON, and
// templates print JSON with the `tojson` filter exactly as Hugging Face's does
// (Python's `json.dumps` with `ensure_ascii=False`).

#include "text/jinja_value.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace strata::jinja {

Value from_json(const nlohmann::ordered_json& j);
Value from_json(const nlohmann::json& j);

struct JsonDumpOptions {
    std::optional<std::string> indent;  // nullopt: one line
    std::string item_sep = ", ";
    std::string key_sep = ": ";
    bool sort_keys = false;
    bool ensure_ascii = false;
};

// Python's `json.dumps(v, ...)`; throws `RenderError` for values JSON cannot hold.
std::string to_json(const Value& v, const JsonDumpOptions& opts = {});
// Python's `json.dumps` of a string: quotes and escapes.
void append_json_string(std::string& out, std::string_view s, bool ensure_ascii = false);

}  // namespace strata::jinja
