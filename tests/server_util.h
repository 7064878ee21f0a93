#pragma once
// Helpers for tests that speak HTTP to an in-process `strata serve`: the server on
// its own thread, SSE parsing, and raw sockets for clients that misbehave.

#include "app/server/server.h"
#include "test_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace strata::test {

// One server on its own thread, stopped and joined on destruction.
class TestServer {
  public:
    explicit TestServer(app::server::ServerOptions o) {
        o.host = "127.0.0.1";
        o.port = 0;
        o.log_requests = false;
        o.prefetch = false;
        auto s = app::server::HttpServer::create(o);
        if (!s) throw std::runtime_error(s.error().message);
        server_ = std::move(*s);
        auto port = server_->bind();
        if (!port) throw std::runtime_error(port.error().message);
        port_ = *port;
        thread_ = std::thread([this] { server_->run(); });
        httplib::Client c("127.0.0.1", port_);
        for (int i = 0; i < 200 && !c.Get("/health"); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ~TestServer() {
        server_->stop();
        thread_.join();
    }
    int port() const { return port_; }
    app::server::HttpServer& server() { return *server_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(30, 0);
        return c;
    }

  private:
    std::unique_ptr<app::server::HttpServer> server_;
    std::thread thread_;
    int port_ = 0;
};

// The server's /health, or null when it did not answer.
inline nlohmann::json health(const TestServer& s) {
    auto res = s.client().Get("/health");
    return res && res->status == 200 ? nlohmann::json::parse(res->body) : nlohmann::json();
}

// Polls /health until `done` holds (or about 20 s pass); the last reading.
template <typename Pred>
nlohmann::json wait_health(const TestServer& s, Pred done) {
    nlohmann::json h;
    for (int i = 0; i < 2000; ++i) {
        h = health(s);
        if (!h.is_null() && done(h)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return h;
}

// The events of an SSE body, checking the framing: each is "data: ...\n\n".
inline std::vector<std::string> sse_events(const std::string& body) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < body.size()) {
        const size_t end = body.find("\n\n", pos);
        EXPECT_NE(end, std::string::npos) << "unterminated event at " << pos;
        if (end == std::string::npos) break;
        const std::string ev = body.substr(pos, end - pos);
        EXPECT_TRUE(ev.starts_with("data: ")) << ev;
        EXPECT_EQ(ev.find('\n'), std::string::npos) << ev;
        out.push_back(ev.substr(6));
        pos = end + 2;
    }
    return out;
}

// `dir`/`name`.gguf written by `strata synth` (a small random qwen3moe), or "" on failure.
inline std::string synth_model(const TempDir& dir, const std::string& name = "syn") {
    const std::string path = dir.file(name + ".gguf");
    const auto r = run_strata("synth --arch qwen3moe --out " + path);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return r.exit_code == 0 ? path : std::string();
}

// A raw connection to 127.0.0.1:`port` that has sent `request`; -1 on failure.
inline int send_raw(int port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return ::close(fd), -1;
    if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size()))
        return ::close(fd), -1;
    return fd;
}

// A POST of JSON `body` to `path`, as raw HTTP.
inline std::string http_post(const std::string& path, const std::string& body) {
    return "POST " + path +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Reads from `fd` until what was read contains `needle`; false at end of stream.
inline bool read_until(int fd, const std::string& needle, std::string* got = nullptr) {
    std::string buf;
    char chunk[4096];
    while (buf.find(needle) == std::string::npos) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) return false;
        buf.append(chunk, static_cast<size_t>(n));
    }
    if (got) *got = buf;
    return true;
}

}  // namespace strata::test
