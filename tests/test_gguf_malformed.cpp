// Malformed GGUF files: each must produce a specific error that names what is
// wrong, never a crash, hang or huge allocation (the suite also runs under
// ASan/UBSan with `-DSTRATA_SANITIZE=ON`).

#include "gguf/file.h"
#include "gguf/writer.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

namespace strata::gguf {
namespace {

using test::TempDir;

// Builds a GGUF byte by byte so every field can lie.
struct RawGguf {
    uint32_t magic = kMagic;
    uint32_t version = 3;
    std::optional<uint64_t> n_tensors;  // defaults to infos.size()
    std::optional<uint64_t> n_kv;       // defaults to kvs.size()
    std::vector<std::vector<uint8_t>> kvs;
    std::vector<std::vector<uint8_t>> infos;
    std::vector<uint8_t> data;
    uint32_t alignment = 32;

    std::vector<uint8_t> bytes() const {
        ByteWriter w;
        w.u32(magic);
        w.u32(version);
        w.u64(n_tensors.value_or(infos.size()));
        w.u64(n_kv.value_or(kvs.size()));
        for (const auto& kv : kvs) w.raw(kv.data(), kv.size());
        for (const auto& ti : infos) w.raw(ti.data(), ti.size());
        w.pad_to(alignment);
        w.raw(data.data(), data.size());
        return std::move(w.bytes());
    }
};

std::vector<uint8_t> kv(const std::string& key, ValueType type, const MetaValue& v) {
    ByteWriter w;
    w.str(key);
    w.u32(static_cast<uint32_t>(type));
    encode_value(w, v);
    return std::move(w.bytes());
}

std::vector<uint8_t> info(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                          uint64_t offset) {
    ByteWriter w;
    w.str(name);
    w.u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t n : ne) w.u64(n);
    w.u32(type);
    w.u64(offset);
    return std::move(w.bytes());
}

constexpr uint32_t kF32 = static_cast<uint32_t>(TensorType::F32);

// With STRATA_GGUF_SEED_DIR set, each file these tests build is also saved there
// under its test's name: that is how fuzz/corpus/gguf, the GGUF fuzzer's seeds,
// was made (fuzz/README.md).
void save_seed(const std::vector<uint8_t>& bytes, std::string name = "") {
    const char* dir = std::getenv("STRATA_GGUF_SEED_DIR");
    if (!dir) return;
    if (name.empty()) name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    test::write_file(fmt::format("{}/{}.gguf", dir, name), bytes);
}

class Malformed : public ::testing::Test {
protected:
    // Writes `bytes`, opens it, and expects an error containing `want`.
    void expect_error(const std::vector<uint8_t>& bytes, const std::string& want,
                      const std::string& name = "bad.gguf") {
        save_seed(bytes);
        const std::string path = dir.file(name);
        test::write_file(path, bytes);
        expect_open_error(path, want);
    }
    void expect_open_error(const std::string& path, const std::string& want) {
        auto f = File::open(path);
        ASSERT_FALSE(f.ok()) << "opened although it should fail with: " << want;
        EXPECT_NE(f.error().message.find(want), std::string::npos)
            << "message: " << f.error().message << "\nexpected to contain: " << want;
    }
    // A valid two-tensor file's bytes.
    std::vector<uint8_t> valid_bytes() {
        Writer w;
        w.set("general.architecture", MetaValue::string("llama"));
        w.set("tokenizer.ggml.tokens", MetaValue::strings({"a", "b", "c"}));
        w.add_tensor({.name = "a", .type = TensorType::F32, .ne = {8, 2},
                      .data = std::vector<uint8_t>(64, 1)});
        w.add_tensor({.name = "blk.6.ffn_up_exps.weight", .type = TensorType::F32, .ne = {8, 4, 2},
                      .data = std::vector<uint8_t>(256, 2)});
        const std::string p = dir.file("valid.gguf");
        EXPECT_TRUE(w.write(p).ok());
        save_seed(test::read_file(p), "valid-two-tensors");
        return test::read_file(p);
    }
    TempDir dir;
};

TEST_F(Malformed, MissingFile) { expect_open_error(dir.file("nope.gguf"), "cannot open"); }

TEST_F(Malformed, Directory) { expect_open_error(dir.path().string(), "is a directory"); }

TEST_F(Malformed, EmptyFile) { expect_error({}, "is empty (0 bytes)"); }

TEST_F(Malformed, TooSmallForMagic) { expect_error({'G', 'G'}, "too small to be GGUF"); }

TEST_F(Malformed, WrongMagic) {
    RawGguf r;
    r.magic = 0x12345678;
    expect_error(r.bytes(), "not a GGUF file");
}

TEST_F(Malformed, Version1) {
    RawGguf r;
    r.version = 1;
    expect_error(r.bytes(), "GGUF version 1 is not supported");
}

TEST_F(Malformed, FutureVersion) {
    RawGguf r;
    r.version = 99;
    expect_error(r.bytes(), "GGUF version 99 is not supported");
}

TEST_F(Malformed, BigEndian) {
    RawGguf r;
    r.version = 0x03000000;
    expect_error(r.bytes(), "big-endian");
}

TEST_F(Malformed, HeaderTruncated) {
    auto b = RawGguf{}.bytes();
    b.resize(12);
    expect_error(b, "file ends inside the header (tensor count)");
}

TEST_F(Malformed, HugeKeyCount) {
    RawGguf r;
    r.n_kv = 1ull << 63;
    expect_error(r.bytes(), "claims 9223372036854775808 metadata keys");
}

TEST_F(Malformed, HugeTensorCount) {
    RawGguf r;
    r.n_tensors = 1ull << 63;
    expect_error(r.bytes(), "claims 9223372036854775808 tensors");
}

TEST_F(Malformed, KeyLengthPastEof) {
    RawGguf r;
    ByteWriter w;
    w.u64(1000);  // key length
    w.raw("abc", 3);
    r.kvs.push_back(w.bytes());
    // Pad so the key count passes the 13-bytes-per-key bound and the length check fires.
    r.kvs.push_back(std::vector<uint8_t>(10, 0));
    expect_error(r.bytes(), "metadata key #0 has length 1000 but only");
}

TEST_F(Malformed, StringValuePastEof) {
    RawGguf r;
    ByteWriter w;
    w.str("general.name");
    w.u32(static_cast<uint32_t>(ValueType::STRING));
    w.u64(1ull << 40);
    r.kvs.push_back(w.bytes());
    expect_error(r.bytes(), "the string value of key 'general.name' has length 1099511627776");
}

TEST_F(Malformed, UnknownValueType) {
    RawGguf r;
    ByteWriter w;
    w.str("general.name");
    w.u32(99);
    w.u32(0);
    r.kvs.push_back(w.bytes());
    expect_error(r.bytes(), "key 'general.name' has unknown value type 99");
}

TEST_F(Malformed, HugeArrayCount) {
    RawGguf r;
    ByteWriter w;
    w.str("tokenizer.ggml.scores");
    w.u32(static_cast<uint32_t>(ValueType::ARRAY));
    w.u32(static_cast<uint32_t>(ValueType::F32));
    w.u64(1ull << 63);
    r.kvs.push_back(w.bytes());
    expect_error(r.bytes(), "key 'tokenizer.ggml.scores' claims 9223372036854775808 array elements");
}

TEST_F(Malformed, HugeStringArrayCount) {
    RawGguf r;
    ByteWriter w;
    w.str("tokenizer.ggml.tokens");
    w.u32(static_cast<uint32_t>(ValueType::ARRAY));
    w.u32(static_cast<uint32_t>(ValueType::STRING));
    w.u64(1ull << 62);
    w.u64(1);
    w.raw("a", 1);
    r.kvs.push_back(w.bytes());
    expect_error(r.bytes(), "key 'tokenizer.ggml.tokens' claims 4611686018427387904 array elements");
}

TEST_F(Malformed, ArraysNestedTooDeep) {
    RawGguf r;
    ByteWriter w;
    w.str("deep");
    w.u32(static_cast<uint32_t>(ValueType::ARRAY));
    for (int d = 0; d < 100; ++d) {
        w.u32(static_cast<uint32_t>(ValueType::ARRAY));
        w.u64(1);
    }
    w.u32(static_cast<uint32_t>(ValueType::U8));
    w.u64(0);
    r.kvs.push_back(w.bytes());
    expect_error(r.bytes(), "nests arrays more than 8 deep");
}

TEST_F(Malformed, DuplicateKey) {
    RawGguf r;
    r.kvs.push_back(kv("general.name", ValueType::STRING, MetaValue::string("a")));
    r.kvs.push_back(kv("general.name", ValueType::STRING, MetaValue::string("b")));
    expect_error(r.bytes(), "duplicate metadata key 'general.name'");
}

TEST_F(Malformed, BoolNotZeroOrOne) {
    RawGguf r;
    r.kvs.push_back(kv("tokenizer.ggml.add_bos_token", ValueType::BOOL, {.type = ValueType::BOOL, .u = 7}));
    expect_error(r.bytes(), "key 'tokenizer.ggml.add_bos_token' has bool value 7");
}

TEST_F(Malformed, AlignmentNotPowerOfTwo) {
    RawGguf r;
    r.kvs.push_back(kv("general.alignment", ValueType::U32, MetaValue::u32(48)));
    expect_error(r.bytes(), "key 'general.alignment' is 48, not a power of two");
}

TEST_F(Malformed, AlignmentZero) {
    RawGguf r;
    r.kvs.push_back(kv("general.alignment", ValueType::U32, MetaValue::u32(0)));
    expect_error(r.bytes(), "key 'general.alignment' is 0, not a power of two");
}

TEST_F(Malformed, AlignmentWrongType) {
    RawGguf r;
    r.kvs.push_back(kv("general.alignment", ValueType::STRING, MetaValue::string("32")));
    expect_error(r.bytes(), "key 'general.alignment' has type string, expected u32");
}

TEST_F(Malformed, TooManyDimensions) {
    RawGguf r;
    r.infos.push_back(info("t", {1, 1, 1, 1, 1}, kF32, 0));
    r.data.resize(64);
    expect_error(r.bytes(), "tensor 't' has 5 dimensions; GGUF allows 1 to 4");
}

TEST_F(Malformed, ZeroDimensions) {
    RawGguf r;
    r.infos.push_back(info("t", {}, kF32, 0));
    r.data.resize(64);
    expect_error(r.bytes(), "tensor 't' has 0 dimensions");
}

TEST_F(Malformed, ZeroSizedDimension) {
    RawGguf r;
    r.infos.push_back(info("blk.0.attn_q.weight", {64, 0}, kF32, 0));
    expect_error(r.bytes(), "tensor 'blk.0.attn_q.weight' has a zero dimension (ne[1] = 0)");
}

TEST_F(Malformed, DimensionProductOverflows) {
    RawGguf r;
    r.infos.push_back(info("t", {1ull << 32, 1ull << 32}, kF32, 0));
    expect_error(r.bytes(), "tensor 't' shape [4294967296, 4294967296] has more elements than fit");
}

TEST_F(Malformed, ByteCountOverflows) {
    // 2^62 elements fit in 63 bits, but 2^62 F32 elements are 2^64 bytes.
    RawGguf r;
    r.infos.push_back(info("t", {1ull << 31, 1ull << 31}, kF32, 0));
    expect_error(r.bytes(), "tensor 't'");
}

TEST_F(Malformed, UnknownTensorType) {
    RawGguf r;
    r.infos.push_back(info("blk.0.ffn_down_exps.weight", {32}, 9999, 0));
    r.data.resize(128);
    expect_error(r.bytes(), "tensor 'blk.0.ffn_down_exps.weight' has unknown type id 9999");
}

TEST_F(Malformed, RetiredTensorType) {
    RawGguf r;
    r.infos.push_back(info("t", {32}, 4, 0));  // Q4_2, removed from the format long ago
    r.data.resize(128);
    expect_error(r.bytes(), "tensor 't' has unknown type id 4");
}

TEST_F(Malformed, RowNotWholeBlocks) {
    RawGguf r;
    r.infos.push_back(info("t", {100, 2}, static_cast<uint32_t>(TensorType::Q4_K), 0));
    r.data.resize(1024);
    expect_error(r.bytes(), "tensor 't' has rows of 100 elements, not a multiple of the Q4_K block size 256");
}

// The largest alignment a u32 holds rounds the data section's start past the
// end of a small file; an offset aligned to it near 2^64 must not wrap when
// rounded or added to that start.
TEST_F(Malformed, AlignmentRoundingNearTheTop) {
    RawGguf r;
    r.kvs.push_back(kv("general.alignment", ValueType::U32, MetaValue::u32(1u << 31)));
    r.infos.push_back(info("t", {4}, kF32, 0));
    r.data.resize(64);
    expect_error(r.bytes(), "tensor 't' data is not within the file bounds");
    RawGguf top;
    top.kvs.push_back(kv("general.alignment", ValueType::U32, MetaValue::u32(1u << 31)));
    top.infos.push_back(info("t", {4}, kF32, ~0ull - ((1ull << 31) - 1)));  // the last multiple of 2^31
    top.data.resize(64);
    expect_error(top.bytes(), "tensor 't' data is not within the file bounds");
}

TEST_F(Malformed, MisalignedOffset) {
    RawGguf r;
    r.infos.push_back(info("t", {4}, kF32, 4));
    r.data.resize(64);
    expect_error(r.bytes(), "tensor 't' data offset 4 is not a multiple of the alignment 32");
}

TEST_F(Malformed, OffsetPastEnd) {
    RawGguf r;
    r.infos.push_back(info("t", {4}, kF32, 1ull << 40));
    r.data.resize(64);
    expect_error(r.bytes(), "tensor 't' data is not within the file bounds");
}

TEST_F(Malformed, OffsetPlusSizeWrapsAround) {
    RawGguf r;
    r.infos.push_back(info("t", {64}, kF32, ~0ull - 31));  // aligned, and offset + size overflows
    r.data.resize(256);
    expect_error(r.bytes(), "tensor 't' data is not within the file bounds");
}

TEST_F(Malformed, OverlappingTensors) {
    RawGguf r;
    r.infos.push_back(info("a", {16}, kF32, 0));
    r.infos.push_back(info("b", {16}, kF32, 32));  // a covers bytes 0..64
    r.data.resize(128);
    expect_error(r.bytes(), "tensors 'a' and 'b' overlap in the data section");
}

TEST_F(Malformed, DuplicateTensorNames) {
    RawGguf r;
    r.infos.push_back(info("a", {8}, kF32, 0));
    r.infos.push_back(info("a", {8}, kF32, 32));
    r.data.resize(64);
    expect_error(r.bytes(), "duplicate tensor name 'a'");
}

TEST_F(Malformed, EmptyTensorName) {
    RawGguf r;
    r.infos.push_back(info("", {8}, kF32, 0));
    r.data.resize(64);
    expect_error(r.bytes(), "tensor #0 has an empty name");
}

TEST_F(Malformed, TruncatedDownloadNamesTheTensor) {
    auto b = valid_bytes();
    b.resize(b.size() - 100);
    expect_error(b, "tensor 'blk.6.ffn_up_exps.weight' data is not within the file bounds");
}

// Cutting a valid file at any byte must give an error, never a crash or an
// out-of-bounds read (ASan checks the latter).
TEST_F(Malformed, TruncatedAtEveryByte) {
    const auto full = valid_bytes();
    for (size_t n = 1; n < full.size(); ++n) {
        std::vector<uint8_t> b(full.begin(), full.begin() + static_cast<long>(n));
        const std::string path = dir.file("cut.gguf");
        test::write_file(path, b);
        auto f = File::open(path);
        ASSERT_FALSE(f.ok()) << "a file cut to " << n << " of " << full.size() << " bytes opened";
        EXPECT_FALSE(f.error().message.empty());
    }
}

// Flipping bytes of the header area must never crash the reader: each result is
// either a valid file or an error.
TEST_F(Malformed, CorruptedBytesNeverCrash) {
    const auto full = valid_bytes();
    std::mt19937 rng(1234);
    for (int i = 0; i < 2000; ++i) {
        auto b = full;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips; ++k) b[rng() % std::min<size_t>(b.size(), 200)] = static_cast<uint8_t>(rng());
        const std::string path = dir.file("flip.gguf");
        test::write_file(path, b);
        auto f = File::open(path);
        if (!f.ok()) {
            EXPECT_FALSE(f.error().message.empty());
        }
    }
}

