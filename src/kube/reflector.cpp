#include "pprofd/kube/reflector.hpp"

#include <algorithm>

namespace pprofd::kube {

void PodStore::replace(std::vector<Pod> pods) {
  std::map<std::string, Pod> next;
  for (auto& pod : pods) {
    auto key = pod.key();
    next.insert_or_assign(std::move(key), std::move(pod));
  }
  for (const auto& [key, pod] : pods_) {
    auto it = next.find(key);
    if (it == next.end() || !(it->second == pod)) changed_.insert(key);
  }
  for (const auto& [key, pod] : next)
    if (pods_.count(key) == 0) changed_.insert(key);
  pods_ = std::move(next);
}

void PodStore::upsert(Pod pod) {
  auto key = pod.key();
  auto it = pods_.find(key);
  if (it != pods_.end() && it->second == pod) return;
  changed_.insert(key);
  pods_.insert_or_assign(std::move(key), std::move(pod));
}

void PodStore::erase(const std::string& key) {
  if (pods_.erase(key) > 0) changed_.insert(key);
}

const Pod* PodStore::find(const std::string& key) const {
  auto it = pods_.find(key);
  return it == pods_.end() ? nullptr : &it->second;
}

std::set<std::string> PodStore::take_changes() { return std::exchange(changed_, {}); }

Reflector::Reflector(std::function<double()> uniform01) : uniform01_(std::move(uniform01)) {}

ReflectorAction Reflector::start() { return list_from_start(); }

ReflectorAction Reflector::list_from_start() {
  pages_.clear();
  ++counters_.lists;
  ReflectorAction a;
  a.kind = ReflectorAction::Kind::list;
  return a;  // resourceVersion "" with a limit: a consistent, paginated snapshot
}

ReflectorAction Reflector::watch() {
  if (watched_once_) ++counters_.watch_restarts;
  watched_once_ = true;
  watch_error_.reset();
  ReflectorAction a;
  a.kind = ReflectorAction::Kind::watch;
  a.resource_version = last_rv_;
  // Spread re-watches of many replicas over [5 min, 10 min), as client-go does.
  a.timeout_seconds = 300 + static_cast<int>(uniform01_() * 300);
  return a;
}

ReflectorAction Reflector::back_off(ReflectorAction::Kind then, RequestFailure why) {
  backoff_ = backoff_.count() == 0 ? reflector_initial_backoff
                                   : std::min(backoff_ * 2, reflector_max_backoff);
  const auto jittered = backoff_ + std::chrono::duration_cast<Duration>(backoff_ * uniform01_());
  const auto cap = why == RequestFailure::unreachable ? reflector_max_unreachable_backoff
                                                      : reflector_max_backoff;
  after_wait_ = then;
  ReflectorAction a;
  a.kind = ReflectorAction::Kind::wait;
  a.delay = std::min(jittered, cap);
  return a;
}

ReflectorAction Reflector::on_list_page(ListPage page) {
  for (auto& pod : page.items) pages_.push_back(std::move(pod));
  if (!page.continue_token.empty()) {
    ++counters_.lists;
    ReflectorAction a;
    a.kind = ReflectorAction::Kind::list;
    a.continue_token = std::move(page.continue_token);
    return a;
  }
  store_.replace(std::exchange(pages_, {}));
  last_rv_ = std::move(page.resource_version);
  synced_ = true;
  backoff_ = Duration{0};
  return watch();
}

ReflectorAction Reflector::on_list_failed(RequestFailure failure) {
  pages_.clear();
  // An expired continue token: the snapshot is gone, start a fresh one at once.
  if (failure == RequestFailure::gone) {
    ++counters_.relists_expired;
    return list_from_start();
  }
  ++counters_.relists_error;
  return back_off(ReflectorAction::Kind::list, failure);
}

void Reflector::on_watch_event(WatchEvent event) {
  switch (event.type) {
    case WatchEvent::Type::added:
    case WatchEvent::Type::modified:
      if (event.pod) store_.upsert(std::move(*event.pod));
      break;
    case WatchEvent::Type::deleted:
      if (event.pod) store_.erase(event.pod->key());
      break;
    case WatchEvent::Type::bookmark:
      break;
    case WatchEvent::Type::error:
      watch_error_ = (event.error_code == 410 || event.error_reason == "Expired" ||
                      event.error_reason == "Gone")
                         ? RequestFailure::gone
                     : event.error_code == 429 ? RequestFailure::throttled
                                               : RequestFailure::other;
      return;
  }
  if (!event.resource_version.empty()) last_rv_ = std::move(event.resource_version);
}

ReflectorAction Reflector::on_watch_ended(std::optional<RequestFailure> failure, Duration lasted,
                                          std::size_t events) {
  if (watch_error_) failure = watch_error_;
  if (failure == RequestFailure::gone) {
    // The history we would resume from is compacted: only a fresh list is consistent.
    ++counters_.relists_expired;
    return list_from_start();
  }
  if (failure) return back_off(ReflectorAction::Kind::watch, *failure);
  // A stream that ends at once with nothing in it is a broken server or proxy, not a timeout.
  if (lasted < std::chrono::seconds(1) && events == 0)
    return back_off(ReflectorAction::Kind::watch, RequestFailure::other);
  backoff_ = Duration{0};
  return watch();
}

ReflectorAction Reflector::on_wait_done() {
  if (after_wait_ == ReflectorAction::Kind::watch && synced_) return watch();
  return list_from_start();
}

}  // namespace pprofd::kube
