#include "pprofd/config/config.hpp"

#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace pprofd::config;
using namespace pprofd::config::testing;
using pprofd::Duration;
using pprofd::model::ProfileKind;

TEST_CASE("an empty document gives every default of design section 3") {
  for (const char* text : {"", "# only a comment\n\n   # another\n", "{}", "---\n",
                           "scrape:\nprofiles:\ndiscovery:\nsinks:\nserver:\n"}) {
    INFO("document: " << text);
    const Config c = parse_ok(text);
    CHECK(c.scrape.interval == 15s);
    CHECK(c.scrape.timeout == 10s);
    CHECK(c.scrape.cpu_duration == 14s);
    CHECK(c.scrape.max_concurrent == 4096);
    CHECK(c.scrape.body_size_limit == 64ULL << 20);
    CHECK(c.scrape.external_labels.empty());
    CHECK(c.scrape.tls == TlsConfig{});
    CHECK(c.scrape.bearer_token_file.empty());

    REQUIRE(c.profiles.size() == pprofd::model::profile_types.size());
    for (std::size_t i = 0; i < c.profiles.size(); ++i) {
      const auto& info = pprofd::model::profile_types[i];
      INFO(info.name);
      CHECK(c.profiles[i].kind == info.kind);
      CHECK(c.profiles[i].enabled == info.default_enabled);
      CHECK(c.profiles[i].path == info.default_path);
      CHECK(c.profiles[i].delta == info.cumulative);
    }
    CHECK(c.profile(ProfileKind::process_cpu).enabled);
    CHECK(c.profile(ProfileKind::memory).delta);
    CHECK_FALSE(c.profile(ProfileKind::goroutine).delta);
    CHECK_FALSE(c.profile(ProfileKind::godeltaprof_memory).enabled);
    CHECK(c.profile(ProfileKind::godeltaprof_block).path == "/debug/pprof/delta_block");

    CHECK_FALSE(c.kubernetes.enabled);
    CHECK(c.kubernetes.namespaces.empty());
    CHECK(c.kubernetes.pod_labels.include == std::vector<std::string>{"*"});
    CHECK(c.kubernetes.pod_labels.exclude.size() == 3);
    CHECK(c.kubernetes.shard.count == 1);
    CHECK(c.kubernetes.shard.index == 0);
    CHECK(c.static_configs.empty());
    CHECK(c.sinks.empty());
    CHECK(c.server.listen_address == "127.0.0.1:9750");
    CHECK_FALSE(c.server.per_target_metrics);
    CHECK(c.shutdown_timeout == 10s);
    CHECK(c == default_config());
  }
}