// Split sets: NAME-0000i-of-0000N.gguf with `split.*` keys.
class Split : public Malformed {
protected:
    // Writes part `i` of `n` holding one tensor named `t<i>`.
    void write_part(uint32_t i, uint32_t n, int total_tensors, std::optional<uint16_t> no = {}) {
        Writer w;
        if (i == 0) w.set("general.architecture", MetaValue::string("llama"));
        w.set("split.no", MetaValue::u16(no.value_or(static_cast<uint16_t>(i))));
        w.set("split.count", MetaValue::u16(static_cast<uint16_t>(n)));
        w.set("split.tensors.count", MetaValue::i32(total_tensors));
        w.add_tensor({.name = "t" + std::to_string(i), .type = TensorType::F32, .ne = {4},
                      .data = std::vector<uint8_t>(16, static_cast<uint8_t>(i))});
        ASSERT_TRUE(w.write(part_path(i, n)).ok());
    }
    std::string part_path(uint32_t i, uint32_t n) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "model-%05u-of-%05u.gguf", i + 1, n);
        return dir.file(buf);
    }
};

TEST_F(Split, AllPartsLoadTogether) {
    for (uint32_t i = 0; i < 3; ++i) write_part(i, 3, 3);
    auto f = File::open(part_path(0, 3));
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->n_parts(), 3u);
    ASSERT_EQ(f->tensors().size(), 3u);
    const TensorInfo* t2 = f->find_tensor("t2");
    ASSERT_NE(t2, nullptr);
    EXPECT_EQ(t2->file_index, 2u);
    EXPECT_EQ(t2->data[0], 2);
}

