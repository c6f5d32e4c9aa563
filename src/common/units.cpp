#include "pprofd/common/units.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

namespace pprofd {
namespace {

struct Unit {
  std::string_view suffix;
  double scale;
};

// Longest suffixes first so "ms" is not read as "m" followed by garbage.
constexpr std::array<Unit, 9> duration_units{{{"ns", 1.0},
                                              {"us", 1e3},
                                              {"\xC2\xB5s", 1e3},
                                              {"ms", 1e6},
                                              {"s", 1e9},
                                              {"m", 60e9},
                                              {"h", 3600e9},
                                              {"d", 86400e9},
                                              {"w", 604800e9}}};

constexpr std::array<Unit, 9> size_units{{{"TiB", 1099511627776.0},
                                          {"GiB", 1073741824.0},
                                          {"MiB", 1048576.0},
                                          {"KiB", 1024.0},
                                          {"GB", 1e9},
                                          {"MB", 1e6},
                                          {"KB", 1e3},
                                          {"kB", 1e3},
                                          {"B", 1.0}}};

// Reads a non-negative decimal number (digits with an optional fraction) from the front of text.
std::pair<double, std::size_t> read_number(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return {0.0, 0};
  double value = 0.0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc{} || ptr != text.data() + i) return {0.0, 0};
  return {value, i};
}

template <std::size_t N>
const Unit* match_unit(std::string_view text, const std::array<Unit, N>& units) {
  // Pick the longest unit that prefixes text, so "ms" wins over "m".
  const Unit* best = nullptr;
  for (const auto& u : units) {
    if (text.substr(0, u.suffix.size()) == u.suffix &&
        (best == nullptr || u.suffix.size() > best->suffix.size()))
      best = &u;
  }
  return best;
}

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  const std::string original(text);
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return Duration{0};
  if (text.empty()) return make_error("empty duration");
  double total = 0.0;
  while (!text.empty()) {
    auto [value, used] = read_number(text);
    if (used == 0)
      return make_error("invalid duration \"" + original + "\" (expected e.g. 15s, 500ms, 1m30s)");
    text.remove_prefix(used);
    const Unit* unit = match_unit(text, duration_units);
    if (unit == nullptr)
      return make_error("invalid duration \"" + original +
                        "\": missing or unknown unit (use ns, us, ms, s, m, h, d, w)");
    text.remove_prefix(unit->suffix.size());
    total += value * unit->scale;
  }
  if (total > static_cast<double>(std::numeric_limits<std::int64_t>::max()))
    return make_error("duration \"" + original + "\" is too large");
  auto ns = static_cast<std::int64_t>(std::llround(total));
  return Duration{negative ? -ns : ns};
}

std::string format_duration(Duration d) {
  using namespace std::chrono;
  if (d.count() == 0) return "0s";
  std::string out;
  if (d.count() < 0) {
    out = "-";
    d = -d;
  }
  if (d % milliseconds{1} != Duration{0}) return out + std::to_string(d.count()) + "ns";
  if (d % seconds{1} != Duration{0})
    return out + std::to_string(duration_cast<milliseconds>(d).count()) + "ms";
  auto s = duration_cast<seconds>(d).count();
  const auto h = s / 3600;
  const auto m = (s % 3600) / 60;
  s %= 60;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (s) out += std::to_string(s) + "s";
  return out;
}

Result<std::uint64_t> parse_size(std::string_view text) {
  const std::string original(text);
  if (!text.empty() && text.front() == '-')
    return make_error("size \"" + original + "\" must not be negative");
  auto [value, used] = read_number(text);
  if (used == 0)
    return make_error("invalid size \"" + original + "\" (expected e.g. 64MiB, 1GiB, 4096)");
  text.remove_prefix(used);
  double scale = 1.0;
  if (!text.empty()) {
    const Unit* unit = match_unit(text, size_units);
    if (unit == nullptr || unit->suffix.size() != text.size())
      return make_error("invalid size \"" + original +
                        "\": unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)");
    scale = unit->scale;
  }
  const double bytes = value * scale;
  if (bytes > 1.8e19) return make_error("size \"" + original + "\" is too large");
  return static_cast<std::uint64_t>(std::llround(bytes));
}

std::string format_size(std::uint64_t bytes) {
  constexpr std::array<std::pair<std::uint64_t, const char*>, 4> steps{
      {{1ULL << 40, "TiB"}, {1ULL << 30, "GiB"}, {1ULL << 20, "MiB"}, {1ULL << 10, "KiB"}}};
  for (auto [size, name] : steps)
    if (bytes >= size && bytes % size == 0) return std::to_string(bytes / size) + name;
  return std::to_string(bytes) + "B";
}

}  // namespace pprofd
