#include "app/server/connection.h"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace strata::app::server {
namespace {

using Clock = std::chrono::steady_clock;

// How the pool hands a connection to `process_and_close_socket`, which httplib
// calls with nothing but the socket.
enum class Mode { Serve, Refuse, Drop };
thread_local Mode t_mode = Mode::Serve;
thread_local HeaderFault t_fault = HeaderFault::None;

// Waits up to `ms` (negative: forever) for `events` on `fd`; the revents, 0 on timeout.
int wait_for(int fd, short events, int ms) {
    pollfd p{.fd = fd, .events = events, .revents = 0};
    while (true) {
        const int r = ::poll(&p, 1, ms);
        if (r >= 0) return r == 0 ? 0 : p.revents;
        if (errno != EINTR) return POLLERR;
    }
}

int ms_until(Clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
}

void address(const sockaddr_storage& a, std::string& ip, int& port) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
        ::inet_ntop(AF_INET, &v4.sin_addr, buf, sizeof buf);
        port = ntohs(v4.sin_port);
    } else if (a.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
        ::inet_ntop(AF_INET6, &v6.sin6_addr, buf, sizeof buf);
        port = ntohs(v6.sin6_port);
    }
    ip = buf;
}

// One connection's socket, buffered for reading (httplib reads a request's
// head a byte at a time). While a request's head is being read, reads stop at
// the head's deadline and byte budget.
class SocketStream final : public httplib::Stream {
  public:
    SocketStream(socket_t fd, int read_timeout_ms, int write_timeout_ms)
        : fd_(fd), read_ms_(read_timeout_ms), write_ms_(write_timeout_ms) {}

    void begin_head(int timeout_s, size_t max_bytes) {
        in_head_ = true;
        head_deadline_ = Clock::now() + std::chrono::seconds(timeout_s);
        head_left_ = max_bytes;
        t_fault = HeaderFault::None;
    }
    void end_head() { in_head_ = false; }
    bool has_buffered() const { return pos_ < len_; }

    bool is_readable() const override {
        return has_buffered() || (wait_for(fd_, POLLIN, read_ms_) & POLLIN);
    }
    // Writable within the write timeout, and the client has not hung up.
    bool is_writable() const override {
        const int ev = wait_for(fd_, POLLOUT, write_ms_);
        if (!(ev & POLLOUT) || (ev & (POLLERR | POLLHUP))) return false;
        char c;
        return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0;  // 0: the client closed its side
    }

    ssize_t read(char* ptr, size_t size) override {
        if (!has_buffered()) {
            int ms = read_ms_;
            if (in_head_) {
                if (Clock::now() >= head_deadline_) return t_fault = HeaderFault::Timeout, -1;
                ms = std::min(ms, ms_until(head_deadline_) + 1);
            }
            if (!(wait_for(fd_, POLLIN, ms) & (POLLIN | POLLHUP | POLLERR))) {
                if (in_head_ && Clock::now() >= head_deadline_) t_fault = HeaderFault::Timeout;
                return -1;
            }
            ssize_t n;
            do n = ::recv(fd_, buf_, sizeof buf_, 0);
            while (n < 0 && errno == EINTR);
            if (n <= 0) return -1;
            pos_ = 0;
            len_ = static_cast<size_t>(n);
        }
        size_t n = std::min(size, len_ - pos_);
        if (in_head_) {
            if (head_left_ == 0) return t_fault = HeaderFault::TooLarge, -1;
            n = std::min(n, head_left_);
            head_left_ -= n;
        }
        std::copy_n(buf_ + pos_, n, ptr);
        pos_ += n;
        return static_cast<ssize_t>(n);
    }

    ssize_t write(const char* ptr, size_t size) override {
        if (!(wait_for(fd_, POLLOUT, write_ms_) & POLLOUT)) return -1;
        ssize_t n;
        do n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        return n;
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address(a, ip, port);
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        sockaddr_storage a{};
        socklen_t len = sizeof a;
        if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) address(a, ip, port);
    }
    socket_t socket() const override { return fd_; }

  private:
    socket_t fd_;
    int read_ms_, write_ms_;
    char buf_[4096];
    size_t pos_ = 0, len_ = 0;
    bool in_head_ = false;
    Clock::time_point head_deadline_;
    size_t head_left_ = 0;
};

int to_ms(time_t sec, time_t usec) {
    return static_cast<int>(std::min<int64_t>(sec * 1000 + usec / 1000, 1 << 30));
}

}  // namespace

HeaderFault current_header_fault() {
    return t_fault;
}

// A thread per connection up to the limit, created up front so that a burst of
// connections costs no thread creation; past the limit one thread answers 503s,
// and past its short backlog connections are closed unanswered.
class HttpCore::Pool final : public httplib::TaskQueue {
  public:
    explicit Pool(HttpCore& core) : core_(core) {
        const int n = std::max(1, core.limits_.max_connections);
        for (int i = 0; i < n; ++i) threads_.emplace_back([this] { work(jobs_, Mode::Serve); });
        threads_.emplace_back([this] { work(refusals_, Mode::Refuse); });
    }

