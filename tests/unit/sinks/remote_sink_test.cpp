#include "pprofd/sinks/remote_sink.hpp"
#include "pprofd/http/server.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace pprofd;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

model::ProfilePtr make_profile(int n, std::size_t size = 100) {
  auto p = std::make_shared<model::Profile>();
  p->kind = model::ProfileKind::goroutine;
  p->labels = {{"__name__", "goroutine"}, {"service_name", "svc"}, {"seq", std::to_string(n)}};
  p->gzipped = std::string(size, 'g');
  p->raw_size = size * 4;
  p->time_nanos = 1'700'000'000'000'000'000;
  p->sample_count = 1;
  p->sample_types = {{"goroutine", "count"}};
  return p;
}

double metric(telemetry::Metrics& m, const std::string& series) {
  const auto text = m.render();
  const auto at = text.find(series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + series.size() + 1));
}

// A receiver whose answers the test scripts: statuses are consumed one per request, then 200.
struct Receiver {
  asio::io_context& io;
  std::vector<unsigned> script;
  std::vector<std::string> paths;
  std::vector<std::string> content_types;
  std::vector<std::string> authorizations;
  http::Server server;
  std::uint16_t port = 0;

  explicit Receiver(asio::io_context& ctx)
      : io(ctx), server(ctx.get_executor(), [this](const http::ServerRequest& req) {
          paths.emplace_back(req.target());
          content_types.emplace_back(req[boost::beast::http::field::content_type]);
          authorizations.emplace_back(req[boost::beast::http::field::authorization]);
          unsigned status = 200;
          if (!script.empty()) {
            status = script.front();
            script.erase(script.begin());
          }
          auto res = http::make_response(
              req, status, "application/json",
              status == 200 ? "" : R"({"code":"unavailable","message":"busy"})");
          if (status == 429) res.set("Retry-After", "0");
          return res;
        }) {
    port = server.listen("127.0.0.1:0").value().port();
  }
};

config::SinkConfig sink_config(config::SinkType type, std::uint16_t port) {
  config::SinkConfig c;
  c.name = "remote";
  c.type = type;
  c.url = "http://127.0.0.1:" + std::to_string(port) + "/prefix";
  c.timeout = 2s;
  c.queue.min_backoff = 5ms;
  c.queue.max_backoff = 20ms;
  c.queue.max_retries = 3;
  return c;
}

// Runs io until cond() holds or 10 s pass.
void run_until(asio::io_context& io, const std::function<bool()>& cond) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!cond() && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
}

bool drain(asio::io_context& io, sinks::RemoteSink& sink, std::chrono::milliseconds within) {
  std::optional<bool> complete;
  asio::co_spawn(io, sink.drain(std::chrono::steady_clock::now() + within),
                 [&](std::exception_ptr, bool ok) { complete = ok; });
  run_until(io, [&] { return complete.has_value(); });
  REQUIRE(complete.has_value());
  return *complete;
}

}  // namespace

TEST_CASE("push sink batches profiles into one request under the base path") {
  asio::io_context io;
  Receiver rx(io);
  telemetry::Metrics metrics;
  SystemClock clock;
  auto sink = std::make_shared<sinks::RemoteSink>(sink_config(config::SinkType::pyroscope, rx.port),
                                                  io.get_executor(), metrics, clock, nullptr);
  for (int i = 0; i < 5; ++i) sink->append(make_profile(i));
  sink->start();
  run_until(
      io, [&] { return metric(metrics, "pprofd_sink_sent_profiles_total{sink=\"remote\"}") == 5; });
  CHECK(rx.paths == std::vector<std::string>{"/prefix/push.v1.PusherService/Push"});
  CHECK(rx.content_types.front() == "application/proto");
  CHECK(drain(io, *sink, 1s));
}

