#include "reader.hpp"

#include "validate.hpp"

#include <algorithm>
#include <charconv>
#include <numeric>

namespace pprofd::config::detail {
namespace {

// How a node is shown in "must be X, got Y": scalars by value so the user sees what was read.
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar: {
      std::string text = node.Scalar();
      if (text.size() > 40) text = text.substr(0, 37) + "...";
      return "\"" + text + "\"";
    }
    default:
      return "nothing";
  }
}

}  // namespace

std::string child_path(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return parent + "." + std::string(key);
}

std::string index_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::optional<std::string_view> closest(std::string_view word,
                                        std::span<const std::string_view> candidates) {
  std::optional<std::string_view> best;
  std::size_t best_distance = 3;
  for (std::string_view c : candidates) {
    const std::size_t distance = edit_distance(word, c);
    // A word of one or two letters is within two edits of almost anything short.
    if (distance < best_distance && distance < word.size()) {
      best = c;
      best_distance = distance;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  if (auto c = closest(word, candidates)) return " (did you mean \"" + std::string(*c) + "\"?)";
  return "";
}

void Reader::error(std::string field, std::string problem) {
  errors_.push_back(ConfigError{std::move(field), std::move(problem)});
}

bool Reader::has_error_under(std::string_view path) const {
  return std::any_of(errors_.begin(), errors_.end(), [&](const ConfigError& e) {
    std::string_view f = e.field;
    if (!f.starts_with(path)) return false;
    return f.size() == path.size() || f[path.size()] == '.' || f[path.size()] == '[';
  });
}

void Reader::for_each_entry(const YAML::Node& node, const std::string& path, const EntryFn& fn) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    error(path, "must be a map, got " + describe(node));
    return;
  }
  std::vector<std::string> seen;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      error(path.empty() ? "<yaml>" : path,
            "keys must be plain strings, got " + describe(entry.first));
      continue;
    }
    const std::string key = entry.first.Scalar();
    const std::string entry_path = child_path(path, key);
    // yaml-cpp keeps both copies of a repeated key; silently taking one would hide a mistake.
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      error(entry_path, "duplicate field \"" + key + "\"");
      continue;
    }
    seen.push_back(key);
    fn(key, entry.second, entry_path);
  }
}

void Reader::for_each_item(const YAML::Node& node, const std::string& path, const ItemFn& fn) {
  if (node.IsNull()) return;
  if (!node.IsSequence()) {
    error(path, "must be a list, got " + describe(node));
    return;
  }
  for (std::size_t i = 0; i < node.size(); ++i) fn(node[i], index_path(path, i));
}

std::vector<std::string_view> Reader::walk_map(const YAML::Node& node, const std::string& path,
                                               const std::vector<Field>& fields) {
  std::vector<std::string_view> present;
  for_each_entry(
      node, path,
      [&](const std::string& key, const YAML::Node& value, const std::string& entry_path) {
        const auto field = std::find_if(fields.begin(), fields.end(),
                                        [&](const Field& f) { return f.key == key; });
        if (field == fields.end()) {
          std::vector<std::string_view> names;
          for (const auto& f : fields) names.push_back(f.key);
          error(entry_path, "unknown field \"" + key + "\"" + did_you_mean(key, names));
          return;
        }
        present.push_back(field->key);
        field->handle(value, entry_path);
      });
  return present;
}

std::optional<std::string> Reader::scalar(const YAML::Node& node, const std::string& path,
                                          std::string_view expected) {
  if (node.IsNull()) return std::nullopt;
  if (!node.IsScalar()) {
    error(path, "must be " + std::string(expected) + ", got " + describe(node));
    return std::nullopt;
  }
  auto expanded = expand_env(node.Scalar(), env_);
  if (expanded.has_error()) {
    error(path, expanded.error().message);
    return std::nullopt;
  }
  return std::move(*expanded);
}

bool Reader::read_string(const YAML::Node& node, const std::string& path, std::string& out,
                         const Check& check) {
  auto text = scalar(node, path, "a string");
  if (!text) return false;
  if (check) {
    if (auto problem = check(*text)) {
      error(path, *problem);
      return false;
    }
  }
  out = std::move(*text);
  return true;
}

bool Reader::read_bool(const YAML::Node& node, const std::string& path, bool& out) {
  auto text = scalar(node, path, "true or false");
  if (!text) return false;
  // The YAML 1.2 core schema spellings only: yes/no/on/off are YAML 1.1 traps.
  if (*text == "true" || *text == "True" || *text == "TRUE") {
    out = true;
  } else if (*text == "false" || *text == "False" || *text == "FALSE") {
    out = false;
  } else {
    error(path, "must be true or false, got \"" + *text + "\"");
    return false;
  }
  return true;
}

