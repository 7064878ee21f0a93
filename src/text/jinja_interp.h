#pragma once
// The tree-walking interpreter behind `jinja::Template::render`, and the hooks
// that filters, tests and methods (jinja_filters.cpp, jinja_methods.cpp) use.
// One `Interp` lives for one render; the parsed tree is shared and read-only, so
// one template renders on many threads at once.

#include "text/jinja_ast.h"
#include "text/jinja_value.h"

#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace strata::jinja {

// Bounds on one render, so a template cannot hang or exhaust the server. Each
// error names the limit it hit.
struct Limits {
    int max_call_depth = 100;                   // nested macro and caller calls
    uint64_t max_loop_iterations = 1'000'000;   // all loops of one render together, and list items made
    size_t max_total_bytes = 256u << 20;        // all strings built by one render together
    size_t max_output_bytes = 16u << 20;        // the output, and any one string value
    size_t max_items = 1u << 20;                // any one list, `range` included
};

// What `strftime_now` reads: local broken-down time. Tests and `--now` inject a fixed one.
using Clock = std::function<std::tm()>;

struct Scope {
    std::unordered_map<std::string, Value> vars;
    std::shared_ptr<Scope> parent;

    Value* find(const std::string& name);
};
using ScopePtr = std::shared_ptr<Scope>;

class Interp {
public:
    Interp(std::string_view src, const Limits& limits, const Clock& clock);

    // Renders `body` with `vars` (a dict) as the template's variables; throws
    // `RenderError` with the line and column of the failing construct.
    std::string render(const Body& body, const Value& vars);

    Value call(const Value& callee, CallArgs& args);
    Value apply_filter(const std::string& name, Value v, CallArgs& args);
    bool apply_test(const std::string& name, const Value& v, CallArgs& args);
    Value get_attr(const Value& obj, const std::string& name);
    Value get_item(const Value& obj, const Value& key);

    const Limits& limits() const { return limits_; }
    void check_size(size_t bytes) const;   // a string about to be made
    void check_items(size_t n);            // a list about to be made (its items count as work)
    void made_bytes(size_t n);             // a string was built (counts against `max_total_bytes`)
    void count_iterations(uint64_t n);     // work done by a loop or a filter over a list
    std::tm now() const;

private:
    enum class Flow { Normal, Break, Continue };

    Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
    Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out);
    Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
    Value eval(const Expr& e, const ScopePtr& scope);
    Value eval_call(const Expr& e, const ScopePtr& scope);
    void eval_args(const std::vector<Arg>& in, const ScopePtr& scope, CallArgs& out);
    Value call_macro(const Stmt& m, const ScopePtr& def_scope, CallArgs& args);
    Value apply_filters(const std::vector<FilterCall>& fs, Value v, const ScopePtr& scope);
    void bind(Scope& scope, const std::vector<std::string>& names, const Value& v);
    Value lookup(const std::string& name, const ScopePtr& scope);
    void emit(std::string& out, const Value& v);

    std::string_view src_;
    const Limits& limits_;
    const Clock& clock_;
    ScopePtr globals_;
    uint32_t pos_ = 0;  // offset of the construct being evaluated, for errors
    int call_depth_ = 0;
    uint64_t iterations_ = 0;
    uint64_t bytes_made_ = 0;
};

// Filters and tests by name (jinja_filters.cpp); null when unknown.
using FilterFn = Value (*)(Interp&, Value&, CallArgs&);
using TestFn = bool (*)(Interp&, const Value&, CallArgs&);
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

// Methods of str, list and dict that templates call (jinja_methods.cpp).
bool has_method(const Value& obj, std::string_view name);
Value call_method(Interp& in, const Value& obj, const std::string& name, CallArgs& args);
// `str.format` and `str % args`.
std::string str_format(Interp& in, const std::string& fmt, const CallArgs& args);
std::string percent_format(Interp& in, const std::string& fmt, const Value& args);

// Globals and operators (jinja_ops.cpp).
void add_globals(Scope& globals);
Value binary_op(Interp& in, const std::string& op, const Value& a, const Value& b);  // + - * / // % **
bool compare_values(const std::string& op, const Value& a, const Value& b);          // == != < <= > >= in notin
Value slice_value(const Value& obj, const Value* start, const Value* stop, const Value* step);

// Mutation (`append`, `update`, `set ns.x = ...`) is the only way to build a
// reference cycle, which shared pointers would leak. Throws when `inserted`
// reaches `container` or holds a function (a bound method can hold a container),
// so every render frees all it made.
void check_insert(Interp& in, const Value& container, const Value& inserted);

// Helpers shared by the filter and method files.
std::vector<Value> iterate(const Value& v);  // Python iteration: a dict gives its keys
[[noreturn]] void throw_undefined(const Value& v);
int64_t to_int(const Value& v, const char* what);
std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right);
std::string ascii_lower(std::string s);
std::string ascii_upper(std::string s);
std::string html_escape(const std::string& s);

}  // namespace strata::jinja
