// `strata validate` end to end: in-process generation on the real stories260K
// matches `strata run`'s reference texts and is deterministic at temperature 0;
// `--compare` with experts on the disk tier reports identical outputs; the URL
// mode, against a server running in the test over real HTTP, takes token counts
// and tokens/s from the server's usage (and reports none when a server sends
// no usage) and times the first streamed content.

#include "app/validate_client.h"
#include "app/validate_report.h"
#include "engine/validate.h"
#include "server_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

namespace strata {
namespace {

using nlohmann::json;
using test::data_path;

using test::stories;

// The first `n` prompts of the reference texts, as a suite without checks.
Suite reference_suite(size_t n, int max_tokens) {
    std::ifstream in(data_path("real/stories260K-greedy.jsonl"));
    Suite s{.name = "ref"};
    for (std::string line; s.prompts.size() < n && std::getline(in, line);) {
        const json c = json::parse(line);
        s.prompts.push_back({.name = fmt::format("p{}", s.prompts.size()),
                             .prompt = c["prompt"],
                             .max_tokens = max_tokens});
    }
    return s;
}

std::unique_ptr<Engine> load(const std::string& path) {
    auto e = Engine::load(path, {.threads = 2, .memory = {.n_ctx = 128}});
    EXPECT_TRUE(e.ok()) << e.error().message;
    return e.ok() ? std::move(*e) : nullptr;
}

// Greedy: the same text twice, and the reference implementation's text.
TEST(Validate, InProcessGreedyIsDeterministicAndMatchesTheReference) {
    auto e = load(stories());
    ASSERT_TRUE(e);
    const Suite suite = reference_suite(2, 48);
    const ValidateParams p{.repeat = 2, .chat = false};
    auto r = validate_in_process(*e, suite, p, 128, KvType::F16, nullptr);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 4u);
    std::ifstream in(data_path("real/stories260K-greedy.jsonl"));
    for (size_t i = 0; i < 2; ++i) {
        std::string line;
        std::getline(in, line);
        const json c = json::parse(line);
        const std::string prompt = c["prompt"], expected = c["expected"];
        const Sample &a = (*r)[2 * i], &b = (*r)[2 * i + 1];
        EXPECT_EQ(a.text, expected.substr(prompt.size())) << prompt;
        EXPECT_EQ(a.text, b.text);
        EXPECT_EQ(a.completion_tokens, 48);
        EXPECT_EQ(a.finish, "length");
        ASSERT_TRUE(a.prompt_tokens);
        EXPECT_GT(*a.prompt_tokens, 1);
        ASSERT_TRUE(a.ttft_s && a.tokens_per_s && a.token_repetition);
        EXPECT_LE(*a.ttft_s, a.total_s);
        // Counted by hand: the first text repeats no word trigram; the second, 25
        // words ("go on a walk. She saw a big box with a big box. She wanted to
        // see what was inside. She wanted to see what"), repeats "a big box",
        // "she wanted to", "wanted to see" and "to see what" once each, of 23.
        EXPECT_DOUBLE_EQ(a.word_repetition, i == 0 ? 0.0 : 4.0 / 23.0);
        EXPECT_TRUE(a.passed());  // no checks asked for
    }
}

// Temperatures and seeds: each repetition gets its own seed, so at temperature 1
// two repetitions differ, while the same (temperature, seed) reruns identically.
TEST(Validate, SweepSeedsEachRepetition) {
    auto e = load(stories());
    ASSERT_TRUE(e);
    const Suite suite = reference_suite(1, 24);
    const ValidateParams p{.temperatures = {1.0}, .repeat = 2, .seed = 7, .chat = false};
    auto r = validate_in_process(*e, suite, p, 128, KvType::F16, nullptr);
    auto again = validate_in_process(*e, suite, p, 128, KvType::F16, nullptr);
    ASSERT_TRUE(r.ok() && again.ok());
    EXPECT_NE((*r)[0].text, (*r)[1].text);  // 24 tokens at temperature 1 under two seeds
    EXPECT_EQ((*r)[0].text, (*again)[0].text);
    EXPECT_EQ((*r)[1].text, (*again)[1].text);
}

TEST(Validate, CompareReportsTheFirstDifferingByte) {
    std::vector<Sample> a(2), b(2);
    a[0].text = b[0].text = "same";
    a[1].text = "abcdef";
    b[1].text = "abcxef";
    const app::Comparison c = app::compare_samples(a, b);
    ASSERT_EQ(c.pairs.size(), 2u);
    EXPECT_FALSE(c.pairs[0].first_difference);
    EXPECT_EQ(c.pairs[1].first_difference, 3u);
    EXPECT_FALSE(c.identical());
    b[1].text = "abc";  // a prefix differs where it ends
    EXPECT_EQ(app::compare_samples(a, b).pairs[1].first_difference, 3u);
}

std::string write_suite(const test::TempDir& dir, const std::string& body) {
    const std::string path = dir.file("suite.json");
    std::ofstream(path) << body;
    return path;
}

// The CLI end to end with --compare: a MoE model under a RAM budget so small that
// every routed expert lives on the disk tier, read through a cache of about four
// of its eight experts (so the cache evicts), gives the same bytes as all in
// RAM; and so does stories260K with its FFN read from the file's mapping.
TEST(Validate, CompareWithExpertsOnDiskIsIdentical) {
    test::TempDir dir;
    const std::string suite = write_suite(
        dir,
        R"({"prompts": [{"name": "a", "prompt": "Once upon a time"}, {"name": "b", "prompt": "Tom"}]})");
    const std::string report = dir.file("r.json");
    auto r = test::run_strata("validate " + data_path("reference/qwen3moe.gguf") +
                              " --no-chat --suite " + suite + " -n 16 -t 2 -c 256 --json " +
                              report + " --compare '--ram-budget 2MiB --fit'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("all outputs are byte-identical"), std::string::npos) << r.out;
    std::ifstream in(report);
    const json j = json::parse(in, nullptr, false);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["compare"]["identical"], true);
    EXPECT_EQ(j["compare"]["pairs"].size(), 2u);
    EXPECT_EQ(j["compare"]["placement_b"], "--fit --ram-budget 2MiB");
    EXPECT_GT(j["compare"]["placement_b_expert_cache"]["misses"], 0);
    EXPECT_GT(j["compare"]["placement_b_expert_cache"]["evictions"], 0);
    EXPECT_EQ(j["samples"][0]["completion_tokens"], 16);

    auto s = test::run_strata("validate " + stories() + " --no-chat --suite " + suite +
                              " -n 16 -t 2 --compare \"--ot 'ffn_.*=disk'\"");
    ASSERT_EQ(s.exit_code, 0) << s.out;
    EXPECT_NE(s.out.find("all outputs are byte-identical"), std::string::npos) << s.out;
}

TEST(Validate, CliErrorsAndFailedChecks) {
    test::TempDir dir;
    auto r = test::run_strata("validate " + stories() + " --suite nope");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("--suite 'nope'"), std::string::npos) << r.out;
    r = test::run_strata("validate " + stories() + " --temperatures 0.1,x");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("'x' is not a temperature"), std::string::npos) << r.out;
    r = test::run_strata("validate " + stories() + " --compare '--bogus 1'");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("--compare"), std::string::npos) << r.out;
    r = test::run_strata("validate " + stories() + " --url http://127.0.0.1:1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("not both"), std::string::npos) << r.out;
    // No MODEL and no --url: the built-in model, which says so (its checks may fail: exit 2).
    r = test::run_strata("validate -n 4 -t 2");
    EXPECT_NE(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("using the built-in strata-tiny-moe"), std::string::npos) << r.out;
    r = test::run_strata("validate --url http://127.0.0.1:1 --ram-budget 1GiB");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("not to --url"), std::string::npos) << r.out;
    EXPECT_NE(test::run_strata("--help").out.find("validate"), std::string::npos);
    // stories260K writes children's stories: the factorial prompt's keywords are
    // missing, so the run completes with exit status 2 and says which checks failed.
    const std::string suite = write_suite(
        dir,
        R"({"prompts": [{"name": "code", "prompt": "Once upon a time", "expect": ["def factorial"]}]})");
    r = test::run_strata("validate " + stories() + " --no-chat -n 8 -t 2 --suite " + suite, true);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("FAIL; expect 'def factorial' (1/1)"), std::string::npos) << r.out;
}

