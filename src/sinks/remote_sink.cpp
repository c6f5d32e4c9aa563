#include "pprofd/sinks/remote_sink.hpp"

#include "pprofd/common/async.hpp"
#include "pprofd/common/base64.hpp"
#include "pprofd/common/cpu_clock.hpp"
#include "pprofd/telemetry/log.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>

namespace pprofd::sinks {
namespace asio = boost::asio;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

http::Endpoint endpoint_of(const std::string& url, std::string& path_prefix) {
  http::Endpoint ep;
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return ep;  // config validation already rejected such URLs
  ep.scheme = std::string(parsed->scheme());
  ep.host = std::string(parsed->host_address());
  if (!ep.host.empty() && ep.host.front() == '[') ep.host = ep.host.substr(1, ep.host.size() - 2);
  ep.port = parsed->has_port() ? parsed->port_number() : (ep.scheme == "https" ? 443 : 80);
  path_prefix = std::string(parsed->encoded_path());
  while (!path_prefix.empty() && path_prefix.back() == '/') path_prefix.pop_back();
  return ep;
}

}  // namespace

RemoteSink::RemoteSink(const config::SinkConfig& config, asio::any_io_executor io,
                       telemetry::Metrics& metrics, const Clock& clock,
                       std::shared_ptr<asio::ssl::context> tls)
    : config_(config),
      io_(io),
      metrics_(metrics),
      clock_(clock),
      delivery_latency_(metrics.delivery_latency.Add(
          {{"sink", config.name}}, telemetry::Metrics::delivery_latency_buckets())),
      client_(io, endpoint_of(config.url, path_prefix_),
              http::ClientOptions{std::move(tls), "", senders_per_sink}),
      policy_{config.queue.min_backoff, config.queue.max_backoff, config.queue.max_retries},
      password_(config.basic_auth.password_file),
      bearer_token_(config.bearer_token_file),
      random_(std::random_device{}()),
      wake_(io, std::chrono::steady_clock::time_point::max()),
      all_done_(io, std::chrono::steady_clock::time_point::max()) {
  const prometheus::Labels sink{{"sink", config_.name}};
  metrics_.sink_sent_profiles.Add(sink);
  metrics_.sink_sent_bytes.Add(sink);
  metrics_.sink_retries.Add(sink);
  metrics_.sink_queue_bytes.Add(sink).Set(0);
}

RemoteSink::~RemoteSink() {
  for (auto& signal : cancel_senders_) signal.emit(asio::cancellation_type::terminal);
}

void RemoteSink::start() {
  for (auto& signal : cancel_senders_) {
    ++running_senders_;
    auto self = shared_from_this();
    auto task = sender();
    asio::co_spawn(io_, std::move(task),
                   asio::bind_cancellation_slot(signal.slot(), [self](std::exception_ptr e) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                         telemetry::log_error("sink sender failed",
                                              {{"sink", self->config_.name}, {"error", ex.what()}});
                       }
                     }
                     if (--self->running_senders_ == 0) self->all_done_.cancel();
                   }));
  }
}

void RemoteSink::update_queue_gauge() {
  // Looked up once: this runs for every profile queued and every batch taken.
  if (queue_gauge_ == nullptr)
    queue_gauge_ = &metrics_.sink_queue_bytes.Add({{"sink", config_.name}});
  queue_gauge_->Set(static_cast<double>(queued_bytes_));
}

void RemoteSink::count_dropped(std::string_view reason, std::size_t profiles) {
  if (profiles == 0) return;
  metrics_.sink_dropped_profiles.Add({{"sink", config_.name}, {"reason", std::string(reason)}})
      .Increment(static_cast<double>(profiles));
}

void RemoteSink::append(model::ProfilePtr profile) {
  if (stopping_) {
    count_dropped("shutdown", 1);
    return;
  }
  // Profefe rejects a profile without samples; not sending it is a choice, not a loss.
  if (config_.type == config::SinkType::profefe && profile->sample_count == 0) {
    metrics_.sink_skipped_profiles.Add({{"sink", config_.name}, {"reason", "empty"}}).Increment();
    return;
  }
  queued_bytes_ += profile->gzipped.size();
  queue_.push_back(std::move(profile));
  std::size_t dropped = 0;
  while (queued_bytes_ > config_.queue.max_bytes && queue_.size() > 1) {
    queued_bytes_ -= queue_.front()->gzipped.size();
    queue_.pop_front();
    ++dropped;
  }
  if (dropped) {
    count_dropped("queue_full", dropped);
    // Once per 10 s at most: a dead backend would otherwise log once per scrape.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_queue_full_log_ > std::chrono::seconds(10)) {
      last_queue_full_log_ = now;
      telemetry::log_warn(
          "sink queue full: dropping the oldest profiles (see pprofd_sink_dropped_profiles_total)",
          {{"sink", config_.name}});
    }
  }
  update_queue_gauge();
  wake_.cancel_one();
  // Senders lingering for a fuller push stop waiting once a full one is there.
  if (!lingering_.empty() && batch_ready()) end_lingering();
}

