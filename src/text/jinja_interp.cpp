// Statements and expressions of the Jinja subset, with Jinja2's scoping: `if`
// shares its scope, each loop iteration and each macro call gets a fresh one
// (so a `set` inside a loop is gone after it, which is why templates use
// `namespace`), and a macro sees the scope it was defined in.

#include "text/jinja_interp.h"

#include "text/jinja_json.h"
#include "text/jinja_lexer.h"

#include <fmt/format.h>

#include <cmath>

namespace strata::jinja {

Value* Scope::find(const std::string& name) {
    for (Scope* s = this; s; s = s->parent.get()) {
        auto it = s->vars.find(name);
        if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
}

[[noreturn]] void throw_undefined(const Value& v) {
    throw RenderError(v.s.empty() ? "value is undefined" : v.s);
}

std::vector<Value> iterate(const Value& v) {
    switch (v.kind) {
        case Kind::Undefined: return {};
        case Kind::List: return v.list->items;
        case Kind::Dict: {
            if (v.dict->ns) break;
            std::vector<Value> keys;
            keys.reserve(v.dict->items.size());
            for (const auto& kv : v.dict->items) keys.push_back(kv.first);
            return keys;
        }
        case Kind::String: {
            std::vector<Value> chars;
            for (std::string_view c : utf8_chars(v.s)) chars.push_back(Value::string(std::string(c)));
            return chars;
        }
        default: break;
    }
    throw RenderError(fmt::format("'{}' object is not iterable", type_name(v)));
}

namespace {

bool dict_method_name(std::string_view n) {
    return n == "items" || n == "keys" || n == "values" || n == "get" || n == "pop" || n == "update" ||
           n == "copy" || n == "setdefault" || n == "clear" || n == "popitem";
}

int64_t as_int(const Value& v) { return v.kind == Kind::Bool ? v.b : v.i; }

}  // namespace

int64_t to_int(const Value& v, const char* what) {
    if (v.kind == Kind::Int) return v.i;
    if (v.kind == Kind::Bool) return v.b;
    throw RenderError(fmt::format("{} expects an integer, not '{}'", what, type_name(v)));
}

Interp::Interp(std::string_view src, const Limits& limits, const Clock& clock)
    : src_(src), limits_(limits), clock_(clock), globals_(std::make_shared<Scope>()) {
    add_globals(*globals_);
}

std::tm Interp::now() const {
    if (clock_) return clock_();
    std::time_t t = std::time(nullptr);
    std::tm out{};
    localtime_r(&t, &out);
    return out;
}

void Interp::check_size(size_t bytes) const {
    if (bytes > limits_.max_output_bytes)
        throw RenderError(fmt::format("string of {} bytes exceeds the output limit of {} bytes", bytes,
                                      limits_.max_output_bytes));
}

void Interp::check_items(size_t n) {
    if (n > limits_.max_items)
        throw RenderError(fmt::format("list of {} items exceeds the limit of {} items", n, limits_.max_items));
    // Making a list is work like looping over it; counting its items bounds the
    // time and memory of templates that build lists in loops.
    count_iterations(n);
}

void Interp::count_iterations(uint64_t n) {
    iterations_ += n;
    if (iterations_ > limits_.max_loop_iterations)
        throw RenderError(fmt::format("loop iterations (and list items made) exceed the limit of {}",
                                      limits_.max_loop_iterations));
}

void Interp::made_bytes(size_t n) {
    bytes_made_ += n;
    if (bytes_made_ > limits_.max_total_bytes)
        throw RenderError(fmt::format("strings built exceed the limit of {} bytes in total", limits_.max_total_bytes));
}

std::string Interp::render(const Body& body, const Value& vars) {
    auto root = std::make_shared<Scope>();
    root->parent = globals_;
    if (vars.is_dict())
        for (const auto& [k, v] : vars.dict->items)
            if (k.is_string()) root->vars[k.s] = v;
    std::string out;
    try {
        exec_body(body, root, out);
    } catch (const RenderError& e) {
        throw RenderError(fmt::format("{}: {}", describe_position(src_, pos_), e.what()));
    }
    return out;
}

void Interp::emit(std::string& out, const Value& v) {
    switch (v.kind) {
        case Kind::Undefined: return;
        case Kind::String: out += v.s; break;
        default: out += to_str(v);
    }
    if (out.size() > limits_.max_output_bytes)
        throw RenderError(fmt::format("output exceeds the limit of {} bytes", limits_.max_output_bytes));
}

Interp::Flow Interp::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const StmtPtr& s : body) {
        Flow f = exec(*s, scope, out);
        if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
}

void Interp::bind(Scope& scope, const std::vector<std::string>& names, const Value& v) {
    if (names.size() == 1) {
        scope.vars[names[0]] = v;
        return;
    }
    std::vector<Value> items = iterate(v);
    if (items.size() != names.size())
        throw RenderError(fmt::format("cannot unpack {} values into {} names", items.size(), names.size()));
    for (size_t k = 0; k < names.size(); ++k) scope.vars[names[k]] = std::move(items[k]);
}

Interp::Flow Interp::exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
        case StmtKind::Text:
            out += s.text;
            if (out.size() > limits_.max_output_bytes)
                throw RenderError(fmt::format("output exceeds the limit of {} bytes", limits_.max_output_bytes));
            return Flow::Normal;
        case StmtKind::Emit: emit(out, eval(*s.exprs[0], scope)); return Flow::Normal;
        case StmtKind::If:
            for (size_t k = 0; k < s.exprs.size(); ++k)
                if (truthy(eval(*s.exprs[k], scope))) return exec_body(s.bodies[k], scope, out);
            if (s.bodies.size() > s.exprs.size()) return exec_body(s.bodies.back(), scope, out);
            return Flow::Normal;
        case StmtKind::For: return exec_for(s, scope, out);
        case StmtKind::Set: bind(*scope, s.names, eval(*s.exprs[0], scope)); return Flow::Normal;
        case StmtKind::SetAttr: {
            Value v = eval(*s.exprs[0], scope);
            pos_ = s.off;
            Value* ns = scope->find(s.names[0]);
            if (!ns || !ns->is_namespace())
                throw RenderError(fmt::format("cannot assign attribute '{}' on '{}': not a namespace", s.text,
                                              s.names[0]));
            check_insert(*this, *ns, v);
            ns->dict->set(s.text, std::move(v));
            return Flow::Normal;
        }
        case StmtKind::SetBlock: {
            std::string body;
            exec_body(s.bodies[0], scope, body);
            scope->vars[s.names[0]] = apply_filters(s.filters, Value::string(std::move(body)), scope);
            return Flow::Normal;
        }
        case StmtKind::Macro: {
            const Stmt* m = &s;
            ScopePtr def = scope;
            // The macro holds its defining scope; the scope holds the macro. The
            // cycle is broken when the render ends and `root` is cleared below.
            std::weak_ptr<Scope> weak = def;
            scope->vars[s.text] = Value::callable(s.text, [this, m, weak](Interp&, CallArgs& a) {
                ScopePtr d = weak.lock();
                if (!d) throw RenderError("macro called after its scope ended");
                return call_macro(*m, d, a);
            });
            return Flow::Normal;
        }
        case StmtKind::CallBlock: {
            const Stmt* cb = &s;
            std::weak_ptr<Scope> weak = scope;
            Value caller = Value::callable("caller", [this, cb, weak](Interp&, CallArgs& a) {
                ScopePtr d = weak.lock();
                if (!d) throw RenderError("caller called after its scope ended");
                return call_macro(*cb, d, a);
            });
            const Expr& call = *s.exprs.back();
            Value callee = eval(*call.kids[0], scope);
            CallArgs args;
            eval_args(call.args, scope, args);
            args.kw.emplace_back("caller", std::move(caller));
            pos_ = call.off;
            emit(out, this->call(callee, args));
            return Flow::Normal;
        }
        case StmtKind::FilterBlock: {
            std::string body;
            exec_body(s.bodies[0], scope, body);
            emit(out, apply_filters(s.filters, Value::string(std::move(body)), scope));
            return Flow::Normal;
        }
        case StmtKind::Break: return Flow::Break;
        case StmtKind::Continue: return Flow::Continue;
        case StmtKind::Do: eval(*s.exprs[0], scope); return Flow::Normal;
        case StmtKind::Block: return exec_body(s.bodies[0], scope, out);
    }
    return Flow::Normal;
}

