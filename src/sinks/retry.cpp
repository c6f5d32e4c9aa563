#include "pprofd/sinks/retry.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

namespace pprofd::sinks {

AttemptResult classify_status(unsigned status) {
  if (status >= 200 && status < 300) return AttemptResult::delivered;
  if (status == 408 || status == 429 || status >= 500) return AttemptResult::retryable;
  return AttemptResult::rejected;
}

std::optional<Duration> parse_retry_after(std::string_view value,
                                          std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  std::uint64_t seconds = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc{} && ptr == value.data() + value.size())
    return std::chrono::seconds(std::min<std::uint64_t>(seconds, 86400));
  // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const std::string text(value);
  if (strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (at <= now) return Duration{0};
  return std::chrono::duration_cast<Duration>(at - now);
}

Decision RetryState::next(AttemptResult result, std::optional<Duration> retry_after,
                          double random01) {
  if (result == AttemptResult::delivered) return {Decision::done, Duration{0}, {}};
  if (result == AttemptResult::rejected) return {Decision::drop, Duration{0}, "rejected"};
  if (retries_ >= policy_.max_retries) return {Decision::drop, Duration{0}, "retries_exhausted"};
  ++retries_;
  const auto exponent = std::min<std::uint64_t>(retries_ - 1, 40);
  const double low = std::min(
      static_cast<double>(policy_.min_backoff.count()) * static_cast<double>(1ULL << exponent),
      static_cast<double>(policy_.max_backoff.count()));
  const double high = std::min(low * 2, static_cast<double>(policy_.max_backoff.count()));
  Duration delay{static_cast<Duration::rep>(low + (high - low) * std::clamp(random01, 0.0, 1.0))};
  if (retry_after) delay = std::max(delay, std::min(*retry_after, policy_.max_retry_after));
  return {Decision::retry, delay, {}};
}

}  // namespace pprofd::sinks
