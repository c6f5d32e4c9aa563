#include "pprofd/discovery/pods.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using pprofd::config::Config;
using pprofd::config::default_config;
using pprofd::discovery::DroppedCandidate;
using pprofd::discovery::is_candidate;
using pprofd::discovery::pod_targets;
using pprofd::discovery::PodTargets;
using pprofd::discovery::sanitize_label_name;
using pprofd::kube::Container;
using pprofd::kube::ContainerPort;
using pprofd::kube::Pod;
using pprofd::model::ProfileKind;
using pprofd::model::Target;

namespace {

using Annotations = std::map<std::string, std::string>;

Container container(std::string name, std::vector<ContainerPort> ports = {}) {
  return Container{std::move(name), std::move(ports)};
}

// A scrapable pod with one container that declares no ports.
Pod make_pod(Annotations annotations, std::vector<Container> containers = {container("app")}) {
  Pod pod;
  pod.uid = "uid-1";
  pod.namespace_ = "shop";
  pod.name = "web-1";
  pod.annotations = std::move(annotations);
  pod.node_name = "node-a";
  pod.containers = std::move(containers);
  pod.phase = "Running";
  pod.pod_ip = "10.0.0.5";
  return pod;
}

// "name:path" per profile, in target order.
std::vector<std::string> profiles_of(const Target& t) {
  std::vector<std::string> out;
  for (const auto& p : t.profiles)
    out.push_back(std::string(pprofd::model::info(p.kind).name) + ":" + p.path);
  return out;
}

std::vector<std::string> kinds_of(const Target& t) {
  std::vector<std::string> out;
  for (const auto& p : t.profiles) out.emplace_back(pprofd::model::info(p.kind).name);
  return out;
}

std::vector<std::string> addresses_of(const PodTargets& out) {
  std::vector<std::string> addresses;
  for (const auto& t : out.targets) addresses.push_back(t.scheme + "://" + t.address);
  return addresses;
}

const std::vector<std::string> all_five{"process_cpu", "memory", "goroutine", "mutex", "block"};

void set_enabled(Config& config, ProfileKind kind, bool enabled) {
  config.profiles[static_cast<std::size_t>(kind)].enabled = enabled;
}

std::string dump(const std::vector<DroppedCandidate>& dropped) {
  std::string out;
  for (const auto& d : dropped) out += d.pod + " " + d.reason + ": " + d.detail + "\n";
  return out;
}

}  // namespace

TEST_CASE("pods no family opts in yield nothing") {
  const Config config = default_config();
  for (const Annotations& a : std::vector<Annotations>{
           {},
           {{"profiles.grafana.com/cpu.scrape", "false"}, {"profiles.grafana.com/cpu.port", "1"}},
           {{"pyroscope.io/scrape", "false"}, {"pyroscope.io/port", "6060"}},
           {{"pyroscope.io/scrape", "True"}},
           {{"pyroscope.io/profile-cpu-enabled", "true"}},  // legacy needs pyroscope.io/scrape
           {{"profefe.com/enable", "yes"}},
           {{"profiles.grafana.com/service_name", "x"}}}) {
    Pod pod = make_pod(a);
    CHECK_FALSE(is_candidate(pod));
    auto out = pod_targets(pod, config);
    CHECK(out.targets.empty());
    CHECK(out.dropped.empty());
    // Even a broken, non-running pod stays invisible when it did not ask to be scraped.
    pod.phase = "Pending";
    CHECK(pod_targets(pod, config).dropped.empty());
  }
}

TEST_CASE("grafana family alone") {
  auto out = pod_targets(make_pod({{"profiles.grafana.com/cpu.scrape", "true"},
                                   {"profiles.grafana.com/cpu.port", "6060"}}),
                         default_config());
  INFO(dump(out.dropped));
  CHECK(out.dropped.empty());
  REQUIRE(out.targets.size() == 1);
  const Target& t = out.targets[0];
  CHECK(t.scheme == "http");
  CHECK(t.address == "10.0.0.5:6060");
  CHECK(t.url("/x") == "http://10.0.0.5:6060/x");
  CHECK(profiles_of(t) == std::vector<std::string>{"process_cpu:/debug/pprof/profile"});
  CHECK(t.labels.get("instance") == "10.0.0.5:6060");
  CHECK(t.labels.get("namespace") == "shop");
  CHECK(t.labels.get("pod") == "web-1");
  CHECK(t.labels.get("node") == "node-a");
  CHECK_FALSE(t.labels.contains("__name__"));
}

