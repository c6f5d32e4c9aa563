#include "pprofd/scrape/manager.hpp"

#include "pprofd/common/cpu_clock.hpp"
#include "pprofd/common/hash.hpp"
#include "pprofd/common/token_file.hpp"
#include "pprofd/http/client.hpp"
#include "pprofd/pprof/delta.hpp"
#include "pprofd/scrape/schedule.hpp"
#include "pprofd/scrape/validate.hpp"
#include "pprofd/telemetry/log.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <set>

namespace pprofd::scrape {
namespace asio = boost::asio;
using namespace std::chrono;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

double seconds_of(Duration d) { return duration<double>(d).count(); }

// Runs f on another executor and resumes the caller on its own.
template <class F>
asio::awaitable<std::invoke_result_t<F&>> invoke(F f) {
  co_return f();
}

// Caps HTTP pulls in flight (scrape.max_concurrent). A channel's buffer is the set of permits.
class Limiter {
 public:
  Limiter(asio::any_io_executor ex, std::size_t permits) : permits_(ex, permits) {}
  asio::awaitable<bool> acquire() {
    auto [ec] = co_await permits_.async_send(boost::system::error_code{}, use_tuple);
    co_return !ec;
  }
  void release() {
    permits_.try_receive([](auto...) {});
  }

 private:
  asio::experimental::channel<void(boost::system::error_code)> permits_;
};

// Gives an acquired Limiter permit back at the end of its scope, exceptions included.
class Permit {
 public:
  explicit Permit(Limiter& limiter) : limiter_(limiter) {}
  ~Permit() { limiter_.release(); }
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;

 private:
  Limiter& limiter_;
};

// One pull in flight: holds a permit and counts itself in the in-flight gauge.
class PullSlot {
 public:
  PullSlot(Limiter& limiter, prometheus::Gauge& in_flight)
      : permit_(limiter), in_flight_(in_flight) {
    in_flight_.Increment();
  }
  ~PullSlot() { in_flight_.Decrement(); }
  PullSlot(const PullSlot&) = delete;
  PullSlot& operator=(const PullSlot&) = delete;

 private:
  Permit permit_;
  prometheus::Gauge& in_flight_;
};

// What the worker pool hands back for one response.
struct Outcome {
  std::optional<ScrapeError> error;
  model::ProfilePtr profile;
  std::optional<pprof::DeltaStatus> delta;
  bool delta_failed = false;
  telemetry::StageCpu cpu;                       // added to the stage counters on the I/O thread
  std::optional<std::size_t> delta_state_bytes;  // the loop's baseline size after this profile
};

// State shared by the manager and its loops; loops keep it alive while they wind down.
struct Shared {
  asio::any_io_executor io;
  asio::any_io_executor workers;
  telemetry::Metrics& metrics;
  model::Appender& appender;
  const Clock& clock;
  std::shared_ptr<const Settings> settings;
  Limiter limiter;
  TokenFile bearer_token;
};

std::string loop_key(const model::Target& target, const model::TargetProfile& profile) {
  return target.url(profile.path) + "#" + std::string(model::info(profile.kind).name) +
         target.labels.to_string();
}

}  // namespace

class Loop : public std::enable_shared_from_this<Loop> {
 public:
  Loop(std::shared_ptr<Shared> shared, std::string source, model::Target target,
       model::TargetProfile profile, std::shared_ptr<http::Client> client)
      : shared_(std::move(shared)),
        settings_(shared_->settings),
        source_(std::move(source)),
        target_(std::move(target)),
        profile_(std::move(profile)),
        client_(std::move(client)),
        done_(shared_->io, steady_clock::time_point::max()),
        type_name_(model::info(profile_.kind).name),
        scrapes_(shared_->metrics.scrapes_total),
        duration_(shared_->metrics.scrape_duration.Add({{"profile_type", type_name_}},
                                                       telemetry::Metrics::duration_buckets())),
        bytes_(shared_->metrics.scrape_bytes_total.Add({{"profile_type", type_name_}})),
        missed_(shared_->metrics.scrape_missed_slots.Add({{"profile_type", type_name_}})),
        lateness_(
            shared_->metrics.scrape_lateness.Add({}, telemetry::Metrics::lateness_buckets())) {
    status_.url = target_.url(profile_.path);
    status_.kind = profile_.kind;
    status_.labels = target_.labels;
    // Each (target, type) gets its own phase, so one pod's five profile types do not all hit it
    // at the same instant.
    hash_ = fnv1a64(status_.url, target_.labels.hash());
  }

