#include "app/builtin_model.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

// The GGUF's bytes, placed in .rodata by the assembler. GCC 12 has no #embed;
// `.incbin` is its long-standing equivalent. The build passes the file's path,
// and its SHA-256 as a definition this file does not use: the definition is on
// the compile command line, which ccache hashes, so a retrained model can never
// be answered with a cached object that holds the old bytes.
asm(".section .rodata\n"
    ".balign 64\n"
    ".global strata_builtin_model_begin\n"
    "strata_builtin_model_begin:\n"
    ".incbin \"" STRATA_BUILTIN_MODEL_PATH
    "\"\n"
    ".global strata_builtin_model_end\n"
    "strata_builtin_model_end:\n"
    ".previous\n");

extern "C" const uint8_t strata_builtin_model_begin[];
extern "C" const uint8_t strata_builtin_model_end[];

namespace strata::app {

namespace {

Result<std::string> make_memfd() {
    const int fd = ::memfd_create("strata-tiny-moe.gguf", MFD_CLOEXEC);
    if (fd < 0) return err("built-in model: memfd_create failed: {}", std::strerror(errno));
    const uint8_t* p = strata_builtin_model_begin;
    while (p < strata_builtin_model_end) {
        const ssize_t n = ::write(fd, p, static_cast<size_t>(strata_builtin_model_end - p));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ::close(fd);
            return err("built-in model: writing its bytes failed: {}", std::strerror(errno));
        }
        p += n;
    }
    return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace

Result<std::string> builtin_model_path() {
    // Made once: every engine and registry entry of the process opens the same file.
    static const Result<std::string> path = make_memfd();
    return path;
}

}  // namespace strata::app
