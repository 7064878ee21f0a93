// `strata serve`'s security defaults and limits over real HTTP: the Host check
// against DNS rebinding, API keys, CORS, request limits, slow and stuck clients,
// connection limits, model files that change or fail, and graceful shutdown of
// the built binary.

#include "engine/prompt.h"
#include "server_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <future>
#include <thread>

#include <sys/wait.h>

namespace strata {
namespace {

using nlohmann::json;
using test::TestServer;

using test::stories;

using test::health;
using test::wait_health;

// A raw request's status line and body: everything until the server closes
// (or `needle` arrives).
std::string raw_exchange(int port, const std::string& request, const std::string& needle = "") {
    const int fd = test::send_raw(port, request);
    if (fd < 0) return "";
    std::string got;
    if (needle.empty()) {
        char buf[4096];
        for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
            got.append(buf, static_cast<size_t>(n));
    } else {
        test::read_until(fd, needle, &got);
    }
    ::close(fd);
    return got;
}

TEST(ServerSecurity, LoopbackServerAnswersOnlyLoopbackHostNames) {
    TestServer s({.models = {stories()}});
    const std::string port = std::to_string(s.port());
    for (const std::string& host : std::vector<std::string>{
             "127.0.0.1:" + port, "localhost:" + port, "localhost", "[::1]:" + port, "127.0.0.2"}) {
        auto res = s.client().Get("/v1/models", {{"Host", host}});
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200) << host;
    }
    // A page at attacker.example whose name now resolves to 127.0.0.1.
    for (const std::string& host : std::vector<std::string>{
             "attacker.example", "attacker.example:" + port, "127.0.0.1.attacker.example",
             "localhost.attacker.example", "[::2]:" + port, "localhost:x"}) {
        auto res = s.client().Get("/v1/models", {{"Host", host}});
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 403) << host;
        EXPECT_NE(
            json::parse(res->body)["error"]["message"].get<std::string>().find("DNS rebinding"),
            std::string::npos);
        res = s.client().Post("/api/generate", {{"Host", host}},
                              R"({"model":"stories260K","prompt":"x"})", "application/json");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 403) << host;
        EXPECT_TRUE(json::parse(res->body)["error"].is_string());
    }
}

