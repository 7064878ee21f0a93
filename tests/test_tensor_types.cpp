// The tensor type table, the fp16/bf16 conversions and the block encoders and
// decoders of quants.cpp.
//
// Four kinds of evidence, from independent sources: hand-built blocks whose values
// are worked out here from the format definition; hashes of the reference
// implementation's own outputs on fixed inputs (bit-exactness for every type, not just
// the hand-built ones); statistical round-trip error bounds; and the real fixture
// models, whose tensors the reference quantised: they must decode to finite values,
// and re-encoding a decoded Q8_0 / Q4_0 / MXFP4 tensor must give back its exact bytes.

#include "gguf/file.h"
#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/quants.h"
#include "tensor/type.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace strata {
namespace {

// ------------------------------------------------------------------ type table

struct ExpectedSize {
    TensorType type;
    const char* name;
    int64_t block_size;
    size_t type_size;
};

// From the reference format's block structs (ggml-common.h), written out here rather
// than taken from blocks.h so a wrong struct or table entry cannot agree with itself.
// clang-format off
constexpr ExpectedSize kExpectedSizes[] = {
    {TensorType::F32, "F32", 1, 4},            {TensorType::F16, "F16", 1, 2},
    {TensorType::Q4_0, "Q4_0", 32, 18},        {TensorType::Q4_1, "Q4_1", 32, 20},
    {TensorType::Q5_0, "Q5_0", 32, 22},        {TensorType::Q5_1, "Q5_1", 32, 24},
    {TensorType::Q8_0, "Q8_0", 32, 34},        {TensorType::Q8_1, "Q8_1", 32, 36},
    {TensorType::Q2_K, "Q2_K", 256, 84},       {TensorType::Q3_K, "Q3_K", 256, 110},
    {TensorType::Q4_K, "Q4_K", 256, 144},      {TensorType::Q5_K, "Q5_K", 256, 176},
    {TensorType::Q6_K, "Q6_K", 256, 210},      {TensorType::Q8_K, "Q8_K", 256, 292},
    {TensorType::IQ2_XXS, "IQ2_XXS", 256, 66}, {TensorType::IQ2_XS, "IQ2_XS", 256, 74},
    {TensorType::IQ3_XXS, "IQ3_XXS", 256, 98}, {TensorType::IQ1_S, "IQ1_S", 256, 50},
    {TensorType::IQ4_NL, "IQ4_NL", 32, 18},    {TensorType::IQ3_S, "IQ3_S", 256, 110},
    {TensorType::IQ2_S, "IQ2_S", 256, 82},     {TensorType::IQ4_XS, "IQ4_XS", 256, 136},
    {TensorType::I8, "I8", 1, 1},              {TensorType::I16, "I16", 1, 2},
    {TensorType::I32, "I32", 1, 4},            {TensorType::I64, "I64", 1, 8},
    {TensorType::F64, "F64", 1, 8},            {TensorType::IQ1_M, "IQ1_M", 256, 56},
    {TensorType::BF16, "BF16", 1, 2},          {TensorType::TQ1_0, "TQ1_0", 256, 54},
    {TensorType::TQ2_0, "TQ2_0", 256, 66},     {TensorType::MXFP4, "MXFP4", 32, 17},
};
// clang-format on

TEST(TensorTypes, EveryTypeHasTheReferenceSizeAndName) {
    for (const ExpectedSize& e : kExpectedSizes) {
        const TypeTraits* t = type_traits(static_cast<uint32_t>(e.type));
        ASSERT_NE(t, nullptr) << e.name;
        EXPECT_EQ(t->type, e.type) << e.name;
        EXPECT_STREQ(t->name, e.name);
        EXPECT_EQ(t->block_size, e.block_size) << e.name;
        EXPECT_EQ(t->type_size, e.type_size) << e.name;
        EXPECT_EQ(type_name(e.type), std::string(e.name));
    }
}

TEST(TensorTypes, UnknownIdsHaveNoTraits) {
    // The retired ids (Q4_2, Q4_3, the old Q4_0_4_4 family, ...), the first id past the
    // table, and ids far outside it.
    for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 41u, 1000u, 0xFFFFFFFFu}) {
        EXPECT_EQ(type_traits(id), nullptr) << id;
    }
    // And every id below 40 not in the expected list.
    for (uint32_t id = 0; id < 40; ++id) {
        const bool known = std::any_of(
            std::begin(kExpectedSizes), std::end(kExpectedSizes),
            [id](const ExpectedSize& e) { return static_cast<uint32_t>(e.type) == id; });
        EXPECT_EQ(type_traits(id) != nullptr, known) << id;
    }
}

TEST(TensorTypes, NamesAreCaseInsensitive) {
    EXPECT_EQ(type_from_name("Q4_K"), TensorType::Q4_K);
    EXPECT_EQ(type_from_name("q4_k"), TensorType::Q4_K);
    EXPECT_EQ(type_from_name("mxfp4"), TensorType::MXFP4);
    EXPECT_EQ(type_from_name("MxFp4"), TensorType::MXFP4);
    EXPECT_EQ(type_from_name("bf16"), TensorType::BF16);
    EXPECT_EQ(type_from_name("iq4_xs"), TensorType::IQ4_XS);
    EXPECT_EQ(type_from_name("Q4_2"), std::nullopt);
    EXPECT_EQ(type_from_name(""), std::nullopt);
    EXPECT_EQ(type_from_name("Q4_K "), std::nullopt);  // no trimming: names match exactly
    EXPECT_EQ(type_from_name("Q4_"), std::nullopt);    // no prefix matching
    for (const ExpectedSize& e : kExpectedSizes)
        EXPECT_EQ(type_from_name(e.name), e.type) << e.name;
}

