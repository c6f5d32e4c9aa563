#pragma once
// The validated configuration (design §3). Everything here has passed validation: durations are
// positive where they must be, addresses parse, and sink types are known.

#include "pprofd/common/units.hpp"
#include "pprofd/model/labels.hpp"
#include "pprofd/model/profile_type.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pprofd::config {

using namespace std::chrono_literals;

struct TlsConfig {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
  bool insecure_skip_verify = false;

  friend bool operator==(const TlsConfig&, const TlsConfig&) = default;
};

struct ScrapeConfig {
  Duration interval = 15s;
  Duration timeout = 10s;
  Duration cpu_duration = 14s;  // whole seconds, >= 1s, < interval; default interval - 1s
  std::uint64_t max_concurrent = 4096;
  std::uint64_t body_size_limit = 64ULL << 20;
  model::Labels external_labels;
  TlsConfig tls;
  std::string bearer_token_file;

  friend bool operator==(const ScrapeConfig&, const ScrapeConfig&) = default;
};

struct ProfileConfig {
  model::ProfileKind kind;
  bool enabled = false;
  std::string path;
  bool delta = false;  // only meaningful for cumulative kinds (memory, mutex, block)

  friend bool operator==(const ProfileConfig&, const ProfileConfig&) = default;
};

struct PodLabelsConfig {
  std::vector<std::string> include{"*"};
  std::vector<std::string> exclude{"pod-template-hash", "controller-revision-hash",
                                   "pod-template-generation"};
  friend bool operator==(const PodLabelsConfig&, const PodLabelsConfig&) = default;
};

struct ShardConfig {
  std::uint64_t count = 1;
  std::uint64_t index = 0;
  friend bool operator==(const ShardConfig&, const ShardConfig&) = default;
};

struct KubernetesDiscoveryConfig {
  bool enabled = false;
  std::string kubeconfig;
  std::vector<std::string> namespaces;
  std::string label_selector;
  std::string field_selector;
  std::string node_name;
  PodLabelsConfig pod_labels;
  ShardConfig shard;
  friend bool operator==(const KubernetesDiscoveryConfig&,
                         const KubernetesDiscoveryConfig&) = default;
};

struct StaticConfig {
  std::vector<std::string> targets;  // host:port, each validated
  model::Labels labels;
  std::string scheme = "http";  // http or https (pprofd extension: static targets behind TLS)
  friend bool operator==(const StaticConfig&, const StaticConfig&) = default;
};

enum class SinkType { pyroscope, pyroscope_ingest, profefe, file };

struct QueueConfig {
  std::uint64_t max_bytes = 256ULL << 20;
  Duration min_backoff = 500ms;
  Duration max_backoff = 30s;
  std::uint64_t max_retries = 10;
  friend bool operator==(const QueueConfig&, const QueueConfig&) = default;
};

struct BasicAuthConfig {
  std::string username;
  std::string password_file;
  friend bool operator==(const BasicAuthConfig&, const BasicAuthConfig&) = default;
};

struct SinkConfig {
  std::string name;
  SinkType type = SinkType::file;
  // remote sinks (pyroscope, pyroscope_ingest, profefe)
  std::string url;  // http(s)://host[:port][/prefix], trailing '/' removed so paths can be appended
  std::string tenant_id;
  std::map<std::string, std::string> headers;
  BasicAuthConfig basic_auth;
  std::string bearer_token_file;
  TlsConfig tls;
  Duration timeout = 10s;
  QueueConfig queue;
  // file sink
  std::string dir;
  std::uint64_t max_bytes = 1ULL << 30;
  Duration max_age = 24h;

  friend bool operator==(const SinkConfig&, const SinkConfig&) = default;
};

struct ServerConfig {
  std::string listen_address = "127.0.0.1:9750";
  bool per_target_metrics = false;
  friend bool operator==(const ServerConfig&, const ServerConfig&) = default;
};

struct Config {
  ScrapeConfig scrape;
  std::vector<ProfileConfig> profiles;  // one per model::profile_types entry, in that order
  KubernetesDiscoveryConfig kubernetes;
  std::vector<StaticConfig> static_configs;
  std::vector<SinkConfig> sinks;
  ServerConfig server;
  Duration shutdown_timeout = 10s;

  const ProfileConfig& profile(model::ProfileKind kind) const {
    return profiles[static_cast<std::size_t>(kind)];
  }
  friend bool operator==(const Config&, const Config&) = default;
};

// One problem, printed as `config error: <field>: <problem>`.
struct ConfigError {
  std::string field;  // dotted path, list indices in brackets: sinks[1].queue.max_bytes
  std::string problem;
  std::string to_string() const { return "config error: " + field + ": " + problem; }
};

struct LoadResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // every problem found, not just the first
};

// Returns the value of an environment variable, or nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;
EnvLookup process_env();

// Expands ${VAR}, ${VAR:-default} (default also when VAR is empty, as in the shell) and $$ -> $.
// A `$` not followed by `{` or `$` is kept. An unset ${VAR} without default is an error.
Result<std::string> expand_env(std::string_view text, const EnvLookup& env);

// All defaults of design §3, with one profiles entry per model::profile_types.
Config default_config();

// Parses YAML text, expanding ${VAR} / ${VAR:-default} inside each scalar value so that an unset
// ${VAR} is an error naming the field it appears in. YAML syntax errors have field `<yaml>`.
LoadResult parse(std::string_view yaml_text, const EnvLookup& env);
// Reads the file, then parse(); an unreadable file is an error with field "config.file".
LoadResult load_file(const std::string& path, const EnvLookup& env);

// Splits host:port (host may be a name, IPv4 or [ipv6]); returns nullopt and sets *why when
// malformed. The host is returned without brackets. Port 0 ("any free port") is accepted only
// with allow_port_zero, for listen addresses.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<HostPort> parse_host_port(std::string_view address, std::string* why = nullptr,
                                        bool allow_port_zero = false);

}  // namespace pprofd::config
