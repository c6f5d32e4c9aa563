#include "pprofd/pprof/pprof.hpp"

#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

using namespace pprofd::pprof;
using namespace pprofd::pprof::test;

namespace {

using Types = std::vector<ValueType>;

const Types alloc_types{{"alloc_objects", "count"},
                        {"alloc_space", "bytes"},
                        {"inuse_objects", "count"},
                        {"inuse_space", "bytes"}};
const Types lock_types{{"contentions", "count"}, {"delay", "nanoseconds"}};

std::string rejection(std::string_view raw) {
  auto r = inspect(raw);
  if (r.has_value()) return "accepted";
  return r.error().message;
}

}  // namespace

TEST_CASE("inspect accepts every recorded Go profile with the right sample types", "[inspect]") {
  struct Case {
    const char* file;
    Types types;
    ValueType period_type;
  };
  const std::vector<Case> cases{
      {"cpu.pb.gz", {{"samples", "count"}, {"cpu", "nanoseconds"}}, {"cpu", "nanoseconds"}},
      {"allocs_1.pb.gz", alloc_types, {"space", "bytes"}},
      {"allocs_2.pb.gz", alloc_types, {"space", "bytes"}},
      {"heap.pb.gz", alloc_types, {"space", "bytes"}},
      {"goroutine.pb.gz", {{"goroutine", "count"}}, {"goroutine", "count"}},
      {"mutex_1.pb.gz", lock_types, {"contentions", "count"}},
      {"mutex_2.pb.gz", lock_types, {"contentions", "count"}},
      {"block_1.pb.gz", lock_types, {"contentions", "count"}},
      {"block_2.pb.gz", lock_types, {"contentions", "count"}},
  };
  for (const auto& c : cases) {
    INFO(c.file);
    const std::string raw = go_profile(c.file);
    auto s = inspect(raw);
    REQUIRE(s.has_value());
    CHECK(s->sample_types == c.types);
    CHECK(s->period_type == c.period_type);
    CHECK(s->sample_count > 0);
    CHECK(s->location_count > 0);
    CHECK(s->function_count > 0);
    CHECK(s->mapping_count > 0);
    CHECK(s->time_nanos > 1'600'000'000'000'000'000);

    // The counts must agree with the full decode.
    const pb::Profile p = must_decode(raw);
    CHECK(s->sample_count == static_cast<std::size_t>(p.sample_size()));
    CHECK(s->location_count == static_cast<std::size_t>(p.location_size()));
    CHECK(s->function_count == static_cast<std::size_t>(p.function_size()));
    CHECK(s->mapping_count == static_cast<std::size_t>(p.mapping_size()));
    CHECK(s->string_count == static_cast<std::size_t>(p.string_table_size()));
    CHECK(s->period == p.period());
    CHECK(s->duration_nanos == p.duration_nanos());

    // libprotobuf re-encodes packed and in field order, unlike Go: both layouts must pass.
    auto again = inspect(p.SerializeAsString());
    REQUIRE(again.has_value());
    CHECK(again->sample_types == c.types);
  }
  auto cpu = inspect(go_profile("cpu.pb.gz"));
  REQUIRE(cpu.has_value());
  CHECK(cpu->period == 10'000'000);  // 100 Hz
  CHECK(cpu->duration_nanos > 0);
}

TEST_CASE("inspect rejects things that are not profiles", "[inspect]") {
  CHECK(rejection("") == "pprof: empty profile");
  for (const char* body : {
           "<!DOCTYPE html>\n<html><head><title>/debug/pprof/</title></head><body></body></html>",
           "<html>404 page not found</html>",
           "Could not enable CPU profiling: cpu profiling already in use\n",
           "404 page not found\n",
           "Unknown profile\n",
           R"({"error":"not found","code":404})",
           "[1,2,3]",
       }) {
    INFO(body);
    CHECK(rejection(body) != "accepted");
  }
  for (unsigned seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    std::string bytes(1 + rng() % 4096, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng() & 0xff);
    INFO("seed " << seed);
    CHECK(rejection(bytes) != "accepted");
  }
}

TEST_CASE("inspect rejects truncated profiles", "[inspect]") {
  const std::string raw = go_profile("allocs_2.pb.gz");
  for (std::size_t keep : {raw.size() - 1, raw.size() - 7, raw.size() * 3 / 4, raw.size() / 2,
                           raw.size() / 10, std::size_t{3}}) {
    INFO("kept " << keep << " of " << raw.size());
    CHECK(rejection(raw.substr(0, keep)) != "accepted");
  }
}