TEST(TensorTypes, TypeBytesCountsWholeBlocksAndRejectsTheRest) {
    EXPECT_EQ(*type_bytes(TensorType::Q4_K, 512), 288u);
    EXPECT_EQ(*type_bytes(TensorType::MXFP4, 64), 34u);
    EXPECT_EQ(*type_bytes(TensorType::Q8_0, 32 * 1000), 34000u);
    EXPECT_EQ(*type_bytes(TensorType::F32, 3), 12u);
    EXPECT_EQ(*type_bytes(TensorType::Q6_K, 0), 0u);

    auto partial = type_bytes(TensorType::Q4_K, 100);
    ASSERT_FALSE(partial.ok());
    EXPECT_NE(partial.error().message.find("Q4_K"), std::string::npos) << partial.error().message;
    EXPECT_FALSE(type_bytes(TensorType::Q8_0, 33).ok());
    EXPECT_FALSE(type_bytes(TensorType::MXFP4, 31).ok());

    // 2^62 floats are 2^64 bytes, one past the largest u64; one element fewer fits.
    const uint64_t n = uint64_t{1} << 62;
    auto overflow = type_bytes(TensorType::F32, n);
    ASSERT_FALSE(overflow.ok());
    EXPECT_NE(overflow.error().message.find("overflow"), std::string::npos)
        << overflow.error().message;
    EXPECT_EQ(*type_bytes(TensorType::F32, n - 1), std::numeric_limits<uint64_t>::max() - 3);
    EXPECT_FALSE(type_bytes(TensorType::F64, uint64_t{1} << 61).ok());
}

TEST(TensorTypes, CodecsArePresentWhereStrataImplementsThem) {
    const TensorType decodable[] = {TensorType::F32,    TensorType::F16,  TensorType::BF16,
                                    TensorType::Q4_0,   TensorType::Q4_1, TensorType::Q5_0,
                                    TensorType::Q5_1,   TensorType::Q8_0, TensorType::Q2_K,
                                    TensorType::Q3_K,   TensorType::Q4_K, TensorType::Q5_K,
                                    TensorType::Q6_K,   TensorType::Q8_K, TensorType::IQ4_NL,
                                    TensorType::IQ4_XS, TensorType::MXFP4};
    for (TensorType t : decodable) EXPECT_NE(type_traits(t).dequantize, nullptr) << type_name(t);
    // Every stored type strata decodes, except Q8_K (an activation format only).
    const TensorType encodable[] = {
        TensorType::F32,  TensorType::F16,    TensorType::BF16,   TensorType::Q4_0,
        TensorType::Q4_1, TensorType::Q5_0,   TensorType::Q5_1,   TensorType::Q8_0,
        TensorType::Q2_K, TensorType::Q3_K,   TensorType::Q4_K,   TensorType::Q5_K,
        TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::MXFP4};
    for (TensorType t : encodable) EXPECT_NE(type_traits(t).quantize, nullptr) << type_name(t);
}

// ------------------------------------------------------------------ fp16 / bf16

bool is_half_nan(uint16_t h) {
    return (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
}

TEST(Fp16, KnownBitPatterns) {
    EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
    EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
    EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
    EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
    EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);    // the largest half
    EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7BFF);  // just below the halfway point to 2^16
    EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);    // halfway: ties to even, which is 2^16 = inf
    EXPECT_EQ(fp32_to_fp16(-1e9f), 0xFC00);
    EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
    EXPECT_EQ(fp32_to_fp16(0x1p-14f), 0x0400);  // the smallest normal
    EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001);  // the smallest subnormal
    EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000);  // halfway between 0 and 2^-24: to even, 0
    EXPECT_EQ(fp32_to_fp16(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
    EXPECT_EQ(fp32_to_fp16(3 * 0x1p-25f), 0x0002);         // halfway between 1 and 2 units: to 2
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3C00);      // halfway between 0x3C00 and 0x3C01
    EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);  // halfway between 0x3C01 and 0x3C02
    EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f + 0x1p-23f), 0x3C01);  // just past halfway
    EXPECT_EQ(fp32_to_fp16(0x1.ffcp-15f),
              0x0400);  // the largest subnormal's upper tie carries to 2^-14
    EXPECT_TRUE(is_half_nan(fp32_to_fp16(std::numeric_limits<float>::quiet_NaN())));
    EXPECT_TRUE(is_half_nan(
        fp32_to_fp16(std::bit_cast<float>(0x7F800001u))));  // a payload lost to truncation
    EXPECT_TRUE(is_half_nan(fp32_to_fp16(-std::numeric_limits<float>::quiet_NaN())));

    EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
    EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
    EXPECT_EQ(fp16_to_fp32(0x0001), 0x1p-24f);
    EXPECT_EQ(fp16_to_fp32(0x03FF), 0x1.ff8p-15f);  // the largest subnormal
    EXPECT_EQ(fp16_to_fp32(0x3555), 0x1.554p-2f);   // ~1/3
    EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
    EXPECT_TRUE(std::isnan(fp16_to_fp32(0xFC01)));
}

TEST(Fp16, EveryHalfRoundTripsThroughFloat) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const auto bits = static_cast<uint16_t>(h);
        const float f = fp16_to_fp32(bits);
        if (is_half_nan(bits)) {
            EXPECT_TRUE(std::isnan(f)) << h;
            continue;
        }
        ASSERT_EQ(fp32_to_fp16(f), bits) << "half 0x" << std::hex << h;
    }
}

