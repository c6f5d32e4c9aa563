#include "pprofd/config/config.hpp"

#include "reader.hpp"
#include "validate.hpp"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace pprofd::config {
namespace {

using detail::child_path;
using detail::Reader;

constexpr std::array<std::string_view, 4> sink_type_names{"pyroscope", "pyroscope_ingest",
                                                          "profefe", "file"};

// Which sink fields apply to which sink types; `name` and `type` apply to all.
struct SinkFieldScope {
  std::string_view key;
  bool remote;
  bool file;
};
constexpr std::array<SinkFieldScope, 13> sink_field_scopes{{
    {"name", true, true},
    {"type", true, true},
    {"url", true, false},
    {"tenant_id", true, false},
    {"headers", true, false},
    {"basic_auth", true, false},
    {"bearer_token_file", true, false},
    {"tls", true, false},
    {"timeout", true, false},
    {"queue", true, false},
    {"dir", false, true},
    {"max_bytes", false, true},
    {"max_age", false, true},
}};

std::string list_names(std::span<const std::string_view> names) {
  std::string out;
  for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

std::optional<std::string> check_path(const std::string& path) {
  if (path.empty() || path.front() != '/') return "must start with \"/\", got \"" + path + "\"";
  return std::nullopt;
}

std::optional<std::string> check_scheme(const std::string& scheme) {
  if (scheme != "http" && scheme != "https") return "must be http or https, got \"" + scheme + "\"";
  return std::nullopt;
}

std::optional<std::string> check_target(const std::string& target) {
  std::string why;
  if (!parse_host_port(target, &why)) return "invalid address \"" + target + "\": " + why;
  return std::nullopt;
}

std::optional<std::string> check_listen_address(const std::string& address) {
  std::string why;
  if (!parse_host_port(address, &why, /*allow_port_zero=*/true))
    return "invalid address \"" + address + "\": " + why;
  return std::nullopt;
}

std::optional<std::string> check_sink_name(const std::string& name) {
  if (name.empty()) return "must not be empty";
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return "invalid sink name \"" + name + "\": must match [a-zA-Z0-9_-]+";
  }
  return std::nullopt;
}

std::optional<std::string> check_header_value(const std::string& value) {
  if (value.find_first_of("\r\n") != std::string::npos) return "must not contain line breaks";
  return std::nullopt;
}

// The schema of design §3, one function per section. Each walks its map with a table of fields
// and then applies the rules that relate fields to each other.
class ConfigReader {
 public:
  explicit ConfigReader(const EnvLookup& env) : r_(env) {}

  LoadResult read(const YAML::Node& root) {
    Config config = default_config();
    if (!root.IsNull() && !root.IsMap()) {
      r_.error("<yaml>", "the top level must be a map of sections");
    } else {
      bool scrape_read = false;
      r_.walk_map(
          root, "",
          {
              {"scrape",
               [&](const YAML::Node& n, const std::string& p) {
                 read_scrape(n, p, config.scrape);
                 scrape_read = true;
               }},
              {"profiles", [&](const YAML::Node& n,
                               const std::string& p) { read_profiles(n, p, config.profiles); }},
              {"discovery",
               [&](const YAML::Node& n, const std::string& p) { read_discovery(n, p, config); }},
              {"sinks",
               [&](const YAML::Node& n, const std::string& p) { read_sinks(n, p, config.sinks); }},
              {"server",
               [&](const YAML::Node& n, const std::string& p) {
                 r_.walk_map(
                     n, p,
                     {
                         {"listen_address",
                          r_.string_field(config.server.listen_address, check_listen_address)},
                         {"per_target_metrics", r_.bool_field(config.server.per_target_metrics)},
                     });
               }},
              {"shutdown_timeout", r_.duration_field(config.shutdown_timeout)},
          });
      // Without a scrape section the default interval still has to yield a valid default.
      if (!scrape_read) check_cpu_duration(config.scrape, false);
    }
    LoadResult result;
    result.errors = r_.take_errors();
    if (result.errors.empty()) result.config = std::move(config);
    return result;
  }

 private:
  Reader::Handler tls_field(TlsConfig& tls) {
    return [this, &tls](const YAML::Node& n, const std::string& p) {
      r_.walk_map(n, p,
                  {
                      {"ca_file", r_.string_field(tls.ca_file)},
                      {"cert_file", r_.string_field(tls.cert_file)},
                      {"key_file", r_.string_field(tls.key_file)},
                      {"server_name", r_.string_field(tls.server_name)},
                      {"insecure_skip_verify", r_.bool_field(tls.insecure_skip_verify)},
                  });
      if (tls.cert_file.empty() != tls.key_file.empty() && !r_.has_error_under(p)) {
        const bool has_cert = !tls.cert_file.empty();
        r_.error(child_path(p, has_cert ? "key_file" : "cert_file"),
                 std::string("required when ") + (has_cert ? "cert_file" : "key_file") +
                     " is set (a client certificate needs its key)");
      }
    };
  }

