#include "pprofd/scrape/validate.hpp"

namespace pprofd::scrape {
namespace {

// A short, printable excerpt of an error body for logs and the targets page.
std::string excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 160)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string_view to_string(ScrapeResult result) {
  switch (result) {
    case ScrapeResult::success:
      return "success";
    case ScrapeResult::connect_error:
      return "connect_error";
    case ScrapeResult::timeout:
      return "timeout";
    case ScrapeResult::http_error:
      return "http_error";
    case ScrapeResult::invalid:
      return "invalid";
    case ScrapeResult::too_large:
      return "too_large";
  }
  return "invalid";
}

boost::system::result<UnpackedBody, ScrapeError> unpack_response(unsigned status, std::string body,
                                                                 std::uint64_t max_decompressed) {
  if (status < 200 || status > 299) {
    std::string message = "HTTP " + std::to_string(status);
    if (auto text = excerpt(body); !text.empty()) message += ": " + text;
    return ScrapeError{ScrapeResult::http_error, std::move(message)};
  }
  if (body.empty()) return ScrapeError{ScrapeResult::invalid, "empty body"};

  UnpackedBody out;
  if (pprof::looks_gzipped(body)) {
    auto raw = pprof::gunzip(body, max_decompressed);
    if (!raw) {
      const bool too_big = pprof::is_size_limit_error(raw.error());
      return ScrapeError{too_big ? ScrapeResult::too_large : ScrapeResult::invalid,
                         raw.error().message};
    }
    out.raw = std::move(*raw);
    out.gzipped = std::move(body);
  } else {
    if (body.size() > max_decompressed)
      return ScrapeError{ScrapeResult::too_large, "profile larger than the decompressed limit"};
    out.raw = std::move(body);
  }
  return out;
}

boost::system::result<ValidatedBody, ScrapeError> inspect_body(UnpackedBody body,
                                                               std::string_view content_type) {
  auto summary = pprof::inspect(body.raw);
  if (!summary) {
    std::string message = "not a pprof profile";
    if (!content_type.empty()) message += " (Content-Type " + std::string(content_type) + ")";
    message += ": " + summary.error().message;
    if (body.gzipped.empty()) {
      if (auto text = excerpt(body.raw); !text.empty())
        message += "; body starts \"" + text.substr(0, 60) + "\"";
    }
    return ScrapeError{ScrapeResult::invalid, std::move(message)};
  }
  ValidatedBody out;
  out.raw = std::move(body.raw);
  out.gzipped = std::move(body.gzipped);
  out.summary = std::move(*summary);
  return out;
}

boost::system::result<ValidatedBody, ScrapeError> validate_response(
    unsigned status, std::string_view content_type, std::string body,
    std::uint64_t max_decompressed) {
  auto unpacked = unpack_response(status, std::move(body), max_decompressed);
  if (!unpacked) return unpacked.error();
  auto validated = inspect_body(std::move(*unpacked), content_type);
  if (validated && validated->gzipped.empty()) validated->gzipped = pprof::gzip(validated->raw);
  return validated;
}

}  // namespace pprofd::scrape
