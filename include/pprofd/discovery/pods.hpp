#pragma once
// Pods -> scrape targets (design §4 annotations, §5 labels). Pure: no I/O, no clock.

#include "pprofd/config/config.hpp"
#include "pprofd/kube/pod.hpp"
#include "pprofd/model/target.hpp"

#include <string>
#include <vector>

namespace pprofd::discovery {

// A pod that asked to be scraped (or one of its ports) but cannot be: shown on /targets and
// counted in pprofd_discovery_dropped_targets_total{reason}.
struct DroppedCandidate {
  std::string pod;     // namespace/name
  std::string reason;  // no_port, invalid_port, unknown_port_name, invalid_scheme, invalid_path,
                       // invalid_annotation, not_running, no_pod_ip, deleting
  std::string detail;  // human-readable: which annotation, which value
  friend bool operator==(const DroppedCandidate&, const DroppedCandidate&) = default;
};

struct PodTargets {
  std::vector<model::Target> targets;  // one per (pod, port), host always status.podIP
  std::vector<DroppedCandidate> dropped;
  std::size_t labels_truncated = 0;  // pod labels left out by the 30-label cap
};

// `opted_in` pods are those any annotation family enables; others yield nothing at all.
PodTargets pod_targets(const kube::Pod& pod, const config::Config& config);

// Whether any annotation family opts the pod in, whatever its phase: such a pod shows up on
// /targets (as a target or a dropped candidate). Lets callers skip the rest cheaply.
bool is_candidate(const kube::Pod& pod);

// `app.kubernetes.io/name` -> `app_kubernetes_io_name`; a leading digit gets a `_` prefix.
std::string sanitize_label_name(std::string_view name);

}  // namespace pprofd::discovery
