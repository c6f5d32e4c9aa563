#pragma once
// Delivery to an HTTP backend: Pyroscope push, Pyroscope /ingest or Profefe (design §7).
// append() queues (bounded in bytes, the oldest profile gives way when full) and returns; a few
// sender coroutines take batches off the queue, send them and retry per RetryState. Every
// profile ends up sent, skipped or dropped — each counted by reason.
// Thread-safety: every member, append() included, runs on the I/O executor.

#include "pprofd/common/token_file.hpp"
#include "pprofd/http/client.hpp"
#include "pprofd/sinks/encode.hpp"
#include "pprofd/sinks/retry.hpp"
#include "pprofd/sinks/sink.hpp"

#include <prometheus/gauge.h>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <random>
#include <set>

namespace pprofd::sinks {

// Pyroscope takes several series per push; a batch stays under its default 2 MB ingestion burst
// (uncompressed bytes), so the rate limiter can always admit it whole.
inline constexpr std::uint64_t push_batch_raw_bytes = 1536 * 1024;
inline constexpr std::size_t push_batch_max_profiles = 64;
// A profile waits up to this long after its scrape for others to share its push: at 1,000
// profiles/s this turns ~765 requests/s into ~21 (figures in docs/benchmarks.md).
inline constexpr std::chrono::milliseconds push_batch_linger{100};
inline constexpr std::size_t senders_per_sink = 4;

class RemoteSink final : public Sink, public std::enable_shared_from_this<RemoteSink> {
 public:
  RemoteSink(const config::SinkConfig& config, boost::asio::any_io_executor io,
             telemetry::Metrics& metrics, const Clock& clock,
             std::shared_ptr<boost::asio::ssl::context> tls);
  ~RemoteSink() override;

  const std::string& name() const override { return config_.name; }
  void start() override;
  void append(model::ProfilePtr profile) override;
  boost::asio::awaitable<bool> drain(std::chrono::steady_clock::time_point deadline) override;

  std::uint64_t queued_bytes() const { return queued_bytes_; }

 private:
  boost::asio::awaitable<void> sender();
  std::vector<model::ProfilePtr> take_batch();
  std::optional<EncodedRequest> encode(const std::vector<model::ProfilePtr>& batch);
  boost::asio::awaitable<void> deliver(std::vector<model::ProfilePtr> batch);
  void count_dropped(std::string_view reason, std::size_t profiles);
  void update_queue_gauge();
  void wake_backing_off();
  void end_lingering();

  config::SinkConfig config_;
  boost::asio::any_io_executor io_;
  telemetry::Metrics& metrics_;
  const Clock& clock_;
  prometheus::Histogram& delivery_latency_;  // this sink's child of pprofd_delivery_latency_seconds
  std::string path_prefix_;                  // before client_: its initialisation fills this in
  http::Client client_;
  RetryPolicy policy_;
  TokenFile password_;
  TokenFile bearer_token_;
  std::mt19937_64 random_;

  std::deque<model::ProfilePtr> queue_;
  std::uint64_t queued_bytes_ = 0;
  std::size_t shutdown_drops_ = 0;
  std::set<boost::asio::steady_timer*> backing_off_;  // senders waiting to retry
  std::set<boost::asio::steady_timer*> lingering_;    // senders waiting to fill a push
  prometheus::Gauge* queue_gauge_ = nullptr;          // pprofd_sink_queue_bytes{sink}
  std::chrono::steady_clock::time_point
      last_queue_full_log_{};  // batches abandoned mid-delivery at the deadline
  std::size_t running_senders_ = 0;
  bool stopping_ = false;
  // Whether the queue holds a full push batch already (a sender then need not linger).
  bool batch_ready() const;

  boost::asio::steady_timer wake_;      // senders sleep here while the queue is empty
  boost::asio::steady_timer all_done_;  // fires when the last sender returns
  boost::asio::cancellation_signal cancel_senders_[senders_per_sink];
};

}  // namespace pprofd::sinks
