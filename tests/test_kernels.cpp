// The CPU kernels: every dot-product table (AVX2, AVX-512 where the CPU has them)
// against the scalar reference, the scalar reference against the bit-exact
// dequantizers, the activation formats, the matrix product and the thread pool.

#include "ops/cpu/dot.h"
#include "ops/cpu/matmul.h"
#include "random_blocks.h"
#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/quants.h"
#include "tensor/repack.h"
#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace strata {
namespace {

using ops::DotKernels;

using test::dequantize;
using test::random_floats;
using test::random_row;

// One row of activations as table `k` takes them for `weight` (the scalar
// table's layout unless given).
std::vector<uint8_t> pack(TensorType weight, const std::vector<float>& x,
                          const DotKernels& k = ops::scalar_dot_kernels()) {
    ops::PackedActs a;
    ops::pack_acts(weight, x.data(), 0, static_cast<int64_t>(x.size()), 1, a, nullptr, k);
    return a.data;
}

const TensorType kTypes[] = {
    TensorType::F32,       TensorType::F16,     TensorType::BF16,    TensorType::Q4_0,
    TensorType::Q4_1,      TensorType::Q5_0,    TensorType::Q5_1,    TensorType::Q8_0,
    TensorType::Q2_K,      TensorType::Q3_K,    TensorType::Q4_K,    TensorType::Q5_K,
    TensorType::Q6_K,      TensorType::IQ4_NL,  TensorType::IQ4_XS,  TensorType::MXFP4,
    TensorType::Q4_0_R8,   TensorType::Q5_0_R8, TensorType::Q8_0_R8, TensorType::IQ4_NL_R8,
    TensorType::MXFP4_X4,  TensorType::Q4_K_64, TensorType::Q5_K_64, TensorType::Q6_K_64,
    TensorType::IQ4_XS_64, TensorType::Q3_K_64, TensorType::Q2_K_64};

std::vector<const DotKernels*> fast_tables() {
    std::vector<const DotKernels*> out;
    if (auto* k = ops::avx2_dot_kernels()) out.push_back(k);
    if (auto* k = ops::avx512_dot_kernels()) out.push_back(k);
    if (auto* k = ops::avx512vbmi_dot_kernels()) out.push_back(k);
    return out;
}

// The scalar kernel computes, in exact integers per block, the product of the
// weight and activation codes; in doubles, the same quantity is the dot of the
// two dequantized rows. They differ only by float rounding of at most n / 32
// block terms, so 1e-5 of the sum of |products| is a safe bound (the block sums
// are rounded to 24 bits, ~6e-8 each; 1e-5 leaves room for 160 such roundings).
TEST(DotKernels, ScalarReferenceEqualsDequantizedDot) {
    std::mt19937 rng(1);
    const int64_t n = 4096;
    for (TensorType t : kTypes) {
        const auto w = random_row(t, n, rng);
        const auto x = random_floats(n, rng);
        const auto a = pack(t, x);
        const auto wf = dequantize(t, w.data(), n);
        const TensorType at = ops::dot_act_type(t);
        const auto af = at == TensorType::F32 ? x : dequantize(at, a.data(), n);
        double exact = 0, magnitude = 0;
        for (int64_t i = 0; i < n; ++i) {
            exact += double{wf[i]} * af[i];
            magnitude += std::fabs(double{wf[i]} * af[i]);
        }
        const float got =
            ops::scalar_dot_kernels().dot[static_cast<size_t>(t)](n, w.data(), a.data());
        EXPECT_NEAR(got, exact, 1e-5 * magnitude) << type_name(t);
    }
}

// Each SIMD kernel sums the same integer products as the scalar one; only the
// order of the float block terms differs, hence the same bound.
TEST(DotKernels, EverySimdTableMatchesTheScalarOne) {
    const auto tables = fast_tables();
    if (tables.empty()) GTEST_SKIP() << "this CPU has no SIMD table";
    std::mt19937 rng(2);
    for (const DotKernels* k : tables) {
        for (TensorType t : kTypes) {
            // 32-element formats: groups of four blocks, a partial group (32, 96, 160,
            // 2880), odd and even numbers of whole groups (384, 256, 4096).
            for (int64_t n : {32, 96, 160, 256, 384, 2880, 4096}) {
                if (n % type_traits(t).block_size != 0) continue;
                const auto w = random_row(t, n, rng);
                const auto x = random_floats(n, rng);
                const auto a = pack(t, x), ak = pack(t, x, *k);
                const auto wf = dequantize(t, w.data(), n);
                double magnitude = 0;
                for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(double{wf[i]} * x[i]);
                const size_t id = static_cast<size_t>(t);
                ASSERT_NE(k->dot[id], nullptr) << k->isa << " " << type_name(t);
                const float want = ops::scalar_dot_kernels().dot[id](n, w.data(), a.data());
                const float got = k->dot[id](n, w.data(), ak.data());
                EXPECT_NEAR(got, want, 1e-5 * magnitude)
                    << k->isa << " " << type_name(t) << " n=" << n;
            }
        }
    }
}

// The four-row kernels must give each row exactly what the one-row kernel gives
// it (not merely close): continuous batching relies on a token's result not
// depending on which other tokens share its batch.
TEST(DotKernels, FourRowKernelsEqualTheOneRowKernelExactly) {
    std::mt19937 rng(6);
    int checked = 0;
    for (const DotKernels* k : fast_tables()) {
        for (TensorType t : kTypes) {
            const size_t id = static_cast<size_t>(t);
            if (!k->dot4[id]) continue;
            for (int64_t n : {32, 96, 512, 2880}) {
                if (n % type_traits(t).block_size != 0) continue;
                const auto w = random_row(t, n, rng);
                std::vector<std::vector<uint8_t>> acts;
                const void* a[4];
                for (int i = 0; i < 4; ++i) {
                    acts.push_back(pack(t, random_floats(n, rng), *k));
                    a[i] = acts.back().data();
                }
                float out[4];
                k->dot4[id](n, w.data(), a, out);
                for (int i = 0; i < 4; ++i)
                    EXPECT_EQ(out[i], k->dot[id](n, w.data(), a[i]))
                        << k->isa << " " << type_name(t);
                ++checked;
            }
        }
    }
    if (checked == 0) GTEST_SKIP() << "no four-row kernels on this CPU";
}

// Four rows of a matrix of type `t`: in a row-interleaved layout, one group of
// adjacent rows (its kernels take the group), otherwise rows anywhere.
struct FourRows {
    std::vector<std::vector<uint8_t>> bytes;
    const void* w[4];
    FourRows(TensorType t, int64_t n, std::mt19937& rng) {
        const bool grouped = type_traits(t).row_group == 4;
        for (int i = 0; i < (grouped ? 1 : 4); ++i) bytes.push_back(random_row(t, n, rng));
        const size_t row_bytes = bytes[0].size() / (grouped ? 4 : 1);
        const TensorView group{
            .type = t, .ne = {n, 4, 1, 1}, .row_bytes = row_bytes, .data = bytes[0].data()};
        for (int i = 0; i < 4; ++i)
            w[i] = grouped ? group.row(i) : bytes[static_cast<size_t>(i)].data();
    }
};

// The same for decode's kernels, four weight rows against one activation row.
TEST(DotKernels, FourWeightRowKernelsEqualTheOneRowKernelExactly) {
    std::mt19937 rng(9);
    int checked = 0;
    for (const DotKernels* k : fast_tables()) {
        for (TensorType t : kTypes) {
            const size_t id = static_cast<size_t>(t);
            if (!k->rows4[id]) continue;
            for (int64_t n : {32, 96, 512, 768, 2880}) {
                if (n % type_traits(t).block_size != 0) continue;
                const auto a = pack(t, random_floats(n, rng), *k);
                const FourRows rows(t, n, rng);
                float out[4];
                // Prefetching (here past the rows, maybe unmapped) changes no result.
                k->rows4[id](n, rows.w, a.data(), out,
                             checked % 2 ? 0 : static_cast<ptrdiff_t>(rows.bytes[0].size()));
                for (int i = 0; i < 4; ++i)
                    EXPECT_EQ(out[i], k->dot[id](n, rows.w[i], a.data()))
                        << k->isa << " " << type_name(t) << " n=" << n;
                ++checked;
            }
        }
    }
    if (checked == 0) GTEST_SKIP() << "no four-weight-row kernels on this CPU";
}

// And for the row-interleaved layouts' kernels, which take rows by groups (of
// eight in the _R8 layouts, four in the K-quants' _64 ones): the _R8 layouts'
// prefill, half a group against four activation rows, and every such layout's
// decode, one to three adjacent groups against one.
TEST(DotKernels, RowGroupKernelsEqualTheOneRowKernelExactly) {
    std::mt19937 rng(13);
    int checked = 0;
    for (const DotKernels* k : fast_tables()) {
        for (TensorType t : kTypes) {
            const size_t id = static_cast<size_t>(t);
            if (k->tile4[id]) {
                ASSERT_NE(k->row_groups[id], nullptr) << k->isa << " " << type_name(t);
            }
            if (!k->row_groups[id]) continue;
            const int64_t rows_per_group = type_traits(t).row_group;
            // Rows of 1 to 4 blocks past a multiple of four, and 90 (gpt-oss); for
            // the 256-element blocks, 1, 3 (Qwen3's expert down rows) and 8.
            for (int64_t n : {32, 64, 96, 128, 256, 384, 768, 2048, 2880}) {
                if (n % type_traits(t).block_size != 0) continue;
                SCOPED_TRACE(std::string(k->isa) + " " + type_name(t) + " n=" + std::to_string(n));
                std::vector<uint8_t> matrix;  // three groups
                for (int g = 0; g < 3; ++g) {
                    const auto group = random_row(t, n, rng);
                    matrix.insert(matrix.end(), group.begin(), group.end());
                }
                const TensorView w{
                    .type = t,
                    .ne = {n, 3 * rows_per_group, 1, 1},
                    .row_bytes = matrix.size() / static_cast<size_t>(3 * rows_per_group),
                    .data = matrix.data()};
                std::vector<std::vector<uint8_t>> acts;
                const void* a[4];
                for (int i = 0; i < 4; ++i) {
                    acts.push_back(pack(t, random_floats(n, rng), *k));
                    a[i] = acts.back().data();
                }
                for (int64_t half : {8, 12}) {  // both halves of the second group
                    if (!k->tile4[id]) break;
                    float out[16];
                    k->tile4[id](n, w.row(half), a, out);
                    for (int i = 0; i < 16; ++i)
                        EXPECT_EQ(out[i], k->dot[id](n, w.row(half + i % 4), a[i / 4]))
                            << "row " << half + i % 4 << " token " << i / 4;
                }
                for (int64_t groups : {1, 2, 3}) {
                    float got[24];
                    k->row_groups[id](n, w.row(0), groups, a[0], got);
                    for (int r = 0; r < rows_per_group * groups; ++r)
                        EXPECT_EQ(got[r], k->dot[id](n, w.row(r), a[0]))
                            << groups << " groups, row " << r;
                }
                ++checked;
            }
        }
    }
    if (checked == 0) GTEST_SKIP() << "no row-group kernels on this CPU";
}

// A table that asks for weights repacked (tensor/repack.h) must give every row
// what its kernels give the same row in the GGML layout, to the bit: a model's
// logits must not depend on whether its weights were copied or mapped.
TEST(DotKernels, RepackedRowsGiveTheGgmlRowsResultsExactly) {
    std::mt19937 rng(11);
    int checked = 0;
    for (const DotKernels* k : fast_tables()) {
        for (TensorType t : kTypes) {
            const auto to = k->repacked[static_cast<size_t>(t)];
            if (!to) continue;
            const size_t id = static_cast<size_t>(t), rid = static_cast<size_t>(*to);
            // Partial last groups of 1, 2 and 3 blocks, and none.
            for (int64_t blocks : {1, 2, 3, 4, 90, 128}) {
                const int64_t n = blocks * type_traits(t).block_size;
                // Eight adjacent rows of a matrix, repacked together (a row-
                // interleaved layout takes them as one or two groups).
                std::vector<std::vector<uint8_t>> rows;
                std::vector<uint8_t> packed;
                const void *w[8], *wp[8];
                for (int i = 0; i < 8; ++i) {
                    rows.push_back(random_row(t, n, rng));
                    packed.insert(packed.end(), rows.back().begin(), rows.back().end());
                    w[i] = rows.back().data();
                }
                repack_rows(*to, packed.data(), 8, n, rows[0].size());
                const TensorView matrix{.type = *to,
                                        .ne = {n, 8, 1, 1},
                                        .row_bytes = rows[0].size(),
                                        .data = packed.data()};
                for (int i = 0; i < 8; ++i) wp[i] = matrix.row(i);
                // The same activations, in the layout each kernel takes.
                std::vector<std::vector<uint8_t>> acts, acts_p;
                const void *a[4], *ap[4];
                for (int i = 0; i < 4; ++i) {
                    const auto x = random_floats(n, rng);
                    acts.push_back(pack(t, x, *k));
                    acts_p.push_back(pack(*to, x, *k));
                    a[i] = acts.back().data();
                    ap[i] = acts_p.back().data();
                }
                EXPECT_EQ(k->dot[rid](n, wp[0], ap[0]), k->dot[id](n, w[0], a[0])) << n;
                if (k->dot4[id] && k->dot4[rid]) {
                    float want[4], got[4];
                    k->dot4[id](n, w[0], a, want);
                    k->dot4[rid](n, wp[0], ap, got);
                    for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i], want[i]) << n;
                }
                if (k->rows4[id] && k->rows4[rid]) {
                    float want[4], got[4];
                    k->rows4[id](n, w, a[0], want, 0);
                    k->rows4[rid](n, wp, ap[0], got, 0);
                    for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i], want[i]) << n;
                }
                if (k->tile4[rid]) {
                    float got[16];
                    k->tile4[rid](n, wp[4], ap, got);
                    for (int i = 0; i < 16; ++i)
                        EXPECT_EQ(got[i], k->dot[id](n, w[4 + i % 4], a[i / 4])) << n << " " << i;
                }
                if (k->row_groups[rid]) {  // the eight rows: one group of eight or two of four
                    float got[8];
                    k->row_groups[rid](n, wp[0], 8 / type_traits(*to).row_group, ap[0], got);
                    for (int i = 0; i < 8; ++i) EXPECT_EQ(got[i], k->dot[id](n, w[i], a[0])) << n;
                }
                ++checked;
            }
        }
    }
    if (checked == 0) GTEST_SKIP() << "no table on this CPU repacks weights";
}

