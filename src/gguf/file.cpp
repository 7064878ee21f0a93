// The GGUF reader. Layout (versions 2 and 3, little-endian):
//   header:  u32 magic "GGUF", u32 version, u64 n_tensors, u64 n_kv
//   n_kv ×   string key, u32 value type, value
//   n_tensors × string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset
//   padding to `general.alignment`, then the data section.
// A string is a u64 length and that many bytes; an array is a u32 element type,
// a u64 count and the elements. Every read goes through `Cursor`, which refuses
// to step past the end, and every count is compared with the bytes left before
// anything is allocated for it.

#include "gguf/file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <regex>

namespace strata::gguf {

namespace {

// Arrays may nest; a hostile file could nest them deep enough to exhaust the
// stack of a recursive reader, and no real model nests more than two levels.
constexpr int kMaxArrayDepth = 8;

class Cursor {
public:
    Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }
    const uint8_t* here() const { return data_ + pos_; }

    template <typename T>
    bool read(T& out) {
        if (left() < sizeof(T)) return false;
        std::memcpy(&out, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }
    bool skip(uint64_t n) {
        if (left() < n) return false;
        pos_ += n;
        return true;
    }

private:
    const uint8_t* data_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::F64); }

// The fewest bytes one element of type `t` can occupy, so `count * min` bounds
// what a count may honestly claim.
uint64_t min_element_size(ValueType t) {
    if (t == ValueType::STRING) return 8;
    if (t == ValueType::ARRAY) return 12;
    return value_type_size(t);
}

struct Parser {
    const std::string& path;
    Cursor cur;

    Error fail(const std::string& what) const { return Error{fmt::format("{}: {}", path, what)}; }

    Result<std::string_view> read_string(const std::string& what) {
        uint64_t len = 0;
        if (!cur.read(len)) return fail(fmt::format("file ends inside the length of {}", what));
        if (len > cur.left())
            return fail(fmt::format("{} has length {} but only {} bytes remain in the file", what,
                                    len, cur.left()));
        std::string_view s(reinterpret_cast<const char*>(cur.here()), len);
        cur.skip(len);
        return s;
    }

    Status read_value(ValueType type, Value& v, const std::string& key, int depth) {
        v.type = type;
        const size_t n = value_type_size(type);
        if (type == ValueType::STRING) {
            auto s = read_string(fmt::format("the string value of key '{}'", key));
            if (!s) return s.error();
            v.str = *s;
            return {};
        }
        if (type == ValueType::ARRAY) return read_array(v, key, depth);
        if (cur.left() < n) return fail(fmt::format("file ends inside the value of key '{}'", key));
        const uint8_t* p = cur.here();
        cur.skip(n);
        switch (type) {
            case ValueType::U8: v.u = p[0]; break;
            case ValueType::BOOL:
                if (p[0] > 1)
                    return fail(fmt::format("key '{}' has bool value {}, not 0 or 1", key, p[0]));
                v.u = p[0];
                break;
            case ValueType::I8: v.i = static_cast<int8_t>(p[0]); break;
            case ValueType::U16: { uint16_t x; std::memcpy(&x, p, 2); v.u = x; break; }
            case ValueType::I16: { int16_t x; std::memcpy(&x, p, 2); v.i = x; break; }
            case ValueType::U32: { uint32_t x; std::memcpy(&x, p, 4); v.u = x; break; }
            case ValueType::I32: { int32_t x; std::memcpy(&x, p, 4); v.i = x; break; }
            case ValueType::U64: { uint64_t x; std::memcpy(&x, p, 8); v.u = x; break; }
            case ValueType::I64: { int64_t x; std::memcpy(&x, p, 8); v.i = x; break; }
            case ValueType::F32: { float x; std::memcpy(&x, p, 4); v.f = x; break; }
            case ValueType::F64: { double x; std::memcpy(&x, p, 8); v.f = x; break; }
            default: break;
        }
        return {};
    }