TEST(ServerSecurity, ApiKeyByBearerOrHeaderAndCorsOnlyForListedOrigins) {
    TestServer s({.models = {stories()},
                  .api_key = "0123456789abcdef",
                  .cors_origins = {"http://app.example"}});
    auto c = s.client();
    auto status = [&](const httplib::Headers& h) {
        auto res = c.Get("/api/tags", h);
        return res ? res->status : -1;
    };
    EXPECT_EQ(status({}), 401);
    EXPECT_EQ(status({{"Authorization", "Bearer 0123456789abcdef"}}), 200);
    EXPECT_EQ(status({{"X-Api-Key", "0123456789abcdef"}}), 200);
    EXPECT_EQ(status({{"Authorization", "Bearer 0123456789abcdeF"}}), 401);
    EXPECT_EQ(status({{"Authorization", "Bearer 0123456789abcde"}}), 401);    // a prefix
    EXPECT_EQ(status({{"Authorization", "Bearer 0123456789abcdef0"}}), 401);  // longer
    EXPECT_EQ(status({{"X-Api-Key", ""}}), 401);
    EXPECT_EQ(c.Get("/health")->status, 200);

    const httplib::Headers key = {{"X-Api-Key", "0123456789abcdef"}};
    auto res =
        c.Get("/v1/models", {{"X-Api-Key", "0123456789abcdef"}, {"Origin", "http://app.example"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->get_header_value("Access-Control-Allow-Origin"), "http://app.example");
    EXPECT_FALSE(res->has_header("Access-Control-Allow-Credentials"));
    res =
        c.Get("/v1/models", {{"X-Api-Key", "0123456789abcdef"}, {"Origin", "http://evil.example"}});
    ASSERT_TRUE(res);
    EXPECT_FALSE(res->has_header("Access-Control-Allow-Origin"));
    // A preflight carries no key and is answered for the listed origin only.
    res = c.Options("/v1/chat/completions",
                    {{"Origin", "http://app.example"}, {"Access-Control-Request-Method", "POST"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 204);
    EXPECT_NE(res->get_header_value("Access-Control-Allow-Headers").find("Authorization"),
              std::string::npos);
    res = c.Options("/v1/chat/completions", {{"Origin", "http://evil.example"}});
    ASSERT_TRUE(res);
    EXPECT_NE(res->status, 204);
    EXPECT_FALSE(res->has_header("Access-Control-Allow-Origin"));
}

TEST(ServerSecurity, CorsIsOffByDefault) {
    TestServer s({.models = {stories()}});
    auto res = s.client().Get("/v1/models", {{"Origin", "http://app.example"}});
    ASSERT_TRUE(res);
    EXPECT_FALSE(res->has_header("Access-Control-Allow-Origin"));
    res = s.client().Options("/v1/models", {{"Origin", "http://app.example"}});
    ASSERT_TRUE(res);
    EXPECT_NE(res->status, 204);
}

// Model names are looked up among the files the server was given, never opened
// as paths.
TEST(ServerSecurity, ModelNamesNeverBecomePaths) {
    TestServer s({.models = {stories()}});
    const std::string escaped_path =
        "../" + std::filesystem::path(stories()).parent_path().filename().string() + "/stories260K";
    for (const std::string& name :
         {std::string("../stories260K"), std::string("sha256:../../etc/passwd"), escaped_path,
          std::string("/dev/zero"), std::string("/dev/urandom"), stories(),
          std::string("stories260K/../stories260K")}) {
        auto res = s.client().Post("/api/show", json{{"model", name}}.dump(), "application/json");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 404) << name;
        res = s.client().Post("/v1/completions", json{{"model", name}, {"prompt", "x"}}.dump(),
                              "application/json");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 404) << name;
    }
}

class ServerLimits : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        std::signal(SIGPIPE, SIG_IGN);
        server_ = new TestServer({.models = {stories()},
                                  .n_ctx = 64,
                                  .parallel = 2,
                                  .max_messages = 8,
                                  .max_stop = 3,
                                  .max_stop_bytes = 10,
                                  .read_timeout = 2});
    }
    static void TearDownTestSuite() { delete server_; }

    // The error of a refused POST, checking its status and its API's shape.
    static std::string refused(const std::string& path, const std::string& body, int status) {
        auto res = server_->client().Post(path, body, "application/json");
        EXPECT_TRUE(res);
        if (!res) return "";
        EXPECT_EQ(res->status, status) << body.substr(0, 200) << ": " << res->body;
        const json e = json::parse(res->body, nullptr, false);
        if (path.starts_with("/v1/"))
            return e["error"]["message"].is_string() ? e["error"].dump() : "";
        return e["error"].is_string() ? e["error"].get<std::string>() : "";
    }
    static inline TestServer* server_ = nullptr;
};

std::string chat(int n_messages, const std::string& extra = "") {
    json msgs = json::array();
    for (int i = 0; i < n_messages; ++i)
        msgs.push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "hi"}});
    json j = {{"model", "stories260K"}, {"messages", msgs}};
    if (!extra.empty()) j.update(json::parse(extra));
    return j.dump();
}

