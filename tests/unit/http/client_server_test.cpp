#include "pprofd/http/client.hpp"
#include "pprofd/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

using namespace pprofd;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Runs a coroutine to completion on io (with a 20 s safety stop so a bug cannot hang the test).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    result = std::move(value);
    io.stop();  // servers keep the loop busy forever; the task is what we wait for
  });
  io.run_for(20s);
  io.restart();
  if (error) std::rethrow_exception(error);
  REQUIRE(result.has_value());
  return std::move(*result);
}

http::Handler echo_handler(int& requests) {
  return [&requests](const http::ServerRequest& req) {
    ++requests;
    const std::string target(req.target());
    if (target == "/big")
      return http::make_response(req, 200, "application/octet-stream", std::string(2 << 20, 'x'));
    if (target == "/auth")
      return http::make_response(req, 200, "text/plain",
                                 std::string(req[boost::beast::http::field::authorization]));
    return http::make_response(req, 200, "text/plain", "hello " + target);
  };
}

}  // namespace

TEST_CASE("GET over a reused keep-alive connection") {
  asio::io_context io;
  int requests = 0;
  http::Server server(io.get_executor(), echo_handler(requests));
  auto bound = server.listen("127.0.0.1:0");
  REQUIRE(bound.has_value());
  http::Client client(io.get_executor(), {"http", "127.0.0.1", bound->port()});

  for (int i = 0; i < 3; ++i) {
    http::Request req;
    req.target = "/x" + std::to_string(i);
    auto res = run(io, client.fetch(req));
    REQUIRE(res.has_value());
    CHECK(res->status == 200);
    CHECK(res->body == "hello /x" + std::to_string(i));
    CHECK(res->header("Content-Type") == "text/plain");
  }
  CHECK(requests == 3);
  CHECK(client.connections_opened() == 1);
  CHECK(client.idle_connections() == 1);
  run(io, [&]() -> asio::awaitable<int> {
    co_await server.stop();
    co_return 0;
  }());
}

TEST_CASE("headers are sent, and a body over the limit fails as too_large") {
  asio::io_context io;
  int requests = 0;
  http::Server server(io.get_executor(), echo_handler(requests));
  auto bound = server.listen("127.0.0.1:0");
  REQUIRE(bound.has_value());
  http::Client client(io.get_executor(), {"http", "127.0.0.1", bound->port()});

  http::Request auth;
  auth.target = "/auth";
  auth.headers = {{"Authorization", "Bearer s3cret"}};
  auto res = run(io, client.fetch(auth));
  REQUIRE(res.has_value());
  CHECK(res->body == "Bearer s3cret");

  http::Request big;
  big.target = "/big";
  big.body_limit = 1 << 20;
  auto failed = run(io, client.fetch(big));
  REQUIRE(failed.has_error());
  CHECK(failed.error().kind == http::FailureKind::too_large);

  big.body_limit = 4 << 20;
  auto ok = run(io, client.fetch(big));
  REQUIRE(ok.has_value());
  CHECK(ok->body.size() == (2u << 20));
}

TEST_CASE("a refused connection is a connect failure") {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  http::Client client(io.get_executor(), {"http", "127.0.0.1", port});
  auto res = run(io, client.fetch({}));
  REQUIRE(res.has_error());
  CHECK(res.error().kind == http::FailureKind::connect);
}

TEST_CASE("a peer that accepts and never answers times out at the deadline") {
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket held(io);
  silent.async_accept(held, [](boost::system::error_code) {});
  http::Client client(io.get_executor(), {"http", "127.0.0.1", silent.local_endpoint().port()});
  http::Request req;
  req.timeout = 300ms;
  const auto started = std::chrono::steady_clock::now();
  auto res = run(io, client.fetch(req));
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(res.has_error());
  CHECK(res.error().kind == http::FailureKind::timeout);
  CHECK(took >= 250ms);
  CHECK(took < 5s);
}

TEST_CASE("cancelling the caller aborts a pending request") {
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket held(io);
  silent.async_accept(held, [](boost::system::error_code) {});
  http::Client client(io.get_executor(), {"http", "127.0.0.1", silent.local_endpoint().port()});
  http::Request req;
  req.timeout = 60s;
  asio::cancellation_signal cancel;
  std::optional<http::FetchResult> result;
  asio::co_spawn(
      io, client.fetch(req),
      asio::bind_cancellation_slot(
          cancel.slot(), [&](std::exception_ptr, http::FetchResult r) { result = std::move(r); }));
  asio::steady_timer later(io, 200ms);
  later.async_wait(
      [&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
  const auto started = std::chrono::steady_clock::now();
  io.run_for(10s);
  REQUIRE(result.has_value());
  REQUIRE(result->has_error());
  CHECK(result->error().kind == http::FailureKind::cancelled);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("a keep-alive connection the server closed is retried once on a new one") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  // Answers exactly one request per connection, advertising keep-alive, then closes.
  auto serve = [&]() -> asio::awaitable<int> {
    for (int i = 0; i < 2; ++i) {
      auto socket = co_await acceptor.async_accept(asio::use_awaitable);
      char buf[4096];
      co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
      const std::string reply =
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
      co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
      socket.close();
    }
    co_return 0;
  };
  asio::co_spawn(io, serve(), asio::detached);
  http::Client client(io.get_executor(), {"http", "127.0.0.1", acceptor.local_endpoint().port()});
  auto first = run(io, client.fetch({}));
  REQUIRE(first.has_value());
  auto second = run(io, client.fetch({}));
  REQUIRE(second.has_value());
  CHECK(second->body == "ok");
  CHECK(client.connections_opened() == 2);
}

TEST_CASE("parse_endpoint") {
  auto ep = http::parse_endpoint("http", "10.1.2.3:6060");
  REQUIRE(ep.has_value());
  CHECK(ep->host == "10.1.2.3");
  CHECK(ep->port == 6060);
  ep = http::parse_endpoint("https", "[fd00::1]:443");
  REQUIRE(ep.has_value());
  CHECK(ep->host == "fd00::1");
  CHECK(ep->authority() == "[fd00::1]:443");
  CHECK(http::parse_endpoint("ftp", "a:1").has_error());
  CHECK(http::parse_endpoint("http", "a:0").has_error());
  CHECK(http::parse_endpoint("http", "noport").has_error());
}
