// Streaming validation of profile.proto bytes: one pass over the wire format, no message objects.
// Cost is linear in the input; the only allocations are the string-view table and sample types.

#include "pprofd/pprof/pprof.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace pprofd::pprof {
namespace {

enum WireType : std::uint32_t { varint_wt = 0, i64_wt = 1, len_wt = 2, i32_wt = 5 };

const char* wire_type_name(std::uint32_t wt) {
  switch (wt) {
    case 0:
      return "varint";
    case 1:
      return "fixed64";
    case 2:
      return "length-delimited";
    case 3:
      return "start-group";
    case 4:
      return "end-group";
    case 5:
      return "fixed32";
    default:
      return "invalid";
  }
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid, as protobuf treats them.
    static constexpr std::uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += n + 1;
  }
  return true;
}

class Walker {
 public:
  explicit Walker(std::string_view raw) : raw_(raw) {}

  Result<Summary> run() {
    if (raw_.empty()) return make_error("pprof: empty profile");
    if (!walk_profile(raw_)) return make_error("pprof: " + error_);
    return finish();
  }

 private:
  struct Cursor {
    const unsigned char* p;
    const unsigned char* end;
    explicit Cursor(std::string_view s)
        : p(reinterpret_cast<const unsigned char*>(s.data())), end(p + s.size()) {}
    bool done() const { return p == end; }
  };

  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  // Most varints in a profile (ids, indices, small counts) are one byte: that path is inlined.
  bool read_varint(Cursor& c, std::uint64_t& v, const char* what) {
    if (c.p != c.end && *c.p < 0x80) [[likely]] {
      v = *c.p++;
      return true;
    }
    return read_long_varint(c, v, what);
  }

  [[gnu::noinline]] bool read_long_varint(Cursor& c, std::uint64_t& v, const char* what) {
    v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
      if (c.p == c.end) return fail(std::string("truncated varint in ") + what);
      const unsigned char b = *c.p++;
      if (shift == 63 && b > 1) return fail(std::string("varint overflows 64 bits in ") + what);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return fail(std::string("varint longer than 10 bytes in ") + what);
  }

  bool read_tag(Cursor& c, std::uint32_t& field, std::uint32_t& wt, const char* msg) {
    std::uint64_t tag = 0;
    if (!read_varint(c, tag, msg)) return false;
    wt = static_cast<std::uint32_t>(tag & 7);
    const std::uint64_t number = tag >> 3;
    if (number == 0 || number > 536870911) {
      return fail(std::string("invalid field number in ") + msg + " (not a protobuf profile?)");
    }
    if (wt == 3 || wt == 4 || wt > 5) {
      return fail(std::string("invalid wire type ") + wire_type_name(wt) + " in " + msg +
                  " (not a protobuf profile?)");
    }
    field = static_cast<std::uint32_t>(number);
    return true;
  }

  bool read_len(Cursor& c, std::string_view& out, const char* msg) {
    std::uint64_t n = 0;
    if (!read_varint(c, n, msg)) return false;
    if (n > static_cast<std::uint64_t>(c.end - c.p)) {
      return fail(std::string("length ") + std::to_string(n) + " runs past the end of " + msg);
    }
    out = std::string_view(reinterpret_cast<const char*>(c.p), static_cast<std::size_t>(n));
    c.p += n;
    return true;
  }

  // Unknown fields are skipped so that newer profile.proto additions still validate.
  bool skip(Cursor& c, std::uint32_t wt, const char* msg) {
    std::uint64_t v = 0;
    std::string_view s;
    switch (wt) {
      case varint_wt:
        return read_varint(c, v, msg);
      case len_wt:
        return read_len(c, s, msg);
      case i64_wt:
      case i32_wt: {
        const std::size_t n = wt == i64_wt ? 8 : 4;
        if (static_cast<std::size_t>(c.end - c.p) < n) {
          return fail(std::string("truncated fixed-width field in ") + msg);
        }
        c.p += n;
        return true;
      }
      default:
        return fail("unreachable wire type");
    }
  }

  bool want(std::uint32_t got, std::uint32_t expected, std::uint32_t field, const char* msg) {
    if (got == expected) return true;
    return fail(std::string(msg) + " field " + std::to_string(field) + " has wire type " +
                wire_type_name(got) + ", want " + wire_type_name(expected));
  }

  bool string_index(std::uint64_t v, const char* what) {
    const auto i = static_cast<std::int64_t>(v);
    if (i < 0) return fail(std::string("negative string index in ") + what);
    max_string_index_ = std::max(max_string_index_, i);
    return true;
  }

