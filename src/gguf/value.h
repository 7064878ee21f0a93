#pragma once
// GGUF metadata values. Scalars are decoded; strings and arrays are views into
// the mapped file (the `gguf::File` owns the mapping, so values live as long as it).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gguf {

enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

const char* value_type_name(ValueType t);
// Bytes of one element of a fixed-size type; 0 for STRING and ARRAY.
size_t value_type_size(ValueType t);
bool is_integer(ValueType t);

struct Value;

// An array value. Numeric elements stay in the file (`data`, little-endian,
// possibly unaligned: read them with `get_*`); string and nested-array elements
// are decoded into `strings` / `arrays` as views.
struct Array {
    ValueType elem_type = ValueType::U8;
    uint64_t count = 0;
    const uint8_t* data = nullptr;          // numeric and bool elements
    std::vector<std::string_view> strings;  // STRING elements
    std::vector<Value> arrays;              // ARRAY elements (nested)

    int64_t get_int(uint64_t i) const;     // any integer or bool element type
    double get_float(uint64_t i) const;    // any numeric element type
};

struct Value {
    ValueType type = ValueType::U8;
    uint64_t u = 0;   // unsigned integers and bool
    int64_t i = 0;    // signed integers
    double f = 0.0;   // F32 and F64
    std::string_view str;
    std::vector<Array> arr;  // exactly one element when `type == ARRAY`

    const Array& array() const { return arr.front(); }
    // A short, human-readable rendering (arrays elided past a few elements).
    std::string to_string(size_t max_items = 8) const;
};

}  // namespace strata::gguf
