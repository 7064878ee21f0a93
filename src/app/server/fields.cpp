#include "app/server/fields.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string_view>

namespace strata::app::server {
namespace {

// The deepest nesting of arrays and objects in `text`, counting brackets outside
// strings, without parsing: checked before the parser builds anything. Stops
// counting past `limit`.
int nesting_depth(std::string_view text, int limit) {
    int depth = 0, deepest = 0;
    bool in_string = false, escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if ((deepest = std::max(deepest, ++depth)) > limit) break;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}

}  // namespace

std::optional<json> parse_body(const std::string& body, ApiError& error) {
    if (nesting_depth(body, kMaxJsonDepth) > kMaxJsonDepth) {
        error = {.status = 400,
                 .message = fmt::format("the request body nests arrays and objects deeper than the limit of {}",
                                        kMaxJsonDepth)};
        return std::nullopt;
    }
    json j;
    try {
        j = json::parse(body);
    } catch (const json::exception& e) {
        // nlohmann says where (byte offset) and what it expected. Not only
        // `parse_error`: a number beyond double's range ("1e400") throws
        // `out_of_range`, which the request fuzzer found escaping as a crash.
        error = {.status = 400, .message = fmt::format("the request body is not valid JSON: {}", e.what())};
        return std::nullopt;
    }
    if (!j.is_object()) {
        error = {.status = 400, .message = "the request body must be a JSON object"};
        return std::nullopt;
    }
    return j;
}

void Fields::fail(const std::string& key, const std::string& what) {
    if (error_) return;
    error_ = ApiError{.status = 400, .message = fmt::format("'{}' {}", name(key), what), .param = name(key)};
}

const json* Fields::get(const std::string& key) const {
    if (error_) return nullptr;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
}

std::optional<bool> Fields::boolean(const std::string& key) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) return fail(key, "must be a boolean"), std::nullopt;
    return v->get<bool>();
}

std::optional<std::string> Fields::string(const std::string& key) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) return fail(key, "must be a string"), std::nullopt;
    return v->get<std::string>();
}

std::optional<double> Fields::number(const std::string& key, double lo, double hi) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) return fail(key, "must be a number"), std::nullopt;
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi) return fail(key, fmt::format("must be between {} and {}", lo, hi)), std::nullopt;
    return x;
}

std::optional<int64_t> Fields::integer(const std::string& key, int64_t lo, int64_t hi) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    // Clients written in JavaScript send every number as a double; 64.0 is an integer.
    if (v->is_number_float()) {
        const double x = v->get<double>();
        if (!std::isfinite(x) || std::floor(x) != x) return fail(key, "must be an integer"), std::nullopt;
        if (x < static_cast<double>(lo) || x > static_cast<double>(hi))
            return fail(key, fmt::format("must be between {} and {}", lo, hi)), std::nullopt;
        return static_cast<int64_t>(x);
    }
    if (v->is_number_unsigned()) {
        const uint64_t u = v->get<uint64_t>();
        if (u > static_cast<uint64_t>(hi) || (lo > 0 && u < static_cast<uint64_t>(lo)))
            return fail(key, fmt::format("must be between {} and {}", lo, hi)), std::nullopt;
        return static_cast<int64_t>(u);
    }
    if (!v->is_number_integer()) return fail(key, "must be an integer"), std::nullopt;
    const int64_t x = v->get<int64_t>();
    if (x < lo || x > hi) return fail(key, fmt::format("must be between {} and {}", lo, hi)), std::nullopt;
    return x;
}

std::optional<std::vector<std::string>> Fields::strings(const std::string& key) {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (v->is_string()) return std::vector<std::string>{v->get<std::string>()};
    if (!v->is_array()) return fail(key, "must be a string or an array of strings"), std::nullopt;
    std::vector<std::string> out;
    for (size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_string()) return fail(fmt::format("{}[{}]", key, i), "must be a string"), std::nullopt;
        out.push_back((*v)[i].get<std::string>());
    }
    return out;
}

}  // namespace strata::app::server
