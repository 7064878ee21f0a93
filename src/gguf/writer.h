#pragma once
// GGUF writer (version 3). `strata synth` streams multi-gigabyte files through it,
// so tensor data is produced by a fill callback, row range by row range, on
// several threads and written with `pwrite`; nothing holds a whole tensor.
// Tests use `ByteWriter` directly to hand-craft malformed files.

#include "gguf/value.h"
#include "tensor/type.h"
#include "util/result.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace strata::gguf {

// Appends little-endian GGUF primitives to a byte buffer.
class ByteWriter {
public:
    void u8(uint8_t v) { bytes_.push_back(v); }
    void u32(uint32_t v) { raw(&v, 4); }
    void u64(uint64_t v) { raw(&v, 8); }
    void i32(int32_t v) { raw(&v, 4); }
    void f32(float v) { raw(&v, 4); }
    void str(std::string_view s) {
        u64(s.size());
        raw(s.data(), s.size());
    }
    void raw(const void* p, size_t n) {
        auto b = static_cast<const uint8_t*>(p);
        bytes_.insert(bytes_.end(), b, b + n);
    }
    void pad_to(size_t alignment) {
        while (bytes_.size() % alignment) bytes_.push_back(0);
    }
    std::vector<uint8_t>& bytes() { return bytes_; }
    size_t size() const { return bytes_.size(); }

private:
    std::vector<uint8_t> bytes_;
};

// An owned metadata value to write.
struct MetaValue {
    ValueType type = ValueType::U32;
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0.0;
    std::string str;
    ValueType elem_type = ValueType::U32;  // for arrays
    std::vector<MetaValue> items;           // for arrays

    static MetaValue u32(uint32_t v) { return scalar(ValueType::U32, [&](MetaValue& m) { m.u = v; }); }
    static MetaValue i32(int32_t v) { return scalar(ValueType::I32, [&](MetaValue& m) { m.i = v; }); }
    static MetaValue u64(uint64_t v) { return scalar(ValueType::U64, [&](MetaValue& m) { m.u = v; }); }
    static MetaValue u16(uint16_t v) { return scalar(ValueType::U16, [&](MetaValue& m) { m.u = v; }); }
    static MetaValue f32(float v) { return scalar(ValueType::F32, [&](MetaValue& m) { m.f = v; }); }
    static MetaValue boolean(bool v) { return scalar(ValueType::BOOL, [&](MetaValue& m) { m.u = v ? 1 : 0; }); }
    static MetaValue string(std::string v) {
        return scalar(ValueType::STRING, [&](MetaValue& m) { m.str = std::move(v); });
    }
    static MetaValue strings(const std::vector<std::string>& v);
    static MetaValue f32s(const std::vector<float>& v);
    static MetaValue i32s(const std::vector<int32_t>& v);
    static MetaValue bools(const std::vector<bool>& v);

private:
    template <typename Set>
    static MetaValue scalar(ValueType type, Set set) {
        MetaValue m;
        m.type = type;
        set(m);
        return m;
    }
};

// Appends one value (without its type tag) in GGUF encoding.
void encode_value(ByteWriter& w, const MetaValue& v);

struct TensorSpec {
    std::string name;
    TensorType type = TensorType::F32;
    std::vector<uint64_t> ne;  // innermost first
    std::vector<uint8_t> data;  // when non-empty, written as is; otherwise `fill` produces it

    uint64_t n_rows() const;   // product of ne[1..]
    uint64_t row_bytes() const;
    uint64_t n_bytes() const { return n_rows() * row_bytes(); }
};

// Produces rows [row_begin, row_end) of tensor `t` into `dst` (row_bytes() each).
// Called concurrently from several threads for different ranges.
using FillFn = std::function<void(const TensorSpec& t, size_t tensor_index, uint64_t row_begin,
                                  uint64_t row_end, uint8_t* dst)>;

class Writer {
public:
    // Sets (or replaces) a key, keeping the order of first insertion.
    void set(const std::string& key, MetaValue v);
    void add_tensor(TensorSpec t) { tensors_.push_back(std::move(t)); }
    void set_alignment(uint32_t a) { alignment_ = a; }

    const std::vector<TensorSpec>& tensors() const { return tensors_; }
    // Bytes of the whole file once written.
    uint64_t file_size() const;

    // Writes to `path` (through `path.tmp`, renamed when complete, so a failed
    // run leaves no half-written model behind).
    Status write(const std::string& path, const FillFn& fill = nullptr, int n_threads = 1) const;

    // The header, metadata and tensor infos, padded to the alignment.
    std::vector<uint8_t> header_bytes() const;

private:
    std::vector<std::pair<std::string, MetaValue>> kvs_;
    std::vector<TensorSpec> tensors_;
    uint32_t alignment_ = 32;
};

}  // namespace strata::gguf
