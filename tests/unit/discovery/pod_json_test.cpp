#include "pprofd/discovery/pods.hpp"
#include "pprofd/kube/pod.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

using pprofd::kube::parse_pod;
using pprofd::kube::Pod;
using pprofd::kube::pod_from_json;

namespace {

std::string read_testdata(const std::string& relative) {
  const char* env = std::getenv("PPROFD_TESTDATA");
  std::ifstream in(std::string(env && *env ? env : PPROFD_TESTDATA_DIR) + "/" + relative,
                   std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The error message of decoding `object`, or "" when it decoded.
std::string error_of(const nlohmann::json& object) {
  auto result = pod_from_json(object);
  return result ? std::string() : result.error().message;
}

}  // namespace

TEST_CASE("a kubectl get pod -o json document decodes") {
  auto result = parse_pod(read_testdata("kube/pod.json"));
  REQUIRE(result.has_value());
  const Pod& pod = *result;
  CHECK(pod.uid == "8c1a4e57-3d0b-4d8e-9f3e-6b2a1c9d7e40");
  CHECK(pod.namespace_ == "shop");
  CHECK(pod.name == "checkout-7d9c5b8f6d-x2k8p");
  CHECK(pod.key() == "shop/checkout-7d9c5b8f6d-x2k8p");
  CHECK(pod.resource_version == "48211937");
  CHECK(pod.labels.size() == 4);
  CHECK(pod.labels.at("app.kubernetes.io/name") == "checkout");
  CHECK(pod.annotations.at("profiles.grafana.com/cpu.port_name") == "http-pprof");
  CHECK_FALSE(pod.deleting);
  CHECK(pod.node_name == "gke-prod-pool-1-4b7e2c1d-k9x2");
  REQUIRE(pod.containers.size() == 2);
  CHECK(pod.containers[0].name == "checkout");
  REQUIRE(pod.containers[0].ports.size() == 2);
  CHECK(pod.containers[0].ports[1] == pprofd::kube::ContainerPort{"http-pprof", 6060, "TCP"});
  REQUIRE(pod.containers[1].ports.size() == 2);
  // protocol is optional in the API and defaults to TCP.
  CHECK(pod.containers[1].ports[0] == pprofd::kube::ContainerPort{"admin", 9901, "TCP"});
  CHECK(pod.containers[1].ports[1].protocol == "UDP");
  CHECK(pod.phase == "Running");
  CHECK(pod.pod_ip == "10.44.3.21");
  REQUIRE(pod.container_statuses.size() == 2);
  CHECK(pod.container_statuses[0].name == "checkout");
  CHECK(pod.container_statuses[0].restart_count == 2);
  CHECK(pod.container_statuses[1].container_id.starts_with("containerd://a9b8"));
}

TEST_CASE("the decoded fixture pod yields one target on its named pprof port") {
  auto pod = parse_pod(read_testdata("kube/pod.json"));
  REQUIRE(pod.has_value());
  auto out = pprofd::discovery::pod_targets(*pod, pprofd::config::default_config());
  CHECK(out.dropped.empty());
  REQUIRE(out.targets.size() == 1);
  const auto& t = out.targets[0];
  CHECK(t.address == "10.44.3.21:6060");
  CHECK(t.labels.get("service_name") == "checkout");
  CHECK(t.labels.get("container") == "checkout");
  CHECK(t.labels.get("node") == "gke-prod-pool-1-4b7e2c1d-k9x2");
  CHECK(t.labels.get("team") == "payments");
  CHECK(t.labels.get("app_kubernetes_io_part_of") == "shop");
  CHECK_FALSE(t.labels.contains("pod_template_hash"));
  CHECK(t.profiles.size() == 2);
}

TEST_CASE("missing fields take their defaults") {
  auto result = pod_from_json(nlohmann::json::object());
  REQUIRE(result.has_value());
  CHECK(*result == Pod{});

  auto sparse = parse_pod(R"({"metadata": {"name": "p", "labels": null,
      "deletionTimestamp": null}, "spec": {"containers": [{"name": "c"}]}, "status": {}})");
  REQUIRE(sparse.has_value());
  CHECK(sparse->name == "p");
  CHECK_FALSE(sparse->deleting);
  REQUIRE(sparse->containers.size() == 1);
  CHECK(sparse->containers[0].ports.empty());
}

TEST_CASE("deletionTimestamp marks a terminating pod") {
  auto result = parse_pod(R"({"metadata": {"deletionTimestamp": "2024-05-02T10:20:00Z"}})");
  REQUIRE(result.has_value());
  CHECK(result->deleting);
}

TEST_CASE("a value of the wrong type is an error naming the field") {
  using nlohmann::json;
  CHECK(error_of(json::array()).starts_with("pod: expected an object"));
  CHECK(error_of(json{{"metadata", "x"}}).starts_with("metadata: expected an object"));
  CHECK(error_of(json{{"metadata", {{"name", 3}}}}) == "metadata.name: expected a string, got 3");
  CHECK(error_of(json{{"metadata", {{"labels", {{"app", 1}}}}}})
            .starts_with("metadata.labels.app: expected a string"));
  CHECK(error_of(json{{"metadata", {{"annotations", json::array()}}}})
            .starts_with("metadata.annotations: expected an object"));
  CHECK(error_of(json{{"metadata", {{"deletionTimestamp", 5}}}})
            .starts_with("metadata.deletionTimestamp: expected a string"));
  CHECK(error_of(json{{"spec", {{"nodeName", true}}}}).starts_with("spec.nodeName: expected"));
  CHECK(error_of(json{{"spec", {{"containers", json::object()}}}})
            .starts_with("spec.containers: expected an array"));
  CHECK(error_of(json{{"spec", {{"containers", {1}}}}})
            .starts_with("spec.containers[0]: expected an object"));
  CHECK(error_of(json::parse(R"({"spec": {"containers": [{"name": "a"},
            {"name": "b", "ports": [{"containerPort": 80}, {"containerPort": "6060"}]}]}})"))
            .starts_with("spec.containers[1].ports[1].containerPort: expected an integer"));
  CHECK(
      error_of(json::parse(R"({"spec": {"containers": [{"ports": [{"containerPort": 70000}]}]}})"))
          .starts_with("spec.containers[0].ports[0].containerPort: expected a port number"));
  CHECK(
      error_of(json::parse(R"({"spec": {"containers": [{"ports": [{"containerPort": 6060.5}]}]}})"))
          .starts_with("spec.containers[0].ports[0].containerPort: expected an integer"));
  CHECK(error_of(json{{"status", {{"phase", json::array()}}}})
            .starts_with("status.phase: expected a string"));
  CHECK(error_of(json{{"status", {{"podIP", 10}}}}).starts_with("status.podIP: expected"));
  CHECK(error_of(json::parse(R"({"status": {"containerStatuses": [{"restartCount": "2"}]}})"))
            .starts_with("status.containerStatuses[0].restartCount: expected an integer"));
  CHECK(error_of(json::parse(R"({"status": {"containerStatuses": [{"containerID": 1}]}})"))
            .starts_with("status.containerStatuses[0].containerID: expected a string"));
}

TEST_CASE("malformed JSON is an error, not an exception") {
  auto result = parse_pod("{\"metadata\": ");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().message == "pod: invalid JSON");
  CHECK_FALSE(parse_pod("").has_value());
}
