// The x86 dot-product tables: the kernels of dot_x86.inc compiled twice, once
// for AVX2 (with FMA and F16C) and once for AVX-512 with VNNI. Only the code
// between each pair of target pragmas may use those instructions, and it runs
// only after the CPU check of its table; headers are included first so that no
// inline function shared with the rest of the program is compiled for them.

#include "ops/cpu/dot.h"

#include "tensor/blocks.h"
#include "tensor/fp16.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

// Clang (the sanitizer and fuzzing build, build-san/) has neither GCC's
// `#pragma GCC target` regions nor `__builtin_cpu_supports("f16c")`, so a clang
// build leaves both tables out and runs the scalar reference kernels, which the
// same golden tests hold to the same fixtures.
#if defined(__x86_64__) && !defined(__clang__)

#include <immintrin.h>

// The kernels pass vectors between inlined helpers and lambdas, all compiled for
// the same target; GCC still warns that such a return would change the ABI
// across targets, which cannot happen here. GCC 12 also reports its own
// `_mm512_inserti64x4` and `_mm512_extractf32x8_ps` as reading an uninitialised
// value (their unused merge source).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#define STRATA_VNNI 0
namespace strata::ops::avx2 {
namespace {
#include "ops/cpu/dot_x86.inc"
}  // namespace
DotKernels build(const DotKernels& base) { return make_table("avx2", base); }
}  // namespace strata::ops::avx2
#undef STRATA_VNNI
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")
#define STRATA_VNNI 1
namespace strata::ops::avx512 {
namespace {
#include "ops/cpu/dot_x86.inc"
}  // namespace
DotKernels build(const DotKernels& base) { return make_table("avx512", base); }
}  // namespace strata::ops::avx512
#undef STRATA_VNNI
#pragma GCC pop_options

#pragma GCC diagnostic pop

namespace strata::ops {

namespace k4_lanes {
// Q4_K, IQ4_XS and their _64 layouts on sub-block lanes (dot_k4_lanes.cpp).
DotKernels build(const DotKernels& base);
}  // namespace k4_lanes

namespace groups_avx2 {
// The Q4_0 and MXFP4 kernels on four-block groups (dot_groups_avx2.cpp).
DotKernels build(const DotKernels& base);
}  // namespace groups_avx2

const DotKernels* avx2_dot_kernels() {
    static const bool supported =
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (!supported) return nullptr;
    static const DotKernels k = groups_avx2::build(avx2::build(scalar_dot_kernels()));
    return &k;
}

const DotKernels* avx512_dot_kernels() {
    static const bool supported = avx2_dot_kernels() && __builtin_cpu_supports("avx512f") &&
                                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                                  __builtin_cpu_supports("bmi2");
    if (!supported) return nullptr;
    static const DotKernels k = k4_lanes::build(avx512::build(*avx2_dot_kernels()));
    return &k;
}

}  // namespace strata::ops

#else

namespace strata::ops {
const DotKernels* avx2_dot_kernels() { return nullptr; }
const DotKernels* avx512_dot_kernels() { return nullptr; }
}  // namespace strata::ops

#endif
