// Built-in globals (`range`, `namespace`, `dict`, `raise_exception`,
// `strftime_now`, `joiner`) and Python's operators on values: arithmetic with
// Python's rules (floor division and modulo round toward negative infinity,
// `+` concatenates strings and lists), `in`, comparisons and slices.

#include "text/jinja_interp.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace strata::jinja {

namespace {

int64_t as_int(const Value& v) { return v.kind == Kind::Bool ? v.b : v.i; }

Value make_range(Interp& in, CallArgs& a) {
    int64_t start = 0, stop = 0, step = 1;
    if (a.pos.size() == 1) {
        stop = to_int(a.pos[0], "range");
    } else if (a.pos.size() == 2 || a.pos.size() == 3) {
        start = to_int(a.pos[0], "range");
        stop = to_int(a.pos[1], "range");
        if (a.pos.size() == 3) step = to_int(a.pos[2], "range");
    } else {
        throw RenderError("range expected 1 to 3 arguments");
    }
    if (step == 0) throw RenderError("range() arg 3 must not be zero");
    const double n = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step));
    if (n > static_cast<double>(in.limits().max_items))
        throw RenderError(fmt::format("range of {:.0f} items exceeds the limit of {} items", n,
                                      in.limits().max_items));
    in.check_items(n > 0 ? static_cast<size_t>(n) : 0);
    std::vector<Value> items;
    items.reserve(n > 0 ? static_cast<size_t>(n) : 0);
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) items.push_back(Value::integer(k));
    return Value::new_list(std::move(items));
}

Value make_namespace(Interp&, CallArgs& a) {
    Value ns = Value::new_namespace();
    for (const Value& p : a.pos)
        if (p.is_dict())
            for (const auto& kv : p.dict->items) ns.dict->set(kv.first, kv.second);
    for (auto& [k, v] : a.kw) ns.dict->set(k, v);
    return ns;
}

Value make_dict(Interp&, CallArgs& a) {
    Value d = Value::new_dict();
    for (const Value& p : a.pos)
        if (p.is_dict())
            for (const auto& kv : p.dict->items) d.dict->set(kv.first, kv.second);
    for (auto& [k, v] : a.kw) d.dict->set(k, v);
    return d;
}

Value raise_exception(Interp&, CallArgs& a) {
    throw RenderError(a.pos.empty() ? std::string("raise_exception called") : to_str(a.pos[0]));
}

Value strftime_now(Interp& in, CallArgs& a) {
    const Value* f = a.get(0, "format");
    if (!f || !f->is_string()) throw RenderError("strftime_now expects a format string");
    std::tm t = in.now();
    std::string out(256, '\0');
    size_t n = f->s.empty() ? 0 : std::strftime(out.data(), out.size(), f->s.c_str(), &t);
    if (n == 0 && !f->s.empty()) throw RenderError("strftime_now: format too long or invalid");
    out.resize(n);
    return Value::string(out);
}

Value make_joiner(Interp&, CallArgs& a) {
    const Value* sep = a.get(0, "sep");
    std::string s = sep ? to_str(*sep) : ", ";
    auto used = std::make_shared<bool>(false);
    return Value::callable("joiner", [s, used](Interp&, CallArgs&) {
        if (!*used) {
            *used = true;
            return Value::string("");
        }
        return Value::string(s);
    });
}

// Integer arithmetic that reports overflow instead of wrapping (Python's ints
// never overflow; a template that needs more than 64 bits is broken or hostile).
template <typename Op>
Value int_op(Op op, int64_t x, int64_t y) {
    int64_t r = 0;
    if (op(x, y, &r)) throw RenderError("integer overflow");
    return Value::integer(r);
}
constexpr auto kAdd = [](int64_t x, int64_t y, int64_t* r) { return __builtin_add_overflow(x, y, r); };
constexpr auto kSub = [](int64_t x, int64_t y, int64_t* r) { return __builtin_sub_overflow(x, y, r); };
constexpr auto kMul = [](int64_t x, int64_t y, int64_t* r) { return __builtin_mul_overflow(x, y, r); };

