#pragma once
// Turns consecutive cumulative profiles (memory alloc_*, mutex/block contentions/delay) of one
// (target, type) into deltas (design §6). Pure; one instance per (target, type); not thread-safe.

#include "pprofd/common/result.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pprofd::pprof {

enum class DeltaStatus {
  emitted,  // `profile` holds the delta
  first,    // baseline stored, nothing to emit (first profile after start)
  reset,    // a counter went down (target restarted): baseline re-seeded, nothing emitted
};

// Thread CPU time apply() spent per stage, for the per-stage cost metrics.
struct DeltaCpu {
  std::chrono::nanoseconds decode{0};  // walking the input profile
  std::chrono::nanoseconds diff{0};    // keying samples and diffing against the baseline
  std::chrono::nanoseconds encode{0};  // writing the delta profile
};

struct DeltaOutput {
  DeltaStatus status = DeltaStatus::first;
  std::string profile;  // uncompressed pprof, only for `emitted`
  // What the emitted profile holds, so callers need not walk it again.
  std::size_t sample_count = 0;
  std::int64_t time_nanos = 0;
  std::int64_t duration_nanos = 0;
  DeltaCpu cpu;
};

class DeltaComputer {
 public:
  DeltaComputer() = default;

  // raw: uncompressed pprof of the current scrape. Columns whose (type, unit) is one of
  // alloc_objects/count, alloc_space/bytes, contentions/count, delay/nanoseconds are diffed;
  // other columns (inuse_*) pass through. Samples are keyed by their stack (addresses, or
  // function+line where addresses are absent) plus their labels, duplicates merged first. Samples
  // whose values are all zero are removed together with locations, functions, mappings and
  // strings nothing references any more. time_nanos is the current profile's; duration_nanos the
  // time since the previous one. A malformed profile is an error and leaves the baseline as it was.
  // A delta column going down, or a stack that had counts disappearing (Go never drops a
  // cumulative bucket), means the target restarted: the baseline is re-seeded (`reset`). A change
  // of sample types re-seeds too. A profile without any delta column is an error.
  Result<DeltaOutput> apply(std::string_view raw);

  void reset();
  // Bytes held by the baseline (sorted keys and packed counts, never a stored profile).
  std::size_t state_bytes() const;

 private:
  // The cumulative values of the last profile: its distinct sample keys in ascending order, and
  // for each key with any non-zero count, one varint per delta column. apply() walks both
  // in order against the sorted keys of the new profile, so no index is stored.
  std::vector<std::uint64_t> baseline_keys_;
  std::string baseline_values_;
  // Hash of the sample types: a profile with a different column layout is a new series.
  std::uint64_t columns_hash_ = 0;
  std::int64_t baseline_time_nanos_ = 0;
  bool seeded_ = false;
};

}  // namespace pprofd::pprof