// float -> half against an oracle that knows nothing of bit tricks: the sorted list of
// every finite half, the nearest one found by search, ties broken toward the even bit
// pattern. Checked on every midpoint between neighbouring halves and its two float
// neighbours (where rounding decisions happen) and on random floats across the range.
TEST(Fp16, FloatToHalfRoundsToNearestEven) {
    std::vector<double> halves;  // halves[h] = value of bit pattern h, for 0..0x7BFF
    for (uint32_t h = 0; h <= 0x7BFF; ++h) halves.push_back(fp16_to_fp32(static_cast<uint16_t>(h)));
    ASSERT_TRUE(std::is_sorted(halves.begin(), halves.end()));
    auto oracle = [&](float f) -> uint16_t {
        const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
        const double a = std::fabs(static_cast<double>(f));
        // Past 65504 the next representable step would be 65536 (infinity), and the
        // tie point between them is 65520.
        if (a >= 65520.0) return sign | 0x7C00;
        const auto hi =
            static_cast<size_t>(std::lower_bound(halves.begin(), halves.end(), a) - halves.begin());
        if (hi == halves.size()) return sign | 0x7BFF;  // in (65504, 65520)
        if (hi == 0 || halves[hi] == a) return static_cast<uint16_t>(sign | hi);
        const size_t lo = hi - 1;
        const double dlo = a - halves[lo], dhi = halves[hi] - a;
        const size_t pick = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);
        return static_cast<uint16_t>(sign | pick);
    };
    auto check = [&](float f) { ASSERT_EQ(fp32_to_fp16(f), oracle(f)) << std::hexfloat << f; };
    for (size_t h = 0; h + 1 < halves.size(); ++h) {
        const auto mid =
            static_cast<float>((halves[h] + halves[h + 1]) / 2);  // exact: one more bit
        for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
            check(f);
            check(-f);
        }
    }
    std::mt19937 rng(7);
    for (int i = 0; i < 200000; ++i) {
        // Exponents from well below the subnormal range to past the largest half.
        const auto exponent = static_cast<uint32_t>(90 + rng() % 60);
        const float f =
            std::bit_cast<float>((static_cast<uint32_t>(rng()) & 0x807FFFFFu) | (exponent << 23));
        check(f);
    }
}

TEST(Fp16, Bf16KnownPatternsAndRoundTrip) {
    EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
    EXPECT_EQ(fp32_to_bf16(-2.0f), 0xC000);
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, kept part even
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, kept part odd: up
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);  // past the tie
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x3F807FFFu)), 0x3F80);
    EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds up to infinity
    EXPECT_EQ(fp32_to_bf16(std::bit_cast<float>(0x00000001u)),
              0x0000);  // smallest subnormal: to zero
    // A signalling NaN whose payload sits in the dropped bits must stay a NaN.
    const uint16_t nan = fp32_to_bf16(std::bit_cast<float>(0x7F800001u));
    EXPECT_EQ(nan & 0x7F80, 0x7F80);
    EXPECT_NE(nan & 0x007F, 0);
    EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
    EXPECT_EQ(bf16_to_fp32(0xC040), -3.0f);
    for (uint32_t h = 0; h < 65536; ++h) {
        const auto bits = static_cast<uint16_t>(h);
        const float f = bf16_to_fp32(bits);
        if (std::isnan(f)) continue;
        ASSERT_EQ(fp32_to_bf16(f), bits) << h;
    }
}

// ------------------------------------------------------------------ hand-built blocks
//
// Each test fills a block's fields by hand, with values chosen to reach every code and
// the scale packing's awkward corners, and states each element's value from the
// format definition. All expected values are small integers times powers of two, so
// they are exact in float and compared with ==.

std::vector<float> decode(TensorType t, const void* block, int64_t n) {
    std::vector<float> y(static_cast<size_t>(n));
    type_traits(t).dequantize(block, y.data(), n);
    return y;
}

TEST(QuantBlocks, Q4_0) {
    BlockQ4_0 b{};
    b.d = 0x3800;  // 0.5
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    const auto y = decode(TensorType::Q4_0, &b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], (j - 8) * 0.5f) << j;            // low nibble: element j
        EXPECT_EQ(y[j + 16], (15 - j - 8) * 0.5f) << j;  // high nibble: element j + 16
    }
}

TEST(QuantBlocks, Q8_0) {
    BlockQ8_0 b[2]{};
    b[0].d = 0x3400;  // 0.25
    b[1].d = 0xC000;  // -2: a negative scale just flips signs
    for (int j = 0; j < 32; ++j) {
        b[0].qs[j] = static_cast<int8_t>(-128 + 8 * j);
        b[1].qs[j] = static_cast<int8_t>(127 - j);
    }
    const auto y = decode(TensorType::Q8_0, b, 64);
    for (int j = 0; j < 32; ++j) {
        EXPECT_EQ(y[j], (-128 + 8 * j) * 0.25f) << j;
        EXPECT_EQ(y[32 + j], (127 - j) * -2.0f) << j;
    }
}