TEST_CASE("a full document parses into the expected values") {
  const Config c = parse_ok(R"(
scrape:
  interval: 30s
  timeout: 5s
  cpu_duration: 20s
  max_concurrent: 64
  body_size_limit: 16MiB
  external_labels: {cluster: prod-eu, env: prod}
  tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem, server_name: x.local, insecure_skip_verify: true}
  bearer_token_file: /var/run/token
profiles:
  process_cpu: {enabled: false}
  memory: {path: /debug/pprof/heap, delta: false}
  godeltaprof_memory: {enabled: true}
discovery:
  kubernetes:
    enabled: true
    kubeconfig: /root/.kube/config
    namespaces: [default, team-a]
    label_selector: app=web
    field_selector: status.phase=Running
    node_name: node-1
    pod_labels:
      include: ["app*"]
      exclude: []
    shard: {count: 3, index: 2}
  static:
    - targets: ["127.0.0.1:6060", "db.internal:6061", "[::1]:6062"]
      labels: {service_name: demo}
    - targets: [web-0:443]
      scheme: https
sinks:
  - name: pyroscope
    type: pyroscope
    url: http://pyroscope.observability.svc:4040/
    tenant_id: team-a
    headers: {X-Extra: "1"}
    basic_auth: {username: u, password_file: /etc/pw}
    tls: {ca_file: /etc/ca.pem}
    timeout: 3s
    queue: {max_bytes: 32MiB, min_backoff: 100ms, max_backoff: 1m, max_retries: 0}
  - {name: ingest, type: pyroscope_ingest, url: "https://[2001:db8::1]:4040/prefix", bearer_token_file: /t}
  - {name: profefe, type: profefe, url: http://profefe:10100}
  - {name: local, type: file, dir: ./profiles, max_bytes: 1GiB, max_age: 48h}
server:
  listen_address: 0.0.0.0:9750
  per_target_metrics: true
shutdown_timeout: 1m30s
)");
  CHECK(c.scrape.interval == 30s);
  CHECK(c.scrape.timeout == 5s);
  CHECK(c.scrape.cpu_duration == 20s);
  CHECK(c.scrape.max_concurrent == 64);
  CHECK(c.scrape.body_size_limit == 16ULL << 20);
  CHECK(c.scrape.external_labels == pprofd::model::Labels{{"cluster", "prod-eu"}, {"env", "prod"}});
  CHECK(c.scrape.tls == TlsConfig{"/etc/ca.pem", "/etc/c.pem", "/etc/k.pem", "x.local", true});
  CHECK(c.scrape.bearer_token_file == "/var/run/token");

  CHECK_FALSE(c.profile(ProfileKind::process_cpu).enabled);
  CHECK(c.profile(ProfileKind::process_cpu).path == "/debug/pprof/profile");
  CHECK(c.profile(ProfileKind::memory).enabled);
  CHECK(c.profile(ProfileKind::memory).path == "/debug/pprof/heap");
  CHECK_FALSE(c.profile(ProfileKind::memory).delta);
  CHECK(c.profile(ProfileKind::mutex).delta);
  CHECK(c.profile(ProfileKind::godeltaprof_memory).enabled);
  CHECK_FALSE(c.profile(ProfileKind::godeltaprof_memory).delta);

  const auto& k = c.kubernetes;
  CHECK(k.enabled);
  CHECK(k.kubeconfig == "/root/.kube/config");
  CHECK(k.namespaces == std::vector<std::string>{"default", "team-a"});
  CHECK(k.label_selector == "app=web");
  CHECK(k.field_selector == "status.phase=Running");
  CHECK(k.node_name == "node-1");
  CHECK(k.pod_labels.include == std::vector<std::string>{"app*"});
  CHECK(k.pod_labels.exclude.empty());
  CHECK(k.shard == ShardConfig{3, 2});

  REQUIRE(c.static_configs.size() == 2);
  CHECK(c.static_configs[0].targets ==
        std::vector<std::string>{"127.0.0.1:6060", "db.internal:6061", "[::1]:6062"});
  CHECK(c.static_configs[0].labels == pprofd::model::Labels{{"service_name", "demo"}});
  CHECK(c.static_configs[0].scheme == "http");
  CHECK(c.static_configs[1].targets == std::vector<std::string>{"web-0:443"});
  CHECK(c.static_configs[1].scheme == "https");

  REQUIRE(c.sinks.size() == 4);
  const SinkConfig& p = c.sinks[0];
  CHECK(p.name == "pyroscope");
  CHECK(p.type == SinkType::pyroscope);
  CHECK(p.url == "http://pyroscope.observability.svc:4040");  // trailing slash removed
  CHECK(p.tenant_id == "team-a");
  CHECK(p.headers == std::map<std::string, std::string>{{"X-Extra", "1"}});
  CHECK(p.basic_auth.username == "u");
  CHECK(p.basic_auth.password_file == "/etc/pw");
  CHECK(p.tls.ca_file == "/etc/ca.pem");
  CHECK(p.timeout == 3s);
  CHECK(p.queue == QueueConfig{32ULL << 20, 100ms, 60s, 0});
  CHECK(c.sinks[1].type == SinkType::pyroscope_ingest);
  CHECK(c.sinks[1].url == "https://[2001:db8::1]:4040/prefix");
  CHECK(c.sinks[1].bearer_token_file == "/t");
  CHECK(c.sinks[1].queue == QueueConfig{});
  CHECK(c.sinks[2].type == SinkType::profefe);
  const SinkConfig& f = c.sinks[3];
  CHECK(f.type == SinkType::file);
  CHECK(f.dir == "./profiles");
  CHECK(f.max_bytes == 1ULL << 30);
  CHECK(f.max_age == 48h);

  CHECK(c.server.listen_address == "0.0.0.0:9750");
  CHECK(c.server.per_target_metrics);
  CHECK(c.shutdown_timeout == 90s);
}

