#include "http/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <charconv>
#include <thread>

namespace pg2kafka::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr std::chrono::seconds kReadTimeout{5};
constexpr std::chrono::seconds kWriteTimeout{10};
constexpr uint32_t kHeaderLimit = 8192;
constexpr int kMaxConnections = 8;

}  // namespace

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string& error) {
  const std::string example = " (e.g. 127.0.0.1:9464, [::1]:9464 or localhost:9464)";
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) {
    error = "\"" + std::string(text) + "\" is not host:port" + example;
    return std::nullopt;
  }
  std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    error = "the port \"" + std::string(port_text) + "\" is not a number from 0 to 65535";
    return std::nullopt;
  }
  if (host.empty()) {
    error =
        "give the address to listen on as well as the port: 127.0.0.1:" + std::string(port_text) +
        " for this host only, 0.0.0.0:" + std::string(port_text) + " for every interface";
    return std::nullopt;
  }
  std::string literal(host);
  if (literal == "localhost") literal = "127.0.0.1";
  if (literal.size() > 2 && literal.front() == '[' && literal.back() == ']')
    literal = literal.substr(1, literal.size() - 2);
  else if (literal.find(':') != std::string::npos) {
    error = "write an IPv6 address in brackets, e.g. [::1]:" + std::string(port_text);
    return std::nullopt;
  }
  boost::system::error_code bad;
  auto address = asio::ip::make_address(literal, bad);
  if (bad) {
    error = "\"" + std::string(host) +
            "\" is not an IP address: give an address of this host, not a name" + example;
    return std::nullopt;
  }
  return ListenAddress{literal, static_cast<uint16_t>(port), address.is_loopback()};
}

struct Server::Impl {
  // Before the io_context: the sessions it still holds when destroyed count themselves out.
  std::atomic<int> connections{0};
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  Handler handler;
  std::thread thread;
  bool stopped = false;

  void accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server) : stream_(std::move(socket)), server_(server) {}
  ~Session() { --server_.connections; }

  void run() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(0);
    stream_.expires_after(kReadTimeout);
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted)
      return close();
    if (ec) return reply(400, "bad request: " + ec.message() + "\n", false);
    const auto& req = parser_->get();
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
      response_.set(bhttp::field::allow, "GET, HEAD");
      return reply(405, "only GET and HEAD are served\n", false);
    }
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    Response r;
    try {
      r = server_.handler(path);
    } catch (const std::exception& e) {
      r = Response{500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what()};
    }
    response_.set(bhttp::field::content_type, r.content_type);
    reply(r.status, std::move(r.body), req.method() == bhttp::verb::head);
  }

  void reply(unsigned status, std::string body, bool head) {
    response_.version(11);
    response_.result(status);
    response_.keep_alive(false);
    response_.set(bhttp::field::cache_control, "no-store");
    if (response_.find(bhttp::field::content_type) == response_.end())
      response_.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    response_.content_length(body.size());
    if (!head) response_.body() = std::move(body);
    stream_.expires_after(kWriteTimeout);
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code, size_t) { self->close(); });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{kHeaderLimit};
  std::optional<bhttp::request_parser<bhttp::empty_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  Server::Impl& server_;
};

}  // namespace

void Server::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      // Over the limit: close at once rather than queue (a scraper retries at its next interval).
      if (++connections > kMaxConnections) {
        --connections;
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(std::move(socket), *this)->run();
      }
    }
    accept();
  });
}

Server::Server(const ListenAddress& address, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  std::string where =
      (address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host) +
      ":" + std::to_string(address.port);
  boost::system::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address(address.host, ec), address.port);
  auto fail = [&](const char* step) {
    std::string fix = ec == asio::error::address_in_use
                          ? ": another process uses this port; choose another one in http.listen"
                      : ec == boost::system::errc::address_not_available
                          ? ": this host has no such address; give one of its own, or 127.0.0.1"
                      : ec == asio::error::access_denied
                          ? ": ports below 1024 need privileges; choose a port above 1024"
                          : "";
    throw ServerError("cannot listen on " + where + " (http.listen): " + step + ": " +
                      ec.message() + fix);
  };
  if (ec) fail("address");
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (ec) fail("socket");
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  impl_->acceptor.bind(endpoint, ec);
  if (ec) fail("bind");
  impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen");
}

Server::~Server() {
  stop();
}

void Server::start() {
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

void Server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t Server::port() const {
  boost::system::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

}  // namespace pg2kafka::http