TEST(QuantBlocks, Q4_K) {
    // Scales and minimums of the eight 32-element sub-blocks, using all six bits so the
    // split storage of sub-blocks 4..7 (low nibble in bytes 8..11, top two bits in the
    // spare top bits of bytes 0..7) is exercised.
    const int sc[8] = {1, 2, 63, 4, 17, 33, 48, 63};
    const int mn[8] = {0, 5, 10, 63, 16, 31, 47, 62};
    BlockQ4_K b{};
    b.d = 0x3C00;     // 1.0
    b.dmin = 0x3800;  // 0.5
    for (int j = 0; j < 4; ++j) {
        b.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
        b.scales[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
        b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
    auto code = [](int e) { return (7 * e + e / 32) % 16; };
    // Element 64 c + l is the low nibble of qs[32 c + l], element 64 c + 32 + l the high.
    for (int c = 0; c < 4; ++c) {
        for (int l = 0; l < 32; ++l)
            b.qs[32 * c + l] =
                static_cast<uint8_t>(code(64 * c + l) | (code(64 * c + 32 + l) << 4));
    }
    const auto y = decode(TensorType::Q4_K, &b, 256);
    for (int e = 0; e < 256; ++e) {
        const int s = e / 32;
        EXPECT_EQ(y[e], 1.0f * sc[s] * code(e) - 0.5f * mn[s]) << e;
    }
}

TEST(QuantBlocks, Q6_K) {
    BlockQ6_K b{};
    b.d = 0x3000;  // 0.125
    int sc[16];
    for (int s = 0; s < 16; ++s) sc[s] = (s % 2 ? -1 : 1) * (8 * s + 1);
    sc[14] = 127;
    sc[15] = -128;  // the int8 extremes
    for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(sc[s]);
    auto code = [](int e) { return (5 * e + 3) % 64; };  // 6-bit, value = code - 32
    // Element 128 c + 32 k + l: low four bits in ql[64 c + 32 (k % 2) + l] (low nibble
    // for k < 2, high for k >= 2), top two bits in bits 2k..2k+1 of qh[32 c + l].
    for (int e = 0; e < 256; ++e) {
        const int c = e / 128, k = (e % 128) / 32, l = e % 32;
        b.ql[64 * c + 32 * (k % 2) + l] |= static_cast<uint8_t>((code(e) & 0xF) << (4 * (k / 2)));
        b.qh[32 * c + l] |= static_cast<uint8_t>((code(e) >> 4) << (2 * k));
    }
    const auto y = decode(TensorType::Q6_K, &b, 256);
    for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.125f * sc[e / 16] * (code(e) - 32)) << e;
}

TEST(QuantBlocks, Q3_K) {
    BlockQ3_K b{};
    b.d = 0x3800;  // 0.5
    int sc[16];    // stored 6-bit, value = stored - 32
    for (int s = 0; s < 16; ++s) sc[s] = (11 * s + 5) % 64;
    sc[0] = 0;   // -32
    sc[1] = 63;  // +31
    // Low four bits: nibble (s / 8) of byte s % 8; top two bits: pair s / 4 of byte 8 + s % 4.
    for (int s = 0; s < 16; ++s) {
        b.scales[s % 8] |= static_cast<uint8_t>((sc[s] & 0xF) << (4 * (s / 8)));
        b.scales[8 + s % 4] |= static_cast<uint8_t>((sc[s] >> 4) << (2 * (s / 4)));
    }
    auto code = [](int e) { return (3 * e + e / 16) % 8; };  // 3-bit, value = code - 4
    // Element 128 c + 32 k + l: two low bits at bits 2k of qs[32 c + l], high bit at bit
    // 4 c + k of hmask[l].
    for (int e = 0; e < 256; ++e) {
        const int c = e / 128, k = (e % 128) / 32, l = e % 32;
        b.qs[32 * c + l] |= static_cast<uint8_t>((code(e) & 3) << (2 * k));
        b.hmask[l] |= static_cast<uint8_t>((code(e) >> 2) << (4 * c + k));
    }
    const auto y = decode(TensorType::Q3_K, &b, 256);
    for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.5f * (sc[e / 16] - 32) * (code(e) - 4)) << e;
}

TEST(QuantBlocks, MXFP4) {
    // E2M1: sign in bit 3, then 0, 0.5, 1, 1.5, 2, 3, 4, 6.
    const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
    // Shared scales 2^(e - 127): 1, 8, and the two whose halves are f32 subnormals.
    const uint8_t exps[4] = {127, 130, 1, 0};
    BlockMXFP4 b[4]{};
    for (int i = 0; i < 4; ++i) {
        b[i].e = exps[i];
        for (int j = 0; j < 16; ++j) b[i].qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    }
    const auto y = decode(TensorType::MXFP4, b, 128);
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 16; ++j) {
            const int ex = exps[i] - 127;
            EXPECT_EQ(y[32 * i + j], std::ldexp(e2m1[j], ex)) << i << " " << j;
            EXPECT_EQ(y[32 * i + j + 16], std::ldexp(e2m1[15 - j], ex)) << i << " " << j;
        }
    }
}

TEST(QuantBlocks, IQ4_NL) {
    // The IQ4_NL code book, from the format's definition.
    const int book[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    BlockIQ4_NL b{};
    b.d = 0xB400;  // -0.25
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(((j * 7) % 16) | (j << 4));
    const auto y = decode(TensorType::IQ4_NL, &b, 32);
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(y[j], -0.25f * book[(j * 7) % 16]) << j;
        EXPECT_EQ(y[j + 16], -0.25f * book[j]) << j;
    }
}