TEST_CASE("push sink lingers after a fresh scrape so profiles arriving apart share one push") {
  asio::io_context io;
  Receiver rx(io);
  telemetry::Metrics metrics;
  SystemClock clock;
  auto sink = std::make_shared<sinks::RemoteSink>(sink_config(config::SinkType::pyroscope, rx.port),
                                                  io.get_executor(), metrics, clock, nullptr);
  sink->start();
  const auto first_scrape = std::chrono::steady_clock::now();
  // Three profiles appended 10 ms apart, each stamped with its scrape time, as loops do.
  for (int i = 0; i < 3; ++i) {
    auto p = std::make_shared<model::Profile>(*make_profile(i));
    p->scraped_at = std::chrono::steady_clock::now();
    sink->append(std::move(p));
    io.run_for(10ms);
  }
  run_until(
      io, [&] { return metric(metrics, "pprofd_sink_sent_profiles_total{sink=\"remote\"}") == 3; });
  CHECK(rx.paths.size() == 1);
  CHECK(std::chrono::steady_clock::now() - first_scrape >= sinks::push_batch_linger);

  // A full batch goes at once: stamped an hour ahead, these would otherwise wait an hour.
  for (std::size_t i = 0; i < sinks::push_batch_max_profiles; ++i) {
    auto p = std::make_shared<model::Profile>(*make_profile(static_cast<int>(i)));
    p->scraped_at = std::chrono::steady_clock::now() + 1h;
    sink->append(std::move(p));
  }
  run_until(io, [&] {
    return metric(metrics, "pprofd_sink_sent_profiles_total{sink=\"remote\"}") ==
           3 + static_cast<double>(sinks::push_batch_max_profiles);
  });
  CHECK(rx.paths.size() == 2);

  // Senders already lingering (for an hour) stop as soon as a full batch is queued...
  auto stamped_later = [](int n) {
    auto p = std::make_shared<model::Profile>(*make_profile(n));
    p->scraped_at = std::chrono::steady_clock::now() + 1h;
    return p;
  };
  for (std::size_t i = 0; i < sinks::push_batch_max_profiles; ++i) {
    sink->append(stamped_later(static_cast<int>(i)));
    io.run_for(1ms);
  }
  run_until(io, [&] { return rx.paths.size() == 3; });
  CHECK(rx.paths.size() == 3);

  // ...and shutdown sends what they were holding back instead of dropping it.
  sink->append(stamped_later(0));
  io.run_for(10ms);
  CHECK(rx.paths.size() == 3);
  CHECK(drain(io, *sink, 2s));
  CHECK(rx.paths.size() == 4);
}

TEST_CASE("retryable answers are retried until delivered; nothing is lost") {
  asio::io_context io;
  Receiver rx(io);
  rx.script = {503, 500, 429};
  telemetry::Metrics metrics;
  SystemClock clock;
  auto sink =
      std::make_shared<sinks::RemoteSink>(sink_config(config::SinkType::pyroscope_ingest, rx.port),
                                          io.get_executor(), metrics, clock, nullptr);
  sink->start();
  sink->append(make_profile(1));
  run_until(
      io, [&] { return metric(metrics, "pprofd_sink_sent_profiles_total{sink=\"remote\"}") == 1; });
  CHECK(rx.paths.size() == 4);
  CHECK(rx.paths.back().rfind("/prefix/ingest?", 0) == 0);
  CHECK(metric(metrics, "pprofd_sink_retries_total{sink=\"remote\"}") == 3);
  CHECK(drain(io, *sink, 1s));
}

TEST_CASE("a 400 drops that profile only, counted as rejected") {
  asio::io_context io;
  Receiver rx(io);
  rx.script = {400};
  telemetry::Metrics metrics;
  SystemClock clock;
  auto config = sink_config(config::SinkType::profefe, rx.port);
  auto sink =
      std::make_shared<sinks::RemoteSink>(config, io.get_executor(), metrics, clock, nullptr);
  sink->start();
  sink->append(make_profile(1));
  run_until(io, [&] {
    return metric(metrics,
                  "pprofd_sink_dropped_profiles_total{reason=\"rejected\",sink=\"remote\"}") == 1;
  });
  sink->append(make_profile(2));
  run_until(
      io, [&] { return metric(metrics, "pprofd_sink_sent_profiles_total{sink=\"remote\"}") == 1; });
  CHECK(rx.paths.size() == 2);
  CHECK(metric(metrics, "pprofd_sink_retries_total{sink=\"remote\"}") == 0);
  CHECK(drain(io, *sink, 1s));
}

TEST_CASE("retries are bounded, empty profiles skip profefe, credentials come from files") {
  asio::io_context io;
  Receiver rx(io);
  rx.script = {503, 503, 503, 503};
  telemetry::Metrics metrics;
  SystemClock clock;
  const auto token = std::filesystem::temp_directory_path() / "pprofd-remote-sink-token";
  std::ofstream(token) << "tok-1\n";
  auto config = sink_config(config::SinkType::profefe, rx.port);
  config.bearer_token_file = token.string();
  auto sink =
      std::make_shared<sinks::RemoteSink>(config, io.get_executor(), metrics, clock, nullptr);
  sink->start();
  auto empty = std::make_shared<model::Profile>(*make_profile(0));
  empty->sample_count = 0;
  sink->append(empty);
  CHECK(metric(metrics, "pprofd_sink_skipped_profiles_total{reason=\"empty\",sink=\"remote\"}") ==
        1);
  sink->append(make_profile(1));
  run_until(io, [&] {
    return metric(metrics,
                  "pprofd_sink_dropped_profiles_total{reason=\"retries_exhausted\",sink="
                  "\"remote\"}") == 1;
  });
  CHECK(rx.paths.size() == 4);  // the first attempt and max_retries = 3
  CHECK(rx.authorizations.front() == "Bearer tok-1");
  std::filesystem::remove(token);
  CHECK(drain(io, *sink, 1s));
}

