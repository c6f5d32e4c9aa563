#include "pprofd/pprof/pprof.hpp"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <limits>
#include <memory>
#include <new>
#include <string>

namespace pprofd::pprof {
namespace {

struct CompressorDeleter {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};
struct DecompressorDeleter {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

// libdeflate compressors carry large match-finder tables; allocating one per call would cost
// more than compressing a small profile, so each thread keeps one per level.
libdeflate_compressor* compressor_for(int level) {
  static thread_local std::array<std::unique_ptr<libdeflate_compressor, CompressorDeleter>, 13>
      cache;
  auto& slot = cache[static_cast<std::size_t>(level)];
  if (!slot) slot.reset(libdeflate_alloc_compressor(level));
  if (!slot) throw std::bad_alloc();
  return slot.get();
}

libdeflate_decompressor* decompressor() {
  static thread_local std::unique_ptr<libdeflate_decompressor, DecompressorDeleter> cache{
      libdeflate_alloc_decompressor()};
  if (!cache) throw std::bad_alloc();
  return cache.get();
}

constexpr std::string_view size_limit_prefix = "gzip: decompressed size exceeds the limit of ";

Error size_error(std::size_t max_output) {
  return make_error(std::string(size_limit_prefix) + std::to_string(max_output) + " bytes");
}

// Streaming inflate that never holds more than max_output + 1 bytes of output: the general path
// for concatenated members and for trailers that lie about the size.
Result<std::string> gunzip_zlib(std::string_view compressed, std::size_t max_output,
                                std::size_t size_hint) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return make_error("gzip: inflateInit2 failed");
  struct Guard {
    z_stream* zs;
    ~Guard() { inflateEnd(zs); }
  } guard{&zs};

  // One byte past the limit tells "exactly max_output" apart from "more than max_output".
  const std::size_t hard_cap =
      max_output == std::numeric_limits<std::size_t>::max() ? max_output : max_output + 1;
  std::string out;
  out.resize(std::min(std::max<std::size_t>(size_hint, 4096), hard_cap));
  std::size_t produced = 0;

  const auto* next = reinterpret_cast<const Bytef*>(compressed.data());
  std::size_t remaining = compressed.size();
  constexpr std::size_t max_chunk = std::numeric_limits<uInt>::max();
  bool member_done = false;
  while (true) {
    if (produced == out.size()) {
      if (out.size() >= hard_cap) return size_error(max_output);
      out.resize(std::min(hard_cap, std::max(out.size() * 2, std::size_t{4096})));
    }
    if (zs.avail_in == 0 && remaining > 0) {
      const std::size_t n = std::min(remaining, max_chunk);
      zs.next_in = const_cast<Bytef*>(next);
      zs.avail_in = static_cast<uInt>(n);
      next += n;
      remaining -= n;
    }
    const std::size_t room = std::min(out.size() - produced, max_chunk);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = static_cast<uInt>(room);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (rc == Z_STREAM_END) {
      member_done = true;
      if (zs.avail_in == 0 && remaining == 0) break;
      // Another gzip member follows (Go's reader accepts concatenated members too).
      if (inflateReset(&zs) != Z_OK) return make_error("gzip: inflateReset failed");
      member_done = false;
      continue;
    }
    if (rc == Z_BUF_ERROR) {
      // No progress possible: either the output is full (grow and retry) or input ran out.
      if (produced < out.size()) break;
      continue;
    }
    if (rc != Z_OK) {
      return make_error(std::string("gzip: corrupt data: ") + (zs.msg ? zs.msg : "inflate error"));
    }
  }
  if (!member_done) return make_error("gzip: truncated stream");
  if (produced > max_output) return size_error(max_output);
  out.resize(produced);
  return out;
}

}  // namespace

bool looks_gzipped(std::string_view data) {
  return data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
         static_cast<unsigned char>(data[1]) == 0x8b;
}

Result<std::string> gunzip(std::string_view compressed, std::size_t max_output) {
  if (compressed.empty()) return make_error("gzip: empty input");
  if (!looks_gzipped(compressed)) return make_error("gzip: missing gzip magic bytes");
  // 10-byte header + empty deflate block + 8-byte trailer.
  if (compressed.size() < 18) return make_error("gzip: truncated stream");

  // The trailer's ISIZE (size mod 2^32 of the last member) lets libdeflate, about twice as fast
  // as zlib, decompress in one shot into an exact buffer. A genuine ISIZE above the limit means
  // the output is too large anyway; a forged or multi-member one just falls back to zlib.
  const auto* trailer =
      reinterpret_cast<const unsigned char*>(compressed.data() + compressed.size() - 4);
  const std::uint32_t isize = trailer[0] | (trailer[1] << 8) | (trailer[2] << 16) |
                              (static_cast<std::uint32_t>(trailer[3]) << 24);
  if (isize > max_output) return size_error(max_output);

  std::string out;
  out.resize(std::max<std::size_t>(isize, 1));
  std::size_t in_used = 0;
  std::size_t out_used = 0;
  const libdeflate_result rc = libdeflate_gzip_decompress_ex(
      decompressor(), compressed.data(), compressed.size(), out.data(), isize, &in_used, &out_used);
  if (rc == LIBDEFLATE_SUCCESS && in_used == compressed.size()) {
    out.resize(out_used);
    return out;
  }
  if (rc == LIBDEFLATE_BAD_DATA) return make_error("gzip: corrupt or truncated data");
  // Several members, or an ISIZE that does not match: stream with an enforced cap instead.
  out = std::string();
  return gunzip_zlib(compressed, max_output, isize);
}

std::string gzip(std::string_view data, int level) {
  level = std::clamp(level, 1, 12);
  libdeflate_compressor* c = compressor_for(level);
  std::string out;
  out.resize(libdeflate_gzip_compress_bound(c, data.size()));
  const std::size_t n =
      libdeflate_gzip_compress(c, data.data(), data.size(), out.data(), out.size());
  out.resize(n);  // the bound guarantees n > 0
  return out;
}

bool is_size_limit_error(const Error& error) {
  return error.message.starts_with(size_limit_prefix);
}

}  // namespace pprofd::pprof