TEST_CASE("environment variables expand inside values and errors name the field") {
  const auto env = fake_env({{"URL", "http://pyro:4040"}, {"NS", "team-a"}, {"EMPTY", ""}});
  const Config c = parse_ok(R"(
scrape:
  interval: ${INTERVAL:-20s}
  external_labels: {price: "$$5", who: "${WHO:-nobody}", home: $HOME}
discovery:
  kubernetes: {namespaces: ["${NS}"], node_name: "${EMPTY:-fallback}"}
sinks:
  - {name: p, type: pyroscope, url: "${URL}/"}
)",
                            env);
  CHECK(c.scrape.interval == 20s);
  CHECK(c.scrape.cpu_duration == 19s);
  CHECK(c.scrape.external_labels.get_or("price", "") == "$5");
  CHECK(c.scrape.external_labels.get_or("who", "") == "nobody");
  CHECK(c.scrape.external_labels.get_or("home", "") == "$HOME");
  CHECK(c.kubernetes.namespaces == std::vector<std::string>{"team-a"});
  CHECK(c.kubernetes.node_name == "fallback");
  REQUIRE(c.sinks.size() == 1);
  CHECK(c.sinks[0].url == "http://pyro:4040");

  require_single_error("sinks:\n  - {name: p, type: pyroscope, url: \"${PYRO_URL}\"}\n",
                       "sinks[0].url", "environment variable \"PYRO_URL\" is not set", env);
  require_single_error("scrape: {interval: \"${NOPE}\"}\n", "scrape.interval", "\"NOPE\"", env);
  // An expanded value is checked like a literal one.
  require_single_error("scrape: {timeout: \"${T}\"}\n", "scrape.timeout", "must be positive",
                       fake_env({{"T", "-1s"}}));
}

TEST_CASE("unknown keys are errors at every level, with a suggestion when close") {
  require_single_error("scrape:\n  intervl: 15s\n", "scrape.intervl",
                       "unknown field \"intervl\" (did you mean \"interval\"?)");
  require_single_error("sink: []\n", "sink", "unknown field \"sink\" (did you mean \"sinks\"?)");
  require_single_error("discovery:\n  kubernetes:\n    pod_label: {}\n",
                       "discovery.kubernetes.pod_label", "(did you mean \"pod_labels\"?)");
  require_single_error("sinks:\n  - {name: a, type: file, dir: /d, maxage: 1h}\n",
                       "sinks[0].maxage", "(did you mean \"max_age\"?)");
  require_single_error(
      "sinks:\n  - {name: a, type: pyroscope, url: http://x, queue: {max_retires: 3}}\n",
      "sinks[0].queue.max_retires", "(did you mean \"max_retries\"?)");
  require_single_error("scrape: {tls: {insecure: true}}\n", "scrape.tls.insecure",
                       "unknown field \"insecure\"");
  require_single_error("discovery: {static: [{targets: [\"a:1\"], lables: {}}]}\n",
                       "discovery.static[0].lables", "(did you mean \"labels\"?)");
  // Nothing close: no suggestion.
  LoadResult r = parse("completely_unrelated: 1\n", fake_env());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].problem == "unknown field \"completely_unrelated\"");
}

TEST_CASE("durations must parse and be positive") {
  require_single_error("scrape: {timeout: -5s}\n", "scrape.timeout", "must be positive");
  require_single_error("scrape: {interval: 0s}\n", "scrape.interval", "must be positive");
  require_single_error("scrape: {interval: 15}\n", "scrape.interval", "invalid duration");
  require_single_error("shutdown_timeout: 0\n", "shutdown_timeout", "must be positive");
  require_single_error("sinks: [{name: a, type: file, dir: /d, max_age: -1h}]\n",
                       "sinks[0].max_age", "must be positive");
  require_single_error("sinks: [{name: a, type: pyroscope, url: http://x, timeout: 0s}]\n",
                       "sinks[0].timeout", "must be positive");
  require_single_error(
      "sinks: [{name: a, type: profefe, url: http://x, queue: {min_backoff: -1s}}]\n",
      "sinks[0].queue.min_backoff", "must be positive");
  require_single_error(
      "sinks: [{name: a, type: profefe, url: http://x, queue: {min_backoff: 2s, max_backoff: "
      "1s}}]\n",
      "sinks[0].queue.max_backoff", "must not be less than min_backoff");
}