TEST_CASE("a full queue drops the oldest, and shutdown counts what it could not send") {
  asio::io_context io;
  telemetry::Metrics metrics;
  SystemClock clock;
  // Nothing listens on this port: every attempt is a connect error.
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  auto config = sink_config(config::SinkType::pyroscope_ingest, port);
  config.queue.max_bytes = 1000;
  config.queue.max_retries = 1000;
  auto sink =
      std::make_shared<sinks::RemoteSink>(config, io.get_executor(), metrics, clock, nullptr);
  for (int i = 0; i < 25; ++i) sink->append(make_profile(i, 100));  // 2500 bytes into 1000
  CHECK(metric(metrics,
               "pprofd_sink_dropped_profiles_total{reason=\"queue_full\",sink=\"remote\"}") == 15);
  CHECK(sink->queued_bytes() == 1000);
  sink->start();
  CHECK_FALSE(drain(io, *sink, 200ms));
  CHECK(metric(metrics,
               "pprofd_sink_dropped_profiles_total{reason=\"shutdown\",sink=\"remote\"}") == 10);
  CHECK(sink->queued_bytes() == 0);
}

TEST_CASE("delivery latency is observed once per acknowledged profile, retries included") {
  asio::io_context io;
  Receiver rx(io);
  rx.script = {503};  // the batch is delivered on the second attempt
  telemetry::Metrics metrics;
  SystemClock clock;
  auto sink = std::make_shared<sinks::RemoteSink>(sink_config(config::SinkType::pyroscope, rx.port),
                                                  io.get_executor(), metrics, clock, nullptr);
  const auto scraped = std::chrono::steady_clock::now() - 50ms;
  for (int i = 0; i < 5; ++i) {
    auto p = std::make_shared<model::Profile>(*make_profile(i));
    p->scraped_at = scraped;
    sink->append(std::move(p));
  }
  sink->append(make_profile(5));  // no scrape time (not from a scrape): not observed
  sink->start();
  run_until(
      io, [&] { return metric(metrics, "pprofd_sink_sent_profiles_total{sink=\"remote\"}") == 6; });
  CHECK(metric(metrics, "pprofd_sink_retries_total{sink=\"remote\"}") == 1);
  CHECK(metric(metrics, "pprofd_delivery_latency_seconds_count{sink=\"remote\"}") == 5);
  CHECK(metric(metrics, "pprofd_delivery_latency_seconds_sum{sink=\"remote\"}") >= 5 * 0.05);
  CHECK(metric(metrics, "pprofd_delivery_latency_seconds_bucket{sink=\"remote\",le=\"0.025\"}") ==
        0);
  // The batch is encoded once, not per attempt, and that CPU is counted.
  CHECK(metric(metrics, "pprofd_stage_cpu_seconds_total{stage=\"send_encode\"}") > 0);
  CHECK(drain(io, *sink, 1s));
}

TEST_CASE("a rejected profile is not observed as delivered") {
  asio::io_context io;
  Receiver rx(io);
  rx.script = {400};
  telemetry::Metrics metrics;
  SystemClock clock;
  auto sink =
      std::make_shared<sinks::RemoteSink>(sink_config(config::SinkType::pyroscope_ingest, rx.port),
                                          io.get_executor(), metrics, clock, nullptr);
  sink->start();
  for (int i = 0; i < 2; ++i) {
    auto p = std::make_shared<model::Profile>(*make_profile(i));
    p->scraped_at = std::chrono::steady_clock::now();
    sink->append(std::move(p));
  }
  run_until(
      io, [&] { return metric(metrics, "pprofd_sink_sent_profiles_total{sink=\"remote\"}") == 1; });
  CHECK(metric(metrics,
               "pprofd_sink_dropped_profiles_total{reason=\"rejected\",sink=\"remote\"}") == 1);
  CHECK(metric(metrics, "pprofd_delivery_latency_seconds_count{sink=\"remote\"}") == 1);
  CHECK(drain(io, *sink, 1s));
}
