#include "pprofd/http/client.hpp"

#include "pprofd/common/async.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>

#include <charconv>
#include <optional>
#include <variant>

namespace pprofd::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

Failure classify(const boost::system::error_code& ec, std::string_view during) {
  std::string message = std::string(during) + ": " + ec.message();
  if (ec == beast::error::timeout) return {FailureKind::timeout, std::move(message)};
  if (ec == asio::error::operation_aborted) return {FailureKind::cancelled, std::move(message)};
  if (ec == bhttp::error::body_limit) return {FailureKind::too_large, std::move(message)};
  if (ec.category() == make_error_code(bhttp::error::bad_target).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
    return {FailureKind::protocol, std::move(message)};
  return {FailureKind::connect, std::move(message)};
}

// A connection that broke before the response started may just be a keep-alive connection the
// peer had already closed: such a request is retried once on a fresh connection.
bool stale_connection_error(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof ||
         ec == asio::ssl::error::stream_truncated;
}

}  // namespace

std::string Endpoint::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view scheme, std::string_view host_port) {
  if (scheme != "http" && scheme != "https")
    return make_error("unsupported scheme \"" + std::string(scheme) + "\"");
  Endpoint ep;
  ep.scheme = std::string(scheme);
  std::string_view port_text;
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find(']');
    if (close == std::string_view::npos || close + 1 >= host_port.size() ||
        host_port[close + 1] != ':')
      return make_error("invalid address \"" + std::string(host_port) + "\"");
    ep.host = std::string(host_port.substr(1, close - 1));
    port_text = host_port.substr(close + 2);
  } else {
    const auto colon = host_port.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return make_error("invalid address \"" + std::string(host_port) + "\": expected host:port");
    ep.host = std::string(host_port.substr(0, colon));
    port_text = host_port.substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port == 0 || port > 65535)
    return make_error("invalid port in \"" + std::string(host_port) + "\"");
  ep.port = static_cast<std::uint16_t>(port);
  return ep;
}

std::string_view to_string(FailureKind kind) {
  switch (kind) {
    case FailureKind::connect:
      return "connect_error";
    case FailureKind::timeout:
      return "timeout";
    case FailureKind::too_large:
      return "too_large";
    case FailureKind::protocol:
      return "protocol_error";
    case FailureKind::cancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string_view Response::header(std::string_view name) const {
  auto it = headers.find(name);
  if (it == headers.end()) return {};
  return {it->value().data(), it->value().size()};
}

struct Client::Connection {
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;
  std::variant<beast::tcp_stream, TlsStream> stream;
  beast::flat_buffer buffer;

  explicit Connection(beast::tcp_stream plain) : stream(std::move(plain)) {}
  Connection(beast::tcp_stream plain, asio::ssl::context& ctx)
      : stream(std::in_place_type<TlsStream>, std::move(plain), ctx) {}

  beast::tcp_stream& tcp() {
    if (auto* tls = std::get_if<TlsStream>(&stream)) return beast::get_lowest_layer(*tls);
    return std::get<beast::tcp_stream>(stream);
  }
};

Client::Client(asio::any_io_executor executor, Endpoint endpoint, ClientOptions options)
    : executor_(std::move(executor)),
      endpoint_(std::move(endpoint)),
      options_(std::move(options)) {}

Client::~Client() = default;

asio::awaitable<boost::system::result<Client::ConnectionPtr, Failure>> Client::connect(
    SteadyTime deadline) {
  std::vector<tcp::endpoint> addresses;
  if (is_ip_literal(endpoint_.host)) {
    addresses.emplace_back(asio::ip::make_address(endpoint_.host), endpoint_.port);
  } else {
    // getaddrinfo cannot be cancelled: the lookup gets its own state, and we stop waiting for
    // it at the deadline or on cancellation, leaving it to finish (and be ignored) on its own.
    struct Lookup {
      tcp::resolver resolver;
      asio::steady_timer done;
      boost::system::error_code ec;
      tcp::resolver::results_type results;
      bool finished = false;
      Lookup(asio::any_io_executor ex, SteadyTime deadline) : resolver(ex), done(ex, deadline) {}
    };
    auto lookup = std::make_shared<Lookup>(executor_, deadline);
    lookup->resolver.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port),
        [lookup](boost::system::error_code ec, tcp::resolver::results_type results) {
          lookup->ec = ec;
          lookup->results = std::move(results);
          lookup->finished = true;
          lookup->done.cancel();
        });
    co_await lookup->done.async_wait(use_tuple);
    if (!lookup->finished) {
      lookup->resolver.cancel();
      co_return co_await cancelled()
          ? Failure{FailureKind::cancelled, "resolve: cancelled"}
          : Failure{FailureKind::timeout, "resolve " + endpoint_.host + ": timed out"};
    }
    if (lookup->ec) co_return classify(lookup->ec, "resolve " + endpoint_.host);
    for (const auto& entry : lookup->results) addresses.push_back(entry.endpoint());
  }

  beast::tcp_stream plain(executor_);
  plain.expires_at(deadline);
  auto [ec, connected] = co_await plain.async_connect(addresses, use_tuple);
  if (ec) co_return classify(ec, "connect " + endpoint_.authority());
  boost::system::error_code nodelay_ec;
  plain.socket().set_option(tcp::no_delay(true), nodelay_ec);  // best effort
  ++connections_opened_;

  if (!endpoint_.tls()) co_return std::make_unique<Connection>(std::move(plain));

  if (!options_.tls)
    co_return Failure{FailureKind::connect, "https endpoint without a TLS context"};
  auto conn = std::make_unique<Connection>(std::move(plain), *options_.tls);
  auto& tls = std::get<Connection::TlsStream>(conn->stream);
  const std::string& name = options_.server_name.empty() ? endpoint_.host : options_.server_name;
  if (!is_ip_literal(name)) SSL_set_tlsext_host_name(tls.native_handle(), name.c_str());
  tls.set_verify_callback(asio::ssl::host_name_verification(name));
  conn->tcp().expires_at(deadline);
  auto [hs_ec] = co_await tls.async_handshake(asio::ssl::stream_base::client, use_tuple);
  if (hs_ec) co_return classify(hs_ec, "TLS handshake with " + endpoint_.authority());
  co_return conn;
}

