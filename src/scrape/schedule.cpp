#include "pprofd/scrape/schedule.hpp"

namespace pprofd::scrape {

Duration slot_offset(std::uint64_t target_hash, std::uint64_t seed, Duration interval) {
  const auto period = static_cast<std::uint64_t>(interval.count());
  return Duration{static_cast<Duration::rep>((target_hash ^ seed) % period)};
}

WallTime first_slot(WallTime now, Duration interval, Duration offset) {
  const auto now_ns = std::chrono::duration_cast<Duration>(now.time_since_epoch()).count();
  const auto period = interval.count();
  auto into_period = (now_ns - offset.count()) % period;
  if (into_period < 0) into_period += period;
  const auto wait = into_period == 0 ? 0 : period - into_period;
  return now + std::chrono::duration_cast<WallTime::duration>(Duration{wait});
}

NextSlot next_slot(WallTime scheduled, WallTime now, Duration interval) {
  const auto step = std::chrono::duration_cast<WallTime::duration>(interval);
  NextSlot next{scheduled + step, 0};
  if (now > next.at) {
    const auto behind = now - next.at;
    const auto skip = static_cast<std::uint64_t>((behind + step - WallTime::duration{1}) / step);
    next.at += step * static_cast<WallTime::duration::rep>(skip);
    next.missed = skip;
  }
  return next;
}

}  // namespace pprofd::scrape
