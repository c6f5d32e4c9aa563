#include "pprofd/config/config.hpp"

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

using namespace std::chrono_literals;
using namespace pprofd::config;
using namespace pprofd::config::testing;

namespace {

std::string testdata(const std::string& name) {
  const char* dir = std::getenv("PPROFD_TESTDATA");
  return std::string(dir != nullptr ? dir : PPROFD_TESTDATA_DIR) + "/config/" + name;
}

}  // namespace

TEST_CASE("testdata good.yaml is valid") {
  const LoadResult r = load_file(testdata("good.yaml"), fake_env());
  INFO(dump(r.errors));
  REQUIRE(r.errors.empty());
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.scrape.interval == 15s);
  CHECK(c.static_configs.size() == 1);
  REQUIRE(c.sinks.size() == 2);
  CHECK(c.sinks[1].type == SinkType::file);
  CHECK(c.sinks[1].dir == "/tmp/pprofd-test-profiles");
}

// The check-config integration test counts these lines; keep the file and this test in step.
TEST_CASE("testdata bad.yaml has exactly four problems") {
  const LoadResult r = load_file(testdata("bad.yaml"), fake_env());
  INFO(dump(r.errors));
  CHECK_FALSE(r.config);
  REQUIRE(r.errors.size() == 4);
  CHECK(has_error(r, "scrape.intervall", "(did you mean \"interval\"?)"));
  CHECK(has_error(r, "scrape.timeout", "must be positive"));
  CHECK(has_error(r, "scrape.cpu_duration", "must be less than scrape.interval (15s)"));
  CHECK(has_error(r, "discovery.static[0].targets[0]",
                  "invalid address \"127.0.0.1:notaport\": port must be a number 1-65535"));
  // Document order, so the output reads top to bottom like the file.
  CHECK(r.errors[2].field == "scrape.cpu_duration");
}