TEST_CASE("cpu_duration is whole seconds, at least 1s and below the interval") {
  require_single_error("scrape: {cpu_duration: 20s}\n", "scrape.cpu_duration",
                       "must be less than scrape.interval (15s)");
  require_single_error("scrape: {interval: 10s, cpu_duration: 10s}\n", "scrape.cpu_duration",
                       "must be less than scrape.interval (10s)");
  require_single_error("scrape: {cpu_duration: 1500ms}\n", "scrape.cpu_duration",
                       "must be whole seconds");
  require_single_error("scrape: {cpu_duration: 500ms}\n", "scrape.cpu_duration",
                       "must be at least 1s");
  require_single_error("scrape: {cpu_duration: -3s}\n", "scrape.cpu_duration", "must be positive");
  require_single_error("scrape: {interval: 1s}\n", "scrape.cpu_duration", "below 1s");

  CHECK(parse_ok("scrape: {interval: 1m}\n").scrape.cpu_duration == 59s);
  CHECK(parse_ok("scrape: {interval: 2s}\n").scrape.cpu_duration == 1s);
  CHECK(parse_ok("scrape: {interval: 2500ms}\n").scrape.cpu_duration == 1s);
  CHECK(parse_ok("scrape: {interval: 1500ms, cpu_duration: 1s}\n").scrape.cpu_duration == 1s);
}

TEST_CASE("other numeric limits") {
  require_single_error("scrape: {max_concurrent: 0}\n", "scrape.max_concurrent", "at least 1");
  require_single_error("scrape: {max_concurrent: -4}\n", "scrape.max_concurrent", "whole number");
  require_single_error("scrape: {body_size_limit: 512}\n", "scrape.body_size_limit",
                       "at least 1KiB");
  require_single_error("scrape: {body_size_limit: 64 furlongs}\n", "scrape.body_size_limit",
                       "invalid size");
  CHECK(parse_ok("scrape: {body_size_limit: 2048}\n").scrape.body_size_limit == 2048);
  require_single_error("discovery: {kubernetes: {shard: {count: 2, index: 2}}}\n",
                       "discovery.kubernetes.shard.index", "must be less than shard.count (2)");
  require_single_error("discovery: {kubernetes: {shard: {count: 0}}}\n",
                       "discovery.kubernetes.shard.count", "at least 1");
  require_single_error("sinks: [{name: a, type: file, dir: /d, max_bytes: 0}]\n",
                       "sinks[0].max_bytes", "at least");
}

TEST_CASE("values of the wrong kind name their field") {
  require_single_error("scrape: {interval: {a: 1}}\n", "scrape.interval",
                       "must be a duration, got a map");
  require_single_error("scrape: [1, 2]\n", "scrape", "must be a map, got a list");
  require_single_error("sinks: {name: a}\n", "sinks", "must be a list, got a map");
  require_single_error("discovery: {static: [{targets: \"127.0.0.1:6060\"}]}\n",
                       "discovery.static[0].targets", "must be a list, got \"127.0.0.1:6060\"");
  require_single_error("profiles: {memory: true}\n", "profiles.memory", "must be a map");
  require_single_error("server: {listen_address: [a]}\n", "server.listen_address",
                       "must be a string, got a list");
  require_single_error("discovery: {kubernetes: {enabled: yes}}\n", "discovery.kubernetes.enabled",
                       "must be true or false, got \"yes\"");
  require_single_error("server: {per_target_metrics: 1}\n", "server.per_target_metrics",
                       "must be true or false");
  require_single_error("- a\n- b\n", "<yaml>", "top level must be a map");
  require_single_error("? [a]\n: 1\n", "<yaml>", "keys must be plain strings");
}

TEST_CASE("malformed static target addresses are reported with their index") {
  struct Case {
    const char* target;
    const char* why;
  };
  for (const Case& c : {Case{"127.0.0.1:99999", "port must be 1-65535"},
                        Case{"127.0.0.1:notaport", "port must be a number 1-65535"},
                        Case{"127.0.0.1", "missing port (expected host:port)"},
                        Case{"http://127.0.0.1:6060", "must be host:port without a scheme"},
                        Case{"127.0.0.1:6060/debug", "must be host:port without a path"},
                        Case{":6060", "missing host (expected host:port)"},
                        Case{"my host:6060", "must not contain spaces"},
                        Case{"::1:6060", "IPv6 addresses must be in brackets"},
                        Case{"300.1.1.1:80", "invalid IPv4 address \"300.1.1.1\""},
                        Case{"host:0", "port must be 1-65535"}}) {
    const std::string yaml =
        std::string("discovery:\n  static:\n    - targets: [\"ok:1\", \"") + c.target + "\"]\n";
    require_single_error(yaml, "discovery.static[0].targets[1]",
                         std::string("invalid address \"") + c.target + "\": " + c.why);
  }
  require_single_error("discovery: {static: [{targets: [\"127.0.0.1:99999\"]}]}\n",
                       "discovery.static[0].targets[0]",
                       "invalid address \"127.0.0.1:99999\": port must be 1-65535");
  require_single_error("discovery: {static: [{targets: []}]}\n", "discovery.static[0].targets",
                       "at least one");
  require_single_error("discovery: {static: [{targets: [\"a:1\"], scheme: ftp}]}\n",
                       "discovery.static[0].scheme", "must be http or https");
}

