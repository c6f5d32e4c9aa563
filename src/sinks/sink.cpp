#include "pprofd/sinks/sink.hpp"

#include "pprofd/sinks/file_sink.hpp"

#include <filesystem>
#include <system_error>

namespace pprofd::sinks {

Result<SinkPtr> make_sink(const config::SinkConfig& config, boost::asio::any_io_executor,
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
    case config::SinkType::profefe:
      break;
  }
  return make_error("sink " + config.name + ": this sink type is not available in this build yet");
}

}  // namespace pprofd::sinks