// Repacking is a permutation of a row's bytes: undone, it gives the row back,
// and the layout dequantizes to the source's values. Random bytes (every bit
// pattern of scales and codes), rows of 1, 2, 3, 4 and 90 blocks, several rows
// at once, `row_bytes` apart with a gap between them that must stay untouched
// (row-interleaved layouts: two groups of adjacent rows, and the bytes after
// them).
TEST(Repack, EveryLayoutIsAPermutationOfTheRowsBytes) {
    std::mt19937 rng(12);
    for (TensorType layout :
         {TensorType::MXFP4_X4, TensorType::Q4_0_R8, TensorType::Q5_0_R8, TensorType::Q8_0_R8,
          TensorType::IQ4_NL_R8, TensorType::Q4_K_64, TensorType::Q5_K_64, TensorType::Q6_K_64,
          TensorType::IQ4_XS_64, TensorType::Q3_K_64, TensorType::Q2_K_64}) {
        const TypeTraits& src = type_traits(layout_source(layout));
        const int64_t g = type_traits(layout).row_group, n_rows = g == 1 ? 3 : 2 * g;
        const size_t gap = g == 1 ? 5 : 0;
        for (int64_t blocks : {1, 2, 3, 4, 90}) {
            const int64_t n = blocks * src.block_size;
            const size_t bytes = static_cast<size_t>(blocks) * src.type_size, stride = bytes + gap;
            std::vector<uint8_t> rows(static_cast<size_t>(n_rows) * stride + 5);
            for (uint8_t& b : rows) b = static_cast<uint8_t>(rng());
            const std::vector<uint8_t> before = rows;
            repack_rows(layout, rows.data(), n_rows, n, stride);
            const TensorView matrix{
                .type = layout, .ne = {n, n_rows, 1, 1}, .row_bytes = stride, .data = rows.data()};
            EXPECT_EQ(std::memcmp(rows.data() + n_rows * stride, before.data() + n_rows * stride, 5), 0)
                << "bytes after the rows";
            for (int r = 0; r < n_rows; ++r) {
                SCOPED_TRACE(std::string(type_name(layout)) + " n=" + std::to_string(n) +
                             " row=" + std::to_string(r));
                const uint8_t* was = before.data() + r * stride;
                const uint8_t* now = matrix.row(r);
                std::vector<uint8_t> back(bytes);
                unpack_row(layout, now, back.data(), n);
                EXPECT_EQ(std::memcmp(back.data(), was, bytes), 0);
                EXPECT_EQ(std::memcmp(rows.data() + r * stride + bytes, was + bytes, gap), 0)
                    << "gap after row " << r;
                if (n >= 128) {
                    EXPECT_NE(std::memcmp(rows.data() + r * stride, was, bytes), 0) << "rearranged at all";
                }
                // As bytes: random scales make infinities and NaNs too. The GGML row
                // is copied first: its blocks hold halves, which the 5-byte gaps
                // leave unaligned.
                const std::vector<uint8_t> source(was, was + bytes);
                const auto got = dequantize(layout, now, n),
                           want = dequantize(src.type, source.data(), n);
                EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0);
            }
        }
    }
    // The first group's first block: codes at byte 0, its exponent after the
    // group's 64 code bytes.
    std::vector<uint8_t> row(4 * 17);
    for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<uint8_t>(i);
    repack_rows(TensorType::MXFP4_X4, row.data(), 1, 128, row.size());
    EXPECT_EQ(row[0], 1);           // block 0's first code byte
    EXPECT_EQ(row[16], 18);         // block 1's
    EXPECT_EQ(row[64], 0 ^ 0x80);   // block 0's exponent, top bit flipped
    EXPECT_EQ(row[67], 51 ^ 0x80);  // block 3's
    // An _R8 group's blocks: block 0 of rows 0..7, then block 1 of rows 0..7.
    std::vector<uint8_t> rows(8 * 2 * 18);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<uint8_t>(i);
    repack_rows(TensorType::Q4_0_R8, rows.data(), 8, 64, 2 * 18);
    EXPECT_EQ(rows[18], 36);          // row 1's block 0
    EXPECT_EQ(rows[7 * 18], 7 * 36);  // row 7's block 0
    EXPECT_EQ(rows[8 * 18], 18);      // row 0's block 1
}

