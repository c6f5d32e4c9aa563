#pragma once
// Reads a YAML tree against a schema written as tables of fields. Problems are collected, never
// thrown, each with the dotted path of the field it occurs at; reading goes on after an error so
// one run reports everything.

#include "pprofd/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pprofd::config::detail {

std::string child_path(const std::string& parent, std::string_view key);
std::string index_path(const std::string& parent, std::size_t index);

// Optimal string alignment distance: a swap of neighbours counts as one edit, like a typo does.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The candidate nearest to word within two edits, if any.
std::optional<std::string_view> closest(std::string_view word,
                                        std::span<const std::string_view> candidates);
// ` (did you mean "x"?)` or "".
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);

// Returns a problem for a value that parsed but is not acceptable.
using Check = std::function<std::optional<std::string>(const std::string&)>;

class Reader {
 public:
  using Handler = std::function<void(const YAML::Node& value, const std::string& path)>;
  using EntryFn =
      std::function<void(const std::string& key, const YAML::Node& value, const std::string& path)>;
  using ItemFn = std::function<void(const YAML::Node& value, const std::string& path)>;
  struct Field {
    std::string_view key;
    Handler handle;
  };

  explicit Reader(const EnvLookup& env) : env_(env) {}

  void error(std::string field, std::string problem);
  // Whether a problem was recorded at path or anywhere below it; cross-field checks use this to
  // stay quiet about values that are already reported as broken.
  bool has_error_under(std::string_view path) const;
  std::vector<ConfigError> take_errors() { return std::move(errors_); }

  // Structure. A null node (an empty `key:`) reads as an empty map or list so that it keeps the
  // defaults; any other wrong kind is an error.
  void for_each_entry(const YAML::Node& node, const std::string& path, const EntryFn& fn);
  void for_each_item(const YAML::Node& node, const std::string& path, const ItemFn& fn);
  // for_each_entry against a fixed table; unknown keys are errors with a suggestion. Returns the
  // known keys present, for rules that depend on which fields were given.
  std::vector<std::string_view> walk_map(const YAML::Node& node, const std::string& path,
                                         const std::vector<Field>& fields);

  // Typed reads: each returns true when it assigned out. A null value keeps out unchanged without
  // an error. Scalars are env-expanded before they are interpreted.
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& path,
                                    std::string_view expected);
  bool read_string(const YAML::Node& node, const std::string& path, std::string& out,
                   const Check& check = {});
  bool read_bool(const YAML::Node& node, const std::string& path, bool& out);
  bool read_positive_duration(const YAML::Node& node, const std::string& path, Duration& out);
  bool read_size(const YAML::Node& node, const std::string& path, std::uint64_t& out,
                 std::uint64_t min);
  bool read_uint(const YAML::Node& node, const std::string& path, std::uint64_t& out,
                 std::uint64_t min);
  bool read_strings(const YAML::Node& node, const std::string& path, std::vector<std::string>& out,
                    const Check& check = {});
  bool read_labels(const YAML::Node& node, const std::string& path, model::Labels& out);
  bool read_string_map(const YAML::Node& node, const std::string& path,
                       std::map<std::string, std::string>& out, const Check& check_key,
                       const Check& check_value);

  // Handlers for walk_map tables.
  Handler string_field(std::string& out, Check check = {});
  Handler bool_field(bool& out);
  Handler duration_field(Duration& out);
  Handler size_field(std::uint64_t& out, std::uint64_t min);
  Handler uint_field(std::uint64_t& out, std::uint64_t min);
  Handler strings_field(std::vector<std::string>& out, Check check = {});
  Handler labels_field(model::Labels& out);

 private:
  const EnvLookup& env_;
  std::vector<ConfigError> errors_;
};

}  // namespace pprofd::config::detail
