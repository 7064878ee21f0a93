#pragma once
// Error values for untrusted input (STYLE.md rule 7): files, HTTP bodies and flags
// return a `Result<T>` whose error message names the culprit. Broken internal
// invariants use `CHECK` (check.h) instead.

#include <fmt/format.h>

#include <string>
#include <utility>
#include <variant>

namespace strata {

struct Error {
    std::string message;
};

// Builds an `Error` from a fmt format string: `return err("key '{}' is missing", key);`
template <typename... Args>
Error err(fmt::format_string<Args...> f, Args&&... args) {
    return Error{fmt::format(f, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error e) : v_(std::move(e)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

// `Result<void>`: success or an error.
class [[nodiscard]] Status {
public:
    Status() = default;
    Status(Error e) : error_(std::move(e)), failed_(true) {}
    static Status ok_status() { return Status(); }

    bool ok() const { return !failed_; }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return error_; }

private:
    Error error_;
    bool failed_ = false;
};

}  // namespace strata

// Propagates an error from an expression yielding `Result<T>` or `Status`.
#define STRATA_TRY(expr)                                   \
    do {                                                   \
        auto&& strata_try_r_ = (expr);                     \
        if (!strata_try_r_.ok()) return strata_try_r_.error(); \
    } while (0)
