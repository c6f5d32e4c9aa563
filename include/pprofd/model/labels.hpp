#pragma once
// A label set: names sorted and unique, so equality, hashing and output order are canonical.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pprofd::model {

// Well-known label names (design §5).
inline constexpr std::string_view label_name = "__name__";
inline constexpr std::string_view label_delta = "__delta__";
inline constexpr std::string_view label_service_name = "service_name";
inline constexpr std::string_view label_instance = "instance";
inline constexpr std::string_view label_namespace = "namespace";
inline constexpr std::string_view label_pod = "pod";
inline constexpr std::string_view label_container = "container";
inline constexpr std::string_view label_node = "node";

class Labels {
 public:
  using Pair = std::pair<std::string, std::string>;

  Labels() = default;
  Labels(std::initializer_list<Pair> pairs);

  // Inserts or replaces.
  void set(std::string_view name, std::string_view value);
  // Inserts only when the name is absent; returns whether it inserted.
  bool set_if_absent(std::string_view name, std::string_view value);
  void erase(std::string_view name);
  std::optional<std::string_view> get(std::string_view name) const;
  std::string_view get_or(std::string_view name, std::string_view fallback) const;
  bool contains(std::string_view name) const { return get(name).has_value(); }

  std::size_t size() const { return pairs_.size(); }
  bool empty() const { return pairs_.empty(); }
  auto begin() const { return pairs_.begin(); }
  auto end() const { return pairs_.end(); }

  std::uint64_t hash() const;
  // {a="1", b="2"}: for logs and error messages.
  std::string to_string() const;

  friend bool operator==(const Labels&, const Labels&) = default;

 private:
  std::vector<Pair>::iterator find(std::string_view name);
  std::vector<Pair>::const_iterator find(std::string_view name) const;
  std::vector<Pair> pairs_;
};

}  // namespace pprofd::model