bool RemoteSink::batch_ready() const {
  if (queue_.size() >= push_batch_max_profiles) return true;
  std::uint64_t raw = 0;
  for (const auto& p : queue_) {
    raw += p->raw_size;
    if (raw > push_batch_raw_bytes) return true;
  }
  return false;
}

std::vector<model::ProfilePtr> RemoteSink::take_batch() {
  std::vector<model::ProfilePtr> batch;
  std::uint64_t raw = 0;
  const bool batching = config_.type == config::SinkType::pyroscope;
  while (!queue_.empty()) {
    const auto& next = queue_.front();
    if (!batch.empty() && (!batching || batch.size() >= push_batch_max_profiles ||
                           raw + next->raw_size > push_batch_raw_bytes))
      break;
    raw += next->raw_size;
    queued_bytes_ -= next->gzipped.size();
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  update_queue_gauge();
  return batch;
}

std::optional<EncodedRequest> RemoteSink::encode(const std::vector<model::ProfilePtr>& batch) {
  switch (config_.type) {
    case config::SinkType::pyroscope:
      return encode_push(batch);
    case config::SinkType::pyroscope_ingest:
      return encode_ingest(*batch.front());
    case config::SinkType::profefe:
      return encode_profefe(*batch.front());
    case config::SinkType::file:
      break;
  }
  return std::nullopt;
}

asio::awaitable<void> RemoteSink::sender() {
  auto self = shared_from_this();
  // Cancellation (the shutdown deadline) must surface as error codes, so the batch in hand is
  // counted as dropped instead of vanishing with an exception.
  co_await asio::this_coro::throw_if_cancelled(false);
  while (true) {
    if (queue_.empty()) {
      if (stopping_) break;
      co_await wake_.async_wait(use_tuple);
      // The timer never expires by itself: an error here means either a wake-up (cancel_one)
      // or this sender being cancelled, which the cancellation state tells apart.
      if (co_await cancelled()) break;
      continue;
    }
    if (config_.type == config::SinkType::pyroscope && !stopping_ && !batch_ready()) {
      // Linger until the oldest queued profile is push_batch_linger old, so a push carries
      // many series instead of one.
      const auto deadline = queue_.front()->scraped_at + push_batch_linger;
      if (deadline > std::chrono::steady_clock::now()) {
        asio::steady_timer linger(wake_.get_executor(), deadline);
        lingering_.insert(&linger);
        co_await linger.async_wait(use_tuple);
        lingering_.erase(&linger);
        if (co_await cancelled()) break;
        continue;  // another sender may have taken the queue meanwhile
      }
    }
    co_await deliver(take_batch());
    if (co_await cancelled()) break;
  }
}

asio::awaitable<void> RemoteSink::deliver(std::vector<model::ProfilePtr> batch) {
  CpuStopwatch cpu;
  auto request = encode(batch);
  metrics_.add_stage_cpu(telemetry::Stage::send_encode, cpu.lap());
  if (!request) {
    count_dropped("encode_error", batch.size());
    co_return;
  }
  http::Request req;
  req.method = boost::beast::http::verb::post;
  req.target = path_prefix_ + request->target;
  req.timeout = config_.timeout;
  req.body_limit = 1 << 20;  // answers are small; a huge one is not worth reading
  req.headers = std::move(request->headers);
  req.headers.emplace_back("Content-Type", request->content_type);
  if (!config_.tenant_id.empty()) req.headers.emplace_back("X-Scope-OrgID", config_.tenant_id);
  for (const auto& [name, value] : config_.headers) req.headers.emplace_back(name, value);
  const std::uint64_t body_bytes = request->body.size();

  RetryState state(policy_);
  asio::steady_timer backoff(io_);
  bool first_failure = true;
  while (true) {
    // Credentials are read per attempt from their files, so rotated secrets are picked up.
    auto attempt_req = req;
    attempt_req.body = request->body;
    if (!config_.basic_auth.username.empty()) {
      auto password = password_.get();
      if (!password)
        telemetry::log_error("sink credential unreadable",
                             {{"sink", config_.name}, {"error", password.error().message}});
      attempt_req.headers.emplace_back("Authorization",
                                       "Basic " + base64_encode(config_.basic_auth.username + ":" +
                                                                (password ? *password : "")));
    } else if (!config_.bearer_token_file.empty()) {
      auto token = bearer_token_.get();
      if (!token)
        telemetry::log_error("sink credential unreadable",
                             {{"sink", config_.name}, {"error", token.error().message}});
      attempt_req.headers.emplace_back("Authorization", "Bearer " + (token ? *token : ""));
    }
    const auto started = std::chrono::steady_clock::now();
    auto result = co_await client_.fetch(std::move(attempt_req));
    metrics_.sink_request_duration
        .Add({{"sink", config_.name}}, telemetry::Metrics::duration_buckets())
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

    AttemptResult outcome = AttemptResult::retryable;
    std::optional<Duration> retry_after;
    std::string error;
    if (!result) {
      if (result.error().kind == http::FailureKind::cancelled) {
        shutdown_drops_ += batch.size();
        count_dropped("shutdown", batch.size());
        break;
      }
      error = result.error().message;
    } else {
      outcome = classify_status(result->status);
      if (outcome != AttemptResult::delivered) {
        error = "HTTP " + std::to_string(result->status) + ": " + describe_error_body(result->body);
        retry_after = parse_retry_after(result->header("Retry-After"), clock_.now());
      }
    }
    // Past the shutdown deadline a failed attempt is final: drain() must not wait out a backoff.
    if (outcome != AttemptResult::delivered && co_await cancelled()) {
      shutdown_drops_ += batch.size();
      count_dropped("shutdown", batch.size());
      break;
    }
    const Decision decision =
        state.next(outcome, retry_after, std::uniform_real_distribution<double>(0, 1)(random_));
    if (decision.kind == Decision::done) {
      observe_delivery_latency(delivery_latency_, batch, std::chrono::steady_clock::now());
      metrics_.sink_sent_profiles.Add({{"sink", config_.name}})
          .Increment(static_cast<double>(batch.size()));
      metrics_.sink_sent_bytes.Add({{"sink", config_.name}})
          .Increment(static_cast<double>(body_bytes));
      if (!first_failure) {
        telemetry::log_info("sink delivered after retrying", {{"sink", config_.name}});
        wake_backing_off();  // the backend is back: the other senders need not sleep it out
      }
      break;
    }
    if (decision.kind == Decision::drop) {
      count_dropped(decision.drop_reason, batch.size());
      telemetry::log_warn("sink dropped profiles", {{"sink", config_.name},
                                                    {"reason", decision.drop_reason},
                                                    {"profiles", std::to_string(batch.size())},
                                                    {"error", error}});
      break;
    }
    if (first_failure) {
      telemetry::log_warn("sink delivery failed, retrying",
                          {{"sink", config_.name}, {"error", error}});
      first_failure = false;
    }
    metrics_.sink_retries.Add({{"sink", config_.name}}).Increment();
    backoff.expires_after(decision.delay);
    backing_off_.insert(&backoff);
    co_await backoff.async_wait(use_tuple);
    backing_off_.erase(&backoff);
    // Woken early (the backend answered another sender, or shutdown began): retry now. Only a
    // cancellation (the shutdown deadline) ends the delivery.
    if (co_await cancelled()) {
      shutdown_drops_ += batch.size();
      count_dropped("shutdown", batch.size());
      break;
    }
  }
}

void RemoteSink::end_lingering() {
  for (auto* timer : lingering_) timer->cancel();
}

void RemoteSink::wake_backing_off() {
  for (auto* timer : backing_off_) timer->cancel();
}

asio::awaitable<bool> RemoteSink::drain(std::chrono::steady_clock::time_point deadline) {
  auto self = shared_from_this();
  stopping_ = true;
  wake_.cancel();      // idle senders see the stop; busy ones finish the queue first
  wake_backing_off();  // and nobody sleeps out a backoff while the deadline runs
  end_lingering();     // nor waits to fill a push
  asio::steady_timer limit(io_, deadline);
  if (running_senders_ > 0) {
    // Whichever comes first: every sender done, or the deadline.
    limit.async_wait([this](boost::system::error_code ec) {
      if (!ec)
        for (auto& signal : cancel_senders_) signal.emit(asio::cancellation_type::terminal);
    });
    co_await all_done_.async_wait(use_tuple);
    limit.cancel();
  }
  count_dropped("shutdown", queue_.size());
  const std::size_t lost = queue_.size() + shutdown_drops_;
  queue_.clear();
  queued_bytes_ = 0;
  update_queue_gauge();
  co_return lost == 0;
}

}  // namespace pprofd::sinks
