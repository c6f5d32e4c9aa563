#include "pprofd/scrape/validate.hpp"
#include "testdata.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace pprofd::scrape;

namespace {

constexpr std::uint64_t limit = 64 << 20;

}  // namespace

TEST_CASE("a real gzipped Go profile is accepted and forwarded as received") {
  const auto body = testdata("allocs_2.pb.gz");
  auto v = validate_response(200, "application/octet-stream", body, limit);
  REQUIRE(v.has_value());
  CHECK(v->gzipped == body);
  CHECK(v->summary.sample_types.size() == 4);
  CHECK(v->summary.sample_types[1] == pprofd::pprof::ValueType{"alloc_space", "bytes"});
}

TEST_CASE("a raw (uncompressed) profile is accepted and gzipped for the sinks") {
  const auto raw = pprofd::pprof::gunzip(testdata("goroutine.pb.gz"), limit).value();
  auto v = validate_response(200, "", raw, limit);
  REQUIRE(v.has_value());
  CHECK(pprofd::pprof::looks_gzipped(v->gzipped));
  CHECK(pprofd::pprof::gunzip(v->gzipped, limit).value() == raw);
}

TEST_CASE("bad answers are classified") {
  auto result_of = [](unsigned status, std::string body, std::uint64_t max = limit) {
    auto v = validate_response(status, "text/html", std::move(body), max);
    REQUIRE(v.has_error());
    return v.error();
  };
  CHECK(result_of(500, "Could not enable CPU profiling: cpu profiling already in use\n").result ==
        ScrapeResult::http_error);
  CHECK(result_of(404, "404 page not found").message == "HTTP 404: 404 page not found");
  CHECK(result_of(200, "").result == ScrapeResult::invalid);
  const auto html = result_of(200, "<!doctype html><html><body>hello</body></html>");
  CHECK(html.result == ScrapeResult::invalid);
  CHECK(html.message.find("text/html") != std::string::npos);
  CHECK(result_of(200, pprofd::pprof::gzip("{\"json\": true}")).result == ScrapeResult::invalid);
  CHECK(result_of(200, std::string("\x1f\x8b\x08\x00garbage", 12)).result == ScrapeResult::invalid);
  // Inflates past the limit: a decompression bomb costs one failed scrape.
  CHECK(result_of(200, pprofd::pprof::gzip(std::string(1 << 20, '\0')), 1 << 16).result ==
        ScrapeResult::too_large);
}

TEST_CASE("validation splits into unpacking and inspecting, each a stage of its own") {
  const auto body = testdata("allocs_2.pb.gz");
  auto unpacked = unpack_response(200, body, limit);
  REQUIRE(unpacked.has_value());
  CHECK(unpacked->gzipped == body);
  const auto raw = unpacked->raw;
  auto v = inspect_body(std::move(*unpacked), "");
  REQUIRE(v.has_value());
  CHECK(v->raw == raw);
  CHECK(v->gzipped == body);
  CHECK(v->summary.sample_types.size() == 4);

  // A raw body is not gzipped by either step: only what is forwarded as is needs it.
  auto raw_unpacked = unpack_response(200, raw, limit);
  REQUIRE(raw_unpacked.has_value());
  auto plain = inspect_body(std::move(*raw_unpacked), "");
  REQUIRE(plain.has_value());
  CHECK(plain->gzipped.empty());

  CHECK(unpack_response(503, "busy", limit).error().result == ScrapeResult::http_error);
  // Unpacking accepts any bytes; inspecting rejects what is not pprof.
  auto html = unpack_response(200, "<html></html>", limit);
  REQUIRE(html.has_value());
  CHECK(inspect_body(std::move(*html), "text/html").error().result == ScrapeResult::invalid);
}
