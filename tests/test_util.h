#pragma once
// Helpers shared by tests: temporary directories, file I/O, running the binary.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

// STRATA_TEST_ASAN: this build runs under AddressSanitizer, whose shadow memory
// and quarantine make resident-memory figures meaningless. GCC defines
// `__SANITIZE_ADDRESS__`; clang 14 answers only through `__has_feature`.
#if defined(__SANITIZE_ADDRESS__)
#define STRATA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STRATA_TEST_ASAN 1
#endif
#endif
// STRATA_TEST_TSAN: likewise for ThreadSanitizer, whose shadow memory is several
// times what the program maps.
#if defined(__SANITIZE_THREAD__)
#define STRATA_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRATA_TEST_TSAN 1
#endif
#endif

namespace strata::test {

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("strata-test-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::string data_path(const std::string& rel) { return std::string(STRATA_TEST_DATA) + "/" + rel; }

// The real tiny llama the server and CLI tests run.
inline std::string stories() { return data_path("real/stories260K.gguf"); }

struct CommandResult {
    int exit_code = -1;
    std::string out;  // stdout and stderr together
};

// Runs the built `strata` binary with `args` (already shell-quoted as needed).
// `out` gets stdout and stderr together, or stdout alone with `stdout_only`.
inline CommandResult run_strata(const std::string& args, bool stdout_only = false) {
    CommandResult r;
    const std::string cmd = std::string(STRATA_BINARY) + " " + args + (stdout_only ? " 2>/dev/null" : " 2>&1");
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace strata::test
