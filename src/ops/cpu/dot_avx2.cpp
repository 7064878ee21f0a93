// The avx2 dot-product table: the kernels of dot_x86.inc compiled for avx2,fma,f16c.
// Only the code between the target pragmas may use those instructions, and it
// runs only after the CPU check below; headers are included first so that no
// inline function shared with the rest of the program is compiled for them.

#include "ops/cpu/dot.h"

#include "tensor/blocks.h"

#include <bit>
#include <cstring>
#include <immintrin.h>

#if defined(__x86_64__)

#pragma GCC push_options
// The kernels pass vectors between inlined helpers and lambdas, all compiled for
// the same target; GCC still warns that such a return would change the ABI
// across targets, which cannot happen here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC target("avx2,fma,f16c")
#define STRATA_VNNI 0

namespace strata::ops::avx2 {
namespace {
#include "ops/cpu/dot_x86.inc"
}  // namespace

DotKernels build(const DotKernels& base) { return make_table("avx2", base); }
}  // namespace strata::ops::avx2

#undef STRATA_VNNI
#pragma GCC diagnostic pop
#pragma GCC pop_options

namespace strata::ops {

const DotKernels* avx2_dot_kernels() {
    static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (!supported) return nullptr;
    static const DotKernels k = avx2::build(scalar_dot_kernels());
    return &k;
}

}  // namespace strata::ops

#else

namespace strata::ops {
const DotKernels* avx2_dot_kernels() { return nullptr; }
}  // namespace strata::ops

#endif
