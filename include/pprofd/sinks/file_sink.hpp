#pragma once
// Writes each profile as <dir>/<service_name>/<__name__>/<unix_ms>-<pod or instance>.pb.gz with a
// .json sidecar beside it (design §7). Files appear atomically (temp file + rename, profile
// before sidecar), so a reader never sees a partial file. Retention keeps the directory under
// max_bytes and deletes files older than max_age. Writing happens on the sink's own thread
// (named pprofd-file).

#include "pprofd/sinks/sink.hpp"

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

namespace pprofd::sinks {

// The relative path a profile is stored under (without extension), e.g.
// "demo/process_cpu/1700000000000-127.0.0.1:6060". Names are made safe for a file system: '/'
// becomes '_', and "", "." and ".." become "_".
std::filesystem::path file_sink_relative_path(const model::Profile& profile);

// The sidecar's JSON text.
std::string file_sink_sidecar(const model::Profile& profile);

class FileSink final : public Sink {
 public:
  static constexpr std::uint64_t queue_limit_bytes = 256ULL << 20;

  FileSink(const config::SinkConfig& config, telemetry::Metrics& metrics, const Clock& clock);
  ~FileSink() override;

  const std::string& name() const override { return name_; }
  void start() override;
  void append(model::ProfilePtr profile) override;
  boost::asio::awaitable<bool> drain(std::chrono::steady_clock::time_point deadline) override;

  // Applies max_bytes and max_age now (also run after each write and once a minute).
  void enforce_retention();
  std::uint64_t stored_bytes() const;

 private:
  struct StoredFile {
    std::filesystem::path stem;  // absolute path without .pb.gz / .json
    std::uint64_t bytes;
    std::chrono::system_clock::time_point written;
  };

  void writer_thread();
  bool write(const model::Profile& profile);
  void scan_existing();
  void drop(std::string_view reason, std::size_t count = 1);

  std::string name_;
  std::filesystem::path dir_;
  std::uint64_t max_bytes_;
  Duration max_age_;
  telemetry::Metrics& metrics_;
  const Clock& clock_;
  prometheus::Histogram& delivery_latency_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<model::ProfilePtr> queue_;
  std::uint64_t queued_bytes_ = 0;
  bool writing_ = false;
  bool stop_ = false;
  std::thread thread_;

  // Retention index, oldest first; touched only by the writer thread (and before start()).
  std::deque<StoredFile> stored_;
  std::uint64_t stored_bytes_ = 0;
  std::uint64_t sequence_ = 0;
};

}  // namespace pprofd::sinks
