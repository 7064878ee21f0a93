#pragma once
// `HttpCore`: httplib's server with strata's own handling of each connection.
// httplib 0.11 (Debian's) lets one client hold a worker for ever by sending its
// headers a byte at a time (each read waits the full timeout, and there is no
// deadline for the whole head), grows memory without bound on endless header
// lines, and queues every accepted connection without limit. Here each
// connection is served by a socket stream of our own that gives a request's line
// and headers one deadline and one byte budget, and a pool that serves at most
// `max_connections` at once and answers the rest 503 straight away.

#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace strata::app::server {

struct ConnectionLimits {
    int max_connections = 128;  // served at once; more are answered 503 and closed
    // Seconds from the first byte of a request to the end of its headers, and the
    // bytes its request line and headers may take together.
    int header_timeout = 30;
    size_t max_header_bytes = 64 << 10;
    // The kernel's send buffer per connection (Linux doubles it). Fixed rather
    // than grown by the kernel (up to megabytes), so a client that stops reading
    // blocks its stream's writes after a bounded amount of text and is dropped
    // after the write timeout; ample for token streams and JSON answers.
    int send_buffer_bytes = 64 << 10;
};

// Why the headers of the request this thread is serving could not be read; the
// error handler turns it into 408 or 431 instead of httplib's plain 400.
enum class HeaderFault { None, Timeout, TooLarge };
HeaderFault current_header_fault();

class HttpCore : public httplib::Server {
  public:
    // `reject` fills the response for a connection over the limit (the request's
    // path is known, so it can use the path's API error shape).
    HttpCore(ConnectionLimits limits,
             std::function<void(const httplib::Request&, httplib::Response&)> reject);

    int open_connections() const { return open_.load(); }
    uint64_t rejected_connections() const { return rejected_.load(); }

  private:
    class Pool;
    bool process_and_close_socket(socket_t sock) override;
    void serve(socket_t sock);
    void refuse(socket_t sock);

    ConnectionLimits limits_;
    std::function<void(const httplib::Request&, httplib::Response&)> reject_;
    std::atomic<int> open_{0};
    std::atomic<uint64_t> rejected_{0};
};

}  // namespace strata::app::server
