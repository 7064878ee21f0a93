#pragma once
// Values of the Jinja subset that renders chat templates. They follow Python's
// data model because Jinja2 is Python: lists and dicts are reference types (a
// namespace attribute set inside a loop is seen after it), dicts keep insertion
// order, `None` prints as "None", and an undefined variable is a value of its own
// that prints as nothing and is falsy.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::jinja {

class Interp;
struct Value;

enum class Kind : uint8_t { Undefined, None, Bool, Int, Float, String, List, Dict, Callable };

// A render-time failure. The interpreter catches it at the public boundary
// (`Template::render`) and turns it into an error value naming the template
// line and column; nothing outside the `jinja` code sees the exception.
struct RenderError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct CallArgs {
    std::vector<Value> pos;
    std::vector<std::pair<std::string, Value>> kw;

    // Argument `i` by position, else by keyword `name`, else null.
    const Value* get(size_t i, std::string_view name) const;
    const Value* kwarg(std::string_view name) const;
};

struct ListData;
struct DictData;

struct Callable {
    std::string name;
    std::function<Value(Interp&, CallArgs&)> fn;
};

struct Value {
    Kind kind = Kind::Undefined;
    bool b = false;
    bool safe = false;  // String: marked safe (Jinja2's `Markup`), from `safe` or `escape`
    int64_t i = 0;
    double f = 0.0;
    std::string s;  // String; for Undefined, what was undefined (for error messages)
    std::shared_ptr<ListData> list;
    std::shared_ptr<DictData> dict;
    std::shared_ptr<Callable> fn;

    static Value undefined(std::string hint = {});
    static Value none();
    static Value boolean(bool v);
    static Value integer(int64_t v);
    static Value number(double v);
    static Value string(std::string v);
    static Value new_list(std::vector<Value> items = {}, bool tuple = false);
    static Value new_dict();
    static Value new_namespace();
    static Value callable(std::string name, std::function<Value(Interp&, CallArgs&)> fn);

    bool is_undefined() const { return kind == Kind::Undefined; }
    bool is_none() const { return kind == Kind::None; }
    bool is_string() const { return kind == Kind::String; }
    bool is_list() const { return kind == Kind::List; }
    bool is_dict() const { return kind == Kind::Dict; }
    bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
    bool is_tuple() const;
    bool is_namespace() const;
    double as_double() const;  // for Int, Float, Bool
};

struct ListData {
    std::vector<Value> items;
    bool tuple = false;
};

struct DictData {
    std::vector<std::pair<Value, Value>> items;  // insertion order, as Python dicts
    bool ns = false;                              // a `namespace()` object

    Value* find(const Value& key);
    Value* find(std::string_view key);
    void set(Value key, Value v);
    void set(std::string_view key, Value v) { set(Value::string(std::string(key)), std::move(v)); }
    bool erase(const Value& key);
};

// Python's truthiness.
bool truthy(const Value& v);
// Python's `str()` (Jinja prints this); undefined prints as nothing.
std::string to_str(const Value& v);
// Python's `repr()`, as used inside printed lists and dicts.
std::string repr(const Value& v);
void append_repr(std::string& out, const Value& v, int depth = 0);
// Python's `repr(float)`: the shortest string that reads back, "1.0", "1e-05".
std::string float_repr(double d);
// The Python type name, for error messages: "str", "dict", "NoneType".
const char* type_name(const Value& v);

// Python's `==` (1 == 1.0 == True, lists elementwise, dicts ignoring order).
bool equals(const Value& a, const Value& b, int depth = 0);
// Python's `<`; throws `RenderError` for types that do not order.
bool less(const Value& a, const Value& b);
// -1, 0, 1 by Python ordering, optionally comparing strings case-insensitively.
int compare(const Value& a, const Value& b, bool case_sensitive = true);

// UTF-8 helpers: Python indexes strings by code point, not byte.
size_t utf8_length(std::string_view s);
std::vector<std::string_view> utf8_chars(std::string_view s);
// Replaces invalid UTF-8 sequences with U+FFFD.
std::string utf8_sanitize(std::string_view s);
void append_utf8(std::string& out, uint32_t cp);
bool is_py_space(uint32_t cp);
// Decodes one code point at `i` and advances it; invalid bytes decode as U+FFFD.
uint32_t utf8_next(std::string_view s, size_t& i);

}  // namespace strata::jinja