    Status read_array(Value& v, const std::string& key, int depth) {
        if (depth >= kMaxArrayDepth)
            return fail(fmt::format("key '{}' nests arrays more than {} deep", key, kMaxArrayDepth));
        uint32_t et = 0;
        uint64_t count = 0;
        if (!cur.read(et)) return fail(fmt::format("file ends inside the array header of key '{}'", key));
        if (!valid_value_type(et))
            return fail(fmt::format("key '{}' is an array of unknown value type {}", key, et));
        if (!cur.read(count))
            return fail(fmt::format("file ends inside the array header of key '{}'", key));
        Array a;
        a.elem_type = static_cast<ValueType>(et);
        a.count = count;
        const uint64_t min = min_element_size(a.elem_type);
        if (count > cur.left() / min)
            return fail(fmt::format("key '{}' claims {} array elements of type {} but only {} bytes "
                                    "remain in the file",
                                    key, count, value_type_name(a.elem_type), cur.left()));
        if (a.elem_type == ValueType::STRING) {
            a.strings.reserve(count);  // bounded: each element takes at least 8 bytes of file
            for (uint64_t k = 0; k < count; ++k) {
                auto s = read_string(fmt::format("element {} of key '{}'", k, key));
                if (!s) return s.error();
                a.strings.push_back(*s);
            }
        } else if (a.elem_type == ValueType::ARRAY) {
            a.arrays.reserve(count);
            for (uint64_t k = 0; k < count; ++k) {
                Value item;
                STRATA_TRY(read_array(item, fmt::format("{}[{}]", key, k), depth + 1));
                a.arrays.push_back(std::move(item));
            }
        } else {
            a.data = cur.here();
            cur.skip(count * min);
            if (a.elem_type == ValueType::BOOL) {
                for (uint64_t k = 0; k < count; ++k)
                    if (a.data[k] > 1)
                        return fail(fmt::format("element {} of bool array '{}' is {}, not 0 or 1",
                                                k, key, a.data[k]));
            }
        }
        v.type = ValueType::ARRAY;
        v.arr.push_back(std::move(a));
        return {};
    }
};

struct ParsedPart {
    uint32_t version = 0;
    uint32_t alignment = kDefaultAlignment;
    std::vector<KeyValue> kvs;
    std::vector<TensorInfo> tensors;
};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

Result<ParsedPart> parse_part(const MappedFile& m, uint32_t file_index) {
    const std::string& path = m.path();
    Parser p{path, Cursor(m.data(), m.size())};
    ParsedPart out;

    uint32_t magic = 0;
    if (!p.cur.read(magic))
        return p.fail(fmt::format("file is too small to be GGUF ({} bytes)", m.size()));
    if (magic != kMagic) {
        return p.fail(fmt::format("not a GGUF file (starts with bytes {:02x} {:02x} {:02x} {:02x}, "
                                  "expected 'GGUF')",
                                  m.data()[0], m.data()[1], m.data()[2], m.data()[3]));
    }
    if (!p.cur.read(out.version)) return p.fail("file ends inside the header (version)");
    if (out.version != 2 && out.version != 3) {
        if ((out.version & 0xffff) == 0 && (out.version >> 16) != 0)
            return p.fail("big-endian GGUF files are not supported");
        return p.fail(fmt::format("GGUF version {} is not supported (only versions 2 and 3)",
                                  out.version));
    }
    uint64_t n_tensors = 0, n_kv = 0;
    if (!p.cur.read(n_tensors)) return p.fail("file ends inside the header (tensor count)");
    if (!p.cur.read(n_kv)) return p.fail("file ends inside the header (metadata count)");

    // A key-value pair takes at least 13 bytes (key length, type, one-byte value).
    if (n_kv > p.cur.left() / 13)
        return p.fail(fmt::format("header claims {} metadata keys but only {} bytes follow", n_kv,
                                  p.cur.left()));
    out.kvs.reserve(n_kv);
    std::map<std::string_view, size_t> seen;
    for (uint64_t k = 0; k < n_kv; ++k) {
        auto key = p.read_string(fmt::format("metadata key #{}", k));
        if (!key) return key.error();
        if (key->empty()) return p.fail(fmt::format("metadata key #{} is empty", k));
        std::string key_s(*key);
        if (!seen.emplace(*key, k).second)
            return p.fail(fmt::format("duplicate metadata key '{}'", key_s));
        uint32_t t = 0;
        if (!p.cur.read(t)) return p.fail(fmt::format("file ends inside the type of key '{}'", key_s));
        if (!valid_value_type(t))
            return p.fail(fmt::format("key '{}' has unknown value type {}", key_s, t));
        KeyValue kv{key_s, {}};
        STRATA_TRY(p.read_value(static_cast<ValueType>(t), kv.value, key_s, 0));
        out.kvs.push_back(std::move(kv));
    }

    for (const KeyValue& kv : out.kvs) {
        if (kv.key != "general.alignment") continue;
        if (kv.value.type != ValueType::U32)
            return p.fail(fmt::format("key 'general.alignment' has type {}, expected u32",
                                      value_type_name(kv.value.type)));
        const uint64_t a = kv.value.u;
        if (a == 0 || (a & (a - 1)) != 0)
            return p.fail(fmt::format("key 'general.alignment' is {}, not a power of two", a));
        out.alignment = static_cast<uint32_t>(a);
    }

    // A tensor info takes at least 32 bytes (name length, one dimension, type, offset).
    if (n_tensors > p.cur.left() / 32)
        return p.fail(fmt::format("header claims {} tensors but only {} bytes remain for their "
                                  "descriptions",
                                  n_tensors, p.cur.left()));
    out.tensors.reserve(n_tensors);
    for (uint64_t k = 0; k < n_tensors; ++k) {
        auto name = p.read_string(fmt::format("the name of tensor #{}", k));
        if (!name) return name.error();
        TensorInfo ti;
        ti.name = std::string(*name);
        ti.file_index = file_index;
        if (ti.name.empty()) return p.fail(fmt::format("tensor #{} has an empty name", k));
        const std::string& tn = ti.name;
        if (!p.cur.read(ti.n_dims))
            return p.fail(fmt::format("file ends inside the description of tensor '{}'", tn));
        if (ti.n_dims == 0 || ti.n_dims > kMaxDims)
            return p.fail(fmt::format("tensor '{}' has {} dimensions; GGUF allows 1 to {}", tn,
                                      ti.n_dims, kMaxDims));
        uint64_t n_el = 1;
        for (uint32_t d = 0; d < ti.n_dims; ++d) {
            if (!p.cur.read(ti.ne[d]))
                return p.fail(fmt::format("file ends inside the shape of tensor '{}'", tn));
            if (ti.ne[d] == 0)
                return p.fail(fmt::format("tensor '{}' has a zero dimension (ne[{}] = 0)", tn, d));
            if (ti.ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / n_el)
                return p.fail(fmt::format("tensor '{}' shape {} has more elements than fit in 63 bits",
                                          tn, ti.shape_string()));
            n_el *= ti.ne[d];
        }
        ti.n_elements = n_el;
        uint32_t type_id = 0;
        if (!p.cur.read(type_id))
            return p.fail(fmt::format("file ends inside the description of tensor '{}'", tn));
        const TypeTraits* tt = type_traits(type_id);
        if (!tt) return p.fail(fmt::format("tensor '{}' has unknown type id {}", tn, type_id));
        ti.type = tt->type;
        if (ti.ne[0] % static_cast<uint64_t>(tt->block_size) != 0)
            return p.fail(fmt::format("tensor '{}' has rows of {} elements, not a multiple of the {} "
                                      "block size {}",
                                      tn, ti.ne[0], tt->name, tt->block_size));
        auto bytes = type_bytes(ti.type, n_el);
        if (!bytes) return p.fail(fmt::format("tensor '{}': {}", tn, bytes.error().message));
        ti.n_bytes = *bytes;
        if (!p.cur.read(ti.offset))
            return p.fail(fmt::format("file ends inside the description of tensor '{}'", tn));
        if (ti.offset % out.alignment != 0)
            return p.fail(fmt::format("tensor '{}' data offset {} is not a multiple of the alignment {}",
                                      tn, ti.offset, out.alignment));
        out.tensors.push_back(std::move(ti));
    }

    const uint64_t data_start = align_up(p.cur.pos(), out.alignment);
    const uint64_t data_size = data_start <= m.size() ? m.size() - data_start : 0;
    for (TensorInfo& ti : out.tensors) {
        if (ti.offset > data_size || ti.n_bytes > data_size - ti.offset) {
            return p.fail(fmt::format("tensor '{}' data is not within the file bounds (it needs bytes "
                                      "{}..{} of a data section of {} bytes; is the file truncated?)",
                                      ti.name, ti.offset, ti.offset + ti.n_bytes, data_size));
        }
        ti.file_offset = data_start + ti.offset;
        ti.data = m.data() + ti.file_offset;
    }

    // Tensors must not share bytes: a writer that overlapped them has produced a
    // file in which writing one tensor corrupts another.
    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(out.tensors.size());
    for (const TensorInfo& ti : out.tensors) by_offset.push_back(&ti);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_offset.size(); ++k) {
        const TensorInfo& a = *by_offset[k - 1];
        const TensorInfo& b = *by_offset[k];
        if (a.offset + a.n_bytes > b.offset)
            return p.fail(fmt::format("tensors '{}' and '{}' overlap in the data section", a.name,
                                      b.name));
    }
    return out;
}

