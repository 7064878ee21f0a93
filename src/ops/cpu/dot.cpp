// Activation formats and the choice of kernel table.

#include "ops/cpu/dot.h"

#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/quants.h"
#include "util/check.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace strata::ops {

TensorType dot_act_type(TensorType weight) {
    switch (weight) {
        case TensorType::Q4_0:
        case TensorType::Q5_0:
        case TensorType::Q8_0:
        case TensorType::IQ4_NL:
        case TensorType::MXFP4:
        case TensorType::Q4_0_R8:
        case TensorType::Q5_0_R8:
        case TensorType::Q8_0_R8:
        case TensorType::IQ4_NL_R8:
        case TensorType::MXFP4_X4:
            return TensorType::Q8_0;
        case TensorType::Q4_1:
        case TensorType::Q5_1: return TensorType::Q8_1;
        case TensorType::Q2_K:
        case TensorType::Q3_K:
        case TensorType::Q3_K_64:
        case TensorType::Q2_K_64:
        case TensorType::Q4_K:
        case TensorType::Q4_K_64:
        case TensorType::Q5_K:
        case TensorType::Q5_K_64:
        case TensorType::Q6_K:
        case TensorType::Q6_K_64:
        case TensorType::IQ4_XS:
        case TensorType::IQ4_XS_64:
            return TensorType::Q8_K;
        default: return TensorType::F32;
    }
}

namespace {

// Q8_0 in `ActLayout::Groups4`: quantised as blocks first, so the codes and scales
// are the reference's, then rearranged group by group.
void quantize_q8_0_groups(const float* x, uint8_t* out, int64_t n, QuantizeFn quantize) {
    const int64_t n_blocks = n / 32;
    for (int64_t g = 0; g * 4 < n_blocks; ++g) {
        BlockQ8_0 b[4] = {};
        const int64_t nb = std::min<int64_t>(4, n_blocks - 4 * g);
        quantize(x + g * Groups4::kElements, b, nb * 32);
        uint8_t* o = out + g * Groups4::kBytes;
        int32_t nsum[16];
        float d[16];
        for (int k = 0; k < 4; ++k) {
            std::memcpy(o + 16 * k, b[k].qs, 16);
            std::memcpy(o + Groups4::kSecondAt + 16 * k, b[k].qs + 16, 16);
            for (int j = 0; j < 4; ++j) {
                int s = 0;
                for (int i = 0; i < 4; ++i) s += b[k].qs[4 * j + i] + b[k].qs[16 + 4 * j + i];
                nsum[4 * k + j] = -s;
                d[4 * k + j] = fp16_to_fp32(b[k].d);
            }
        }
        std::memcpy(o + Groups4::kNsumAt, nsum, sizeof nsum);
        std::memcpy(o + Groups4::kScaleAt, d, sizeof d);
    }
}

// Q8_K in `ActLayout::KLanes`: quantised as blocks first, as for Groups4.
void quantize_q8_k_lanes(const float* x, uint8_t* out, int64_t n, QuantizeFn quantize) {
    for (int64_t i = 0; i < n / qk_k; ++i) {
        BlockQ8_K b;
        quantize(x + i * qk_k, &b, qk_k);
        uint8_t* o = out + i * KLanes::kBytes;
        for (int e = 0; e < qk_k; ++e) o[KLanes::position(e)] = static_cast<uint8_t>(b.qs[e]);
        int32_t sums[8];
        for (int j = 0; j < 8; ++j) sums[j] = b.bsums[2 * j] + b.bsums[2 * j + 1];
        std::memcpy(o + KLanes::kSumsAt, sums, sizeof sums);
        std::memcpy(o + KLanes::kScaleAt, &b.d, sizeof b.d);
        std::memset(o + KLanes::kScaleAt + 4, 0, KLanes::kBsumsAt - KLanes::kScaleAt - 4);
        std::memcpy(o + KLanes::kBsumsAt, b.bsums, sizeof b.bsums);
        std::memset(o + KLanes::kBsumsAt + sizeof b.bsums, 0,
                    KLanes::kBytes - KLanes::kBsumsAt - sizeof b.bsums);
    }
}

}  // namespace

size_t act_row_bytes(TensorType act_type, ActLayout layout, int64_t n) {
    if (layout == ActLayout::Groups4) {
        CHECK(act_type == TensorType::Q8_0, "only Q8_0 activations come in groups");
        return static_cast<size_t>((n + Groups4::kElements - 1) / Groups4::kElements *
                                   Groups4::kBytes);
    }
    const TypeTraits& t = type_traits(act_type);
    CHECK(n % t.block_size == 0, "activation rows are whole blocks");
    if (layout == ActLayout::KLanes) {
        CHECK(act_type == TensorType::Q8_K, "only Q8_K activations come in lanes");
        return static_cast<size_t>(n / qk_k * KLanes::kBytes);
    }
    return static_cast<size_t>(n / t.block_size) * t.type_size;
}

void quantize_act(TensorType act_type, const float* x, void* out, int64_t n, ActLayout layout,
                  const DotKernels& k) {
    if (layout == ActLayout::Groups4) {
        CHECK(act_type == TensorType::Q8_0 && n % 32 == 0, "Q8_0 groups of whole blocks");
        quantize_q8_0_groups(x, static_cast<uint8_t*>(out), n, k.quantize_q8_0);
        return;
    }
    if (layout == ActLayout::KLanes) {
        CHECK(act_type == TensorType::Q8_K && n % qk_k == 0, "Q8_K lanes of whole blocks");
        quantize_q8_k_lanes(x, static_cast<uint8_t*>(out), n, k.quantize_q8_k);
        return;
    }
    switch (act_type) {
        case TensorType::Q8_0: k.quantize_q8_0(x, out, n); return;
        case TensorType::Q8_1: quantize_row_q8_1(x, out, n); return;
        case TensorType::Q8_K: k.quantize_q8_k(x, out, n); return;
        case TensorType::F32: std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float)); return;
        default: CHECK(false, "no activation format");
    }
}

namespace {

const DotKernels& choose() {
    const char* env = std::getenv("STRATA_ISA");
    const std::string_view cap = env ? env : "";
    if (cap != "scalar" && cap != "avx2" && cap != "avx512") {
        if (const DotKernels* k = avx512vbmi_dot_kernels()) return *k;
    }
    if (cap != "scalar" && cap != "avx2") {
        if (const DotKernels* k = avx512_dot_kernels()) return *k;
    }
    if (cap != "scalar") {
        if (const DotKernels* k = avx2_dot_kernels()) return *k;
    }
    return scalar_dot_kernels();
}

}  // namespace

const DotKernels& dot_kernels() {
    static const DotKernels& k = choose();
    return k;
}

}  // namespace strata::ops
