#include "pprofd/discovery/pods.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <variant>

namespace pprofd::discovery {

namespace {

using model::ProfileKind;

// Pyroscope's max_label_names_per_series default (reference protocols §1.4).
constexpr std::size_t max_label_names = 30;

// Names annotations use for a profile type. Both spellings are accepted in every family: the
// Grafana convention says `memory`/`goroutine`, the legacy Pyroscope one `mem`/`goroutines`, and
// users mix them up.
struct TypeName {
  std::string_view name;
  ProfileKind kind;
};
constexpr std::array<TypeName, 7> type_names{{
    {"cpu", ProfileKind::process_cpu},
    {"memory", ProfileKind::memory},
    {"mem", ProfileKind::memory},
    {"goroutine", ProfileKind::goroutine},
    {"goroutines", ProfileKind::goroutine},
    {"mutex", ProfileKind::mutex},
    {"block", ProfileKind::block},
}};

// The kinds annotations can switch on and off, with their endpoint under a kube-profefe base path.
struct NamedKind {
  ProfileKind kind;
  std::string_view profefe_suffix;
};
constexpr std::array<NamedKind, 5> named_kinds{{
    {ProfileKind::process_cpu, "/profile"},
    {ProfileKind::memory, "/allocs"},
    {ProfileKind::goroutine, "/goroutine"},
    {ProfileKind::mutex, "/mutex"},
    {ProfileKind::block, "/block"},
}};

// What an annotation sets. port/port_name share one precedence slot, as do path/base_path: a
// Grafana `cpu.port_name` must beat a `pyroscope.io/port` just as a Grafana `cpu.port` would.
enum class Setting { scrape, port, port_name, scheme, path, base_path };
enum class Slot { scrape, port, scheme, path };

constexpr Slot slot_of(Setting s) {
  switch (s) {
    case Setting::scrape:
      return Slot::scrape;
    case Setting::port:
    case Setting::port_name:
      return Slot::port;
    case Setting::scheme:
      return Slot::scheme;
    case Setting::path:
    case Setting::base_path:
      return Slot::path;
  }
  return Slot::scrape;
}

// `{}` in a key stands for one of type_names; a key without it applies to every type.
struct KeyRule {
  std::string_view key;
  Setting setting;
};

// Within a family, earlier rules of the same slot win.
constexpr KeyRule grafana_rules[] = {
    {"profiles.grafana.com/{}.scrape", Setting::scrape},
    {"profiles.grafana.com/{}.port", Setting::port},
    {"profiles.grafana.com/{}.port_name", Setting::port_name},
    {"profiles.grafana.com/{}.scheme", Setting::scheme},
    {"profiles.grafana.com/{}.path", Setting::path},
};
constexpr KeyRule pyroscope_rules[] = {
    {"pyroscope.io/profile-{}-enabled", Setting::scrape},
    {"pyroscope.io/profile-{}", Setting::scrape},
    {"pyroscope.io/port", Setting::port},
    {"pyroscope.io/scheme", Setting::scheme},
    {"pyroscope.io/profile-{}-path", Setting::path},
};
constexpr KeyRule profefe_rules[] = {
    {"profefe.com/port", Setting::port},
    {"profefe.com/path", Setting::base_path},
};

struct Family {
  std::string_view enable_key;  // empty: any per-type scrape key set to "true" enables it
  std::uint16_t default_port;   // 0: none; otherwise used when this family enabled the pod
  std::span<const KeyRule> rules;
};

// Most specific first (design §4): this order is the precedence of every setting.
constexpr std::array<Family, 3> families{{
    {"", 0, grafana_rules},
    {"pyroscope.io/scrape", 0, pyroscope_rules},
    {"profefe.com/enable", 6060, profefe_rules},
}};

// Sources of service_name, in order, before the pod-label and namespace/container fallbacks.
constexpr std::array<std::string_view, 5> service_name_annotations{{
    "profiles.grafana.com/service_name",
    "pyroscope.io/service_name",
    "pyroscope.io/application-name",
    "profefe.com/service",
    "resource.opentelemetry.io/service.name",
}};
constexpr std::array<std::string_view, 2> service_name_pod_labels{
    {"app.kubernetes.io/name", "app"}};

constexpr std::array<std::string_view, 6> fixed_label_names{{
    model::label_service_name,
    model::label_namespace,
    model::label_pod,
    model::label_container,
    model::label_node,
    model::label_instance,
}};

std::string expand_key(std::string_view key, std::string_view type) {
  std::string out(key);
  if (auto at = out.find("{}"); at != std::string::npos) out.replace(at, 2, type);
  return out;
}

const std::string* annotation(const kube::Pod& pod, const std::string& key) {
  auto it = pod.annotations.find(key);
  return it == pod.annotations.end() ? nullptr : &it->second;
}

// One annotation that decided a setting; `key` is kept for error details.
struct Found {
  std::string key;
  std::string value;
  Setting setting;
};

std::string quoted(const Found& f) { return f.key + "=\"" + f.value + "\""; }

bool family_enabled(const kube::Pod& pod, const Family& family) {
  if (!family.enable_key.empty()) {
    const auto* value = annotation(pod, std::string(family.enable_key));
    return value && *value == "true";
  }
  for (const auto& rule : family.rules) {
    if (rule.setting != Setting::scrape) continue;
    for (const auto& type : type_names) {
      const auto* value = annotation(pod, expand_key(rule.key, type.name));
      if (value && *value == "true") return true;
    }
  }
  return false;
}

// The winning annotation for one setting of one kind, walking families by precedence.
std::optional<Found> lookup(const kube::Pod& pod, Slot slot, ProfileKind kind,
                            const std::array<bool, families.size()>& enabled) {
  for (std::size_t f = 0; f < families.size(); ++f) {
    const Family& family = families[f];
    for (const auto& rule : family.rules) {
      if (slot_of(rule.setting) != slot) continue;
      if (rule.key.find("{}") == std::string_view::npos) {
        std::string key(rule.key);
        if (const auto* value = annotation(pod, key)) return Found{key, *value, rule.setting};
        continue;
      }
      for (const auto& type : type_names) {
        if (type.kind != kind) continue;
        std::string key = expand_key(rule.key, type.name);
        if (const auto* value = annotation(pod, key)) return Found{key, *value, rule.setting};
      }
    }
    if (slot == Slot::port && family.default_port != 0 && enabled[f])
      return Found{std::string(family.enable_key), std::to_string(family.default_port),
                   Setting::port};
  }
  return std::nullopt;
}

// Config::profile() indexes blindly; a hand-built Config may have no profiles at all.
config::ProfileConfig profile_config(const config::Config& config, ProfileKind kind) {
  const auto index = static_cast<std::size_t>(kind);
  if (index < config.profiles.size()) return config.profiles[index];
  const auto& t = model::info(kind);
  return {kind, t.default_enabled, std::string(t.default_path), t.cumulative};
}

// godeltaprof_memory -> memory: the annotation type that controls (and configures) a kind.
ProfileKind annotation_kind(ProfileKind kind) {
  const auto* base = model::find_profile_type(model::info(kind).forwarded_name);
  return base ? base->kind : kind;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value < 1 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

bool is_tcp(const kube::ContainerPort& port) {
  return port.protocol.empty() || port.protocol == "TCP";
}

bool valid_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  if (path.find("..") != std::string_view::npos) return false;
  return std::none_of(path.begin(), path.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '?' || c == '#' || std::isspace(u) || std::iscntrl(u);
  });
}

constexpr std::string_view path_rule = "must start with / and contain no ?, #, whitespace or ..";

struct Failure {
  std::string reason;
  std::string detail;
  auto operator<=>(const Failure&) const = default;
};

struct Endpoint {
  std::uint16_t port = 0;
  std::string container;  // the container declaring the port, empty when none does
};

// Resolves where a kind is served. The pod's only declared TCP port is a safe guess; with
// several (or none) any guess could scrape the wrong server, so the pod must say.
std::variant<Endpoint, Failure> resolve_port(const kube::Pod& pod, const std::optional<Found>& f) {
  if (!f) {
    std::vector<Endpoint> declared;
    for (const auto& c : pod.containers)
      for (const auto& p : c.ports)
        if (is_tcp(p) && p.container_port != 0) declared.push_back({p.container_port, c.name});
    if (declared.size() == 1) return declared.front();
    return Failure{"no_port", "no port annotation and the pod declares " +
                                  std::to_string(declared.size()) +
                                  " TCP container ports (need exactly one)"};
  }
  if (f->setting == Setting::port_name) {
    for (const auto& c : pod.containers)
      for (const auto& p : c.ports)
        if (!f->value.empty() && p.name == f->value) return Endpoint{p.container_port, c.name};
    return Failure{"unknown_port_name", quoted(*f) + ": no container declares a port by that name"};
  }
  const auto number = parse_port(f->value);
  if (!number) return Failure{"invalid_port", quoted(*f) + ": not a port number (1-65535)"};
  Endpoint endpoint{*number, {}};
  for (const auto& c : pod.containers)
    for (const auto& p : c.ports)
      if (p.container_port == *number && is_tcp(p) && endpoint.container.empty())
        endpoint.container = c.name;
  return endpoint;
}

std::variant<std::string, Failure> resolve_scheme(const std::optional<Found>& f) {
  if (!f) return std::string("http");
  if (f->value == "http" || f->value == "https") return f->value;
  return Failure{"invalid_scheme", quoted(*f) + ": must be http or https"};
}

std::variant<std::string, Failure> resolve_path(ProfileKind kind, const std::optional<Found>& f,
                                                const config::Config& config) {
  std::string path;
  if (!f) {
    path = profile_config(config, kind).path;
    if (!valid_path(path))
      return Failure{"invalid_path", "profiles." + std::string(model::info(kind).name) +
                                         ".path=\"" + path + "\": " + std::string(path_rule)};
    return path;
  }
  if (f->setting == Setting::base_path) {
    if (!valid_path(f->value))
      return Failure{"invalid_path", quoted(*f) + ": " + std::string(path_rule)};
    std::string_view base = f->value;
    while (!base.empty() && base.back() == '/') base.remove_suffix(1);
    const auto named = std::find_if(named_kinds.begin(), named_kinds.end(),
                                    [&](const NamedKind& n) { return n.kind == kind; });
    path = std::string(base) + std::string(named->profefe_suffix);
  } else {
    path = f->value;
  }
  if (!valid_path(path)) return Failure{"invalid_path", quoted(*f) + ": " + std::string(path_rule)};
  return path;
}

// `*` any run, `?` one character; iterative so hostile patterns cannot recurse deeply.
bool glob_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool matches_any(const std::vector<std::string>& patterns, std::string_view name) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return glob_match(p, name); });
}

