// `strata serve` under load, over real HTTP: many streams batched together, a
// bounded queue, clients leaving while queued, /metrics, and --max-loaded.

#include "server_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <map>
#include <regex>
#include <thread>

namespace strata {
namespace {

using nlohmann::json;
using test::TestServer;

using test::stories;

// The text of a streamed completion, checking it ended with [DONE].
std::string streamed_text(const std::string& body) {
    std::string t;
    auto ev = test::sse_events(body);
    EXPECT_FALSE(ev.empty());
    if (ev.empty()) return t;
    EXPECT_EQ(ev.back(), "[DONE]");
    for (size_t i = 0; i + 1 < ev.size(); ++i)
        t += json::parse(ev[i])["choices"][0]["text"].get<std::string>();
    return t;
}

using test::health;
using test::wait_health;

const std::string kEndless =
    R"({"model":"syn","prompt":"hi","max_tokens":16000,"ignore_eos":true,"stream":true})";

TEST(ServerLoad, EightStreamsOnFourSlotsEachMatchTheirRunAlone) {
    std::signal(SIGPIPE, SIG_IGN);
    TestServer s({.models = {stories()}, .n_ctx = 256, .parallel = 4, .max_queue = 8});
    const char* prompts[] = {"Once upon a time", "The cat", "Lily went", "One day",
                             "Tom had",          "The sun", "A bird",    "Mom"};
    auto request = [&](int i) {
        json r = {{"model", "stories260K"},
                  {"prompt", prompts[i]},
                  {"max_tokens", 20 + 3 * i},
                  {"stream", true}};
        if (i % 2)
            r["temperature"] = 0.9, r["seed"] = 1000 + i;  // sampled
        else
            r["temperature"] = 0;  // greedy
        return r.dump();
    };
    auto post = [&](int i) {
        auto res = s.client().Post("/v1/completions", request(i), "application/json");
        EXPECT_TRUE(res && res->status == 200);
        return res ? streamed_text(res->body) : std::string();
    };
    std::vector<std::string> alone(8), crowd(8);
    for (int i = 0; i < 8; ++i) alone[i] = post(i);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) threads.emplace_back([&, i] { crowd[i] = post(i); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 8; ++i) {
        EXPECT_FALSE(alone[i].empty()) << prompts[i];
        EXPECT_EQ(crowd[i], alone[i]) << prompts[i];
    }
}

// With one slot and a queue of one: a third request is refused with 503 and
// Retry-After; the queued one, abandoned by its client, is dropped without ever
// running; the running one, abandoned too, frees the slot for the next.
TEST(ServerLoad, FullQueueGets503AndAbandonedRequestsAreDropped) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    TestServer s(
        {.models = {test::synth_model(dir, "syn")}, .n_ctx = 16384, .parallel = 1, .max_queue = 1});
    const int running = test::send_raw(s.port(), test::http_post("/v1/completions", kEndless));
    ASSERT_GE(running, 0);
    ASSERT_TRUE(test::read_until(running, "data: "));
    const int queued = test::send_raw(s.port(), test::http_post("/v1/completions", kEndless));
    ASSERT_GE(queued, 0);
    EXPECT_EQ(wait_health(s, [](const json& h) { return h["queued"] == 1; })["queued"], 1);

    for (const char* path : {"/v1/completions", "/api/generate"}) {
        auto res = s.client().Post(path, R"({"model":"syn","prompt":"hi","stream":false})",
                                   "application/json");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 503) << path;
        EXPECT_EQ(res->get_header_value("Retry-After"), "1") << path;
        const json e = json::parse(res->body);
        EXPECT_TRUE(std::string(path) == "/api/generate" ? e["error"].is_string()
                                                         : e["error"]["message"].is_string());
    }

    ::close(queued);
    // The slot or queue place is freed before the HTTP worker counts the
    // cancellation, so wait for both.
    json h = wait_health(
        s, [](const json& h) { return h["queued"] == 0 && h["requests_cancelled"] == 1; });
    EXPECT_EQ(h["queued"], 0);
    EXPECT_EQ(h["slots_busy"], 1);  // the running one goes on
    EXPECT_EQ(h["requests_cancelled"], 1);

