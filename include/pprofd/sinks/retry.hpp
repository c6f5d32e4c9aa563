#pragma once
// Delivery decisions of the remote sinks, free of I/O and timers (design §7): which answers are
// retried, how long to wait, when to give up. The driver (remote_sink) performs what it says.

#include "pprofd/common/units.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pprofd::sinks {

enum class AttemptResult {
  delivered,
  retryable,  // connection error, timeout, 408, 429, 5xx
  rejected,   // any other 4xx (and 3xx): the backend will never take it
};

// Classifies an HTTP status; transport failures are `retryable` by the caller.
AttemptResult classify_status(unsigned status);

// Retry-After as delta-seconds or an HTTP-date; nullopt when absent or unparsable.
std::optional<Duration> parse_retry_after(std::string_view value,
                                          std::chrono::system_clock::time_point now);

struct RetryPolicy {
  Duration min_backoff = std::chrono::milliseconds(500);
  Duration max_backoff = std::chrono::seconds(30);
  std::uint64_t max_retries = 10;  // retries after the first attempt
  // A server's Retry-After is honoured up to this long, even past max_backoff.
  Duration max_retry_after = std::chrono::minutes(5);
};

struct Decision {
  enum Kind { done, retry, drop } kind = done;
  Duration delay{0};             // for retry
  std::string_view drop_reason;  // for drop: "rejected" or "retries_exhausted"
};

// The state of one batch's delivery. next() is told how an attempt went and answers what to do.
class RetryState {
 public:
  explicit RetryState(const RetryPolicy& policy) : policy_(policy) {}

  // random01 in [0, 1) picks the wait inside the k-th backoff window
  // [min * 2^(k-1), min * 2^k), both ends capped at max_backoff.
  Decision next(AttemptResult result, std::optional<Duration> retry_after, double random01);
  std::uint64_t retries() const { return retries_; }

 private:
  RetryPolicy policy_;
  std::uint64_t retries_ = 0;
};

}  // namespace pprofd::sinks
