#include "pprofd/sinks/file_sink.hpp"

#include "pprofd/common/cpu_clock.hpp"
#include "pprofd/common/thread_name.hpp"
#include "pprofd/telemetry/log.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pprofd::sinks {
namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace {

constexpr std::string_view profile_ext = ".pb.gz";
constexpr std::string_view sidecar_ext = ".json";
constexpr std::string_view temp_prefix = ".tmp-";

std::string safe_name(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return "_";
  std::string out(name);
  for (char& c : out)
    if (c == '/' || c == '\0') c = '_';
  return out;
}

// Writes data to a temporary file in the target's directory, flushes it and renames it over the
// target: readers see the whole file or none.
bool write_atomically(const fs::path& target, std::string_view data, std::uint64_t sequence,
                      std::string& error) {
  const fs::path temp =
      target.parent_path() /
      (std::string(temp_prefix) + std::to_string(getpid()) + "-" + std::to_string(sequence));
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "open " + temp.string() + ": " + std::strerror(errno);
    return false;
  }
  std::size_t written = 0;
  while (written < data.size()) {
    const auto n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = "write " + temp.string() + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      return false;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0 || ::rename(temp.c_str(), target.c_str()) != 0) {
    error = "rename to " + target.string() + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return false;
  }
  return true;
}

std::uint64_t size_or_zero(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

}  // namespace

fs::path file_sink_relative_path(const model::Profile& profile) {
  const auto& labels = profile.labels;
  const std::string_view who =
      labels.get(model::label_pod).value_or(labels.get_or(model::label_instance, "unknown"));
  const auto unix_ms = profile.time_nanos / 1'000'000;
  return fs::path(safe_name(labels.get_or(model::label_service_name, "unknown_service"))) /
         safe_name(labels.get_or(model::label_name, "unknown")) /
         (std::to_string(unix_ms) + "-" + safe_name(who));
}

std::string file_sink_sidecar(const model::Profile& profile) {
  nlohmann::ordered_json doc;
  nlohmann::ordered_json labels = nlohmann::ordered_json::object();
  for (const auto& [name, value] : profile.labels) labels[name] = value;
  doc["labels"] = std::move(labels);
  doc["target"] = profile.target_url;
  doc["time_nanos"] = profile.time_nanos;
  doc["duration_nanos"] = profile.duration_nanos;
  nlohmann::ordered_json types = nlohmann::ordered_json::array();
  for (const auto& [type, unit] : profile.sample_types) types.push_back({type, unit});
  doc["sample_types"] = std::move(types);
  return doc.dump(2) + "\n";
}

FileSink::FileSink(const config::SinkConfig& config, telemetry::Metrics& metrics,
                   const Clock& clock)
    : name_(config.name),
      dir_(config.dir),
      max_bytes_(config.max_bytes),
      max_age_(config.max_age),
      metrics_(metrics),
      clock_(clock),
      delivery_latency_(metrics.delivery_latency.Add(
          {{"sink", config.name}}, telemetry::Metrics::delivery_latency_buckets())) {
  metrics_.sink_queue_bytes.Add({{"sink", name_}}).Set(0);
  metrics_.sink_sent_profiles.Add({{"sink", name_}});
  metrics_.sink_sent_bytes.Add({{"sink", name_}});
}

FileSink::~FileSink() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FileSink::start() {
  scan_existing();
  enforce_retention();
  thread_ = std::thread([this] {
    set_thread_name("pprofd-file");
    writer_thread();
  });
}

void FileSink::scan_existing() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  std::vector<StoredFile> found;
  for (auto it = fs::recursive_directory_iterator(dir_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string file = it->path().filename().string();
    if (file.rfind(temp_prefix, 0) == 0) {
      fs::remove(it->path(), ec);  // left behind by a crash mid-write
      continue;
    }
    if (file.size() <= profile_ext.size() ||
        file.compare(file.size() - profile_ext.size(), profile_ext.size(), profile_ext) != 0)
      continue;
    fs::path stem = it->path();
    stem.replace_filename(file.substr(0, file.size() - profile_ext.size()));
    const auto mtime = fs::last_write_time(it->path(), ec);
    const auto written = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
        std::chrono::file_clock::to_sys(mtime));
    found.push_back({stem,
                     size_or_zero(it->path()) +
                         size_or_zero(fs::path(stem.string() + std::string(sidecar_ext))),
                     written});
  }
  std::sort(found.begin(), found.end(),
            [](const StoredFile& a, const StoredFile& b) { return a.written < b.written; });
  std::lock_guard lock(mutex_);
  for (auto& f : found) {
    stored_bytes_ += f.bytes;
    stored_.push_back(std::move(f));
  }
}

