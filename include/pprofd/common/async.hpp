#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/this_coro.hpp>

namespace pprofd {

// True once the calling coroutine has been cancelled. Long-lived coroutines run with
// throw_if_cancelled(false), see cancellation as error codes, and ask this before going on.
inline boost::asio::awaitable<bool> cancelled() {
  co_return (co_await boost::asio::this_coro::cancellation_state).cancelled() !=
      boost::asio::cancellation_type::none;
}

}  // namespace pprofd
