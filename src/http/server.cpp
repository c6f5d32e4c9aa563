#include "pprofd/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <set>

namespace pprofd::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {
constexpr auto request_timeout = std::chrono::seconds(30);
constexpr std::uint64_t request_body_limit = 1 << 20;
}  // namespace

ServerResponse make_response(const ServerRequest& request, unsigned status,
                             std::string_view content_type, std::string body) {
  ServerResponse res{static_cast<bhttp::status>(status), request.version()};
  res.set(bhttp::field::server, "pprofd");
  res.set(bhttp::field::content_type, content_type);
  res.keep_alive(request.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

struct Server::State : std::enable_shared_from_this<State> {
  asio::any_io_executor executor;
  Handler handler;
  tcp::acceptor acceptor;
  std::set<beast::tcp_stream*> sessions;
  std::size_t running = 0;  // accept loop + sessions still inside their coroutine
  asio::steady_timer all_done;
  bool stopping = false;

  State(asio::any_io_executor ex, Handler h)
      : executor(ex), handler(std::move(h)), acceptor(ex), all_done(ex) {
    all_done.expires_at(asio::steady_timer::time_point::max());
  }

  void finished() {
    if (--running == 0) all_done.cancel();
  }

  asio::awaitable<void> session(beast::tcp_stream stream) {
    auto self = shared_from_this();
    sessions.insert(&stream);
    beast::flat_buffer buffer;
    while (!stopping) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(request_body_limit);
      stream.expires_after(request_timeout);
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      if (ec) break;
      ServerRequest request = parser.release();
      ServerResponse response;
      try {
        response = handler(request);
      } catch (const std::exception& e) {
        // One failing handler answers 500; it never takes the server down.
        response = make_response(request, 500, "text/plain; charset=utf-8",
                                 std::string("internal error: ") + e.what() + "\n");
      }
      stream.expires_after(request_timeout);
      auto [wec, written] = co_await bhttp::async_write(stream, response, use_tuple);
      if (wec || !response.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    sessions.erase(&stream);
    finished();
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) break;
        // Out of descriptors and similar: back off briefly instead of spinning.
        asio::steady_timer pause(executor, std::chrono::milliseconds(100));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      ++running;
      auto session_task = session(beast::tcp_stream(std::move(socket)));
      asio::co_spawn(executor, std::move(session_task), asio::detached);
    }
    finished();
  }
};

Server::Server(asio::any_io_executor executor, Handler handler)
    : state_(std::make_shared<State>(std::move(executor), std::move(handler))) {}

Server::~Server() {
  boost::system::error_code ignored;
  state_->stopping = true;
  state_->acceptor.close(ignored);
  for (auto* s : state_->sessions) s->socket().close(ignored);
}

Result<tcp::endpoint> Server::listen(std::string_view host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string_view::npos) return make_error("expected host:port");
  std::string host(host_port.substr(0, colon));
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec)
    return make_error("listen address \"" + std::string(host_port) +
                      "\": host must be an IP address");
  const auto port_text = host_port.substr(colon + 1);
  unsigned port = 0;
  const auto [end, port_ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
    return make_error("listen address \"" + std::string(host_port) + "\": port must be 0-65535");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor.close(ec);
    return make_error("listen on " + std::string(host_port) + ": " + ec.message());
  }
  const auto bound = acceptor.local_endpoint();
  ++state_->running;
  asio::co_spawn(state_->executor, state_->accept_loop(), asio::detached);
  return bound;
}

asio::awaitable<void> Server::stop() {
  auto state = state_;
  state->stopping = true;
  boost::system::error_code ignored;
  state->acceptor.close(ignored);
  for (auto* s : state->sessions) s->socket().close(ignored);
  if (state->running > 0) co_await state->all_done.async_wait(use_tuple);
}

}  // namespace pprofd::http
