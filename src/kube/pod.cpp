#include "pprofd/kube/pod.hpp"

#include <nlohmann/json.hpp>

#include <limits>
#include <utility>

namespace pprofd::kube {

namespace {

using nlohmann::json;

// Reads fields of one JSON object. The first problem is kept and later reads become no-ops, so
// decoding code stays linear instead of checking after every field.
class FieldReader {
 public:
  explicit FieldReader(std::string* error) : error_(error) {}

  bool failed() const { return !error_->empty(); }

  // Missing and null both mean "absent": the API server omits empty fields, but proxies and
  // hand-written fixtures sometimes spell them as null.
  const json* child(const json& object, std::string_view key) const {
    if (failed()) return nullptr;
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return nullptr;
    return &*it;
  }

  const json* object(const json& parent, std::string_view key, const std::string& path) {
    const json* value = child(parent, key);
    if (value && !value->is_object()) return fail(path, "an object", *value);
    return value;
  }

  const json* array(const json& parent, std::string_view key, const std::string& path) {
    const json* value = child(parent, key);
    if (value && !value->is_array()) return fail(path, "an array", *value);
    return value;
  }

  void string(const json& parent, std::string_view key, const std::string& path, std::string& out) {
    const json* value = child(parent, key);
    if (!value) return;
    if (!value->is_string()) {
      fail(path, "a string", *value);
      return;
    }
    out = value->get_ref<const std::string&>();
  }

  void integer(const json& parent, std::string_view key, const std::string& path,
               std::int64_t& out) {
    const json* value = child(parent, key);
    if (!value) return;
    if (value->is_number_unsigned()) {
      const auto u = value->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(path, "an integer in range", *value);
        return;
      }
      out = static_cast<std::int64_t>(u);
    } else if (value->is_number_integer()) {
      out = value->get<std::int64_t>();
    } else {
      fail(path, "an integer", *value);
    }
  }

  void string_map(const json& parent, std::string_view key, const std::string& path,
                  std::map<std::string, std::string>& out) {
    const json* value = object(parent, key, path);
    if (!value) return;
    for (const auto& [name, item] : value->items()) {
      if (!item.is_string()) {
        fail(path + "." + name, "a string", item);
        return;
      }
      out.emplace(name, item.get_ref<const std::string&>());
    }
  }

  const json* fail(const std::string& path, std::string_view expected, const json& got) {
    if (!failed())
      *error_ = path + ": expected " + std::string(expected) + ", got " + describe(got);
    return nullptr;
  }

 private:
  static std::string describe(const json& value) {
    if (value.is_number()) return value.dump();
    return value.type_name();
  }

  std::string* error_;
};

void read_ports(FieldReader& r, const json& container, const std::string& path,
                std::vector<ContainerPort>& out) {
  const json* ports = r.array(container, "ports", path + ".ports");
  if (!ports) return;
  for (std::size_t i = 0; i < ports->size() && !r.failed(); ++i) {
    const std::string item_path = path + ".ports[" + std::to_string(i) + "]";
    const json& item = (*ports)[i];
    if (!item.is_object()) {
      r.fail(item_path, "an object", item);
      return;
    }
    ContainerPort port;
    r.string(item, "name", item_path + ".name", port.name);
    r.string(item, "protocol", item_path + ".protocol", port.protocol);
    std::int64_t number = 0;
    r.integer(item, "containerPort", item_path + ".containerPort", number);
    if (r.failed()) return;
    // Kubernetes validates 1..65535; anything else cannot be dialled, so refuse it here rather
    // than truncate it into some other port.
    if (r.child(item, "containerPort") && (number < 1 || number > 65535)) {
      r.fail(item_path + ".containerPort", "a port number (1-65535)", item.at("containerPort"));
      return;
    }
    port.container_port = static_cast<std::uint16_t>(number);
    out.push_back(std::move(port));
  }
}

void read_containers(FieldReader& r, const json& spec, std::vector<Container>& out) {
  const json* containers = r.array(spec, "containers", "spec.containers");
  if (!containers) return;
  for (std::size_t i = 0; i < containers->size() && !r.failed(); ++i) {
    const std::string path = "spec.containers[" + std::to_string(i) + "]";
    const json& item = (*containers)[i];
    if (!item.is_object()) {
      r.fail(path, "an object", item);
      return;
    }
    Container container;
    r.string(item, "name", path + ".name", container.name);
    read_ports(r, item, path, container.ports);
    out.push_back(std::move(container));
  }
}

void read_container_statuses(FieldReader& r, const json& status,
                             std::vector<ContainerStatus>& out) {
  const json* statuses = r.array(status, "containerStatuses", "status.containerStatuses");
  if (!statuses) return;
  for (std::size_t i = 0; i < statuses->size() && !r.failed(); ++i) {
    const std::string path = "status.containerStatuses[" + std::to_string(i) + "]";
    const json& item = (*statuses)[i];
    if (!item.is_object()) {
      r.fail(path, "an object", item);
      return;
    }
    ContainerStatus cs;
    r.string(item, "name", path + ".name", cs.name);
    r.string(item, "containerID", path + ".containerID", cs.container_id);
    r.integer(item, "restartCount", path + ".restartCount", cs.restart_count);
    out.push_back(std::move(cs));
  }
}

}  // namespace

Result<Pod> pod_from_json(const nlohmann::json& object) {
  if (!object.is_object())
    return make_error(std::string("pod: expected an object, got ") + object.type_name());

  std::string error;
  FieldReader r(&error);
  Pod pod;

  if (const json* metadata = r.object(object, "metadata", "metadata")) {
    r.string(*metadata, "uid", "metadata.uid", pod.uid);
    r.string(*metadata, "namespace", "metadata.namespace", pod.namespace_);
    r.string(*metadata, "name", "metadata.name", pod.name);
    r.string(*metadata, "resourceVersion", "metadata.resourceVersion", pod.resource_version);
    r.string_map(*metadata, "labels", "metadata.labels", pod.labels);
    r.string_map(*metadata, "annotations", "metadata.annotations", pod.annotations);
    if (const json* deletion = r.child(*metadata, "deletionTimestamp")) {
      if (deletion->is_string())
        pod.deleting = true;
      else
        r.fail("metadata.deletionTimestamp", "a string", *deletion);
    }
  }
  if (const json* spec = r.object(object, "spec", "spec")) {
    r.string(*spec, "nodeName", "spec.nodeName", pod.node_name);
    read_containers(r, *spec, pod.containers);
  }
  if (const json* status = r.object(object, "status", "status")) {
    r.string(*status, "phase", "status.phase", pod.phase);
    r.string(*status, "podIP", "status.podIP", pod.pod_ip);
    read_container_statuses(r, *status, pod.container_statuses);
  }

  if (r.failed()) return make_error(std::move(error));
  return pod;
}

Result<Pod> parse_pod(std::string_view text) {
  // No exceptions: a malformed watch event must become a value, never unwind through a
  // coroutine.
  const json object = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return make_error("pod: invalid JSON");
  return pod_from_json(object);
}

}  // namespace pprofd::kube
