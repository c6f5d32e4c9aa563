#include "pprofd/scrape/schedule.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono;
using namespace pprofd::scrape;

namespace {
WallTime at(std::int64_t ms) { return WallTime{} + milliseconds(ms); }
}  // namespace

TEST_CASE("offset is stable, below the interval, and depends on hash and seed") {
  const auto interval = seconds(15);
  const auto a = slot_offset(12345, 0, interval);
  CHECK(a == slot_offset(12345, 0, interval));
  CHECK(a < interval);
  CHECK(a >= pprofd::Duration{0});
  CHECK(slot_offset(12345, 99, interval) != a);
}

TEST_CASE("offsets of many targets spread over the interval") {
  const auto interval = seconds(10);
  std::array<int, 10> buckets{};
  for (std::uint64_t i = 0; i < 10000; ++i) {
    const auto h = (i + 1) * 0x9E3779B97F4A7C15ULL;
    buckets[duration_cast<seconds>(slot_offset(h, 7, interval)).count()]++;
  }
  for (int n : buckets) CHECK(n > 800);
}

TEST_CASE("first slot is pinned to wall clock") {
  const auto interval = seconds(15);
  const auto offset = milliseconds(4000);
  CHECK(first_slot(at(0), interval, offset) == at(4000));
  CHECK(first_slot(at(4000), interval, offset) == at(4000));
  CHECK(first_slot(at(4001), interval, offset) == at(19000));
  CHECK(first_slot(at(100'000), interval, offset) == at(109'000));
}

TEST_CASE("next slot follows without drift and skips missed slots") {
  const auto interval = seconds(10);
  auto n = next_slot(at(5000), at(5300), interval);
  CHECK(n.at == at(15000));
  CHECK(n.missed == 0);
  n = next_slot(at(5000), at(15000), interval);  // exactly on time
  CHECK(n.at == at(15000));
  CHECK(n.missed == 0);
  n = next_slot(at(5000), at(15001), interval);
  CHECK(n.at == at(25000));
  CHECK(n.missed == 1);
  n = next_slot(at(5000), at(47000), interval);
  CHECK(n.at == at(55000));
  CHECK(n.missed == 4);
}
