// The `strata` binary end to end: probe on every fixture, probe's JSON, errors for
// bad files and flags, and synth followed by probe.

#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <filesystem>
#include <set>

namespace strata {
namespace {

using test::data_path;
using test::run_strata;
using test::TempDir;

struct ProbeCase {
    std::string file;
    std::string arch;
    uint32_t n_expert, n_expert_used;
    // Routed-expert bytes computed by hand from the fixture's shapes: layers with
    // experts x 3 matrices x experts x rows x cols x bytes per element (+ biases).
    uint64_t expert_bytes;
};

// F32 fixtures: width 64, expert FFN 64, 4 experts, F32 (4 bytes).
constexpr uint64_t kF32ExpertLayer = 3ull * 4 * 64 * 64 * 4;
// gpt-oss adds per-expert biases: 3 tensors of [64, 4] F32.
constexpr uint64_t kGptOssBiasLayer = 3ull * 64 * 4 * 4;
// Quantised fixtures: width 256, expert FFN 256, 8 experts; bytes per 256 elements
// per type: Q8_0 8 blocks x 34, Q4_0 8 x 18, MXFP4 8 x 17.
constexpr uint64_t kQuantExpertElems = 3ull * 8 * 256 * 256;

const ProbeCase kCases[] = {
    {"llama", "llama", 0, 0, 0},
    {"mixtral", "llama", 4, 2, 2 * kF32ExpertLayer},
    {"qwen2moe", "qwen2moe", 4, 2, 2 * kF32ExpertLayer},
    {"qwen3moe", "qwen3moe", 4, 2, 2 * kF32ExpertLayer},
    {"olmoe", "olmoe", 4, 2, 2 * kF32ExpertLayer},
    {"deepseek", "deepseek", 4, 2, 1 * kF32ExpertLayer},  // the first block is dense
    {"phimoe", "phimoe", 4, 2, 2 * kF32ExpertLayer},
    {"gpt-oss", "gpt-oss", 4, 2, 2 * (kF32ExpertLayer + kGptOssBiasLayer)},
    {"mixtral-Q8_0", "llama", 8, 2, 2 * kQuantExpertElems / 256 * 8 * 34},
    {"deepseek-Q4_0", "deepseek", 8, 2, 1 * kQuantExpertElems / 256 * 8 * 18},
    {"gpt-oss-MXFP4_MOE", "gpt-oss", 8, 2, 2 * (kQuantExpertElems / 256 * 8 * 17 + 3ull * 256 * 8 * 4)},
};

class ProbeFixture : public ::testing::TestWithParam<ProbeCase> {};

TEST_P(ProbeFixture, ReportsArchitectureExpertsAndBytes) {
    const ProbeCase& c = GetParam();
    auto r = run_strata("probe --json " + data_path("reference/" + c.file + ".gguf"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);  // throws, failing the test, if not JSON
    EXPECT_EQ(j["architecture"], c.arch);
    EXPECT_EQ(j["hparams"]["n_layer"], 2);
    EXPECT_EQ(j["hparams"]["n_expert"], c.n_expert);
    EXPECT_EQ(j["hparams"]["n_expert_used"], c.n_expert_used);
    EXPECT_EQ(j["routed_expert_bytes"], c.expert_bytes);
    // Everything else plus the experts is every tensor byte; the file adds only its
    // header and alignment padding.
    const uint64_t tensor_bytes = j["routed_expert_bytes"].get<uint64_t>() + j["other_bytes"].get<uint64_t>();
    EXPECT_LT(tensor_bytes, j["file_size"].get<uint64_t>());

    auto text = run_strata("probe " + data_path("reference/" + c.file + ".gguf"));
    ASSERT_EQ(text.exit_code, 0);
    EXPECT_NE(text.out.find("architecture    " + c.arch), std::string::npos) << text.out;
}

INSTANTIATE_TEST_SUITE_P(Reference, ProbeFixture, ::testing::ValuesIn(kCases),
                         [](const auto& info) {
                             std::string n = info.param.file;
                             for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                             return n;
                         });

TEST(Probe, QwenQ4KMExpertTypesAreTheQuantisersMix) {
    auto r = run_strata("probe --json " + data_path("reference/qwen3moe-Q4_K_M.gguf"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    std::set<std::string> types;
    for (const auto& t : j["routed_expert_types"]) types.insert(t["type"]);
    // Q4_K_M keeps some down projections at higher precision.
    EXPECT_TRUE(types.count("Q4_K")) << r.out;
    EXPECT_EQ(j["hparams"]["n_expert"], 8);
}

// Every fixture, including vocab-only tokenizer files and the real model, probes
// successfully; the vocab-only ones say so.
TEST(Probe, EveryFixtureFile) {
    int n = 0;
    for (const char* dir : {"reference", "tokenizer", "real"}) {
        for (const auto& e : std::filesystem::directory_iterator(data_path(dir))) {
            if (e.path().extension() != ".gguf") continue;
            ++n;
            auto r = run_strata("probe --json " + e.path().string());
            ASSERT_EQ(r.exit_code, 0) << e.path() << "\n" << r.out;
            const auto j = nlohmann::json::parse(r.out);
            EXPECT_EQ(j["vocab_only"], std::string(dir) == "tokenizer") << e.path();
            EXPECT_GT(j["tokenizer"]["vocab_size"].get<uint64_t>(), 0u) << e.path();
        }
    }
    EXPECT_EQ(n, 12 + 11 + 1);  // reference models, vocabularies, stories260K
}

TEST(Probe, RealModelText) {
    auto r = run_strata("probe " + data_path("real/stories260K.gguf"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("experts         none (dense model)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("SentencePiece"), std::string::npos) << r.out;
}

TEST(Probe, MalformedFileExitsNonZeroWithTheReason) {
    TempDir dir;
    // A truncated download: the last expert tensor's data is cut off.
    const auto bytes = test::read_file(data_path("reference/qwen3moe.gguf"));
    test::write_file(dir.file("cut.gguf"), std::vector<uint8_t>(bytes.begin(), bytes.end() - 1000));
    auto r = run_strata("probe " + dir.file("cut.gguf"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("data is not within the file bounds"), std::string::npos) << r.out;

    r = run_strata("probe " + dir.file("missing.gguf"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("missing.gguf"), std::string::npos) << r.out;

    r = run_strata("probe " + dir.path().string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("directory"), std::string::npos) << r.out;
}

TEST(Cli, UnknownCommandAndMissingArgumentsFail) {
    EXPECT_NE(run_strata("frobnicate").exit_code, 0);
    EXPECT_NE(run_strata("probe").exit_code, 0);
    EXPECT_NE(run_strata("").exit_code, 0);
    auto help = run_strata("--help");
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("probe"), std::string::npos);
    EXPECT_NE(help.out.find("synth"), std::string::npos);
    EXPECT_NE(help.out.find("bench"), std::string::npos);
}

TEST(Synth, CliWritesAFileProbeReads) {
    TempDir dir;
    const std::string out = dir.file("tiny.gguf");
    auto r = run_strata("synth --arch gpt-oss --expert-type mxfp4 --seed 7 --out " + out);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto p = run_strata("probe --json " + out);
    ASSERT_EQ(p.exit_code, 0) << p.out;
    const auto j = nlohmann::json::parse(p.out);
    EXPECT_EQ(j["architecture"], "gpt-oss");
    EXPECT_EQ(j["hparams"]["n_expert"], 4);
    EXPECT_EQ(j["routed_expert_types"][0]["type"], "MXFP4");
    EXPECT_TRUE(j["tokenizer"]["chat_template"].get<bool>());
}

TEST(Synth, CliDryRunPrintsPresetSize) {
    auto r = run_strata("synth --preset gpt-oss-120b --dry-run");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("gpt-oss-120b"), std::string::npos) << r.out;
    auto list = run_strata("synth --list-presets");
    for (const char* name : {"gpt-oss-20b", "gpt-oss-120b", "qwen3-30b-a3b", "mixtral-8x7b", "deepseek-moe-16b",
                             "phi-3.5-moe", "olmoe-1b-7b"})
        EXPECT_NE(list.out.find(name), std::string::npos) << name;
}

TEST(Synth, CliBadInputIsAnError) {
    TempDir dir;
    auto r = run_strata("synth --preset gpt-oss-2b --dry-run");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("unknown preset 'gpt-oss-2b'"), std::string::npos) << r.out;
    r = run_strata("synth --arch qwen3moe --expert-type IQ2_XXS --out " + dir.file("x.gguf"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("'IQ2_XXS'"), std::string::npos) << r.out;
    r = run_strata("synth --arch qwen3moe --experts-used 9 --out " + dir.file("x.gguf"));
    EXPECT_EQ(r.exit_code, 1) << r.out;
    r = run_strata("synth --arch qwen3moe --out /nonexistent-dir/x.gguf");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("/nonexistent-dir/x.gguf"), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(dir.file("x.gguf")));
}

}  // namespace
}  // namespace strata
