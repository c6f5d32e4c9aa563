#include "pprofd/telemetry/metrics.hpp"

#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#ifndef PPROFD_VERSION
#define PPROFD_VERSION "0.0.0"
#endif
#ifndef PPROFD_REVISION
#define PPROFD_REVISION "unknown"
#endif

namespace pprofd::telemetry {
namespace {

prometheus::MetricFamily gauge_family(std::string name, std::string help, double value,
                                      prometheus::MetricType type = prometheus::MetricType::Gauge) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter)
    metric.counter.value = value;
  else
    metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
  return family;
}

// The standard process_* metrics, read from /proc at scrape time like the Go client does.
class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));

    std::ifstream stat_file("/proc/self/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // Fields after the parenthesised command name, which may itself contain spaces.
    const auto close = stat.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields(stat.substr(close + 2));
      std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
      // f[0] is field 3 (state): utime=14, stime=15, starttime=22, vsize=23, rss=24.
      if (f.size() > 21) {
        const double utime = std::stod(f[11]), stime = std::stod(f[12]);
        out.push_back(gauge_family("process_cpu_seconds_total",
                                   "Total user and system CPU time spent in seconds.",
                                   (utime + stime) / ticks, prometheus::MetricType::Counter));
        out.push_back(gauge_family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                   std::stod(f[20])));
        out.push_back(gauge_family("process_resident_memory_bytes",
                                   "Resident memory size in bytes.", std::stod(f[21]) * page));
        out.push_back(gauge_family("process_start_time_seconds",
                                   "Start time of the process since unix epoch in seconds.",
                                   boot_time() + std::stod(f[19]) / ticks));
      }
    }
    out.push_back(gauge_family("process_open_fds", "Number of open file descriptors.",
                               static_cast<double>(count_open_fds())));
    out.push_back(gauge_family("process_max_fds", "Maximum number of open file descriptors.",
                               static_cast<double>(sysconf(_SC_OPEN_MAX))));
    return out;
  }

 private:
  static double boot_time() {
    std::ifstream in("/proc/stat");
    std::string key;
    while (in >> key) {
      if (key == "btime") {
        double value = 0;
        in >> value;
        return value;
      }
      in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    return 0;
  }

  static std::size_t count_open_fds() {
    std::size_t n = 0;
    if (DIR* dir = opendir("/proc/self/fd")) {
      while (const dirent* entry = readdir(dir))
        if (entry->d_name[0] != '.') ++n;
      closedir(dir);
      if (n > 0) --n;  // the descriptor opendir itself holds
    }
    return n;
  }
};

template <class Builder>
auto& family(Builder builder, prometheus::Registry& registry, const char* name, const char* help) {
  return builder.Name(name).Help(help).Register(registry);
}

}  // namespace

const BuildInfo& build_info() {
  static const BuildInfo info{PPROFD_VERSION, PPROFD_REVISION, "g++ " __VERSION__};
  return info;
}

std::string_view to_string(Stage stage) {
  switch (stage) {
    case Stage::gunzip:
      return "gunzip";
    case Stage::inspect:
      return "inspect";
    case Stage::decode:
      return "decode";
    case Stage::delta:
      return "delta";
    case Stage::encode:
      return "encode";
    case Stage::gzip:
      return "gzip";
    case Stage::send_encode:
      return "send_encode";
  }
  return "unknown";
}

prometheus::Histogram::BucketBoundaries Metrics::delivery_latency_buckets() {
  // Finer around 100 ms, where a push's linger puts most deliveries.
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25,
          0.5,   1,      2.5,   5,    10,    15,   20,    30,  45,    60,   90,  120};
}

void Metrics::add_stage_cpu(Stage stage, std::chrono::nanoseconds cpu) {
  if (cpu.count() > 0) stage_cpu(stage).Increment(std::chrono::duration<double>(cpu).count());
}

void Metrics::add_stage_cpu(const StageCpu& cpu) {
  for (std::size_t i = 0; i < stage_count; ++i) add_stage_cpu(static_cast<Stage>(i), cpu.spent[i]);
}

prometheus::Histogram::BucketBoundaries Metrics::duration_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60};
}

