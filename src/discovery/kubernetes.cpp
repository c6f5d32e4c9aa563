#include "pprofd/discovery/kubernetes.hpp"

#include "pprofd/common/async.hpp"
#include "pprofd/common/hash.hpp"
#include "pprofd/telemetry/log.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pprofd::discovery {
namespace asio = boost::asio;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

kube::InformerOptions informer_options(const config::KubernetesDiscoveryConfig& k) {
  kube::InformerOptions o;
  o.namespaces = k.namespaces;
  o.label_selector = k.label_selector;
  o.field_selector = k.field_selector;
  // DaemonSet mode: the API server filters, so each replica only ever sees its node's pods.
  if (!k.node_name.empty())
    o.field_selector +=
        (o.field_selector.empty() ? "" : ",") + std::string("spec.nodeName=") + k.node_name;
  return o;
}

}  // namespace

KubernetesDiscovery::KubernetesDiscovery(asio::any_io_executor io, const config::Config& config,
                                         kube::ApiConfig api, telemetry::Metrics& metrics,
                                         SyncFn sync)
    : io_(io),
      config_(config),
      metrics_(metrics),
      sync_(std::move(sync)),
      changed_(io, asio::steady_timer::time_point::max()),
      informer_(io, std::move(api), informer_options(config.kubernetes), metrics, [this] {
        dirty_ = true;
        changed_.cancel();
      }) {}

KubernetesDiscovery::~KubernetesDiscovery() = default;

void KubernetesDiscovery::update_config(const config::Config& config) {
  config_ = config;
  recompute_all_ = true;
  dirty_ = true;
  changed_.cancel();
}

bool KubernetesDiscovery::owned_by_this_shard(const kube::Pod& pod) const {
  const auto& shard = config_.kubernetes.shard;
  if (shard.count <= 1) return true;
  // The pod's UID is stable for its lifetime, so ownership never moves while it runs.
  return fnv1a64(pod.uid.empty() ? pod.key() : pod.uid) % shard.count == shard.index;
}

std::vector<DroppedCandidate> KubernetesDiscovery::dropped() const {
  std::vector<DroppedCandidate> out;
  for (const auto& [key, list] : dropped_) out.insert(out.end(), list.begin(), list.end());
  return out;
}

asio::awaitable<void> KubernetesDiscovery::sync_changes() {
  std::set<std::string> keys = informer_.take_changes();
  if (std::exchange(recompute_all_, false)) {
    // Every pod the informer holds (some may only now qualify) and every one announced before.
    for (auto& key : informer_.keys()) keys.insert(std::move(key));
    keys.insert(announced_.begin(), announced_.end());
  }
  std::vector<model::TargetGroup> groups;
  groups.reserve(keys.size());
  std::size_t truncated = 0;
  for (const auto& key : keys) {
    model::TargetGroup group{"kubernetes/" + key, {}};
    dropped_.erase(key);
    if (const kube::Pod* pod = informer_.find(key); pod != nullptr && owned_by_this_shard(*pod)) {
      auto result = pod_targets(*pod, config_);
      group.targets = std::move(result.targets);
      truncated += result.labels_truncated;
      if (!result.dropped.empty()) dropped_[key] = std::move(result.dropped);
    }
    if (group.targets.empty()) {
      if (announced_.erase(key) == 0) continue;  // nothing was announced, nothing to remove
    } else {
      announced_.insert(key);
    }
    groups.push_back(std::move(group));
  }
  if (truncated)
    metrics_.discovery_labels_truncated.Add({}).Increment(static_cast<double>(truncated));
  std::map<std::string, std::size_t> by_reason;
  for (const auto& [key, list] : dropped_)
    for (const auto& d : list) ++by_reason[d.reason];
  for (const auto& [reason, n] : by_reason)
    metrics_.discovery_dropped.Add({{"reason", reason}}).Set(static_cast<double>(n));
  // Reasons that no longer occur go back to zero rather than keeping a stale count.
  for (const char* reason :
       {"no_port", "invalid_port", "unknown_port_name", "invalid_scheme", "invalid_path",
        "invalid_annotation", "not_running", "no_pod_ip", "deleting"})
    if (by_reason.count(reason) == 0) metrics_.discovery_dropped.Add({{"reason", reason}}).Set(0);
  if (!groups.empty()) co_await sync_(std::move(groups));
}

asio::awaitable<void> KubernetesDiscovery::run() {
  co_await asio::this_coro::throw_if_cancelled(false);
  asio::cancellation_signal stop_informer;
  bool informer_done = false;
  asio::steady_timer informer_stopped(io_, asio::steady_timer::time_point::max());
  asio::co_spawn(io_, informer_.run(),
                 asio::bind_cancellation_slot(stop_informer.slot(), [&](std::exception_ptr) {
                   informer_done = true;
                   informer_stopped.cancel();
                 }));
  asio::steady_timer window(io_);
  while (!co_await cancelled()) {
    // A change that arrived while the previous sync was running is not lost: dirty_ remembers it.
    if (!dirty_) {
      changed_.expires_at(asio::steady_timer::time_point::max());
      co_await changed_.async_wait(use_tuple);
      if (co_await cancelled()) break;
    }
    // Let the burst finish: everything that changes within the window goes out in one sync.
    window.expires_after(coalesce_window);
    co_await window.async_wait(use_tuple);
    if (co_await cancelled()) break;
    dirty_ = false;
    co_await sync_changes();
    if (informer_.synced() && !first_sync_done_) {
      first_sync_done_ = true;
      telemetry::log_info("kubernetes discovery synced",
                          {{"pods", std::to_string(informer_.pod_count())},
                           {"targets", std::to_string(announced_.size())}});
    }
  }
  stop_informer.emit(asio::cancellation_type::terminal);
  if (!informer_done) co_await informer_stopped.async_wait(use_tuple);
}

}  // namespace pprofd::discovery