bool is_fixed_label(std::string_view name) {
  return std::find(fixed_label_names.begin(), fixed_label_names.end(), name) !=
         fixed_label_names.end();
}

// Pod labels that may be forwarded, sanitized, sorted by forwarded name, capped so the final
// series stays within Pyroscope's label-name limit.
struct PodLabels {
  std::vector<std::pair<std::string, std::string>> kept;
  std::size_t truncated = 0;
};

PodLabels select_pod_labels(const kube::Pod& pod, const config::Config& config) {
  const auto& filter = config.kubernetes.pod_labels;
  const auto& external = config.scrape.external_labels;

  // Sorted by (sanitized, original) so that when two labels sanitize alike the choice is stable.
  std::vector<std::tuple<std::string, std::string, std::string>> candidates;
  for (const auto& [name, value] : pod.labels) {
    if (!matches_any(filter.include, name) || matches_any(filter.exclude, name)) continue;
    std::string sanitized = sanitize_label_name(name);
    // Fixed labels are never overridden; external ones would override anyway; `__` is reserved.
    if (is_fixed_label(sanitized) || external.contains(sanitized) || sanitized.starts_with("__"))
      continue;
    candidates.emplace_back(std::move(sanitized), name, value);
  }
  std::sort(candidates.begin(), candidates.end());

  // Reserve the fixed labels (all of them, so every target of the pod gets the same pod labels),
  // __name__, __delta__ and each external label that adds a name.
  std::size_t reserved = fixed_label_names.size() + 2;
  for (const auto& [name, value] : external)
    if (!is_fixed_label(name) && name != model::label_name && name != model::label_delta)
      ++reserved;
  const std::size_t budget = reserved >= max_label_names ? 0 : max_label_names - reserved;

  PodLabels out;
  for (auto& [sanitized, original, value] : candidates) {
    if (!out.kept.empty() && out.kept.back().first == sanitized) continue;
    if (out.kept.size() >= budget) {
      ++out.truncated;
      continue;
    }
    out.kept.emplace_back(std::move(sanitized), std::move(value));
  }
  return out;
}