// MXFP4 scales at the ends of their range: 2^-128 and 2^-127 (e = 0, 1) are
// subnormal floats, and e = 255 is 2^127 in the reference where a kernel that
// builds the scale from e's bits would get infinity. Activations of 1e-3 keep
// the e = 255 sums finite. Bound as in EverySimdTableMatchesTheScalarOne.
TEST(DotKernels, MxfpScalesAtTheEndsOfTheirRange) {
    std::mt19937 rng(10);
    const int64_t n = 256;
    const auto x = random_floats(n, rng, 1e-3f);
    for (int e : {0, 1, 2, 127, 254, 255}) {
        auto w = random_row(TensorType::MXFP4, n, rng);
        // The magnitude at e = 127 (scale 1), scaled in doubles: the format's own
        // decoder turns e = 255 into infinity, as the reference's does.
        for (size_t b = 0; b < w.size(); b += 17) w[b] = 127;
        const auto wf = dequantize(TensorType::MXFP4, w.data(), n);
        double magnitude = 0;
        for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(double{wf[i]} * x[i]);
        magnitude = std::ldexp(magnitude, e - 127);
        for (size_t b = 0; b < w.size(); b += 17) w[b] = static_cast<uint8_t>(e);
        const size_t id = static_cast<size_t>(TensorType::MXFP4);
        const float want =
            ops::scalar_dot_kernels().dot[id](n, w.data(), pack(TensorType::MXFP4, x).data());
        ASSERT_TRUE(std::isfinite(want)) << "e=" << e;
        for (const DotKernels* k : fast_tables()) {
            const float got = k->dot[id](n, w.data(), pack(TensorType::MXFP4, x, *k).data());
            EXPECT_NEAR(got, want, 1e-5 * magnitude) << k->isa << " e=" << e;
        }
    }
}

