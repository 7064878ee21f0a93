#include "gguf/writer.h"

#include "gguf/file.h"
#include "util/check.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

namespace strata::gguf {

MetaValue MetaValue::strings(const std::vector<std::string>& v) {
    MetaValue m;
    m.type = ValueType::ARRAY;
    m.elem_type = ValueType::STRING;
    m.items.reserve(v.size());
    for (const auto& s : v) m.items.push_back(string(s));
    return m;
}

MetaValue MetaValue::f32s(const std::vector<float>& v) {
    MetaValue m;
    m.type = ValueType::ARRAY;
    m.elem_type = ValueType::F32;
    m.items.reserve(v.size());
    for (float x : v) m.items.push_back(f32(x));
    return m;
}

MetaValue MetaValue::i32s(const std::vector<int32_t>& v) {
    MetaValue m;
    m.type = ValueType::ARRAY;
    m.elem_type = ValueType::I32;
    m.items.reserve(v.size());
    for (int32_t x : v) m.items.push_back(i32(x));
    return m;
}

MetaValue MetaValue::bools(const std::vector<bool>& v) {
    MetaValue m;
    m.type = ValueType::ARRAY;
    m.elem_type = ValueType::BOOL;
    m.items.reserve(v.size());
    for (bool x : v) m.items.push_back(boolean(x));
    return m;
}

void encode_value(ByteWriter& w, const MetaValue& v) {
    switch (v.type) {
        case ValueType::U8:
        case ValueType::BOOL: w.u8(static_cast<uint8_t>(v.u)); break;
        case ValueType::I8: w.u8(static_cast<uint8_t>(static_cast<int8_t>(v.i))); break;
        case ValueType::U16: { uint16_t x = static_cast<uint16_t>(v.u); w.raw(&x, 2); break; }
        case ValueType::I16: { int16_t x = static_cast<int16_t>(v.i); w.raw(&x, 2); break; }
        case ValueType::U32: w.u32(static_cast<uint32_t>(v.u)); break;
        case ValueType::I32: w.i32(static_cast<int32_t>(v.i)); break;
        case ValueType::U64: w.u64(v.u); break;
        case ValueType::I64: { int64_t x = v.i; w.raw(&x, 8); break; }
        case ValueType::F32: w.f32(static_cast<float>(v.f)); break;
        case ValueType::F64: { double x = v.f; w.raw(&x, 8); break; }
        case ValueType::STRING: w.str(v.str); break;
        case ValueType::ARRAY:
            w.u32(static_cast<uint32_t>(v.elem_type));
            w.u64(v.items.size());
            for (const MetaValue& item : v.items) {
                CHECK(item.type == v.elem_type, "array element type differs from the array's");
                encode_value(w, item);
            }
            break;
    }
}

uint64_t TensorSpec::n_rows() const {
    uint64_t n = 1;
    for (size_t d = 1; d < ne.size(); ++d) n *= ne[d];
    return n;
}

uint64_t TensorSpec::row_bytes() const {
    auto r = type_bytes(type, ne.empty() ? 0 : ne[0]);
    CHECK(r.ok(), "tensor row is not a whole number of blocks");
    return *r;
}

void Writer::set(const std::string& key, MetaValue v) {
    for (auto& kv : kvs_) {
        if (kv.first == key) {
            kv.second = std::move(v);
            return;
        }
    }
    kvs_.emplace_back(key, std::move(v));
}

namespace {
uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
}  // namespace

std::vector<uint8_t> Writer::header_bytes() const {
    ByteWriter w;
    w.u32(kMagic);
    w.u32(3);
    w.u64(tensors_.size());
    const bool has_alignment = std::any_of(kvs_.begin(), kvs_.end(),
                                           [](const auto& kv) { return kv.first == "general.alignment"; });
    w.u64(kvs_.size() + (alignment_ != kDefaultAlignment && !has_alignment ? 1 : 0));
    for (const auto& [key, value] : kvs_) {
        w.str(key);
        w.u32(static_cast<uint32_t>(value.type));
        encode_value(w, value);
    }
    if (alignment_ != kDefaultAlignment && !has_alignment) {
        w.str("general.alignment");
        w.u32(static_cast<uint32_t>(ValueType::U32));
        w.u32(alignment_);
    }
    // Tensors are laid out in order, each padded to the alignment, as the
    // reference reader requires.
    uint64_t offset = 0;
    for (const TensorSpec& t : tensors_) {
        w.str(t.name);
        w.u32(static_cast<uint32_t>(t.ne.size()));
        for (uint64_t n : t.ne) w.u64(n);
        w.u32(static_cast<uint32_t>(t.type));
        w.u64(offset);
        offset += align_up(t.n_bytes(), alignment_);
    }
    w.pad_to(alignment_);
    return std::move(w.bytes());
}

uint64_t Writer::file_size() const {
    uint64_t n = header_bytes().size();
    for (const TensorSpec& t : tensors_) n += align_up(t.n_bytes(), alignment_);
    return n;
}

namespace {

Status write_all(int fd, const uint8_t* p, size_t n, uint64_t offset, const std::string& path) {
    while (n > 0) {
        ssize_t k = ::pwrite(fd, p, n, static_cast<off_t>(offset));
        if (k < 0) {
            if (errno == EINTR) continue;
            return err("cannot write '{}': {}", path, std::strerror(errno));
        }
        p += k;
        n -= static_cast<size_t>(k);
        offset += static_cast<uint64_t>(k);
    }
    return {};
}

// One unit of fill work: rows [row_begin, row_end) of one tensor.
struct Chunk {
    size_t tensor;
    uint64_t row_begin, row_end;
    uint64_t file_offset;
};

}  // namespace

Status Writer::write(const std::string& path, const FillFn& fill, int n_threads) const {
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return err("cannot create '{}': {}", tmp, std::strerror(errno));

    const std::vector<uint8_t> header = header_bytes();
    Status st = write_all(fd, header.data(), header.size(), 0, tmp);

    // Chunks of about 8 MiB keep every thread busy on large expert tensors while
    // bounding each thread's buffer.
    constexpr uint64_t kChunkBytes = 8ull << 20;
    std::vector<Chunk> chunks;
    uint64_t offset = header.size();
    for (size_t k = 0; k < tensors_.size() && st.ok(); ++k) {
        const TensorSpec& t = tensors_[k];
        const uint64_t rb = t.row_bytes(), rows = t.n_rows();
        if (!t.data.empty()) {
            CHECK(t.data.size() == t.n_bytes(), "tensor data size does not match its shape");
            st = write_all(fd, t.data.data(), t.data.size(), offset, tmp);
        } else {
            CHECK(fill != nullptr, "a tensor without data needs a fill function");
            const uint64_t rows_per_chunk = std::max<uint64_t>(1, kChunkBytes / rb);
            for (uint64_t r = 0; r < rows; r += rows_per_chunk)
                chunks.push_back({k, r, std::min(rows, r + rows_per_chunk), offset + r * rb});
        }
        offset += align_up(t.n_bytes(), alignment_);
    }
    // The padding after the last tensor: extend the file to its full size.
    if (st.ok() && ::ftruncate(fd, static_cast<off_t>(offset)) != 0)
        st = err("cannot extend '{}' to {} bytes: {}", tmp, offset, std::strerror(errno));

    std::atomic<size_t> next{0};
    std::mutex mu;
    auto worker = [&] {
        std::vector<uint8_t> buf;
        for (size_t c; (c = next.fetch_add(1)) < chunks.size();) {
            const Chunk& ch = chunks[c];
            const TensorSpec& t = tensors_[ch.tensor];
            buf.resize((ch.row_end - ch.row_begin) * t.row_bytes());
            fill(t, ch.tensor, ch.row_begin, ch.row_end, buf.data());
            Status s = write_all(fd, buf.data(), buf.size(), ch.file_offset, tmp);
            if (!s.ok()) {
                std::lock_guard<std::mutex> lock(mu);
                if (st.ok()) st = s;
                next = chunks.size();
            }
        }
    };
    if (st.ok() && !chunks.empty()) {
        std::vector<std::thread> pool;
        for (int k = 1; k < std::max(1, n_threads); ++k) pool.emplace_back(worker);
        worker();
        for (auto& th : pool) th.join();
    }

    if (::close(fd) != 0 && st.ok()) st = err("cannot close '{}': {}", tmp, std::strerror(errno));
    if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0)
        st = err("cannot rename '{}' to '{}': {}", tmp, path, std::strerror(errno));
    if (!st.ok()) ::unlink(tmp.c_str());
    return st;
}

}  // namespace strata::gguf
