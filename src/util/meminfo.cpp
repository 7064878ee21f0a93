#include "util/meminfo.h"

#include <cstdio>
#include <cstring>

namespace strata {

namespace {

// The value in kB of the first line of `path` that matches `format`, in bytes.
std::optional<uint64_t> read_kib(const char* path, const char* format) {
    std::FILE* f = std::fopen(path, "r");
    if (!f) return std::nullopt;
    char line[256];
    std::optional<uint64_t> bytes;
    while (!bytes && std::fgets(line, sizeof line, f)) {
        unsigned long long kib = 0;
        if (std::sscanf(line, format, &kib) == 1) bytes = uint64_t{kib} * 1024;
    }
    std::fclose(f);
    return bytes;
}

}  // namespace

std::optional<uint64_t> available_memory() {
    return read_kib("/proc/meminfo", "MemAvailable: %llu kB");
}

std::optional<uint64_t> total_memory() {
    return read_kib("/proc/meminfo", "MemTotal: %llu kB");
}

std::string cpu_model_name() {
    std::FILE* f = std::fopen("/proc/cpuinfo", "r");
    if (!f) return "cpu";
    char line[512];
    std::string name = "cpu";
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, "model name", 10) != 0) continue;
        const char* colon = std::strchr(line, ':');
        if (!colon) continue;
        name = colon + 1;
        while (!name.empty() && (name.front() == ' ' || name.front() == '\t'))
            name.erase(name.begin());
        while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
        break;
    }
    std::fclose(f);
    return name.empty() ? "cpu" : name;
}

std::optional<uint64_t> peak_resident_memory() {
    return read_kib("/proc/self/status", "VmHWM: %llu kB");
}

}  // namespace strata
