#include "pprofd/sinks/sink.hpp"

#include "pprofd/http/client.hpp"
#include "pprofd/sinks/file_sink.hpp"
#include "pprofd/sinks/remote_sink.hpp"

#include "pprofd/telemetry/log.hpp"

#include <filesystem>
#include <system_error>

namespace pprofd::sinks {

void observe_delivery_latency(prometheus::Histogram& latency,
                              std::span<const model::ProfilePtr> profiles,
                              std::chrono::steady_clock::time_point acknowledged) {
  for (const auto& profile : profiles)
    if (profile->scraped_at != std::chrono::steady_clock::time_point{})
      latency.Observe(std::chrono::duration<double>(acknowledged - profile->scraped_at).count());
}

Result<SinkPtr> make_sink(const config::SinkConfig& config, boost::asio::any_io_executor io,
                          telemetry::Metrics& metrics, const Clock& clock) {
  switch (config.type) {
    case config::SinkType::file: {
      std::error_code ec;
      std::filesystem::create_directories(config.dir, ec);
      if (ec)
        return make_error("sink " + config.name + ": cannot create " + config.dir + ": " +
                          ec.message());
      return SinkPtr(std::make_shared<FileSink>(config, metrics, clock));
    }
    case config::SinkType::pyroscope:
    case config::SinkType::pyroscope_ingest:
    case config::SinkType::profefe: {
      auto tls = http::make_client_tls_context(http::tls_settings(config.tls));
      if (!tls) return make_error("sink " + config.name + ": tls: " + tls.error().message);
      if (config.tls.insecure_skip_verify)
        telemetry::log_warn("TLS certificate verification is disabled", {{"sink", config.name}});
      return SinkPtr(std::make_shared<RemoteSink>(config, io, metrics, clock, std::move(*tls)));
    }
  }
  return make_error("sink " + config.name + ": unknown sink type");
}

}  // namespace pprofd::sinks