Interp::Flow Interp::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    Value seq = eval(*s.exprs[0], scope);
    pos_ = s.off;
    std::vector<Value> items = iterate(seq);
    if (s.exprs.size() > 1) {
        std::vector<Value> kept;
        for (Value& v : items) {
            count_iterations(1);
            auto tmp = std::make_shared<Scope>();
            tmp->parent = scope;
            bind(*tmp, s.names, v);
            if (truthy(eval(*s.exprs[1], tmp))) kept.push_back(std::move(v));
        }
        items = std::move(kept);
    }
    const size_t n = items.size();
    auto changed_last = std::make_shared<Value>();
    for (size_t k = 0; k < n; ++k) {
        count_iterations(1);
        auto it = std::make_shared<Scope>();
        it->parent = scope;
        bind(*it, s.names, items[k]);
        if (s.uses_loop) {
            Value loop = Value::new_dict();
            auto& d = *loop.dict;
            d.items.reserve(14);
            const auto i = static_cast<int64_t>(k), len = static_cast<int64_t>(n);
            d.items.emplace_back(Value::string("index"), Value::integer(i + 1));
            d.items.emplace_back(Value::string("index0"), Value::integer(i));
            d.items.emplace_back(Value::string("revindex"), Value::integer(len - i));
            d.items.emplace_back(Value::string("revindex0"), Value::integer(len - i - 1));
            d.items.emplace_back(Value::string("first"), Value::boolean(k == 0));
            d.items.emplace_back(Value::string("last"), Value::boolean(k + 1 == n));
            d.items.emplace_back(Value::string("length"), Value::integer(len));
            d.items.emplace_back(Value::string("depth"), Value::integer(1));
            d.items.emplace_back(Value::string("depth0"), Value::integer(0));
            d.items.emplace_back(Value::string("previtem"),
                                 k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
            d.items.emplace_back(Value::string("nextitem"),
                                 k + 1 < n ? items[k + 1] : Value::undefined("there is no next item"));
            d.items.emplace_back(Value::string("cycle"), Value::callable("cycle", [k](Interp&, CallArgs& a) {
                                     if (a.pos.empty()) throw RenderError("no items for cycling given");
                                     return a.pos[k % a.pos.size()];
                                 }));
            d.items.emplace_back(Value::string("changed"),
                                 Value::callable("changed", [changed_last](Interp&, CallArgs& a) {
                                     Value cur = Value::new_list(a.pos);
                                     if (!changed_last->is_undefined() && equals(*changed_last, cur))
                                         return Value::boolean(false);
                                     *changed_last = cur;
                                     return Value::boolean(true);
                                 }));
            it->vars["loop"] = std::move(loop);
        }
        if (exec_body(s.bodies[0], it, out) == Flow::Break) break;
    }
    if (n == 0 && s.bodies.size() > 1) return exec_body(s.bodies[1], scope, out);
    return Flow::Normal;
}

