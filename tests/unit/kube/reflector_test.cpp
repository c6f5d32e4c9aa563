#include "pprofd/kube/reflector.hpp"

#include <catch2/catch.hpp>

using namespace pprofd::kube;
using namespace std::chrono_literals;
using Kind = ReflectorAction::Kind;

namespace {

Pod pod(const std::string& name, const std::string& rv, const std::string& ip = "10.0.0.1") {
  Pod p;
  p.namespace_ = "default";
  p.name = name;
  p.resource_version = rv;
  p.pod_ip = ip;
  p.phase = "Running";
  return p;
}

WatchEvent event(WatchEvent::Type type, Pod p) {
  WatchEvent e;
  e.type = type;
  e.resource_version = p.resource_version;
  e.pod = std::move(p);
  return e;
}

Reflector make() {
  return Reflector([] { return 0.0; });
}

}  // namespace

TEST_CASE("paginated list, then watch from the list's resourceVersion") {
  auto r = make();
  auto a = r.start();
  CHECK(a.kind == Kind::list);
  CHECK(a.continue_token.empty());
  CHECK(a.limit == 500);
  a = r.on_list_page({{pod("a", "5"), pod("b", "6")}, "", "token-1"});
  CHECK(a.kind == Kind::list);
  CHECK(a.continue_token == "token-1");
  CHECK_FALSE(r.synced());
  CHECK(r.store().size() == 0);  // nothing applied until the snapshot is complete
  a = r.on_list_page({{pod("c", "7")}, "10", ""});
  CHECK(r.synced());
  CHECK(r.store().size() == 3);
  CHECK(a.kind == Kind::watch);
  CHECK(a.resource_version == "10");
  CHECK(a.timeout_seconds >= 300);
  CHECK(a.timeout_seconds < 600);
  CHECK(r.store().take_changes() == std::set<std::string>{"default/a", "default/b", "default/c"});
  CHECK(r.counters().lists == 2);
}

TEST_CASE("watch events update the store; a normal end re-watches from the last version") {
  auto r = make();
  r.start();
  r.on_list_page({{pod("a", "5")}, "10", ""});
  r.store().take_changes();
  r.on_watch_event(event(WatchEvent::Type::added, pod("b", "11")));
  r.on_watch_event(event(WatchEvent::Type::modified, pod("a", "12", "10.0.0.9")));
  r.on_watch_event(event(WatchEvent::Type::deleted, pod("b", "13")));
  WatchEvent bookmark;
  bookmark.type = WatchEvent::Type::bookmark;
  bookmark.resource_version = "20";
  r.on_watch_event(bookmark);
  CHECK(r.store().size() == 1);
  CHECK(r.store().find("default/a")->pod_ip == "10.0.0.9");
  CHECK(r.store().take_changes() == std::set<std::string>{"default/a", "default/b"});
  auto a = r.on_watch_ended(std::nullopt, 300s, 4);
  CHECK(a.kind == Kind::watch);
  CHECK(a.resource_version == "20");
  CHECK(r.counters().watch_restarts == 1);
  CHECK(r.counters().lists == 1);  // no relist
}

TEST_CASE("410 as a watch ERROR event relists; as HTTP 410 on a continue it restarts the list") {
  auto r = make();
  r.start();
  r.on_list_page({{pod("a", "5")}, "10", ""});
  WatchEvent expired;
  expired.type = WatchEvent::Type::error;
  expired.error_code = 410;
  expired.error_reason = "Expired";
  r.on_watch_event(expired);
  auto a = r.on_watch_ended(std::nullopt, 2s, 1);
  CHECK(a.kind == Kind::list);
  CHECK(a.resource_version.empty());
  CHECK(r.counters().relists_expired == 1);
  a = r.on_list_page({{pod("a", "5")}, "30", "next"});
  a = r.on_list_failed(RequestFailure::gone);
  CHECK(a.kind == Kind::list);
  CHECK(a.continue_token.empty());
  a = r.on_list_page({{pod("z", "31")}, "31", ""});
  CHECK(a.kind == Kind::watch);
  // The relisted snapshot replaced the store: a vanished, z appeared.
  CHECK(r.store().find("default/a") == nullptr);
  CHECK(r.store().find("default/z") != nullptr);
}

TEST_CASE("other failures back off with growing jittered delays and keep the store") {
  Reflector r([] { return 0.5; });
  r.start();
  r.on_list_page({{pod("a", "5")}, "10", ""});
  std::vector<pprofd::Duration> delays;
  for (int i = 0; i < 8; ++i) {
    auto a = r.on_watch_ended(RequestFailure::other, 10ms, 0);
    REQUIRE(a.kind == Kind::wait);
    delays.push_back(a.delay);
    CHECK(r.store().size() == 1);
    a = r.on_wait_done();
    CHECK(a.kind == Kind::watch);
    CHECK(a.resource_version == "10");
  }
  CHECK(delays[0] == 1200ms);  // 0.8 s + half of it
  CHECK(delays[1] == 2400ms);
  CHECK(delays[5] == 30s);  // capped
  CHECK(delays[7] == 30s);
  // Success resets the backoff.
  r.on_watch_ended(std::nullopt, 300s, 3);
  CHECK(r.on_watch_ended(RequestFailure::other, 10ms, 0).delay == 1200ms);
}

TEST_CASE("an unreachable server is probed at most every 3 s; an erroring one backs off to 30 s") {
  Reflector r([] { return 0.99; });
  r.start();
  r.on_list_page({{}, "10", ""});
  pprofd::Duration longest{0};
  for (int i = 0; i < 10; ++i) {
    auto a = r.on_watch_ended(RequestFailure::unreachable, 10ms, 0);
    REQUIRE(a.kind == Kind::wait);
    longest = std::max(longest, a.delay);
    r.on_wait_done();
  }
  CHECK(longest == 3s);
  CHECK(r.on_watch_ended(RequestFailure::other, 10ms, 0).delay == 30s);
}

TEST_CASE("an instant empty watch end counts as an error; a failed first list retries the list") {
  auto r = make();
  auto a = r.start();
  a = r.on_list_failed(RequestFailure::other);
  CHECK(a.kind == Kind::wait);
  CHECK(r.on_wait_done().kind == Kind::list);
  r.on_list_page({{}, "3", ""});
  a = r.on_watch_ended(std::nullopt, 50ms, 0);
  CHECK(a.kind == Kind::wait);
}

TEST_CASE("the store reports only real changes") {
  PodStore s;
  s.replace({pod("a", "1"), pod("b", "1")});
  s.take_changes();
  s.upsert(pod("a", "1"));
  CHECK_FALSE(s.has_changes());
  s.replace({pod("a", "1"), pod("c", "2")});
  CHECK(s.take_changes() == std::set<std::string>{"default/b", "default/c"});
  s.erase("default/nope");
  CHECK_FALSE(s.has_changes());
}