// The two simple encoders settle exact halves differently, and models made by the
// reference depend on it: Q8_0 uses `roundf` (halves away from zero), Q4_0 truncates
// `x / d + 8.5` (halves toward +infinity in units of d). Blocks whose maximum makes
// |d| exactly 1 put the inputs on exact ties.
TEST(QuantBlocks, SimpleEncodersRoundHalvesLikeTheReference) {
    float x8[32] = {127, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f, 126.5f};
    BlockQ8_0 q8{};
    type_traits(TensorType::Q8_0).quantize(x8, &q8, 32);
    EXPECT_EQ(q8.d, 0x3C00);  // 127 / 127
    const int want8[7] = {127, 3, -3, 4, 1, -1, 127};
    for (int j = 0; j < 7; ++j) EXPECT_EQ(q8.qs[j], want8[j]) << j;

    // The element of largest magnitude fixes d = max / -8: here -8 gives d = 1 and
    // 8 gives d = -1, which flips which way a tie goes in value terms.
    float x4[64] = {-8, 2.5f, -2.5f, 0.5f, -0.5f, 6.5f, 7.5f};
    x4[32] = 8;
    x4[33] = 2.5f;
    x4[34] = -2.5f;
    BlockQ4_0 q4[2]{};
    type_traits(TensorType::Q4_0).quantize(x4, q4, 64);
    EXPECT_EQ(q4[0].d, 0x3C00);
    EXPECT_EQ(q4[1].d, 0xBC00);
    // Codes are value / d + 8; 7.5 would be 16 and clips to 15.
    const int want4[7] = {0, 11, 6, 9, 8, 15, 15};
    for (int j = 0; j < 7; ++j) EXPECT_EQ(q4[0].qs[j] & 0xF, want4[j]) << j;
    EXPECT_EQ(q4[1].qs[0] & 0xF, 0);   //  8 / -1 + 8.5 = 0.5
    EXPECT_EQ(q4[1].qs[1] & 0xF, 6);   //  2.5 / -1 + 8.5 = 6
    EXPECT_EQ(q4[1].qs[2] & 0xF, 11);  // -2.5 / -1 + 8.5 = 11
}

// ------------------------------------------------------------------ reference hashes
//
// Bit-exactness with the reference for every type, including those without a
// hand-built test. The hashes below were produced by the reference implementation
// itself (ggml's dequantize_row_* / quantize_row_*_ref and its fp16/bf16 row
// converters, from the llama.cpp build that node-llama-cpp 3.22.1 ships), run on the
// inputs these generators make. A single differing bit anywhere changes the hash. To
// regenerate after a deliberate change, link a program that runs these generators
// through the reference functions against that build's libggml-base.

// SplitMix64: fully specified, so the inputs are identical on every platform and
// standard library (the <random> distributions are not).
struct SplitMix64 {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in [0, 1) with 24 random bits: exact in float.
    float uniform() { return static_cast<float>(next() >> 40) * 0x1p-24f; }
};

std::vector<uint8_t> golden_bytes(size_t n, uint64_t seed) {
    SplitMix64 rng{seed};
    std::vector<uint8_t> bytes(n);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng.next() >> 56);
    return bytes;
}

// Blocks of varied character: bell-shaped (a sum of four uniforms), one-signed,
// integer grids full of rounding ties, a lone spike, and all zeros, each scaled by a
// power of two from 2^-30 to 2^12 so the scale fields' rounding and subnormal paths
// are reached. Every operation is exact, so no libm is involved.
std::vector<float> golden_floats(int64_t n, int64_t block, uint64_t seed) {
    SplitMix64 rng{seed};
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t b = 0; b < n / block; ++b) {
        const float scale = std::ldexp(1.0f, static_cast<int>(rng.next() % 43) - 30);
        const int kind = static_cast<int>(b % 6);
        for (int64_t j = 0; j < block; ++j) {
            float v = 0;
            switch (kind) {
                case 0:
                case 1:
                    v = rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0f;
                    break;
                case 2:
                    v = rng.uniform();
                    break;
                case 3:
                    v = static_cast<float>(static_cast<int>(rng.next() % 33) - 16) * 0.25f;
                    break;
                case 4:
                    v = j == 7 ? -3.0f : 0.01f * rng.uniform();
                    break;
                case 5:
                    v = (b / 6) % 2 ? 0.0f : rng.uniform() - 0.5f;
                    break;
            }
            x[static_cast<size_t>(b * block + j)] = v * scale;
        }
    }
    return x;
}

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xCBF29CE484222325ull) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

// NaNs are folded to one pattern: random scale bits make some, and only "is a NaN" is
// part of the contract, not the payload.
uint64_t hash_floats(const std::vector<float>& y) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (float v : y) {
        const uint32_t bits = std::isnan(v) ? 0x7FC00000u : std::bit_cast<uint32_t>(v);
        h = fnv1a(&bits, 4, h);
    }
    return h;
}

struct GoldenHash {
    TensorType type;
    uint64_t hash;
};

// Random bytes decoded: every code and every scale bit pattern, infinities and NaNs
// in the half scales included.
TEST(QuantGolden, DecodersMatchTheReferenceBitForBit) {
    const GoldenHash golden[] = {
        {TensorType::F16, 0x6c8942195b9fe7d4ull},    {TensorType::BF16, 0xa6af50885376ef2full},
        {TensorType::Q4_0, 0x3293a42352a24ec6ull},   {TensorType::Q4_1, 0x8a66631f5c215474ull},
        {TensorType::Q5_0, 0x13e720860d255cddull},   {TensorType::Q5_1, 0xcf0297f014b33f7bull},
        {TensorType::Q8_0, 0x6a0b7fb26f37b02bull},   {TensorType::Q2_K, 0xb991186483193a26ull},
        {TensorType::Q3_K, 0x46a001cf8bc10036ull},   {TensorType::Q4_K, 0x055690d30e79c6a2ull},
        {TensorType::Q5_K, 0xcba7ad7436d83c18ull},   {TensorType::Q6_K, 0x640f5fda0eb11f3aull},
        {TensorType::Q8_K, 0x2b0924634ce824d7ull},   {TensorType::IQ4_NL, 0xc822a496e72f3803ull},
        {TensorType::IQ4_XS, 0x0b6652d301412a93ull}, {TensorType::MXFP4, 0x934096a56f2b9a4bull},
    };
    const int64_t n = 64 * 256;
    for (const GoldenHash& g : golden) {
        const TypeTraits& t = type_traits(g.type);
        const auto bytes = golden_bytes(static_cast<size_t>(n / t.block_size) * t.type_size, 1);
        std::vector<float> y(n);
        t.dequantize(bytes.data(), y.data(), n);
        EXPECT_EQ(hash_floats(y), g.hash) << t.name;
    }
}