const KeyValue* find_kv(const std::vector<KeyValue>& kvs, std::string_view key) {
    for (const KeyValue& kv : kvs)
        if (kv.key == key) return &kv;
    return nullptr;
}

// Reads an optional integer split key (`split.count` and friends) of one part.
Result<std::optional<int64_t>> split_key(const std::vector<KeyValue>& kvs, std::string_view key,
                                         const std::string& path) {
    const KeyValue* kv = find_kv(kvs, key);
    if (!kv) return std::optional<int64_t>{};
    if (!is_integer(kv->value.type))
        return err("{}: key '{}' has type {}, expected an integer", path, key,
                   value_type_name(kv->value.type));
    const bool is_signed = kv->value.type == ValueType::I8 || kv->value.type == ValueType::I16 ||
                           kv->value.type == ValueType::I32 || kv->value.type == ValueType::I64;
    return std::optional<int64_t>(is_signed ? kv->value.i : static_cast<int64_t>(kv->value.u));
}

}  // namespace

std::optional<std::string> split_part_path(const std::string& path, uint32_t i) {
    static const std::regex pattern(R"(^(.*)-(\d{5})-of-(\d{5})\.gguf$)");
    std::smatch mt;
    if (!std::regex_match(path, mt, pattern)) return std::nullopt;
    return fmt::format("{}-{:05d}-of-{}.gguf", mt[1].str(), i + 1, mt[3].str());
}

