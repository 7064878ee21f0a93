#pragma once
// What the machine says about its memory, for budgets nobody gave.

#include <cstdint>
#include <optional>

namespace strata {

// MemAvailable from /proc/meminfo, in bytes; nullopt where it cannot be read.
std::optional<uint64_t> available_memory();

}  // namespace strata