bool Reader::read_positive_duration(const YAML::Node& node, const std::string& path,
                                    Duration& out) {
  auto text = scalar(node, path, "a duration");
  if (!text) return false;
  auto parsed = parse_duration(*text);
  if (parsed.has_error()) {
    error(path, parsed.error().message);
    return false;
  }
  if (*parsed <= Duration{0}) {
    error(path, "must be positive, got \"" + *text + "\"");
    return false;
  }
  out = *parsed;
  return true;
}

bool Reader::read_size(const YAML::Node& node, const std::string& path, std::uint64_t& out,
                       std::uint64_t min) {
  auto text = scalar(node, path, "a size");
  if (!text) return false;
  auto parsed = parse_size(*text);
  if (parsed.has_error()) {
    error(path, parsed.error().message);
    return false;
  }
  if (*parsed < min) {
    error(path, "must be at least " + format_size(min) + ", got \"" + *text + "\"");
    return false;
  }
  out = *parsed;
  return true;
}

bool Reader::read_uint(const YAML::Node& node, const std::string& path, std::uint64_t& out,
                       std::uint64_t min) {
  auto text = scalar(node, path, "a whole number");
  if (!text) return false;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc{} || ptr != text->data() + text->size()) {
    error(path, "must be a non-negative whole number, got \"" + *text + "\"");
    return false;
  }
  if (value < min) {
    error(path, "must be at least " + std::to_string(min) + ", got " + *text);
    return false;
  }
  out = value;
  return true;
}

bool Reader::read_strings(const YAML::Node& node, const std::string& path,
                          std::vector<std::string>& out, const Check& check) {
  if (!node.IsNull() && !node.IsSequence()) {
    error(path, "must be a list, got " + describe(node));
    return false;
  }
  std::vector<std::string> values;
  bool ok = true;
  for_each_item(node, path, [&](const YAML::Node& item, const std::string& item_path) {
    if (item.IsNull()) {
      error(item_path, "must not be empty");
      ok = false;
      return;
    }
    std::string value;
    if (read_string(item, item_path, value, check))
      values.push_back(std::move(value));
    else
      ok = false;
  });
  if (node.IsNull()) return false;
  out = std::move(values);
  return ok;
}

bool Reader::read_labels(const YAML::Node& node, const std::string& path, model::Labels& out) {
  model::Labels labels;
  bool ok = true;
  for_each_entry(
      node, path,
      [&](const std::string& name, const YAML::Node& value, const std::string& label_path) {
        if (auto problem = check_label_name(name)) {
          error(label_path, *problem);
          ok = false;
          return;
        }
        std::string text;
        if (read_string(value, label_path, text) || value.IsNull())
          labels.set(name, text);
        else
          ok = false;
      });
  if (node.IsNull()) return false;
  out = std::move(labels);
  return ok;
}

bool Reader::read_string_map(const YAML::Node& node, const std::string& path,
                             std::map<std::string, std::string>& out, const Check& check_key,
                             const Check& check_value) {
  std::map<std::string, std::string> values;
  bool ok = true;
  for_each_entry(
      node, path,
      [&](const std::string& key, const YAML::Node& value, const std::string& entry_path) {
        if (auto problem = check_key ? check_key(key) : std::nullopt) {
          error(entry_path, *problem);
          ok = false;
          return;
        }
        std::string text;
        if (read_string(value, entry_path, text, check_value) || value.IsNull())
          values[key] = std::move(text);
        else
          ok = false;
      });
  if (node.IsNull()) return false;
  out = std::move(values);
  return ok;
}

Reader::Handler Reader::string_field(std::string& out, Check check) {
  return [this, &out, check = std::move(check)](const YAML::Node& n, const std::string& p) {
    read_string(n, p, out, check);
  };
}

Reader::Handler Reader::bool_field(bool& out) {
  return [this, &out](const YAML::Node& n, const std::string& p) { read_bool(n, p, out); };
}

Reader::Handler Reader::duration_field(Duration& out) {
  return [this, &out](const YAML::Node& n, const std::string& p) {
    read_positive_duration(n, p, out);
  };
}

Reader::Handler Reader::size_field(std::uint64_t& out, std::uint64_t min) {
  return
      [this, &out, min](const YAML::Node& n, const std::string& p) { read_size(n, p, out, min); };
}

Reader::Handler Reader::uint_field(std::uint64_t& out, std::uint64_t min) {
  return
      [this, &out, min](const YAML::Node& n, const std::string& p) { read_uint(n, p, out, min); };
}

Reader::Handler Reader::strings_field(std::vector<std::string>& out, Check check) {
  return [this, &out, check = std::move(check)](const YAML::Node& n, const std::string& p) {
    read_strings(n, p, out, check);
  };
}

Reader::Handler Reader::labels_field(model::Labels& out) {
  return [this, &out](const YAML::Node& n, const std::string& p) { read_labels(n, p, out); };
}

}  // namespace pprofd::config::detail
