#pragma once
// pprofd's own metric families (design §9) on one prometheus-cpp registry. Thread-safe: families
// and their children may be used from any thread. Hot paths should look a child up once and keep
// the reference (Family::Add takes a lock).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <chrono>
#include <cstddef>
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

// Pipeline stages whose thread CPU time pprofd_stage_cpu_seconds_total{stage} counts.
enum class Stage {
  gunzip,       // inflating a target's gzip body
  inspect,      // walking a profile to validate and summarise it (scraped or delta output)
  decode,       // delta: parsing the input profile
  delta,        // delta: keying samples and diffing against the baseline
  encode,       // delta: writing the delta profile
  gzip,         // compressing a profile for the sinks
  send_encode,  // building a sink's request body (or the file sink's sidecar)
};
inline constexpr std::size_t stage_count = 7;
std::string_view to_string(Stage stage);

// Thread CPU time per stage, gathered where the work runs and added to the counters in one go.
struct StageCpu {
  std::array<std::chrono::nanoseconds, stage_count> spent{};
  void add(Stage stage, std::chrono::nanoseconds cpu) {
    spent[static_cast<std::size_t>(stage)] += cpu;
  }
};

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
  prometheus::Family<prometheus::Counter>& stage_cpu_seconds;       // {stage}
  prometheus::Family<prometheus::Histogram>& delivery_latency;      // {sink}
  prometheus::Family<prometheus::Gauge>& delta_state_bytes_family;  // {}

  // Children created up front, so hot paths never call Family::Add.
  prometheus::Gauge& delta_state_bytes;
  prometheus::Counter& stage_cpu(Stage stage) {
    return *stage_cpu_children_[static_cast<std::size_t>(stage)];
  }
  // Adds every non-zero stage of `cpu` to pprofd_stage_cpu_seconds_total.
  void add_stage_cpu(const StageCpu& cpu);
  void add_stage_cpu(Stage stage, std::chrono::nanoseconds cpu);

  // Histogram buckets used by the families above.
  static prometheus::Histogram::BucketBoundaries duration_buckets();
  static prometheus::Histogram::BucketBoundaries lateness_buckets();
  static prometheus::Histogram::BucketBoundaries delivery_latency_buckets();

 private:
  std::array<prometheus::Counter*, stage_count> stage_cpu_children_{};
};

}  // namespace pprofd::telemetry