TEST_CASE("pyroscope family alone scrapes the profiles defaults") {
  auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"}, {"pyroscope.io/port", "4040"}}),
                         default_config());
  CHECK(out.dropped.empty());
  REQUIRE(out.targets.size() == 1);
  CHECK(out.targets[0].address == "10.0.0.5:4040");
  CHECK(kinds_of(out.targets[0]) == all_five);
  CHECK(out.targets[0].profiles[1].path == "/debug/pprof/allocs");
}

TEST_CASE("pyroscope family per-profile switches, bare and -enabled forms") {
  auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                   {"pyroscope.io/port", "4040"},
                                   {"pyroscope.io/profile-mem", "true"},
                                   {"pyroscope.io/profile-goroutines-enabled", "true"},
                                   {"pyroscope.io/profile-goroutines-path", "/g"}}),
                         default_config());
  REQUIRE(out.targets.size() == 1);
  CHECK(profiles_of(out.targets[0]) ==
        std::vector<std::string>{"memory:/debug/pprof/allocs", "goroutine:/g"});

  // -enabled beats the bare form inside the family.
  out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                              {"pyroscope.io/port", "4040"},
                              {"pyroscope.io/profile-cpu", "true"},
                              {"pyroscope.io/profile-cpu-enabled", "false"}}),
                    default_config());
  REQUIRE(out.targets.size() == 1);
  CHECK(kinds_of(out.targets[0]) ==
        std::vector<std::string>{"memory", "goroutine", "mutex", "block"});
}

TEST_CASE("profefe family alone: default port 6060 and base path") {
  auto out = pod_targets(make_pod({{"profefe.com/enable", "true"}}), default_config());
  CHECK(out.dropped.empty());
  REQUIRE(out.targets.size() == 1);
  CHECK(out.targets[0].address == "10.0.0.5:6060");
  CHECK(kinds_of(out.targets[0]) == all_five);

  out = pod_targets(make_pod({{"profefe.com/enable", "true"},
                              {"profefe.com/port", "7070"},
                              {"profefe.com/path", "/internal/pprof/"},
                              {"profefe.com/service", "billing"}}),
                    default_config());
  REQUIRE(out.targets.size() == 1);
  CHECK(out.targets[0].address == "10.0.0.5:7070");
  CHECK(out.targets[0].labels.get("service_name") == "billing");
  CHECK(profiles_of(out.targets[0]) ==
        std::vector<std::string>{"process_cpu:/internal/pprof/profile",
                                 "memory:/internal/pprof/allocs",
                                 "goroutine:/internal/pprof/goroutine",
                                 "mutex:/internal/pprof/mutex", "block:/internal/pprof/block"});
}

