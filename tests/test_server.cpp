// `strata serve` over real HTTP on 127.0.0.1: the server runs in-process on an
// ephemeral port with a synth model and the real stories260K, and tests speak
// HTTP to it (httplib's client, raw sockets for disconnects, and the official
// Node clients).

#include "engine/engine.h"
#include "server_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

namespace strata {
namespace {

using nlohmann::json;
using test::data_path;
using test::sse_events;
using test::TestServer;

using test::stories;

class Server : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        std::signal(SIGPIPE, SIG_IGN);
        dir_ = new test::TempDir();
        ASSERT_FALSE(test::synth_model(*dir_).empty());
        std::filesystem::copy_file(stories(), dir_->file("stories260K.gguf"));
        server_ = new TestServer({.model_dirs = {dir_->path().string()}, .n_ctx = 256, .parallel = 2});
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }
    static json post(const std::string& path, const json& body, int expect_status = 200) {
        auto res = server_->client().Post(path, body.dump(), "application/json");
        EXPECT_TRUE(res);
        if (!res) return json();
        EXPECT_EQ(res->status, expect_status) << path << ": " << res->body;
        return json::parse(res->body, nullptr, false);
    }
    static std::string post_raw(const std::string& path, const std::string& body, int expect_status = 200) {
        auto res = server_->client().Post(path, body, "application/json");
        EXPECT_TRUE(res);
        if (!res) return "";
        EXPECT_EQ(res->status, expect_status) << path << ": " << res->body;
        return res->body;
    }
    static json get(const std::string& path) {
        auto res = server_->client().Get(path);
        EXPECT_TRUE(res && res->status == 200);
        return res ? json::parse(res->body, nullptr, false) : json();
    }
    static inline test::TempDir* dir_ = nullptr;
    static inline TestServer* server_ = nullptr;
};

std::vector<int32_t> prompt_ids(const Engine& e, const std::string& text, bool templated) {
    const auto& v = e.tokenizer().vocab();
    std::vector<int32_t> ids;
    if (v.add_bos() && v.valid(v.bos()) && !(templated && text.starts_with(v.text(v.bos())))) ids.push_back(v.bos());
    auto rest = e.tokenizer().tokenize(text, {.add_special = false, .parse_special = templated});
    ids.insert(ids.end(), rest.begin(), rest.end());
    return ids;
}

TEST_F(Server, ListingEndpoints) {
    EXPECT_EQ(get("/health")["status"], "ok");
    auto models = get("/v1/models");
    EXPECT_EQ(models["object"], "list");
    ASSERT_EQ(models["data"].size(), 2u);
    EXPECT_EQ(models["data"][0]["id"], "stories260K");
    EXPECT_EQ(models["data"][1]["id"], "syn");
    auto tags = get("/api/tags");
    ASSERT_EQ(tags["models"].size(), 2u);
    EXPECT_EQ(tags["models"][1]["details"]["family"], "qwen3moe");
    EXPECT_GT(tags["models"][0]["size"].get<int64_t>(), 0);
    EXPECT_TRUE(get("/api/version").contains("version"));
    auto show = post("/api/show", {{"model", "syn"}});
    EXPECT_NE(show["template"].get<std::string>().find("im_start"), std::string::npos);
    EXPECT_EQ(show["model_info"]["general.architecture"], "qwen3moe");
    post("/api/generate", {{"model", "syn"}, {"prompt", "x"}, {"stream", false}, {"options", {{"num_predict", 1}}}});
    const json ps = get("/api/ps");
    bool syn_loaded = false;
    for (const auto& m : ps["models"]) syn_loaded = syn_loaded || m["name"] == "syn";
    EXPECT_TRUE(syn_loaded) << ps.dump();
}

