// The GGUF reader on files the writer made and on the real fixture files.

#include "gguf/file.h"
#include "gguf/writer.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

namespace strata::gguf {
namespace {

using test::TempDir;

TEST(GgufReader, RoundTripsEveryValueTypeAndNestedArrays) {
    TempDir dir;
    Writer w;
    w.set("general.architecture", MetaValue::string("llama"));
    w.set("u8", {.type = ValueType::U8, .u = 200});
    w.set("i8", {.type = ValueType::I8, .i = -100});
    w.set("u16", MetaValue::u16(60000));
    w.set("i16", {.type = ValueType::I16, .i = -30000});
    w.set("u32", MetaValue::u32(4000000000u));
    w.set("i32", MetaValue::i32(-2000000000));
    w.set("u64", MetaValue::u64(1ull << 60));
    w.set("i64", {.type = ValueType::I64, .i = -(1ll << 60)});
    w.set("f32", MetaValue::f32(1.5f));
    w.set("f64", {.type = ValueType::F64, .f = 2.25});
    w.set("bool", MetaValue::boolean(true));
    w.set("strings", MetaValue::strings({"a", "", "héllo"}));
    w.set("floats", MetaValue::f32s({0.5f, -1.0f}));
    MetaValue nested{.type = ValueType::ARRAY, .elem_type = ValueType::ARRAY};
    nested.items.push_back(MetaValue::i32s({1, 2, 3}));
    nested.items.push_back(MetaValue::i32s({}));
    w.set("nested", nested);
    std::vector<float> vals(64);
    for (size_t i = 0; i < vals.size(); ++i) vals[i] = static_cast<float>(i);
    std::vector<uint8_t> bytes(vals.size() * 4);
    std::memcpy(bytes.data(), vals.data(), bytes.size());
    w.add_tensor({.name = "t0", .type = TensorType::F32, .ne = {16, 4}, .data = bytes});
    w.add_tensor({.name = "t1", .type = TensorType::F32, .ne = {3}, .data = std::vector<uint8_t>(12, 0)});
    w.add_tensor({.name = "t2", .type = TensorType::F32, .ne = {8}, .data = std::vector<uint8_t>(32, 1)});
    const std::string path = dir.file("m.gguf");
    ASSERT_TRUE(w.write(path).ok());
    EXPECT_EQ(std::filesystem::file_size(path), w.file_size());

    auto f = File::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(*f->get_string("general.architecture"), "llama");
    EXPECT_EQ(*f->get_int("u8"), 200);
    EXPECT_EQ(*f->get_int("i8"), -100);
    EXPECT_EQ(*f->get_int("u16"), 60000);
    EXPECT_EQ(*f->get_int("i16"), -30000);
    EXPECT_EQ(*f->get_int("u32"), 4000000000ll);
    EXPECT_EQ(*f->get_int("i32"), -2000000000);
    EXPECT_EQ(*f->get_int("u64"), 1ll << 60);
    EXPECT_EQ(*f->get_int("i64"), -(1ll << 60));
    EXPECT_EQ(*f->get_float("f32"), 1.5);
    EXPECT_EQ(*f->get_float("f64"), 2.25);
    EXPECT_TRUE(*f->get_bool("bool"));
    const Array* s = *f->get_array("strings");
    ASSERT_EQ(s->count, 3u);
    EXPECT_EQ(s->strings[2], "héllo");
    EXPECT_EQ(s->strings[1], "");
    const Array* fl = *f->get_array("floats");
    EXPECT_EQ(fl->get_float(1), -1.0);
    const Array* ns = *f->get_array("nested");
    ASSERT_EQ(ns->count, 2u);
    EXPECT_EQ(ns->arrays[0].array().get_int(2), 3);
    EXPECT_EQ(ns->arrays[1].array().count, 0u);

    // Metadata keeps file order, as gguf tools print it.
    EXPECT_EQ(f->metadata().front().key, "general.architecture");
    EXPECT_EQ(f->metadata().back().key, "nested");

    ASSERT_EQ(f->tensors().size(), 3u);
    const TensorInfo* t0 = f->find_tensor("t0");
    ASSERT_NE(t0, nullptr);
    EXPECT_EQ(t0->n_elements, 64u);
    EXPECT_EQ(t0->n_bytes, 256u);
    EXPECT_EQ(t0->shape_string(), "[16, 4]");
    float v63;
    std::memcpy(&v63, t0->data + 63 * 4, 4);
    EXPECT_EQ(v63, 63.0f);
    // t1 holds 12 bytes; the next tensor starts at the next 32-byte boundary.
    EXPECT_EQ(f->find_tensor("t2")->offset, 256u + 32u);
    EXPECT_EQ(f->find_tensor("t2")->data[0], 1);

    // Errors name the key and the types involved.
    EXPECT_NE(f->get_int("f32").error().message.find("key 'f32' has type f32, expected an integer"),
              std::string::npos);
    EXPECT_NE(f->get_string("nope").error().message.find("required key 'nope' is missing"),
              std::string::npos);
    EXPECT_FALSE(f->find_int("nope")->has_value());
}

TEST(GgufReader, CustomAlignmentIsWrittenAndHonoured) {
    TempDir dir;
    Writer w;
    w.set_alignment(64);
    w.add_tensor({.name = "a", .type = TensorType::F32, .ne = {3}, .data = std::vector<uint8_t>(12, 7)});
    w.add_tensor({.name = "b", .type = TensorType::F32, .ne = {4}, .data = std::vector<uint8_t>(16, 9)});
    ASSERT_TRUE(w.write(dir.file("a.gguf")).ok());
    auto f = File::open(dir.file("a.gguf"));
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->alignment(), 64u);
    EXPECT_EQ(f->find_tensor("b")->offset, 64u);
    EXPECT_EQ(f->find_tensor("b")->file_offset % 64, 0u);
    EXPECT_EQ(f->find_tensor("b")->data[15], 9);
}

TEST(GgufReader, FillCallbackStreamsRowsOnSeveralThreads) {
    TempDir dir;
    Writer w;
    // 3000 rows of 4 KiB: several 8 MiB chunks, so the threads really share the work.
    w.add_tensor({.name = "big", .type = TensorType::F32, .ne = {1024, 3000}});
    auto fill = [](const TensorSpec&, size_t, uint64_t r0, uint64_t r1, uint8_t* dst) {
        for (uint64_t r = r0; r < r1; ++r) {
            float v = static_cast<float>(r);
            for (int c = 0; c < 1024; ++c) std::memcpy(dst + ((r - r0) * 1024 + c) * 4, &v, 4);
        }
    };
    ASSERT_TRUE(w.write(dir.file("big.gguf"), fill, 4).ok());
    auto f = File::open(dir.file("big.gguf"));
    ASSERT_TRUE(f.ok()) << f.error().message;
    const TensorInfo* t = f->find_tensor("big");
    for (uint64_t r : {0ull, 2047ull, 2048ull, 2999ull}) {
        float v;
        std::memcpy(&v, t->data + (r * 1024 + 1023) * 4, 4);
        EXPECT_EQ(v, static_cast<float>(r)) << "row " << r;
    }
    EXPECT_FALSE(std::filesystem::exists(dir.file("big.gguf.tmp")));
}

// Every reference fixture parses, and its tensors are packed exactly as the
// reference writer laid them out: each starts where the previous one's bytes,
// padded to the alignment, end. A wrong block size or bytes-per-block for any
// type in these files would break that chain, so this checks the type table's
// size arithmetic against real quantised files.
TEST(GgufReader, FixtureTensorSizesMatchTheReferenceLayout) {
    int files = 0;
    std::set<std::string> types_seen;
    for (const auto& dirname : {"reference", "real", "tokenizer"}) {
        for (const auto& e : std::filesystem::directory_iterator(test::data_path(dirname))) {
            if (e.path().extension() != ".gguf") continue;
            auto f = File::open(e.path().string());
            ASSERT_TRUE(f.ok()) << f.error().message;
            ++files;
            std::vector<const TensorInfo*> ts;
            for (const auto& t : f->tensors()) ts.push_back(&t);
            std::sort(ts.begin(), ts.end(),
                      [](auto* a, auto* b) { return a->offset < b->offset; });
            uint64_t expect = 0;
            for (const TensorInfo* t : ts) {
                EXPECT_EQ(t->offset, expect) << e.path() << " " << t->name;
                expect = (t->offset + t->n_bytes + f->alignment() - 1) / f->alignment() * f->alignment();
                types_seen.insert(type_name(t->type));
            }
            if (!ts.empty()) {
                const uint64_t data_end = ts.back()->file_offset + ts.back()->n_bytes;
                EXPECT_LE(data_end, f->file_size());
                EXPECT_LT(f->file_size() - data_end, f->alignment()) << e.path();
            }
        }
    }
    EXPECT_EQ(files, 12 + 1 + 11);  // reference models, stories260K, vocabularies
    for (const char* t : {"F32", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K", "MXFP4"})
        EXPECT_TRUE(types_seen.count(t)) << t << " not among the fixture types";
}

}  // namespace
}  // namespace strata::gguf
