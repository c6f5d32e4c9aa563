#pragma once
// The scrape manager: keeps one loop per (target, enabled profile type) equal to the union of the
// target groups it is given (Prometheus' scrape pool). Loops run as coroutines on the I/O
// executor; CPU-heavy validation and delta work runs on the worker executor.
// Thread-safety: call every member from the I/O executor.

#include "pprofd/common/clock.hpp"
#include "pprofd/common/units.hpp"
#include "pprofd/config/config.hpp"
#include "pprofd/model/profile.hpp"
#include "pprofd/model/target.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pprofd::telemetry {
class Metrics;
}

namespace pprofd::scrape {

struct Settings {
  Duration interval = std::chrono::seconds(15);
  Duration timeout = std::chrono::seconds(10);
  Duration cpu_duration = std::chrono::seconds(14);
  std::uint64_t max_concurrent = 4096;
  std::uint64_t body_size_limit = 64ULL << 20;
  model::Labels external_labels;
  // Per profile kind: whether pprofd diffs it (only cumulative kinds).
  std::array<bool, model::profile_types.size()> delta{};
  std::shared_ptr<boost::asio::ssl::context> tls;  // for https targets, built from tls_config
  config::TlsConfig tls_config;
  std::string tls_server_name;
  std::string bearer_token_file;
  std::uint64_t seed = 0;  // per-instance phase seed

  friend bool operator==(const Settings&, const Settings&) = default;
};

// What /targets and /api/v1/targets show for one loop.
struct LoopStatus {
  std::string url;
  model::ProfileKind kind;
  model::Labels labels;
  std::string health = "unknown";  // unknown, up, down
  std::optional<std::chrono::system_clock::time_point> last_scrape;
  Duration last_duration{0};
  std::uint64_t last_bytes = 0;
  std::string last_error;
  std::chrono::system_clock::time_point next_scrape;
};

struct TargetStatus {
  std::string source;
  std::string scheme;
  std::string address;
  model::Labels labels;
  std::vector<LoopStatus> loops;
};

class ScrapeManager {
 public:
  ScrapeManager(boost::asio::any_io_executor io, boost::asio::any_io_executor workers,
                telemetry::Metrics& metrics, model::Appender& appender, const Clock& clock,
                Settings settings);
  ~ScrapeManager();
  ScrapeManager(const ScrapeManager&) = delete;
  ScrapeManager& operator=(const ScrapeManager&) = delete;

  // Replaces the targets of each group's source (an empty group removes the source), then starts
  // loops for new (target, type) pairs and stops — and awaits — loops that are gone. Unchanged
  // loops keep running with their state (delta baselines, connections).
  boost::asio::awaitable<void> sync(std::vector<model::TargetGroup> groups);

  // New settings restart every loop whose behaviour they change; an unchanged Settings is a no-op.
  boost::asio::awaitable<void> update_settings(Settings settings);

  // Cancels every loop (in-flight pulls included) and waits for all of them to finish.
  boost::asio::awaitable<void> stop();

  std::vector<TargetStatus> snapshot() const;
  std::size_t loop_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pprofd::scrape
