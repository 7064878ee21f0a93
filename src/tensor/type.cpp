#include "tensor/type.h"

#include "tensor/quants.h"
#include "tensor/repack.h"

#include <array>
#include <cctype>
#include <limits>

namespace strata {
namespace {

// Sizes follow the reference format's block structs; blocks.h pins the ones strata
// decodes with static_asserts, and the IQ/TQ sizes here are needed only to size and
// bounds-check tensors strata cannot yet compute with.
constexpr TypeTraits kTraits[] = {
    {TensorType::F32, "F32", 1, 4, false, dequantize_row_f32, quantize_row_f32},
    {TensorType::F16, "F16", 1, 2, false, dequantize_row_f16, quantize_row_f16},
    {TensorType::Q4_0, "Q4_0", 32, 18, true, dequantize_row_q4_0, quantize_row_q4_0},
    {TensorType::Q4_1, "Q4_1", 32, 20, true, dequantize_row_q4_1, quantize_row_q4_1},
    {TensorType::Q5_0, "Q5_0", 32, 22, true, dequantize_row_q5_0, quantize_row_q5_0},
    {TensorType::Q5_1, "Q5_1", 32, 24, true, dequantize_row_q5_1, quantize_row_q5_1},
    {TensorType::Q8_0, "Q8_0", 32, 34, true, dequantize_row_q8_0, quantize_row_q8_0},
    {TensorType::Q8_1, "Q8_1", 32, 36, true, nullptr, nullptr},
    {TensorType::Q2_K, "Q2_K", 256, 84, true, dequantize_row_q2_k, quantize_row_q2_k},
    {TensorType::Q3_K, "Q3_K", 256, 110, true, dequantize_row_q3_k, quantize_row_q3_k},
    {TensorType::Q4_K, "Q4_K", 256, 144, true, dequantize_row_q4_k, quantize_row_q4_k},
    {TensorType::Q5_K, "Q5_K", 256, 176, true, dequantize_row_q5_k, quantize_row_q5_k},
    {TensorType::Q6_K, "Q6_K", 256, 210, true, dequantize_row_q6_k, quantize_row_q6_k},
    {TensorType::Q8_K, "Q8_K", 256, 292, true, dequantize_row_q8_k, nullptr},
    {TensorType::IQ2_XXS, "IQ2_XXS", 256, 66, true, nullptr, nullptr},
    {TensorType::IQ2_XS, "IQ2_XS", 256, 74, true, nullptr, nullptr},
    {TensorType::IQ3_XXS, "IQ3_XXS", 256, 98, true, nullptr, nullptr},
    {TensorType::IQ1_S, "IQ1_S", 256, 50, true, nullptr, nullptr},
    {TensorType::IQ4_NL, "IQ4_NL", 32, 18, true, dequantize_row_iq4_nl, quantize_row_iq4_nl},
    {TensorType::IQ3_S, "IQ3_S", 256, 110, true, nullptr, nullptr},
    {TensorType::IQ2_S, "IQ2_S", 256, 82, true, nullptr, nullptr},
    {TensorType::IQ4_XS, "IQ4_XS", 256, 136, true, dequantize_row_iq4_xs, quantize_row_iq4_xs},
    {TensorType::I8, "I8", 1, 1, false, nullptr, nullptr},
    {TensorType::I16, "I16", 1, 2, false, nullptr, nullptr},
    {TensorType::I32, "I32", 1, 4, false, nullptr, nullptr},
    {TensorType::I64, "I64", 1, 8, false, nullptr, nullptr},
    {TensorType::F64, "F64", 1, 8, false, nullptr, nullptr},
    {TensorType::IQ1_M, "IQ1_M", 256, 56, true, nullptr, nullptr},
    {TensorType::BF16, "BF16", 1, 2, false, dequantize_row_bf16, quantize_row_bf16},
    {TensorType::TQ1_0, "TQ1_0", 256, 54, true, nullptr, nullptr},
    {TensorType::TQ2_0, "TQ2_0", 256, 66, true, nullptr, nullptr},
    {TensorType::MXFP4, "MXFP4", 32, 17, true, dequantize_row_mxfp4, quantize_row_mxfp4},
};

// strata's own layouts: the bytes per block of their source type, so a row's
// size does not change when it is repacked.
constexpr TypeTraits kLayoutTraits[] = {
    {TensorType::MXFP4_X4, "MXFP4_X4", 32, 17, true, dequantize_row_mxfp4_x4, nullptr},
    {TensorType::Q4_0_R8, "Q4_0_R8", 32, 18, true, dequantize_row_r8<TensorType::Q4_0_R8>, nullptr,
     8},
    {TensorType::Q5_0_R8, "Q5_0_R8", 32, 22, true, dequantize_row_r8<TensorType::Q5_0_R8>, nullptr,
     8},
    {TensorType::Q8_0_R8, "Q8_0_R8", 32, 34, true, dequantize_row_r8<TensorType::Q8_0_R8>, nullptr,
     8},
    {TensorType::IQ4_NL_R8, "IQ4_NL_R8", 32, 18, true, dequantize_row_r8<TensorType::IQ4_NL_R8>,
     nullptr, 8},
    {TensorType::Q4_K_64, "Q4_K_64", 256, 144, true, dequantize_row_q4_k_64, nullptr, 4},
    {TensorType::Q2_K_64, "Q2_K_64", 256, 84, true, dequantize_row_q2_k_64, nullptr, 4},
    {TensorType::Q3_K_64, "Q3_K_64", 256, 110, true, dequantize_row_q3_k_64, nullptr, 4},
    {TensorType::IQ4_XS_64, "IQ4_XS_64", 256, 136, true, dequantize_row_iq4_xs_64, nullptr, 4},
    {TensorType::Q5_K_64, "Q5_K_64", 256, 176, true, dequantize_row_q5_k_64, nullptr, 4},
    {TensorType::Q6_K_64, "Q6_K_64", 256, 210, true, dequantize_row_q6_k_64, nullptr, 4},
};

constexpr uint32_t kMaxTypeId = 40;
static_assert(kMaxTypeId <= kTypeIdCount);

// Type id -> index into kTraits, or -1; built once so lookups are O(1).
constexpr std::array<int, kMaxTypeId> build_index() {
    std::array<int, kMaxTypeId> index{};
    index.fill(-1);
    for (size_t i = 0; i < std::size(kTraits); ++i) index[static_cast<uint32_t>(kTraits[i].type)] = static_cast<int>(i);
    return index;
}
constexpr auto kIndex = build_index();

// Every type id, strata's layouts included -> its traits: O(1), as the hot
// paths take them (`TensorView::row`, once per row of a matrix product).
constexpr std::array<const TypeTraits*, kTypeIdCount> build_all() {
    std::array<const TypeTraits*, kTypeIdCount> all{};
    for (const TypeTraits& t : kTraits) all[static_cast<uint32_t>(t.type)] = &t;
    for (const TypeTraits& t : kLayoutTraits) all[static_cast<uint32_t>(t.type)] = &t;
    return all;
}
constexpr auto kAll = build_all();

constexpr bool row_groups_are_powers_of_two() {
    for (const TypeTraits& t : kLayoutTraits)
        if (t.row_group < 1 || (t.row_group & (t.row_group - 1)) != 0) return false;
    return true;
}
static_assert(row_groups_are_powers_of_two(), "TensorView::row masks by row_group - 1");

}  // namespace

const TypeTraits* type_traits(uint32_t type_id) {
    if (type_id >= kMaxTypeId || kIndex[type_id] < 0) return nullptr;
    return &kTraits[kIndex[type_id]];
}

const TypeTraits& type_traits(TensorType t) {
    return *kAll[static_cast<uint32_t>(t)];
}

std::optional<TensorType> type_from_name(std::string_view name) {
    for (const TypeTraits& traits : kTraits) {
        const std::string_view candidate = traits.name;
        if (candidate.size() != name.size()) continue;
        bool same = true;
        for (size_t i = 0; i < name.size() && same; ++i) {
            same = std::toupper(static_cast<unsigned char>(name[i])) == candidate[i];
        }
        if (same) return traits.type;
    }
    return std::nullopt;
}

const char* type_name(TensorType t) { return type_traits(t).name; }

Result<uint64_t> type_bytes(TensorType t, uint64_t n_elements) {
    const TypeTraits& traits = type_traits(t);
    const auto block = static_cast<uint64_t>(traits.block_size);
    if (n_elements % block != 0) {
        return err("{} elements are not a whole number of {} blocks of {}", n_elements, traits.name, block);
    }
    const uint64_t blocks = n_elements / block;
    if (blocks > std::numeric_limits<uint64_t>::max() / traits.type_size) {
        return err("{} elements of {} overflow a 64-bit byte count", n_elements, traits.name);
    }
    return blocks * traits.type_size;
}

}  // namespace strata
