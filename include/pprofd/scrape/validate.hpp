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

struct ValidatedBody {
  std::string raw;      // uncompressed profile.proto bytes
  std::string gzipped;  // what sinks receive: the target's own gzip when it sent one
  pprof::Summary summary;
};

// status must be 2xx; the body must be non-empty, gzip or raw pprof, at most max_decompressed
// bytes once inflated, and pass pprof::inspect.
boost::system::result<ValidatedBody, ScrapeError> validate_response(unsigned status,
                                                                    std::string_view content_type,
                                                                    std::string body,
                                                                    std::uint64_t max_decompressed);

}  // namespace pprofd::scrape
