#pragma once
// HTTP/1.1 client for one endpoint (scheme, host, port) with keep-alive connection reuse.
// Every operation runs against one deadline (Request::timeout); failures are values, never
// exceptions. Not thread-safe: use a Client from the executor it was created with.
// Cancellation: cancelling the awaiting coroutine (terminal) aborts the exchange and closes the
// connection.

#include "pprofd/common/result.hpp"
#include "pprofd/common/units.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pprofd::http {

struct Endpoint {
  std::string scheme = "http";  // http or https
  std::string host;             // IP literal (IPv6 without brackets) or DNS name
  std::uint16_t port = 0;

  bool tls() const { return scheme == "https"; }
  // host:port as used in the Host header and in `instance` labels ([v6]:port for IPv6).
  std::string authority() const;
};

// "http://host:port/..." or scheme + "host:port".
Result<Endpoint> parse_endpoint(std::string_view scheme, std::string_view host_port);

enum class FailureKind {
  connect,    // DNS, TCP or TLS setup failed, or the peer closed/reset the connection
  timeout,    // the deadline passed
  too_large,  // the body exceeded Request::body_limit
  protocol,   // the peer answered, but not with valid HTTP/1.1
  cancelled,  // the caller was cancelled (shutdown)
};
std::string_view to_string(FailureKind kind);

struct Failure {
  FailureKind kind;
  std::string message;
};

struct Request {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target = "/";  // origin-form: path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Duration timeout = std::chrono::seconds(10);
  std::uint64_t body_limit = 64ULL << 20;
};

struct Response {
  unsigned status = 0;
  boost::beast::http::fields headers;
  std::string body;
  std::uint64_t wire_bytes = 0;  // body bytes as received

  std::string_view header(std::string_view name) const;
};

using FetchResult = boost::system::result<Response, Failure>;

struct ClientOptions {
  std::shared_ptr<boost::asio::ssl::context> tls;  // required when the endpoint is https
  std::string server_name;                         // TLS SNI and verified name; default: host
  // One idle connection per target: the concurrent CPU pull needs a second one only briefly, and
  // every idle connection also costs the target (a goroutine and buffers in a Go server).
  std::size_t max_idle_connections = 1;
};

class Client {
 public:
  Client(boost::asio::any_io_executor executor, Endpoint endpoint, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  boost::asio::awaitable<FetchResult> fetch(Request request);

  // Like fetch(), for long responses consumed as they arrive (a Kubernetes watch): on_data gets
  // each piece of the body in order; returning false stops reading. The returned Response holds
  // status and headers, and the body only when the status is not 2xx. Request::timeout bounds
  // the whole exchange; body_limit applies to a non-2xx body only. The connection is not reused.
  using DataHandler = std::function<bool(std::string_view)>;
  boost::asio::awaitable<FetchResult> stream(Request request, DataHandler on_data);

  const Endpoint& endpoint() const { return endpoint_; }
  std::size_t idle_connections() const { return idle_.size(); }
  std::uint64_t connections_opened() const { return connections_opened_; }

 private:
  struct Connection;
  using ConnectionPtr = std::unique_ptr<Connection>;

  boost::asio::awaitable<boost::system::result<ConnectionPtr, Failure>> connect(
      std::chrono::steady_clock::time_point deadline);

  boost::asio::any_io_executor executor_;
  Endpoint endpoint_;
  ClientOptions options_;
  std::vector<ConnectionPtr> idle_;
  std::uint64_t connections_opened_ = 0;
};

// Builds a client TLS context: verification on unless insecure_skip_verify; the system trust
// store when ca_file is empty; a client certificate when cert_file/key_file are set.
struct TlsSettings {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_verify = false;
  // PEM text instead of files (kubeconfig's *-data fields); wins over the file when set.
  std::string ca_data;
  std::string cert_data;
  std::string key_data;
};
Result<std::shared_ptr<boost::asio::ssl::context>> make_client_tls_context(const TlsSettings& s);

// From any config struct with the usual file fields (scrape.tls, sinks[].tls).
template <class TlsConfig>
TlsSettings tls_settings(const TlsConfig& c) {
  TlsSettings s;
  s.ca_file = c.ca_file;
  s.cert_file = c.cert_file;
  s.key_file = c.key_file;
  s.insecure_skip_verify = c.insecure_skip_verify;
  return s;
}

}  // namespace pprofd::http
