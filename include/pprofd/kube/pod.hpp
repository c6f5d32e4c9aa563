#pragma once
// The part of a Kubernetes Pod that pprofd needs (reference protocols §5.9), decoded from the
// API's JSON. Knows nothing about profiling.

#include "pprofd/common/result.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pprofd::kube {

struct ContainerPort {
  std::string name;
  std::uint16_t container_port = 0;
  std::string protocol = "TCP";
  friend bool operator==(const ContainerPort&, const ContainerPort&) = default;
};

struct Container {
  std::string name;
  std::vector<ContainerPort> ports;
  friend bool operator==(const Container&, const Container&) = default;
};

struct ContainerStatus {
  std::string name;
  std::string container_id;
  std::int64_t restart_count = 0;
  friend bool operator==(const ContainerStatus&, const ContainerStatus&) = default;
};

struct Pod {
  std::string uid;
  std::string namespace_;
  std::string name;
  std::string resource_version;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  bool deleting = false;              // metadata.deletionTimestamp is set
  std::string node_name;              // spec.nodeName
  std::vector<Container> containers;  // spec.containers (init containers are never scraped)
  std::string phase;                  // status.phase
  std::string pod_ip;                 // status.podIP
  std::vector<ContainerStatus> container_statuses;

  std::string key() const { return namespace_ + "/" + name; }
  friend bool operator==(const Pod&, const Pod&) = default;
};

// Decodes one Pod object (a list item or a watch event's "object"). Missing optional fields take
// their defaults; a value of the wrong JSON type is an error naming the field.
Result<Pod> pod_from_json(const nlohmann::json& object);
Result<Pod> parse_pod(std::string_view json);

}  // namespace pprofd::kube
