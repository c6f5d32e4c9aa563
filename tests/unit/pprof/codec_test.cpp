#include "pprofd/pprof/pprof.hpp"

#include "test_util.hpp"

#include <google/protobuf/util/message_differencer.h>

#include <catch2/catch.hpp>

using namespace pprofd::pprof;
using namespace pprofd::pprof::test;
using google::protobuf::util::MessageDifferencer;

TEST_CASE("decode and encode round trip real profiles", "[codec]") {
  for (const char* file : {"cpu.pb.gz", "allocs_2.pb.gz", "goroutine.pb.gz", "mutex_2.pb.gz"}) {
    INFO(file);
    const std::string raw = go_profile(file);
    const pb::Profile first = must_decode(raw);
    CHECK(first.sample_size() > 0);
    CHECK(first.string_table(0).empty());
    const std::string bytes = encode(first);
    const pb::Profile second = must_decode(bytes);
    std::string diff;
    MessageDifferencer differ;
    differ.ReportDifferencesToString(&diff);
    CHECK(differ.Compare(first, second));
    CHECK(diff.empty());
    CHECK(encode(second) == bytes);
    // The re-encoded bytes are still a profile Go's rules accept.
    CHECK(inspect(bytes).has_value());
  }
}

TEST_CASE("decode keeps values it was given", "[codec]") {
  Builder b({{"alloc_space", "bytes"}});
  const auto loc = b.location(0xabc, "main.f");
  b.sample({loc}, {-42});
  b.profile().set_time_nanos(123);
  const pb::Profile p = must_decode(b.bytes());
  REQUIRE(p.sample_size() == 1);
  CHECK(p.sample(0).value(0) == -42);
  CHECK(p.time_nanos() == 123);
  CHECK(name_of(p, p.function(0).name()) == "main.f");
}

TEST_CASE("decode fails cleanly on garbage", "[codec]") {
  CHECK_FALSE(decode("<html><body>hello</body></html>").has_value());
  CHECK_FALSE(decode("Could not enable CPU profiling: cpu profiling already in use\n").has_value());
  const std::string raw = go_profile("allocs_2.pb.gz");
  // Dropping the last byte always cuts the final field short.
  CHECK_FALSE(decode(raw.substr(0, raw.size() - 1)).has_value());
  auto err = decode("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
  REQUIRE_FALSE(err.has_value());
  CHECK(err.error().message.find("pprof") != std::string::npos);
}
