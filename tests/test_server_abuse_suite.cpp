// The abuse suite: hostile and broken requests over real HTTP, each while a
// well-behaved client streams a greedy completion alongside, which must finish
// with the same text as when it ran alone. Prints the table of input → status →
// whether the parallel client finished (the figures the README quotes).

#include "server_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <functional>
#include <map>
#include <thread>

namespace strata {
namespace {

using nlohmann::json;
using test::TestServer;

// The text of the SSE events in a raw (chunked) HTTP response: each event is
// written as one chunk, so "data: ...\n\n" is never split by chunk framing.
std::string raw_sse_text(const std::string& raw) {
    std::string text;
    for (size_t pos = 0; (pos = raw.find("data: {", pos)) != std::string::npos;) {
        const size_t end = raw.find("\n\n", pos);
        if (end == std::string::npos) break;
        const json ev = json::parse(raw.substr(pos + 6, end - pos - 6), nullptr, false);
        if (ev.contains("choices") && !ev["choices"].empty())
            text += ev["choices"][0]["text"].get<std::string>();
        pos = end;
    }
    return text;
}

// A greedy streamed completion on its own connection; `started` is set once
// its first event arrived. Its text, or "(incomplete)" without [DONE].
std::string good_client(int port, std::atomic<bool>* started) {
    const std::string body =
        R"({"model":"stories260K","prompt":"Once upon a time","max_tokens":48,"temperature":0,"stream":true})";
    const int fd = test::send_raw(port, test::http_post("/v1/completions", body));
    std::string first, rest;
    const bool ok = fd >= 0 && test::read_until(fd, "data: ", &first);
    if (started) *started = true;
    const bool done =
        ok && (first.find("[DONE]") != std::string::npos || test::read_until(fd, "[DONE]", &rest));
    if (fd >= 0) ::close(fd);
    return done ? raw_sse_text(first + rest) : "(incomplete)";
}

// The status of a raw request's response, or "closed" when none came.
std::string status_of(const std::string& raw) {
    return raw.starts_with("HTTP/1.1 ") ? raw.substr(9, 3) : "closed";
}

std::string raw_request(int port, const std::string& request) {
    const int fd = test::send_raw(port, request);
    if (fd < 0) return "";
    std::string got;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        got.append(buf, static_cast<size_t>(n));
        // One response (not chunked) is enough: the server may keep the connection.
        const size_t head = got.find("\r\n\r\n");
        const size_t cl = got.find("Content-Length: ");
        if (head != std::string::npos && cl != std::string::npos && cl < head &&
            got.size() >= head + 4 + std::stoul(got.substr(cl + 16)))
            break;
    }
    ::close(fd);
    return got;
}

std::string post(int port, const std::string& path, const std::string& body,
                 const std::string& extra_headers = "") {
    return status_of(raw_request(
        port, "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers +
                  "Content-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body));
}

std::string chat(const std::string& content_json, const std::string& extra = "") {
    return R"({"model":"stories260K","messages":[{"role":"user","content":)" + content_json + "}]" +
           (extra.empty() ? "" : "," + extra) + "}";
}

json health(int port) {
    httplib::Client c("127.0.0.1", port);
    auto res = c.Get("/health");
    return res ? json::parse(res->body) : json();
}

// Waits (up to about 20 s) until no slot is busy; the cancellations counted so far.
int64_t settle(int port) {
    json h;
    for (int i = 0; i < 2000; ++i) {
        h = health(port);
        if (h["slots_busy"] == 0 && h["queued"] == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return h["requests_cancelled"].get<int64_t>();
}

// The cancelled count once it reaches `n` (or after 20 s): a slot is freed a
// moment before its cancellation is counted, so `settle` alone can read the
// count too early.
int64_t cancelled_reaching(int port, int64_t n) {
    int64_t c = settle(port);
    for (int i = 0; i < 2000 && c < n; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        c = health(port)["requests_cancelled"].get<int64_t>();
    }
    return c;
}

TEST(ServerAbuseSuite, EveryAttackIsAnsweredWhileAWellBehavedClientFinishes) {
    std::signal(SIGPIPE, SIG_IGN);
    test::TempDir dir;
    TestServer s({.models = {test::data_path("real/stories260K.gguf"), test::synth_model(dir)},
                  .n_ctx = 4096,
                  .parallel = 4,
                  .max_queue = 8,
                  .read_timeout = 2,
                  .write_timeout = 2});
    const int port = s.port();
    const std::string alone = good_client(port, nullptr);
    ASSERT_GT(alone.size(), 20u);

    struct Case {
        std::string input;
        std::string expect;  // how the answer starts: the status, or a summary
        std::function<std::string()> run;
    };
    std::string long_prompt;
    for (int i = 0; i < 21000; ++i)
        long_prompt += "hello world ";  // ~42,000 tokens: 10x the context of 4096
    std::string many = R"({"model":"stories260K","messages":[)";
    for (int i = 0; i < 100000; ++i)
        many += std::string(i ? "," : "") + R"({"role":"user","content":"hi"})";
    many += "]}";
    std::string stops = "[";
    for (int i = 0; i < 1000; ++i)
        stops += std::string(i ? "," : "") + "\"s" + std::to_string(i) + "\"";
    stops += "]";

    const char* kChat = "/v1/chat/completions";
    const std::vector<Case> cases = {
        {"malformed JSON `{\"model\":`", "400", [&] { return post(port, kChat, R"({"model":)"); }},
        {"wrong type: temperature \"hot\"", "400",
         [&] { return post(port, kChat, chat("\"x\"", R"("temperature":"hot")")); }},
        {"NaN literal", "400",
         [&] { return post(port, kChat, chat("\"x\"", R"("temperature":NaN)")); }},
        {"Infinity literal", "400",
         [&] { return post(port, kChat, chat("\"x\"", R"("temperature":Infinity)")); }},
        {"temperature 1e400 (overflows a double)", "400",
         [&] { return post(port, kChat, chat("\"x\"", R"("temperature":1e400)")); }},
        {"negative temperature -1", "400",
         [&] { return post(port, kChat, chat("\"x\"", R"("temperature":-1)")); }},
        {"max_tokens 3e9 (wraps as int32)", "400",
         [&] { return post(port, kChat, chat("\"x\"", R"("max_tokens":3000000000)")); }},
        {"max_tokens -1", "400",
         [&] { return post(port, kChat, chat("\"x\"", R"("max_tokens":-1)")); }},
        {"max_tokens past context - prompt", "400",
         [&] { return post(port, kChat, chat("\"x\"", R"("max_tokens":5000)")); }},
        {"empty chat (messages [])", "400",
         [&] { return post(port, kChat, R"({"model":"stories260K","messages":[]})"); }},
        {"100,000-message chat", "400", [&] { return post(port, kChat, many); }},
        {"1,000 stop strings", "400",
         [&] { return post(port, kChat, chat("\"x\"", "\"stop\":" + stops)); }},
        {"JSON nested 3,000 deep", "400",
         [&] { return post(port, kChat, chat(std::string(3000, '[') + std::string(3000, ']'))); }},
        {"invalid UTF-8 in content", "400",
         [&] { return post(port, kChat, chat("\"\xff\xfe\xc0\xaf\"")); }},
        {"prompt of 10x the context", "400",
         [&] {
             return post(port, "/v1/completions",
                         json{{"prompt", long_prompt}, {"model", "stories260K"}}.dump());
         }},
        {"token-id prompt [1, -5, 99999]", "400",
         [&] {
             return post(port, "/v1/completions",
                         R"({"model":"stories260K","prompt":[1,-5,99999]})");
         }},
        {"unknown model `../../etc/passwd`", "404",
         [&] {
             return post(port, "/api/generate", R"({"model":"../../etc/passwd","prompt":"x"})");
         }},
        {"Host: attacker.example (DNS rebinding)", "403",
         [&] {
             return status_of(raw_request(
                 port,
                 "GET /api/tags HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n"));
         }},
        {"100 MB body", "413",
         [&] {
             httplib::Client c("127.0.0.1", port);
             auto res = c.Post("/v1/completions", std::string(100u << 20, ' '), "application/json");
             return res ? std::to_string(res->status) : std::string("closed");
         }},
        {"slowloris: a header byte every 100 ms", "408",
         [&] {
             const int fd =
                 test::send_raw(port, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n");
             std::string got;
             for (int i = 0; i < 200 && got.empty(); ++i) {
                 if (::send(fd, "X", 1, MSG_NOSIGNAL) != 1) break;
                 std::this_thread::sleep_for(std::chrono::milliseconds(100));
                 char buf[4096];
                 const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                 if (n > 0) got.assign(buf, static_cast<size_t>(n));
                 if (n == 0) break;
             }
             ::close(fd);
             return status_of(got);
         }},
        {"64 simultaneous connections (parallel 4, queue 8)", "all answered 200 or 503",
         [&] {
             std::map<std::string, int> by_status;
             std::mutex mu;
             std::vector<std::thread> ts;
             for (int i = 0; i < 64; ++i)
                 ts.emplace_back([&, i] {
                     const std::string st = post(port, "/v1/completions",
                                                 json{{"model", "stories260K"},
                                                      {"prompt", "Once"},
                                                      {"max_tokens", 32},
                                                      {"seed", i}}
                                                     .dump());
                     std::lock_guard lock(mu);
                     ++by_status[st];
                 });
             for (auto& t : ts) t.join();
             std::string out;
             for (const auto& [st, n] : by_status)
                 out += (out.empty() ? "" : ", ") + st + " x" + std::to_string(n);
             const bool ok = by_status.size() <= 2 && by_status.count("200") &&
                             by_status["200"] + by_status["503"] == 64;
             return ok ? "all answered 200 or 503 (" + out + ")" : out;
         }},
        // Whether the stream is cut when its buffers fill or ends into them depends
        // on how many bytes the tokens take; either way the slot must come free
        // while the client still reads nothing.
        {"a reader that never reads its stream", "200, slot freed",
         [&] {
             settle(port);
             const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
             const int small = 4096;
             ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
             sockaddr_in addr{};
             addr.sin_family = AF_INET;
             addr.sin_port = htons(static_cast<uint16_t>(port));
             addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
             if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
                 return std::string("no connect");
             const std::string req = test::http_post(
                 "/v1/completions",
                 R"({"model":"syn","prompt":"hi","max_tokens":4000,"ignore_eos":true,"stream":true})");
             if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size()))
                 return std::string("no write");
             char head[12] = {};
             if (::recv(fd, head, sizeof head, MSG_WAITALL) != sizeof head)
                 return std::string("no answer");
             settle(port);
             const bool freed = health(port)["slots_busy"] == 0;
             ::close(fd);
             return status_of(std::string(head, sizeof head)) + (freed ? ", slot freed" : ", slot held");
         }},
        {"mid-stream disconnect", "200, cancelled, slot freed",
         [&] {
             const int64_t before = settle(port);
             const int fd = test::send_raw(
                 port,
                 test::http_post(
                     "/v1/completions",
                     R"({"model":"syn","prompt":"hi","max_tokens":250,"ignore_eos":true,"stream":true})"));
             std::string got;
             test::read_until(fd, "data: ", &got);
             ::close(fd);
             const int64_t after = cancelled_reaching(port, before + 1);
             return status_of(got) +
                    (after == before + 1 ? ", cancelled, slot freed" : ", not cancelled");
         }},
    };

    std::string table = "| input | status | parallel client finished |\n|---|---|---|\n";
    for (const Case& c : cases) {
        std::atomic<bool> started{false};
        std::string text;
        std::thread good([&] { text = good_client(port, &started); });
        while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const std::string got = c.run();
        good.join();
        const bool finished = text == alone;
        EXPECT_TRUE(got.starts_with(c.expect)) << c.input << ": " << got;
        EXPECT_TRUE(finished) << c.input << ": " << text;
        table += "| " + c.input + " | " + got + " | " + (finished ? "yes" : "NO") + " |\n";
    }
    std::printf("%s", table.c_str());
    EXPECT_EQ(good_client(port, nullptr), alone);
}

}  // namespace
}  // namespace strata
