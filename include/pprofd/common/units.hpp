#pragma once
// Go/Prometheus-style durations ("1m30s", "500ms") and sizes ("64MiB") — the config's vocabulary.

#include "pprofd/common/result.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pprofd {

using Duration = std::chrono::nanoseconds;

// Accepts a sequence of <number><unit> with units ns, us, µs, ms, s, m, h, d, w; "0" alone is zero.
// A leading '-' is accepted so callers can report "must not be negative" rather than a syntax
// error.
Result<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration d);

// Accepts an integer byte count or <number><unit> with B, KB/MB/GB (powers of 1000) or
// KiB/MiB/GiB/TiB (powers of 1024).
Result<std::uint64_t> parse_size(std::string_view text);
std::string format_size(std::uint64_t bytes);

}  // namespace pprofd