  void read_scrape(const YAML::Node& node, const std::string& path, ScrapeConfig& out) {
    bool cpu_duration_set = false;
    r_.walk_map(node, path,
                {
                    {"interval", r_.duration_field(out.interval)},
                    {"timeout", r_.duration_field(out.timeout)},
                    {"cpu_duration",
                     [&](const YAML::Node& n, const std::string& p) {
                       cpu_duration_set = !n.IsNull();
                       r_.read_positive_duration(n, p, out.cpu_duration);
                     }},
                    {"max_concurrent", r_.uint_field(out.max_concurrent, 1)},
                    {"body_size_limit", r_.size_field(out.body_size_limit, 1024)},
                    {"external_labels", r_.labels_field(out.external_labels)},
                    {"tls", tls_field(out.tls)},
                    {"bearer_token_file", r_.string_field(out.bearer_token_file)},
                });
    // Checked here rather than at the end so its error stays with the other scrape errors.
    check_cpu_duration(out, cpu_duration_set);
  }

  void check_cpu_duration(ScrapeConfig& scrape, bool cpu_duration_set) {
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    if (r_.has_error_under("scrape.interval") || r_.has_error_under("scrape.cpu_duration")) return;
    const std::string path = "scrape.cpu_duration";
    const std::string interval = format_duration(scrape.interval);
    if (!cpu_duration_set) {
      // Go takes whole seconds; rounding down keeps at least a second between pulls.
      const Duration fallback = duration_cast<seconds>(scrape.interval - 1s);
      if (fallback < 1s)
        r_.error(path, "the default (scrape.interval - 1s) is below 1s for scrape.interval (" +
                           interval + "); set cpu_duration or raise the interval");
      else
        scrape.cpu_duration = fallback;
      return;
    }
    const std::string given = format_duration(scrape.cpu_duration);
    if (scrape.cpu_duration < 1s)
      r_.error(path, "must be at least 1s, got " + given);
    else if (scrape.cpu_duration % 1s != Duration{0})
      r_.error(path, "must be whole seconds (Go takes ?seconds=N), got " + given);
    if (scrape.cpu_duration >= scrape.interval)
      r_.error(path, "must be less than scrape.interval (" + interval + "), got " + given);
  }

  void read_profiles(const YAML::Node& node, const std::string& path,
                     std::vector<ProfileConfig>& profiles) {
    std::vector<std::string_view> names;
    for (const auto& t : model::profile_types) names.push_back(t.name);
    r_.for_each_entry(
        node, path,
        [&](const std::string& key, const YAML::Node& value, const std::string& entry_path) {
          const model::ProfileTypeInfo* type = model::find_profile_type(key);
          if (type == nullptr) {
            std::string hint = detail::did_you_mean(key, names);
            if (hint.empty()) hint = " (known: " + list_names(names) + ")";
            r_.error(entry_path, "unknown profile type \"" + key + "\"" + hint);
            return;
          }
          ProfileConfig& profile = profiles[static_cast<std::size_t>(type->kind)];
          r_.walk_map(value, entry_path,
                      {
                          {"enabled", r_.bool_field(profile.enabled)},
                          {"path", r_.string_field(profile.path, check_path)},
                          {"delta",
                           [&](const YAML::Node& n, const std::string& p) {
                             bool delta = profile.delta;
                             if (!r_.read_bool(n, p, delta)) return;
                             if (delta && !type->cumulative) {
                               r_.error(p, type->godeltaprof
                                               ? "godeltaprof endpoints already serve deltas"
                                               : "only cumulative profile types (memory, mutex, "
                                                 "block) can be turned into deltas");
                               return;
                             }
                             profile.delta = delta;
                           }},
                      });
        });
  }

  void read_discovery(const YAML::Node& node, const std::string& path, Config& config) {
    r_.walk_map(
        node, path,
        {
            {"kubernetes", [&](const YAML::Node& n,
                               const std::string& p) { read_kubernetes(n, p, config.kubernetes); }},
            {"static", [&](const YAML::Node& n,
                           const std::string& p) { read_static(n, p, config.static_configs); }},
        });
  }

