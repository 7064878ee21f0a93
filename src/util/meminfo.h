#pragma once
// What the machine says about its memory, for budgets nobody gave.

#include <cstdint>
#include <optional>
#include <string>

namespace strata {

// MemAvailable from /proc/meminfo, in bytes; nullopt where it cannot be read.
std::optional<uint64_t> available_memory();

// MemTotal from /proc/meminfo, in bytes; nullopt where it cannot be read.
std::optional<uint64_t> total_memory();

// The CPU's model name from /proc/cpuinfo ("AMD EPYC 9R45"), or "cpu".
std::string cpu_model_name();

// The most memory this process has had resident (VmHWM from /proc/self/status),
// in bytes; nullopt where it cannot be read.
std::optional<uint64_t> peak_resident_memory();

}  // namespace strata