TEST_CASE("families merge setting by setting, grafana > pyroscope > profefe") {
  const Config config = default_config();

  SECTION("grafana cpu.scrape with only pyroscope.io/port uses that port") {
    auto out = pod_targets(
        make_pod({{"profiles.grafana.com/cpu.scrape", "true"}, {"pyroscope.io/port", "4040"}}),
        config);
    REQUIRE(out.targets.size() == 1);
    CHECK(out.targets[0].address == "10.0.0.5:4040");
    CHECK(kinds_of(out.targets[0]) == std::vector<std::string>{"process_cpu"});
  }
  SECTION("ports: grafana per type, then pyroscope, then profefe, then profefe's default") {
    auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                     {"profefe.com/enable", "true"},
                                     {"profiles.grafana.com/cpu.port", "7000"},
                                     {"pyroscope.io/port", "8000"},
                                     {"profefe.com/port", "9000"}}),
                           config);
    CHECK(addresses_of(out) ==
          std::vector<std::string>{"http://10.0.0.5:7000", "http://10.0.0.5:8000"});
    CHECK(kinds_of(out.targets[0]) == std::vector<std::string>{"process_cpu"});
    CHECK(kinds_of(out.targets[1]) ==
          std::vector<std::string>{"memory", "goroutine", "mutex", "block"});

    out = pod_targets(make_pod({{"profefe.com/enable", "true"}, {"pyroscope.io/port", "8000"}}),
                      config);
    CHECK(addresses_of(out) == std::vector<std::string>{"http://10.0.0.5:8000"});
  }
  SECTION("a grafana port_name beats a pyroscope port number") {
    auto out =
        pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                              {"pyroscope.io/port", "8000"},
                              {"profiles.grafana.com/memory.port_name", "pprof"}},
                             {container("app", {{"http", 8080, "TCP"}, {"pprof", 6060, "TCP"}})}),
                    config);
    CHECK(addresses_of(out) ==
          std::vector<std::string>{"http://10.0.0.5:6060", "http://10.0.0.5:8000"});
    CHECK(kinds_of(out.targets[0]) == std::vector<std::string>{"memory"});
  }
  SECTION("switches: a grafana false beats a pyroscope true") {
    auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                     {"pyroscope.io/port", "4040"},
                                     {"pyroscope.io/profile-mem-enabled", "true"},
                                     {"profiles.grafana.com/memory.scrape", "false"}}),
                           config);
    REQUIRE(out.targets.size() == 1);
    // No "true" survives the merge, so it is the defaults minus memory.
    CHECK(kinds_of(out.targets[0]) ==
          std::vector<std::string>{"process_cpu", "goroutine", "mutex", "block"});
  }
  SECTION("trues from different families add up") {
    auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                     {"pyroscope.io/port", "4040"},
                                     {"pyroscope.io/profile-block-enabled", "true"},
                                     {"profiles.grafana.com/cpu.scrape", "true"}}),
                           config);
    REQUIRE(out.targets.size() == 1);
    CHECK(kinds_of(out.targets[0]) == std::vector<std::string>{"process_cpu", "block"});
  }
  SECTION("paths and schemes") {
    auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                     {"profefe.com/path", "/base"},
                                     {"pyroscope.io/port", "4040"},
                                     {"pyroscope.io/scheme", "https"},
                                     {"pyroscope.io/profile-cpu-path", "/pyro/cpu"},
                                     {"pyroscope.io/profile-mem-path", "/pyro/mem"},
                                     {"profiles.grafana.com/cpu.path", "/grafana/cpu"},
                                     {"profiles.grafana.com/goroutine.scheme", "http"}}),
                           config);
    INFO(dump(out.dropped));
    REQUIRE(out.targets.size() == 2);
    CHECK(out.targets[0].scheme == "http");
    CHECK(profiles_of(out.targets[0]) == std::vector<std::string>{"goroutine:/base/goroutine"});
    CHECK(out.targets[1].scheme == "https");
    CHECK(profiles_of(out.targets[1]) ==
          std::vector<std::string>{"process_cpu:/grafana/cpu", "memory:/pyro/mem",
                                   "mutex:/base/mutex", "block:/base/block"});
  }
}

TEST_CASE("naming types: only trues, only falses, and the profiles defaults") {
  Config config = default_config();
  set_enabled(config, ProfileKind::goroutine, false);
  const Annotations base{{"pyroscope.io/scrape", "true"}, {"pyroscope.io/port", "4040"}};

  SECTION("no names: the enabled profiles") {
    auto out = pod_targets(make_pod(base), config);
    REQUIRE(out.targets.size() == 1);
    CHECK(kinds_of(out.targets[0]) ==
          std::vector<std::string>{"process_cpu", "memory", "mutex", "block"});
  }
  SECTION("trues: exactly those, even one profiles disables") {
    Annotations a = base;
    a["pyroscope.io/profile-goroutines-enabled"] = "true";
    a["pyroscope.io/profile-cpu-enabled"] = "true";
    a["pyroscope.io/profile-mutex-enabled"] = "false";
    auto out = pod_targets(make_pod(a), config);
    REQUIRE(out.targets.size() == 1);
    CHECK(profiles_of(out.targets[0]) ==
          std::vector<std::string>{"process_cpu:/debug/pprof/profile",
                                   "goroutine:/debug/pprof/goroutine"});
  }
  SECTION("only falses: the defaults minus those") {
    Annotations a = base;
    a["pyroscope.io/profile-cpu-enabled"] = "false";
    a["pyroscope.io/profile-block"] = "false";
    auto out = pod_targets(make_pod(a), config);
    REQUIRE(out.targets.size() == 1);
    CHECK(kinds_of(out.targets[0]) == std::vector<std::string>{"memory", "mutex"});
  }
  SECTION("all defaults switched off: nothing, and nothing dropped") {
    Annotations a = base;
    for (const char* n : {"cpu", "mem", "mutex", "block"})
      a[std::string("pyroscope.io/profile-") + n + "-enabled"] = "false";
    auto out = pod_targets(make_pod(a), config);
    CHECK(out.targets.empty());
    CHECK(out.dropped.empty());
  }
}