TEST_F(Split, MissingPart) {
    write_part(0, 3, 3);
    write_part(2, 3, 3);
    expect_open_error(part_path(0, 3), "part 2 of 3 of this split model is missing or unreadable");
}

TEST_F(Split, WrongPartNumber) {
    write_part(0, 2, 2);
    write_part(1, 2, 2, /*no=*/5);
    expect_open_error(part_path(0, 2), "expected split part number 1 (key 'split.no'), found 5");
}

TEST_F(Split, TensorCountMismatch) {
    write_part(0, 2, 7);
    write_part(1, 2, 7);
    expect_open_error(part_path(0, 2), "key 'split.tensors.count' says 7 tensors but the 2 parts hold 2");
}

TEST_F(Split, OpeningALaterPartPointsToTheFirst) {
    write_part(0, 2, 2);
    write_part(1, 2, 2);
    expect_open_error(part_path(1, 2), "this is part 2 of a 2-part split model; open the first part");
}

TEST(SplitNames, PartPaths) {
    EXPECT_EQ(*split_part_path("/m/x-00001-of-00003.gguf", 2), "/m/x-00003-of-00003.gguf");
    EXPECT_FALSE(split_part_path("/m/x.gguf", 1).has_value());
}

}  // namespace
}  // namespace strata::gguf