class ValidateUrl : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        std::signal(SIGPIPE, SIG_IGN);
        server_ = new test::TestServer({.models = {stories()}, .n_ctx = 128, .parallel = 1});
    }
    static void TearDownTestSuite() { delete server_; }
    static inline test::TestServer* server_ = nullptr;
};

// Streamed and not, the server's text is the in-process greedy text, and the
// token counts are the server's usage: 12 completion tokens, as asked.
TEST_F(ValidateUrl, UsageCountsAndFirstTokenTime) {
    const Suite suite = reference_suite(1, 12);
    const ValidateParams p{.repeat = 2, .chat = false};
    auto r = app::validate_url({.url = server_->url()}, suite, p, nullptr);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 4u);  // 2 repetitions x (stream, non-stream)
    auto e = load(stories());
    ASSERT_TRUE(e);
    auto local = validate_in_process(*e, suite, p, 128, KvType::F16, nullptr);
    ASSERT_TRUE(local.ok());
    for (const Sample& s : *r) {
        EXPECT_TRUE(s.error.empty()) << s.error;
        EXPECT_EQ(s.text, (*local)[0].text) << s.mode;
        EXPECT_EQ(s.completion_tokens, 12) << s.mode;
        EXPECT_EQ(s.prompt_tokens, (*local)[0].prompt_tokens) << s.mode;
        ASSERT_TRUE(s.e2e_tokens_per_s);
        EXPECT_DOUBLE_EQ(*s.e2e_tokens_per_s, 12 / s.total_s);
        EXPECT_FALSE(s.token_repetition);  // the server returns text, not token ids
        if (s.mode == "stream") {
            ASSERT_TRUE(s.ttft_s && s.tokens_per_s);
            EXPECT_LT(*s.ttft_s, s.total_s);
            EXPECT_DOUBLE_EQ(*s.tokens_per_s, 12 / (s.total_s - *s.ttft_s));
        } else {
            EXPECT_EQ(s.mode, "non-stream");
            EXPECT_FALSE(s.ttft_s);
            EXPECT_FALSE(s.tokens_per_s);
        }
    }
    EXPECT_EQ((*r)[0].mode, "stream");
    EXPECT_EQ((*r)[1].mode, "non-stream");
}