TEST_CASE("godeltaprof types come along with the defaults only") {
  Config config = default_config();
  set_enabled(config, ProfileKind::godeltaprof_memory, true);
  set_enabled(config, ProfileKind::godeltaprof_mutex, true);
  config.profiles[static_cast<std::size_t>(ProfileKind::godeltaprof_mutex)].path = "/dm";

  auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                   {"pyroscope.io/port", "4040"},
                                   {"pyroscope.io/profile-mem-path", "/not/for/delta"}}),
                         config);
  REQUIRE(out.targets.size() == 1);
  CHECK(profiles_of(out.targets[0]) ==
        std::vector<std::string>{"process_cpu:/debug/pprof/profile", "memory:/not/for/delta",
                                 "goroutine:/debug/pprof/goroutine", "mutex:/debug/pprof/mutex",
                                 "block:/debug/pprof/block",
                                 "godeltaprof_memory:/debug/pprof/delta_heap",
                                 "godeltaprof_mutex:/dm"});

  // Switching memory off also switches off the godeltaprof endpoint forwarded as memory.
  out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                              {"pyroscope.io/port", "4040"},
                              {"pyroscope.io/profile-mem-enabled", "false"}}),
                    config);
  REQUIRE(out.targets.size() == 1);
  CHECK(kinds_of(out.targets[0]) == std::vector<std::string>{"process_cpu", "goroutine", "mutex",
                                                             "block", "godeltaprof_mutex"});

  // Named trues are exact.
  out = pod_targets(make_pod({{"profiles.grafana.com/memory.scrape", "true"},
                              {"profiles.grafana.com/memory.port", "4040"}}),
                    config);
  REQUIRE(out.targets.size() == 1);
  CHECK(kinds_of(out.targets[0]) == std::vector<std::string>{"memory"});
}

TEST_CASE("port selection") {
  const Config config = default_config();
  const Annotations on{{"profiles.grafana.com/cpu.scrape", "true"}};
  auto with = [&](Annotations extra) {
    Annotations a = on;
    a.insert(extra.begin(), extra.end());
    return a;
  };

  SECTION("by number") {
    auto out = pod_targets(make_pod(with({{"profiles.grafana.com/cpu.port", "65535"}})), config);
    CHECK(addresses_of(out) == std::vector<std::string>{"http://10.0.0.5:65535"});
  }
  SECTION("by name, searching every container") {
    auto out = pod_targets(
        make_pod(with({{"profiles.grafana.com/cpu.port_name", "pprof"}}),
                 {container("app", {{"http", 8080, "TCP"}}),
                  container("sidecar", {{"metrics", 9090, "TCP"}, {"pprof", 6061, "TCP"}})}),
        config);
    REQUIRE(out.targets.size() == 1);
    CHECK(out.targets[0].address == "10.0.0.5:6061");
    CHECK(out.targets[0].labels.get("container") == "sidecar");
  }
  SECTION("the only declared TCP port") {
    auto out = pod_targets(make_pod(on, {container("app", {{"", 6060, "TCP"}}),
                                         container("dns", {{"dns", 53, "UDP"}}), container("x")}),
                           config);
    REQUIRE(out.targets.size() == 1);
    CHECK(out.targets[0].address == "10.0.0.5:6060");
    CHECK(out.targets[0].labels.get("container") == "app");
  }
  SECTION("no annotation and no single declared port: no_port") {
    for (const auto& containers : std::vector<std::vector<Container>>{
             {container("app")},
             {container("app", {{"http", 8080, "TCP"}}), container("b", {{"x", 9090, "TCP"}})}}) {
      auto out = pod_targets(make_pod(on, containers), config);
      CHECK(out.targets.empty());
      REQUIRE(out.dropped.size() == 1);
      CHECK(out.dropped[0].pod == "shop/web-1");
      CHECK(out.dropped[0].reason == "no_port");
    }
  }
  SECTION("bad numbers: invalid_port naming annotation and value") {
    for (const char* bad : {"abc", "0", "65536", "-1", "", " 80", "80a", "1e3", "999999"}) {
      auto out = pod_targets(make_pod(with({{"profiles.grafana.com/cpu.port", bad}})), config);
      CHECK(out.targets.empty());
      REQUIRE(out.dropped.size() == 1);
      CHECK(out.dropped[0].reason == "invalid_port");
      CHECK_THAT(out.dropped[0].detail,
                 Catch::Contains("profiles.grafana.com/cpu.port=\"" + std::string(bad) + "\""));
    }
  }
  SECTION("unknown name") {
    auto out = pod_targets(make_pod(with({{"profiles.grafana.com/cpu.port_name", "pprof"}}),
                                    {container("app", {{"http", 8080, "TCP"}})}),
                           config);
    CHECK(out.targets.empty());
    REQUIRE(out.dropped.size() == 1);
    CHECK(out.dropped[0].reason == "unknown_port_name");
    CHECK_THAT(out.dropped[0].detail, Catch::Contains("cpu.port_name=\"pprof\""));
  }
  SECTION("a number wins over a name in the same family") {
    auto out = pod_targets(make_pod(with({{"profiles.grafana.com/cpu.port", "7000"},
                                          {"profiles.grafana.com/cpu.port_name", "nope"}})),
                           config);
    CHECK(addresses_of(out) == std::vector<std::string>{"http://10.0.0.5:7000"});
  }
}

