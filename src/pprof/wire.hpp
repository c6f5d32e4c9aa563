#pragma once
// Protobuf wire-format primitives for the streaming profile code: a bounds-checked reader over a
// byte span and an appending writer. Internal to the pprof module.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pprofd::pprof::wire {

enum WireType : std::uint32_t { varint = 0, fixed64 = 1, len = 2, fixed32 = 5 };

// Every read returns false on truncated or malformed input and leaves the reader unusable;
// callers turn that into an error naming the message they were reading.
class Reader {
 public:
  explicit Reader(std::string_view bytes)
      : p_(reinterpret_cast<const unsigned char*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool done() const { return p_ == end_; }

  bool read_varint(std::uint64_t& v) {
    // Most values in a profile (ids, indices, small counts) fit in one byte.
    if (p_ != end_ && *p_ < 0x80) {
      v = *p_++;
      return true;
    }
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const unsigned char b = *p_++;
      if (shift == 63 && b > 1) return false;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  bool read_tag(std::uint32_t& field, std::uint32_t& wire_type) {
    std::uint64_t tag = 0;
    if (!read_varint(tag)) return false;
    wire_type = static_cast<std::uint32_t>(tag & 7);
    const std::uint64_t number = tag >> 3;
    if (number == 0 || number > 536870911) return false;
    field = static_cast<std::uint32_t>(number);
    return true;
  }

  bool read_bytes(std::string_view& out) {
    std::uint64_t n = 0;
    if (!read_varint(n) || n > static_cast<std::uint64_t>(end_ - p_)) return false;
    out = std::string_view(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return true;
  }

  bool skip(std::uint32_t wire_type) {
    std::uint64_t v = 0;
    std::string_view s;
    switch (wire_type) {
      case varint:
        return read_varint(v);
      case len:
        return read_bytes(s);
      case fixed64:
      case fixed32: {
        const std::size_t n = wire_type == fixed64 ? 8 : 4;
        if (static_cast<std::size_t>(end_ - p_) < n) return false;
        p_ += n;
        return true;
      }
      default:
        return false;
    }
  }

  // A repeated scalar field, which encoders may write packed or one element per tag.
  template <class F>
  bool read_repeated_varint(std::uint32_t wire_type, F&& on_value) {
    std::uint64_t v = 0;
    if (wire_type == varint) {
      if (!read_varint(v)) return false;
      on_value(v);
      return true;
    }
    std::string_view packed;
    if (wire_type != len || !read_bytes(packed)) return false;
    Reader r(packed);
    while (!r.done()) {
      if (!r.read_varint(v)) return false;
      on_value(v);
    }
    return true;
  }

  // Where the next read starts: lets a caller copy a field it just read verbatim.
  const char* position() const { return reinterpret_cast<const char*>(p_); }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

inline void put_varint(std::string& out, std::uint64_t v) {
  char buf[10];
  std::size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

inline void put_tag(std::string& out, std::uint32_t field, std::uint32_t wire_type) {
  put_varint(out, (std::uint64_t{field} << 3) | wire_type);
}

inline void put_bytes(std::string& out, std::uint32_t field, std::string_view bytes) {
  put_tag(out, field, len);
  put_varint(out, bytes.size());
  out.append(bytes);
}

// proto3 leaves zero scalars out.
inline void put_varint_field(std::string& out, std::uint32_t field, std::uint64_t v) {
  if (v == 0) return;
  put_tag(out, field, varint);
  put_varint(out, v);
}

}  // namespace pprofd::pprof::wire