// Chat requests go to /v1/chat/completions; a refused request is a failed sample
// naming the server's message, not a crash; an unreachable server is an error.
TEST_F(ValidateUrl, ChatErrorsAndUnreachable) {
    Suite suite = reference_suite(1, 4);
    auto ok =
        app::validate_url({.url = server_->url() + "/v1/", .stream = true, .non_stream = false},
                          suite, {.chat = true}, nullptr);
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    ASSERT_EQ(ok->size(), 1u);
    EXPECT_TRUE((*ok)[0].error.empty()) << (*ok)[0].error;
    EXPECT_EQ((*ok)[0].completion_tokens, 4);
    auto refused = app::validate_url({.url = server_->url(), .model = "no-such-model"}, suite,
                                     {.chat = true}, nullptr);
    ASSERT_TRUE(refused.ok());
    ASSERT_EQ(refused->size(), 2u);
    EXPECT_NE((*refused)[0].error.find("HTTP 404"), std::string::npos) << (*refused)[0].error;
    EXPECT_FALSE((*refused)[0].passed());
    auto down = app::validate_url({.url = "http://127.0.0.1:1"}, suite, {}, nullptr);
    EXPECT_FALSE(down.ok());
}

// A server that streams text but no usage: the counts and tokens/s stay empty
// (never estimated from the words), the text and TTFT are still measured.
TEST(ValidateUrlNoUsage, NothingIsEstimated) {
    httplib::Server srv;
    srv.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
            "data: {\"choices\":[{\"delta\":{\"content\":\"one two\"}}]}\n\n"
            "data: {\"choices\":[{\"delta\":{\"content\":\" "
            "three\"},\"finish_reason\":\"stop\"}]}\n\n"
            "data: [DONE]\n\n",
            "text/event-stream");
    });
    const int port = srv.bind_to_any_port("127.0.0.1");
    std::thread t([&] { srv.listen_after_bind(); });
    while (!srv.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    Suite suite{.name = "s", .prompts = {{.name = "a", .prompt = "x"}}};
    auto r =
        app::validate_url({.url = "http://127.0.0.1:" + std::to_string(port), .non_stream = false},
                          suite, {}, nullptr);
    srv.stop();
    t.join();
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), 1u);
    const Sample& s = (*r)[0];
    EXPECT_EQ(s.text, "one two three");
    EXPECT_EQ(s.finish, "stop");
    EXPECT_TRUE(s.ttft_s);
    EXPECT_FALSE(s.completion_tokens);
    EXPECT_FALSE(s.tokens_per_s);
    EXPECT_FALSE(s.e2e_tokens_per_s);
}

// The CLI against the in-test server: the JSON report has every sample.
TEST_F(ValidateUrl, CliJsonReport) {
    test::TempDir dir;
    const std::string suite =
        write_suite(dir, R"({"name": "two", "prompts": [{"name": "a", "prompt": "Once"},
                                                   {"name": "b", "prompt": "Tom", "expect": ["Tom"]}]})");
    const std::string report = dir.file("r.json");
    auto r = test::run_strata("validate --url " + server_->url() +
                              " --model stories260K --no-chat -n 6 --repeat 2 " +
                              "--temperatures 0,0.7 --suite " + suite + " --json " + report);
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 2) << r.out;
    std::ifstream in(report);
    const json j = json::parse(in, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_EQ(j["suite"], "two");
    EXPECT_EQ(j["samples"].size(), 16u);  // 2 temperatures x 2 prompts x 2 repetitions x 2 modes
    for (const json& s : j["samples"]) {
        EXPECT_EQ(s["completion_tokens"], 6) << s.dump();
        EXPECT_TRUE(s["error"].is_null()) << s.dump();
    }
    EXPECT_NE(r.out.find("| 0.70 | stream | 4 |"), std::string::npos)
        << r.out;  // the sweep table's row
}

}  // namespace
}  // namespace strata
