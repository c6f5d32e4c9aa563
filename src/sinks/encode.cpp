#include "pprofd/sinks/encode.hpp"

#include "pprofd/common/url.hpp"

#include "push.pb.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <random>

namespace pprofd::sinks {

namespace {

std::mt19937_64& rng() {
  // One engine per thread: sinks encode on their own strands, and a shared engine would need a
  // lock for nothing (these IDs need uniqueness, not cryptographic strength).
  thread_local std::mt19937_64 engine{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  return engine;
}

constexpr char hex_digits[] = "0123456789abcdef";

std::string random_uuid_v4() {
  std::uint8_t bytes[16];
  for (int i = 0; i < 2; ++i) {
    const std::uint64_t r = rng()();
    for (int j = 0; j < 8; ++j) bytes[i * 8 + j] = static_cast<std::uint8_t>(r >> (j * 8));
  }
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex_digits[bytes[i] >> 4];
    out += hex_digits[bytes[i] & 0x0f];
  }
  return out;
}

std::string random_boundary() {
  std::string out = "pprofd-";
  for (int i = 0; i < 2; ++i) {
    std::uint64_t r = rng()();
    for (int j = 0; j < 16; ++j, r >>= 4) out += hex_digits[r & 0x0f];
  }
  return out;
}

bool is_reserved_name(std::string_view name) {
  return name.starts_with("__") && name != model::label_name && name != model::label_delta;
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Labels a backend keyed by service (ingest's app name, Profefe's `service`) gets besides it:
// service_name is already the key and `__*` are Pyroscope/pprofd internals.
std::vector<std::pair<std::string, std::string>> tag_labels(const model::Profile& profile) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : profile.labels) {
    if (name == model::label_service_name || name.starts_with("__")) continue;
    out.emplace_back(name, value);
  }
  return out;
}

std::string service_name(const model::Profile& profile) {
  const std::string_view s = profile.labels.get_or(model::label_service_name, "");
  return s.empty() ? std::string("unknown_service") : std::string(s);
}

// /ingest's label-set parser has no escaping (labelset.go): anything outside the allowed
// alphabet would either fail the whole upload with 400 or silently split a value.
std::string sanitize_app_name(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (!is_alnum(c) && c != '_' && c != '.' && c != '/' && c != '-') c = '_';
  return out;
}

std::string sanitize_tag_key(std::string_view key) {
  std::string out(key);
  for (char& c : out)
    if (!is_alnum(c) && c != '_' && c != '.') c = '_';
  return out;
}

std::string sanitize_tag_value(std::string_view value) {
  std::string out(value);
  for (char& c : out)
    if (c == ',' || c == '{' || c == '}' || c == '=') c = '_';
  // The parser trims whitespace around values; doing it here keeps what we log equal to what
  // the server stores.
  const auto first = out.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of(" \t\r\n") - first + 1);
}

std::string ingest_name(const model::Profile& profile) {
  std::vector<std::pair<std::string, std::string>> tags;
  for (const auto& [name, value] : tag_labels(profile)) {
    std::string key = sanitize_tag_key(name);
    std::string val = sanitize_tag_value(value);
    // An empty value means "no label" in Pyroscope's model; a sanitised key may turn into a
    // reserved `__` name or collide with another one, and the first of equal keys wins.
    if (val.empty() || key.starts_with("__")) continue;
    const bool dup =
        std::any_of(tags.begin(), tags.end(), [&](const auto& t) { return t.first == key; });
    if (!dup) tags.emplace_back(std::move(key), std::move(val));
  }
  std::sort(tags.begin(), tags.end());
  std::string out = sanitize_app_name(service_name(profile));
  out += '{';
  for (std::size_t i = 0; i < tags.size(); ++i) {
    if (i > 0) out += ',';
    out += tags[i].first;
    out += '=';
    out += tags[i].second;
  }
  out += '}';
  return out;
}

struct SampleTypeEntry {
  std::string_view type;
  std::string_view units;
  std::string_view display_name;  // empty: keep the sample type's own name
  bool average = false;           // gauges (in-use memory, goroutines), not counters
};