// Extreme codes: every weight code at its most negative and every activation at
// -127 or 127, where a 16-bit intermediate would saturate if the kernels let it.
TEST(DotKernels, ExtremeCodesDoNotSaturate) {
    std::mt19937 rng(3);
    const int64_t n = 512;
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = i % 2 ? 1.0f : -1.0f;
    for (TensorType t :
         {TensorType::Q8_0, TensorType::Q4_0, TensorType::MXFP4, TensorType::IQ4_NL}) {
        auto w = random_row(t, n, rng);
        const size_t bs = type_traits(t).type_size;
        for (size_t b = 0; b < w.size() / bs; ++b) {
            uint8_t* p = w.data() + b * bs;
            // Q8_0: codes of -128; the 4-bit types: the code of the most negative value.
            if (t == TensorType::Q8_0) std::memset(p + 2, 0x80, 32);
            if (t == TensorType::Q4_0) std::memset(p + 2, 0x00, 16);
            if (t == TensorType::MXFP4) std::memset(p + 1, 0xFF, 16);
            if (t == TensorType::IQ4_NL) std::memset(p + 2, 0x00, 16);
        }
        const auto a = pack(t, x);
        const float want =
            ops::scalar_dot_kernels().dot[static_cast<size_t>(t)](n, w.data(), a.data());
        for (const DotKernels* k : fast_tables()) {
            const auto ak = pack(t, x, *k);
            EXPECT_NEAR(k->dot[static_cast<size_t>(t)](n, w.data(), ak.data()), want,
                        1e-5 * std::fabs(want))
                << k->isa << " " << type_name(t);
        }
    }
}

