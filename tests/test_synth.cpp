// Tensor layouts and `strata synth`: the layout of each architecture must be exactly
// the tensor list of the reference fixtures (written by the reference converter's
// conventions), and synth output must read back as that architecture.

#include "gguf/file.h"
#include "model/info.h"
#include "model/layout.h"
#include "model/synth.h"
#include "small_synth.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <utility>

namespace strata {
namespace {

using test::data_path;
using test::TempDir;

std::map<std::string, std::vector<uint64_t>> shapes_of(const gguf::File& f) {
    std::map<std::string, std::vector<uint64_t>> m;
    for (const gguf::TensorInfo& t : f.tensors()) m[t.name] = std::vector<uint64_t>(t.ne.begin(), t.ne.begin() + t.n_dims);
    return m;
}

class LayoutMatchesFixture : public ::testing::TestWithParam<std::string> {};

// Every name and shape, not just a count: a missing bias or a transposed matrix in
// the layout would make the engine reject (or misread) real files.
TEST_P(LayoutMatchesFixture, NamesAndShapes) {
    auto f = gguf::File::open(data_path("reference/" + GetParam() + ".gguf"));
    ASSERT_TRUE(f.ok()) << f.error().message;
    auto hp = read_hparams(*f);
    ASSERT_TRUE(hp.ok()) << hp.error().message;
    auto layout = tensor_layout(*hp);
    ASSERT_TRUE(layout.ok()) << layout.error().message;
    std::map<std::string, std::vector<uint64_t>> expected;
    for (const TensorDesc& d : *layout) expected[d.name] = d.ne;
    EXPECT_EQ(expected.size(), layout->size()) << "layout names a tensor twice";
    EXPECT_EQ(shapes_of(*f), expected);
}

INSTANTIATE_TEST_SUITE_P(Reference, LayoutMatchesFixture,
                         ::testing::Values("llama", "mixtral", "qwen2moe", "qwen3moe", "olmoe", "deepseek", "phimoe",
                                           "gpt-oss", "qwen3moe-Q4_K_M", "gpt-oss-MXFP4_MOE", "mixtral-Q8_0",
                                           "deepseek-Q4_0"));

TEST(Layout, UnknownArchitectureIsNamed) {
    HParams hp;
    hp.arch = "mamba";
    auto layout = tensor_layout(hp);
    ASSERT_FALSE(layout.ok());
    EXPECT_NE(layout.error().message.find("unknown architecture 'mamba'"), std::string::npos);
}

TEST(Layout, ZeroDimensionIsAnError) {
    HParams hp = find_synth_preset("olmoe-1b-7b")->spec.hp;
    hp.n_head_kv = 0;
    auto layout = tensor_layout(hp);
    ASSERT_FALSE(layout.ok());
    EXPECT_NE(layout.error().message.find("head_count_kv"), std::string::npos) << layout.error().message;
}

// The bartowski/ggml-org MXFP4 GGUF of gpt-oss-20b is listed at 12.1 GB. Our preset
// stores the same tensors with the same types except that the reference keeps a few
// small tensors in other types; 3% is "within a few percent" and would still catch a
// missing tensor class (attention alone is ~0.7 GB, the vocab ~1.2 GB).
TEST(Synth, GptOss20bPresetMatchesRealSize) {
    auto plan = plan_synth(find_synth_preset("gpt-oss-20b")->spec);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    const double size = static_cast<double>(plan->writer.file_size());
    EXPECT_NEAR(size / 12.1e9, 1.0, 0.03) << size;
}

TEST(Synth, EveryPresetPlans) {
    for (const SynthPreset& p : synth_presets()) {
        auto plan = plan_synth(p.spec);
        ASSERT_TRUE(plan.ok()) << p.name << ": " << plan.error().message;
        EXPECT_GT(plan->writer.tensors().size(), 3u * p.spec.hp.n_layer) << p.name;
    }
}

// deepseek's experts are 1408 wide, not a multiple of 256: Q4_K cannot hold those
// rows of ffn_down_exps, so they fall back (to Q5_0, as the reference's quantiser
// does), and say so.
TEST(Synth, IncompatibleRowWidthFallsBackWithANote) {
    auto plan = plan_synth(find_synth_preset("deepseek-moe-16b")->spec);
    ASSERT_TRUE(plan.ok());
    bool noted = false;
    for (const std::string& n : plan->notes) noted |= n.find("blk.*.ffn_down_exps.weight") != std::string::npos;
    EXPECT_TRUE(noted);
    for (const gguf::TensorSpec& t : plan->writer.tensors()) {
        if (t.name == "blk.1.ffn_down_exps.weight") {
            EXPECT_EQ(t.type, TensorType::Q5_0);
        }
        if (t.name == "blk.1.ffn_up_exps.weight") {
            EXPECT_EQ(t.type, TensorType::Q4_K);
        }
    }
}

// The other 256-element types step down as the reference's quantiser steps them.
TEST(Synth, EachKQuantFallsBackToTheReferencesType) {
    const std::pair<const char*, TensorType> cases[] = {
        {"Q2_K", TensorType::IQ4_NL}, {"Q3_K", TensorType::IQ4_NL}, {"IQ4_XS", TensorType::IQ4_NL},
        {"Q5_K", TensorType::Q5_1},   {"Q6_K", TensorType::Q8_0},
    };
    for (const auto& [name, fallback] : cases) {
        SynthSpec spec = find_synth_preset("deepseek-moe-16b")->spec;
        spec.expert_type = name;
        auto plan = plan_synth(spec);
        ASSERT_TRUE(plan.ok()) << name;
        for (const gguf::TensorSpec& t : plan->writer.tensors()) {
            if (t.name == "blk.1.ffn_down_exps.weight") {
                EXPECT_EQ(t.type, fallback) << name;
            }
            if (t.name == "blk.1.ffn_up_exps.weight") {
                EXPECT_EQ(type_name(t.type), std::string(name));
            }
        }
    }
}

TEST(Synth, RejectsTypesItCannotWrite) {
    SynthSpec spec = find_synth_preset("olmoe-1b-7b")->spec;
    spec.expert_type = "IQ2_XXS";
    auto plan = plan_synth(spec);
    ASSERT_FALSE(plan.ok());
    EXPECT_NE(plan.error().message.find("'IQ2_XXS'"), std::string::npos);
    // The message lists what synth does write.
    EXPECT_NE(plan.error().message.find("IQ4_XS"), std::string::npos) << plan.error().message;
    spec.expert_type = "Q9_9";
    EXPECT_FALSE(plan_synth(spec).ok());
}

using test::small_synth_spec;

// A written file opens with the validating reader, reports the architecture and
// expert counts it was given, and its weights decode to finite values of the
// intended spread (std 0.02): a fill bug (zeros, garbage bytes) fails this.
TEST(Synth, WrittenFileReadsBackWithSaneWeights) {
    TempDir dir;
    SynthSpec spec = small_synth_spec("qwen3moe");
    spec.expert_type = "MXFP4";
    auto plan = plan_synth(spec);
    ASSERT_TRUE(plan.ok());
    const std::string path = dir.file("m.gguf");
    ASSERT_TRUE(write_synth(*plan, path, 3).ok());
    auto f = gguf::File::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->file_size(), plan->writer.file_size());
    ModelInfo info = describe_model(*f);
    ASSERT_TRUE(info.hparams);
    EXPECT_EQ(info.architecture, "qwen3moe");
    EXPECT_EQ(info.hparams->n_expert, 8u);
    EXPECT_EQ(info.hparams->n_expert_used, 2u);
    EXPECT_EQ(info.vocab_size, 512u);
    EXPECT_TRUE(info.has_chat_template);
    ASSERT_EQ(info.expert_types.size(), 1u);
    EXPECT_EQ(info.expert_types[0].type, "MXFP4");

