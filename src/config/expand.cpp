#include "pprofd/config/config.hpp"

#include <cstdlib>
#include <vector>

namespace pprofd::config {
namespace {

bool is_env_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Index one past the `}` that closes the `${` starting at open, or npos. Nested `${` inside a
// default are counted so `${A:-${B}}` closes at the outer brace.
std::size_t closing_brace(std::string_view text, std::size_t open) {
  std::size_t depth = 1;
  for (std::size_t j = open + 2; j < text.size(); ++j) {
    if (text[j] == '$' && j + 1 < text.size() && (text[j + 1] == '{' || text[j + 1] == '$')) {
      if (text[j + 1] == '{') ++depth;
      ++j;
    } else if (text[j] == '}' && --depth == 0) {
      return j + 1;
    }
  }
  return std::string_view::npos;
}

// Unset variables are collected rather than failing at once so one message can name them all.
bool expand_into(std::string_view text, const EnvLookup& env, std::string& out,
                 std::vector<std::string>& unset, std::string& why) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$') {
      out += text[i++];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '{') {
      out += text[i++];
      continue;
    }
    const std::size_t end = closing_brace(text, i);
    if (end == std::string_view::npos) {
      why = "unterminated \"${\" in \"" + std::string(text) + "\"";
      return false;
    }
    const std::string_view inner = text.substr(i + 2, end - 1 - (i + 2));
    const std::size_t sep = inner.find(":-");
    const std::string_view name = inner.substr(0, sep);
    if (!is_env_name(name)) {
      why = "invalid environment variable reference \"${" + std::string(inner) +
            "}\" (use $$ for a literal $)";
      return false;
    }
    const std::optional<std::string> value = env(name);
    if (sep == std::string_view::npos) {
      if (value)
        out += *value;
      else
        unset.emplace_back(name);
    } else if (value && !value->empty()) {
      out += *value;
    } else if (!expand_into(inner.substr(sep + 2), env, out, unset, why)) {
      return false;
    }
    i = end;
  }
  return true;
}

}  // namespace

Result<std::string> expand_env(std::string_view text, const EnvLookup& env) {
  std::string out;
  std::vector<std::string> unset;
  std::string why;
  if (!expand_into(text, env, out, unset, why)) return make_error(why);
  if (unset.size() == 1)
    return make_error("environment variable \"" + unset[0] + "\" is not set (use ${" + unset[0] +
                      ":-default} to give a default)");
  if (!unset.empty()) {
    std::string names;
    for (const auto& n : unset) names += (names.empty() ? "\"" : ", \"") + n + "\"";
    return make_error("environment variables " + names + " are not set");
  }
  // Error is constructible from a string too, so the value must be placed explicitly.
  return out;
}

EnvLookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

}  // namespace pprofd::config