Value binary_op_impl(Interp& in, const std::string& op, const Value& a, const Value& b) {
    if (a.is_undefined()) throw_undefined(a);
    if (b.is_undefined()) throw_undefined(b);
    const bool nums = a.is_number() && b.is_number();
    const bool ints = nums && a.kind != Kind::Float && b.kind != Kind::Float;
    switch (op[0]) {
        case '+':
            if (ints) return int_op(kAdd, as_int(a), as_int(b));
            if (nums) return Value::number(a.as_double() + b.as_double());
            if (a.is_string() && b.is_string()) {
                in.check_size(a.s.size() + b.s.size());
                in.made_bytes(a.s.size() + b.s.size());
                if (a.safe == b.safe) {
                    Value r = Value::string(a.s + b.s);
                    r.safe = a.safe;
                    return r;
                }
                // Jinja2's `Markup` escapes the plain string it is added to.
                Value r = Value::string((a.safe ? a.s : html_escape(a.s)) + (b.safe ? b.s : html_escape(b.s)));
                r.safe = true;
                return r;
            }
            if (a.is_list() && b.is_list() && a.list->tuple == b.list->tuple) {
                in.check_items(a.list->items.size() + b.list->items.size());
                std::vector<Value> items = a.list->items;
                items.insert(items.end(), b.list->items.begin(), b.list->items.end());
                return Value::new_list(std::move(items), a.list->tuple);
            }
            break;
        case '-':
            if (ints) return int_op(kSub, as_int(a), as_int(b));
            if (nums) return Value::number(a.as_double() - b.as_double());
            break;
        case '*':
            if (op == "**") {
                if (ints && as_int(b) >= 0) {
                    int64_t base = as_int(a), e = as_int(b), acc = 1;
                    for (int64_t k = 0; k < e; ++k) {
                        if (__builtin_mul_overflow(acc, base, &acc)) throw RenderError("integer overflow");
                        if (acc == 0 || acc == 1) break;
                    }
                    return Value::integer(acc);
                }
                if (nums) return Value::number(std::pow(a.as_double(), b.as_double()));
                break;
            }
            if (ints) return int_op(kMul, as_int(a), as_int(b));
            if (nums) return Value::number(a.as_double() * b.as_double());
            {
                const Value* seq = a.is_number() ? &b : &a;
                const Value* cnt = a.is_number() ? &a : &b;
                if (cnt->kind == Kind::Int || cnt->kind == Kind::Bool) {
                    const int64_t n = std::max<int64_t>(0, as_int(*cnt));
                    if (seq->is_string()) {
                        in.check_size(seq->s.size() * static_cast<size_t>(n));
                        in.made_bytes(seq->s.size() * static_cast<size_t>(n));
                        std::string out;
                        for (int64_t k = 0; k < n; ++k) out += seq->s;
                        return Value::string(std::move(out));
                    }
                    if (seq->is_list()) {
                        in.check_items(seq->list->items.size() * static_cast<size_t>(n));
                        std::vector<Value> items;
                        for (int64_t k = 0; k < n; ++k)
                            items.insert(items.end(), seq->list->items.begin(), seq->list->items.end());
                        return Value::new_list(std::move(items), seq->list->tuple);
                    }
                }
            }
            break;
        case '/':
            if (!nums) break;
            if (b.as_double() == 0.0) throw RenderError("division by zero");
            if (op == "/") return Value::number(a.as_double() / b.as_double());
            if (ints) {
                int64_t x = as_int(a), y = as_int(b);
                if (x == INT64_MIN && y == -1) throw RenderError("integer overflow");
                int64_t q = x / y;
                if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
                return Value::integer(q);
            }
            return Value::number(std::floor(a.as_double() / b.as_double()));
        case '%':
            if (a.is_string()) return Value::string(percent_format(in, a.s, b));
            if (!nums) break;
            if (b.as_double() == 0.0) throw RenderError("modulo by zero");
            if (ints) {
                int64_t x = as_int(a), y = as_int(b);
                if (y == -1) return Value::integer(0);
                int64_t m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) m += y;
                return Value::integer(m);
            } else {
                double x = a.as_double(), y = b.as_double();
                double m = std::fmod(x, y);
                if (m != 0 && ((m < 0) != (y < 0))) m += y;
                return Value::number(m);
            }
        default: break;
    }
    throw RenderError(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a),
                                  type_name(b)));
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind) {
        case Kind::Undefined: return false;
        case Kind::String:
            if (!item.is_string())
                throw RenderError(fmt::format("'in <string>' requires string as left operand, not {}",
                                              type_name(item)));
            return container.s.find(item.s) != std::string::npos;
        case Kind::List:
            for (const Value& x : container.list->items)
                if (equals(x, item)) return true;
            return false;
        case Kind::Dict: return container.dict->find(item) != nullptr;
        default: throw RenderError(fmt::format("argument of type '{}' is not iterable", type_name(container)));
    }
}