  void read_kubernetes(const YAML::Node& node, const std::string& path,
                       KubernetesDiscoveryConfig& out) {
    auto namespace_check = [](const std::string& ns) { return detail::check_namespace(ns); };
    r_.walk_map(node, path,
                {
                    {"enabled", r_.bool_field(out.enabled)},
                    {"kubeconfig", r_.string_field(out.kubeconfig)},
                    {"namespaces", r_.strings_field(out.namespaces, namespace_check)},
                    {"label_selector", r_.string_field(out.label_selector)},
                    {"field_selector", r_.string_field(out.field_selector)},
                    {"node_name", r_.string_field(out.node_name)},
                    {"pod_labels",
                     [&](const YAML::Node& n, const std::string& p) {
                       r_.walk_map(n, p,
                                   {
                                       {"include", r_.strings_field(out.pod_labels.include)},
                                       {"exclude", r_.strings_field(out.pod_labels.exclude)},
                                   });
                     }},
                    {"shard",
                     [&](const YAML::Node& n, const std::string& p) {
                       r_.walk_map(n, p,
                                   {
                                       {"count", r_.uint_field(out.shard.count, 1)},
                                       {"index", r_.uint_field(out.shard.index, 0)},
                                   });
                       if (!r_.has_error_under(p) && out.shard.index >= out.shard.count)
                         r_.error(child_path(p, "index"), "must be less than shard.count (" +
                                                              std::to_string(out.shard.count) +
                                                              "), got " +
                                                              std::to_string(out.shard.index));
                     }},
                });
  }

  void read_static(const YAML::Node& node, const std::string& path,
                   std::vector<StaticConfig>& out) {
    r_.for_each_item(node, path, [&](const YAML::Node& item, const std::string& item_path) {
      StaticConfig config;
      r_.walk_map(item, item_path,
                  {
                      {"targets", r_.strings_field(config.targets, check_target)},
                      {"labels", r_.labels_field(config.labels)},
                      {"scheme", r_.string_field(config.scheme, check_scheme)},
                  });
      const std::string targets_path = child_path(item_path, "targets");
      if (config.targets.empty() && !r_.has_error_under(item_path))
        r_.error(targets_path, "at least one host:port target is required");
      out.push_back(std::move(config));
    });
  }

  void read_sinks(const YAML::Node& node, const std::string& path, std::vector<SinkConfig>& out) {
    std::map<std::string, std::string> first_path_by_name;
    r_.for_each_item(node, path, [&](const YAML::Node& item, const std::string& item_path) {
      SinkConfig sink;
      std::optional<SinkType> type;
      const auto present = r_.walk_map(
          item, item_path,
          {
              {"name", r_.string_field(sink.name, check_sink_name)},
              {"type",
               [&](const YAML::Node& n, const std::string& p) {
                 std::string text;
                 if (!r_.read_string(n, p, text)) return;
                 for (std::size_t i = 0; i < sink_type_names.size(); ++i)
                   if (sink_type_names[i] == text) type = static_cast<SinkType>(i);
                 if (!type)
                   r_.error(p, "unknown sink type \"" + text + "\"" +
                                   detail::did_you_mean(text, sink_type_names) + "; use one of " +
                                   list_names(sink_type_names));
               }},
              {"url", r_.string_field(sink.url)},
              {"tenant_id", r_.string_field(sink.tenant_id)},
              {"headers",
               [&](const YAML::Node& n, const std::string& p) {
                 r_.read_string_map(n, p, sink.headers, detail::check_header_name,
                                    check_header_value);
               }},
              {"basic_auth",
               [&](const YAML::Node& n, const std::string& p) {
                 r_.walk_map(n, p,
                             {
                                 {"username", r_.string_field(sink.basic_auth.username)},
                                 {"password_file", r_.string_field(sink.basic_auth.password_file)},
                             });
               }},
              {"bearer_token_file", r_.string_field(sink.bearer_token_file)},
              {"tls", tls_field(sink.tls)},
              {"timeout", r_.duration_field(sink.timeout)},
              {"queue",
               [&](const YAML::Node& n, const std::string& p) {
                 QueueConfig& q = sink.queue;
                 r_.walk_map(n, p,
                             {
                                 {"max_bytes", r_.size_field(q.max_bytes, 1)},
                                 {"min_backoff", r_.duration_field(q.min_backoff)},
                                 {"max_backoff", r_.duration_field(q.max_backoff)},
                                 {"max_retries", r_.uint_field(q.max_retries, 0)},
                             });
                 if (!r_.has_error_under(p) && q.max_backoff < q.min_backoff)
                   r_.error(child_path(p, "max_backoff"), "must not be less than min_backoff (" +
                                                              format_duration(q.min_backoff) + ")");
               }},
              {"dir", r_.string_field(sink.dir)},
              {"max_bytes", r_.size_field(sink.max_bytes, 1)},
              {"max_age", r_.duration_field(sink.max_age)},
          });

      check_sink_name_unique(sink.name, item_path, first_path_by_name);
      const std::string type_path = child_path(item_path, "type");
      if (!type) {
        if (!r_.has_error_under(type_path))
          r_.error(type_path, "required; use one of " + list_names(sink_type_names));
      } else {
        sink.type = *type;
        check_sink_fields(sink, present, item_path);
      }
      out.push_back(std::move(sink));
    });
  }

