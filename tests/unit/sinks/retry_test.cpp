#include "pprofd/sinks/retry.hpp"

#include <catch2/catch.hpp>

using namespace pprofd::sinks;
using namespace std::chrono;

TEST_CASE("status classes") {
  CHECK(classify_status(200) == AttemptResult::delivered);
  CHECK(classify_status(204) == AttemptResult::delivered);
  for (unsigned s : {408u, 429u, 500u, 502u, 503u, 504u})
    CHECK(classify_status(s) == AttemptResult::retryable);
  for (unsigned s : {301u, 400u, 401u, 403u, 404u, 413u, 415u, 422u})
    CHECK(classify_status(s) == AttemptResult::rejected);
}

TEST_CASE("backoff doubles within jittered windows and is capped") {
  RetryPolicy p{milliseconds(500), seconds(30), 10, minutes(5)};
  RetryState low(p), high(p);
  const std::array<double, 10> expected_low{0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30};
  for (double e : expected_low) {
    auto d = low.next(AttemptResult::retryable, std::nullopt, 0.0);
    REQUIRE(d.kind == Decision::retry);
    CHECK(duration<double>(d.delay).count() == Approx(e));
    auto d2 = high.next(AttemptResult::retryable, std::nullopt, 0.999999);
    CHECK(duration<double>(d2.delay).count() == Approx(std::min(2 * e, 30.0)).epsilon(0.001));
  }
  auto exhausted = low.next(AttemptResult::retryable, std::nullopt, 0.5);
  CHECK(exhausted.kind == Decision::drop);
  CHECK(exhausted.drop_reason == "retries_exhausted");
  CHECK(low.retries() == 10);
}

TEST_CASE("a rejection drops at once, success ends, Retry-After lengthens the wait") {
  RetryPolicy p;
  RetryState s(p);
  auto rejected = s.next(AttemptResult::rejected, std::nullopt, 0.5);
  CHECK(rejected.kind == Decision::drop);
  CHECK(rejected.drop_reason == "rejected");
  CHECK(RetryState(p).next(AttemptResult::delivered, std::nullopt, 0.5).kind == Decision::done);
  auto honoured = RetryState(p).next(AttemptResult::retryable, seconds(7), 0.5);
  CHECK(honoured.delay == seconds(7));
  auto capped = RetryState(p).next(AttemptResult::retryable, hours(2), 0.5);
  CHECK(capped.delay == minutes(5));
}

TEST_CASE("Retry-After in seconds and as an HTTP date") {
  const auto now = system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(parse_retry_after("120", now) == pprofd::Duration(seconds(120)));
  CHECK(parse_retry_after(" 3 ", now) == pprofd::Duration(seconds(3)));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now) == pprofd::Duration(seconds(10)));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now) == pprofd::Duration(0));
  CHECK_FALSE(parse_retry_after("soon", now).has_value());
  CHECK_FALSE(parse_retry_after("", now).has_value());
}
