#include "pprofd/config/config.hpp"

#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

using pprofd::config::expand_env;
using pprofd::config::testing::fake_env;

namespace {

std::string expand_ok(std::string_view text) {
  auto env = fake_env({{"HOST", "pyro"}, {"PORT", "4040"}, {"EMPTY", ""}, {"DOLLAR", "$X"}});
  auto r = expand_env(text, env);
  INFO(text);
  REQUIRE(r.has_value());
  return *r;
}

std::string expand_error(std::string_view text) {
  auto r = expand_env(text, fake_env({{"SET", "1"}}));
  INFO(text);
  REQUIRE(r.has_error());
  return r.error().message;
}

}  // namespace

TEST_CASE("expand_env substitutes set variables and defaults") {
  CHECK(expand_ok("plain") == "plain");
  CHECK(expand_ok("") == "");
  CHECK(expand_ok("http://${HOST}:${PORT}/x") == "http://pyro:4040/x");
  CHECK(expand_ok("${MISSING:-fallback}") == "fallback");
  CHECK(expand_ok("${MISSING:-}") == "");
  CHECK(expand_ok("${HOST:-fallback}") == "pyro");
  // As in the shell, `:-` also replaces a set but empty variable.
  CHECK(expand_ok("${EMPTY:-fallback}") == "fallback");
  CHECK(expand_ok("[${EMPTY}]") == "[]");
  CHECK(expand_ok("${MISSING:-${HOST}}") == "pyro");
  CHECK(expand_ok("${MISSING:-a:-b}") == "a:-b");
}

TEST_CASE("expand_env treats $$ and a bare $ literally") {
  CHECK(expand_ok("$$") == "$");
  CHECK(expand_ok("cost: $$5") == "cost: $5");
  CHECK(expand_ok("$${HOST}") == "${HOST}");
  CHECK(expand_ok("$HOST") == "$HOST");
  CHECK(expand_ok("a$") == "a$");
  // Values are not expanded again.
  CHECK(expand_ok("${DOLLAR}") == "$X");
}

TEST_CASE("expand_env rejects unset and malformed references") {
  CHECK(expand_error("${NOPE}") ==
        "environment variable \"NOPE\" is not set (use ${NOPE:-default} to give a default)");
  CHECK(expand_error("${A}/${SET}/${B}") == "environment variables \"A\", \"B\" are not set");
  CHECK_THAT(expand_error("${NOPE"), Catch::Contains("unterminated"));
  CHECK_THAT(expand_error("${}"), Catch::Contains("invalid environment variable reference"));
  CHECK_THAT(expand_error("${1X}"), Catch::Contains("invalid environment variable reference"));
  CHECK_THAT(expand_error("${A-B}"), Catch::Contains("invalid environment variable reference"));
}

TEST_CASE("process_env reads the real environment") {
  ::setenv("PPROFD_CONFIG_TEST_VAR", "value", 1);
  ::unsetenv("PPROFD_CONFIG_TEST_UNSET");
  const auto env = pprofd::config::process_env();
  CHECK(env("PPROFD_CONFIG_TEST_VAR") == std::optional<std::string>("value"));
  CHECK_FALSE(env("PPROFD_CONFIG_TEST_UNSET").has_value());
}