TEST_CASE("one target per (pod, port, scheme), never per container") {
  const Config config = default_config();
  SECTION("two containers, one annotated port") {
    auto out =
        pod_targets(make_pod({{"pyroscope.io/scrape", "true"}, {"pyroscope.io/port", "6060"}},
                             {container("envoy", {{"admin", 9901, "TCP"}}),
                              container("api", {{"pprof", 6060, "TCP"}})}),
                    config);
    REQUIRE(out.targets.size() == 1);
    CHECK(out.targets[0].labels.get("container") == "api");
    CHECK(out.targets[0].labels.get("service_name") == "shop/api");
    CHECK(out.targets[0].profiles.size() == 5);
  }
  SECTION("an undeclared port has no container label") {
    auto out =
        pod_targets(make_pod({{"pyroscope.io/scrape", "true"}, {"pyroscope.io/port", "6060"}},
                             {container("a"), container("b")}),
                    config);
    REQUIRE(out.targets.size() == 1);
    CHECK_FALSE(out.targets[0].labels.contains("container"));
    CHECK(out.targets[0].labels.get("service_name") == "unknown_service");
  }
  SECTION("per-type ports make separate targets") {
    auto out = pod_targets(make_pod({{"profiles.grafana.com/cpu.scrape", "true"},
                                     {"profiles.grafana.com/cpu.port", "6060"},
                                     {"profiles.grafana.com/memory.scrape", "true"},
                                     {"profiles.grafana.com/memory.port", "6061"},
                                     {"profiles.grafana.com/block.scrape", "true"},
                                     {"profiles.grafana.com/block.port", "6060"}}),
                           config);
    REQUIRE(out.targets.size() == 2);
    CHECK(out.targets[0].address == "10.0.0.5:6060");
    CHECK(kinds_of(out.targets[0]) == std::vector<std::string>{"process_cpu", "block"});
    CHECK(out.targets[1].address == "10.0.0.5:6061");
    CHECK(out.targets[1].labels.get("instance") == "10.0.0.5:6061");
    CHECK(kinds_of(out.targets[1]) == std::vector<std::string>{"memory"});
  }
  SECTION("per-type schemes on one port make separate targets") {
    auto out = pod_targets(make_pod({{"profiles.grafana.com/cpu.scrape", "true"},
                                     {"profiles.grafana.com/memory.scrape", "true"},
                                     {"profiles.grafana.com/memory.scheme", "https"},
                                     {"pyroscope.io/port", "6060"}}),
                           config);
    CHECK(addresses_of(out) ==
          std::vector<std::string>{"http://10.0.0.5:6060", "https://10.0.0.5:6060"});
  }
}