TEST_CASE("inspect checks string indices, value counts and the string table", "[inspect]") {
  auto good = [] {
    Builder b({{"contentions", "count"}, {"delay", "nanoseconds"}});
    const auto loc = b.location(0x1000, "main.lock");
    b.sample({loc}, {1, 100});
    return b;
  };
  REQUIRE(rejection(good().bytes()) == "accepted");

  SECTION("function name index out of range") {
    auto b = good();
    b.profile().mutable_function(0)->set_name(999);
    CHECK(rejection(b.bytes()).find("string index 999") != std::string::npos);
  }
  SECTION("negative label index") {
    auto b = good();
    b.profile().mutable_sample(0)->add_label()->set_key(-1);
    CHECK(rejection(b.bytes()).find("negative string index") != std::string::npos);
  }
  SECTION("sample type unit out of range") {
    auto b = good();
    b.profile().mutable_sample_type(1)->set_unit(b.profile().string_table_size());
    CHECK(rejection(b.bytes()).find("out of range") != std::string::npos);
  }
  SECTION("comment index out of range") {
    auto b = good();
    b.profile().add_comment(50);
    CHECK(rejection(b.bytes()).find("out of range") != std::string::npos);
  }
  SECTION("too few values") {
    auto b = good();
    b.profile().mutable_sample(0)->mutable_value()->RemoveLast();
    CHECK(rejection(b.bytes()).find("1 values but there are 2 sample types") != std::string::npos);
  }
  SECTION("too many values in one of several samples") {
    auto b = good();
    b.sample({1}, {1, 2, 3});
    CHECK(rejection(b.bytes()).find("3 values") != std::string::npos);
  }
  SECTION("no sample types") {
    auto b = good();
    b.profile().clear_sample_type();
    b.profile().clear_sample();
    CHECK(rejection(b.bytes()) == "pprof: no sample_type");
  }
  SECTION("string_table[0] not empty") {
    auto b = good();
    b.profile().set_string_table(0, "x");
    CHECK(rejection(b.bytes()) == "pprof: string_table[0] is not empty");
  }
  SECTION("invalid UTF-8 string") {
    auto b = good();
    b.profile().add_string_table("ok");
    std::string bytes = b.bytes();
    const auto pos = bytes.rfind("ok");
    bytes[pos] = static_cast<char>(0xff);
    CHECK(rejection(bytes).find("UTF-8") != std::string::npos);
  }
  SECTION("wrong wire type for a known field") {
    // Field 9 (time_nanos) as a fixed64.
    std::string bytes = good().bytes() + std::string("\x49", 1) + std::string(8, '\0');
    CHECK(rejection(bytes).find("wire type") != std::string::npos);
  }
  SECTION("length running past the end") {
    std::string bytes = good().bytes() + std::string("\x12\x7f", 2);
    CHECK(rejection(bytes).find("runs past the end") != std::string::npos);
  }
  SECTION("unknown fields are skipped") {
    std::string bytes = good().bytes() + std::string("\xa2\x06\x02hi", 5);  // field 100, len 2
    CHECK(rejection(bytes) == "accepted");
  }
}

TEST_CASE("inspect accepts unpacked and packed repeated fields in any order", "[inspect]") {
  // Hand-written: string_table last (as Go writes it), values unpacked, location ids packed.
  std::string m;
  auto varint = [&](std::uint64_t v) {
    while (v >= 0x80) {
      m += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    m += static_cast<char>(v);
  };
  // sample: location_id packed [1,1,1], value unpacked 5, value unpacked 7
  const std::string sample("\x0a\x03\x01\x01\x01\x10\x05\x10\x07", 9);
  m += '\x12';
  varint(sample.size());
  m += sample;
  m += std::string("\x0a\x04\x08\x01\x10\x02", 6);  // sample_type {type 1, unit 2}
  m += std::string("\x0a\x04\x08\x03\x10\x04", 6);  // sample_type {type 3, unit 4}
  m += std::string("\x22\x02\x08\x01", 4);          // location id 1
  for (const char* s : {"", "contentions", "count", "delay", "nanoseconds"}) {
    m += '\x32';
    varint(std::string_view(s).size());
    m += s;
  }
  auto s = inspect(m);
  REQUIRE(s.has_value());
  CHECK(s->sample_types == Types{{"contentions", "count"}, {"delay", "nanoseconds"}});
  CHECK(s->sample_count == 1);
  auto p = decode(m);
  REQUIRE(p.has_value());
  CHECK(p->sample(0).value_size() == 2);
  CHECK(p->sample(0).location_id_size() == 3);
}
