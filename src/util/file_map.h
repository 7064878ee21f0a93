#pragma once
// Read-only memory mapping of a whole file. Weights are used in place from the
// mapping where their type allows, so the mapping lives as long as the model.

#include "util/result.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace strata {

class MappedFile {
public:
    // Maps `path` read-only. Errors name the path: missing file, a directory,
    // an empty file, or a failed mmap.
    static Result<MappedFile> open(const std::string& path);
    // Bytes in memory that the caller owns and keeps alive, read through the same
    // interface (no mapping, no descriptor): a GGUF parsed from a buffer, as the
    // fuzzer does, so AddressSanitizer sees a read one byte past its end.
    static MappedFile borrow(std::string name, const uint8_t* data, size_t size);

    MappedFile() = default;
    MappedFile(MappedFile&& o) noexcept;
    MappedFile& operator=(MappedFile&& o) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile();

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }
    int fd() const { return fd_; }

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    int fd_ = -1;
    bool mapped_ = false;  // whether `data_` is this object's mapping to unmap
};

}  // namespace strata