TEST_CASE("sink validation") {
  require_single_error("sinks: [{name: a, type: pyroscop, url: http://x}]\n", "sinks[0].type",
                       "unknown sink type \"pyroscop\" (did you mean \"pyroscope\"?)");
  require_single_error("sinks: [{name: a, type: s3}]\n", "sinks[0].type",
                       "use one of pyroscope, pyroscope_ingest, profefe, file");
  require_single_error("sinks: [{name: a, url: http://x}]\n", "sinks[0].type", "required");
  require_single_error("sinks: [{name: local, type: file}]\n", "sinks[0].dir",
                       "required for sink type file");
  require_single_error("sinks: [{name: local, type: file, dir: /d, url: http://x}]\n",
                       "sinks[0].url", "field \"url\" does not apply to sink type file");
  require_single_error("sinks: [{name: local, type: file, dir: /d, queue: {}}]\n", "sinks[0].queue",
                       "does not apply to sink type file");
  require_single_error("sinks: [{name: p, type: pyroscope, url: http://x, dir: /d}]\n",
                       "sinks[0].dir", "field \"dir\" does not apply to sink type pyroscope");
  require_single_error("sinks: [{name: p, type: profefe}]\n", "sinks[0].url",
                       "required for sink type profefe");
  require_single_error("sinks: [{name: p, type: profefe, url: ftp://x}]\n", "sinks[0].url",
                       "not supported");
  require_single_error("sinks: [{name: p, type: profefe, url: pyroscope:4040}]\n", "sinks[0].url",
                       "must start with http:// or https://");
  require_single_error("sinks: [{name: p, type: profefe, url: \"http://\"}]\n", "sinks[0].url",
                       "missing host");
  require_single_error("sinks: [{name: p, type: profefe, url: \"http://x:70000\"}]\n",
                       "sinks[0].url", "port must be 1-65535");
  require_single_error(
      "sinks:\n  - {name: dup, type: file, dir: /a}\n  - {name: dup, type: file, dir: /b}\n",
      "sinks[1].name", "duplicate sink name \"dup\" (also sinks[0])");
  require_single_error("sinks: [{type: file, dir: /a}]\n", "sinks[0].name", "required");
  require_single_error("sinks: [{name: \"a b\", type: file, dir: /a}]\n", "sinks[0].name",
                       "[a-zA-Z0-9_-]+");
  require_single_error(
      "sinks: [{name: p, type: pyroscope, url: http://x, basic_auth: {username: u}}]\n",
      "sinks[0].basic_auth.password_file", "required when username is set");
  require_single_error(
      "sinks: [{name: p, type: pyroscope, url: http://x, basic_auth: {password_file: /p}}]\n",
      "sinks[0].basic_auth.username", "required when password_file is set");
  require_single_error(
      "sinks: [{name: p, type: pyroscope, url: http://x, headers: {\"bad header\": v}}]\n",
      "sinks[0].headers.bad header", "invalid HTTP header name");
  require_single_error("sinks: [{name: p, type: pyroscope, url: http://x, tls: {cert_file: /c}}]\n",
                       "sinks[0].tls.key_file", "required when cert_file is set");
}

TEST_CASE("profiles validation") {
  require_single_error("profiles:\n  memroy: {enabled: false}\n", "profiles.memroy",
                       "unknown profile type \"memroy\" (did you mean \"memory\"?)");
  require_single_error("profiles:\n  heap: {}\n", "profiles.heap", "known: process_cpu, memory");
  require_single_error("profiles: {goroutine: {delta: true}}\n", "profiles.goroutine.delta",
                       "only cumulative profile types");
  require_single_error("profiles: {godeltaprof_mutex: {delta: true}}\n",
                       "profiles.godeltaprof_mutex.delta", "already serve deltas");
  require_single_error("profiles: {block: {path: debug/pprof/block}}\n", "profiles.block.path",
                       "must start with \"/\"");
  require_single_error("profiles: {block: {enable: true}}\n", "profiles.block.enable",
                       "(did you mean \"enabled\"?)");
  const Config c = parse_ok("profiles: {goroutine: {delta: false}, mutex: {enabled: false}}\n");
  CHECK_FALSE(c.profile(ProfileKind::mutex).enabled);
  CHECK(c.profile(ProfileKind::mutex).delta);
  CHECK(c.profile(ProfileKind::block).enabled);
}