// Usage counts are the tokenizer's, and greedy text equals `strata run --temp 0`.
TEST_F(Server, CompletionMatchesStrataRunAndCountsTokens) {
    const std::string prompt = "Once upon a time";
    auto r = post("/v1/completions", {{"model", "stories260K"}, {"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}});
    ASSERT_EQ(r["object"], "text_completion");
    const std::string text = r["choices"][0]["text"];
    EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
    auto run = test::run_strata("run " + stories() + " --temp 0 -n 24 -p '" + prompt + "' --no-prefetch", true);
    ASSERT_EQ(run.exit_code, 0);
    EXPECT_EQ(prompt + text, run.out);

    auto engine = Engine::load(stories(), {});
    ASSERT_TRUE(engine) << engine.error().message;
    EXPECT_EQ(r["usage"]["prompt_tokens"], prompt_ids(**engine, prompt, false).size());
    EXPECT_EQ(r["usage"]["completion_tokens"], 24);
    EXPECT_EQ(r["usage"]["total_tokens"], r["usage"]["prompt_tokens"].get<int>() + 24);

    // Ollama's raw generate is the same plain completion.
    auto o = post("/api/generate", {{"model", "stories260K"}, {"prompt", prompt}, {"raw", true}, {"stream", false},
                                    {"options", {{"temperature", 0}, {"num_predict", 24}, {"repeat_penalty", 1.0}, {"top_p", 1.0}}}});
    EXPECT_EQ(o["response"], text);
    EXPECT_EQ(o["eval_count"], 24);
    EXPECT_EQ(o["done_reason"], "length");
}

TEST_F(Server, ChatGreedyMatchesStrataRunChat) {
    auto r = post("/v1/chat/completions", {{"model", "stories260K"},
                                           {"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Tom"}}}}}}},
                                           {"max_tokens", 12},
                                           {"temperature", 0}});
    auto run = test::run_strata("run " + stories() + " --chat --temp 0 -n 12 -p 'Tom' --no-prefetch", true);
    ASSERT_EQ(run.exit_code, 0);
    EXPECT_EQ(r["choices"][0]["message"]["content"], run.out);
    EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");

    auto engine = Engine::load(stories(), {});
    ASSERT_TRUE(engine);
    text::ChatInputs in;
    in.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Tom"}}});
    auto rendered = (*engine)->chat_template().render(in);
    ASSERT_TRUE(rendered);
    EXPECT_EQ(r["usage"]["prompt_tokens"], prompt_ids(**engine, *rendered, true).size());
}