Result<File> File::open(const std::string& path) {
    auto first = MappedFile::open(path);
    if (!first) return first.error();
    return open_parts(std::move(*first));
}

Result<File> File::open_memory(const uint8_t* data, size_t size, std::string name) {
    if (size == 0) return err("'{}' is empty (0 bytes)", name);
    return open_parts(MappedFile::borrow(std::move(name), data, size));
}

Result<File> File::open_parts(MappedFile first) {
    const std::string path = first.path();
    auto part0 = parse_part(first, 0);
    if (!part0) return part0.error();

    File f;
    f.version_ = part0->version;
    f.alignment_ = part0->alignment;
    f.kvs_ = std::move(part0->kvs);
    f.tensors_ = std::move(part0->tensors);
    f.parts_.push_back(std::move(first));

    auto count = split_key(f.kvs_, "split.count", path);
    if (!count) return count.error();
    auto no = split_key(f.kvs_, "split.no", path);
    if (!no) return no.error();
    const int64_t n_split = count->value_or(1);
    if (n_split < 1 || n_split > 9999)
        return err("{}: key 'split.count' is {}, expected 1 to 9999", path, n_split);
    if (no->value_or(0) != 0) {
        auto first_path = split_part_path(path, 0);
        return err("{}: this is part {} of a {}-part split model; open the first part{}", path,
                   no->value_or(0) + 1, n_split,
                   first_path ? fmt::format(" '{}'", *first_path) : std::string());
    }
    for (int64_t i = 1; i < n_split; ++i) {
        auto pp = split_part_path(path, static_cast<uint32_t>(i));
        if (!pp)
            return err("{}: the model is split into {} parts, but its name does not follow the "
                       "NAME-00001-of-{:05d}.gguf pattern, so the other parts cannot be found",
                       path, n_split, n_split);
        auto m = MappedFile::open(*pp);
        if (!m)
            return err("{}: part {} of {} of this split model is missing or unreadable: {}", path,
                       i + 1, n_split, m.error().message);
        auto part = parse_part(*m, static_cast<uint32_t>(i));
        if (!part) return part.error();
        auto part_no = split_key(part->kvs, "split.no", *pp);
        if (!part_no) return part_no.error();
        if (part_no->value_or(-1) != i)
            return err("{}: expected split part number {} (key 'split.no'), found {}", *pp, i,
                       part_no->has_value() ? fmt::format("{}", **part_no) : "no such key");
        for (TensorInfo& ti : part->tensors) f.tensors_.push_back(std::move(ti));
        f.parts_.push_back(std::move(m.value()));
    }
    if (n_split > 1) {
        auto total = split_key(f.kvs_, "split.tensors.count", path);
        if (!total) return total.error();
        if (total->has_value() && **total != static_cast<int64_t>(f.tensors_.size()))
            return err("{}: key 'split.tensors.count' says {} tensors but the {} parts hold {}", path,
                       **total, n_split, f.tensors_.size());
    }

    for (size_t k = 0; k < f.kvs_.size(); ++k) f.kv_index_.emplace(f.kvs_[k].key, k);
    for (size_t k = 0; k < f.tensors_.size(); ++k) {
        if (!f.tensor_index_.emplace(f.tensors_[k].name, k).second)
            return err("{}: duplicate tensor name '{}'", f.part_path(f.tensors_[k].file_index),
                       f.tensors_[k].name);
    }
    return f;
}

