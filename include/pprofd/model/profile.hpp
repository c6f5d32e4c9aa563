#pragma once
// A scraped, validated profile on its way to the sinks, and the interface that carries it.

#include "pprofd/model/labels.hpp"
#include "pprofd/model/profile_type.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pprofd::model {

struct Profile {
  ProfileKind kind = ProfileKind::process_cpu;
  Labels labels;               // every forwarded label, __name__ (and __delta__ where set) included
  std::string target_url;      // where it was pulled from
  std::string gzipped;         // gzip-compressed pprof protobuf
  std::uint64_t raw_size = 0;  // bytes once decompressed (what backends count against limits)
  std::int64_t time_nanos = 0;
  std::int64_t duration_nanos = 0;
  std::int64_t sample_count = 0;
  std::vector<std::pair<std::string, std::string>> sample_types;  // (type, unit)
  // When the scrape's response was fully read; sinks observe pprofd_delivery_latency_seconds
  // from it. The epoch (default) means unknown: not observed.
  std::chrono::steady_clock::time_point scraped_at{};
};

using ProfilePtr = std::shared_ptr<const Profile>;

// Scraping hands profiles to sinks through this one interface. append() never blocks on I/O:
// an implementation queues and returns, so a slow sink cannot stall a scrape loop.
class Appender {
 public:
  virtual ~Appender() = default;
  virtual void append(ProfilePtr profile) = 0;
};

}  // namespace pprofd::model