TEST_CASE("bad scheme and path values drop only what they affect") {
  const Config config = default_config();
  SECTION("scheme") {
    auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                     {"pyroscope.io/port", "6060"},
                                     {"profiles.grafana.com/cpu.scheme", "ftp"}}),
                           config);
    REQUIRE(out.targets.size() == 1);
    CHECK(kinds_of(out.targets[0]) ==
          std::vector<std::string>{"memory", "goroutine", "mutex", "block"});
    REQUIRE(out.dropped.size() == 1);
    CHECK(out.dropped[0].reason == "invalid_scheme");
    CHECK(out.dropped[0].detail ==
          "profiles.grafana.com/cpu.scheme=\"ftp\": must be http or https");
  }
  SECTION("a scheme shared by every type reports once") {
    auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                     {"pyroscope.io/port", "6060"},
                                     {"pyroscope.io/scheme", "HTTPS"}}),
                           config);
    CHECK(out.targets.empty());
    REQUIRE(out.dropped.size() == 1);
    CHECK(out.dropped[0].reason == "invalid_scheme");
  }
  SECTION("paths") {
    for (const char* bad : {"debug/pprof/profile", "", "/a?seconds=5", "/a#x", "/a b", "/a\tb",
                            "/../etc/passwd", "/a/..", "//host/x/../y"}) {
      auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                       {"pyroscope.io/port", "6060"},
                                       {"profiles.grafana.com/mutex.path", bad}}),
                             config);
      INFO(bad);
      REQUIRE(out.targets.size() == 1);
      CHECK(kinds_of(out.targets[0]) ==
            std::vector<std::string>{"process_cpu", "memory", "goroutine", "block"});
      REQUIRE(out.dropped.size() == 1);
      CHECK(out.dropped[0].reason == "invalid_path");
      CHECK_THAT(out.dropped[0].detail,
                 Catch::StartsWith("profiles.grafana.com/mutex.path=\"" + std::string(bad)));
    }
  }
  SECTION("a bad profefe base path") {
    auto out = pod_targets(
        make_pod({{"profefe.com/enable", "true"}, {"profefe.com/path", "pprof"}}), config);
    CHECK(out.targets.empty());
    REQUIRE(out.dropped.size() == 1);
    CHECK(out.dropped[0].reason == "invalid_path");
    CHECK(out.dropped[0].detail.starts_with("profefe.com/path=\"pprof\""));
  }
  SECTION("an unreadable switch") {
    auto out = pod_targets(make_pod({{"pyroscope.io/scrape", "true"},
                                     {"pyroscope.io/port", "6060"},
                                     {"pyroscope.io/profile-cpu-enabled", "yes"}}),
                           config);
    REQUIRE(out.targets.size() == 1);
    CHECK(kinds_of(out.targets[0]) ==
          std::vector<std::string>{"memory", "goroutine", "mutex", "block"});
    REQUIRE(out.dropped.size() == 1);
    CHECK(out.dropped[0].reason == "invalid_annotation");
    CHECK_THAT(out.dropped[0].detail, Catch::Contains("pyroscope.io/profile-cpu-enabled=\"yes\""));
  }
  SECTION("a bad port on one type keeps the other types' targets") {
    auto out = pod_targets(make_pod({{"profiles.grafana.com/cpu.scrape", "true"},
                                     {"profiles.grafana.com/cpu.port", "http"},
                                     {"profiles.grafana.com/memory.scrape", "true"},
                                     {"profiles.grafana.com/memory.port", "6061"}}),
                           config);
    CHECK(addresses_of(out) == std::vector<std::string>{"http://10.0.0.5:6061"});
    REQUIRE(out.dropped.size() == 1);
    CHECK(out.dropped[0].reason == "invalid_port");
  }
}

TEST_CASE("only running pods with an IP that are not terminating are scraped") {
  const Annotations on{{"profefe.com/enable", "true"}};
  const Config config = default_config();
  struct Case {
    std::string phase, ip;
    bool deleting;
    std::string reason;
  };
  for (const auto& c : std::vector<Case>{{"Pending", "", false, "not_running"},
                                         {"Succeeded", "10.0.0.5", false, "not_running"},
                                         {"", "10.0.0.5", false, "not_running"},
                                         {"Running", "", false, "no_pod_ip"},
                                         {"Running", "10.0.0.5", true, "deleting"}}) {
    Pod pod = make_pod(on);
    pod.phase = c.phase;
    pod.pod_ip = c.ip;
    pod.deleting = c.deleting;
    CHECK(is_candidate(pod));
    auto out = pod_targets(pod, config);
    INFO(c.phase << " " << c.ip);
    CHECK(out.targets.empty());
    REQUIRE(out.dropped.size() == 1);
    CHECK(out.dropped[0] == DroppedCandidate{"shop/web-1", c.reason, out.dropped[0].detail});
    CHECK_FALSE(out.dropped[0].detail.empty());
  }
}