    ::close(running);
    h = wait_health(
        s, [](const json& h) { return h["slots_busy"] == 0 && h["requests_cancelled"] == 2; });
    EXPECT_EQ(h["slots_busy"], 0);
    EXPECT_EQ(h["requests_cancelled"], 2);
    auto res = s.client().Post("/v1/completions", R"({"model":"syn","prompt":"hi","max_tokens":2})",
                               "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
}

// Samples of a Prometheus text exposition by series (`name{labels}`), checking
// every line is a comment or `series value`.
std::map<std::string, double> scrape(const TestServer& s) {
    auto res = s.client().Get("/metrics");
    EXPECT_TRUE(res && res->status == 200);
    if (!res) return {};
    EXPECT_TRUE(res->get_header_value("Content-Type").starts_with("text/plain; version=0.0.4"));
    static const std::regex sample(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]+="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_]+="(?:[^"\\]|\\.)*")*\})?) (\S+)$)");
    static const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
    std::map<std::string, double> out;
    size_t pos = 0, end;
    while ((end = res->body.find('\n', pos)) != std::string::npos) {
        const std::string line = res->body.substr(pos, end - pos);
        pos = end + 1;
        std::smatch m;
        if (std::regex_match(line, comment)) continue;
        EXPECT_TRUE(std::regex_match(line, m, sample)) << line;
        if (m.empty()) continue;
        out[m[1].str()] = m[3].str() == "+Inf" ? INFINITY : std::stod(m[3].str());
    }
    EXPECT_EQ(pos, res->body.size()) << "the exposition ends with a newline";
    return out;
}

// The sample of `series`, failing the test when there is none.
double at(const std::map<std::string, double>& m, const std::string& series) {
    auto it = m.find(series);
    if (it == m.end()) {
        ADD_FAILURE() << "no sample " << series;
        return -1;
    }
    return it->second;
}

double sum_prefix(const std::map<std::string, double>& m, const std::string& prefix) {
    double s = 0;
    for (const auto& [k, v] : m)
        if (k.starts_with(prefix)) s += v;
    return s;
}

TEST(ServerMetrics, ParseAndMoveWithRequests) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    TestServer s({.models = {test::synth_model(dir, "syn")}, .n_ctx = 256, .parallel = 2});
    const auto before = scrape(s);
    const std::string key = R"(strata_requests_total{endpoint="/v1/completions",status="200"})";
    EXPECT_EQ(before.count(key), 0u);

    auto res = s.client().Post("/v1/completions",
                               R"({"model":"syn","prompt":"hi","max_tokens":5,"ignore_eos":true})",
                               "application/json");
    ASSERT_TRUE(res && res->status == 200);
    const int n_prompt = json::parse(res->body)["usage"]["prompt_tokens"];
    res =
        s.client().Post("/v1/completions", R"({"model":"nope","prompt":"hi"})", "application/json");
    ASSERT_TRUE(res && res->status == 404);

    // httplib counts a request once its response is written, which may be just
    // after the client has read it.
    const std::string not_found =
        R"(strata_requests_total{endpoint="/v1/completions",status="404"})";
    auto after = scrape(s);
    for (int i = 0; i < 200 && !after.count(not_found); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        after = scrape(s);
    }
    EXPECT_EQ(at(after, key), 1);
    EXPECT_EQ(at(after, not_found), 1);
    EXPECT_EQ(
        at(after, "strata_generated_tokens_total") - at(before, "strata_generated_tokens_total"),
        5);
    EXPECT_EQ(at(after, "strata_prompt_tokens_total") - at(before, "strata_prompt_tokens_total"),
              n_prompt);
    EXPECT_EQ(at(after, "strata_time_to_first_token_seconds_count"), 1);
    EXPECT_EQ(at(after, R"(strata_time_to_first_token_seconds_bucket{le="+Inf"})"), 1);
    EXPECT_EQ(at(after, "strata_inter_token_latency_seconds_count"), 4);  // 5 tokens, 4 gaps
    EXPECT_EQ(at(after, R"(strata_sessions_active{model="syn"})"), 0);
    EXPECT_EQ(at(after, R"(strata_sessions_queued{model="syn"})"), 0);
    EXPECT_EQ(at(after, R"(strata_memory_bytes{tier="host",model="syn",kind="weights"})"),
              static_cast<double>(std::filesystem::file_size(dir.file("syn.gguf"))));
    EXPECT_GT(at(after, R"(strata_memory_bytes{tier="host",model="syn",kind="kv_cache"})"), 0);
    // Every token of the prompt and every generated token but the last went
    // through each MoE layer, each choosing `expert_used_count` experts.
    const double hits = sum_prefix(after, R"(strata_expert_hits_total{model="syn",layer="0",)");
    EXPECT_GT(hits, 0);
    const double per_token = hits / (n_prompt + 4);
    EXPECT_EQ(per_token, std::floor(per_token)) << hits;
}

