// A small HTTP/1.1 server (Boost.Beast) on a thread of its own, for /metrics, /healthz and
// /readyz. It answers GET and HEAD, one request per connection, and protects the process from its
// clients: requests are bounded in size (8 KiB of headers, no body), every connection in time
// (5 s to send the request, 10 s to read the answer), and in number (at most 8 at once).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pg2kafka::http {

struct Response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called on the server's thread, one request at a time. `path` is the target without its query.
using Handler = std::function<Response(std::string_view path)>;

// The address to listen on, from "host:port": an IPv4 literal, "[IPv6 literal]" or "localhost"
// (the IPv4 loopback), and a port (0: any free port, for tests).
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
  bool loopback = false;
};
// Returns nullopt and sets `error` (what is wrong and the fix) for an invalid address.
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string& error);

class ServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Server {
 public:
  // Binds and listens at once (throws ServerError naming the address and the reason: the port is
  // taken, the address is not this host's); serves from start() on.
  Server(const ListenAddress& address, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void start();
  // Stops accepting, closes open connections and joins the thread. Idempotent.
  void stop();
  // The port bound (the one chosen by the system when the address said 0).
  uint16_t port() const;

  struct Impl;  // public for the connections' code in server.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace pg2kafka::http
