// Bad and hostile requests to `strata serve`: each gets the right status in its
// API's error shape, and the server goes on serving everyone else.

#include "server_util.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <thread>

namespace strata {
namespace {

using nlohmann::json;
using test::TestServer;

class ServerAbuse : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        std::signal(SIGPIPE, SIG_IGN);
        dir_ = new test::TempDir();
        // A short read timeout so the trickling client is cut off quickly.
        server_ = new TestServer(
            {.models = {test::synth_model(*dir_)}, .n_ctx = 64, .parallel = 2, .read_timeout = 2});
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    // Posts `body` and checks the status and the API's error shape; the error.
    static json refused(const std::string& path, const std::string& body, int status) {
        auto res = server_->client().Post(path, body, "application/json");
        EXPECT_TRUE(res) << path << " " << body;
        if (!res) return json();
        EXPECT_EQ(res->status, status) << path << " " << body << ": " << res->body;
        const json e = json::parse(res->body, nullptr, false);
        if (path.starts_with("/v1/")) {
            EXPECT_TRUE(e["error"]["message"].is_string()) << res->body;
            EXPECT_TRUE(e["error"]["type"].is_string()) << res->body;
            return e["error"];
        }
        EXPECT_TRUE(e["error"].is_string()) << res->body;
        return e;
    }
    static void still_serving() {
        auto res = server_->client().Post("/v1/completions",
                                          R"({"model":"syn","prompt":"hi","max_tokens":2})",
                                          "application/json");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200) << res->body;
    }

    static inline test::TempDir* dir_ = nullptr;
    static inline TestServer* server_ = nullptr;
};

const char* kChat = "/v1/chat/completions";

std::string chat_with(const std::string& extra) {
    return R"({"model":"syn","messages":[{"role":"user","content":"x"}])" +
           (extra.empty() ? "" : "," + extra) + "}";
}

TEST_F(ServerAbuse, MalformedBodies) {
    for (const char* body :
         {"", "{", "{\"model\":}", "nul", "{\"a\":1}}", "\xff\xfe{}", "[]", "42"}) {
        refused(kChat, body, 400);
        refused("/api/chat", body, 400);
    }
    // JSON has no NaN or Infinity; a body that sends them is malformed.
    EXPECT_NE(
        refused(kChat, chat_with(R"("temperature":NaN)"), 400)["message"].get<std::string>().find(
            "not valid JSON"),
        std::string::npos);
    refused(kChat, chat_with(R"("temperature":Infinity)"), 400);
    still_serving();
}

TEST_F(ServerAbuse, WrongTypesAndOutOfRangeNumbersNameTheField) {
    const std::pair<const char*, const char*> cases[] = {
        {R"("temperature":"hot")", "temperature"},
        {R"("temperature":-1)", "temperature"},
        {R"("temperature":1e300)", "temperature"},
        {R"("max_tokens":-1)", "max_tokens"},
        {R"("max_tokens":1e300)", "max_tokens"},
        {R"("max_tokens":2.5)", "max_tokens"},
        {R"("max_tokens":"10")", "max_tokens"},
        {R"("top_p":2)", "top_p"},
        {R"("seed":1e300)", "seed"},
        {R"("seed":"x")", "seed"},
        {R"("stop":[1,2])", "stop[0]"},
        {R"("stream":"yes")", "stream"},
        {R"("logit_bias":{"1":1e300})", "logit_bias"},
        {R"("n":-1)", "n"},
        {R"("presence_penalty":99)", "presence_penalty"},
        {R"("model":7)", "model"},
    };
    for (const auto& [field, param] : cases)
        EXPECT_EQ(refused(kChat, chat_with(field), 400)["param"], param) << field;
    refused(kChat, R"({"model":"syn","messages":[{"role":"user","content":7}]})", 400);
    refused(kChat, R"({"model":"syn","messages":[{"content":"x"}]})", 400);

    for (const char* options :
         {R"({"temperature":-1})", R"({"temperature":1e300})", R"({"num_predict":-3})",
          R"({"num_predict":1e300})", R"({"num_ctx":0})", R"({"num_ctx":1e300})",
          R"({"top_k":"x"})", R"({"seed":1.5})", R"("fast")"}) {
        const std::string body =
            std::string(R"({"model":"syn","prompt":"x","options":)") + options + "}";
        refused("/api/generate", body, 400);
    }
    refused("/api/chat", R"({"model":"syn","messages":"hi"})", 400);
    refused("/api/chat", R"({"model":"syn","messages":[{"role":"user","content":["x"]}]})", 400);
    still_serving();
}

