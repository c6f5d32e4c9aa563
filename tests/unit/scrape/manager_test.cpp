#include "pprofd/scrape/manager.hpp"

#include "pprofd/http/server.hpp"
#include "pprofd/telemetry/metrics.hpp"
#include "testdata.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

using namespace pprofd;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

double metric(const telemetry::Metrics& m, const std::string& series) {
  const auto text = "\n" + m.render();
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

double stage_cpu(const telemetry::Metrics& m, const std::string& stage) {
  return metric(m, "pprofd_stage_cpu_seconds_total{stage=\"" + stage + "\"}");
}

// Collects what the manager forwards; called on the I/O thread only.
struct Collector final : model::Appender {
  std::vector<model::ProfilePtr> profiles;
  void append(model::ProfilePtr profile) override { profiles.push_back(std::move(profile)); }
};

// A Go-like target: the first pull of /debug/pprof/allocs answers allocs_1, later ones allocs_2
// (the same process, later), both gzipped as Go sends them.
struct FakeTarget {
  std::string first = testdata("allocs_1.pb.gz");
  std::string later = testdata("allocs_2.pb.gz");
  int pulls = 0;
  http::Server server;
  std::uint16_t port = 0;

  explicit FakeTarget(asio::io_context& io)
      : server(io.get_executor(), [this](const http::ServerRequest& req) {
          ++pulls;
          return http::make_response(req, 200, "application/octet-stream",
                                     pulls == 1 ? first : later);
        }) {
    port = server.listen("127.0.0.1:0").value().port();
  }
};

void run_until(asio::io_context& io, const std::function<bool()>& cond) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!cond() && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
}

void await(asio::io_context& io, asio::awaitable<void> task) {
  bool done = false;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    done = true;
  });
  run_until(io, [&] { return done; });
  REQUIRE(done);
}

// Scrapes every 200 ms so a test sees two pulls quickly.
scrape::Settings fast_settings() {
  scrape::Settings settings;
  settings.interval = 200ms;
  settings.timeout = 2s;
  settings.max_concurrent = 4;
  return settings;
}

}  // namespace

TEST_CASE("a delta scrape counts CPU per stage, stamps the scrape end and sizes the baselines") {
  asio::io_context io;
  asio::thread_pool workers(1);
  FakeTarget target(io);
  telemetry::Metrics metrics;
  SystemClock clock;
  Collector collector;

  scrape::Settings settings = fast_settings();
  settings.delta[static_cast<std::size_t>(model::ProfileKind::memory)] = true;
  scrape::ScrapeManager manager(io.get_executor(), workers.get_executor(), metrics, collector,
                                clock, settings);

  // Every stage has its series from the start.
  for (const char* stage :
       {"gunzip", "inspect", "decode", "delta", "encode", "gzip", "send_encode"})
    CHECK(stage_cpu(metrics, stage) == 0);
  CHECK(metric(metrics, "pprofd_delta_state_bytes") == 0);

  model::Target t;
  t.address = "127.0.0.1:" + std::to_string(target.port);
  t.labels = {{"service_name", "svc"}, {"instance", t.address}};
  t.profiles = {{model::ProfileKind::memory, "/debug/pprof/allocs"}};
  const auto before = std::chrono::steady_clock::now();
  await(io, manager.sync({{"static/0", {t}}}));

  // The first pull only seeds the baseline; the second is forwarded as a delta.
  run_until(io, [&] { return !collector.profiles.empty(); });
  REQUIRE(collector.profiles.size() == 1);
  const auto& delta = *collector.profiles.front();
  CHECK(delta.labels.get_or("__delta__", "") == "false");
  CHECK(delta.scraped_at > before);
  CHECK(delta.scraped_at <= std::chrono::steady_clock::now());

  CHECK(metric(metrics, "pprofd_delta_total{result=\"first\"}") == 1);
  CHECK(metric(metrics, "pprofd_delta_total{result=\"emitted\"}") == 1);
  CHECK(stage_cpu(metrics, "gunzip") > 0);
  CHECK(stage_cpu(metrics, "inspect") > 0);
  CHECK(stage_cpu(metrics, "gzip") > 0);
  // decode + delta + encode add up to DeltaComputer::apply's CPU, whatever split it reports.
  CHECK(stage_cpu(metrics, "decode") + stage_cpu(metrics, "delta") + stage_cpu(metrics, "encode") >
        0);
  CHECK(stage_cpu(metrics, "send_encode") == 0);  // no sink in this test
  CHECK(metric(metrics, "pprofd_delta_state_bytes") > 0);

  // A stopped loop takes its baseline out of the gauge.
  await(io, manager.stop());
  CHECK(metric(metrics, "pprofd_delta_state_bytes") == 0);
  workers.join();
}

TEST_CASE("a type pprofd does not diff is forwarded as received, with no delta stages") {
  asio::io_context io;
  asio::thread_pool workers(1);
  FakeTarget target(io);
  telemetry::Metrics metrics;
  SystemClock clock;
  Collector collector;

  scrape::Settings settings = fast_settings();
  scrape::ScrapeManager manager(io.get_executor(), workers.get_executor(), metrics, collector,
                                clock, settings);
  model::Target t;
  t.address = "127.0.0.1:" + std::to_string(target.port);
  t.labels = {{"service_name", "svc"}};
  t.profiles = {{model::ProfileKind::memory, "/debug/pprof/allocs"}};
  await(io, manager.sync({{"static/0", {t}}}));
  run_until(io, [&] { return !collector.profiles.empty(); });
  REQUIRE(collector.profiles.size() == 1);
  CHECK(collector.profiles.front()->gzipped == target.first);  // the target's own gzip
  CHECK(collector.profiles.front()->scraped_at != std::chrono::steady_clock::time_point{});
  CHECK(stage_cpu(metrics, "gunzip") > 0);
  CHECK(stage_cpu(metrics, "inspect") > 0);
  CHECK(stage_cpu(metrics, "decode") == 0);
  CHECK(stage_cpu(metrics, "delta") == 0);
  CHECK(stage_cpu(metrics, "gzip") == 0);
  CHECK(metric(metrics, "pprofd_delta_state_bytes") == 0);
  await(io, manager.stop());
  workers.join();
}