// A model served through the gpu tier's pass (`--device cpu`: the CPU backend as
// the device) answers with the plain pass's greedy text, and /metrics reports
// what the device holds: the uploaded weights, and a KV cache once a sequence ran.
TEST(ServerMetrics, ReportsDeviceMemoryAndServesTheSameText) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    const std::string model = test::synth_model(dir, "syn");
    const std::string body =
        R"({"model":"syn","prompt":"hi","max_tokens":6,"temperature":0,"ignore_eos":true})";
    std::string plain_text;
    {
        TestServer plain({.models = {model}, .n_ctx = 128});
        auto res = plain.client().Post("/v1/completions", body, "application/json");
        ASSERT_TRUE(res && res->status == 200);
        plain_text = json::parse(res->body)["choices"][0]["text"];
        EXPECT_EQ(scrape(plain).count(
                      R"(strata_device_memory_bytes{device="cpu:0",model="syn",kind="weights"})"),
                  0u);
    }
    app::server::ServerOptions o{.models = {model}, .n_ctx = 128};
    o.placement.device = "cpu";
    TestServer s(o);
    auto res = s.client().Post("/v1/completions", body, "application/json");
    ASSERT_TRUE(res && res->status == 200) << (res ? res->body : "no answer");
    EXPECT_EQ(json::parse(res->body)["choices"][0]["text"], plain_text);
    const auto m = scrape(s);
    EXPECT_GT(at(m, R"(strata_device_memory_bytes{device="cpu:0",model="syn",kind="weights"})"), 0);
    EXPECT_GT(at(m, R"(strata_device_memory_bytes{device="cpu:0",model="syn",kind="kv_cache"})"),
              0);
    EXPECT_GT(at(m, R"(strata_device_memory_bytes{device="cpu:0",model="syn",kind="scratch"})"), 0);
}

std::vector<std::string> ps_names(const TestServer& s) {
    auto res = s.client().Get("/api/ps");
    std::vector<std::string> names;
    if (!res) return names;
    const json ps = json::parse(res->body);
    for (const auto& m : ps["models"]) names.push_back(m["name"]);
    return names;
}

TEST(ServerModels, MaxLoadedUnloadsTheLeastRecentlyUsedIdleModel) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    test::synth_model(dir, "a");
    test::synth_model(dir, "b");
    test::synth_model(dir, "c");
    TestServer s(
        {.model_dirs = {dir.path().string()}, .n_ctx = 16384, .parallel = 1, .max_loaded = 1});
    auto generate = [&](const std::string& model) {
        auto res = s.client().Post("/api/generate",
                                   json{{"model", model},
                                        {"prompt", "hi"},
                                        {"stream", false},
                                        {"options", {{"num_predict", 1}}}}
                                       .dump(),
                                   "application/json");
        EXPECT_TRUE(res && res->status == 200) << model;
    };
    EXPECT_TRUE(ps_names(s).empty());
    generate("a");
    EXPECT_EQ(ps_names(s), std::vector<std::string>{"a"});
    generate("b");
    EXPECT_EQ(ps_names(s), std::vector<std::string>{"b"});

    // A model with a request running is never unloaded: both stay, over the limit.
    const int fd = test::send_raw(
        s.port(),
        test::http_post(
            "/v1/completions",
            R"({"model":"b","prompt":"hi","max_tokens":16000,"ignore_eos":true,"stream":true})"));
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(test::read_until(fd, "data: "));
    generate("a");
    EXPECT_EQ(ps_names(s), (std::vector<std::string>{"a", "b"}));

    // Once idle, loading another makes room again.
    ::close(fd);
    wait_health(s, [](const json& h) { return h["slots_busy"] == 0; });
    generate("c");
    EXPECT_EQ(ps_names(s), std::vector<std::string>{"c"});
}

// Stopping the server ends an endless stream (as cancelled, without [DONE])
// instead of waiting for it; a hang here would be the bug.
TEST(ServerLoad, StoppingTheServerEndsOpenStreams) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    auto s = std::make_unique<TestServer>(app::server::ServerOptions{
        .models = {test::synth_model(dir)}, .n_ctx = 16384, .parallel = 1});
    const int fd = test::send_raw(s->port(), test::http_post("/v1/completions", kEndless));
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(test::read_until(fd, "data: "));
    s.reset();
    std::string rest;
    EXPECT_FALSE(test::read_until(fd, "[DONE]", &rest));  // the stream ended without it
    ::close(fd);
}

}  // namespace
}  // namespace strata
