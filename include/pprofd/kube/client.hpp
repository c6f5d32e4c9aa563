#pragma once
// Talking to the Kubernetes API: where it is and how to authenticate (in-cluster service account
// or kubeconfig), and a pod informer that drives Reflector over HTTP list/watch requests.
// TLS verification is always on unless the kubeconfig says insecure-skip-tls-verify (warned).

#include "pprofd/common/token_file.hpp"
#include "pprofd/http/client.hpp"
#include "pprofd/kube/reflector.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pprofd::telemetry {
class Metrics;
}

namespace pprofd::kube {

struct ApiConfig {
  http::Endpoint endpoint;
  http::TlsSettings tls;
  std::string server_name;  // TLS name to verify, when not the endpoint host
  std::string token;        // a static bearer token
  std::string token_file;   // a rotating one: re-read every minute and after a 401
  std::string source;       // "in-cluster" or the kubeconfig path, for logs
};

using Getenv = std::function<std::optional<std::string>(std::string_view)>;

// kubeconfig setting "" resolves as design §3: in-cluster when KUBERNETES_SERVICE_HOST is set,
// else $KUBECONFIG, else ~/.kube/config. The service-account directory defaults to
// /var/run/secrets/kubernetes.io/serviceaccount; PPROFD_SERVICEACCOUNT_DIR overrides it (tests).
Result<ApiConfig> load_api_config(const std::string& kubeconfig, const Getenv& getenv);
Result<ApiConfig> in_cluster_config(const Getenv& getenv);
Result<ApiConfig> kubeconfig_config(const std::string& path);

struct InformerOptions {
  std::vector<std::string> namespaces;  // empty: all namespaces
  std::string label_selector;
  std::string field_selector;  // node_name is folded in as spec.nodeName=<node>
};

// One reflector per namespace (or one for all), their stores read together.
class PodInformer {
 public:
  PodInformer(boost::asio::any_io_executor io, ApiConfig api, InformerOptions options,
              telemetry::Metrics& metrics, std::function<void()> on_change);
  ~PodInformer();
  PodInformer(const PodInformer&) = delete;
  PodInformer& operator=(const PodInformer&) = delete;

  // Runs until cancelled. Errors never end it: they back off and retry.
  boost::asio::awaitable<void> run();

  bool synced() const;
  const Pod* find(const std::string& key) const;
  std::set<std::string> take_changes();
  std::vector<std::string> keys() const;
  std::size_t pod_count() const;

 private:
  struct Scope;
  boost::asio::awaitable<void> run_scope(Scope& scope);

  boost::asio::any_io_executor io_;
  ApiConfig api_;
  InformerOptions options_;
  telemetry::Metrics& metrics_;
  std::function<void()> on_change_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  TokenFile token_file_;
  std::vector<std::unique_ptr<Scope>> scopes_;
};

// Splits a watch stream into lines, tolerating lines split across reads.
class LineSplitter {
 public:
  template <class F>
  void feed(std::string_view data, F&& on_line) {
    buffer_.append(data);
    std::size_t start = 0;
    for (auto nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n', start)) {
      if (nl > start) on_line(std::string_view(buffer_).substr(start, nl - start));
      start = nl + 1;
    }
    buffer_.erase(0, start);
  }
  std::size_t pending() const { return buffer_.size(); }

 private:
  std::string buffer_;
};

// Decoders for API responses (exposed for tests).
Result<ListPage> parse_pod_list(std::string_view json);
Result<WatchEvent> parse_watch_event(std::string_view line);

}  // namespace pprofd::kube