namespace {

struct ExchangeError {
  boost::system::error_code ec;
  bool response_started;
  std::string_view during;
};

template <class Stream>
asio::awaitable<boost::system::result<Response, ExchangeError>> exchange(
    Stream& stream, beast::tcp_stream& tcp, beast::flat_buffer& buffer,
    const bhttp::request<bhttp::string_body>& req, std::uint64_t body_limit, SteadyTime deadline,
    bool& keep_alive) {
  tcp.expires_at(deadline);
  auto [wec, written] = co_await bhttp::async_write(stream, req, use_tuple);
  if (wec) co_return ExchangeError{wec, false, "write request"};

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(body_limit);
  parser.header_limit(64 * 1024);
  tcp.expires_at(deadline);
  const auto before = buffer.size();
  auto [rec, read] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
  if (rec) co_return ExchangeError{rec, read > before || parser.got_some(), "read response"};

  auto message = parser.release();
  keep_alive = message.keep_alive();
  Response out;
  out.status = message.result_int();
  out.wire_bytes = message.body().size();
  out.body = std::move(message.body());
  out.headers = std::move(message.base());
  co_return out;
}

}  // namespace

static bhttp::request<bhttp::string_body> to_beast(Request& request, const Endpoint& endpoint) {
  bhttp::request<bhttp::string_body> req{request.method, request.target, 11};
  req.set(bhttp::field::host, endpoint.authority());
  req.set(bhttp::field::user_agent, "pprofd");
  for (const auto& [name, value] : request.headers) req.set(name, value);
  req.body() = std::move(request.body);
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

asio::awaitable<FetchResult> Client::fetch(Request request) {
  const SteadyTime deadline = std::chrono::steady_clock::now() + request.timeout;
  const auto req = to_beast(request, endpoint_);

  for (int attempt = 0;; ++attempt) {
    ConnectionPtr conn;
    const bool reused = !idle_.empty();
    if (reused) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      auto connected = co_await connect(deadline);
      if (!connected) co_return connected.error();
      conn = std::move(*connected);
    }

    bool keep_alive = false;
    auto result = co_await std::visit(
        [&](auto& stream) {
          return exchange(stream, conn->tcp(), conn->buffer, req, request.body_limit, deadline,
                          keep_alive);
        },
        conn->stream);
    if (result) {
      if (keep_alive && idle_.size() < options_.max_idle_connections) {
        conn->tcp().expires_never();
        // An idle connection waits a whole interval: with thousands of targets, a read buffer
        // kept at its high-water mark per connection would be most of pprofd's memory.
        if (conn->buffer.size() == 0) conn->buffer.shrink_to_fit();
        idle_.push_back(std::move(conn));
      }
      co_return std::move(*result);
    }
    const auto& err = result.error();
    if (reused && attempt == 0 && !err.response_started && stale_connection_error(err.ec)) continue;
    co_return classify(err.ec, err.during);
  }
}

