// The built-in model (models/strata-tiny-moe.gguf, trained by tools/train):
// the engine's greedy texts equal those of the trainer's own forward pass, and
// `run` and `serve` fall back to the copy compiled into the binary.
//
// tests/data/real/strata-tiny-moe-greedy.jsonl was written by
//   build/tools/train/strata-train golden --model models/strata-tiny-moe.gguf -n 48 --prompt ...
// which decodes with the trainer's forward pass (tools/train/model.cpp: no KV
// cache, its own attention, routing and matrix products), so these tests hold
// the engine to a second, independent implementation of qwen3moe.

#include "server_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

namespace strata {
namespace {

using test::data_path;
using test::run_strata;

std::string model_file() {
    return data_path("../../models/strata-tiny-moe.gguf");
}

std::vector<nlohmann::json> goldens() {
    std::ifstream in(data_path("real/strata-tiny-moe-greedy.jsonl"));
    std::vector<nlohmann::json> v;
    for (std::string line; std::getline(in, line);) v.push_back(nlohmann::json::parse(line));
    return v;
}

std::string run_args(const nlohmann::json& c) {
    // Single quotes for the shell; the fixture prompts contain none.
    return " --temp 0 --kv-type f32 -n " + std::to_string(c["n_predict"].get<int>()) + " -p '" +
           c["prompt"].get<std::string>() + "'";
}

// Greedy decoding is deterministic, so the text must be identical, byte for byte:
// a slip in the engine large enough to flip one argmax changes it. The F32 KV
// cache matches the trainer, which keeps everything in F32.
TEST(BuiltinModel, GreedyTextsMatchTheTrainersForwardPass) {
    const auto cases = goldens();
    ASSERT_GE(cases.size(), 3u);
    for (const auto& c : cases) {
        auto r = run_strata("run " + model_file() + run_args(c), true);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        EXPECT_EQ(r.out, c["expected"].get<std::string>()) << "prompt: " << c["prompt"];
    }
}

// No MODEL: the compiled-in copy runs, says so, and is the same model.
TEST(BuiltinModel, RunWithoutAModelUsesTheBuiltInOne) {
    const auto c = goldens().at(0);
    auto out = run_strata("run" + run_args(c), true);
    ASSERT_EQ(out.exit_code, 0) << out.out;
    EXPECT_EQ(out.out, c["expected"].get<std::string>());
    auto both = run_strata("run" + run_args(c));
    EXPECT_NE(both.out.find("no model given; using the built-in strata-tiny-moe"),
              std::string::npos)
        << both.out;
}

// Sets environment variables (or unsets them, for null) and the working folder
// for one scope, restoring them after: discovery reads both when a server starts.
class ScopedEnv {
  public:
    ScopedEnv(const std::vector<std::pair<std::string, const char*>>& vars,
              const std::filesystem::path& cwd)
        : cwd_(std::filesystem::current_path()) {
        for (const auto& [k, v] : vars) {
            const char* old = std::getenv(k.c_str());
            saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
            v ? ::setenv(k.c_str(), v, 1) : ::unsetenv(k.c_str());
        }
        std::filesystem::current_path(cwd);
    }
    ~ScopedEnv() {
        std::filesystem::current_path(cwd_);
        for (const auto& [k, v] : saved_)
            v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
    }

  private:
    std::filesystem::path cwd_;
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// A server with nothing given and nothing to discover (an empty HOME and working
// folder, no model variables) serves the built-in model.
TEST(BuiltinModel, ServeWithNothingFoundServesTheBuiltInOne) {
    test::TempDir dir;
    std::unique_ptr<test::TestServer> server;
    {
        const std::string home = dir.path().string();
        ScopedEnv env({{"HOME", home.c_str()},
                       {"STRATA_MODELS", nullptr},
                       {"HF_HOME", nullptr},
                       {"HF_HUB_CACHE", nullptr},
                       {"OLLAMA_MODELS", nullptr},
                       {"XDG_CACHE_HOME", nullptr}},
                      dir.path());
        server = std::make_unique<test::TestServer>(
            app::server::ServerOptions{.discover = true, .cap_ctx_at_training = true});
    }
    auto c = server->client();
    auto models = c.Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_NE(models->body.find("\"strata-tiny-moe\""), std::string::npos) << models->body;
    const nlohmann::json req = {{"model", "strata-tiny-moe"},
                                {"prompt", "And God said"},
                                {"max_tokens", 4},
                                {"temperature", 0}};
    auto res = c.Post("/v1/completions", req.dump(), "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
    // Without -c, a slot has the model's 128 trained positions, not the default
    // 4096: asking for more than fits is refused with the real context.
    nlohmann::json longer = req;
    longer["max_tokens"] = 200;
    res = c.Post("/v1/completions", longer.dump(), "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << res->body;
    EXPECT_NE(res->body.find("128"), std::string::npos) << res->body;
}

}  // namespace
}  // namespace strata
