#pragma once
// Shared helpers for the config tests: a fake environment and error lookups.

#include "pprofd/config/config.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace pprofd::config::testing {

inline EnvLookup fake_env(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

inline std::string dump(const std::vector<ConfigError>& errors) {
  std::ostringstream out;
  for (const auto& e : errors) out << e.to_string() << "\n";
  return out.str();
}

// The errors at exactly this field.
inline std::vector<ConfigError> errors_at(const LoadResult& r, std::string_view field) {
  std::vector<ConfigError> found;
  for (const auto& e : r.errors)
    if (e.field == field) found.push_back(e);
  return found;
}

// True when some error has this field and its problem contains text.
inline bool has_error(const LoadResult& r, std::string_view field, std::string_view text) {
  for (const auto& e : r.errors)
    if (e.field == field && e.problem.find(text) != std::string::npos) return true;
  return false;
}

// Parses and requires success, showing the errors otherwise.
inline Config parse_ok(std::string_view yaml, const EnvLookup& env = fake_env()) {
  LoadResult r = parse(yaml, env);
  INFO(dump(r.errors));
  REQUIRE(r.errors.empty());
  REQUIRE(r.config.has_value());
  return *r.config;
}

// Parses and requires failure with exactly one error at field containing text.
inline void require_single_error(std::string_view yaml, std::string_view field,
                                 std::string_view text, const EnvLookup& env = fake_env()) {
  LoadResult r = parse(yaml, env);
  INFO("yaml:\n" << yaml << "\nerrors:\n" << dump(r.errors));
  CHECK_FALSE(r.config.has_value());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].field == field);
  CHECK_THAT(r.errors[0].problem, Catch::Contains(std::string(text)));
}

}  // namespace pprofd::config::testing
