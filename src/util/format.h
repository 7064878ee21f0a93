#pragma once
// Human-readable sizes and counts for logs and `strata probe`.

#include <cstdint>
#include <string>

namespace strata {

// 1536 -> "1.50 KiB"; binary units, as memory budgets are given.
std::string format_bytes(uint64_t bytes);

// 20914757184 -> "20.91 B"; decimal units, as parameter counts are quoted.
std::string format_count(uint64_t n);

}  // namespace strata
