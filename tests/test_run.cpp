// `strata run` end to end: the real trained model reproduces the reference
// implementation's greedy texts exactly, and a real model shape from synth streams.

#include "ops/backend.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace strata {
namespace {

using test::data_path;
using test::run_strata;

int ops_cuda_devices() {
    return ops::cuda_device_count();
}

// Single quotes for the shell; the fixture prompts contain none.
std::string quoted(const std::string& s) {
    return "'" + s + "'";
}

// Greedy decoding is deterministic, so the text must be identical: prompt and
// continuation, with the F16 KV cache the reference used. Any numerical slip
// large enough to flip one argmax changes the text.
TEST(Run, Stories260KGreedyTextsMatchTheReference) {
    std::ifstream in(data_path("real/stories260K-greedy.jsonl"));
    int n = 0;
    for (std::string line; std::getline(in, line);) {
        const auto c = nlohmann::json::parse(line);
        const std::string prompt = c["prompt"];
        auto r =
            run_strata("run " + data_path("real/stories260K.gguf") + " --temp 0 --kv-type f16 -n " +
                           std::to_string(c["n_predict"].get<int>()) + " -p " + quoted(prompt),
                       true);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        EXPECT_EQ(r.out, c["expected"].get<std::string>()) << "prompt: " << prompt;
        ++n;
    }
    EXPECT_GT(n, 0);
}

TEST(Run, SameSeedSameTextAndSummaryOnStderr) {
    const std::string cmd =
        "run " + data_path("real/stories260K.gguf") + " --temp 1.0 --seed 42 -n 24 -p 'Tom and'";
    auto a = run_strata(cmd, true), b = run_strata(cmd, true);
    ASSERT_EQ(a.exit_code, 0) << a.out;
    EXPECT_EQ(a.out, b.out);
    auto c = run_strata(
        "run " + data_path("real/stories260K.gguf") + " --temp 1.0 --seed 43 -n 24 -p 'Tom and'",
        true);
    EXPECT_NE(a.out, c.out);  // 24 tokens at temperature 1: another seed gives other text
    auto both = run_strata(cmd);
    EXPECT_NE(both.out.find("tokens/s"), std::string::npos) << both.out;
    EXPECT_NE(both.out.find("loaded"), std::string::npos) << both.out;
}

TEST(Run, StopStringEndsTheTextAndIsNotPrinted) {
    auto r = run_strata("run " + data_path("real/stories260K.gguf") +
                            " --temp 0 -n 48 --stop 'little girl' -p 'Once upon a time'",
                        true);
    ASSERT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, "Once upon a time, there was a ");
}

TEST(Run, BadInputIsAnError) {
    auto r = run_strata("run " + data_path("real/stories260K.gguf") + " -p 'x' --kv-type q9");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("--kv-type 'q9'"), std::string::npos) << r.out;
    r = run_strata("run " + data_path("real/stories260K.gguf") +
                   " -c 4 -p 'a long prompt that is many tokens'");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("longer than the context"), std::string::npos) << r.out;
    r = run_strata("run /nonexistent.gguf -p x");
    EXPECT_EQ(r.exit_code, 1);
}

// `--device cpu` sends the whole pass through the GPU tier's code (DeviceModel on
// the CPU backend), whose kernels are the plain pass's: greedy text must be
// identical, and the load log must say which device ran it. On the built-in
// MoE model with two layers' experts on the host, the split MoE path is taken too.
TEST(Run, DeviceCpuRunsTheGpuTiersPassWithTheSameText) {
    const std::string base = "run --temp 0 -n 24 -p 'In the beginning'";
    auto plain = run_strata(base + " --device none", true);
    ASSERT_EQ(plain.exit_code, 0) << plain.out;
    auto dev = run_strata(base + " --device cpu", true);
    ASSERT_EQ(dev.exit_code, 0) << dev.out;
    EXPECT_EQ(dev.out, plain.out);
    auto log = run_strata("run -n 1 -p x --device cpu");
    EXPECT_NE(log.out.find("device: "), std::string::npos) << log.out;
    auto split = run_strata(base + " --device cpu --n-cpu-moe 2", true);
    ASSERT_EQ(split.exit_code, 0) << split.out;
    EXPECT_EQ(split.out, plain.out);
}

TEST(Run, BadDeviceIsNamed) {
    auto r = run_strata("run -n 1 -p x --device gpu7");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("--device 'gpu7'"), std::string::npos) << r.out;
    // Without a CUDA device, asking for one says why there is none.
    if (ops_cuda_devices() == 0) {
        r = run_strata("run -n 1 -p x --device cuda:0");
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_NE(r.out.find("--device cuda:0"), std::string::npos) << r.out;
    }
}

// The CPU row is always there, with its memory; the CUDA line says whether this
// build has the backend.
TEST(Devices, ListsTheCpuAndTheCudaStatus) {
    auto r = run_strata("devices --no-measure --json", true);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_GE(j["devices"].size(), 1u);
    EXPECT_EQ(j["devices"][0]["id"], "cpu");
    EXPECT_GT(j["devices"][0]["total_bytes"].get<uint64_t>(), 0u);
    EXPECT_FALSE(j["cuda"].get<std::string>().empty());
    auto t = run_strata("devices --no-measure", true);
    ASSERT_EQ(t.exit_code, 0);
    EXPECT_NE(t.out.find("cpu"), std::string::npos) << t.out;
    EXPECT_NE(t.out.find("cuda: "), std::string::npos) << t.out;
}

// The check: a real model shape (Qwen3-30B-A3B, one layer, 4-bit K-quant
// experts) written by synth loads and streams tokens with its chat template.
TEST(Run, SynthQwen3ShapeStreams) {
    test::TempDir dir;
    const std::string model = dir.file("q3.gguf");
    auto w = run_strata("synth --preset qwen3-30b-a3b --layers 1 --type q4_k --out " + model);
    ASSERT_EQ(w.exit_code, 0) << w.out;
    auto r =
        run_strata("run " + model + " --chat -n 4 --temp 0.7 --seed 1 -p 'Hello' --no-prefetch");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("generated 4 tokens"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// --chat-template replaces the model's template: a template that writes a fixed
// marker makes the prompt start with it, which the token count shows.
TEST(Run, ChatTemplateFileOverridesTheModels) {
    test::TempDir dir;
    {
        std::ofstream t(dir.file("t.jinja"));
        t << "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}";
    }
    const std::string base =
        "run " + test::data_path("real/stories260K.gguf") + " --chat -n 1 --temp 0 -p 'Hello'";
    auto plain = test::run_strata(base);
    auto custom = test::run_strata(base + " --chat-template " + dir.file("t.jinja"));
    ASSERT_EQ(plain.exit_code, 0) << plain.out;
    ASSERT_EQ(custom.exit_code, 0) << custom.out;
    // stories260K has no template of its own: the default run falls back to ChatML and says so.
    EXPECT_NE(plain.out.find("using ChatML"), std::string::npos) << plain.out;
    EXPECT_EQ(custom.out.find("using ChatML"), std::string::npos) << custom.out;
    auto bad = test::run_strata(base + " --chat-template " + dir.file("missing.jinja"));
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.out.find("missing.jinja"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace strata