  void check_sink_name_unique(const std::string& name, const std::string& item_path,
                              std::map<std::string, std::string>& first_path_by_name) {
    const std::string name_path = child_path(item_path, "name");
    if (r_.has_error_under(name_path)) return;
    if (name.empty()) {
      r_.error(name_path, "required (a unique name for metrics and logs)");
      return;
    }
    auto [it, inserted] = first_path_by_name.emplace(name, item_path);
    if (!inserted)
      r_.error(name_path, "duplicate sink name \"" + name + "\" (also " + it->second + ")");
  }

  void check_sink_fields(SinkConfig& sink, const std::vector<std::string_view>& present,
                         const std::string& path) {
    const bool remote = sink.type != SinkType::file;
    const std::string_view type_name = sink_type_names[static_cast<std::size_t>(sink.type)];
    for (std::string_view key : present) {
      for (const auto& scope : sink_field_scopes) {
        if (scope.key == key && !(remote ? scope.remote : scope.file))
          r_.error(child_path(path, key), "field \"" + std::string(key) +
                                              "\" does not apply to sink type " +
                                              std::string(type_name));
      }
    }
    if (!remote) {
      const std::string dir_path = child_path(path, "dir");
      if (sink.dir.empty() && !r_.has_error_under(dir_path))
        r_.error(dir_path, "required for sink type file");
      return;
    }

    const std::string url_path = child_path(path, "url");
    if (!r_.has_error_under(url_path)) {
      if (sink.url.empty()) {
        r_.error(url_path, "required for sink type " + std::string(type_name));
      } else if (auto problem = detail::check_http_url(sink.url)) {
        r_.error(url_path, "invalid URL \"" + sink.url + "\": " + *problem);
      } else {
        while (sink.url.ends_with('/')) sink.url.pop_back();
      }
    }
    const std::string auth_path = child_path(path, "basic_auth");
    const BasicAuthConfig& auth = sink.basic_auth;
    if (!r_.has_error_under(auth_path)) {
      if (!auth.username.empty() && auth.password_file.empty())
        r_.error(child_path(auth_path, "password_file"), "required when username is set");
      if (auth.username.empty() && !auth.password_file.empty())
        r_.error(child_path(auth_path, "username"), "required when password_file is set");
    }
    if (!auth.username.empty() && !sink.bearer_token_file.empty())
      r_.error(child_path(path, "bearer_token_file"), "cannot be used together with basic_auth");
  }

  Reader r_;
};

}  // namespace

Config default_config() {
  Config config;
  for (const auto& t : model::profile_types)
    config.profiles.push_back(
        ProfileConfig{t.kind, t.default_enabled, std::string(t.default_path), t.cumulative});
  return config;
}

LoadResult parse(std::string_view yaml_text, const EnvLookup& env) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    std::string where;
    if (!e.mark.is_null())
      where = "line " + std::to_string(e.mark.line + 1) + ", column " +
              std::to_string(e.mark.column + 1) + ": ";
    return LoadResult{std::nullopt, {ConfigError{"<yaml>", where + e.msg}}};
  }
  if (documents.size() > 1)
    return LoadResult{std::nullopt,
                      {ConfigError{"<yaml>", "expected one YAML document, found " +
                                                 std::to_string(documents.size())}}};
  const YAML::Node root = documents.empty() ? YAML::Node() : documents.front();
  try {
    return ConfigReader(env).read(root);
  } catch (const YAML::Exception& e) {
    // Reading only inspects node kinds before access, so this is a bug; still report, not crash.
    return LoadResult{std::nullopt, {ConfigError{"<yaml>", e.what()}}};
  }
}

LoadResult load_file(const std::string& path, const EnvLookup& env) {
  auto read_error = [&](int err) {
    return LoadResult{
        std::nullopt,
        {ConfigError{"config.file", "cannot read " + path + ": " + std::strerror(err)}}};
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) return read_error(errno);
  std::string text;
  char buffer[65536];
  while (true) {
    const std::size_t n = std::fread(buffer, 1, sizeof buffer, file.get());
    text.append(buffer, n);
    if (n < sizeof buffer) break;
  }
  // A directory opens fine and fails on the first read with EISDIR.
  if (std::ferror(file.get())) return read_error(errno);
  return parse(text, env);
}

}  // namespace pprofd::config
