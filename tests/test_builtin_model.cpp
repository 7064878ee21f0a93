// The built-in model (models/strata-tiny-moe.gguf, trained by tools/train):
// the engine's greedy texts equal those of the trainer's own forward pass, and
// `run` and `serve` fall back to the copy compiled into the binary.
//
// tests/data/real/strata-tiny-moe-greedy.jsonl was written by
//   build/tools/train/strata-train golden --model models/strata-tiny-moe.gguf -n 48 --prompt ...
// which decodes with the trainer's forward pass (tools/train/model.cpp: no KV
// cache, its own attention, routing and matrix products), so these tests hold
// the engine to a second, independent implementation of qwen3moe.

#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

namespace strata {
namespace {

using test::data_path;
using test::run_strata;

std::string model_file() { return data_path("../../models/strata-tiny-moe.gguf"); }

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
    EXPECT_NE(both.out.find("no model given; using the built-in strata-tiny-moe"), std::string::npos) << both.out;
}

// `serve` with nothing given and nothing to discover (an empty HOME and working
// folder, no model variables) serves the built-in model.
TEST(BuiltinModel, ServeWithNothingFoundServesTheBuiltInOne) {
    test::TempDir dir;
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        ::close(out[0]);
        ::close(out[1]);
        std::freopen("/dev/null", "w", stderr);
        if (::chdir(dir.path().c_str()) != 0) ::_exit(126);
        ::setenv("HOME", dir.path().c_str(), 1);
        for (const char* v : {"STRATA_MODELS", "HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "XDG_CACHE_HOME"})
            ::unsetenv(v);
        ::execl(STRATA_BINARY, STRATA_BINARY, "serve", "--port", "0", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    FILE* f = ::fdopen(out[0], "r");
    char line[256] = {};
    const bool got = std::fgets(line, sizeof line, f) != nullptr;
    const std::string s(line);
    int port = 0;
    if (got && s.starts_with("strata: listening on http://127.0.0.1:")) port = std::stoi(s.substr(s.rfind(':') + 1));
    EXPECT_GT(port, 0) << s;
    if (port > 0) {
        httplib::Client c("127.0.0.1", port);
        auto models = c.Get("/v1/models");
        ASSERT_TRUE(models);
        EXPECT_NE(models->body.find("\"strata-tiny-moe\""), std::string::npos) << models->body;
        const nlohmann::json req = {{"model", "strata-tiny-moe"}, {"prompt", "And God said"}, {"max_tokens", 4},
                                    {"temperature", 0}};
        auto res = c.Post("/v1/completions", req.dump(), "application/json");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200) << res->body;
    }
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::fclose(f);
}

}  // namespace
}  // namespace strata