std::string service_name(const kube::Pod& pod, const std::string& container) {
  for (const auto key : service_name_annotations) {
    const auto* value = annotation(pod, std::string(key));
    if (value && !value->empty()) return *value;
  }
  for (const auto key : service_name_pod_labels) {
    auto it = pod.labels.find(std::string(key));
    if (it != pod.labels.end() && !it->second.empty()) return it->second;
  }
  if (!container.empty()) return pod.namespace_ + "/" + container;
  // An undeclared port (common for pprof's 6060) still belongs to the only container there is.
  if (pod.containers.size() == 1 && !pod.containers.front().name.empty())
    return pod.namespace_ + "/" + pod.containers.front().name;
  return "unknown_service";
}

std::string host_port(const std::string& ip, std::uint16_t port) {
  if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + std::to_string(port);
  return ip + ":" + std::to_string(port);
}

std::optional<Failure> not_scrapable(const kube::Pod& pod) {
  if (pod.deleting) return Failure{"deleting", "metadata.deletionTimestamp is set"};
  if (pod.phase != "Running") return Failure{"not_running", "phase is \"" + pod.phase + "\""};
  if (pod.pod_ip.empty()) return Failure{"no_pod_ip", "status.podIP is empty"};
  // The scrape host is always the pod IP: anything but an IP literal would be resolved by name.
  in6_addr scratch{};
  if (inet_pton(AF_INET, pod.pod_ip.c_str(), &scratch) != 1 &&
      inet_pton(AF_INET6, pod.pod_ip.c_str(), &scratch) != 1)
    return Failure{"no_pod_ip", "status.podIP \"" + pod.pod_ip + "\" is not an IP address"};
  return std::nullopt;
}

}  // namespace