Value Interp::call_macro(const Stmt& m, const ScopePtr& def_scope, CallArgs& args) {
    if (call_depth_ >= limits_.max_call_depth)
        throw RenderError(fmt::format("macro calls nested deeper than the limit of {}", limits_.max_call_depth));
    struct DepthGuard {
        int& d;
        ~DepthGuard() { --d; }
    } guard{++call_depth_};
    auto sc = std::make_shared<Scope>();
    sc->parent = def_scope;
    const size_t np = m.names.size();
    std::vector<bool> used_kw(args.kw.size(), false);
    for (size_t k = 0; k < np; ++k) {
        const std::string& name = m.names[k];
        if (k < args.pos.size()) {
            sc->vars[name] = args.pos[k];
            continue;
        }
        bool found = false;
        for (size_t j = 0; j < args.kw.size(); ++j)
            if (args.kw[j].first == name) {
                sc->vars[name] = args.kw[j].second;
                used_kw[j] = found = true;
                break;
            }
        if (found) continue;
        if (k < m.exprs.size() && m.exprs[k]) sc->vars[name] = eval(*m.exprs[k], sc);
        else sc->vars[name] = Value::undefined(fmt::format("parameter '{}' was not provided", name));
    }
    std::vector<Value> extra;
    for (size_t k = np; k < args.pos.size(); ++k) extra.push_back(args.pos[k]);
    sc->vars["varargs"] = Value::new_list(std::move(extra), true);
    Value kwargs = Value::new_dict();
    for (size_t j = 0; j < args.kw.size(); ++j) {
        if (used_kw[j]) continue;
        if (args.kw[j].first == "caller") sc->vars["caller"] = args.kw[j].second;
        else kwargs.dict->set(args.kw[j].first, args.kw[j].second);
    }
    sc->vars["kwargs"] = std::move(kwargs);
    std::string out;
    exec_body(m.bodies[0], sc, out);
    return Value::string(std::move(out));
}

