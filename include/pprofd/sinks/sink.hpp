#pragma once
// Sinks deliver profiles (design §7). Each sink has its own bounded queue: append() only queues,
// so a slow or dead sink never stalls scraping or the other sinks. Every loss is counted in
// pprofd_sink_dropped_profiles_total{sink,reason}.

#include "pprofd/common/clock.hpp"
#include "pprofd/config/config.hpp"
#include "pprofd/model/profile.hpp"

#include <prometheus/histogram.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace pprofd::telemetry {
class Metrics;
}

namespace pprofd::sinks {

class Sink : public model::Appender {
 public:
  virtual const std::string& name() const = 0;
  virtual void start() = 0;
  // Delivers what is queued until the deadline, then stops; what is left is dropped and counted
  // with reason "shutdown". Returns true when nothing was lost.
  virtual boost::asio::awaitable<bool> drain(std::chrono::steady_clock::time_point deadline) = 0;
};

using SinkPtr = std::shared_ptr<Sink>;

// Observes pprofd_delivery_latency_seconds once per acknowledged profile: from its scrape's end
// (Profile::scraped_at; profiles without one are skipped) to `acknowledged`.
void observe_delivery_latency(prometheus::Histogram& latency,
                              std::span<const model::ProfilePtr> profiles,
                              std::chrono::steady_clock::time_point acknowledged);

// Hands every profile to every sink.
class Fanout final : public model::Appender {
 public:
  explicit Fanout(std::vector<SinkPtr> sinks) : sinks_(std::move(sinks)) {}
  void append(model::ProfilePtr profile) override {
    for (auto& sink : sinks_) sink->append(profile);
  }
  const std::vector<SinkPtr>& sinks() const { return sinks_; }

 private:
  std::vector<SinkPtr> sinks_;
};

// Builds the sink a config entry describes; an error names what is wrong (e.g. an unwritable dir).
Result<SinkPtr> make_sink(const config::SinkConfig& config, boost::asio::any_io_executor io,
                          telemetry::Metrics& metrics, const Clock& clock);

}  // namespace pprofd::sinks
