#pragma once
// pprofd's own metric families (design §9) on one prometheus-cpp registry. Thread-safe: families
// and their children may be used from any thread. Hot paths should look a child up once and keep
// the reference (Family::Add takes a lock).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <string_view>

namespace pprofd::telemetry {

struct BuildInfo {
  std::string version;
  std::string revision;
  std::string compiler;
};

const BuildInfo& build_info();

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Prometheus text exposition of every family plus the process_* metrics.
  std::string render() const;
  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> process_collector_;

 public:
  prometheus::Family<prometheus::Gauge>& build_info_gauge;
  prometheus::Family<prometheus::Gauge>& targets;                       // {state}
  prometheus::Family<prometheus::Counter>& scrapes_total;               // {profile_type,result}
  prometheus::Family<prometheus::Histogram>& scrape_duration;           // {profile_type}
  prometheus::Family<prometheus::Counter>& scrape_bytes_total;          // {profile_type}
  prometheus::Family<prometheus::Histogram>& scrape_lateness;           // {}
  prometheus::Family<prometheus::Counter>& scrape_missed_slots;         // {profile_type}
  prometheus::Family<prometheus::Gauge>& scrapes_in_flight;             // {}
  prometheus::Family<prometheus::Counter>& delta_total;                 // {result}
  prometheus::Family<prometheus::Counter>& sink_sent_profiles;          // {sink}
  prometheus::Family<prometheus::Counter>& sink_sent_bytes;             // {sink}
  prometheus::Family<prometheus::Counter>& sink_dropped_profiles;       // {sink,reason}
  prometheus::Family<prometheus::Counter>& sink_skipped_profiles;       // {sink,reason}
  prometheus::Family<prometheus::Counter>& sink_retries;                // {sink}
  prometheus::Family<prometheus::Gauge>& sink_queue_bytes;              // {sink}
  prometheus::Family<prometheus::Histogram>& sink_request_duration;     // {sink}
  prometheus::Family<prometheus::Counter>& kubernetes_watch_events;     // {type}
  prometheus::Family<prometheus::Counter>& kubernetes_lists;            // {}
  prometheus::Family<prometheus::Counter>& kubernetes_relists;          // {reason}
  prometheus::Family<prometheus::Counter>& kubernetes_watch_restarts;   // {}
  prometheus::Family<prometheus::Counter>& kubernetes_requests;         // {verb,code}
  prometheus::Family<prometheus::Gauge>& kubernetes_synced;             // {}
  prometheus::Family<prometheus::Gauge>& kubernetes_pods;               // {}
  prometheus::Family<prometheus::Gauge>& discovery_dropped;             // {reason}
  prometheus::Family<prometheus::Counter>& discovery_labels_truncated;  // {}
  prometheus::Family<prometheus::Gauge>& config_last_reload_successful;
  prometheus::Family<prometheus::Gauge>& config_last_reload_success_timestamp;

  // Histogram buckets used by the families above.
  static prometheus::Histogram::BucketBoundaries duration_buckets();
  static prometheus::Histogram::BucketBoundaries lateness_buckets();
};

}  // namespace pprofd::telemetry
