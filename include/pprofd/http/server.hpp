#pragma once
// A small HTTP/1.1 server for pprofd's own endpoints and for test fakes. Handlers are plain
// functions from request to response; I/O, timeouts and keep-alive are the server's.
// Not thread-safe: call its members from its executor.

#include "pprofd/common/result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace pprofd::http {

using ServerRequest = boost::beast::http::request<boost::beast::http::string_body>;
using ServerResponse = boost::beast::http::response<boost::beast::http::string_body>;
using Handler = std::function<ServerResponse(const ServerRequest&)>;

ServerResponse make_response(const ServerRequest& request, unsigned status,
                             std::string_view content_type, std::string body);

class Server {
 public:
  Server(boost::asio::any_io_executor executor, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0 picks a free one) and starts accepting. Returns the bound endpoint.
  Result<boost::asio::ip::tcp::endpoint> listen(std::string_view host_port);
  // Stops accepting and closes open connections; returns once everything is closed.
  boost::asio::awaitable<void> stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace pprofd::http