TEST_CASE("the host is always the pod IP") {
  Pod pod = make_pod({{"pyroscope.io/scrape", "true"},
                      {"pyroscope.io/port", "6060"},
                      {"profiles.grafana.com/cpu.path", "//evil.example.com/x"},
                      {"pyroscope.io/profile-mem-path", "@evil.example.com/x"}});
  auto out = pod_targets(pod, default_config());
  for (const auto& t : out.targets) CHECK(t.address == "10.0.0.5:6060");
  // "@..." does not start with "/", so it never reaches a URL.
  REQUIRE(out.dropped.size() == 1);
  CHECK(out.dropped[0].reason == "invalid_path");

  pod.pod_ip = "fd00:10:244::5";
  out = pod_targets(pod, default_config());
  REQUIRE(out.targets.size() == 1);
  CHECK(out.targets[0].address == "[fd00:10:244::5]:6060");
  CHECK(out.targets[0].labels.get("instance") == "[fd00:10:244::5]:6060");
  CHECK(out.targets[0].url("/p") == "http://[fd00:10:244::5]:6060/p");
}

TEST_CASE("service_name derivation order") {
  const std::vector<std::pair<std::string, std::string>> sources{
      {"profiles.grafana.com/service_name", "grafana"},
      {"pyroscope.io/service_name", "pyro-service"},
      {"pyroscope.io/application-name", "pyro-app"},
      {"profefe.com/service", "profefe"},
      {"resource.opentelemetry.io/service.name", "otel"},
  };
  auto service_of = [](Pod pod) {
    auto out = pod_targets(pod, default_config());
    REQUIRE(out.targets.size() == 1);
    return std::string(out.targets[0].labels.get_or("service_name", "<none>"));
  };
  // Drop sources from the front: each time the next one must win.
  for (std::size_t first = 0; first < sources.size(); ++first) {
    Annotations a{{"profefe.com/enable", "true"}};
    for (std::size_t i = first; i < sources.size(); ++i) a[sources[i].first] = sources[i].second;
    Pod pod = make_pod(a, {container("api", {{"pprof", 6060, "TCP"}})});
    pod.labels = {{"app.kubernetes.io/name", "k8s-name"}, {"app", "app-label"}};
    CHECK(service_of(pod) == sources[first].second);
  }
  Pod pod = make_pod({{"profefe.com/enable", "true"}, {"pyroscope.io/service_name", ""}},
                     {container("api", {{"pprof", 6060, "TCP"}})});
  pod.labels = {{"app.kubernetes.io/name", "k8s-name"}, {"app", "app-label"}};
  CHECK(service_of(pod) == "k8s-name");  // an empty annotation does not count
  pod.labels.erase("app.kubernetes.io/name");
  CHECK(service_of(pod) == "app-label");
  pod.labels.clear();
  CHECK(service_of(pod) == "shop/api");
  pod.containers = {container("only")};  // 6060 undeclared, but there is just one container
  CHECK(service_of(pod) == "shop/only");
}

TEST_CASE("label names are sanitized") {
  CHECK(sanitize_label_name("app.kubernetes.io/name") == "app_kubernetes_io_name");
  CHECK(sanitize_label_name("team") == "team");
  CHECK(sanitize_label_name("9lives") == "_9lives");
  CHECK(sanitize_label_name("a-b_C9") == "a_b_C9");
  CHECK(sanitize_label_name("é") == "__");
  CHECK(sanitize_label_name("") == "_");
}

