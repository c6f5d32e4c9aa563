#include "pprofd/discovery/static.hpp"

#include <catch2/catch.hpp>

using pprofd::config::default_config;
using pprofd::config::StaticConfig;
using pprofd::discovery::default_profiles;
using pprofd::discovery::static_target_groups;
using pprofd::model::ProfileKind;

TEST_CASE("static targets get instance, a service_name fallback and the enabled profiles") {
  auto config = default_config();
  config.profiles[static_cast<std::size_t>(ProfileKind::goroutine)].enabled = false;
  config.static_configs = {
      StaticConfig{{"127.0.0.1:6060", "[::1]:6061"}, {{"service_name", "demo"}}, "https"},
      StaticConfig{{"10.0.0.1:6060"}, {{"instance", "custom"}}, "http"},
  };
  auto groups = static_target_groups(config);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].source == "static/0");
  REQUIRE(groups[0].targets.size() == 2);
  const auto& t = groups[0].targets[1];
  CHECK(t.url("/x") == "https://[::1]:6061/x");
  CHECK(t.labels.get("instance") == "[::1]:6061");
  CHECK(t.labels.get("service_name") == "demo");
  CHECK_FALSE(t.labels.contains("__name__"));
  CHECK(t.profiles == default_profiles(config));
  CHECK(t.profiles.size() == 4);
  REQUIRE(groups[1].targets.size() == 1);
  CHECK(groups[1].targets[0].labels.get("instance") == "custom");
  CHECK(groups[1].targets[0].labels.get("service_name") == "unknown_service");
}

TEST_CASE("entries removed by a reload come back as empty groups") {
  auto config = default_config();
  config.static_configs = {StaticConfig{{"127.0.0.1:6060"}, {}, "http"}};
  auto groups = static_target_groups(config, 3);
  REQUIRE(groups.size() == 3);
  CHECK(groups[1].source == "static/1");
  CHECK(groups[1].targets.empty());
  CHECK(groups[2].targets.empty());
}
