#pragma once
// Turns one HTTP answer from a target into a validated profile or a counted failure (design §6).
// Pure and CPU-bound: called on the worker pool, never on the I/O thread.

#include "pprofd/model/profile.hpp"
#include "pprofd/pprof/pprof.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace pprofd::scrape {

// The `result` label of pprofd_scrapes_total.
enum class ScrapeResult { success, connect_error, timeout, http_error, invalid, too_large };
std::string_view to_string(ScrapeResult result);

struct ScrapeError {
  ScrapeResult result;
  std::string message;
};

// What unpack_response makes of a 2xx answer.
struct UnpackedBody {
  std::string raw;      // uncompressed profile.proto bytes (not yet checked to be one)
  std::string gzipped;  // the target's own gzip; empty when it sent raw pprof
};

struct ValidatedBody {
  std::string raw;      // uncompressed profile.proto bytes
  std::string gzipped;  // what sinks receive: the target's own gzip when it sent one
  pprof::Summary summary;
};

// Validation in two steps, so the caller can account each stage's CPU on its own:
// unpack_response (the `gunzip` stage): status must be 2xx; the body must be non-empty, gzip or
// raw, at most max_decompressed bytes once inflated.
boost::system::result<UnpackedBody, ScrapeError> unpack_response(unsigned status, std::string body,
                                                                 std::uint64_t max_decompressed);
// inspect_body (the `inspect` stage): the bytes must pass pprof::inspect. `gzipped` stays empty
// for a raw body — gzip it (pprof::gzip(raw)) only if it is forwarded as is.
boost::system::result<ValidatedBody, ScrapeError> inspect_body(UnpackedBody body,
                                                               std::string_view content_type);

// Both steps, then a raw body gzipped for the sinks.
boost::system::result<ValidatedBody, ScrapeError> validate_response(unsigned status,
                                                                    std::string_view content_type,
                                                                    std::string body,
                                                                    std::uint64_t max_decompressed);

}  // namespace pprofd::scrape