// Attention's kernels over a block of cache rows, each SIMD table against the
// scalar one, for every run of heads the SIMD kernels specialise (8, 4, 2, 1 and
// a mix), head sizes with and without a scalar tail, and rows and heads apart
// from each other as in the cache. The bound: a SIMD sum of d products adds them
// in another order, and fused multiply-adds round once where the scalar loop
// rounds twice; either moves a sum by at most about d ulps of the sum of the
// terms' magnitudes, and 1e-6 relative to that sum is 8 ulps per term.
TEST(DotKernels, AttentionKernelsMatchTheScalarOnes) {
    std::mt19937 rng(8);
    const int64_t n = 37, stride = 300;  // rows of the cache: n keys, stride elements apart
    for (TensorType t : {TensorType::F32, TensorType::F16}) {
        // 40: the AVX-512 table's 16-float vectors cover 32 of it, then the scalar tail.
        for (int64_t d : {40, 64, 67, 128}) {
            const auto rows = random_row(t, n * stride, rng);
            const auto rows_f = dequantize(t, rows.data(), n * stride);
            for (int g : {1, 2, 3, 4, 8, 15}) {
                const int64_t q_stride = d + 5;
                const auto q = random_floats(g * q_stride, rng);
                const auto w = random_floats(g * n, rng);
                const auto o0 = random_floats(g * q_stride, rng);
                std::vector<float> want_s(g * n), got_s(g * n);
                auto want_o = o0;
                const auto& ref = ops::scalar_dot_kernels();
                const auto ti = static_cast<size_t>(t);
                ref.scores[ti](d, rows.data(), stride, n, q.data(), q_stride, g, want_s.data());
                ref.weighted_sum[ti](d, rows.data(), stride, n, w.data(), g, want_o.data(), q_stride);
                for (const DotKernels* k : fast_tables()) {
                    auto got_o = o0;
                    k->scores[ti](d, rows.data(), stride, n, q.data(), q_stride, g, got_s.data());
                    k->weighted_sum[ti](d, rows.data(), stride, n, w.data(), g, got_o.data(),
                                        q_stride);
                    for (int i = 0; i < g; ++i) {
                        for (int64_t j = 0; j < n; ++j) {
                            double mag = 0;
                            for (int64_t e = 0; e < d; ++e) {
                                mag += std::fabs(q[i * q_stride + e] * rows_f[j * stride + e]);
                            }
                            EXPECT_NEAR(got_s[i * n + j], want_s[i * n + j], 1e-6 * mag)
                                << k->isa << " " << type_name(t) << " d=" << d << " g=" << g;
                        }
                        for (int64_t e = 0; e < q_stride; ++e) {
                            // Past d the row is the next head's, which stays as it was.
                            if (e >= d) {
                                EXPECT_EQ(got_o[i * q_stride + e], o0[i * q_stride + e]);
                                continue;
                            }
                            double mag = std::fabs(o0[i * q_stride + e]);
                            for (int64_t j = 0; j < n; ++j) {
                                mag += std::fabs(w[i * n + j] * rows_f[j * stride + e]);
                            }
                            EXPECT_NEAR(got_o[i * q_stride + e], want_o[i * q_stride + e], 1e-6 * mag)
                                << k->isa << " " << type_name(t) << " d=" << d << " g=" << g;
                        }
                    }
                }
            }
        }
    }
}

// Attention's softmax weights: exp(x - shift) over what attention passes (x at
// most the shift), against std::exp. 2 ulp is the bound the polynomial is built
// to (Cephes' expf coefficients, about 1 ulp, plus the scaling's rounding);
// results within a factor 2 of the smallest normal float, or under it, may be 0
// (the kernels flush below ln of it, rounded to a float; see dot.h).
TEST(DotKernels, ExpKernelsAreWithinTwoUlpOfStdExp) {
    std::vector<float> x;
    for (float v = -90.0f; v <= 0.0f; v += 0.0137f) x.push_back(v + 3.5f);  // shift 3.5
    x.push_back(3.5f);
    for (const DotKernels* k : fast_tables()) {
        std::vector<float> y(x.size());
        k->exp(static_cast<int64_t>(x.size()), x.data(), 3.5f, y.data());
        for (size_t i = 0; i < x.size(); ++i) {
            const float want = std::exp(x[i] - 3.5f);
            if (want < 2 * std::numeric_limits<float>::min()) {
                EXPECT_LE(y[i], 2 * std::numeric_limits<float>::min()) << k->isa << " x=" << x[i];
                continue;
            }
            const float ulp = std::nextafter(want, INFINITY) - want;
            EXPECT_NEAR(y[i], want, 2 * ulp) << k->isa << " x=" << x[i];
        }
    }
}

// A row that ends where readable memory ends: the kernels that load 64 bytes at
// a time must mask their last loads instead of reading past the row (a tensor
// can end at the end of the file's mapping).
TEST(DotKernels, RowsEndingAtAnUnmappedPageAreReadSafely) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    void* mem =
        ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    ASSERT_EQ(::mprotect(static_cast<uint8_t*>(mem) + page, page, PROT_NONE), 0);
    std::mt19937 rng(7);
    for (TensorType t :
         {TensorType::Q8_0, TensorType::Q4_0, TensorType::MXFP4, TensorType::IQ4_NL}) {
        for (int64_t n : {96, 2880}) {
            const auto w = random_row(t, n, rng);
            ASSERT_LE(w.size(), page);
            uint8_t* row = static_cast<uint8_t*>(mem) + page - w.size();
            std::memcpy(row, w.data(), w.size());
            const auto x = random_floats(n, rng);
            const auto wf = dequantize(t, w.data(), n);
            double magnitude = 0;
            for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(double{wf[i]} * x[i]);
            const float want = ops::scalar_dot_kernels().dot[static_cast<size_t>(t)](
                n, w.data(), pack(t, x).data());
            for (const DotKernels* k : fast_tables()) {
                // The bound of EverySimdTableMatchesTheScalarOne: reading the row
                // where it ends must not change the result either.
                const float got = k->dot[static_cast<size_t>(t)](n, row, pack(t, x, *k).data());
                EXPECT_NEAR(got, want, 1e-5 * magnitude)
                    << k->isa << " " << type_name(t) << " n=" << n;
            }
        }
    }
    ::munmap(mem, 2 * page);
}