  void start() {
    auto self = shared_from_this();
    auto task = run();
    asio::co_spawn(shared_->io, std::move(task),
                   asio::bind_cancellation_slot(cancel_.slot(), [self](std::exception_ptr e) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                         telemetry::log_error("scrape loop failed", {{"target", self->status_.url},
                                                                     {"error", ex.what()}});
                       }
                     }
                     // No worker holds the loop any more: its baselines leave the gauge.
                     self->report_delta_state(0);
                     self->stopped_ = true;
                     self->done_.cancel();
                   }));
  }

  void cancel() {
    stopping_ = true;
    cancel_.emit(asio::cancellation_type::terminal);
  }

  asio::awaitable<void> wait_stopped() {
    auto self = shared_from_this();
    if (!stopped_) co_await done_.async_wait(use_tuple);
  }

  const LoopStatus& status() const { return status_; }
  const std::string& source() const { return source_; }
  const model::Target& target() const { return target_; }

 private:
  asio::awaitable<void> run() {
    auto self = shared_from_this();
    co_await asio::this_coro::throw_if_cancelled(false);  // stop is seen as error codes
    const Settings& s = *settings_;
    asio::system_timer timer(shared_->io);
    WallTime scheduled =
        first_slot(shared_->clock.now(), s.interval, slot_offset(hash_, s.seed, s.interval));
    while (!stopping_) {
      status_.next_scrape = scheduled;
      timer.expires_at(scheduled);
      auto [ec] = co_await timer.async_wait(use_tuple);
      if (ec || stopping_) break;
      lateness_.Observe(std::max(0.0, seconds_of(shared_->clock.now() - scheduled)));
      co_await scrape_once();
      if (stopping_) break;
      const auto next = next_slot(scheduled, shared_->clock.now(), s.interval);
      if (next.missed > 0) missed_.Increment(static_cast<double>(next.missed));
      scheduled = next.at;
    }
  }

  http::Request build_request() {
    const Settings& s = *settings_;
    http::Request req;
    req.target = profile_.path;
    req.timeout = s.timeout;
    req.body_limit = s.body_size_limit;
    if (model::info(profile_.kind).duration) {
      const auto secs = duration_cast<seconds>(s.cpu_duration).count();
      req.target += (req.target.find('?') == std::string::npos ? "?seconds=" : "&seconds=") +
                    std::to_string(secs);
      req.timeout = s.cpu_duration + s.timeout;
    }
    if (!s.bearer_token_file.empty()) {
      if (auto token = shared_->bearer_token.get(); token && !token->empty())
        req.headers.emplace_back("Authorization", "Bearer " + *token);
    }
    return req;
  }

  asio::awaitable<void> scrape_once() {
    if (!co_await shared_->limiter.acquire()) co_return;
    // The permit and the in-flight gauge are given back on every path out, exceptions included.
    std::optional<PullSlot> slot{std::in_place, shared_->limiter,
                                 child(in_flight_, shared_->metrics.scrapes_in_flight, {})};
    // The permit may have been granted just as the loop was stopped.
    if (stopping_) co_return;
    const auto started_wall = shared_->clock.now();
    const auto started = steady_clock::now();
    auto fetched = co_await client_->fetch(build_request());
    const auto fetched_at = steady_clock::now();  // delivery latency starts here
    slot.reset();
    if (stopping_) co_return;

    if (!fetched) {
      const auto& failure = fetched.error();
      if (failure.kind == http::FailureKind::cancelled) co_return;
      const ScrapeResult result =
          failure.kind == http::FailureKind::timeout     ? ScrapeResult::timeout
          : failure.kind == http::FailureKind::too_large ? ScrapeResult::too_large
          : failure.kind == http::FailureKind::protocol  ? ScrapeResult::invalid
                                                         : ScrapeResult::connect_error;
      record(result, failure.message, started_wall, steady_clock::now() - started, 0);
      co_return;
    }

    const std::uint64_t wire_bytes = fetched->wire_bytes;
    bytes_.Increment(static_cast<double>(wire_bytes));
    auto work = [self = shared_from_this(), response = std::move(*fetched), fetched_at]() mutable {
      // Nothing may escape a worker thread: an exception there would end the process.
      try {
        return self->process(std::move(response), fetched_at);
      } catch (const std::exception& e) {
        Outcome failed;
        failed.error =
            ScrapeError{ScrapeResult::invalid, std::string("processing failed: ") + e.what()};
        return failed;
      }
    };
    // The worker job is not cancellable, and forwarding the loop's cancellation into a
    // coroutine running on another thread is unsafe in Asio 1.81: bind an empty slot.
    Outcome outcome = co_await asio::co_spawn(
        shared_->workers, invoke(std::move(work)),
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
    // The CPU was spent and the baseline changed even if the loop is stopping now.
    shared_->metrics.add_stage_cpu(outcome.cpu);
    if (outcome.delta_state_bytes) report_delta_state(*outcome.delta_state_bytes);
    if (stopping_) {
      // Fetched and processed, but the loop was stopped meanwhile: counted, not forwarded.
      if (outcome.profile) scrape_counter(discarded_slot, "discarded").Increment();
      co_return;
    }

    if (outcome.delta) {
      static constexpr std::array names{"emitted", "first", "reset"};
      const auto d = static_cast<std::size_t>(*outcome.delta);
      child(delta_counters_[d], shared_->metrics.delta_total, {{"result", names[d]}}).Increment();
    }
    if (outcome.delta_failed)
      child(delta_counters_[delta_error_slot], shared_->metrics.delta_total, {{"result", "error"}})
          .Increment();

    if (outcome.error) {
      record(outcome.error->result, outcome.error->message, started_wall,
             steady_clock::now() - started, wire_bytes);
      co_return;
    }
    record(ScrapeResult::success, {}, started_wall, steady_clock::now() - started, wire_bytes);
    if (outcome.profile) shared_->appender.append(std::move(outcome.profile));
  }

  // Runs on the worker pool: validation, delta and label assembly, no I/O. Each stage's thread
  // CPU goes into out.cpu.
  Outcome process(http::Response response, steady_clock::time_point fetched_at) {
    using telemetry::Stage;
    const Settings& s = *settings_;
    Outcome out;
    CpuStopwatch cpu;
    auto unpacked =
        unpack_response(response.status, std::move(response.body), 4 * s.body_size_limit);
    out.cpu.add(Stage::gunzip, cpu.lap());
    if (!unpacked) {
      out.error = unpacked.error();
      return out;
    }
    auto validated = inspect_body(std::move(*unpacked), response.header("Content-Type"));
    out.cpu.add(Stage::inspect, cpu.lap());
    if (!validated) {
      out.error = validated.error();
      return out;
    }
    const auto& info = model::info(profile_.kind);
    auto profile = std::make_shared<model::Profile>();
    profile->kind = profile_.kind;
    profile->target_url = status_.url;
    profile->scraped_at = fetched_at;
    profile->time_nanos = validated->summary.time_nanos;
    profile->duration_nanos = validated->summary.duration_nanos;
    profile->sample_count = static_cast<std::int64_t>(validated->summary.sample_count);
    for (const auto& vt : validated->summary.sample_types)
      profile->sample_types.emplace_back(vt.type, vt.unit);

    const bool diff = info.cumulative && s.delta[static_cast<std::size_t>(profile_.kind)];
    if (diff) {
      cpu.lap();
      auto delta = delta_.apply(validated->raw);
      const auto apply_cpu = cpu.lap();
      out.delta_state_bytes = delta_.state_bytes();
      if (!delta) {
        out.cpu.add(Stage::delta, apply_cpu);
        out.delta_failed = true;
        out.error = ScrapeError{ScrapeResult::invalid, "delta: " + delta.error().message};
        return out;
      }
      // apply() splits its own CPU; what it leaves unattributed counts as diffing, so the three
      // stages always add up to apply()'s total.
      const auto& split = delta->cpu;
      out.cpu.add(Stage::decode, split.decode);
      out.cpu.add(Stage::encode, split.encode);
      out.cpu.add(Stage::delta, std::max(split.diff, apply_cpu - split.decode - split.encode));
      out.delta = delta->status;
      if (delta->status != pprof::DeltaStatus::emitted) return out;  // baseline only
      // apply() wrote the delta itself and reports what it holds: no second walk needed.
      profile->time_nanos = delta->time_nanos;
      profile->duration_nanos = delta->duration_nanos;
      profile->sample_count = static_cast<std::int64_t>(delta->sample_count);
      profile->gzipped = pprof::gzip(delta->profile);
      out.cpu.add(Stage::gzip, cpu.lap());
      profile->raw_size = delta->profile.size();
    } else if (!validated->gzipped.empty()) {
      profile->gzipped = std::move(validated->gzipped);  // the target's own gzip, as received
      profile->raw_size = validated->raw.size();
    } else {
      cpu.lap();
      profile->gzipped = pprof::gzip(validated->raw);
      out.cpu.add(Stage::gzip, cpu.lap());
      profile->raw_size = validated->raw.size();
    }
    if (profile->time_nanos == 0) profile->time_nanos = unix_nanos(shared_->clock.now());

    profile->labels = target_.labels;
    for (const auto& [name, value] : s.external_labels) profile->labels.set(name, value);
    profile->labels.set(model::label_name, info.forwarded_name);
    if (diff || info.godeltaprof) profile->labels.set(model::label_delta, "false");
    out.profile = std::move(profile);
    return out;
  }

  // Moves this loop's share of pprofd_delta_state_bytes to `bytes` (I/O thread only).
  void report_delta_state(std::size_t bytes) {
    auto& gauge = shared_->metrics.delta_state_bytes;
    if (bytes > reported_state_bytes_)
      gauge.Increment(static_cast<double>(bytes - reported_state_bytes_));
    else if (bytes < reported_state_bytes_)
      gauge.Decrement(static_cast<double>(reported_state_bytes_ - bytes));
    reported_state_bytes_ = bytes;
  }

  template <class Metric>
  static Metric& child(Metric*& cached, prometheus::Family<Metric>& family,
                       const prometheus::Labels& labels) {
    if (cached == nullptr) cached = &family.Add(labels);
    return *cached;
  }

  prometheus::Counter& scrape_counter(std::size_t slot, std::string_view result) {
    return child(scrape_counters_[slot], scrapes_,
                 {{"profile_type", type_name_}, {"result", std::string(result)}});
  }

  void record(ScrapeResult result, const std::string& error, WallTime started, Duration took,
              std::uint64_t bytes) {
    scrape_counter(static_cast<std::size_t>(result), to_string(result)).Increment();
    duration_.Observe(seconds_of(took));
    status_.last_scrape = started;
    status_.last_duration = took;
    status_.last_bytes = bytes;
    const bool up = result == ScrapeResult::success;
    // Log transitions only: a thousand dead targets must not write a thousand lines per interval.
    if (!up && (status_.health != "down" || status_.last_error != error))
      telemetry::log_warn("scrape failed", {{"target", status_.url},
                                            {"profile_type", type_name_},
                                            {"result", to_string(result)},
                                            {"error", error}});
    else if (up && status_.health == "down")
      telemetry::log_info("scrape recovered",
                          {{"target", status_.url}, {"profile_type", type_name_}});
    status_.health = up ? "up" : "down";
    status_.last_error = error;
  }

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<const Settings> settings_;
  std::string source_;
  model::Target target_;
  model::TargetProfile profile_;
  std::shared_ptr<http::Client> client_;
  asio::cancellation_signal cancel_;
  asio::steady_timer done_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::uint64_t hash_ = 0;
  std::string type_name_;
  LoopStatus status_;
  pprof::DeltaComputer delta_;            // touched only by process(), one call at a time
  std::size_t reported_state_bytes_ = 0;  // delta_'s size as last added to the gauge
  prometheus::Family<prometheus::Counter>& scrapes_;
  // Children looked up on first use and kept: Family::Add locks and hashes its labels, too much
  // per scrape, and creating them all up front would export series for results never seen.
  static constexpr std::size_t discarded_slot = 6;    // after the six ScrapeResult values
  static constexpr std::size_t delta_error_slot = 3;  // after the three DeltaStatus values
  std::array<prometheus::Counter*, 7> scrape_counters_{};
  std::array<prometheus::Counter*, 4> delta_counters_{};
  prometheus::Gauge* in_flight_ = nullptr;
  prometheus::Histogram& duration_;
  prometheus::Counter& bytes_;
  prometheus::Counter& missed_;
  prometheus::Histogram& lateness_;
};