// Mirrors pyroscope-go's per-profile configs. The server names the series from display names
// (§2.4), and without a config both mutex and block `contentions` would become "mutex".
std::span<const SampleTypeEntry> sample_type_table(model::ProfileKind kind) {
  static constexpr SampleTypeEntry cpu[] = {{"samples", "samples", "", false},
                                            {"cpu", "samples", "", false}};
  static constexpr SampleTypeEntry memory[] = {{"alloc_objects", "objects", "", false},
                                               {"alloc_space", "bytes", "", false},
                                               {"inuse_objects", "objects", "", true},
                                               {"inuse_space", "bytes", "", true}};
  static constexpr SampleTypeEntry goroutine[] = {{"goroutine", "goroutines", "goroutines", true}};
  static constexpr SampleTypeEntry mutex[] = {
      {"contentions", "lock_samples", "mutex_count", false},
      {"delay", "lock_nanoseconds", "mutex_duration", false}};
  static constexpr SampleTypeEntry block[] = {
      {"contentions", "lock_samples", "block_count", false},
      {"delay", "lock_nanoseconds", "block_duration", false}};
  switch (kind) {
    case model::ProfileKind::process_cpu:
      return cpu;
    case model::ProfileKind::memory:
    case model::ProfileKind::godeltaprof_memory:
      return memory;
    case model::ProfileKind::goroutine:
      return goroutine;
    case model::ProfileKind::mutex:
    case model::ProfileKind::godeltaprof_mutex:
      return mutex;
    case model::ProfileKind::block:
    case model::ProfileKind::godeltaprof_block:
      return block;
  }
  return {};
}

nlohmann::json entry_json(const SampleTypeEntry& e) {
  nlohmann::json j = nlohmann::json::object();
  j["units"] = e.units;
  if (!e.display_name.empty()) j["display-name"] = e.display_name;
  if (e.average) j["aggregation"] = "average";
  return j;
}

// A config replaces the server's default mapping rather than extending it, and older servers
// ingest only the sample types it names: so every sample type the profile has gets an entry.
std::string sample_type_config(const model::Profile& profile) {
  const auto table = sample_type_table(profile.kind);
  nlohmann::json config = nlohmann::json::object();
  if (profile.sample_types.empty()) {
    for (const auto& e : table) config[std::string(e.type)] = entry_json(e);
  } else {
    for (const auto& [type, unit] : profile.sample_types) {
      const auto it = std::find_if(table.begin(), table.end(),
                                   [&](const SampleTypeEntry& e) { return e.type == type; });
      config[type] = it != table.end() ? entry_json(*it) : nlohmann::json{{"units", unit}};
    }
  }
  return config.dump();
}

void append_part(std::string& body, std::string_view boundary, std::string_view name,
                 std::string_view filename, std::string_view content_type,
                 std::string_view content) {
  body += "--";
  body += boundary;
  body += "\r\nContent-Disposition: form-data; name=\"";
  body += name;
  body += "\"; filename=\"";
  body += filename;
  body += "\"\r\nContent-Type: ";
  body += content_type;
  body += "\r\n\r\n";
  body += content;
  body += "\r\n";
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(std::min<std::size_t>(text.size(), 512));
  for (char c : text) {
    if (out.size() == 512) break;
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t')
      out += ' ';
    else if (u < 0x20 || u >= 0x7f)
      out += '?';
    else
      out += c;
  }
  const auto first = out.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of(' ') - first + 1);
}

std::string json_scalar(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return {};
  return j.dump();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> forwarded_labels(const model::Profile& profile) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(profile.labels.size());
  for (const auto& [name, value] : profile.labels)
    if (!is_reserved_name(name)) out.emplace_back(name, value);
  // Labels is already sorted by name; sorting again keeps the contract independent of that.
  std::sort(out.begin(), out.end());
  return out;
}

