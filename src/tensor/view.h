#pragma once
// `TensorView`: a non-owning view of a tensor's bytes with its type and shape
// (`ne`, innermost first, as GGUF stores it). Rows are `ne[0]` elements; a stacked
// expert tensor [n_in, n_out, n_expert] is n_out * n_expert rows, expert e's
// matrix being rows [e * n_out, (e + 1) * n_out).

#include "tensor/type.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace strata {

struct TensorView {
    std::string name;
    TensorType type = TensorType::F32;
    std::array<int64_t, 4> ne{1, 1, 1, 1};
    size_t row_bytes = 0;
    const uint8_t* data = nullptr;

    bool valid() const { return data != nullptr; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes; }
    // Row `r` as floats; `dst` holds ne[0] floats.
    void dequantize_row(int64_t r, float* dst) const { type_traits(type).dequantize(row(r), dst, ne[0]); }
    // The whole tensor of an F32 type as floats (norm weights, biases).
    const float* f32() const { return reinterpret_cast<const float*>(data); }
};

}  // namespace strata