TEST(QuantGolden, EncodersMatchTheReferenceBitForBit) {
    const GoldenHash golden[] = {
        {TensorType::F16, 0x1a4d1c815b63ea25ull},    {TensorType::BF16, 0xe47876ec259fd0f5ull},
        {TensorType::Q4_0, 0x34cdd188503b3e09ull},   {TensorType::Q8_0, 0x432b2552777f8c98ull},
        {TensorType::Q4_K, 0x3d7230d496c2dac2ull},   {TensorType::Q6_K, 0x404a98bfcf4d336aull},
        {TensorType::MXFP4, 0xdaaf25f3bb9ca21bull},  {TensorType::Q4_1, 0x4472f8ba9976365cull},
        {TensorType::Q5_0, 0x38ab48073c577e15ull},   {TensorType::Q5_1, 0xd28e84a18d5ae581ull},
        {TensorType::Q2_K, 0x676e735ad3270c5bull},   {TensorType::Q3_K, 0xd61a4e9b43d7f627ull},
        {TensorType::Q5_K, 0x57d6b3213a405b92ull},   {TensorType::IQ4_NL, 0xd9c519f24c95eb0full},
        {TensorType::IQ4_XS, 0x2a957ad8e8580657ull},
    };
    const int64_t n = 256 * 256;
    const auto x = golden_floats(n, 256, 2);
    for (const GoldenHash& g : golden) {
        const TypeTraits& t = type_traits(g.type);
        std::vector<uint8_t> out(static_cast<size_t>(n / t.block_size) * t.type_size);
        t.quantize(x.data(), out.data(), n);
        EXPECT_EQ(fnv1a(out.data(), out.size()), g.hash) << t.name;
    }
}

// ------------------------------------------------------------------ round trips

// Normalised mean squared error: sum (x - y)^2 / sum x^2.
double nmse(const std::vector<float>& x, const std::vector<float>& y) {
    double err = 0, ref = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        err += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
        ref += static_cast<double>(x[i]) * x[i];
    }
    return err / ref;
}

std::vector<float> round_trip(TensorType type, const std::vector<float>& x) {
    const TypeTraits& t = type_traits(type);
    const auto n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> q(static_cast<size_t>(n / t.block_size) * t.type_size);
    t.quantize(x.data(), q.data(), n);
    std::vector<float> y(x.size());
    t.dequantize(q.data(), y.data(), n);
    return y;
}

// Standard-normal data, the shape of most weight matrices, through each encoder and
// back. Measured NMSE on 2^18 samples (seeds 42, 43 and 1234 agree to 1%):
//   F16 4.3e-8, BF16 2.8e-6, Q8_0 2.9e-5, Q6_K 3.1e-4, Q5_K 1.31e-3, Q5_1 1.43e-3,
//   Q5_0 1.83e-3, Q4_K 5.1e-3, IQ4_XS 5.9e-3, Q4_1 6.1e-3, IQ4_NL 6.2e-3,
//   Q4_0 7.4e-3, MXFP4 1.33e-2, Q3_K 2.27e-2, Q2_K 8.8e-2.
// Each bound is about 1.5-2x the measurement, so it holds for any seed and standard
// library, while a bug that costs one bit of precision (4x the error), a wrong scale,
// or a misplaced code fails. The comments give the back-of-envelope model that says
// the measurement itself is what the format should achieve.
TEST(QuantRoundTrip, NormalDataStaysWithinTheFormatsError) {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(1 << 18);
    for (float& v : x) v = normal(rng);

    struct Bound {
        TensorType type;
        double max_nmse;
    };
    const Bound bounds[] = {
        // 11 significant bits, round to nearest: the error is uniform within half a
        // unit in the last place, E[err^2] / x^2 = 2^-22 / 3 / m^2 for mantissa m in
        // [1, 2), between 2.0e-8 and 7.9e-8; 1e-7 is past the worst case.
        {TensorType::F16, 1e-7},
        // 8 significant bits: the same model gives 2^-16 / 3 / m^2, at most 5.1e-6.
        {TensorType::BF16, 5e-6},
        // Step d = amax / 127, amax of 32 normals ~ 2.1 sigma: uniform rounding noise
        // d^2 / 12 = 2.3e-5 (blocks with an outlier have coarser steps).
        {TensorType::Q8_0, 5e-5},
        // 16-element sub-blocks, step ~ amax / 32 with amax ~ 1.8 sigma: d^2 / 12 =
        // 2.6e-4, a little more for the 8-bit rounding of the sub-block scales.
        {TensorType::Q6_K, 5e-4},
        // 32-element sub-blocks with scale and offset: step = range / 15, range ~ 4.1
        // sigma, so d^2 / 12 = 6.2e-3; the fitted scale and offset do better.
        {TensorType::Q4_K, 7.5e-3},
        // Step = amax / 8, amax ~ 2.1 sigma: d^2 / 12 = 5.7e-3, plus clipping at +7 d
        // on the side opposite the maximum.
        {TensorType::Q4_0, 1.1e-2},
        // E2M1 has only 0.5, 1, 1.5, 2, 3, 4, 6 (times a power of two), i.e. relative
        // steps of up to 1/3 for the large values, and the scale is a power of two, so
        // this is the coarsest format here.
        {TensorType::MXFP4, 2e-2},
        // Step = amax / 16, amax ~ 2.1 sigma: d^2 / 12 = 1.4e-3, plus Q4_0's clipping.
        {TensorType::Q5_0, 3e-3},
        // Step = range / 15 and range / 31 from the block's minimum, range ~ 4.1
        // sigma: 6.2e-3 and 1.46e-3.
        {TensorType::Q4_1, 9e-3},
        {TensorType::Q5_1, 2.2e-3},
        // Q4_K's fit with 31 steps: at most the 1.46e-3 of the plain range.
        {TensorType::Q5_K, 2e-3},
        // 16 table values, 13 to 25 (times amax / 127) apart near zero and wider
        // outside: about Q4_0's error, with a least-squares scale per 32 elements.
        {TensorType::IQ4_NL, 9e-3},
        {TensorType::IQ4_XS, 9e-3},
        // 16-element sub-blocks with codes -4..3: step = amax / 4, amax ~ 1.8 sigma,
        // so d^2 / 12 = 1.7e-2, plus clipping at +3 d.
        {TensorType::Q3_K, 3.5e-2},
        // Codes 0..3 over a 16-element range of ~3.5 sigma: (3.5 / 3)^2 / 12 = 0.11;
        // the fitted scale and minimum do better.
        {TensorType::Q2_K, 0.13},
    };
    for (const Bound& b : bounds) {
        const double e = nmse(x, round_trip(b.type, x));
        EXPECT_LT(e, b.max_nmse) << type_name(b.type);
        // Not suspiciously good either: every one of these formats must lose something
        // on random data, so an encoder that silently stored something else (or a
        // test that compared the input with itself) fails here.
        EXPECT_GT(e, b.max_nmse / 10) << type_name(b.type);
    }
    EXPECT_EQ(round_trip(TensorType::F32, x), x);
}

