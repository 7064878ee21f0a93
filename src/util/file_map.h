#pragma once
// Read-only memory mapping of a whole file. Weights are used in place from the
// mapping where their type allows, so the mapping lives as long as the model.
// Mappings are guarded against the file shrinking under them (util/map_guard.h):
// reads past the new end see zeros instead of killing the process, and
// `changed()` tells the owner to discard what it computed.

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
    // Whether the file was changed in place since it was mapped: a read past its
    // new end was absorbed (zeros were read), or the open file's size or mtime
    // differs. Cheap (an atomic load and an fstat): meant to be asked after each
    // use of the data. A file replaced by rename is not "changed": this mapping
    // still holds the old one, intact. Always false for `borrow`.
    bool changed() const;

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    int fd_ = -1;
    bool mapped_ = false;  // whether `data_` is this object's mapping to unmap
    int guard_ = -1;       // map_guard slot; -1: unguarded
    int64_t mtime_ns_ = 0;  // of the file when mapped
};

}  // namespace strata