TEST_F(ServerLimits, EachLimitIsNamedInTheApisErrorShape) {
    EXPECT_NE(refused("/v1/chat/completions", chat(9), 400).find("--max-messages"),
              std::string::npos);
    EXPECT_NE(refused("/api/chat", chat(9), 400).find("--max-messages"), std::string::npos);
    EXPECT_NE(refused("/v1/chat/completions", chat(1, R"({"stop":["a","b","c","d"]})"), 400)
                  .find("--max-stop"),
              std::string::npos);
    EXPECT_NE(refused("/v1/chat/completions", chat(1, R"({"stop":"0123456789a"})"), 400)
                  .find("--max-stop-bytes"),
              std::string::npos);
    EXPECT_NE(refused("/api/chat", chat(1, R"({"options":{"stop":["a","b","c","d"]}})"), 400)
                  .find("--max-stop"),
              std::string::npos);
    // max_tokens past what the 64-token context leaves after the prompt.
    const std::string e =
        refused("/v1/completions", R"({"prompt":"Once upon a time","max_tokens":64})", 400);
    EXPECT_NE(e.find("context_length_exceeded"), std::string::npos) << e;
    EXPECT_NE(e.find("leaves"), std::string::npos) << e;
    // Numbers are range-checked before narrowing: 3e9 would wrap to negative as an int.
    EXPECT_NE(refused("/v1/completions", R"({"prompt":"x","max_tokens":3000000000})", 400)
                  .find("max_tokens"),
              std::string::npos);
    EXPECT_NE(
        refused("/v1/completions", R"({"prompt":"x","max_tokens":3e9})", 400).find("max_tokens"),
        std::string::npos);
    refused("/api/generate",
            R"({"model":"stories260K","prompt":"x","options":{"num_ctx":3000000000}})", 400);
    refused("/api/generate",
            R"({"model":"stories260K","prompt":"x","options":{"top_k":-3000000000}})", 400);
    // Within every limit: served, and Ollama's num_predict past the context just stops there.
    auto res = server_->client().Post(
        "/api/generate",
        R"({"model":"stories260K","prompt":"x","stream":false,"options":{"num_predict":1000}})",
        "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << res->body;
}

TEST_F(ServerLimits, JsonNestedThreeThousandDeepIs400) {
    for (const char* path : {"/v1/chat/completions", "/api/chat"}) {
        std::string deep =
            R"({"model":"stories260K","messages":[{"role":"user","content":"x","extra":)";
        deep += std::string(3000, '[') + std::string(3000, ']') + "}]}";
        EXPECT_NE(refused(path, deep, 400).find("deeper than the limit of 64"), std::string::npos)
            << path;
    }
    // Brackets inside strings are text, not nesting.
    const std::string text = json{
        {"model", "stories260K"},
        {"prompt", std::string(3000, '[')},
        {"max_tokens", 1}}.dump();
    EXPECT_NE(refused("/v1/completions", text, 400).find("longer than the context"),
              std::string::npos);
}

// A client that sends its request line and then a header byte at a time holds
// its connection only until the head's deadline (2 s here), then gets 408; a
// head larger than 64 KiB gets 431.
TEST_F(ServerLimits, SlowOrEndlessHeadersAreCutOff) {
    const int fd = test::send_raw(server_->port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    ASSERT_GE(fd, 0);
    std::string got;
    for (int i = 0; i < 100; ++i) {  // up to 10 s of one byte each 100 ms
        if (::send(fd, "X", 1, MSG_NOSIGNAL) != 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            got.append(buf, static_cast<size_t>(n));
            break;
        }
        if (n == 0) break;
    }
    ::close(fd);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 408")) << got;

    std::string big = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < 2000; ++i)
        big += "X-Filler-" + std::to_string(i) + ": " + std::string(60, 'a') + "\r\n";
    big += "\r\n";
    got = raw_exchange(server_->port(), big);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 431")) << got.substr(0, 200);
    EXPECT_EQ(health(*server_)["status"], "ok");
}

TEST(ServerConnections, PastTheLimitConnectionsGet503InTheirApisShape) {
    std::signal(SIGPIPE, SIG_IGN);
    TestServer s({.models = {stories()}, .max_connections = 3});
    // Three idle keep-alive connections fill the limit.
    std::vector<int> idle;
    for (int i = 0; i < 3; ++i) {
        const int fd = test::send_raw(s.port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        ASSERT_GE(fd, 0);
        ASSERT_TRUE(test::read_until(fd, "}"));
        idle.push_back(fd);
    }
    std::string got =
        raw_exchange(s.port(), test::http_post("/v1/completions", R"({"prompt":"x"})"));
    EXPECT_TRUE(got.starts_with("HTTP/1.1 503")) << got;
    EXPECT_NE(got.find("Retry-After: 1"), std::string::npos) << got;
    EXPECT_NE(got.find(R"("type":"server_error")"), std::string::npos) << got;
    EXPECT_NE(got.find("--max-connections"), std::string::npos) << got;
    got = raw_exchange(s.port(), test::http_post("/api/generate", R"({"prompt":"x"})"));
    EXPECT_NE(got.find(R"({"error":"the server is busy)"), std::string::npos) << got;
    for (int fd : idle) ::close(fd);
    const json h = wait_health(s, [](const json& h) { return h["connections_open"] == 1; });
    EXPECT_EQ(h["connections_open"], 1);  // this request's own
    // The two above, and any /health poll made before the server saw the idle ones close.
    EXPECT_GE(h["connections_refused"].get<int>(), 2);
}

// The text of a streamed completion that ended with [DONE].
std::string streamed_text(const std::string& body) {
    std::string t;
    auto ev = test::sse_events(body);
    if (ev.empty() || ev.back() != "[DONE]") return "(no [DONE])";
    for (size_t i = 0; i + 1 < ev.size(); ++i)
        t += json::parse(ev[i])["choices"][0]["text"].get<std::string>();
    return t;
}

// A client that stops reading its stream is dropped once the socket's buffers
// and the server's queue for it are full (or a write waits past the write
// timeout), and its slot is freed; a well-behaved stream beside it finishes
// with the same text as alone.
TEST(ServerSlowClients, AReaderThatNeverReadsIsDroppedAndOthersFinish) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    TestServer s({.models = {test::synth_model(dir), stories()},
                  .n_ctx = 16384,
                  .parallel = 2,
                  .write_timeout = 1});
    const std::string good =
        R"({"model":"stories260K","prompt":"Once upon a time","max_tokens":40,"temperature":0,"stream":true})";
    auto run_good = [&] {
        auto res = s.client().Post("/v1/completions", good, "application/json");
        return res && res->status == 200 ? streamed_text(res->body) : std::string("(failed)");
    };
    const std::string alone = run_good();
    ASSERT_FALSE(alone.empty());

    // A small receive buffer, so the server's writes block soon.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(s.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string req = test::http_post(
        "/v1/completions",
        R"({"model":"syn","prompt":"hi","max_tokens":16000,"ignore_eos":true,"stream":true})");
    ASSERT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    wait_health(s, [](const json& h) { return h["slots_busy"] == 1; });
    EXPECT_EQ(run_good(), alone);  // served while the other is stuck
    // The slot frees before the HTTP worker counts the cancellation: wait for both.
    const json h = wait_health(
        s, [](const json& h) { return h["slots_busy"] == 0 && h["requests_cancelled"] == 1; });
    EXPECT_EQ(h["slots_busy"], 0);
    EXPECT_EQ(h["requests_cancelled"], 1);
    ::close(fd);
    EXPECT_EQ(run_good(), alone);
}

// Greedy text of a completion, or its error.
std::string complete(const TestServer& s, const std::string& model) {
    auto res = s.client().Post(
        "/v1/completions",
        json{{"model", model}, {"prompt", "hi"}, {"max_tokens", 8}, {"temperature", 0}}.dump(),
        "application/json");
    if (!res) return "(no response)";
    const json j = json::parse(res->body);
    return res->status == 200 ? j["choices"][0]["text"].get<std::string>()
                              : "error " + std::to_string(res->status) + ": " +
                                    j["error"]["message"].get<std::string>();
}

TEST(ServerModelFiles, AReplacedFileIsReloadedAndAFailedLoadIsNotRetriedUntilItChanges) {
    test::TempDir dir;
    const std::string path = dir.file("m.gguf");
    ASSERT_EQ(test::run_strata("synth --arch qwen3moe --seed 1 --out " + path).exit_code, 0);
    ASSERT_EQ(
        test::run_strata("synth --arch qwen3moe --seed 2 --out " + dir.file("two.gguf")).exit_code,
        0);
    std::filesystem::copy_file(path, dir.file("one.gguf"));
    TestServer s({.models = {path}, .n_ctx = 256});
    auto& registry = s.server().context().registry();
    const std::string one = complete(s, "m");
    ASSERT_FALSE(one.starts_with("error")) << one;
    EXPECT_EQ(complete(s, "m"), one);
    EXPECT_EQ(registry.load_attempts(), 1u);

    // Replaced the way downloaders do it: a new file renamed over the old.
    auto replace = [&](const std::string& from) {
        std::filesystem::copy_file(from, dir.file("tmp.gguf"),
                                   std::filesystem::copy_options::overwrite_existing);
        std::filesystem::rename(dir.file("tmp.gguf"), path);
    };
    replace(dir.file("two.gguf"));
    const std::string two = complete(s, "m");
    EXPECT_NE(two, one);
    EXPECT_EQ(registry.load_attempts(), 2u);

    // A broken file: the error reaches the request, and is not loaded again for
    // each request while the file stays the same.
    auto bytes = test::read_file(path);
    bytes.resize(bytes.size() / 2);
    test::write_file(dir.file("tmp.gguf"), bytes);
    std::filesystem::rename(dir.file("tmp.gguf"), path);
    const std::string broken = complete(s, "m");
    EXPECT_TRUE(broken.starts_with("error 500")) << broken;
    EXPECT_NE(broken.find("m.gguf"), std::string::npos) << broken;
    EXPECT_NE(complete(s, "m").find("tried again once the file changes"), std::string::npos);
    EXPECT_EQ(registry.load_attempts(), 3u);

    replace(dir.file("one.gguf"));
    EXPECT_EQ(complete(s, "m"), one);
    EXPECT_EQ(registry.load_attempts(), 4u);
}

// A model file truncated in place (not replaced by rename) while a request
// generates from it: reads past the new end would raise SIGBUS and kill the
// server. The request fails instead, naming the file; while the file stays
// broken, loads fail; once it is back, the next request reloads it and gets the
// same text as before. Driven through the registry and scheduler the server
// uses, so the truncation lands between two forward passes of one request.
TEST(ServerModelFiles, AFileTruncatedInPlaceFailsItsRequestAndIsReloadedOnceRestored) {
    test::TempDir dir;
    const std::string path = dir.file("m.gguf");
    std::filesystem::copy_file(stories(), path);
    const auto original = test::read_file(path);
    app::server::ModelRegistry registry(
        {.engine = {.threads = 1}, .scheduler = {.n_slots = 1, .n_ctx = 64}});
    ASSERT_TRUE(registry.add_file(path));
    const app::server::ModelInfo* info = registry.find("m");
    ASSERT_TRUE(info);

    // Greedy text of 12 tokens; `on_first_piece` runs on the step thread between
    // the passes for the first and the second token.
    auto generate = [&](const std::function<void()>& on_first_piece) -> Result<GenerateResult> {
        auto loaded = registry.get(*info);
        if (!loaded) return loaded.error();
        Engine& e = *loaded->model->engine;
        std::promise<Result<GenerateResult>> done;
        bool first = true;
        GenerationRequest req{.prompt = prompt_tokens(e, "Once upon a time", false)};
        req.gen.n_predict = 12;
        req.gen.ignore_eos = true;
        req.gen.sampling.temperature = 0;
        req.on_piece = [&](std::string_view) {
            if (first && on_first_piece) on_first_piece();
            first = false;
            return true;
        };
        req.on_done = [&](Result<GenerateResult> r) { done.set_value(std::move(r)); };
        auto ticket = loaded->model->scheduler->submit(std::move(req));
        if (!ticket) return ticket.error();
        return done.get_future().get();
    };

    auto before = generate(nullptr);
    ASSERT_TRUE(before) << before.error().message;
    ASSERT_EQ(before->n_generated, 12);

    auto cut = generate([&] { std::filesystem::resize_file(path, original.size() / 2); });
    ASSERT_FALSE(cut) << "a request whose model file was truncated under it succeeded";
    EXPECT_EQ(
        cut.error().message,
        "model file " + path + " changed on disk while loaded; it will be reloaded on next use");

    // Still truncated: the reload fails, and says which file.
    auto broken = generate(nullptr);
    ASSERT_FALSE(broken);
    EXPECT_NE(broken.error().message.find("m.gguf"), std::string::npos) << broken.error().message;

    test::write_file(path, original);  // in place again: same inode
    auto after = generate(nullptr);
    ASSERT_TRUE(after) << after.error().message;
    EXPECT_EQ(after->text, before->text);
}

// Bytes that are not UTF-8 in generated text (here: the byte token <0xFF>, made
// the only choice) reach the client as U+FFFD in valid JSON, streamed or not.
TEST(ServerOutput, InvalidUtf8InGeneratedTextIsReplaced) {
    TestServer s({.models = {stories()}, .n_ctx = 64});
    // stories260K's byte tokens <0x00>..<0xFF> follow its 3 control tokens.
    const int id = 3 + 0xFF;
    const json req = {{"model", "stories260K"},
                      {"prompt", "Once"},
                      {"max_tokens", 4},
                      {"logit_bias", {{std::to_string(id), 100}}}};
    auto res = s.client().Post("/v1/completions", req.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const std::string text = json::parse(res->body)["choices"][0]["text"];
    EXPECT_EQ(text, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // four U+FFFD

    json streaming = req;
    streaming["stream"] = true;
    res = s.client().Post("/v1/completions", streaming.dump(), "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(streamed_text(res->body), text);
}

// The built binary, as a user runs it: the first SIGTERM lets a running stream
// finish and refuses new connections; with no time left (--drain-timeout 0 and
// an endless stream) the stream ends with an error event; either way the exit
// status is 0. A second signal exits at once.
class ServeProcess {
  public:
    explicit ServeProcess(const std::vector<std::string>& args) {
        int out[2];
        if (::pipe(out) != 0) return;
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], STDOUT_FILENO);
            ::close(out[0]);
            ::close(out[1]);
            std::freopen("/dev/null", "w", stderr);
            std::vector<char*> argv = {const_cast<char*>(STRATA_BINARY),
                                       const_cast<char*>("serve")};
            for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execv(STRATA_BINARY, argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        FILE* f = ::fdopen(out[0], "r");
        char line[256] = {};
        if (std::fgets(line, sizeof line, f)) {
            const std::string s(line);
            if (s.starts_with("strata: listening on http://127.0.0.1:"))
                port_ = std::stoi(s.substr(s.rfind(':') + 1));
        }
        std::fclose(f);
    }
    ~ServeProcess() {
        if (pid_ > 0 && !waited_) ::kill(pid_, SIGKILL), wait();
    }
    int port() const { return port_; }
    void signal(int sig) { ::kill(pid_, sig); }
    int wait() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        waited_ = true;
        return status;
    }

  private:
    pid_t pid_ = -1;
    int port_ = 0;
    bool waited_ = false;
};

// `strata serve` of a synthetic model with room for long streams.
std::vector<std::string> synth_server_args(const test::TempDir& dir, const char* drain_timeout) {
    return {
        "--port", "0",     "--no-discover",   "--no-prefetch", "--model", test::synth_model(dir),
        "--ctx",  "16384", "--drain-timeout", drain_timeout};
}

const char* const kEndless =
    R"({"model":"syn","prompt":"hi","max_tokens":16000,"ignore_eos":true,"stream":true})";

// A streamed completion of `body` that has sent its first event; -1 on failure.
int start_stream(int port, const std::string& body) {
    const int fd = test::send_raw(port, test::http_post("/v1/completions", body));
    if (fd >= 0 && !test::read_until(fd, "data: ")) return ::close(fd), -1;
    return fd;
}

TEST(ServeShutdown, FirstSignalDrainsRunningStreamsThenExitsZero) {
    std::signal(SIGPIPE, SIG_IGN);
    // A deadline no run reaches, however slow the build (the sanitizer suite's
    // scalar kernels took more than the default 10 s): this test is about the
    // drain letting the stream finish, not about the deadline.
    ServeProcess p({"--port", "0", "--no-discover", "--no-prefetch", "--model", stories(), "--ctx",
                    "512", "--drain-timeout", "600"});
    ASSERT_GT(p.port(), 0);
    const int fd = start_stream(
        p.port(),
        R"({"model":"stories260K","prompt":"Once","max_tokens":200,"ignore_eos":true,"stream":true})");
    ASSERT_GE(fd, 0);
    p.signal(SIGTERM);
    std::string rest;
    EXPECT_TRUE(test::read_until(fd, "data: [DONE]", &rest));  // the stream finished whole
    ::close(fd);
    const int status = p.wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ServeShutdown, StreamsPastTheDeadlineEndWithAnErrorEvent) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    ServeProcess p(synth_server_args(dir, "0"));
    ASSERT_GT(p.port(), 0);
    const int fd = start_stream(p.port(), kEndless);
    ASSERT_GE(fd, 0);
    p.signal(SIGINT);
    std::string rest;
    EXPECT_TRUE(test::read_until(fd, "shutting down", &rest));
    EXPECT_NE(rest.find(R"("error":{"message":"the server is shutting down)"), std::string::npos);
    ::close(fd);
    const int status = p.wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(ServeShutdown, SecondSignalExitsAtOnce) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    ServeProcess p(synth_server_args(dir, "3600"));
    ASSERT_GT(p.port(), 0);
    const int fd = start_stream(p.port(), kEndless);
    ASSERT_GE(fd, 0);
    p.signal(SIGTERM);
    // Draining: the listener is closed, so a new connection is refused.
    auto can_connect = [&] {
        const int c = test::send_raw(p.port(), "");
        if (c >= 0) ::close(c);
        return c >= 0;
    };
    for (int i = 0; i < 200 && can_connect(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_FALSE(can_connect());
    p.signal(SIGTERM);  // a hang here, for the hour of --drain-timeout, would be the bug
    const int status = p.wait();
    ::close(fd);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM) << status;
}

}  // namespace
}  // namespace strata