struct ScrapeManager::Impl {
  // sync, update_settings and stop each suspend while loops wind down; one at a time, so a
  // discovery sync cannot recreate loops with the settings a reload is replacing.
  explicit Impl(asio::any_io_executor io) : serial(io, 1) {}
  Limiter serial;
  std::shared_ptr<Shared> shared;
  std::map<std::string, std::vector<model::Target>> groups;
  std::map<std::string, std::shared_ptr<Loop>> loops;
  std::map<std::string, std::weak_ptr<http::Client>> clients;

  std::shared_ptr<http::Client> client_for(const model::Target& target) {
    const std::string key = target.scheme + "://" + target.address;
    if (auto existing = clients[key].lock()) return existing;
    auto endpoint = http::parse_endpoint(target.scheme, target.address);
    if (!endpoint) return nullptr;
    http::ClientOptions options;
    options.tls = shared->settings->tls;
    options.server_name = shared->settings->tls_server_name;
    auto client = std::make_shared<http::Client>(shared->io, std::move(*endpoint), options);
    clients[key] = client;
    return client;
  }

  asio::awaitable<void> stop_loops(std::vector<std::shared_ptr<Loop>> stopping) {
    for (auto& loop : stopping) loop->cancel();
    for (auto& loop : stopping) co_await loop->wait_stopped();
  }