Value Interp::apply_filters(const std::vector<FilterCall>& fs, Value v, const ScopePtr& scope) {
    for (const FilterCall& f : fs) {
        CallArgs args;
        eval_args(f.args, scope, args);
        pos_ = f.off;
        v = apply_filter(f.name, std::move(v), args);
    }
    return v;
}

Value Interp::apply_filter(const std::string& name, Value v, CallArgs& args) {
    FilterFn f = find_filter(name);
    if (!f) throw RenderError(fmt::format("no filter named '{}'", name));
    return f(*this, v, args);
}

bool Interp::apply_test(const std::string& name, const Value& v, CallArgs& args) {
    TestFn t = find_test(name);
    if (!t) throw RenderError(fmt::format("no test named '{}'", name));
    return t(*this, v, args);
}

Value Interp::call(const Value& callee, CallArgs& args) {
    if (callee.kind == Kind::Callable) return callee.fn->fn(*this, args);
    if (callee.is_undefined()) throw_undefined(callee);
    throw RenderError(fmt::format("'{}' object is not callable", type_name(callee)));
}

Value Interp::lookup(const std::string& name, const ScopePtr& scope) {
    if (Value* v = scope->find(name)) return *v;
    return Value::undefined(fmt::format("'{}' is undefined", name));
}

Value Interp::get_attr(const Value& obj, const std::string& name) {
    switch (obj.kind) {
        case Kind::Undefined: throw_undefined(obj);
        case Kind::Dict: {
            if (!obj.dict->ns && dict_method_name(name))
                return Value::callable(name, [obj, name](Interp& in, CallArgs& a) {
                    return call_method(in, obj, name, a);
                });
            if (Value* v = obj.dict->find(std::string_view(name))) return *v;
            break;
        }
        case Kind::String:
        case Kind::List:
            if (has_method(obj, name))
                return Value::callable(name, [obj, name](Interp& in, CallArgs& a) {
                    return call_method(in, obj, name, a);
                });
            break;
        default: break;
    }
    return Value::undefined(fmt::format("'{}' has no attribute '{}'",
                                        obj.is_dict() && !obj.dict->ns ? "dict object"
                                                                       : std::string(type_name(obj)) + " object",
                                        name));
}

Value Interp::get_item(const Value& obj, const Value& key) {
    switch (obj.kind) {
        case Kind::Undefined: throw_undefined(obj);
        case Kind::Dict:
            if (Value* v = obj.dict->find(key)) return *v;
            break;
        case Kind::List:
        case Kind::String:
            if (key.kind == Kind::Int || key.kind == Kind::Bool) {
                int64_t i = key.kind == Kind::Bool ? key.b : key.i;
                if (obj.is_list()) {
                    const auto n = static_cast<int64_t>(obj.list->items.size());
                    if (i < 0) i += n;
                    if (i >= 0 && i < n) return obj.list->items[static_cast<size_t>(i)];
                } else {
                    auto chars = utf8_chars(obj.s);
                    const auto n = static_cast<int64_t>(chars.size());
                    if (i < 0) i += n;
                    if (i >= 0 && i < n) return Value::string(std::string(chars[static_cast<size_t>(i)]));
                }
                return Value::undefined(fmt::format("{} index out of range", type_name(obj)));
            }
            break;
        default: break;
    }
    if (key.is_string()) return get_attr(obj, key.s);
    return Value::undefined(fmt::format("'{}' object has no item {}", type_name(obj), repr(key)));
}

void Interp::eval_args(const std::vector<Arg>& in, const ScopePtr& scope, CallArgs& out) {
    for (const Arg& a : in) {
        if (a.name.empty()) out.pos.push_back(eval(*a.value, scope));
        else out.kw.emplace_back(a.name, eval(*a.value, scope));
    }
}

Value Interp::eval_call(const Expr& e, const ScopePtr& scope) {
    const Expr& target = *e.kids[0];
    if (target.kind == ExprKind::GetAttr) {
        Value obj = eval(*target.kids[0], scope);
        if (obj.is_string() || obj.is_list() || (obj.is_dict() && !obj.dict->ns && dict_method_name(target.name))) {
            if (has_method(obj, target.name)) {
                CallArgs args;
                eval_args(e.args, scope, args);
                pos_ = target.off;
                return call_method(*this, obj, target.name, args);
            }
        }
        pos_ = target.off;
        Value callee = get_attr(obj, target.name);
        CallArgs args;
        eval_args(e.args, scope, args);
        pos_ = e.off;
        return call(callee, args);
    }
    Value callee = eval(target, scope);
    CallArgs args;
    eval_args(e.args, scope, args);
    pos_ = e.off;
    return call(callee, args);
}

