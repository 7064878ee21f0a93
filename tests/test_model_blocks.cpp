// Pieces of the forward pass the fixtures do not reach: YaRN RoPE (no fixture
// model asks for it) and load-time checks of a file against its hyper-parameters.

#include "gguf/file.h"
#include "model/blocks.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

namespace strata {
namespace {

// gpt-oss's YaRN: base 150000, factor 32, original context 4096, 64 rotary dims.
// By the YaRN formulas the correction range is pairs 8..18: pairs at or below 8
// keep their original frequency, pairs at or above 18 are divided by 32, and both
// cos and sin are scaled by 1 + 0.1 ln 32. The expected values are computed here
// from those definitions, independently of blocks.cpp.
TEST(Rope, YarnMatchesItsDefinition) {
    RopeParams p{.kind = RopeKind::Neox, .n_rot = 64, .freq_base = 150000.0f, .freq_scale = 1.0f / 32,
                 .ext_factor = 1.0f, .n_ctx_orig = 4096};
    const double mscale = 1.0 + 0.1 * std::log(32.0);
    const int64_t pos = 1000;
    std::vector<float> x(64);
    // One unit vector per pair in its first slot: after rotation, slot a holds cos
    // and slot b holds sin (NeoX pairs element i with i + 32).
    for (int pair : {0, 5, 31}) {
        std::fill(x.begin(), x.end(), 0.0f);
        x[static_cast<size_t>(pair)] = 1.0f;
        rope(x.data(), 1, 64, 1, 64, pos, p);
        const double freq = std::pow(150000.0, -2.0 * pair / 64.0);
        const double theta = pair <= 8 ? pos * freq : pos * freq / 32.0;
        // Float angles of ~1000 radians carry ~1e-4 absolute error in the reference
        // too (it advances the angle in float); 2e-3 still pins the right frequency.
        EXPECT_NEAR(x[static_cast<size_t>(pair)], std::cos(theta) * mscale, 2e-3) << pair;
        EXPECT_NEAR(x[static_cast<size_t>(pair + 32)], std::sin(theta) * mscale, 2e-3) << pair;
    }
    // At position 0 nothing turns, and everything is scaled by mscale.
    std::fill(x.begin(), x.end(), 1.0f);
    rope(x.data(), 1, 64, 1, 64, 0, p);
    for (float v : x) EXPECT_NEAR(v, mscale, 1e-6);
}

// A small qwen3moe of `n_layer` layers: 4 heads (2 KV) of 64, 4 experts of which 2 are used.
SynthSpec small_qwen3moe(uint32_t n_layer) {
    SynthSpec spec = find_synth_preset("qwen3-30b-a3b")->spec;
    spec.hp.n_layer = n_layer;
    spec.hp.n_embd = 256;
    spec.hp.n_head = 4;
    spec.hp.n_head_kv = 2;
    spec.hp.n_embd_head_k = spec.hp.n_embd_head_v = spec.hp.n_rot = 64;
    spec.hp.n_ff_exp = 256;
    spec.hp.n_expert = 4;
    spec.hp.n_expert_used = 2;
    spec.hp.n_vocab = 512;
    return spec;
}

// The header says 4 KV heads but attn_k was written for 2: loading must name the
// tensor and both shapes rather than read past its data.
TEST(ModelLoad, ShapeDisagreeingWithHparamsNamesTheTensor) {
    test::TempDir dir;
    SynthSpec spec = small_qwen3moe(1);
    auto plan = plan_synth(spec);
    ASSERT_TRUE(plan.ok());
    plan->writer.set("qwen3moe.attention.head_count_kv", gguf::MetaValue::u32(4));
    ASSERT_TRUE(write_synth(*plan, dir.file("bad.gguf"), 1).ok());
    auto f = gguf::File::open(dir.file("bad.gguf"));
    ASSERT_TRUE(f.ok()) << f.error().message;  // a valid GGUF ...
    auto m = Model::load(*f);                   // ... of an inconsistent model
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("tensor 'blk.0.attn_k.weight' has shape [256, 128], expected [256, 256]"),
              std::string::npos)
        << m.error().message;
}

// The reference implementation aborts when `block_count` or the expert counts
// disagree with the tensors in the file; here each is an error naming the key or
// the tensor. `edit` changes one key of a valid file.
std::string load_error_after(const std::function<void(gguf::Writer&)>& edit) {
    test::TempDir dir;
    SynthSpec spec = small_qwen3moe(2);
    auto plan = plan_synth(spec);
    if (!plan.ok()) return "plan: " + plan.error().message;
    edit(plan->writer);
    if (!write_synth(*plan, dir.file("m.gguf"), 1).ok()) return "write failed";
    auto f = gguf::File::open(dir.file("m.gguf"));
    if (!f.ok()) return "open: " + f.error().message;
    auto m = Model::load(*f);
    return m.ok() ? "" : m.error().message;
}

TEST(ModelLoad, CountsDisagreeingWithTheTensorsAreErrors) {
    EXPECT_EQ(load_error_after([](gguf::Writer&) {}), "");
    std::string e = load_error_after([](gguf::Writer& w) { w.set("qwen3moe.block_count", gguf::MetaValue::u32(3)); });
    EXPECT_NE(e.find("blk.2."), std::string::npos) << e;  // the first tensor of the layer that is not there
    e = load_error_after([](gguf::Writer& w) { w.set("qwen3moe.block_count", gguf::MetaValue::u32(1u << 31)); });
    EXPECT_FALSE(e.empty());
    e = load_error_after([](gguf::Writer& w) { w.set("qwen3moe.expert_used_count", gguf::MetaValue::u32(5)); });
    EXPECT_NE(e.find("expert_used_count' is 5, expected 1 to 4"), std::string::npos) << e;
    e = load_error_after([](gguf::Writer& w) { w.set("qwen3moe.expert_used_count", gguf::MetaValue::u32(0)); });
    EXPECT_NE(e.find("expert_used_count"), std::string::npos) << e;
    e = load_error_after([](gguf::Writer& w) { w.set("qwen3moe.expert_count", gguf::MetaValue::u32(8)); });
    EXPECT_NE(e.find("ffn_gate_inp"), std::string::npos) << e;  // the router has 4 outputs, not 8
}

// Found by fuzz/fuzz_gguf.cpp: a block count no tensors back made the loader
// build a layout of billions of tensor names (hung, then out of memory) before
// finding the first missing one.
TEST(ModelLoad, BlockCountBeyondTheTensorsIsRefusedAtOnce) {
    test::TempDir dir;
    auto plan = plan_synth(small_qwen3moe(1));
    ASSERT_TRUE(plan.ok());
    plan->writer.set("qwen3moe.block_count", gguf::MetaValue::u32(0xffffffffu));
    ASSERT_TRUE(write_synth(*plan, dir.file("bad.gguf"), 1).ok());
    auto f = gguf::File::open(dir.file("bad.gguf"));
    ASSERT_TRUE(f.ok()) << f.error().message;
    auto m = Model::load(*f);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("key 'qwen3moe.block_count' is 4294967295, but the file has"),
              std::string::npos)
        << m.error().message;
}