// Every table's Q8_0 quantiser gives the reference's codes and scale, bit for
// bit: ties that round away from zero, values just below a half, zeros of both
// signs, subnormals, and blocks with a NaN or an infinity among the values.
TEST(ActivationFormats, EveryQ8_0QuantiserGivesTheReferencesCodes) {
    std::mt19937 rng(13);
    std::vector<float> x;
    // A block whose largest magnitude is 127 (scale 1): each value is its own
    // code before rounding.
    for (float v : {127.0f, 0.5f, -0.5f, 1.5f, -2.5f, 126.5f, -126.5f, 0.49999997f, -0.49999997f,
                    0.0f, -0.0f, 1e-40f, -1e-40f, 3.5f, 2.5000002f, -64.5f})
        x.push_back(v);
    while (x.size() % 32) x.push_back(static_cast<float>(static_cast<int>(rng() % 255) - 127) + 0.5f);
    const float nan = std::numeric_limits<float>::quiet_NaN(),
                inf = std::numeric_limits<float>::infinity();
    for (float special : {nan, inf, -inf, 0.0f, 1e-40f}) {
        for (int j = 0; j < 32; ++j) x.push_back(j == 7 ? special : (j == 3 ? 0.0f : special * 0.5f));
    }
    const auto more = random_floats(32 * 40, rng);
    x.insert(x.end(), more.begin(), more.end());
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<BlockQ8_0> want(static_cast<size_t>(n / 32)), got(want.size());
    quantize_row_q8_0(x.data(), want.data(), n);
    for (const DotKernels* k : fast_tables()) {
        ASSERT_NE(k->quantize_q8_0, nullptr) << k->isa;
        k->quantize_q8_0(x.data(), got.data(), n);
        for (size_t b = 0; b < want.size(); ++b) {
            EXPECT_EQ(got[b].d, want[b].d) << k->isa << " block " << b;
            for (int j = 0; j < 32; ++j)
                EXPECT_EQ(got[b].qs[j], want[b].qs[j])
                    << k->isa << " block " << b << " value " << x[b * 32 + j];
        }
    }
}

// The same for Q8_K (256-value blocks; the codes, the scale and the group
// sums), with blocks whose largest magnitude appears twice with both signs
// (the first one sets the scale's sign), a subnormal maximum (an infinite
// inverse scale), and NaNs and infinities among the values.
TEST(ActivationFormats, EveryQ8_KQuantiserGivesTheReferencesCodes) {
    std::mt19937 rng(17);
    const float nan = std::numeric_limits<float>::quiet_NaN(),
                inf = std::numeric_limits<float>::infinity();
    std::vector<float> x;
    auto block = [&](auto value) {
        for (int j = 0; j < 256; ++j) x.push_back(value(j));
    };
    block([](int j) { return static_cast<float>(j % 255 - 127) + 0.5f; });  // ties at scale 1
    block([](int j) { return j == 9 ? -3.0f : j == 200 ? 3.0f : 0.25f * static_cast<float>(j % 13); });
    block([](int j) { return j == 40 ? 1e-40f : (j % 2 ? -1e-41f : 0.0f); });
    for (float special : {nan, inf, -inf, 0.0f})
        block([&](int j) { return j == 7 ? special : (j == 3 ? 0.0f : static_cast<float>(j) * 0.01f); });
    const auto more = random_floats(256 * 12, rng);
    x.insert(x.end(), more.begin(), more.end());
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<BlockQ8_K> want(static_cast<size_t>(n / 256)), got(want.size());
    quantize_row_q8_k(x.data(), want.data(), n);
    for (const DotKernels* k : fast_tables()) {
        ASSERT_NE(k->quantize_q8_k, nullptr) << k->isa;
        k->quantize_q8_k(x.data(), got.data(), n);
        for (size_t b = 0; b < want.size(); ++b) {
            EXPECT_EQ(std::bit_cast<uint32_t>(got[b].d), std::bit_cast<uint32_t>(want[b].d))
                << k->isa << " block " << b;
            for (int j = 0; j < 256; ++j)
                EXPECT_EQ(got[b].qs[j], want[b].qs[j])
                    << k->isa << " block " << b << " value " << x[b * 256 + j];
            for (int g = 0; g < 16; ++g)
                EXPECT_EQ(got[b].bsums[g], want[b].bsums[g]) << k->isa << " block " << b;
        }
    }
}

// `ActLayout::KLanes` holds Q8_K's values, each code where Q4_K_64 keeps the
// weight code it multiplies: element e's activation at qs[KLanes::position(e)]
// and its Q4_K_64 code in nibble r % 2 of code byte 64 (r / 2) + p, where
// position(e) = 64 r + p. A kernel reading the two layouts with one byte
// order then pairs every weight with its own activation.
TEST(ActivationFormats, KLanesPutsEachActivationWhereQ4_K_64PutsItsWeight) {
    std::mt19937 rng(19);
    const int64_t n = 512;
    const auto x = random_floats(n, rng);
    std::vector<BlockQ8_K> want(static_cast<size_t>(n / 256));
    quantize_row_q8_k(x.data(), want.data(), n);
    std::vector<uint8_t> got(ops::act_row_bytes(TensorType::Q8_K, ops::ActLayout::KLanes, n));
    ops::quantize_act(TensorType::Q8_K, x.data(), got.data(), n, ops::ActLayout::KLanes,
                      ops::scalar_dot_kernels());
    std::vector<bool> seen(256);
    for (int e = 0; e < 256; ++e) seen[static_cast<size_t>(ops::KLanes::position(e))] = true;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 256) << "positions are a permutation";
    for (size_t b = 0; b < want.size(); ++b) {
        const uint8_t* o = got.data() + b * ops::KLanes::kBytes;
        for (int e = 0; e < 256; ++e)
            EXPECT_EQ(static_cast<int8_t>(o[ops::KLanes::position(e)]), want[b].qs[e]) << b << " " << e;
        for (int j = 0; j < 8; ++j) {
            int32_t sum;
            std::memcpy(&sum, o + ops::KLanes::kSumsAt + 4 * j, 4);
            EXPECT_EQ(sum, want[b].bsums[2 * j] + want[b].bsums[2 * j + 1]) << b << " " << j;
        }
        float d;
        std::memcpy(&d, o + ops::KLanes::kScaleAt, 4);
        EXPECT_EQ(std::bit_cast<uint32_t>(d), std::bit_cast<uint32_t>(want[b].d));
    }
    // A group of four one-block Q4_K rows whose element e has code (7 e + 3 r) % 16
    // in row r (GGML: element 64 c + 32 h + l in nibble h of byte 32 c + l).
    std::vector<uint8_t> rows(4 * sizeof(BlockQ4_K));
    for (int r = 0; r < 4; ++r) {
        auto* blk = reinterpret_cast<BlockQ4_K*>(rows.data() + r * sizeof(BlockQ4_K));
        for (int e = 0; e < 256; ++e) {
            const int code = (7 * e + 3 * r) % 16, byte = 32 * (e / 64) + e % 32, h = e % 64 / 32;
            blk->qs[byte] = static_cast<uint8_t>((blk->qs[byte] & (h ? 0x0F : 0xF0)) | code << (4 * h));
        }
    }
    repack_rows(TensorType::Q4_K_64, rows.data(), 4, 256, sizeof(BlockQ4_K));
    const TensorView matrix{
        .type = TensorType::Q4_K_64, .ne = {256, 4, 1, 1}, .row_bytes = sizeof(BlockQ4_K), .data = rows.data()};
    for (int r = 0; r < 4; ++r) {
        for (int e = 0; e < 256; ++e) {
            const int pos = ops::KLanes::position(e), run = pos / 64;
            const uint8_t byte = matrix.row(r)[16 + 64 * (run / 2) + pos % 64];
            EXPECT_EQ((byte >> (4 * (run % 2))) & 15, (7 * e + 3 * r) % 16) << "row " << r << " element " << e;
        }
    }
}

