#pragma once

#include <cstdint>
#include <string_view>

namespace pprofd {

inline constexpr std::uint64_t fnv1a64_offset = 14695981039346656037ULL;

// FNV-1a 64: stable across processes and releases, which the schedule phase relies on.
constexpr std::uint64_t fnv1a64(std::string_view data, std::uint64_t h = fnv1a64_offset) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace pprofd
