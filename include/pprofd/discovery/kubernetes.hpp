#pragma once
// Kubernetes pod discovery: a pod informer whose changes become target groups, one group per pod
// (source "kubernetes/<namespace>/<name>", empty when the pod is gone or not scrapeable).
// Bursts of pod events are coalesced: however many pods changed within the window, the scrape
// manager gets one sync carrying all their groups.
// Thread-safety: run on the I/O executor; read accessors from the same executor.

#include "pprofd/config/config.hpp"
#include "pprofd/discovery/pods.hpp"
#include "pprofd/kube/client.hpp"
#include "pprofd/model/target.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace pprofd::discovery {

inline constexpr auto coalesce_window = std::chrono::milliseconds(200);

class KubernetesDiscovery {
 public:
  using SyncFn = std::function<boost::asio::awaitable<void>(std::vector<model::TargetGroup>)>;

  KubernetesDiscovery(boost::asio::any_io_executor io, const config::Config& config,
                      kube::ApiConfig api, telemetry::Metrics& metrics, SyncFn sync);
  ~KubernetesDiscovery();

  // Runs until cancelled.
  boost::asio::awaitable<void> run();

  // New pod_labels/profiles/shard settings (reload): every pod is re-evaluated.
  void update_config(const config::Config& config);

  bool synced() const { return informer_.synced() && first_sync_done_; }
  std::vector<DroppedCandidate> dropped() const;

 private:
  boost::asio::awaitable<void> sync_changes();
  bool owned_by_this_shard(const kube::Pod& pod) const;

  boost::asio::any_io_executor io_;
  config::Config config_;
  telemetry::Metrics& metrics_;
  SyncFn sync_;
  boost::asio::steady_timer changed_;
  kube::PodInformer informer_;
  std::map<std::string, std::vector<DroppedCandidate>> dropped_;  // by pod key
  std::set<std::string> announced_;                               // pods with a non-empty group
  bool recompute_all_ = false;
  bool dirty_ = false;  // changes not yet synced
  bool first_sync_done_ = false;
};

}  // namespace pprofd::discovery