TEST_CASE("label names are checked") {
  require_single_error("scrape: {external_labels: {__cluster: a}}\n",
                       "scrape.external_labels.__cluster", "reserved");
  require_single_error("scrape: {external_labels: {cluster-name: a}}\n",
                       "scrape.external_labels.cluster-name", "[a-zA-Z_][a-zA-Z0-9_]*");
  require_single_error("discovery: {static: [{targets: [\"a:1\"], labels: {1abc: x}}]}\n",
                       "discovery.static[0].labels.1abc", "invalid label name \"1abc\"");
  CHECK(parse_ok("scrape: {external_labels: {_ok: a, B2: b}}\n").scrape.external_labels.size() ==
        2);
}

TEST_CASE("kubernetes namespaces and server address") {
  require_single_error("discovery: {kubernetes: {namespaces: [Default]}}\n",
                       "discovery.kubernetes.namespaces[0]", "invalid namespace name");
  require_single_error("server: {listen_address: 9750}\n", "server.listen_address", "missing port");
  CHECK(parse_ok("server: {listen_address: \"127.0.0.1:0\"}\n").server.listen_address ==
        "127.0.0.1:0");
  CHECK(parse_ok("server: {listen_address: \"[::]:9750\"}\n").server.listen_address == "[::]:9750");
}

TEST_CASE("YAML syntax errors carry line and column") {
  LoadResult r = parse("scrape:\n  interval: 15s\n  timeout: [1s\n", fake_env());
  INFO(dump(r.errors));
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == "<yaml>");
  CHECK_THAT(r.errors[0].problem, Catch::Contains("line ") && Catch::Contains("column "));
  CHECK_FALSE(r.config);

  r = parse("scrape:\n\tinterval: 15s\n", fake_env());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == "<yaml>");

  require_single_error("a: 1\n---\nb: 2\n", "<yaml>", "one YAML document");
}

TEST_CASE("duplicate keys are errors") {
  require_single_error("scrape:\n  interval: 15s\n  interval: 30s\n", "scrape.interval",
                       "duplicate field");
}

TEST_CASE("every problem in a document is reported") {
  LoadResult r = parse(R"(
scrape:
  intervall: 10s
  timeout: -1s
  max_concurrent: 0
profiles:
  memroy: {}
discovery:
  static:
    - targets: ["a:1", "b"]
      labels: {__x: y}
sinks:
  - {name: a, type: file}
  - {name: a, type: nope}
shutdown_timeout: forever
)",
                       fake_env());
  INFO(dump(r.errors));
  CHECK_FALSE(r.config);
  CHECK(has_error(r, "scrape.intervall", "did you mean \"interval\""));
  CHECK(has_error(r, "scrape.timeout", "must be positive"));
  CHECK(has_error(r, "scrape.max_concurrent", "at least 1"));
  CHECK(has_error(r, "profiles.memroy", "unknown profile type"));
  CHECK(has_error(r, "discovery.static[0].targets[1]", "missing port"));
  CHECK(has_error(r, "discovery.static[0].labels.__x", "reserved"));
  CHECK(has_error(r, "sinks[0].dir", "required"));
  CHECK(has_error(r, "sinks[1].name", "duplicate"));
  CHECK(has_error(r, "sinks[1].type", "unknown sink type"));
  CHECK(has_error(r, "shutdown_timeout", "invalid duration"));
  CHECK(r.errors.size() == 10);
  CHECK(r.errors[0].to_string() ==
        "config error: scrape.intervall: unknown field \"intervall\" (did you mean \"interval\"?)");
}

TEST_CASE("load_file reports unreadable files") {
  LoadResult r = load_file("/nonexistent/pprofd.yaml", fake_env());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == "config.file");
  CHECK(r.errors[0].problem == "cannot read /nonexistent/pprofd.yaml: No such file or directory");
  r = load_file("/", fake_env());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == "config.file");
  CHECK_THAT(r.errors[0].problem, Catch::Contains("Is a directory"));
}
