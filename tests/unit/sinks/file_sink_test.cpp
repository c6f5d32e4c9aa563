#include "pprofd/sinks/file_sink.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>

namespace fs = std::filesystem;
using namespace pprofd;
using namespace std::chrono_literals;

namespace {

class FakeClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override { return now_; }
  void advance(std::chrono::system_clock::duration d) { now_ += d; }

 private:
  std::chrono::system_clock::time_point now_{std::chrono::seconds(1'700'000'000)};
};

struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("pprofd-file-sink-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

model::ProfilePtr make_profile(std::int64_t time_ms, std::string body, std::string pod = "") {
  auto p = std::make_shared<model::Profile>();
  p->kind = model::ProfileKind::memory;
  p->labels = {{"__name__", "memory"},
               {"service_name", "shop/cart"},
               {"instance", "10.0.0.7:6060"},
               {"__delta__", "false"}};
  if (!pod.empty()) p->labels.set("pod", pod);
  p->target_url = "http://10.0.0.7:6060/debug/pprof/allocs";
  p->gzipped = std::move(body);
  p->time_nanos = time_ms * 1'000'000;
  p->duration_nanos = 15'000'000'000;
  p->sample_types = {{"alloc_objects", "count"}, {"alloc_space", "bytes"}};
  return p;
}

config::SinkConfig sink_config(const fs::path& dir, std::uint64_t max_bytes = 1ULL << 30) {
  config::SinkConfig c;
  c.name = "local";
  c.type = config::SinkType::file;
  c.dir = dir.string();
  c.max_bytes = max_bytes;
  c.max_age = 24h;
  return c;
}

bool drain(sinks::FileSink& sink) {
  boost::asio::io_context io;
  bool complete = false;
  boost::asio::co_spawn(io, sink.drain(std::chrono::steady_clock::now() + 10s),
                        [&](std::exception_ptr, bool ok) { complete = ok; });
  io.run();
  return complete;
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("file names follow service/type/time-instance with unsafe characters replaced") {
  auto p = make_profile(1'700'000'000'123, "x");
  CHECK(sinks::file_sink_relative_path(*p) ==
        fs::path("shop_cart/memory/1700000000123-10.0.0.7:6060"));
  p = make_profile(5, "x", "cart-7d9f");
  CHECK(sinks::file_sink_relative_path(*p) == fs::path("shop_cart/memory/5-cart-7d9f"));
  auto evil = std::make_shared<model::Profile>(*p);
  evil->labels.set("service_name", "..");
  CHECK(sinks::file_sink_relative_path(*evil).begin()->string() == "_");
}

TEST_CASE("profiles and sidecars are written whole, with every label") {
  TempDir tmp;
  telemetry::Metrics metrics;
  FakeClock clock;
  sinks::FileSink sink(sink_config(tmp.path), metrics, clock);
  sink.start();
  sink.append(make_profile(1000, "first-profile"));
  sink.append(make_profile(1000, "same-millisecond"));  // must not overwrite the first
  sink.append(make_profile(2000, "second-profile", "cart-1"));
  REQUIRE(drain(sink));

  const auto files = files_in(tmp.path);
  REQUIRE(files.size() == 6);
  for (const auto& f : files) CHECK(f.filename().string().rfind(".tmp-", 0) != 0);
  CHECK(slurp(tmp.path / "shop_cart/memory/1000-10.0.0.7:6060.pb.gz") == "first-profile");
  CHECK(slurp(tmp.path / "shop_cart/memory/1000-10.0.0.7:6060-1.pb.gz") == "same-millisecond");
  const auto sidecar = nlohmann::json::parse(slurp(tmp.path / "shop_cart/memory/2000-cart-1.json"));
  CHECK(sidecar["labels"]["__name__"] == "memory");
  CHECK(sidecar["labels"]["__delta__"] == "false");
  CHECK(sidecar["labels"]["pod"] == "cart-1");
  CHECK(sidecar["target"] == "http://10.0.0.7:6060/debug/pprof/allocs");
  CHECK(sidecar["time_nanos"] == 2'000'000'000);
  CHECK(sidecar["duration_nanos"] == 15'000'000'000);
  CHECK(sidecar["sample_types"][1] == nlohmann::json::array({"alloc_space", "bytes"}));
  CHECK(metrics.render().find("pprofd_sink_sent_profiles_total{sink=\"local\"} 3") !=
        std::string::npos);
}

TEST_CASE("retention by bytes keeps the newest files under max_bytes") {
  TempDir tmp;
  telemetry::Metrics metrics;
  FakeClock clock;
  const std::uint64_t limit = 8000;
  sinks::FileSink sink(sink_config(tmp.path, limit), metrics, clock);
  sink.start();
  for (int i = 0; i < 20; ++i) {
    clock.advance(1s);
    sink.append(make_profile(1000 * (i + 1), std::string(1000, 'a' + (i % 26))));
  }
  REQUIRE(drain(sink));
  std::uint64_t total = 0;
  for (const auto& f : files_in(tmp.path)) total += fs::file_size(f);
  CHECK(total <= limit);
  CHECK(total > limit / 2);
  CHECK(fs::exists(tmp.path / "shop_cart/memory/20000-10.0.0.7:6060.pb.gz"));
  CHECK_FALSE(fs::exists(tmp.path / "shop_cart/memory/1000-10.0.0.7:6060.pb.gz"));
}

TEST_CASE("retention by age, and leftovers of a crash are cleaned at start") {
  TempDir tmp;
  telemetry::Metrics metrics;
  FakeClock clock;
  fs::create_directories(tmp.path / "svc/memory");
  std::ofstream(tmp.path / "svc/memory/.tmp-123-4") << "partial";
  {
    sinks::FileSink sink(sink_config(tmp.path), metrics, clock);
    sink.start();
    CHECK_FALSE(fs::exists(tmp.path / "svc/memory/.tmp-123-4"));
    sink.append(make_profile(1000, "old"));
    REQUIRE(drain(sink));
    REQUIRE(files_in(tmp.path).size() == 2);
    clock.advance(25h);
    sink.enforce_retention();
    CHECK(files_in(tmp.path).empty());
    CHECK(sink.stored_bytes() == 0);
  }
}

TEST_CASE("existing files count toward max_bytes after a restart") {
  TempDir tmp;
  telemetry::Metrics metrics;
  FakeClock clock;
  {
    sinks::FileSink sink(sink_config(tmp.path), metrics, clock);
    sink.start();
    for (int i = 0; i < 5; ++i) sink.append(make_profile(1000 * (i + 1), std::string(1000, 'x')));
    REQUIRE(drain(sink));
  }
  sinks::FileSink restarted(sink_config(tmp.path, 2500), metrics, clock);
  restarted.start();
  CHECK(restarted.stored_bytes() <= 2500);
  CHECK(restarted.stored_bytes() > 0);
}

TEST_CASE("the file sink observes delivery latency once per written profile") {
  TempDir tmp;
  telemetry::Metrics metrics;
  FakeClock clock;
  sinks::FileSink sink(sink_config(tmp.path), metrics, clock);
  sink.start();
  for (int i = 0; i < 2; ++i) {
    auto p = std::make_shared<model::Profile>(*make_profile(1000 + i, "body"));
    p->scraped_at = std::chrono::steady_clock::now();
    sink.append(std::move(p));
  }
  sink.append(make_profile(3000, "no scrape time"));  // not observed
  REQUIRE(drain(sink));
  const auto text = metrics.render();
  CHECK(text.find("pprofd_sink_sent_profiles_total{sink=\"local\"} 3") != std::string::npos);
  CHECK(text.find("pprofd_delivery_latency_seconds_count{sink=\"local\"} 2") != std::string::npos);
  CHECK(text.find("pprofd_stage_cpu_seconds_total{stage=\"send_encode\"} 0\n") ==
        std::string::npos);
}