// Degenerate blocks: all zeros must decode to exact zeros (no 0 * inf or 0/0 from a
// zero scale), and a block that is zero but for one spike must keep the spike's sign
// and size and decode the zeros as (near) zero.
TEST(QuantRoundTrip, ZeroAndSpikeBlocks) {
    struct Case {
        TensorType type;
        // How far the spike, its block's largest magnitude, may move. 37.5 has few
        // significant bits, so F16, BF16 and Q4_0 (d = 37.5 / 8) keep it exactly;
        // Q8_0 and the K-quants store a scale derived from it as an fp16, off by up
        // to 2^-11 = 4.9e-4 relative (measured 3.7e-4, 3.9e-5, 2.3e-4). MXFP4's
        // power-of-two scale leaves 37.5 between 32 and 48, and it becomes 32.
        float spike_rel;
        // Q4_K is the one format whose zeros need not decode to exactly zero: they
        // become `d * sc * 15 - dmin * m`, two ~37.5-sized terms each rounded to fp16,
        // so up to 2 * 37.5 * 2^-11 = 0.037 apart (measured 0.0077).
        float zero_abs;
    };
    const Case cases[] = {
        {TensorType::F16, 0, 0},
        {TensorType::BF16, 0, 0},
        {TensorType::Q4_0, 0, 0},
        {TensorType::Q8_0, 1e-3f, 0},
        {TensorType::Q4_K, 1e-3f, 0.05f},
        {TensorType::Q6_K, 1e-3f, 0},
        {TensorType::MXFP4, 0.15f, 0},
        // The spike is the minimum Q4_1 and Q5_1 store as is, or Q5_0's -16 d with d =
        // 37.5 / 16 exact in fp16; 37.5 / 15 is exact too, so Q4_1's zeros (15 d + m)
        // are, but Q5_1's 31 d + m carries fp16's 2^-11 of 37.5 (0.018; measured
        // 0.0088). Q2_K and Q5_K round as Q4_K (measured 0.0073, 0.0096).
        {TensorType::Q4_1, 0, 0},
        {TensorType::Q5_0, 0, 0},
        {TensorType::Q5_1, 0, 0.02f},
        {TensorType::Q2_K, 1e-3f, 0.05f},
        {TensorType::Q3_K, 1e-3f, 0},
        {TensorType::Q5_K, 1e-3f, 0.05f},
        // The IQ4 table has no zero: the nearest value to it is 1 (times d = 37.5 /
        // 127, 0.295; IQ4_XS's 6-bit sub-scale rounds it to 0.33).
        {TensorType::IQ4_NL, 1e-3f, 0.35f},
        {TensorType::IQ4_XS, 1e-3f, 0.4f},
    };
    for (const Case& c : cases) {
        const std::vector<float> zeros(512, 0.0f);
        for (float v : round_trip(c.type, zeros)) ASSERT_EQ(v, 0.0f) << type_name(c.type);

        std::vector<float> spike(512, 0.0f);
        spike[300] = -37.5f;
        const auto y = round_trip(c.type, spike);
        for (size_t i = 0; i < y.size(); ++i) {
            if (i == 300) {
                EXPECT_NEAR(y[i], -37.5f, 37.5f * c.spike_rel) << type_name(c.type);
            } else {
                ASSERT_LE(std::fabs(y[i]), c.zero_abs) << type_name(c.type) << " element " << i;
            }
        }
    }
}

// ------------------------------------------------------------------ real models

class QuantFixture : public ::testing::TestWithParam<const char*> {};