    void enqueue(std::function<void()> fn) override {
        std::unique_lock lock(mu_);
        if (core_.open_.load() < std::max(1, core_.limits_.max_connections)) {
            core_.open_.fetch_add(1);
            jobs_.push_back(std::move(fn));
        } else {
            core_.rejected_.fetch_add(1);
            if (refusals_.size() >= kMaxRefusals) {
                lock.unlock();
                t_mode = Mode::Drop;  // this is the accepting thread: close without a word
                fn();
                t_mode = Mode::Serve;
                return;
            }
            refusals_.push_back(std::move(fn));
        }
        cv_.notify_all();
    }

    void shutdown() override {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }

  private:
    static constexpr size_t kMaxRefusals = 64;

    void work(std::deque<std::function<void()>>& queue, Mode mode) {
        t_mode = mode;
        while (true) {
            std::function<void()> fn;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [&] { return stop_ || !queue.empty(); });
                if (queue.empty()) return;  // stopping, and nothing left to serve
                fn = std::move(queue.front());
                queue.pop_front();
            }
            fn();
            if (mode == Mode::Serve) core_.open_.fetch_sub(1);
        }
    }

    HttpCore& core_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_, refusals_;
    std::vector<std::thread> threads_;
    bool stop_ = false;
};

HttpCore::HttpCore(ConnectionLimits limits,
                   std::function<void(const httplib::Request&, httplib::Response&)> reject)
    : limits_(limits), reject_(std::move(reject)) {
    new_task_queue = [this] { return new Pool(*this); };
}

bool HttpCore::process_and_close_socket(socket_t sock) {
    t_fault = HeaderFault::None;
    if (t_mode == Mode::Serve)
        serve(sock);
    else if (t_mode == Mode::Refuse)
        refuse(sock);
    // A client still sending when refused would get a reset for its unread bytes,
    // which can destroy the answer before it reads it: say we are done, and read
    // what it sends for a moment before closing.
    if (t_mode == Mode::Refuse || t_fault != HeaderFault::None) {
        ::shutdown(sock, SHUT_WR);
        const auto until = Clock::now() + std::chrono::milliseconds(500);
        char buf[16384];
        while (wait_for(sock, POLLIN, ms_until(until)) & (POLLIN | POLLHUP)) {
            if (::recv(sock, buf, sizeof buf, 0) <= 0) break;
        }
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return true;
}

// httplib's keep-alive loop, over our stream: wait for the next request up to
// the keep-alive timeout (and no longer once the server stops), then read and
// answer it.
void HttpCore::serve(socket_t sock) {
    ::setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &limits_.send_buffer_bytes,
                 sizeof limits_.send_buffer_bytes);
    SocketStream strm(sock, to_ms(read_timeout_sec_, read_timeout_usec_),
                      to_ms(write_timeout_sec_, write_timeout_usec_));
    for (size_t left = keep_alive_max_count_; left > 0; --left) {
        const auto idle_until = Clock::now() + std::chrono::seconds(keep_alive_timeout_sec_);
        bool ready = strm.has_buffered();
        while (!ready && svr_sock_ != INVALID_SOCKET && Clock::now() < idle_until)
            ready = wait_for(sock, POLLIN, std::min(50, ms_until(idle_until) + 1)) != 0;
        if (!ready || svr_sock_ == INVALID_SOCKET) return;
        strm.begin_head(std::max(1, limits_.header_timeout), limits_.max_header_bytes);
        bool closed = false;
        const bool ok =
            process_request(strm, left == 1, closed, [&](httplib::Request&) { strm.end_head(); });
        if (!ok || closed) return;
    }
}

// Reads what the client sent at once (to answer in its path's API shape and so
// closing does not reset the connection before the answer is read), answers 503
// and closes.
void HttpCore::refuse(socket_t sock) {
    std::string head;
    char buf[4096];
    const auto until = Clock::now() + std::chrono::milliseconds(100);
    while (head.size() < 8192 && head.find("\r\n") == std::string::npos &&
           (wait_for(sock, POLLIN, ms_until(until)) & POLLIN)) {
        const ssize_t n = ::recv(sock, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
    }
    httplib::Request req;
    const size_t sp = head.find(' ');
    if (sp != std::string::npos)
        req.path = head.substr(sp + 1, head.find_first_of(" ?\r", sp + 1) - sp - 1);
    httplib::Response res;
    res.status = 503;
    if (reject_) reject_(req, res);
    std::string out =
        fmt::format("HTTP/1.1 {} Service Unavailable\r\nConnection: close\r\n", res.status);
    for (const auto& [k, v] : res.headers) out += fmt::format("{}: {}\r\n", k, v);
    out += fmt::format("Content-Length: {}\r\n\r\n", res.body.size()) + res.body;
    if (wait_for(sock, POLLOUT, 1000) & POLLOUT)
        (void)::send(sock, out.data(), out.size(), MSG_NOSIGNAL);
}

}  // namespace strata::app::server