prometheus::Histogram::BucketBoundaries Metrics::lateness_buckets() {
  return {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      process_collector_(std::make_shared<ProcessCollector>()),
      build_info_gauge(family(prometheus::BuildGauge(), *registry_, "pprofd_build_info",
                              "pprofd build information; the value is always 1.")),
      targets(family(prometheus::BuildGauge(), *registry_, "pprofd_targets",
                     "Scrape targets by state.")),
      scrapes_total(family(prometheus::BuildCounter(), *registry_, "pprofd_scrapes_total",
                           "Profile pulls by profile type and result.")),
      scrape_duration(family(prometheus::BuildHistogram(), *registry_,
                             "pprofd_scrape_duration_seconds",
                             "Time from request start to a validated profile.")),
      scrape_bytes_total(family(prometheus::BuildCounter(), *registry_, "pprofd_scrape_bytes_total",
                                "Bytes received from targets (as sent on the wire).")),
      scrape_lateness(family(prometheus::BuildHistogram(), *registry_,
                             "pprofd_scrape_lateness_seconds",
                             "How late a scrape started relative to its scheduled slot.")),
      scrape_missed_slots(family(prometheus::BuildCounter(), *registry_,
                                 "pprofd_scrape_missed_slots_total",
                                 "Scheduled slots skipped because the previous scrape ran late.")),
      scrapes_in_flight(family(prometheus::BuildGauge(), *registry_, "pprofd_scrapes_in_flight",
                               "Profile pulls currently in progress.")),
      delta_total(family(prometheus::BuildCounter(), *registry_, "pprofd_delta_total",
                         "Delta computations by result (emitted, first, reset, error).")),
      sink_sent_profiles(family(prometheus::BuildCounter(), *registry_,
                                "pprofd_sink_sent_profiles_total", "Profiles a sink delivered.")),
      sink_sent_bytes(family(prometheus::BuildCounter(), *registry_, "pprofd_sink_sent_bytes_total",
                             "Bytes a sink delivered.")),
      sink_dropped_profiles(family(prometheus::BuildCounter(), *registry_,
                                   "pprofd_sink_dropped_profiles_total",
                                   "Profiles a sink lost, by reason.")),
      sink_skipped_profiles(family(prometheus::BuildCounter(), *registry_,
                                   "pprofd_sink_skipped_profiles_total",
                                   "Profiles a sink deliberately did not send, by reason.")),
      sink_retries(family(prometheus::BuildCounter(), *registry_, "pprofd_sink_retries_total",
                          "Delivery attempts retried.")),
      sink_queue_bytes(family(prometheus::BuildGauge(), *registry_, "pprofd_sink_queue_bytes",
                              "Bytes waiting in a sink's queue.")),
      sink_request_duration(family(prometheus::BuildHistogram(), *registry_,
                                   "pprofd_sink_request_duration_seconds",
                                   "Duration of one delivery attempt.")),
      kubernetes_watch_events(family(prometheus::BuildCounter(), *registry_,
                                     "pprofd_kubernetes_watch_events_total",
                                     "Pod watch events by type.")),
      kubernetes_lists(family(prometheus::BuildCounter(), *registry_,
                              "pprofd_kubernetes_lists_total", "Pod list requests (pages).")),
      kubernetes_relists(family(prometheus::BuildCounter(), *registry_,
                                "pprofd_kubernetes_relists_total",
                                "Full relists, by reason (expired, error).")),
      kubernetes_watch_restarts(family(prometheus::BuildCounter(), *registry_,
                                       "pprofd_kubernetes_watch_restarts_total",
                                       "Pod watches opened after the first.")),
      kubernetes_requests(family(prometheus::BuildCounter(), *registry_,
                                 "pprofd_kubernetes_requests_total",
                                 "Requests to the Kubernetes API by verb and HTTP code.")),
      kubernetes_synced(family(prometheus::BuildGauge(), *registry_, "pprofd_kubernetes_synced",
                               "1 once every watched scope has completed a list.")),
      kubernetes_pods(family(prometheus::BuildGauge(), *registry_, "pprofd_kubernetes_pods",
                             "Pods held by the informer.")),
      discovery_dropped(
          family(prometheus::BuildGauge(), *registry_, "pprofd_discovery_dropped_targets",
                 "Pods (or ports) that asked to be scraped but cannot be, by reason.")),
      discovery_labels_truncated(family(prometheus::BuildCounter(), *registry_,
                                        "pprofd_discovery_labels_truncated_total",
                                        "Pod labels left out by the 30-label limit.")),
      config_last_reload_successful(family(prometheus::BuildGauge(), *registry_,
                                           "pprofd_config_last_reload_successful",
                                           "Whether the last configuration load succeeded.")),
      config_last_reload_success_timestamp(
          family(prometheus::BuildGauge(), *registry_,
                 "pprofd_config_last_reload_success_timestamp_seconds",
                 "Time of the last successful configuration load.")),
      stage_cpu_seconds(family(prometheus::BuildCounter(), *registry_,
                               "pprofd_stage_cpu_seconds_total",
                               "Thread CPU time spent per pipeline stage.")),
      delivery_latency(family(prometheus::BuildHistogram(), *registry_,
                              "pprofd_delivery_latency_seconds",
                              "Time from a scrape's response being read to a sink acknowledging "
                              "the profile (2xx, or the file written).")),
      delta_state_bytes_family(family(prometheus::BuildGauge(), *registry_,
                                      "pprofd_delta_state_bytes",
                                      "Memory held by delta baselines, summed over all loops.")),
      delta_state_bytes(delta_state_bytes_family.Add({})) {
  for (std::size_t i = 0; i < stage_count; ++i)
    stage_cpu_children_[i] =
        &stage_cpu_seconds.Add({{"stage", std::string(to_string(static_cast<Stage>(i)))}});
  const auto& info = build_info();
  build_info_gauge
      .Add({{"version", info.version}, {"revision", info.revision}, {"compiler", info.compiler}})
      .Set(1);
  scrape_lateness.Add({}, lateness_buckets());
  scrapes_in_flight.Add({});
}

std::string Metrics::render() const {
  auto families = registry_->Collect();
  auto process = process_collector_->Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace pprofd::telemetry
