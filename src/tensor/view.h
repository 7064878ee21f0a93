#pragma once
// `TensorView`: a non-owning view of a tensor's bytes with its type and shape
// (`ne`, innermost first, as GGUF stores it). Rows are `ne[0]` elements, each
// `row_bytes` of blocks (interleaved with the next rows' in strata's row-
// interleaved layouts, so read them through `row`); a stacked
// expert tensor [n_in, n_out, n_expert] is n_out * n_expert rows, expert e's
// matrix being rows [e * n_out, (e + 1) * n_out).

#include "tensor/type.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace strata {

// The bytes of one expert of a stacked tensor, valid while `hold` lives (a cache
// entry may be evicted once nobody holds it).
struct ExpertBytes {
    const uint8_t* data = nullptr;
    std::shared_ptr<const void> hold;
};

// Where the experts of a stacked tensor come from when they are not all readable
// at `TensorView::data`: the disk tier's bounded cache (placement/expert_cache.h).
class ExpertSource {
public:
    virtual ~ExpertSource() = default;
    virtual ExpertBytes expert(int64_t e) const = 0;
    // A hint that expert `e` will be read soon (`guess`: probably), so a slow
    // source can start fetching it; sources whose bytes are at hand ignore it.
    virtual void prefetch(int64_t /*e*/, bool /*guess*/) const {}
};

struct TensorView {
    std::string name;
    TensorType type = TensorType::F32;
    std::array<int64_t, 4> ne{1, 1, 1, 1};
    size_t row_bytes = 0;
    const uint8_t* data = nullptr;
    // Set on stacked expert tensors some of whose experts are not at `data`; read
    // experts through `expert_rows`, never `data` directly.
    const ExpertSource* experts = nullptr;

    bool valid() const { return data != nullptr; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    // Where row r starts; in a row-interleaved layout (`TypeTraits::row_group`),
    // its first block, the next one being `row_group` blocks further on.
    const uint8_t* row(int64_t r) const {
        const TypeTraits& t = type_traits(type);
        const int64_t in_group = r & (t.row_group - 1);  // a power of two (type.h)
        return data + static_cast<size_t>(r - in_group) * row_bytes + static_cast<size_t>(in_group) * t.type_size;
    }
    // Row `r` as floats; `dst` holds ne[0] floats.
    void dequantize_row(int64_t r, float* dst) const { type_traits(type).dequantize(row(r), dst, ne[0]); }
    // The whole tensor of an F32 type as floats (norm weights, biases).
    const float* f32() const { return reinterpret_cast<const float*>(data); }
};

// Expert `e`'s matrix of a stacked [n_in, n_out, n_expert] tensor as an
// [n_in, n_out] view: the same bytes wherever they live, so the math is the same
// for every tier. `hold` keeps cache-backed bytes alive while the view is used.
struct ExpertRows {
    TensorView view;
    std::shared_ptr<const void> hold;
};

inline ExpertRows expert_rows(const TensorView& stacked, int64_t e) {
    ExpertRows r;
    r.view.name = stacked.name;
    r.view.type = stacked.type;
    r.view.ne = {stacked.ne[0], stacked.ne[1], 1, 1};
    r.view.row_bytes = stacked.row_bytes;
    if (stacked.experts) {
        ExpertBytes b = stacked.experts->expert(e);
        r.view.data = b.data;
        r.hold = std::move(b.hold);
    } else {
        r.view.data = stacked.row(e * stacked.ne[1]);
    }
    return r;
}

}  // namespace strata
