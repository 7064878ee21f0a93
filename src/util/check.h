#pragma once
// `CHECK(cond, msg)` guards internal invariants: when one breaks, the program is
// wrong, so it prints file:line and aborts in every build type. Never use it on
// user input (files, requests, flags): those return `Error` values (result.h).

#include <cstdio>
#include <cstdlib>

namespace strata::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* cond, const char* msg) {
    std::fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", file, line, cond, msg);
    std::abort();
}
}  // namespace strata::detail

#define CHECK(cond, msg)                                                          \
    do {                                                                          \
        if (!(cond)) ::strata::detail::check_failed(__FILE__, __LINE__, #cond, msg); \
    } while (0)