void FileSink::append(model::ProfilePtr profile) {
  std::size_t dropped = 0;
  {
    std::lock_guard lock(mutex_);
    if (stop_) {
      dropped = 1;
    } else {
      queued_bytes_ += profile->gzipped.size();
      queue_.push_back(std::move(profile));
      // Full: the oldest profiles give way, so the newest data survives an outage.
      while (queued_bytes_ > queue_limit_bytes && queue_.size() > 1) {
        queued_bytes_ -= queue_.front()->gzipped.size();
        queue_.pop_front();
        ++dropped;
      }
      metrics_.sink_queue_bytes.Add({{"sink", name_}}).Set(static_cast<double>(queued_bytes_));
    }
  }
  if (dropped) drop(stop_ ? "shutdown" : "queue_full", dropped);
  wake_.notify_one();
}

void FileSink::drop(std::string_view reason, std::size_t count) {
  metrics_.sink_dropped_profiles.Add({{"sink", name_}, {"reason", std::string(reason)}})
      .Increment(static_cast<double>(count));
}

void FileSink::writer_thread() {
  auto last_retention = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, std::chrono::seconds(5), [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stop_) break;
      // Age-based retention also applies while nothing new arrives.
      if (std::chrono::steady_clock::now() - last_retention > std::chrono::minutes(1)) {
        lock.unlock();
        enforce_retention();
        last_retention = std::chrono::steady_clock::now();
        lock.lock();
      }
      continue;
    }
    auto profile = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= profile->gzipped.size();
    metrics_.sink_queue_bytes.Add({{"sink", name_}}).Set(static_cast<double>(queued_bytes_));
    writing_ = true;
    lock.unlock();

    const auto started = std::chrono::steady_clock::now();
    const bool ok = write(*profile);
    metrics_.sink_request_duration.Add({{"sink", name_}}, telemetry::Metrics::duration_buckets())
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (ok) {
      observe_delivery_latency(delivery_latency_, std::span(&profile, 1),
                               std::chrono::steady_clock::now());
      metrics_.sink_sent_profiles.Add({{"sink", name_}}).Increment();
      metrics_.sink_sent_bytes.Add({{"sink", name_}})
          .Increment(static_cast<double>(profile->gzipped.size()));
      enforce_retention();
    } else {
      drop("write_error");
    }
    lock.lock();
    writing_ = false;
  }
}

bool FileSink::write(const model::Profile& profile) {
  const fs::path relative = file_sink_relative_path(profile);
  fs::path stem = dir_ / relative;
  std::error_code ec;
  fs::create_directories(stem.parent_path(), ec);
  if (ec) {
    telemetry::log_error(
        "file sink: cannot create directory",
        {{"sink", name_}, {"dir", stem.parent_path().string()}, {"error", ec.message()}});
    return false;
  }
  // Two profiles of one name in the same millisecond (memory and godeltaprof_memory) both keep.
  for (int n = 1; fs::exists(stem.string() + std::string(profile_ext)); ++n)
    stem = dir_ / (relative.string() + "-" + std::to_string(n));

  std::string error;
  CpuStopwatch cpu;
  const std::string sidecar = file_sink_sidecar(profile);
  metrics_.add_stage_cpu(telemetry::Stage::send_encode, cpu.lap());
  if (!write_atomically(stem.string() + std::string(profile_ext), profile.gzipped, ++sequence_,
                        error) ||
      !write_atomically(stem.string() + std::string(sidecar_ext), sidecar, ++sequence_, error)) {
    telemetry::log_error("file sink: write failed", {{"sink", name_}, {"error", error}});
    return false;
  }
  std::lock_guard lock(mutex_);
  const std::uint64_t bytes = profile.gzipped.size() + sidecar.size();
  stored_bytes_ += bytes;
  stored_.push_back({std::move(stem), bytes, clock_.now()});
  return true;
}

void FileSink::enforce_retention() {
  const auto now = clock_.now();
  std::vector<fs::path> doomed;
  {
    std::lock_guard lock(mutex_);
    while (!stored_.empty() &&
           (stored_bytes_ > max_bytes_ ||
            now - stored_.front().written >
                std::chrono::duration_cast<std::chrono::system_clock::duration>(max_age_))) {
      stored_bytes_ -= stored_.front().bytes;
      doomed.push_back(std::move(stored_.front().stem));
      stored_.pop_front();
    }
  }
  for (const auto& stem : doomed) {
    std::error_code ec;
    // The sidecar first: a profile without sidecar is still usable, a sidecar alone is not.
    fs::remove(stem.string() + std::string(sidecar_ext), ec);
    fs::remove(stem.string() + std::string(profile_ext), ec);
  }
}

std::uint64_t FileSink::stored_bytes() const {
  std::lock_guard lock(mutex_);
  return stored_bytes_;
}

asio::awaitable<bool> FileSink::drain(std::chrono::steady_clock::time_point deadline) {
  asio::steady_timer poll(co_await asio::this_coro::executor);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty() && !writing_) break;
    }
    poll.expires_after(std::chrono::milliseconds(10));
    co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  std::size_t lost = 0;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    lost = queue_.size();
    queue_.clear();
    queued_bytes_ = 0;
  }
  wake_.notify_all();
  if (lost) drop("shutdown", lost);
  co_return lost == 0;
}

}  // namespace pprofd::sinks
