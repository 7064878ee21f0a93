#pragma once
// The tensor type table: for every GGML type id a GGUF file may carry, its name,
// block size (elements per block), bytes per block, and — where strata implements
// them — a scalar dequantize and quantize. Everything that needs to know how big a
// tensor is, or how to turn its bytes into floats, goes through this table.

#include "util/result.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace strata {

// GGML type ids as stored in GGUF tensor infos. Gaps are ids the format retired.
enum class TensorType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    // strata's own in-memory layouts of a GGML type (tensor/repack.h). Never in a
    // file: `type_traits(uint32_t)`, which checks the ids files carry, and
    // `type_from_name` do not know them.
    Q2_K_64 = 53,
    Q3_K_64 = 54,
    Q4_0_R8 = 55,
    Q5_0_R8 = 56,
    Q8_0_R8 = 57,
    IQ4_NL_R8 = 58,
    IQ4_XS_64 = 59,
    Q5_K_64 = 60,
    Q6_K_64 = 61,
    Q4_K_64 = 62,
    MXFP4_X4 = 63,
};

// Type ids are below this: arrays indexed by type id have this many slots.
inline constexpr size_t kTypeIdCount = 64;

// Converts `n` elements (a multiple of the block size) of a block-encoded row to floats.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
// Encodes `n` floats (a multiple of the block size) into blocks.
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);

struct TypeTraits {
    TensorType type;
    const char* name;      // as GGML spells it: "Q4_K", "MXFP4", "F16"
    int64_t block_size;    // elements per block
    size_t type_size;      // bytes per block
    bool quantized;        // block-encoded with scales (not a plain float/int type)
    DequantizeFn dequantize;  // nullptr where strata has no dequantizer for the type
    QuantizeFn quantize;      // nullptr where strata cannot produce the type
    // Rows stored together, block by block (strata's row-interleaved layouts,
    // tensor/repack.h): block i of row r is at (r - r % g) * row_bytes +
    // (i * g + r % g) * type_size. 1 for every GGML type; always a power of
    // two, so `TensorView::row` finds a row's place in its group with a mask
    // (a division there showed as 2% of decode).
    int64_t row_group = 1;
};

// The traits of a type id, or nullptr when the id is not a GGML type strata knows.
const TypeTraits* type_traits(uint32_t type_id);
// The traits of any type, strata's own layouts included.
const TypeTraits& type_traits(TensorType t);

// "q4_k", "Q4_K", "mxfp4" ... -> the type; case-insensitive.
std::optional<TensorType> type_from_name(std::string_view name);
const char* type_name(TensorType t);

// Bytes of `n_elements` elements of type `t`; an error when `n_elements` is not a
// multiple of the block size or the byte count overflows 64 bits.
Result<uint64_t> type_bytes(TensorType t, uint64_t n_elements);

}  // namespace strata