  asio::awaitable<void> reconcile() {
    struct Wanted {
      const std::string* source;
      const model::Target* target;
      const model::TargetProfile* profile;
    };
    std::map<std::string, Wanted> wanted;
    std::set<std::string> distinct_targets;
    for (const auto& [source, targets] : groups)
      for (const auto& target : targets) {
        distinct_targets.insert(target.scheme + "://" + target.address + target.labels.to_string());
        for (const auto& profile : target.profiles)
          wanted.emplace(loop_key(target, profile), Wanted{&source, &target, &profile});
      }

    std::vector<std::shared_ptr<Loop>> stopping;
    for (auto it = loops.begin(); it != loops.end();) {
      if (wanted.count(it->first) == 0) {
        stopping.push_back(std::move(it->second));
        it = loops.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [key, want] : wanted) {
      if (loops.count(key) != 0) continue;
      auto client = client_for(*want.target);
      if (!client) {
        telemetry::log_warn("target skipped: bad address", {{"address", want.target->address}});
        continue;
      }
      auto loop = std::make_shared<Loop>(shared, *want.source, *want.target, *want.profile,
                                         std::move(client));
      loop->start();
      loops.emplace(key, std::move(loop));
    }
    shared->metrics.targets.Add({{"state", "active"}})
        .Set(static_cast<double>(distinct_targets.size()));
    co_await stop_loops(std::move(stopping));
    std::erase_if(clients, [](const auto& entry) { return entry.second.expired(); });
  }
};

ScrapeManager::ScrapeManager(asio::any_io_executor io, asio::any_io_executor workers,
                             telemetry::Metrics& metrics, model::Appender& appender,
                             const Clock& clock, Settings settings)
    : impl_(std::make_unique<Impl>(io)) {
  const auto permits = static_cast<std::size_t>(settings.max_concurrent);
  auto token_path = settings.bearer_token_file;
  impl_->shared = std::shared_ptr<Shared>(new Shared{
      io, workers, metrics, appender, clock, std::make_shared<const Settings>(std::move(settings)),
      Limiter(io, permits), TokenFile(std::move(token_path))});
}

ScrapeManager::~ScrapeManager() {
  for (auto& [key, loop] : impl_->loops) loop->cancel();
}

asio::awaitable<void> ScrapeManager::sync(std::vector<model::TargetGroup> groups) {
  if (!co_await impl_->serial.acquire()) co_return;
  Permit held(impl_->serial);  // the manager's one-permit lock
  for (auto& group : groups) {
    if (group.targets.empty())
      impl_->groups.erase(group.source);
    else
      impl_->groups[group.source] = std::move(group.targets);
  }
  co_await impl_->reconcile();
}

asio::awaitable<void> ScrapeManager::update_settings(Settings settings) {
  if (!co_await impl_->serial.acquire()) co_return;
  Permit held(impl_->serial);  // the manager's one-permit lock
  // A TLS context is rebuilt on every config load; the same files mean the same context.
  if (settings.tls_config == impl_->shared->settings->tls_config)
    settings.tls = impl_->shared->settings->tls;
  if (settings == *impl_->shared->settings) co_return;
  std::vector<std::shared_ptr<Loop>> all;
  for (auto& [key, loop] : impl_->loops) all.push_back(std::move(loop));
  impl_->loops.clear();
  co_await impl_->stop_loops(std::move(all));
  impl_->clients.clear();
  const auto permits = static_cast<std::size_t>(settings.max_concurrent);
  auto token_path = settings.bearer_token_file;
  auto& old = *impl_->shared;
  impl_->shared = std::shared_ptr<Shared>(
      new Shared{old.io, old.workers, old.metrics, old.appender, old.clock,
                 std::make_shared<const Settings>(std::move(settings)), Limiter(old.io, permits),
                 TokenFile(std::move(token_path))});
  co_await impl_->reconcile();
}

asio::awaitable<void> ScrapeManager::stop() {
  if (!co_await impl_->serial.acquire()) co_return;
  Permit held(impl_->serial);  // the manager's one-permit lock
  std::vector<std::shared_ptr<Loop>> all;
  for (auto& [key, loop] : impl_->loops) all.push_back(std::move(loop));
  impl_->loops.clear();
  impl_->groups.clear();
  co_await impl_->stop_loops(std::move(all));
  impl_->shared->metrics.targets.Add({{"state", "active"}}).Set(0);
}

std::vector<TargetStatus> ScrapeManager::snapshot() const {
  std::map<std::string, TargetStatus> by_target;
  for (const auto& [key, loop] : impl_->loops) {
    const auto& t = loop->target();
    auto& entry =
        by_target[loop->source() + "|" + t.scheme + "://" + t.address + t.labels.to_string()];
    if (entry.address.empty()) {
      entry.source = loop->source();
      entry.scheme = t.scheme;
      entry.address = t.address;
      entry.labels = t.labels;
    }
    entry.loops.push_back(loop->status());
  }
  std::vector<TargetStatus> out;
  out.reserve(by_target.size());
  for (auto& [key, status] : by_target) out.push_back(std::move(status));
  return out;
}

std::size_t ScrapeManager::loop_count() const { return impl_->loops.size(); }

}  // namespace pprofd::scrape