  // A repeated scalar: Go writes it unpacked for up to two elements and packed otherwise.
  // on_value returns false to stop with the error it set.
  template <class F>
  bool repeated_varint(Cursor& c, std::uint32_t wt, std::uint32_t field, const char* msg,
                       F&& on_value) {
    std::uint64_t v = 0;
    if (wt == varint_wt) return read_varint(c, v, msg) && on_value(v);
    if (wt != len_wt) return want(wt, varint_wt, field, msg);
    std::string_view packed;
    if (!read_len(c, packed, msg)) return false;
    Cursor pc(packed);
    while (!pc.done()) {
      if (!read_varint(pc, v, msg) || !on_value(v)) return false;
    }
    return true;
  }

  bool walk_value_type(std::string_view bytes, std::int64_t& type, std::int64_t& unit) {
    constexpr const char* msg = "ValueType";
    Cursor c(bytes);
    while (!c.done()) {
      std::uint32_t field = 0, wt = 0;
      if (!read_tag(c, field, wt, msg)) return false;
      std::uint64_t v = 0;
      if (field == 1 || field == 2) {
        if (!want(wt, varint_wt, field, msg) || !read_varint(c, v, msg) || !string_index(v, msg)) {
          return false;
        }
        (field == 1 ? type : unit) = static_cast<std::int64_t>(v);
      } else if (!skip(c, wt, msg)) {
        return false;
      }
    }
    return true;
  }

  bool walk_label(std::string_view bytes) {
    constexpr const char* msg = "Label";
    Cursor c(bytes);
    while (!c.done()) {
      std::uint32_t field = 0, wt = 0;
      if (!read_tag(c, field, wt, msg)) return false;
      std::uint64_t v = 0;
      if (field >= 1 && field <= 4) {
        if (!want(wt, varint_wt, field, msg) || !read_varint(c, v, msg)) return false;
        if (field != 3 && !string_index(v, msg)) return false;
      } else if (!skip(c, wt, msg)) {
        return false;
      }
    }
    return true;
  }

  bool walk_sample(std::string_view bytes) {
    constexpr const char* msg = "Sample";
    Cursor c(bytes);
    std::size_t values = 0;
    while (!c.done()) {
      std::uint32_t field = 0, wt = 0;
      if (!read_tag(c, field, wt, msg)) return false;
      if (field == 1) {
        if (!repeated_varint(c, wt, field, msg, [](std::uint64_t) { return true; })) return false;
      } else if (field == 2) {
        if (!repeated_varint(c, wt, field, msg, [&](std::uint64_t) {
              ++values;
              return true;
            })) {
          return false;
        }
      } else if (field == 3) {
        std::string_view label;
        if (!want(wt, len_wt, field, msg) || !read_len(c, label, msg) || !walk_label(label)) {
          return false;
        }
      } else if (!skip(c, wt, msg)) {
        return false;
      }
    }
    // sample_type may come later in the stream, so only the extremes are compared at the end.
    min_values_ = std::min(min_values_, values);
    max_values_ = std::max(max_values_, values);
    return true;
  }

  // Messages whose fields are all varints; string_fields is a bitmask of string-index fields.
  bool walk_flat(std::string_view bytes, const char* msg, std::uint32_t max_field,
                 std::uint32_t string_fields) {
    Cursor c(bytes);
    while (!c.done()) {
      std::uint32_t field = 0, wt = 0;
      if (!read_tag(c, field, wt, msg)) return false;
      std::uint64_t v = 0;
      if (field <= max_field) {
        if (!want(wt, varint_wt, field, msg) || !read_varint(c, v, msg)) return false;
        if ((string_fields >> field) & 1U) {
          if (!string_index(v, msg)) return false;
        }
      } else if (!skip(c, wt, msg)) {
        return false;
      }
    }
    return true;
  }

  bool walk_location(std::string_view bytes) {
    constexpr const char* msg = "Location";
    Cursor c(bytes);
    while (!c.done()) {
      std::uint32_t field = 0, wt = 0;
      if (!read_tag(c, field, wt, msg)) return false;
      std::uint64_t v = 0;
      std::string_view line;
      if (field == 4) {
        if (!want(wt, len_wt, field, msg) || !read_len(c, line, msg) ||
            !walk_flat(line, "Line", 3, 0)) {
          return false;
        }
      } else if (field <= 5) {
        if (!want(wt, varint_wt, field, msg) || !read_varint(c, v, msg)) return false;
      } else if (!skip(c, wt, msg)) {
        return false;
      }
    }
    return true;
  }

