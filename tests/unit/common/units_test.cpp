#include "pprofd/common/units.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using pprofd::Duration;

TEST_CASE("durations parse in Go syntax") {
  CHECK(pprofd::parse_duration("15s").value() == 15s);
  CHECK(pprofd::parse_duration("500ms").value() == 500ms);
  CHECK(pprofd::parse_duration("1m30s").value() == 90s);
  CHECK(pprofd::parse_duration("1.5h").value() == 90min);
  CHECK(pprofd::parse_duration("0").value() == Duration{0});
  CHECK(pprofd::parse_duration("-5s").value() == -5s);
  CHECK(pprofd::parse_duration("250us").value() == 250us);
}

TEST_CASE("bad durations say why") {
  for (const char* bad : {"", "15", "s", "15x", "1m30", "abc", "1..5s"}) {
    INFO(bad);
    auto r = pprofd::parse_duration(bad);
    REQUIRE(r.has_error());
    CHECK_FALSE(r.error().message.empty());
  }
}

TEST_CASE("durations format back") {
  CHECK(pprofd::format_duration(90s) == "1m30s");
  CHECK(pprofd::format_duration(500ms) == "500ms");
  CHECK(pprofd::format_duration(Duration{0}) == "0s");
}

TEST_CASE("sizes parse with binary and decimal units") {
  CHECK(pprofd::parse_size("64MiB").value() == 64ULL << 20);
  CHECK(pprofd::parse_size("1GiB").value() == 1ULL << 30);
  CHECK(pprofd::parse_size("4096").value() == 4096);
  CHECK(pprofd::parse_size("10KB").value() == 10000);
  CHECK(pprofd::parse_size("0.5KiB").value() == 512);
  CHECK(pprofd::parse_size("-1MiB").has_error());
  CHECK(pprofd::parse_size("12 parsecs").has_error());
  CHECK(pprofd::parse_size("MiB").has_error());
  CHECK(pprofd::format_size(64ULL << 20) == "64MiB");
}