namespace {

template <class Stream>
asio::awaitable<boost::system::result<Response, ExchangeError>> exchange_streaming(
    Stream& stream, beast::tcp_stream& tcp, beast::flat_buffer& buffer,
    const bhttp::request<bhttp::string_body>& req, std::uint64_t error_body_limit,
    SteadyTime deadline, const Client::DataHandler& on_data) {
  tcp.expires_at(deadline);
  auto [wec, written] = co_await bhttp::async_write(stream, req, use_tuple);
  if (wec) co_return ExchangeError{wec, false, "write request"};

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);
  auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
  if (hec) co_return ExchangeError{hec, hn > 0, "read response header"};
  Response out;
  out.status = parser.get().result_int();
  out.headers = parser.get().base();
  const bool ok = out.status >= 200 && out.status < 300;
  if (!ok) parser.body_limit(error_body_limit);
  while (!parser.is_done()) {
    auto [ec, n] = co_await bhttp::async_read_some(stream, buffer, parser, use_tuple);
    auto& body = parser.get().body();
    if (ok && !body.empty()) {
      out.wire_bytes += body.size();
      const bool more = on_data(body);
      body.clear();
      if (!more) break;
    }
    // A stream that ends (EOF, server timeout) ends the exchange normally once data has flowed.
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec == asio::error::eof)
      break;
    if (ec) co_return ExchangeError{ec, true, "read response body"};
  }
  if (!ok) out.body = std::move(parser.get().body());
  co_return out;
}

}  // namespace

asio::awaitable<FetchResult> Client::stream(Request request, DataHandler on_data) {
  const SteadyTime deadline = std::chrono::steady_clock::now() + request.timeout;
  const auto req = to_beast(request, endpoint_);

  auto connected = co_await connect(deadline);
  if (!connected) co_return connected.error();
  ConnectionPtr conn = std::move(*connected);
  auto result = co_await std::visit(
      [&](auto& s) {
        return exchange_streaming(s, conn->tcp(), conn->buffer, req, request.body_limit, deadline,
                                  on_data);
      },
      conn->stream);
  if (!result) co_return classify(result.error().ec, result.error().during);
  co_return std::move(*result);
}

Result<std::shared_ptr<asio::ssl::context>> make_client_tls_context(const TlsSettings& s) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  if (s.insecure_skip_verify) {
    ctx->set_verify_mode(asio::ssl::verify_none);
  } else {
    ctx->set_verify_mode(asio::ssl::verify_peer);
    if (!s.ca_data.empty())
      ctx->add_certificate_authority(asio::buffer(s.ca_data), ec);
    else if (s.ca_file.empty())
      ctx->set_default_verify_paths(ec);
    else
      ctx->load_verify_file(s.ca_file, ec);
    if (ec) return make_error("loading CA \"" + s.ca_file + "\": " + ec.message());
  }
  if (!s.cert_data.empty() || !s.key_data.empty()) {
    ctx->use_certificate_chain(asio::buffer(s.cert_data), ec);
    if (ec) return make_error("loading client certificate data: " + ec.message());
    ctx->use_private_key(asio::buffer(s.key_data), asio::ssl::context::pem, ec);
    if (ec) return make_error("loading client key data: " + ec.message());
  } else if (!s.cert_file.empty() || !s.key_file.empty()) {
    ctx->use_certificate_chain_file(s.cert_file, ec);
    if (ec) return make_error("loading certificate \"" + s.cert_file + "\": " + ec.message());
    ctx->use_private_key_file(s.key_file, asio::ssl::context::pem, ec);
    if (ec) return make_error("loading key \"" + s.key_file + "\": " + ec.message());
  }
  return ctx;
}

}  // namespace pprofd::http