  bool walk_profile(std::string_view bytes) {
    constexpr const char* msg = "Profile";
    Cursor c(bytes);
    while (!c.done()) {
      std::uint32_t field = 0, wt = 0;
      if (!read_tag(c, field, wt, msg)) return false;
      std::string_view sub;
      std::uint64_t v = 0;
      switch (field) {
        case 1: {
          std::int64_t type = 0, unit = 0;
          if (!want(wt, len_wt, field, msg) || !read_len(c, sub, msg) ||
              !walk_value_type(sub, type, unit)) {
            return false;
          }
          sample_types_.emplace_back(type, unit);
          break;
        }
        case 2:
          if (!want(wt, len_wt, field, msg) || !read_len(c, sub, msg) || !walk_sample(sub)) {
            return false;
          }
          ++summary_.sample_count;
          break;
        case 3:
          // Mapping: 5 filename and 6 build_id are string indices.
          if (!want(wt, len_wt, field, msg) || !read_len(c, sub, msg) ||
              !walk_flat(sub, "Mapping", 10, (1U << 5) | (1U << 6))) {
            return false;
          }
          ++summary_.mapping_count;
          break;
        case 4:
          if (!want(wt, len_wt, field, msg) || !read_len(c, sub, msg) || !walk_location(sub)) {
            return false;
          }
          ++summary_.location_count;
          break;
        case 5:
          // Function: 2 name, 3 system_name and 4 filename are string indices.
          if (!want(wt, len_wt, field, msg) || !read_len(c, sub, msg) ||
              !walk_flat(sub, "Function", 5, (1U << 2) | (1U << 3) | (1U << 4))) {
            return false;
          }
          ++summary_.function_count;
          break;
        case 6:
          if (!want(wt, len_wt, field, msg) || !read_len(c, sub, msg)) return false;
          if (!valid_utf8(sub)) {
            return fail("string_table[" + std::to_string(strings_.size()) + "] is not valid UTF-8");
          }
          strings_.push_back(sub);
          break;
        case 11:
          if (!want(wt, len_wt, field, msg) || !read_len(c, sub, msg) ||
              !walk_value_type(sub, period_type_.first, period_type_.second)) {
            return false;
          }
          break;
        case 13:
          if (!repeated_varint(c, wt, field, msg,
                               [&](std::uint64_t x) { return string_index(x, "comment"); })) {
            return false;
          }
          break;
        case 7:
        case 8:
        case 9:
        case 10:
        case 12:
        case 14:
        case 15:
          if (!want(wt, varint_wt, field, msg) || !read_varint(c, v, msg)) return false;
          if (field == 9) summary_.time_nanos = static_cast<std::int64_t>(v);
          if (field == 10) summary_.duration_nanos = static_cast<std::int64_t>(v);
          if (field == 12) summary_.period = static_cast<std::int64_t>(v);
          if ((field == 7 || field == 8 || field == 14 || field == 15) && !string_index(v, msg)) {
            return false;
          }
          break;
        default:
          if (!skip(c, wt, msg)) return false;
      }
    }
    return true;
  }

  Result<Summary> finish() {
    if (strings_.empty()) return make_error("pprof: no string_table");
    if (!strings_[0].empty()) return make_error("pprof: string_table[0] is not empty");
    if (static_cast<std::uint64_t>(max_string_index_) >= strings_.size()) {
      return make_error("pprof: string index " + std::to_string(max_string_index_) +
                        " out of range (string_table has " + std::to_string(strings_.size()) +
                        " entries)");
    }
    if (sample_types_.empty()) return make_error("pprof: no sample_type");
    if (summary_.sample_count > 0 &&
        (min_values_ != sample_types_.size() || max_values_ != sample_types_.size())) {
      const std::size_t bad = min_values_ != sample_types_.size() ? min_values_ : max_values_;
      return make_error("pprof: a sample has " + std::to_string(bad) + " values but there are " +
                        std::to_string(sample_types_.size()) + " sample types");
    }
    auto str = [&](std::int64_t i) { return std::string(strings_[static_cast<std::size_t>(i)]); };
    summary_.sample_types.reserve(sample_types_.size());
    for (const auto& [type, unit] : sample_types_) {
      summary_.sample_types.push_back(ValueType{str(type), str(unit)});
    }
    summary_.period_type = ValueType{str(period_type_.first), str(period_type_.second)};
    summary_.string_count = strings_.size();
    return std::move(summary_);
  }

  std::string_view raw_;
  std::string error_;
  Summary summary_;
  std::vector<std::string_view> strings_;
  std::vector<std::pair<std::int64_t, std::int64_t>> sample_types_;
  std::pair<std::int64_t, std::int64_t> period_type_{0, 0};
  std::int64_t max_string_index_ = 0;
  std::size_t min_values_ = std::numeric_limits<std::size_t>::max();
  std::size_t max_values_ = 0;
};

}  // namespace

Result<Summary> inspect(std::string_view raw) { return Walker(raw).run(); }

}  // namespace pprofd::pprof
