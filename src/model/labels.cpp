#include "pprofd/model/labels.hpp"

#include "pprofd/common/hash.hpp"

#include <algorithm>

namespace pprofd::model {

Labels::Labels(std::initializer_list<Pair> pairs) {
  for (const auto& [name, value] : pairs) set(name, value);
}

std::vector<Labels::Pair>::iterator Labels::find(std::string_view name) {
  return std::lower_bound(pairs_.begin(), pairs_.end(), name,
                          [](const Pair& p, std::string_view n) { return p.first < n; });
}

std::vector<Labels::Pair>::const_iterator Labels::find(std::string_view name) const {
  return std::lower_bound(pairs_.begin(), pairs_.end(), name,
                          [](const Pair& p, std::string_view n) { return p.first < n; });
}

void Labels::set(std::string_view name, std::string_view value) {
  auto it = find(name);
  if (it != pairs_.end() && it->first == name)
    it->second = value;
  else
    pairs_.emplace(it, std::string(name), std::string(value));
}

bool Labels::set_if_absent(std::string_view name, std::string_view value) {
  auto it = find(name);
  if (it != pairs_.end() && it->first == name) return false;
  pairs_.emplace(it, std::string(name), std::string(value));
  return true;
}

void Labels::erase(std::string_view name) {
  auto it = find(name);
  if (it != pairs_.end() && it->first == name) pairs_.erase(it);
}

std::optional<std::string_view> Labels::get(std::string_view name) const {
  auto it = find(name);
  if (it != pairs_.end() && it->first == name) return std::string_view(it->second);
  return std::nullopt;
}

std::string_view Labels::get_or(std::string_view name, std::string_view fallback) const {
  return get(name).value_or(fallback);
}

std::uint64_t Labels::hash() const {
  std::uint64_t h = fnv1a64_offset;
  for (const auto& [name, value] : pairs_) {
    // A separator byte that cannot appear in a label name keeps ("ab","c") and ("a","bc") apart.
    h = fnv1a64(name, h);
    h = fnv1a64(std::string_view("\xff", 1), h);
    h = fnv1a64(value, h);
    h = fnv1a64(std::string_view("\xfe", 1), h);
  }
  return h;
}

std::string Labels::to_string() const {
  std::string out = "{";
  for (const auto& [name, value] : pairs_) {
    if (out.size() > 1) out += ", ";
    out += name + "=\"" + value + "\"";
  }
  return out + "}";
}

}  // namespace pprofd::model