TEST_F(Server, ChatStreamFraming) {
    const json req = {{"model", "syn"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 6},
                      {"temperature", 0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
    auto res = server_->client().Post("/v1/chat/completions", req.dump(), "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
    auto ev = sse_events(res->body);
    ASSERT_GE(ev.size(), 4u);
    EXPECT_EQ(ev.back(), "[DONE]");
    auto first = json::parse(ev[0]);
    EXPECT_EQ(first["object"], "chat.completion.chunk");
    EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
    std::string text;
    for (size_t i = 1; i + 3 < ev.size(); ++i) {
        auto c = json::parse(ev[i]);
        EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
        text += c["choices"][0]["delta"]["content"].get<std::string>();
    }
    auto fin = json::parse(ev[ev.size() - 3]);
    EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");
    EXPECT_TRUE(fin["choices"][0]["delta"].empty());
    auto usage = json::parse(ev[ev.size() - 2]);
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"]["completion_tokens"], 6);

    json plain = req;
    plain.erase("stream");
    plain.erase("stream_options");
    auto whole = post("/v1/chat/completions", plain);
    EXPECT_EQ(whole["choices"][0]["message"]["content"], text);
    EXPECT_EQ(whole["usage"], usage["usage"]);
}

TEST_F(Server, CompletionStreamEndsWithDone) {
    auto ev = sse_events(post_raw("/v1/completions", R"({"model":"stories260K","prompt":"Once","max_tokens":3,"stream":true})"));
    ASSERT_GE(ev.size(), 2u);
    EXPECT_EQ(ev.back(), "[DONE]");
    auto fin = json::parse(ev[ev.size() - 2]);
    EXPECT_EQ(fin["object"], "text_completion");
    EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");
}

TEST_F(Server, OllamaNdjsonFraming) {
    for (const char* path : {"/api/chat", "/api/generate"}) {
        json req = {{"model", "syn"}, {"options", {{"num_predict", 5}, {"temperature", 0}}}};
        if (std::string(path) == "/api/chat") req["messages"] = {{{"role", "user"}, {"content", "hi"}}};
        else req["prompt"] = "hi";
        auto res = server_->client().Post(path, req.dump(), "application/json");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->get_header_value("Content-Type"), "application/x-ndjson");
        ASSERT_TRUE(res->body.ends_with("}\n")) << res->body;
        std::vector<json> lines;
        for (size_t pos = 0, end; (end = res->body.find('\n', pos)) != std::string::npos; pos = end + 1)
            lines.push_back(json::parse(res->body.substr(pos, end - pos)));
        ASSERT_GE(lines.size(), 2u);
        for (size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_EQ(lines[i]["done"], false);
        const json& fin = lines.back();
        EXPECT_EQ(fin["done"], true);
        EXPECT_EQ(fin["done_reason"], "length");
        EXPECT_EQ(fin["eval_count"], 5);
        for (const char* k : {"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_duration"})
            EXPECT_TRUE(fin[k].is_number_integer()) << k;
        EXPECT_GT(fin["prompt_eval_count"].get<int>(), 0);
    }
}

// A prompt of token ids (OpenAI's `prompt: [1, 2, 3]`) is fed as exactly those
// ids: the ids a text prompt tokenizes to (BOS included) give the same greedy
// text and the same prompt count, flat or as a one-prompt batch `[[...]]`.
TEST_F(Server, TokenIdPromptMatchesTheTextPrompt) {
    const std::string prompt = "Once upon a time";
    auto engine = Engine::load(stories(), {});
    ASSERT_TRUE(engine) << engine.error().message;
    const std::vector<int32_t> ids = prompt_ids(**engine, prompt, false);
    ASSERT_GT(ids.size(), 2u);
    auto text = post("/v1/completions", {{"model", "stories260K"}, {"prompt", prompt}, {"max_tokens", 16}, {"temperature", 0}});
    auto flat = post("/v1/completions", {{"model", "stories260K"}, {"prompt", ids}, {"max_tokens", 16}, {"temperature", 0}});
    auto nested = post("/v1/completions",
                       {{"model", "stories260K"}, {"prompt", json::array({ids})}, {"max_tokens", 16}, {"temperature", 0}});
    ASSERT_FALSE(text["choices"][0]["text"].get<std::string>().empty());
    EXPECT_EQ(flat["choices"][0]["text"], text["choices"][0]["text"]);
    EXPECT_EQ(nested["choices"][0]["text"], text["choices"][0]["text"]);
    EXPECT_EQ(flat["usage"]["prompt_tokens"], ids.size());
    EXPECT_EQ(nested["usage"]["prompt_tokens"], ids.size());

    // No BOS is added to ids: without the leading BOS the model sees a different
    // prompt (one token shorter), so its count says no BOS was put back.
    const std::vector<int32_t> no_bos(ids.begin() + 1, ids.end());
    auto bare = post("/v1/completions", {{"model", "stories260K"}, {"prompt", no_bos}, {"max_tokens", 1}, {"temperature", 0}});
    EXPECT_EQ(bare["usage"]["prompt_tokens"], no_bos.size());
}

// Token ids are untrusted indices into the embedding table: each bad one is a 400
// naming its position, checked as sent (64-bit) rather than after narrowing.
TEST_F(Server, TokenIdPromptRejectsBadIds) {
    const int64_t n_vocab = 512;  // stories260K's vocabulary
    struct Case {
        std::string prompt;  // raw JSON, so huge and float literals reach the server as written
        std::string param, message;
    };
    const std::vector<Case> cases = {
        {"[1, 1.5]", "prompt[1]", "'prompt[1]' must be an integer token id, not 1.5"},
        {"[1, 2, 3e9]", "prompt[2]", "'prompt[2]' must be an integer token id, not 3000000000.0"},
        {"[1, 2, 3000000000]", "prompt[2]", "prompt[2]: token id 3000000000 is out of range [0, 512)"},
        {"[-1]", "prompt[0]", "prompt[0]: token id -1 is out of range [0, 512)"},
        {"[1, 512]", "prompt[1]", "prompt[1]: token id 512 is out of range [0, 512)"},
        {"[[1, 2, 50000]]", "prompt[0][2]", "prompt[0][2]: token id 50000 is out of range [0, 512)"},
        {"[1, 18446744073709551615]", "prompt[1]", "'prompt[1]' is token id 18446744073709551615, out of range"},
        {"[1, true]", "prompt[1]", "'prompt[1]' must be an integer token id, not true"},
        {"[1, \"a\"]", "prompt[1]", "'prompt[1]' must be an integer token id, not \"a\""},
        {"[1, null]", "prompt[1]", "'prompt[1]' must be an integer token id, not null"},
        {"[[1], [2]]", "prompt", "'prompt' holds 2 prompts; strata completes one prompt per request"},
        {"[\"a\", \"b\"]", "prompt", "'prompt' holds 2 prompts; strata completes one prompt per request"},
        {"[]", "prompt", "'prompt' is empty"},
        {"[[]]", "prompt", "'prompt' is empty"},
    };
    for (const Case& c : cases) {
        const std::string body = R"({"model":"stories260K","max_tokens":1,"prompt":)" + c.prompt + "}";
        auto e = json::parse(post_raw("/v1/completions", body, 400), nullptr, false);
        ASSERT_TRUE(e.is_object()) << c.prompt;
        EXPECT_EQ(e["error"]["type"], "invalid_request_error") << c.prompt;
        EXPECT_EQ(e["error"]["param"], c.param) << c.prompt;
        EXPECT_EQ(e["error"]["message"], c.message) << c.prompt;
    }
    // The same context limit as a text prompt: 256 valid ids do not fit n_ctx 256.
    const std::vector<int64_t> many(256, n_vocab - 1);
    auto e = post("/v1/completions", {{"model", "stories260K"}, {"prompt", many}}, 400);
    EXPECT_EQ(e["error"]["code"], "context_length_exceeded");
}

TEST_F(Server, BadRequestsGetTheRightStatus) {
    auto e = json::parse(post_raw("/v1/chat/completions", "{not json", 400));
    EXPECT_NE(e["error"]["message"].get<std::string>().find("not valid JSON"), std::string::npos);
    EXPECT_EQ(e["error"]["type"], "invalid_request_error");
    e = post("/v1/chat/completions", {{"model", "syn"}, {"messages", "hi"}}, 400);
    EXPECT_EQ(e["error"]["param"], "messages");
    e = post("/v1/chat/completions", {{"model", "syn"}, {"messages", json::array()}}, 400);
    EXPECT_EQ(e["error"]["param"], "messages");
    e = post("/v1/chat/completions", {{"model", "syn"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"temperature", "hot"}}, 400);
    EXPECT_EQ(e["error"]["param"], "temperature");
    e = post("/v1/chat/completions", {{"model", "syn"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"max_tokens", -5}}, 400);
    EXPECT_EQ(e["error"]["param"], "max_tokens");
    e = post("/v1/chat/completions", {{"model", "syn"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"n", 2}}, 400);
    EXPECT_EQ(e["error"]["param"], "n");
    e = post("/v1/chat/completions", {{"model", "syn"}, {"messages", {{{"role", 1}, {"content", "x"}}}}}, 400);
    EXPECT_EQ(e["error"]["param"], "messages[0].role");
    e = post("/v1/chat/completions", {{"model", "syn"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"logit_bias", {{"99999", 1}}}}, 400);
    EXPECT_EQ(e["error"]["param"], "logit_bias");
    e = post("/v1/chat/completions", {{"model", "nope"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}}, 404);
    EXPECT_EQ(e["error"]["code"], "model_not_found");
    EXPECT_NE(e["error"]["message"].get<std::string>().find("stories260K, syn"), std::string::npos);
    std::string long_prompt;
    for (int i = 0; i < 300; ++i) long_prompt += "once upon a time ";
    e = post("/v1/completions", {{"model", "stories260K"}, {"prompt", long_prompt}}, 400);
    EXPECT_NE(e["error"]["message"].get<std::string>().find("longer than the context"), std::string::npos);
    EXPECT_EQ(e["error"]["code"], "context_length_exceeded");

    auto o = post("/api/chat", {{"model", "syn"}, {"messages", {{{"role", "user"}, {"content", "x"}}}}, {"options", {{"top_k", "x"}}}}, 400);
    EXPECT_EQ(o["error"], "'options.top_k' must be an integer");
    o = post("/api/generate", {{"model", "nope"}, {"prompt", "x"}}, 404);
    EXPECT_TRUE(o["error"].is_string());
    o = json::parse(post_raw("/api/generate", "[1,2]", 400));
    EXPECT_TRUE(o["error"].is_string());

    // A body over the limit (16 MiB) is refused with 413, and the server goes on.
    auto res = server_->client().Post("/v1/completions", std::string(17u << 20, ' '), "application/json");
    if (res) {
        EXPECT_EQ(res->status, 413);
    }
    EXPECT_EQ(get("/health")["status"], "ok");
}

TEST_F(Server, TwoConcurrentStreamsCompleteWithIndependentOutputs) {
    auto request = [](uint64_t seed) {
        return json{{"model", "stories260K"}, {"prompt", "Once upon a time"}, {"max_tokens", 40},
                    {"temperature", 1.0}, {"seed", seed}, {"stream", true}};
    };
    auto text_of = [](const std::string& body) {
        std::string t;
        auto ev = sse_events(body);
        EXPECT_EQ(ev.back(), "[DONE]");
        for (size_t i = 0; i + 1 < ev.size(); ++i) t += json::parse(ev[i])["choices"][0]["text"].get<std::string>();
        return t;
    };
    const std::string alone_a = text_of(post_raw("/v1/completions", request(1).dump()));
    const std::string alone_b = text_of(post_raw("/v1/completions", request(2).dump()));
    std::string crowd_a, crowd_b;
    std::thread ta([&] { crowd_a = text_of(post_raw("/v1/completions", request(1).dump())); });
    std::thread tb([&] { crowd_b = text_of(post_raw("/v1/completions", request(2).dump())); });
    ta.join();
    tb.join();
    EXPECT_EQ(crowd_a, alone_a);
    EXPECT_EQ(crowd_b, alone_b);
    EXPECT_NE(alone_a, alone_b);
}

TEST(ServerAuth, ApiKeyIsRequiredExceptForHealth) {
    TestServer s({.models = {stories()}, .api_key = "sekret"});
    auto c = s.client();
    auto res = c.Get("/v1/models");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "invalid_api_key");
    res = c.Get("/api/tags");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    EXPECT_TRUE(json::parse(res->body)["error"].is_string());
    EXPECT_EQ(c.Get("/health")->status, 200);
    res = c.Get("/v1/models", {{"Authorization", "Bearer sekret"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
}

// A client that hangs up mid-stream cancels its generation and frees its slot.
TEST(ServerDisconnect, ClosingTheConnectionCancelsTheGeneration) {
    test::TempDir dir;
    TestServer s({.models = {test::synth_model(dir)}, .n_ctx = 16384, .parallel = 1});
    const int fd = test::send_raw(
        s.port(), test::http_post("/v1/completions",
                                  R"({"model":"syn","prompt":"hi","max_tokens":16000,"ignore_eos":true,"stream":true})"));
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(test::read_until(fd, "data: "));
    ::close(fd);
    auto c = s.client();
    json health;
    // The scheduler frees the slot before the HTTP worker, polling every 50 ms,
    // sees the end and counts the cancellation, so wait for both (under ASan on
    // a busy machine the gap was long enough to see the slot free but the count 0).
    for (int i = 0; i < 2000; ++i) {
        health = json::parse(c.Get("/health")->body);
        if (health["slots_busy"] == 0 && health["requests_cancelled"] == 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(health["slots_busy"], 0);
    EXPECT_EQ(health["requests_cancelled"], 1);
    // The slot serves the next request.
    auto res = c.Post("/v1/completions", R"({"model":"syn","prompt":"hi","max_tokens":2})", "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
}

// The official Node clients, as a user runs them.
TEST_F(Server, OfficialNodeClients) {
    const std::string js = std::filesystem::path(STRATA_TEST_DATA).parent_path() / "js";
    if (!std::filesystem::exists(js + "/node_modules/openai") || !std::filesystem::exists(js + "/node_modules/ollama"))
        GTEST_SKIP() << "tests/js/node_modules lacks openai/ollama; run scripts/setup";
    for (const char* script : {"openai_client.mjs", "ollama_client.mjs"}) {
        for (const char* model : {"syn", "stories260K"}) {
            const std::string cmd = "node " + js + "/" + script + " " + server_->url() + " " + model + " 2>&1";
            FILE* p = popen(cmd.c_str(), "r");
            ASSERT_TRUE(p);
            std::string out;
            char buf[4096];
            for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
            const int status = pclose(p);
            EXPECT_EQ(status, 0) << script << " " << model << ":\n" << out;
            EXPECT_EQ(out, "ok\n") << script;
        }
    }
}

// The command itself: `strata serve --port 0` prints where it listens, serves,
// and exits cleanly on SIGTERM.
TEST(ServeCommand, StartsAnswersHealthAndStopsOnSigterm) {
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    const std::string model = stories();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        ::close(out[0]);
        ::close(out[1]);
        std::freopen("/dev/null", "w", stderr);
        ::execl(STRATA_BINARY, STRATA_BINARY, "serve", "--port", "0", "--no-prefetch", "--model", model.c_str(),
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    FILE* f = ::fdopen(out[0], "r");
    char line[256] = {};
    const bool got = std::fgets(line, sizeof line, f) != nullptr;
    std::string s(line);
    int port = 0;
    if (got && s.starts_with("strata: listening on http://127.0.0.1:")) port = std::stoi(s.substr(s.rfind(':') + 1));
    EXPECT_GT(port, 0) << s;
    if (port > 0) {
        httplib::Client c("127.0.0.1", port);
        auto res = c.Get("/health");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200);
    }
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::fclose(f);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(test::run_strata("serve --port 0 --no-discover").exit_code, 1);  // no models
}

}  // namespace
}  // namespace strata