std::string sanitize_label_name(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) out += '_';
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '_';
  }
  return out;
}

bool is_candidate(const kube::Pod& pod) {
  return std::any_of(families.begin(), families.end(),
                     [&](const Family& f) { return family_enabled(pod, f); });
}

PodTargets pod_targets(const kube::Pod& pod, const config::Config& config) {
  PodTargets out;
  std::array<bool, families.size()> enabled{};
  for (std::size_t f = 0; f < families.size(); ++f) enabled[f] = family_enabled(pod, families[f]);
  if (std::none_of(enabled.begin(), enabled.end(), [](bool e) { return e; })) return out;

  std::set<Failure> failures;  // several kinds failing on one shared annotation report once
  auto finish = [&] {
    for (const auto& f : failures) out.dropped.push_back({pod.key(), f.reason, f.detail});
  };
  if (auto why = not_scrapable(pod)) {
    failures.insert(*why);
    finish();
    return out;
  }

  // Which kinds: explicit "true"s select exactly themselves; otherwise the config's defaults
  // minus explicit "false"s (and minus kinds whose switch is unreadable).
  enum class Choice { unset, on, off };
  std::map<ProfileKind, Choice> choice;
  bool any_on = false;
  for (const auto& named : named_kinds) {
    Choice c = Choice::unset;
    if (auto f = lookup(pod, Slot::scrape, named.kind, enabled)) {
      if (f->value == "true") {
        c = Choice::on;
        any_on = true;
      } else if (f->value == "false") {
        c = Choice::off;
      } else {
        c = Choice::off;
        failures.insert({"invalid_annotation", quoted(*f) + ": must be \"true\" or \"false\""});
      }
    }
    choice[named.kind] = c;
  }
  std::vector<ProfileKind> kinds;
  for (const auto& t : model::profile_types) {
    const Choice c = choice[annotation_kind(t.kind)];
    const bool wanted = any_on ? (c == Choice::on && !t.godeltaprof)
                               : (profile_config(config, t.kind).enabled && c != Choice::off);
    if (wanted) kinds.push_back(t.kind);
  }

  // (port, scheme) -> target: kinds served by one endpoint share one target.
  std::map<std::pair<std::uint16_t, std::string>, model::Target> by_endpoint;
  const PodLabels pod_labels = select_pod_labels(pod, config);
  for (const ProfileKind kind : kinds) {
    // godeltaprof endpoints live in the same process as their base type, so they share its
    // port and scheme; their path is only ever the config's.
    const ProfileKind settings_kind = annotation_kind(kind);
    const bool godelta = model::info(kind).godeltaprof;

    auto port = resolve_port(pod, lookup(pod, Slot::port, settings_kind, enabled));
    auto scheme = resolve_scheme(lookup(pod, Slot::scheme, settings_kind, enabled));
    auto path = resolve_path(
        kind, godelta ? std::nullopt : lookup(pod, Slot::path, settings_kind, enabled), config);
    bool failed = false;
    for (const Failure* f : {std::get_if<Failure>(&port), std::get_if<Failure>(&scheme),
                             std::get_if<Failure>(&path)}) {
      if (f) {
        failures.insert(*f);
        failed = true;
      }
    }
    if (failed) continue;

    const auto& endpoint = std::get<Endpoint>(port);
    const auto& scheme_value = std::get<std::string>(scheme);
    auto [it, inserted] = by_endpoint.try_emplace({endpoint.port, scheme_value});
    model::Target& target = it->second;
    if (inserted) {
      target.scheme = scheme_value;
      target.address = host_port(pod.pod_ip, endpoint.port);
      target.labels.set(model::label_service_name, service_name(pod, endpoint.container));
      target.labels.set(model::label_namespace, pod.namespace_);
      target.labels.set(model::label_pod, pod.name);
      // Empty values are left out: Pyroscope, like Prometheus, treats them as absent anyway.
      if (!endpoint.container.empty())
        target.labels.set(model::label_container, endpoint.container);
      if (!pod.node_name.empty()) target.labels.set(model::label_node, pod.node_name);
      target.labels.set(model::label_instance, target.address);
      for (const auto& [name, value] : pod_labels.kept) target.labels.set_if_absent(name, value);
    }
    target.profiles.push_back({kind, std::get<std::string>(path)});
  }

  for (auto& [key, target] : by_endpoint) out.targets.push_back(std::move(target));
  if (!out.targets.empty()) out.labels_truncated = pod_labels.truncated;
  finish();
  return out;
}

}  // namespace pprofd::discovery