TEST(ModelLoad, UnsupportedArchitectureIsNamed) {
    test::TempDir dir;
    gguf::Writer w;
    w.set("general.architecture", gguf::MetaValue::string("mamba"));
    w.set("mamba.block_count", gguf::MetaValue::u32(1));
    w.set("mamba.embedding_length", gguf::MetaValue::u32(8));
    w.set("mamba.attention.head_count", gguf::MetaValue::u32(1));
    ASSERT_TRUE(w.write(dir.file("m.gguf")).ok());
    auto f = gguf::File::open(dir.file("m.gguf"));
    ASSERT_TRUE(f.ok());
    auto m = Model::load(*f);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("architecture 'mamba' is not supported"), std::string::npos)
        << m.error().message;
}

TEST(ModelLoad, MissingRequiredKeyIsNamed) {
    test::TempDir dir;
    gguf::Writer w;
    w.set("general.architecture", gguf::MetaValue::string("llama"));
    w.set("llama.embedding_length", gguf::MetaValue::u32(8));
    ASSERT_TRUE(w.write(dir.file("m.gguf")).ok());
    auto f = gguf::File::open(dir.file("m.gguf"));
    ASSERT_TRUE(f.ok());
    auto m = Model::load(*f);
    ASSERT_FALSE(m.ok());
    EXPECT_NE(m.error().message.find("'llama.block_count'"), std::string::npos) << m.error().message;
}

}  // namespace
}  // namespace strata