TEST_CASE("pod labels are filtered, sanitized and never override fixed labels") {
  Config config = default_config();
  Pod pod = make_pod({{"pyroscope.io/scrape", "true"}, {"pyroscope.io/port", "6060"}});
  pod.labels = {{"app.kubernetes.io/name", "web"},
                {"pod-template-hash", "abc123"},
                {"team", "payments"},
                {"tier", "frontend"},
                {"track", "canary"},
                {"pod", "impostor"},
                {"namespace", "impostor"},
                {"instance", "1.2.3.4:80"},
                {"2fa", "on"}};

  auto labels_of = [&] {
    auto out = pod_targets(pod, config);
    REQUIRE(out.targets.size() == 1);
    return out.targets[0].labels;
  };

  auto labels = labels_of();
  CHECK(labels.get("app_kubernetes_io_name") == "web");
  CHECK(labels.get("team") == "payments");
  CHECK(labels.get("_2fa") == "on");
  CHECK_FALSE(labels.contains("pod_template_hash"));  // default exclude
  CHECK(labels.get("pod") == "web-1");
  CHECK(labels.get("namespace") == "shop");
  CHECK(labels.get("instance") == "10.0.0.5:6060");
  CHECK(labels.get("service_name") == "web");

  // Patterns match the original name; exclude wins over include.
  config.kubernetes.pod_labels.include = {"app.kubernetes.io/*", "t?am", "tr*"};
  config.kubernetes.pod_labels.exclude = {"track"};
  labels = labels_of();
  CHECK(labels.contains("app_kubernetes_io_name"));
  CHECK(labels.contains("team"));
  CHECK_FALSE(labels.contains("tier"));
  CHECK_FALSE(labels.contains("track"));
  CHECK_FALSE(labels.contains("_2fa"));
  // Sanitized names do not match patterns written for the original.
  config.kubernetes.pod_labels.include = {"app_kubernetes_io_*"};
  config.kubernetes.pod_labels.exclude = {};
  labels = labels_of();
  CHECK_FALSE(labels.contains("app_kubernetes_io_name"));
  // Empty include: no pod labels at all.
  config.kubernetes.pod_labels.include = {};
  labels = labels_of();
  CHECK(labels.size() == 5);  // service_name, namespace, pod, node, instance
}

TEST_CASE("pod labels are capped at Pyroscope's 30 label names") {
  Config config = default_config();
  config.kubernetes.pod_labels.exclude = {};
  Pod pod = make_pod({{"pyroscope.io/scrape", "true"}, {"pyroscope.io/port", "6060"}},
                     {container("api", {{"pprof", 6060, "TCP"}})});
  for (int i = 0; i < 40; ++i) {
    std::string n = std::to_string(100 + i);
    pod.labels["l" + n] = n;
  }

  // 6 fixed + __name__ + __delta__ leave 22 pod labels, taken in name order.
  auto out = pod_targets(pod, config);
  REQUIRE(out.targets.size() == 1);
  const auto& labels = out.targets[0].labels;
  CHECK(labels.size() == 6 + 22);
  CHECK(labels.contains("l121"));
  CHECK_FALSE(labels.contains("l122"));
  CHECK(out.labels_truncated == 18);

  // Each external label name takes a slot; one named like a fixed label does not add a name.
  config.scrape.external_labels = {{"cluster", "prod"}, {"region", "eu"}, {"namespace", "x"}};
  out = pod_targets(pod, config);
  REQUIRE(out.targets.size() == 1);
  CHECK(out.targets[0].labels.size() == 6 + 20);
  CHECK(out.labels_truncated == 20);
  CHECK_FALSE(out.targets[0].labels.contains("cluster"));  // external labels are added later
  std::size_t total = out.targets[0].labels.size() + 2;    // + __name__, __delta__
  for (const auto& [name, value] : config.scrape.external_labels)
    if (!out.targets[0].labels.contains(name)) ++total;
  CHECK(total == 30);

  // A pod label an external label would override is left out, not counted as truncated.
  pod.labels = {{"cluster", "mine"}, {"a", "1"}};
  out = pod_targets(pod, config);
  CHECK_FALSE(out.targets[0].labels.contains("cluster"));
  CHECK(out.targets[0].labels.contains("a"));
  CHECK(out.labels_truncated == 0);
}

TEST_CASE("one bad pod does not affect another") {
  const Config config = default_config();
  Pod bad = make_pod({{"pyroscope.io/scrape", "true"}, {"pyroscope.io/port", "99999"}});
  Pod good = make_pod({{"pyroscope.io/scrape", "true"}, {"pyroscope.io/port", "6060"}});
  good.name = "web-2";
  auto bad_out = pod_targets(bad, config);
  auto good_out = pod_targets(good, config);
  CHECK(bad_out.targets.empty());
  REQUIRE(bad_out.dropped.size() == 1);  // five types, one shared cause, one entry
  CHECK(bad_out.dropped[0].reason == "invalid_port");
  CHECK(good_out.dropped.empty());
  REQUIRE(good_out.targets.size() == 1);
  CHECK(good_out.targets[0].labels.get("pod") == "web-2");
}

TEST_CASE("a config without profiles entries falls back to the built-in defaults") {
  Config config;  // profiles empty: must not index out of range
  auto out = pod_targets(make_pod({{"profefe.com/enable", "true"}}), config);
  REQUIRE(out.targets.size() == 1);
  CHECK(kinds_of(out.targets[0]) == all_five);
}
