#pragma once
// Wire encodings of the remote sinks (design §7, reference protocols §1-§3). Pure functions: the
// delivery machinery (queue, retries, HTTP) lives in remote_sink.

#include "pprofd/model/profile.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pprofd::sinks {

// One HTTP request body with what goes with it. `target` is origin-form (path and query) relative
// to the sink's base URL path, which the caller prepends.
struct EncodedRequest {
  std::string target;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra, e.g. Connect-Protocol-Version
};

// Labels as a backend receives them: every label except `__*` ones, but `__name__` and
// `__delta__` kept (Pyroscope drops other `__` names, and the server adds its own).
std::vector<std::pair<std::string, std::string>> forwarded_labels(const model::Profile& profile);

// Pyroscope push: POST /push.v1.PusherService/Push, application/proto, one RawProfileSeries per
// profile, raw_profile = the gzipped pprof, ID = a random UUIDv4 string.
EncodedRequest encode_push(std::span<const model::ProfilePtr> profiles);

// Pyroscope /ingest: multipart/form-data with part `profile` (filename "profile.pprof") and
// `sample_type_config` (so mutex and block keep their names), query
// name=<service_name>{k=v,...}&from=<unix s>&until=<unix s>&spyName=pprofd.
// Label keys/values that /ingest cannot carry ([A-Za-z0-9_.] keys; no `,` `}` `=` in values)
// are sanitised to `_`.
EncodedRequest encode_ingest(const model::Profile& profile);

// Profefe: POST /api/0/profiles?service=&type=&labels=k=v,...; the body is the gzipped pprof.
// Returns nullopt for profiles Profefe would reject as empty (no samples).
std::optional<EncodedRequest> encode_profefe(const model::Profile& profile);
std::string_view profefe_type(model::ProfileKind kind);  // cpu, heap, goroutine, mutex, block

// A Connect error body {"code": "...", "message": "..."} as "code: message", a Profefe envelope
// {"code": 400, "error": "..."} as its error; other bodies are returned trimmed to 512 bytes with
// control and non-ASCII bytes replaced, so they are safe to log.
std::string describe_error_body(std::string_view body);

}  // namespace pprofd::sinks
