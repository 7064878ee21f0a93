#include "gguf/value.h"

#include "util/check.h"

#include <fmt/format.h>

#include <cstring>

namespace strata::gguf {

const char* value_type_name(ValueType t) {
    switch (t) {
        case ValueType::U8: return "u8";
        case ValueType::I8: return "i8";
        case ValueType::U16: return "u16";
        case ValueType::I16: return "i16";
        case ValueType::U32: return "u32";
        case ValueType::I32: return "i32";
        case ValueType::F32: return "f32";
        case ValueType::BOOL: return "bool";
        case ValueType::STRING: return "string";
        case ValueType::ARRAY: return "array";
        case ValueType::U64: return "u64";
        case ValueType::I64: return "i64";
        case ValueType::F64: return "f64";
    }
    return "?";
}

size_t value_type_size(ValueType t) {
    switch (t) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::BOOL: return 1;
        case ValueType::U16:
        case ValueType::I16: return 2;
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::F32: return 4;
        case ValueType::U64:
        case ValueType::I64:
        case ValueType::F64: return 8;
        case ValueType::STRING:
        case ValueType::ARRAY: return 0;
    }
    return 0;
}

bool is_integer(ValueType t) {
    switch (t) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::U16:
        case ValueType::I16:
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::U64:
        case ValueType::I64: return true;
        default: return false;
    }
}

namespace {

template <typename T>
T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);  // array data in the file need not be aligned
    return v;
}

}  // namespace

int64_t Array::get_int(uint64_t i) const {
    CHECK(i < count && data != nullptr, "array index out of range or not numeric");
    const uint8_t* p = data + i * value_type_size(elem_type);
    switch (elem_type) {
        case ValueType::U8:
        case ValueType::BOOL: return load<uint8_t>(p);
        case ValueType::I8: return load<int8_t>(p);
        case ValueType::U16: return load<uint16_t>(p);
        case ValueType::I16: return load<int16_t>(p);
        case ValueType::U32: return load<uint32_t>(p);
        case ValueType::I32: return load<int32_t>(p);
        case ValueType::U64: return static_cast<int64_t>(load<uint64_t>(p));
        case ValueType::I64: return load<int64_t>(p);
        case ValueType::F32: return static_cast<int64_t>(load<float>(p));
        case ValueType::F64: return static_cast<int64_t>(load<double>(p));
        default: CHECK(false, "get_int on a non-numeric array");
    }
    return 0;
}

double Array::get_float(uint64_t i) const {
    CHECK(i < count && data != nullptr, "array index out of range or not numeric");
    const uint8_t* p = data + i * value_type_size(elem_type);
    switch (elem_type) {
        case ValueType::F32: return load<float>(p);
        case ValueType::F64: return load<double>(p);
        default: return static_cast<double>(get_int(i));
    }
}

std::string Value::to_string(size_t max_items) const {
    switch (type) {
        case ValueType::U8:
        case ValueType::U16:
        case ValueType::U32:
        case ValueType::U64: return fmt::format("{}", u);
        case ValueType::I8:
        case ValueType::I16:
        case ValueType::I32:
        case ValueType::I64: return fmt::format("{}", i);
        case ValueType::F32:
        case ValueType::F64: return fmt::format("{}", f);
        case ValueType::BOOL: return u ? "true" : "false";
        case ValueType::STRING: return fmt::format("\"{}\"", str);
        case ValueType::ARRAY: break;
    }
    const Array& a = array();
    std::string out = "[";
    uint64_t n = std::min<uint64_t>(a.count, max_items);
    for (uint64_t k = 0; k < n; ++k) {
        if (k) out += ", ";
        if (a.elem_type == ValueType::STRING) {
            out += fmt::format("\"{}\"", a.strings[k]);
        } else if (a.elem_type == ValueType::ARRAY) {
            out += a.arrays[k].to_string(max_items);
        } else if (a.elem_type == ValueType::F32 || a.elem_type == ValueType::F64) {
            out += fmt::format("{}", a.get_float(k));
        } else {
            out += fmt::format("{}", a.get_int(k));
        }
    }
    if (a.count > n) out += fmt::format(", ... ({} items)", a.count);
    return out + "]";
}

}  // namespace strata::gguf
