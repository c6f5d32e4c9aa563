#pragma once
// pprof wire format: gzip in and out, a cheap streaming validation, and full decode/encode.
// Pure functions, no I/O; safe to call from any thread.

#include "pprofd/common/result.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace perftools::profiles {
class Profile;
}

namespace pprofd::pprof {

// True when data starts with the gzip magic 1f 8b (Go never sets Content-Encoding for pprof).
bool looks_gzipped(std::string_view data);

// Decompresses a gzip stream (concatenated members allowed). Fails when the stream is corrupt or
// truncated, or when the output would exceed max_output bytes (checked while inflating, so a
// decompression bomb costs at most max_output bytes of memory).
Result<std::string> gunzip(std::string_view compressed, std::size_t max_output);

// Whether a gunzip() error is the size limit (a too-large profile) rather than corrupt input.
bool is_size_limit_error(const Error& error);

// gzip at the given level (1 = fastest, which is what Go itself uses for pprof).
std::string gzip(std::string_view data, int level = 1);

struct ValueType {
  std::string type;
  std::string unit;
  friend bool operator==(const ValueType&, const ValueType&) = default;
};

// What a streaming walk learns about a profile without building message objects.
struct Summary {
  std::vector<ValueType> sample_types;
  ValueType period_type;
  std::int64_t period = 0;
  std::int64_t time_nanos = 0;
  std::int64_t duration_nanos = 0;
  std::size_t sample_count = 0;
  std::size_t location_count = 0;
  std::size_t function_count = 0;
  std::size_t mapping_count = 0;
  std::size_t string_count = 0;
};

// Validates an uncompressed profile.proto message: every field has the wire type profile.proto
// gives it, lengths stay in bounds, string_table[0] is "", every string index is in range, each
// sample has exactly one value per sample type, and at least one sample type exists. Text, HTML,
// JSON or random bytes fail with a message saying what is wrong.
Result<Summary> inspect(std::string_view raw);

// Full decode into / encode from the generated classes (proto/profile.proto).
Result<perftools::profiles::Profile> decode(std::string_view raw);
std::string encode(const perftools::profiles::Profile& profile);

}  // namespace pprofd::pprof
