#pragma once
// Targets and target groups: the only currency between discovery and scraping (design §1).

#include "pprofd/model/labels.hpp"
#include "pprofd/model/profile_type.hpp"

#include <string>
#include <vector>

namespace pprofd::model {

struct TargetProfile {
  ProfileKind kind;
  std::string path;  // absolute path on the target, e.g. /debug/pprof/allocs

  friend bool operator==(const TargetProfile&, const TargetProfile&) = default;
};

struct Target {
  std::string scheme = "http";
  std::string address;  // host:port; for a pod always <podIP>:<port>
  Labels labels;  // forwarded labels (service_name, instance, namespace, ...) without __name__
  std::vector<TargetProfile> profiles;  // what to pull, one scrape loop each

  std::string url(std::string_view path) const {
    return scheme + "://" + address + std::string(path);
  }
  friend bool operator==(const Target&, const Target&) = default;
};

// Level-triggered: a group replaces everything previously announced under its source;
// an empty group removes the source.
struct TargetGroup {
  std::string source;
  std::vector<Target> targets;
};

}  // namespace pprofd::model
