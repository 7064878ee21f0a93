// Activation formats and the choice of kernel table.

#include "ops/cpu/dot.h"

#include "tensor/quants.h"
#include "util/check.h"

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
        case TensorType::MXFP4: return TensorType::Q8_0;
        case TensorType::Q4_1:
        case TensorType::Q5_1: return TensorType::Q8_1;
        case TensorType::Q2_K:
        case TensorType::Q3_K:
        case TensorType::Q4_K:
        case TensorType::Q5_K:
        case TensorType::Q6_K:
        case TensorType::IQ4_XS: return TensorType::Q8_K;
        default: return TensorType::F32;
    }
}

void quantize_act(TensorType act_type, const float* x, void* out, int64_t n) {
    switch (act_type) {
        case TensorType::Q8_0: quantize_row_q8_0(x, out, n); return;
        case TensorType::Q8_1: quantize_row_q8_1(x, out, n); return;
        case TensorType::Q8_K: quantize_row_q8_k(x, out, n); return;
        case TensorType::F32: std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float)); return;
        default: CHECK(false, "no activation format");
    }
}

namespace {

const DotKernels& choose() {
    const char* env = std::getenv("STRATA_ISA");
    const std::string_view cap = env ? env : "";
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