// Every tensor of a model the reference quantised decodes to finite values (a wrong
// field offset would read scale bits from code bytes and produce infinities or
// absurd magnitudes), and no weight matrix decodes to all zeros.
TEST_P(QuantFixture, EveryTensorDecodesToFiniteValues) {
    auto f = gguf::File::open(test::data_path(std::string("reference/") + GetParam()));
    ASSERT_TRUE(f.ok()) << f.error().message;
    int quantized = 0;
    for (const gguf::TensorInfo& t : f->tensors()) {
        const TypeTraits& traits = type_traits(t.type);
        ASSERT_NE(traits.dequantize, nullptr) << t.name << " " << traits.name;
        std::vector<float> y(t.n_elements);
        traits.dequantize(t.data, y.data(), static_cast<int64_t>(t.n_elements));
        float amax = 0;
        for (float v : y) {
            ASSERT_TRUE(std::isfinite(v)) << t.name;
            amax = std::max(amax, std::fabs(v));
        }
        // The fixtures' weights are small random values; anything past 1e3 means the
        // bytes were misread.
        EXPECT_LT(amax, 1e3f) << t.name;
        if (traits.quantized) {
            ++quantized;
            EXPECT_GT(amax, 0.0f) << t.name;
        }
    }
    EXPECT_GT(quantized, 0);
}

// The reference's Q8_0, Q4_0 and MXFP4 encoders are deterministic round-to-nearest
// with the scale taken from the block's largest magnitude, and a decoded block keeps
// that largest magnitude exactly (it sits on the top code: 127 d, -8 d, or 6 / 4 times
// a power of two), so re-encoding the decoded values must recover the scale bit for
// bit, and every code lies exactly on the grid, so recovers too. The one principled
// exception would be a block whose scale rounded to zero in fp16 (its codes are then
// unrecoverable, and meaningless); none of the fixtures has one, so any difference at
// all is a bug.
TEST_P(QuantFixture, ReencodingDecodedBlocksReproducesTheReferenceBytes) {
    auto f = gguf::File::open(test::data_path(std::string("reference/") + GetParam()));
    ASSERT_TRUE(f.ok()) << f.error().message;
    int checked = 0;
    for (const gguf::TensorInfo& t : f->tensors()) {
        if (t.type != TensorType::Q8_0 && t.type != TensorType::Q4_0 && t.type != TensorType::MXFP4)
            continue;
        const TypeTraits& traits = type_traits(t.type);
        const auto n = static_cast<int64_t>(t.n_elements);
        std::vector<float> y(t.n_elements);
        traits.dequantize(t.data, y.data(), n);
        std::vector<uint8_t> again(t.n_bytes);
        traits.quantize(y.data(), again.data(), n);
        size_t differing = 0;
        for (size_t off = 0; off < again.size(); off += traits.type_size) {
            differing += std::memcmp(again.data() + off, t.data + off, traits.type_size) != 0;
        }
        EXPECT_EQ(differing, 0u) << t.name << " (" << traits.name << ") of "
                                 << again.size() / traits.type_size << " blocks";
        ++checked;
    }
    EXPECT_GT(checked, 0);
}

// The K-quant encoders search for their scales, so their output on decoded data need
// not be a byte-for-byte fixed point, but real reference-made blocks come close, which
// exercises the Q4_K / Q6_K encoders on data they did not make themselves. Measured on
// the fixtures: re-encoding changes 6 of 11,264 Q4_K blocks, with an NMSE against the
// decoded original of at most 3.1e-7 per tensor; Q6_K changes 20% of blocks' bytes but
// decodes identically (NMSE 0 or 1.7e-9): the encoder gives a sub-block whose codes
// avoid -32 the mirrored encoding (negated scale, negated codes), which is equal in
// value. The bounds, 1% of Q4_K blocks and NMSE 1e-5, are far above those and far
// below the ~5e-3 of encoding fresh data, so a broken encoder cannot pass.
TEST_P(QuantFixture, ReencodingDecodedKQuantsIsNearlyLossless) {
    auto f = gguf::File::open(test::data_path(std::string("reference/") + GetParam()));
    ASSERT_TRUE(f.ok()) << f.error().message;
    for (const gguf::TensorInfo& t : f->tensors()) {
        if (t.type != TensorType::Q4_K && t.type != TensorType::Q6_K) continue;
        const TypeTraits& traits = type_traits(t.type);
        const auto n = static_cast<int64_t>(t.n_elements);
        std::vector<float> y(t.n_elements);
        traits.dequantize(t.data, y.data(), n);
        std::vector<uint8_t> again(t.n_bytes);
        traits.quantize(y.data(), again.data(), n);
        std::vector<float> z(t.n_elements);
        traits.dequantize(again.data(), z.data(), n);
        EXPECT_LT(nmse(y, z), 1e-5) << t.name;
        if (t.type == TensorType::Q4_K) {
            size_t differing = 0;
            for (size_t off = 0; off < again.size(); off += traits.type_size) {
                differing += std::memcmp(again.data() + off, t.data + off, traits.type_size) != 0;
            }
            EXPECT_LE(differing, again.size() / traits.type_size / 100) << t.name;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Quant, QuantFixture,
                         ::testing::Values("qwen3moe-Q4_K_M.gguf", "gpt-oss-MXFP4_MOE.gguf",
                                           "mixtral-Q8_0.gguf", "deepseek-Q4_0.gguf"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                             std::string name = info.param;
                             name = name.substr(0, name.find('.'));
                             std::replace(name.begin(), name.end(), '-', '_');
                             return name;
                         });

}  // namespace
}  // namespace strata
