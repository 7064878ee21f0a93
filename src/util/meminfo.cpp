#include "util/meminfo.h"

#include <cstdio>

namespace strata {

std::optional<uint64_t> available_memory() {
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return std::nullopt;
    char line[256];
    std::optional<uint64_t> bytes;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long kib = 0;
        if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) bytes = uint64_t{kib} * 1024;
    }
    std::fclose(f);
    return bytes;
}

}  // namespace strata