    for (const char* name : {"blk.1.ffn_up_exps.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight"}) {
        const gguf::TensorInfo* t = f->find_tensor(name);
        ASSERT_NE(t, nullptr) << name;
        std::vector<float> x(t->n_elements);
        type_traits(t->type).dequantize(t->data, x.data(), static_cast<int64_t>(x.size()));
        double sum = 0, sum2 = 0;
        for (float v : x) {
            ASSERT_TRUE(std::isfinite(v));
            sum += v;
            sum2 += double{v} * v;
        }
        const double mean = sum / x.size(), sd = std::sqrt(sum2 / x.size() - mean * mean);
        if (std::string(name).find("norm") != std::string::npos) {
            EXPECT_NEAR(mean, 1.0, 0.02) << name;  // norm weights sit around 1
        } else {
            EXPECT_NEAR(mean, 0.0, 0.005) << name;
            // Quantisation moves the spread a little (MXFP4 most), not by 30%.
            EXPECT_NEAR(sd, 0.02, 0.006) << name;
        }
    }
}

// Same seed, same bytes, whatever the thread count; another seed, other bytes.
TEST(Synth, DeterministicForASeed) {
    TempDir dir;
    SynthSpec spec = small_synth_spec("gpt-oss");
    auto plan = plan_synth(spec);
    ASSERT_TRUE(plan.ok());
    ASSERT_TRUE(write_synth(*plan, dir.file("a.gguf"), 1).ok());
    ASSERT_TRUE(write_synth(*plan, dir.file("b.gguf"), 4).ok());
    EXPECT_EQ(test::read_file(dir.file("a.gguf")), test::read_file(dir.file("b.gguf")));
    spec.seed = 2;
    auto plan2 = plan_synth(spec);
    ASSERT_TRUE(write_synth(*plan2, dir.file("c.gguf"), 2).ok());
    EXPECT_NE(test::read_file(dir.file("a.gguf")), test::read_file(dir.file("c.gguf")));
}

}  // namespace
}  // namespace strata
