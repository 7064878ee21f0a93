#pragma once
// Typed reading of request bodies. Untrusted JSON is checked field by field; the
// first problem is kept as an `ApiError` whose message names the field
// (`messages[2].content`, `options.top_k`), and later reads become no-ops, so a
// parser reads straight down and checks `failed()` once at the end.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace strata::app::server {

using json = nlohmann::ordered_json;

// An error for the client, in whichever API's shape the adapter writes it.
struct ApiError {
    int status = 400;
    std::string message;
    std::string param;  // the field at fault, for OpenAI's `param`
    std::string code;   // OpenAI's `code`, e.g. "model_not_found"
};

// Arrays and objects a request body may nest. Real requests nest a handful deep;
// thousands of levels would make every recursive walk of the value (copying,
// printing, destroying) a stack overflow waiting to happen.
inline constexpr int kMaxJsonDepth = 64;

// Parses a request body: a JSON object, or an error saying where it is malformed
// or that it nests deeper than `kMaxJsonDepth`.
std::optional<json> parse_body(const std::string& body, ApiError& error);

class Fields {
public:
    // Reads members of `obj`; `prefix` is prepended to names in messages ("options.").
    Fields(const json& obj, std::string prefix = "") : obj_(obj), prefix_(std::move(prefix)) {}

    bool failed() const { return error_.has_value(); }
    const ApiError& error() const { return *error_; }
    void fail(const std::string& key, const std::string& what);
    // Takes the first error of a nested object's reader (`options.top_k`).
    void adopt(const Fields& nested) {
        if (!error_ && nested.error_) error_ = nested.error_;
    }

    // Absent or null fields read as nullopt. Numbers outside [lo, hi] are errors.
    const json* get(const std::string& key) const;
    std::optional<bool> boolean(const std::string& key);
    std::optional<std::string> string(const std::string& key);
    std::optional<double> number(const std::string& key, double lo, double hi);
    std::optional<int64_t> integer(const std::string& key, int64_t lo, int64_t hi);
    // A string or an array of strings (OpenAI's and Ollama's `stop`).
    std::optional<std::vector<std::string>> strings(const std::string& key);

    std::string name(const std::string& key) const { return prefix_ + key; }

private:
    const json& obj_;
    std::string prefix_;
    std::optional<ApiError> error_;
};

}  // namespace strata::app::server