TEST(ActivationFormats, Q8_1AndQ8_KCarryTheirSums) {
    std::mt19937 rng(4);
    const auto x = random_floats(512, rng);
    std::vector<BlockQ8_1> q1(16);
    quantize_row_q8_1(x.data(), q1.data(), 512);
    for (const auto& b : q1) {
        int sum = 0;
        for (int8_t q : b.qs) sum += q;
        EXPECT_NEAR(fp16_to_fp32(b.s), fp16_to_fp32(b.d) * sum,
                    1e-3 * std::fabs(fp16_to_fp32(b.d) * sum) + 1e-6);
    }
    std::vector<BlockQ8_K> qk(2);
    quantize_row_q8_k(x.data(), qk.data(), 512);
    std::vector<float> back(512);
    dequantize_row_q8_k(qk.data(), back.data(), 512);
    double err = 0, ref = 0;
    for (int i = 0; i < 512; ++i) {
        err += (back[i] - x[i]) * (back[i] - x[i]);
        ref += x[i] * x[i];
    }
    // 8-bit codes over a range of about 4 sigma: NMSE near (4/127)^2/12 ~ 1e-4.
    EXPECT_LT(err / ref, 3e-4);
    for (const auto& b : qk) {
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int j = 0; j < 16; ++j) sum += b.qs[16 * g + j];
            EXPECT_EQ(b.bsums[g], sum);
        }
    }
}

// A NaN or infinite activation must not reach an out-of-range float-to-int
// conversion (undefined behaviour that UBSan reports): its block gets code 0
// throughout, and the other blocks are untouched.
TEST(ActivationFormats, NonFiniteInputsGiveDefinedCodes) {
    std::vector<float> x(64, 0.5f);
    x[3] = std::numeric_limits<float>::infinity();
    x[7] = std::numeric_limits<float>::quiet_NaN();
    std::vector<BlockQ8_0> q(2);
    quantize_row_q8_0(x.data(), q.data(), 64);
    for (int8_t c : q[0].qs) EXPECT_EQ(c, 0);
    for (int8_t c : q[1].qs) EXPECT_EQ(c, 127);
}

// Q4_K takes the one-row kernel; MXFP4, on CPUs with the avx512vbmi table, the
// four-token kernel for 5 tokens and the four-weight-row kernel (with its
// leftover rows on the one-row kernel) for 2; Q8_0_R8 there the tile kernel
// (and a leftover token) for 5 and the row-group kernel for 2, with rows 20-23
// and 32-33, around the group 24-31, on the one-row kernel. The K-quant and
// IQ4_XS layouts of the AVX-512 tables take the four-token kernel (and a
// leftover token) for 5 and the four-row kernel over their interleaved groups
// for 2, rows 32-33 on the one-row kernel.
TEST(Matmul, RowsAndTokenIndicesMatchOneByOneDots) {
    for (TensorType type :
         {TensorType::Q4_K, TensorType::MXFP4, TensorType::Q8_0_R8, TensorType::Q4_K_64,
          TensorType::Q5_K_64, TensorType::Q3_K_64, TensorType::Q2_K_64, TensorType::IQ4_XS_64}) {
        std::mt19937 rng(5);
        const int64_t n = 512, rows = 40, n_tok = 5;
        std::vector<uint8_t> data;
        for (int64_t r = 0; r < rows; ++r) {
            const auto row = random_row(layout_source(type), n, rng);
            data.insert(data.end(), row.begin(), row.end());
        }
        if (type != layout_source(type))
            repack_rows(type, data.data(), rows, n, data.size() / rows);
        TensorView w{.name = "w",
                     .type = type,
                     .ne = {n, rows, 1, 1},
                     .row_bytes = data.size() / rows,
                     .data = data.data()};
        const auto x = random_floats(n * n_tok, rng);
        ThreadPool pool(2);
        std::vector<float> y(static_cast<size_t>(rows * n_tok));
        ops::matmul(w, 0, rows, x.data(), n, n_tok, y.data(), rows, pool);
        ops::PackedActs acts;
        ops::pack_acts(w.type, x.data(), n, n, n_tok, acts);
        const auto dot = ops::dot_kernels().dot[static_cast<size_t>(w.type)];
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t r = 0; r < rows; ++r)
                EXPECT_EQ(y[t * rows + r], dot(n, w.row(r), acts.row(t))) << type_name(type);
        }
        // A subset of rows and a permuted subset of tokens, written at an offset.
        const int32_t tokens[] = {4, 1};
        std::vector<float> z(2 * 14);
        ops::matmul_rows({.w = &w,
                          .row_begin = 20,
                          .row_end = 34,
                          .acts = &acts,
                          .tokens = tokens,
                          .n_tok = 2,
                          .y = z.data(),
                          .y_stride = 14,
                          .y_row0 = 20});
        for (int i = 0; i < 2; ++i) {
            for (int r = 0; r < 14; ++r)
                EXPECT_EQ(z[i * 14 + r], y[tokens[i] * rows + 20 + r]) << type_name(type);
        }
    }
}

