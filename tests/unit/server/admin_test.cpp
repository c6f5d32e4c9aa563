#include "pprofd/server/admin.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pprofd;
namespace bhttp = boost::beast::http;

namespace {

http::ServerRequest request(bhttp::verb method, std::string target) {
  http::ServerRequest req{method, target, 11};
  return req;
}

struct Fixture {
  bool ready = false;
  int reloads = 0;
  std::vector<scrape::TargetStatus> targets;
  http::Handler handler = server::make_admin_handler(
      {[] { return std::string("pprofd_up 1\n"); }, [this] { return ready; },
       [this] { return targets; }, [this] { ++reloads; }, [this] { return dropped; }});
  std::vector<discovery::DroppedCandidate> dropped;
};

}  // namespace

TEST_CASE("health, readiness and metrics") {
  Fixture f;
  CHECK(f.handler(request(bhttp::verb::get, "/healthz")).result_int() == 200);
  CHECK(f.handler(request(bhttp::verb::get, "/readyz")).result_int() == 503);
  f.ready = true;
  CHECK(f.handler(request(bhttp::verb::get, "/readyz")).result_int() == 200);
  auto metrics = f.handler(request(bhttp::verb::get, "/metrics"));
  CHECK(metrics.body() == "pprofd_up 1\n");
  CHECK(std::string(metrics[bhttp::field::content_type]).find("text/plain; version=0.0.4") == 0);
  CHECK(f.handler(request(bhttp::verb::get, "/nope")).result_int() == 404);
}

TEST_CASE("reload only by POST") {
  Fixture f;
  CHECK(f.handler(request(bhttp::verb::get, "/-/reload")).result_int() == 405);
  CHECK(f.reloads == 0);
  CHECK(f.handler(request(bhttp::verb::post, "/-/reload")).result_int() == 200);
  CHECK(f.reloads == 1);
}

TEST_CASE("targets as JSON and escaped HTML") {
  Fixture f;
  scrape::TargetStatus t;
  t.source = "static/0";
  t.scheme = "http";
  t.address = "127.0.0.1:6060";
  t.labels = {{"service_name", "<svc>"}, {"instance", "127.0.0.1:6060"}};
  scrape::LoopStatus loop;
  loop.url = "http://127.0.0.1:6060/debug/pprof/allocs";
  loop.kind = model::ProfileKind::memory;
  loop.health = "down";
  loop.last_error = "HTTP 500";
  t.loops.push_back(loop);
  f.targets.push_back(t);

  auto json = nlohmann::json::parse(f.handler(request(bhttp::verb::get, "/api/v1/targets")).body());
  const auto& active = json["data"]["activeTargets"];
  REQUIRE(active.size() == 1);
  CHECK(active[0]["labels"]["service_name"] == "<svc>");
  CHECK(active[0]["profiles"][0]["profileType"] == "memory");
  CHECK(active[0]["profiles"][0]["lastError"] == "HTTP 500");
  CHECK(active[0]["profiles"][0]["lastScrape"].is_null());

  f.dropped.push_back(
      {"shop/cart-1", "invalid_port", "pyroscope.io/port=\"abc\" is not a port number"});
  json = nlohmann::json::parse(f.handler(request(bhttp::verb::get, "/api/v1/targets")).body());
  REQUIRE(json["data"]["droppedTargets"].size() == 1);
  CHECK(json["data"]["droppedTargets"][0]["reason"] == "invalid_port");
  CHECK(json["data"]["droppedTargets"][0]["pod"] == "shop/cart-1");

  const auto html = f.handler(request(bhttp::verb::get, "/targets")).body();
  CHECK(html.find("invalid_port") != std::string::npos);
  CHECK(html.find("&lt;svc&gt;") != std::string::npos);
  CHECK(html.find("<svc>") == std::string::npos);
}