TEST_F(ServerAbuse, UnknownModelEmptyMessagesAndPromptsLongerThanTheContext) {
    EXPECT_NE(refused(kChat, R"({"model":"nope","messages":[{"role":"user","content":"x"}]})",
                      404)["message"]
                  .get<std::string>()
                  .find("syn"),
              std::string::npos);
    refused("/api/chat", R"({"model":"nope","messages":[{"role":"user","content":"x"}]})", 404);
    refused("/api/show", R"({"model":"nope"})", 404);
    EXPECT_EQ(server_->client().Get("/v1/models/nope")->status, 404);
    EXPECT_EQ(refused(kChat, R"({"model":"syn","messages":[]})", 400)["param"], "messages");

    std::string long_text;
    for (int i = 0; i < 200; ++i) long_text += "hello world ";
    EXPECT_EQ(
        refused(kChat,
                R"({"model":"syn","messages":[{"role":"user","content":")" + long_text + "\"}]}",
                400)["code"],
        "context_length_exceeded");
    const json e =
        refused("/api/generate", R"({"model":"syn","prompt":")" + long_text + "\"}", 400);
    EXPECT_NE(e["error"].get<std::string>().find("longer than the context"), std::string::npos);
    // A smaller num_ctx asked by the request is honoured too.
    refused("/api/generate",
            R"({"model":"syn","prompt":"hello world hello world","options":{"num_ctx":2}})", 400);
    still_serving();
}

TEST_F(ServerAbuse, HundredMegabyteBodyGets413) {
    // 100 MB to one API; just over the 16 MiB limit to the other, to keep the suite fast.
    for (const auto& [path, size] :
         {std::pair<const char*, size_t>{"/v1/completions", 100u << 20},
          std::pair<const char*, size_t>{"/api/generate", (16u << 20) + 1}}) {
        auto res = server_->client().Post(path, std::string(size, ' '), "application/json");
        // The server may close the connection before the client finishes sending.
        if (res) {
            EXPECT_EQ(res->status, 413) << path;
            const json e = json::parse(res->body);
            EXPECT_TRUE(std::string(path) == "/api/generate" ? e["error"].is_string()
                                                             : e["error"]["message"].is_string());
        }
    }
    still_serving();
}

// A client that sends its body one byte per second holds one connection until
// the read timeout (2 s here), then gets 408; everyone else is served meanwhile.
TEST_F(ServerAbuse, TricklingBodyTimesOutWhileOthersAreServed) {
    const std::string body = chat_with("");
    const std::string head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    const int fd = test::send_raw(server_->port(), head);
    ASSERT_GE(fd, 0);
    std::atomic<bool> others_done{false};
    std::thread others([&] {
        still_serving();
        others_done = true;
    });
    std::string got;
    for (size_t i = 0; i < body.size(); ++i) {
        if (::write(fd, body.data() + i, 1) != 1) break;  // the server hung up
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (i == 1) others.join();  // served while this client trickles
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            got.append(buf, static_cast<size_t>(n));
            break;
        }
    }
    if (others.joinable()) others.join();
    EXPECT_TRUE(others_done);
    if (got.find('}') == std::string::npos) {
        std::string more;
        test::read_until(fd, "}", &more);
        got += more;
    }
    ::close(fd);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 408")) << got;
    EXPECT_NE(got.find("did not arrive within 2 seconds"), std::string::npos) << got;
    still_serving();
}

}  // namespace
}  // namespace strata
