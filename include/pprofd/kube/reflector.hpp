#pragma once
// A pod informer's decision logic, free of I/O (reference protocols §5.5: client-go's reflector).
// The driver performs each Action and reports back what happened; the Reflector keeps the pod
// store equal to the server's state and says what to do next:
//   list (paginated, limit/continue) -> watch from the list's resourceVersion -> on a normal end
//   re-watch from the last seen resourceVersion (bookmarks included) -> on 410 Expired relist ->
//   on other failures back off with jitter (0.8 s doubling to 30 s) and retry, keeping the store.

#include "pprofd/common/units.hpp"
#include "pprofd/kube/pod.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pprofd::kube {

// Pods by namespace/name, and which keys changed since the last take_changes().
class PodStore {
 public:
  void replace(std::vector<Pod> pods);
  void upsert(Pod pod);
  void erase(const std::string& key);

  const Pod* find(const std::string& key) const;
  std::size_t size() const { return pods_.size(); }
  const std::map<std::string, Pod>& pods() const { return pods_; }

  bool has_changes() const { return !changed_.empty(); }
  std::set<std::string> take_changes();

 private:
  std::map<std::string, Pod> pods_;
  std::set<std::string> changed_;
};

struct ListPage {
  std::vector<Pod> items;
  std::string resource_version;
  std::string continue_token;
};

struct WatchEvent {
  enum class Type { added, modified, deleted, bookmark, error };
  Type type = Type::added;
  std::optional<Pod> pod;        // added, modified, deleted
  std::string resource_version;  // of the object (bookmark: the only field)
  int error_code = 0;            // error: Status.code
  std::string error_reason;      // error: Status.reason
};

enum class RequestFailure {
  gone,          // HTTP 410 / Expired / Gone
  unauthorized,  // 401: the token may have rotated
  throttled,     // 429
  unreachable,   // connection refused or reset: nothing answers (probing it costs the server
                 // nothing)
  other,         // timeouts, 5xx, malformed answers
};

struct ReflectorAction {
  enum class Kind { list, watch, wait };
  Kind kind = Kind::list;
  std::string resource_version;  // list: "" (consistent read); watch: start after this version
  std::string continue_token;    // list: next page
  std::uint32_t limit = 500;     // list page size
  int timeout_seconds = 0;       // watch: server-side timeout
  Duration delay{0};             // wait
};

struct ReflectorCounters {
  std::uint64_t lists = 0;            // list requests (pages)
  std::uint64_t relists_expired = 0;  // relists after 410
  std::uint64_t relists_error = 0;    // relists after another failure
  std::uint64_t watch_restarts = 0;   // watches opened after the first
};

class Reflector {
 public:
  // uniform01 returns values in [0, 1): injected so tests are deterministic.
  explicit Reflector(std::function<double()> uniform01);

  ReflectorAction start();
  ReflectorAction on_list_page(ListPage page);
  ReflectorAction on_list_failed(RequestFailure failure);
  // Applies one event to the store. An ERROR event (e.g. 410) is remembered for on_watch_ended.
  void on_watch_event(WatchEvent event);
  // failure: nullopt for a normal end of stream (server timeout, clean close).
  ReflectorAction on_watch_ended(std::optional<RequestFailure> failure, Duration lasted,
                                 std::size_t events);
  ReflectorAction on_wait_done();

  bool synced() const { return synced_; }  // a full list has completed at least once
  const std::string& last_resource_version() const { return last_rv_; }
  PodStore& store() { return store_; }
  const PodStore& store() const { return store_; }
  const ReflectorCounters& counters() const { return counters_; }

 private:
  ReflectorAction list_from_start();
  ReflectorAction watch();
  ReflectorAction back_off(ReflectorAction::Kind then, RequestFailure why);

  std::function<double()> uniform01_;
  PodStore store_;
  std::vector<Pod> pages_;  // items of the list in progress
  std::string last_rv_;
  bool synced_ = false;
  bool watched_once_ = false;
  std::optional<RequestFailure> watch_error_;  // from an ERROR event
  ReflectorAction::Kind after_wait_ = ReflectorAction::Kind::list;
  Duration backoff_{0};
  ReflectorCounters counters_;
};

// The reflector's backoff: 0.8 s doubling to 30 s; each wait is drawn from [d, 2d) capped at 30 s.
// While the server is unreachable the wait is capped at 3 s instead, so targets resync within
// seconds of an outage ending; a server that answers with errors gets the full backoff.
inline constexpr Duration reflector_initial_backoff = std::chrono::milliseconds(800);
inline constexpr Duration reflector_max_backoff = std::chrono::seconds(30);
inline constexpr Duration reflector_max_unreachable_backoff = std::chrono::seconds(3);

}  // namespace pprofd::kube