bool compare_op(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return equals(a, b);
    if (op == "!=") return !equals(a, b);
    if (op == "in") return contains(b, a);
    if (op == "notin") return !contains(b, a);
    if (a.is_undefined() || b.is_undefined())
        throw RenderError(fmt::format("'{}' not supported between instances of '{}' and '{}'", op, type_name(a),
                                      type_name(b)));
    const int c = compare(a, b);
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
}

// Python slice bounds for a sequence of `n` items.
std::vector<size_t> slice_indices(int64_t n, const Value* start, const Value* stop, const Value* step) {
    auto get = [](const Value* v, int64_t def) {
        if (!v || v->is_none() || v->is_undefined()) return def;
        return to_int(*v, "slice index");
    };
    const int64_t st = get(step, 1);
    if (st == 0) throw RenderError("slice step cannot be zero");
    auto clamp = [&](int64_t x, bool is_start) {
        if (x < 0) x += n;
        if (st > 0) return std::clamp<int64_t>(x, 0, n);
        (void)is_start;
        return std::clamp<int64_t>(x, -1, n - 1);
    };
    int64_t b = (start && !start->is_none() && !start->is_undefined()) ? clamp(get(start, 0), true)
                                                                        : (st > 0 ? 0 : n - 1);
    int64_t e = (stop && !stop->is_none() && !stop->is_undefined()) ? clamp(get(stop, 0), false)
                                                                     : (st > 0 ? n : -1);
    std::vector<size_t> idx;
    for (int64_t k = b; st > 0 ? k < e : k > e; k += st) idx.push_back(static_cast<size_t>(k));
    return idx;
}

Value slice(const Value& obj, const Value* start, const Value* stop, const Value* step) {
    if (obj.is_undefined()) throw_undefined(obj);
    if (obj.is_list()) {
        std::vector<Value> out;
        for (size_t k : slice_indices(static_cast<int64_t>(obj.list->items.size()), start, stop, step))
            out.push_back(obj.list->items[k]);
        return Value::new_list(std::move(out), obj.list->tuple);
    }
    if (obj.is_string()) {
        auto chars = utf8_chars(obj.s);
        std::string out;
        for (size_t k : slice_indices(static_cast<int64_t>(chars.size()), start, stop, step)) out += chars[k];
        return Value::string(std::move(out));
    }
    throw RenderError(fmt::format("'{}' object is not subscriptable", type_name(obj)));
}

}  // namespace

namespace {

void check_reach(Interp& in, const void* target, const Value& v, int depth) {
    if (depth > 512) throw RenderError("value nested too deeply");
    in.count_iterations(1);
    if (v.kind == Kind::Callable) throw RenderError("functions cannot be stored in lists, dicts or namespaces");
    if (v.is_list()) {
        if (v.list.get() == target) throw RenderError("a list or dict cannot contain itself");
        for (const Value& x : v.list->items) check_reach(in, target, x, depth + 1);
    } else if (v.is_dict()) {
        if (v.dict.get() == target) throw RenderError("a list or dict cannot contain itself");
        for (const auto& [k, x] : v.dict->items) check_reach(in, target, x, depth + 1);
    }
}

}  // namespace

void check_insert(Interp& in, const Value& container, const Value& inserted) {
    const void* target = container.is_list() ? static_cast<const void*>(container.list.get())
                                             : static_cast<const void*>(container.dict.get());
    check_reach(in, target, inserted, 0);
}

void add_globals(Scope& g) {
    g.vars["range"] = Value::callable("range", make_range);
    g.vars["namespace"] = Value::callable("namespace", make_namespace);
    g.vars["dict"] = Value::callable("dict", make_dict);
    g.vars["raise_exception"] = Value::callable("raise_exception", raise_exception);
    g.vars["strftime_now"] = Value::callable("strftime_now", strftime_now);
    g.vars["joiner"] = Value::callable("joiner", make_joiner);
}

Value binary_op(Interp& in, const std::string& op, const Value& a, const Value& b) {
    return binary_op_impl(in, op, a, b);
}

bool compare_values(const std::string& op, const Value& a, const Value& b) { return compare_op(op, a, b); }

Value slice_value(const Value& obj, const Value* start, const Value* stop, const Value* step) {
    return slice(obj, start, stop, step);
}

}  // namespace strata::jinja