EncodedRequest encode_push(std::span<const model::ProfilePtr> profiles) {
  push::v1::PushRequest request;
  for (const auto& profile : profiles) {
    if (!profile) continue;
    auto* series = request.add_series();
    for (const auto& [name, value] : forwarded_labels(*profile)) {
      auto* label = series->add_labels();
      label->set_name(name);
      label->set_value(value);
    }
    auto* sample = series->add_samples();
    sample->set_raw_profile(profile->gzipped);
    sample->set_id(random_uuid_v4());
  }
  EncodedRequest out;
  out.target = "/push.v1.PusherService/Push";
  out.content_type = "application/proto";
  request.SerializeToString(&out.body);
  out.headers.emplace_back("Connect-Protocol-Version", "1");
  return out;
}

EncodedRequest encode_ingest(const model::Profile& profile) {
  constexpr std::int64_t ns_per_s = 1'000'000'000;
  const std::int64_t until = profile.time_nanos / ns_per_s;
  const std::int64_t from = (profile.time_nanos - profile.duration_nanos) / ns_per_s;

  EncodedRequest out;
  out.target = "/ingest?name=" + url_encode(ingest_name(profile)) +
               "&from=" + std::to_string(from) + "&until=" + std::to_string(until) +
               "&spyName=pprofd";

  const std::string config = sample_type_config(profile);
  std::string boundary = random_boundary();
  // A delimiter must not occur inside a part; 128 random bits make that all but impossible, and
  // checking costs one scan.
  while (profile.gzipped.find(boundary) != std::string::npos ||
         config.find(boundary) != std::string::npos)
    boundary = random_boundary();

  out.body.reserve(profile.gzipped.size() + config.size() + 512);
  append_part(out.body, boundary, "profile", "profile.pprof", "application/octet-stream",
              profile.gzipped);
  append_part(out.body, boundary, "sample_type_config", "sample_type_config.json",
              "application/json", config);
  out.body += "--";
  out.body += boundary;
  out.body += "--\r\n";
  out.content_type = "multipart/form-data; boundary=" + boundary;
  return out;
}

std::string_view profefe_type(model::ProfileKind kind) {
  switch (kind) {
    case model::ProfileKind::process_cpu:
      return "cpu";
    case model::ProfileKind::memory:
    case model::ProfileKind::godeltaprof_memory:
      return "heap";
    case model::ProfileKind::goroutine:
      return "goroutine";
    case model::ProfileKind::mutex:
    case model::ProfileKind::godeltaprof_mutex:
      return "mutex";
    case model::ProfileKind::block:
    case model::ProfileKind::godeltaprof_block:
      return "block";
  }
  return "other";
}

std::optional<EncodedRequest> encode_profefe(const model::Profile& profile) {
  // Profefe answers 400 "profile is empty: no samples"; retrying or counting that as a failure
  // would be wrong for an idle interval.
  if (profile.sample_count == 0) return std::nullopt;

  // Profefe splits on `,` and `=` first and query-unescapes each piece afterwards, so pieces are
  // escaped once on their own and the whole list once more as a query value.
  std::string labels;
  for (const auto& [name, value] : tag_labels(profile)) {
    if (!labels.empty()) labels += ',';
    labels += url_encode(name);
    labels += '=';
    labels += url_encode(value);
  }

  EncodedRequest out;
  out.target = "/api/0/profiles?service=" + url_encode(service_name(profile)) +
               "&type=" + std::string(profefe_type(profile.kind)) + "&labels=" + url_encode(labels);
  out.content_type = "application/octet-stream";
  out.body = profile.gzipped;
  return out;
}

std::string describe_error_body(std::string_view body) {
  const auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    const auto error = parsed.find("error");
    if (error != parsed.end() && !error->is_null()) return printable(json_scalar(*error));
    const auto code = parsed.find("code");
    const auto message = parsed.find("message");
    if (code != parsed.end() || message != parsed.end()) {
      const std::string c = code != parsed.end() ? json_scalar(*code) : std::string();
      const std::string m = message != parsed.end() ? json_scalar(*message) : std::string();
      if (c.empty()) return printable(m);
      if (m.empty()) return printable(c);
      return printable(c + ": " + m);
    }
  }
  return printable(body);
}

}  // namespace pprofd::sinks