Value Interp::eval(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
        case ExprKind::Literal: return e.literal;
        case ExprKind::Name: return lookup(e.name, scope);
        case ExprKind::GetAttr: {
            Value obj = eval(*e.kids[0], scope);
            pos_ = e.off;
            return get_attr(obj, e.name);
        }
        case ExprKind::GetItem: {
            Value obj = eval(*e.kids[0], scope);
            Value key = eval(*e.kids[1], scope);
            pos_ = e.off;
            return get_item(obj, key);
        }
        case ExprKind::Slice: {
            Value obj = eval(*e.kids[0], scope);
            Value parts[3];
            for (int k = 0; k < 3; ++k)
                if (e.kids[static_cast<size_t>(k) + 1]) parts[k] = eval(*e.kids[static_cast<size_t>(k) + 1], scope);
            pos_ = e.off;
            return slice_value(obj, &parts[0], &parts[1], &parts[2]);
        }
        case ExprKind::Call: return eval_call(e, scope);
        case ExprKind::Filter: {
            Value v = eval(*e.kids[0], scope);
            CallArgs args;
            eval_args(e.filter.args, scope, args);
            pos_ = e.filter.off;
            return apply_filter(e.filter.name, std::move(v), args);
        }
        case ExprKind::Test: {
            Value v = eval(*e.kids[0], scope);
            CallArgs args;
            eval_args(e.args, scope, args);
            pos_ = e.off;
            return Value::boolean(apply_test(e.name, v, args) != e.negated);
        }
        case ExprKind::Unary: {
            Value v = eval(*e.kids[0], scope);
            pos_ = e.off;
            if (e.name == "not") return Value::boolean(!truthy(v));
            if (v.is_undefined()) throw_undefined(v);
            if (v.kind == Kind::Float) return Value::number(e.name == "-" ? -v.f : v.f);
            if (v.kind == Kind::Int || v.kind == Kind::Bool) {
                const int64_t x = as_int(v);
                if (e.name == "+") return Value::integer(x);
                if (x == INT64_MIN) throw RenderError("integer overflow");
                return Value::integer(-x);
            }
            throw RenderError(fmt::format("bad operand type for unary {}: '{}'", e.name, type_name(v)));
        }
        case ExprKind::Binary: {
            Value a = eval(*e.kids[0], scope);
            Value b = eval(*e.kids[1], scope);
            pos_ = e.off;
            if (e.name == "~") {
                std::string s = to_str(a);
                s += to_str(b);
                check_size(s.size());
                made_bytes(s.size());
                return Value::string(std::move(s));
            }
            return binary_op(*this, e.name, a, b);
        }
        case ExprKind::And: {
            Value a = eval(*e.kids[0], scope);
            return truthy(a) ? eval(*e.kids[1], scope) : a;
        }
        case ExprKind::Or: {
            Value a = eval(*e.kids[0], scope);
            return truthy(a) ? a : eval(*e.kids[1], scope);
        }
        case ExprKind::Compare: {
            Value left = eval(*e.kids[0], scope);
            for (size_t k = 0; k < e.ops.size(); ++k) {
                Value right = eval(*e.kids[k + 1], scope);
                pos_ = e.off;
                if (!compare_values(e.ops[k], left, right)) return Value::boolean(false);
                left = std::move(right);
            }
            return Value::boolean(true);
        }
        case ExprKind::Cond:
            if (truthy(eval(*e.kids[0], scope))) return eval(*e.kids[1], scope);
            if (e.kids[2]) return eval(*e.kids[2], scope);
            return Value::undefined("the inline if expression evaluated to false and no else section was defined");
        case ExprKind::List:
        case ExprKind::Tuple: {
            std::vector<Value> items;
            items.reserve(e.kids.size());
            for (const ExprPtr& k : e.kids) items.push_back(eval(*k, scope));
            return Value::new_list(std::move(items), e.kind == ExprKind::Tuple);
        }
        case ExprKind::Dict: {
            Value d = Value::new_dict();
            for (size_t k = 0; k + 1 < e.kids.size(); k += 2) {
                Value key = eval(*e.kids[k], scope);
                d.dict->set(std::move(key), eval(*e.kids[k + 1], scope));
            }
            return d;
        }
    }
    return Value();
}

}  // namespace strata::jinja