const std::string* File::changed_part() const {
    for (const MappedFile& p : parts_)
        if (p.changed()) return &p.path();
    return nullptr;
}

uint64_t File::file_size() const {
    uint64_t n = 0;
    for (const MappedFile& m : parts_) n += m.size();
    return n;
}

const Value* File::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Error missing(const File& f, std::string_view key) {
    return err("{}: required key '{}' is missing", f.path(), key);
}

Error wrong_type(const File& f, std::string_view key, const Value& v, const char* expected) {
    return err("{}: key '{}' has type {}, expected {}", f.path(), key, value_type_name(v.type),
               expected);
}

int64_t int_of(const Value& v) {
    switch (v.type) {
        case ValueType::I8:
        case ValueType::I16:
        case ValueType::I32:
        case ValueType::I64: return v.i;
        default: return static_cast<int64_t>(v.u);
    }
}

}  // namespace

Result<std::string_view> File::get_string(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(*this, key);
    if (v->type != ValueType::STRING) return wrong_type(*this, key, *v, "string");
    return v->str;
}

Result<int64_t> File::get_int(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(*this, key);
    if (!is_integer(v->type)) return wrong_type(*this, key, *v, "an integer");
    return int_of(*v);
}

Result<double> File::get_float(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(*this, key);
    if (v->type == ValueType::F32 || v->type == ValueType::F64) return v->f;
    if (is_integer(v->type)) return static_cast<double>(int_of(*v));
    return wrong_type(*this, key, *v, "a number");
}

Result<bool> File::get_bool(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(*this, key);
    if (v->type != ValueType::BOOL) return wrong_type(*this, key, *v, "bool");
    return v->u != 0;
}

Result<const Array*> File::get_array(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(*this, key);
    if (v->type != ValueType::ARRAY) return wrong_type(*this, key, *v, "array");
    return &v->array();
}

Result<std::optional<int64_t>> File::find_int(std::string_view key) const {
    if (!find(key)) return std::optional<int64_t>{};
    auto r = get_int(key);
    if (!r) return r.error();
    return std::optional<int64_t>(*r);
}

Result<std::optional<double>> File::find_float(std::string_view key) const {
    if (!find(key)) return std::optional<double>{};
    auto r = get_float(key);
    if (!r) return r.error();
    return std::optional<double>(*r);
}

std::string TensorInfo::shape_string() const {
    std::string s = "[";
    for (uint32_t d = 0; d < n_dims; ++d) s += fmt::format("{}{}", d ? ", " : "", ne[d]);
    return s + "]";
}

}  // namespace strata::gguf
