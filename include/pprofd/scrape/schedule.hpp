#pragma once
// Scheduling math (design §6), free of timers so it is tested with plain numbers.
// Slots are pinned to wall-clock time: a loop scrapes at every t with t ≡ offset (mod interval),
// where offset comes from the target's hash XOR a per-instance seed (Prometheus' formula). A
// restart or a reload therefore keeps each target's phase, and targets spread evenly.

#include "pprofd/common/units.hpp"

#include <chrono>
#include <cstdint>

namespace pprofd::scrape {

using WallTime = std::chrono::system_clock::time_point;

Duration slot_offset(std::uint64_t target_hash, std::uint64_t seed, Duration interval);

// The first slot at or after now.
WallTime first_slot(WallTime now, Duration interval, Duration offset);

struct NextSlot {
  WallTime at;
  std::uint64_t missed = 0;  // slots skipped because they were already past
};

// After the scrape scheduled at `scheduled` finished at `now`: the following slot, or, when the
// scrape overran, the first slot still ahead, counting the ones skipped (no catch-up bursts).
NextSlot next_slot(WallTime scheduled, WallTime now, Duration interval);

}  // namespace pprofd::scrape
