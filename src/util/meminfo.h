#pragma once
// What the machine says about its memory, for budgets nobody gave.

#include <cstdint>
#include <optional>

namespace strata {

// MemAvailable from /proc/meminfo, in bytes; nullopt where it cannot be read.
std::optional<uint64_t> available_memory();

// The most memory this process has had resident (VmHWM from /proc/self/status),
// in bytes; nullopt where it cannot be read.
std::optional<uint64_t> peak_resident_memory();

}  // namespace strata