// Several matrices of the same input in one region (a layer's Q, K and V): each
// target's rows equal what `matmul` alone gives it, to the bit, whether the
// targets share an activation format (two Q8_0) or not (Q4_K's Q8_K, MXFP4's
// Q8_0), and a row range not starting at 0 lands where `matmul` puts it.
TEST(Matmul, ManyTargetsGiveEachWhatItsOwnMatmulGives) {
    std::mt19937 rng(14);
    const int64_t n = 512, n_tok = 3;
    struct Matrix {
        std::vector<uint8_t> data;
        TensorView w;
    };
    auto matrix = [&](TensorType type, int64_t rows) {
        Matrix m;
        for (int64_t r = 0; r < rows; ++r) {
            const auto row = random_row(type, n, rng);
            m.data.insert(m.data.end(), row.begin(), row.end());
        }
        m.w = {.name = "w", .type = type, .ne = {n, rows, 1, 1}, .row_bytes = m.data.size() / rows};
        m.w.data = m.data.data();
        return m;
    };
    // More rows than one work item, and fewer.
    Matrix interleaved = matrix(TensorType::Q8_0, 80);  // from row 5: parts of groups
    repack_rows(TensorType::Q8_0_R8, interleaved.data.data(), 80, n, interleaved.w.row_bytes);
    interleaved.w.type = TensorType::Q8_0_R8;
    const Matrix mats[] = {matrix(TensorType::Q8_0, 150), matrix(TensorType::Q4_K, 40),
                           matrix(TensorType::Q8_0, 7), matrix(TensorType::MXFP4, 70),
                           std::move(interleaved)};
    const auto x = random_floats(n * n_tok, rng);
    ThreadPool pool(2);
    std::vector<std::vector<float>> want, got;
    std::vector<ops::MatmulTarget> targets;
    for (const Matrix& m : mats) {
        const int64_t row0 = m.w.ne[1] > 10 ? 5 : 0, n_out = m.w.ne[1] - row0;
        want.emplace_back(static_cast<size_t>(n_out * n_tok));
        got.emplace_back(want.back().size(), -1.0f);
        ops::matmul(m.w, row0, n_out, x.data(), n, n_tok, want.back().data(), n_out, pool);
        targets.push_back(
            {.w = &m.w, .row0 = row0, .n_out = n_out, .y = got.back().data(), .y_stride = n_out});
    }
    ops::matmul_many(targets, x.data(), n, n_tok, pool);
    for (size_t i = 0; i < targets.size(); ++i)
        EXPECT_EQ(std::memcmp(got[i].data(), want[i].data(), want[i].size() * sizeof(float)), 0)
            << "target " << i << " " << type_name(mats[i].w.type);
}

TEST(ThreadPool, EveryItemRunsOnceAndEveryThreadJoins) {
    ThreadPool pool(3);
    for (int round = 0; round < 500; ++round) {  // many short regions: the spin/sleep hand-over
        // Fewer items than threads too: a thread whose share is empty only steals.
        for (int64_t n : {2, 3, 101}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            pool.for_each_dynamic(n, [&](int64_t i) { hits[static_cast<size_t>(i)].fetch_add(1); });
            for (auto& h : hits) ASSERT_EQ(h.load(), 1) << n << " items";
        }
        std::atomic<int> threads{0};
        pool.run_on_all([&](int) { threads.fetch_add(1); });
        ASSERT_EQ(threads.load(), 3);
        std::atomic<int64_t> covered{0};
        pool.parallel_for(
            1000, [&](int64_t b, int64_t e) { covered.fetch_add(e - b); }, 10);
        ASSERT_EQ(covered.load(), 1000);
    }
}

// More items than a share's 24-bit bounds count go in rounds: each still once
// (the last share of a first round of 2^24 items would end at 2^24, one past
// what 24 bits hold).
TEST(ThreadPool, MoreItemsThanAShareCountsRunInRounds) {
    ThreadPool pool(2);
    const int64_t n = (int64_t{1} << 24) + 5;
    std::vector<uint8_t> hits(static_cast<size_t>(n), 0);  // each byte written by one thread
    pool.for_each_dynamic(n, [&](int64_t i) { ++hits[static_cast<size_t>(i)]; });
    EXPECT_EQ(std::count(hits.begin(), hits.end(), uint8_t{1}), n);
}

// for_each_dynamic's shares: every item once, however threads steal, and each
// thread's items mostly in a row (the point of shares). Each item busy-waits a
// few microseconds so that all three threads join in: from one shared counter,
// three busy threads would take about two thirds of their items after one
// another thread's (400 of 600 jumps); with shares a thread jumps only when it
// steals, a few times per halving of a share (well under 60).
TEST(ThreadPool, ThreadsTakeNeighbouringItemsAndStealTheRest) {
    ThreadPool pool(3);
    constexpr int64_t n = 600;
    for (int round = 0; round < 20; ++round) {
        std::vector<std::atomic<int>> hits(n);
        std::atomic<int> slot{0};
        thread_local int64_t last = -1;
        thread_local int mine = -1;
        std::vector<int> jumps(3, 0);
        pool.run_on_all([&](int) { mine = -1, last = -1; });
        pool.for_each_dynamic(n, [&](int64_t i) {
            if (mine < 0) mine = slot.fetch_add(1);
            if (i != last + 1) ++jumps[static_cast<size_t>(mine)];
            last = i;
            hits[static_cast<size_t>(i)].fetch_add(1);
            // Thread 0's items run slower, so that the others run out and steal.
            const auto until =
                std::chrono::steady_clock::now() + std::chrono::microseconds(i < n / 3 ? 20 : 5);
            while (std::chrono::steady_clock::now() < until) {
            }
        });
        for (auto& h : hits) ASSERT_EQ(h.load(), 1);
        EXPECT_LT(jumps[0] + jumps[1] + jumps[2], 60) << "round " << round;
    }
}

}  // namespace
}  // namespace strata
