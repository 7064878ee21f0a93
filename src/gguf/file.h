#pragma once
// `gguf::File`: a memory-mapped, fully validated GGUF model (one file or a
// split set `name-00001-of-0000N.gguf`). Every count, length, offset and size is
// checked against the bytes actually present before it is used, so a truncated
// download or a hostile file becomes an error value naming the key or tensor,
// never a crash or an allocation sized by a lying field.

#include "gguf/value.h"
#include "tensor/type.h"
#include "util/file_map.h"
#include "util/result.h"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;

struct TensorInfo {
    std::string name;
    TensorType type = TensorType::F32;
    uint32_t n_dims = 0;
    std::array<uint64_t, kMaxDims> ne{1, 1, 1, 1};  // innermost first, as GGUF stores them
    uint64_t n_elements = 0;
    uint64_t n_bytes = 0;
    uint32_t file_index = 0;   // which part of a split set holds the data
    uint64_t offset = 0;       // from the start of that part's data section
    uint64_t file_offset = 0;  // from the start of that part's file, for `pread`
    const uint8_t* data = nullptr;  // into the mapping

    // "[2880, 201088]" — dims innermost first.
    std::string shape_string() const;
};

struct KeyValue {
    std::string key;
    Value value;
};

class File {
public:
    // Opens and validates `path`. When it is the first part of a split set, every
    // part is opened and checked, and the tensors of all parts appear together.
    static Result<File> open(const std::string& path);
    // Validates a GGUF held in memory (`data` must outlive the `File`; tensor data
    // points into it). `name` stands for the path in messages. A split set cannot
    // be read this way: its other parts are files.
    static Result<File> open_memory(const uint8_t* data, size_t size, std::string name = "<memory>");

    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    const std::string& path() const { return parts_.front().path(); }
    size_t n_parts() const { return parts_.size(); }
    const std::string& part_path(size_t i) const { return parts_[i].path(); }
    // The open descriptor of part `i`, for `pread` of tensor data (TensorInfo::file_offset).
    int part_fd(size_t i) const { return parts_[i].fd(); }
    uint64_t file_size() const;  // all parts together
    // The path of the first part changed in place since it was opened
    // (`MappedFile::changed`), or null when none was.
    const std::string* changed_part() const;

    // Metadata in file order (of the first part).
    const std::vector<KeyValue>& metadata() const { return kvs_; }
    const Value* find(std::string_view key) const;

    // Typed access; errors name the key and, for a type mismatch, both types.
    Result<std::string_view> get_string(std::string_view key) const;
    Result<int64_t> get_int(std::string_view key) const;  // any integer type
    Result<double> get_float(std::string_view key) const; // any numeric type
    Result<bool> get_bool(std::string_view key) const;
    Result<const Array*> get_array(std::string_view key) const;

    // Optional keys: nullopt when absent, an error when present with a wrong type.
    Result<std::optional<int64_t>> find_int(std::string_view key) const;
    Result<std::optional<double>> find_float(std::string_view key) const;

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;

    File(File&&) = default;
    File& operator=(File&&) = default;

private:
    File() = default;
    // The rest of `open` once the first part is mapped: its other parts, the indexes.
    static Result<File> open_parts(MappedFile first);

    uint32_t version_ = 0;
    uint32_t alignment_ = kDefaultAlignment;
    std::vector<MappedFile> parts_;
    std::vector<KeyValue> kvs_;
    std::map<std::string, size_t, std::less<>> kv_index_;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;

};

// For a split-set part name "x-00002-of-00005.gguf": the path of part `i` (0-based)
// of the same set, or nullopt when `path` does not follow the split naming.
std::optional<std::string> split_part_path(const std::string& path, uint32_t i);

}  // namespace strata::gguf
