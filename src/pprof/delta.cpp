// Streaming delta: the profile is walked once into spans and flat tables, samples are keyed and
// sorted, merge-joined with the sorted baseline, and the delta is written straight to protobuf
// bytes. No message objects are built; locations are copied byte for byte. Per-call working
// memory lives in a per-thread scratch area, so a worker allocates it once and reuses it.

#include "pprofd/pprof/delta.hpp"

#include "pprofd/common/cpu_clock.hpp"
#include "pprofd/common/hash.hpp"
#include "wire.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

namespace pprofd::pprof {
namespace {

// Strong 64-bit finalizer (splitmix64): fnv1a alone mixes the high bits poorly.
constexpr std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Ordered combination: the stack A->B must not equal B->A.
constexpr std::uint64_t combine(std::uint64_t h, std::uint64_t v) {
  return mix(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

// The same for the frames of a stack, where it runs once per frame: the frame hashes are already
// well mixed, so a rotate-xor-multiply step (FxHash) suffices and the caller mixes once at the end.
constexpr std::uint64_t append_frame(std::uint64_t h, std::uint64_t frame) {
  return (std::rotl(h, 5) ^ frame) * 0x517cc1b727220a95ULL;
}

bool is_delta_column(std::string_view type, std::string_view unit) {
  return (type == "alloc_objects" && unit == "count") ||
         (type == "alloc_space" && unit == "bytes") || (type == "contentions" && unit == "count") ||
         (type == "delay" && unit == "nanoseconds");
}

// profile.proto field numbers.
namespace field {
constexpr std::uint32_t sample_type = 1, sample = 2, mapping = 3, location = 4, function = 5,
                        string_table = 6, drop_frames = 7, keep_frames = 8, time_nanos = 9,
                        duration_nanos = 10, period_type = 11, period = 12, comment = 13,
                        default_sample_type = 14, doc_url = 15;
}

// Position of each location, function or mapping by id. Go numbers them 1..n, so a vector
// indexed by id usually serves; sparser ids fall back to a hash map.
class IdIndex {
 public:
  static constexpr std::uint32_t absent = std::numeric_limits<std::uint32_t>::max();

  template <class Items>
  bool build(const Items& items) {
    dense_.clear();
    sparse_.clear();
    std::uint64_t max_id = 0;
    for (const auto& item : items) max_id = std::max(max_id, item.id);
    dense_mode_ = max_id <= 2 * items.size() + 64;
    if (dense_mode_) dense_.assign(static_cast<std::size_t>(max_id) + 1, absent);
    for (std::uint32_t i = 0; i < items.size(); ++i) {
      const std::uint64_t id = items[i].id;
      if (dense_mode_) {
        if (dense_[id] != absent) return false;
        dense_[id] = i;
      } else if (!sparse_.emplace(id, i).second) {
        return false;
      }
    }
    return true;
  }

  std::uint32_t find(std::uint64_t id) const {
    if (dense_mode_) return id < dense_.size() ? dense_[id] : absent;
    auto it = sparse_.find(id);
    return it == sparse_.end() ? absent : it->second;
  }

 private:
  bool dense_mode_ = true;
  std::vector<std::uint32_t> dense_;
  std::unordered_map<std::uint64_t, std::uint32_t> sparse_;
};

struct LocationEntry {
  std::uint64_t id = 0;
  std::uint64_t mapping_id = 0;
  std::uint64_t address = 0;
  std::uint32_t first_line = 0;
  std::uint32_t line_count = 0;
  std::string_view bytes;
};

struct LineEntry {
  std::uint64_t function_id = 0;
  std::int64_t line = 0;
};

struct FunctionEntry {
  std::uint64_t id = 0;
  std::uint64_t name = 0;
  std::uint64_t system_name = 0;
  std::uint64_t filename = 0;
  std::string_view bytes;
};

struct MappingEntry {
  std::uint64_t id = 0;
  std::uint64_t filename = 0;
  std::uint64_t build_id = 0;
  std::string_view bytes;
};

// Where a sample's parts are, so writing it needs no second parse.
struct SampleInfo {
  std::uint32_t first_location = 0;  // into Scratch::sample_locations
  std::uint32_t location_count = 0;
  std::string_view packed_locations;  // the location_id field as read, when it was one packed field
  bool has_labels = false;
};

struct SampleKey {
  std::uint64_t key;
  std::uint32_t sample;
  // Duplicates stay in stream order, so the first one is the sample that represents them.
  friend bool operator<(const SampleKey& a, const SampleKey& b) {
    return a.key != b.key ? a.key < b.key : a.sample < b.sample;
  }
};

// The scalar and small fields of Profile, as string indices where they are strings.
struct Header {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> sample_types;
  std::optional<std::pair<std::uint64_t, std::uint64_t>> period_type;
  std::uint64_t drop_frames = 0, keep_frames = 0, default_sample_type = 0, doc_url = 0;
  std::int64_t time_nanos = 0, duration_nanos = 0, period = 0;
  std::vector<std::uint64_t> comments;
};

// Working memory of one apply(), kept per thread between calls.
struct Scratch {
  Header header;
  std::vector<std::string_view> samples;
  std::vector<SampleInfo> sample_info;
  std::vector<std::uint32_t> sample_locations;  // location positions, samples back to back
  std::vector<std::string_view> strings;
  std::vector<LocationEntry> locations;
  std::vector<LineEntry> lines;
  std::vector<FunctionEntry> functions;
  std::vector<MappingEntry> mappings;
  IdIndex location_index, function_index, mapping_index;
  std::vector<std::uint64_t> location_hash;
  std::vector<std::int64_t> values;  // samples x columns, row-major
  std::vector<SampleKey> keys;
  std::vector<std::uint8_t> represents;  // sample is the first of its key
  std::vector<std::uint64_t> next_keys;
  std::string next_values;
  std::vector<std::uint8_t> location_used, function_used, mapping_used;
  std::vector<std::int64_t> string_remap;
  std::vector<std::uint64_t> kept_strings;
  std::string message, inner, sample;

  void clear() {
    header = {};
    samples.clear();
    sample_info.clear();
    sample_locations.clear();
    strings.clear();
    locations.clear();
    lines.clear();
    functions.clear();
    mappings.clear();
    location_hash.clear();
    values.clear();
    keys.clear();
    represents.clear();
    next_keys.clear();
    next_values.clear();
  }

  // A huge profile must not pin its working memory in a worker forever.
  void trim() {
    constexpr std::size_t keep_bytes = 16 << 20;
    const std::size_t held =
        values.capacity() * sizeof(std::int64_t) + keys.capacity() * sizeof(SampleKey) +
        samples.capacity() * sizeof(std::string_view) +
        sample_info.capacity() * sizeof(SampleInfo) +
        sample_locations.capacity() * sizeof(std::uint32_t) +
        strings.capacity() * sizeof(std::string_view) +
        locations.capacity() * sizeof(LocationEntry) + lines.capacity() * sizeof(LineEntry) +
        functions.capacity() * sizeof(FunctionEntry) + mappings.capacity() * sizeof(MappingEntry) +
        location_hash.capacity() * sizeof(std::uint64_t) +
        next_keys.capacity() * sizeof(std::uint64_t) + next_values.capacity() +
        string_remap.capacity() * sizeof(std::int64_t);
    if (held > keep_bytes) *this = Scratch{};
  }
};

// Trims the scratch area on every way out of apply(), errors included.
struct TrimOnExit {
  Scratch& scratch;
  ~TrimOnExit() { scratch.trim(); }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

Error malformed(const char* what) { return make_error(std::string("pprof: malformed ") + what); }

// Reads the varint fields of a small message (ValueType, Mapping, Function, Line, Label),
// skipping any other field.
template <class OnField>
bool varint_fields(std::string_view bytes, OnField&& on_field) {
  wire::Reader r(bytes);
  while (!r.done()) {
    std::uint32_t f = 0, wt = 0;
    if (!r.read_tag(f, wt)) return false;
    if (wt != wire::varint) {
      if (!r.skip(wt)) return false;
      continue;
    }
    std::uint64_t v = 0;
    if (!r.read_varint(v)) return false;
    on_field(f, v);
  }
  return true;
}

// Pass 1: spans and ids, in one walk over the bytes.
class Decoder {
 public:
  Decoder(std::string_view raw, Scratch& s) : raw_(raw), s_(s) {}

  Result<void> run() {
    wire::Reader r(raw_);
    while (!r.done()) {
      std::uint32_t f = 0, wt = 0;
      if (!r.read_tag(f, wt)) return malformed("Profile");
      std::string_view bytes;
      std::uint64_t v = 0;
      switch (f) {
        case field::sample_type:
        case field::period_type: {
          std::pair<std::uint64_t, std::uint64_t> vt;
          if (wt != wire::len || !r.read_bytes(bytes) || !value_type(bytes, vt))
            return malformed("ValueType");
          if (f == field::sample_type) {
            s_.header.sample_types.push_back(vt);
          } else {
            s_.header.period_type = vt;
          }
          break;
        }
        case field::sample:
          if (wt != wire::len || !r.read_bytes(bytes)) return malformed("Sample");
          s_.samples.push_back(bytes);
          break;
        case field::mapping:
          if (wt != wire::len || !r.read_bytes(bytes) || !mapping(bytes))
            return malformed("Mapping");
          break;
        case field::location:
          if (wt != wire::len || !r.read_bytes(bytes) || !location(bytes))
            return malformed("Location");
          break;
        case field::function:
          if (wt != wire::len || !r.read_bytes(bytes) || !function(bytes))
            return malformed("Function");
          break;
        case field::string_table:
          if (wt != wire::len || !r.read_bytes(bytes)) return malformed("string_table");
          s_.strings.push_back(bytes);
          break;
        case field::comment:
          if (!r.read_repeated_varint(wt,
                                      [&](std::uint64_t x) { s_.header.comments.push_back(x); }))
            return malformed("comment");
          break;
        case field::drop_frames:
        case field::keep_frames:
        case field::time_nanos:
        case field::duration_nanos:
        case field::period:
        case field::default_sample_type:
        case field::doc_url:
          if (wt != wire::varint || !r.read_varint(v)) return malformed("Profile");
          scalar(f, v);
          break;
        default:
          if (!r.skip(wt)) return malformed("Profile");
      }
    }
    if (s_.strings.empty()) return make_error("pprof: no string_table");
    if (!s_.strings[0].empty()) return make_error("pprof: string_table[0] is not empty");
    return {};
  }

 private:
  void scalar(std::uint32_t f, std::uint64_t v) {
    Header& h = s_.header;
    const auto signed_v = static_cast<std::int64_t>(v);
    switch (f) {
      case field::drop_frames:
        h.drop_frames = v;
        break;
      case field::keep_frames:
        h.keep_frames = v;
        break;
      case field::time_nanos:
        h.time_nanos = signed_v;
        break;
      case field::duration_nanos:
        h.duration_nanos = signed_v;
        break;
      case field::period:
        h.period = signed_v;
        break;
      case field::default_sample_type:
        h.default_sample_type = v;
        break;
      default:
        h.doc_url = v;
    }
  }

  static bool value_type(std::string_view bytes, std::pair<std::uint64_t, std::uint64_t>& out) {
    return varint_fields(bytes, [&](std::uint32_t f, std::uint64_t v) {
      if (f == 1) out.first = v;
      if (f == 2) out.second = v;
    });
  }

  bool mapping(std::string_view bytes) {
    MappingEntry m{.bytes = bytes};
    if (!varint_fields(bytes, [&](std::uint32_t f, std::uint64_t v) {
          if (f == 1) m.id = v;
          if (f == 5) m.filename = v;
          if (f == 6) m.build_id = v;
        }))
      return false;
    s_.mappings.push_back(m);
    return true;
  }

  bool function(std::string_view bytes) {
    FunctionEntry fn{.bytes = bytes};
    if (!varint_fields(bytes, [&](std::uint32_t f, std::uint64_t v) {
          if (f == 1) fn.id = v;
          if (f == 2) fn.name = v;
          if (f == 3) fn.system_name = v;
          if (f == 4) fn.filename = v;
        }))
      return false;
    s_.functions.push_back(fn);
    return true;
  }

  bool location(std::string_view bytes) {
    LocationEntry loc{.first_line = static_cast<std::uint32_t>(s_.lines.size()), .bytes = bytes};
    wire::Reader r(bytes);
    while (!r.done()) {
      std::uint32_t f = 0, wt = 0;
      if (!r.read_tag(f, wt)) return false;
      if (f == 4) {
        std::string_view line_bytes;
        if (wt != wire::len || !r.read_bytes(line_bytes)) return false;
        LineEntry line;
        if (!varint_fields(line_bytes, [&](std::uint32_t lf, std::uint64_t v) {
              if (lf == 1) line.function_id = v;
              if (lf == 2) line.line = static_cast<std::int64_t>(v);
            }))
          return false;
        s_.lines.push_back(line);
        ++loc.line_count;
        continue;
      }
      if (wt != wire::varint) {
        if (!r.skip(wt)) return false;
        continue;
      }
      std::uint64_t v = 0;
      if (!r.read_varint(v)) return false;
      if (f == 1) loc.id = v;
      if (f == 2) loc.mapping_id = v;
      if (f == 3) loc.address = v;
    }
    s_.locations.push_back(loc);
    return true;
  }

  std::string_view raw_;
  Scratch& s_;
};

// Calls on_location(id) for each location id of a sample, on_value(v) for each value and
// on_label(bytes) for each label; notes in `info` where the location ids were.
template <class OnLocation, class OnValue, class OnLabel>
bool walk_sample(std::string_view bytes, SampleInfo& info, OnLocation&& on_location,
                 OnValue&& on_value, OnLabel&& on_label) {
  wire::Reader r(bytes);
  int location_fields = 0;
  while (!r.done()) {
    std::uint32_t f = 0, wt = 0;
    if (!r.read_tag(f, wt)) return false;
    if (f == 1) {
      ++location_fields;
      if (wt == wire::len) {
        wire::Reader peek = r;
        if (!peek.read_bytes(info.packed_locations)) return false;
      }
      if (!r.read_repeated_varint(wt, on_location)) return false;
    } else if (f == 2) {
      if (!r.read_repeated_varint(wt, on_value)) return false;
    } else if (f == 3) {
      std::string_view label;
      if (wt != wire::len || !r.read_bytes(label)) return false;
      info.has_labels = true;
      on_label(label);
    } else if (!r.skip(wt)) {
      return false;
    }
  }
  // Copied verbatim only when it was the one packed field holding every id.
  if (location_fields != 1 || info.packed_locations.empty()) info.packed_locations = {};
  return true;
}

struct Label {
  std::uint64_t key = 0, str = 0, num = 0, num_unit = 0;
};

bool read_label(std::string_view bytes, Label& out) {
  return varint_fields(bytes, [&](std::uint32_t f, std::uint64_t v) {
    if (f == 1) out.key = v;
    if (f == 2) out.str = v;
    if (f == 3) out.num = v;
    if (f == 4) out.num_unit = v;
  });
}

// Baseline values are protobuf-style int64 varints: the non-negative counts Go writes take one to
// five bytes (a negative one, which Go never writes, takes ten).
void put_count(std::string& out, std::int64_t v) {
  wire::put_varint(out, static_cast<std::uint64_t>(v));
}

std::int64_t get_count(const unsigned char*& p) {
  std::uint64_t v = 0;
  for (unsigned shift = 0;; shift += 7) {
    const unsigned char b = *p++;
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
  }
  return static_cast<std::int64_t>(v);
}

// String indices of the output: "" stays 0, the rest numbered in order of first use.
class StringRemap {
 public:
  explicit StringRemap(Scratch& s) : s_(s) {
    s_.string_remap.assign(s_.strings.size(), -1);
    s_.string_remap[0] = 0;
    s_.kept_strings.assign(1, 0);
  }

  std::optional<std::uint64_t> operator()(std::uint64_t old) {
    if (old >= s_.string_remap.size()) return std::nullopt;
    auto& slot = s_.string_remap[old];
    if (slot < 0) {
      slot = static_cast<std::int64_t>(s_.kept_strings.size());
      s_.kept_strings.push_back(old);
    }
    return static_cast<std::uint64_t>(slot);
  }

 private:
  Scratch& s_;
};

// Copies a message, rewriting the string-index varint fields named by the bitmask.
bool copy_remapped(std::string_view bytes, std::uint32_t string_fields, StringRemap& remap,
                   std::string& out) {
  wire::Reader r(bytes);
  while (!r.done()) {
    const char* start = r.position();
    std::uint32_t f = 0, wt = 0;
    if (!r.read_tag(f, wt)) return false;
    if (wt == wire::varint && f < 32 && ((string_fields >> f) & 1U)) {
      std::uint64_t v = 0;
      if (!r.read_varint(v)) return false;
      auto mapped = remap(v);
      if (!mapped) return false;
      wire::put_varint_field(out, f, *mapped);
    } else {
      if (!r.skip(wt)) return false;
      out.append(start, static_cast<std::size_t>(r.position() - start));
    }
  }
  return true;
}

}  // namespace

Result<DeltaOutput> DeltaComputer::apply(std::string_view raw) {
  Scratch& s = scratch();
  s.clear();
  const TrimOnExit trim{s};
  CpuStopwatch stopwatch;
  DeltaOutput out;

  // ---- decode: spans, ids and indices.
  if (auto decoded = Decoder(raw, s).run(); !decoded) return decoded.error();
  const Header& header = s.header;
  const std::size_t string_count = s.strings.size();
  auto str = [&](std::uint64_t i) -> std::optional<std::string_view> {
    if (i >= string_count) return std::nullopt;
    return s.strings[static_cast<std::size_t>(i)];
  };
  if (header.sample_types.empty()) return make_error("pprof: no sample_type");
  std::vector<std::size_t> delta_columns;
  std::uint64_t columns_hash = fnv1a64_offset;
  for (std::size_t i = 0; i < header.sample_types.size(); ++i) {
    const auto type = str(header.sample_types[i].first);
    const auto unit = str(header.sample_types[i].second);
    if (!type || !unit) return make_error("pprof: sample_type string index out of range");
    columns_hash = combine(columns_hash, fnv1a64(*type));
    columns_hash = combine(columns_hash, fnv1a64(*unit));
    if (is_delta_column(*type, *unit)) delta_columns.push_back(i);
  }
  if (delta_columns.empty()) return make_error("pprof: profile has no cumulative columns to diff");
  if (!s.function_index.build(s.functions)) return make_error("pprof: duplicate function id");
  if (!s.location_index.build(s.locations)) return make_error("pprof: duplicate location id");
  if (!s.mapping_index.build(s.mappings)) return make_error("pprof: duplicate mapping id");
  // Everything the output may reference is checked now, whatever the outcome: a profile that
  // would be invalid to emit must not become the baseline either.
  const auto in_range = [&](std::uint64_t i) { return i < string_count; };
  for (const FunctionEntry& f : s.functions) {
    if (!in_range(f.name) || !in_range(f.system_name) || !in_range(f.filename))
      return make_error("pprof: function string index out of range");
  }
  for (const MappingEntry& m : s.mappings) {
    if (!in_range(m.filename) || !in_range(m.build_id))
      return make_error("pprof: mapping string index out of range");
  }
  if (!in_range(header.drop_frames) || !in_range(header.keep_frames) ||
      !in_range(header.default_sample_type) || !in_range(header.doc_url) ||
      (header.period_type &&
       (!in_range(header.period_type->first) || !in_range(header.period_type->second))) ||
      !std::all_of(header.comments.begin(), header.comments.end(), in_range))
    return make_error("pprof: string index out of range");
  for (const LocationEntry& loc : s.locations) {
    if (loc.mapping_id != 0 && s.mapping_index.find(loc.mapping_id) == IdIndex::absent) {
      return make_error("pprof: location " + std::to_string(loc.id) +
                        " references missing mapping " + std::to_string(loc.mapping_id));
    }
    for (std::uint32_t l = 0; l < loc.line_count; ++l) {
      const std::uint64_t function_id = s.lines[loc.first_line + l].function_id;
      if (function_id != 0 && s.function_index.find(function_id) == IdIndex::absent) {
        return make_error("pprof: location " + std::to_string(loc.id) +
                          " references missing function " + std::to_string(function_id));
      }
    }
  }
  const std::size_t columns = header.sample_types.size();
  // Each value takes at least one byte: more cells than input bytes cannot be a valid profile,
  // and must not size an allocation.
  if (s.samples.size() > raw.size() / columns)
    return make_error("pprof: more sample values than the profile has bytes");
  out.cpu.decode = stopwatch.lap();

  // ---- diff: key every sample, merge duplicates, merge-join with the sorted baseline.
  // Location ids differ between two profiles of one process, so the identity of a frame is its
  // address, or its symbolic lines when the address is unknown.
  s.location_hash.resize(s.locations.size());
  for (std::size_t i = 0; i < s.locations.size(); ++i) {
    const LocationEntry& loc = s.locations[i];
    std::uint64_t h = 0;
    if (loc.address != 0) {
      h = mix(loc.address);
    } else {
      h = 0x11fe5ULL;
      for (std::uint32_t l = 0; l < loc.line_count; ++l) {
        const LineEntry& line = s.lines[loc.first_line + l];
        const std::uint32_t fi = s.function_index.find(line.function_id);
        if (fi == IdIndex::absent) {
          return make_error("pprof: location " + std::to_string(loc.id) +
                            " references missing function " + std::to_string(line.function_id));
        }
        const auto name = str(s.functions[fi].name);
        const auto file = str(s.functions[fi].filename);
        if (!name || !file) return make_error("pprof: function string index out of range");
        h = combine(h, fnv1a64(*name));
        h = combine(h, fnv1a64(*file));
        h = combine(h, static_cast<std::uint64_t>(line.line));
      }
    }
    s.location_hash[i] = h;
  }

  const std::size_t sample_count = s.samples.size();
  s.values.resize(sample_count * columns);
  s.keys.resize(sample_count);
  s.sample_info.assign(sample_count, SampleInfo{});
  for (std::size_t i = 0; i < sample_count; ++i) {
    SampleInfo& info = s.sample_info[i];
    info.first_location = static_cast<std::uint32_t>(s.sample_locations.size());
    std::uint64_t stack = 0x5ca1ab1eULL;
    std::uint64_t depth = 0;
    std::uint64_t missing_location = 0;
    bool missing = false;
    std::size_t value_count = 0;
    std::int64_t* row = s.values.data() + i * columns;
    // Labels are a set: a commutative sum of well-mixed label hashes ignores their order.
    std::uint64_t labels = 0;
    bool bad_label = false;
    const bool ok = walk_sample(
        s.samples[i], info,
        [&](std::uint64_t id) {
          const std::uint32_t li = s.location_index.find(id);
          if (li == IdIndex::absent) {
            if (!missing) missing_location = id;
            missing = true;
            return;
          }
          stack = append_frame(stack, s.location_hash[li]);
          s.sample_locations.push_back(li);
          ++depth;
        },
        [&](std::uint64_t v) {
          if (value_count < columns) row[value_count] = static_cast<std::int64_t>(v);
          ++value_count;
        },
        [&](std::string_view bytes) {
          Label l;
          const auto key = read_label(bytes, l) ? str(l.key) : std::nullopt;
          const auto text = key ? str(l.str) : std::nullopt;
          const auto unit = text ? str(l.num_unit) : std::nullopt;
          if (!unit) {
            bad_label = true;
            return;
          }
          std::uint64_t h = fnv1a64(*key);
          h = combine(h, fnv1a64(*text));
          h = combine(h, l.num);
          h = combine(h, fnv1a64(*unit));
          labels += mix(h);
        });
    if (!ok) return malformed("Sample");
    if (bad_label) return malformed("Label");
    if (missing) {
      return make_error("pprof: sample references missing location " +
                        std::to_string(missing_location));
    }
    if (value_count != columns) {
      return make_error("pprof: a sample has " + std::to_string(value_count) +
                        " values but there are " + std::to_string(columns) + " sample types");
    }
    info.location_count = static_cast<std::uint32_t>(depth);
    s.keys[i] = SampleKey{combine(combine(stack, depth), labels), static_cast<std::uint32_t>(i)};
  }
  std::sort(s.keys.begin(), s.keys.end());

  const std::size_t stride = delta_columns.size();
  const bool comparable = seeded_ && columns_hash_ == columns_hash;
  bool went_down = false;
  std::size_t baseline_row = 0;
  const auto* baseline_cursor = reinterpret_cast<const unsigned char*>(baseline_values_.data());
  std::vector<std::int64_t> previous(stride);
  s.represents.assign(sample_count, 0);
  for (std::size_t k = 0; k < sample_count;) {
    const std::uint64_t key = s.keys[k].key;
    const std::uint32_t first = s.keys[k].sample;
    std::int64_t* row = s.values.data() + std::size_t{first} * columns;
    // Go can write one stack with the same labels several times; fold those into the first.
    for (++k; k < sample_count && s.keys[k].key == key; ++k) {
      const std::int64_t* dup = s.values.data() + std::size_t{s.keys[k].sample} * columns;
      for (std::size_t c = 0; c < columns; ++c) {
        if (__builtin_add_overflow(row[c], dup[c], &row[c]))
          return make_error("pprof: sample values overflow when merging duplicates");
      }
    }
    s.represents[first] = 1;

    // The next baseline holds the current cumulative values; all-zero rows are left out, since
    // a missing row already means "0 so far".
    const bool nonzero = std::any_of(delta_columns.begin(), delta_columns.end(),
                                     [&](std::size_t c) { return row[c] != 0; });
    if (nonzero) {
      s.next_keys.push_back(key);
      for (std::size_t c : delta_columns) put_count(s.next_values, row[c]);
    }

    bool has_previous = false;
    if (comparable) {
      // Go never forgets a cumulative bucket, so a stack that had counts and is now gone went
      // down to zero: the process restarted, possibly as a new binary with new addresses.
      for (; baseline_row < baseline_keys_.size() && baseline_keys_[baseline_row] < key;
           ++baseline_row) {
        for (std::size_t c = 0; c < stride; ++c) get_count(baseline_cursor);
        went_down = true;
      }
      if (baseline_row < baseline_keys_.size() && baseline_keys_[baseline_row] == key) {
        for (std::size_t c = 0; c < stride; ++c) previous[c] = get_count(baseline_cursor);
        ++baseline_row;
        has_previous = true;
      }
    }
    for (std::size_t c = 0; c < stride; ++c) {
      std::int64_t& cell = row[delta_columns[c]];
      std::int64_t delta = 0;
      if (__builtin_sub_overflow(cell, has_previous ? previous[c] : 0, &delta) || delta < 0)
        went_down = true;
      cell = delta;  // only used when emitting
    }
  }
  if (comparable && baseline_row < baseline_keys_.size()) went_down = true;

  if (!comparable) {
    out.status = seeded_ ? DeltaStatus::reset : DeltaStatus::first;
  } else if (went_down) {
    out.status = DeltaStatus::reset;
  } else {
    out.status = DeltaStatus::emitted;
  }
  out.cpu.diff = stopwatch.lap();

  // ---- encode: the samples with anything left, and only what they reference.
  if (out.status == DeltaStatus::emitted) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < sample_count; ++i) {
      const std::int64_t* row = s.values.data() + i * columns;
      if (!s.represents[i] || std::all_of(row, row + columns, [](auto v) { return v == 0; })) {
        s.represents[i] = 0;
        continue;
      }
      ++kept;
    }
    s.location_used.assign(s.locations.size(), 0);
    s.function_used.assign(s.functions.size(), 0);
    s.mapping_used.assign(s.mappings.size(), 0);
    StringRemap remap(s);
    std::string& profile = out.profile;
    profile.reserve(raw.size());
    bool strings_ok = true;
    auto mapped = [&](std::uint64_t old) {
      auto m = remap(old);
      strings_ok = strings_ok && m.has_value();
      return m.value_or(0);
    };
    auto put_value_type = [&](std::uint32_t f, std::uint64_t type, std::uint64_t unit) {
      s.message.clear();
      wire::put_varint_field(s.message, 1, type);
      wire::put_varint_field(s.message, 2, unit);
      wire::put_bytes(profile, f, s.message);
    };
    for (const auto& [type, unit] : header.sample_types) {
      const std::uint64_t new_type = mapped(type);
      put_value_type(field::sample_type, new_type, mapped(unit));
    }

    SampleInfo ignored;
    for (std::size_t i = 0; i < sample_count; ++i) {
      if (!s.represents[i]) continue;
      const SampleInfo& info = s.sample_info[i];
      std::string& sample = s.sample;
      sample.clear();
      const std::uint32_t* locations = s.sample_locations.data() + info.first_location;
      for (std::uint32_t l = 0; l < info.location_count; ++l) s.location_used[locations[l]] = 1;
      if (!info.packed_locations.empty()) {
        wire::put_bytes(sample, 1, info.packed_locations);
      } else if (info.location_count > 0) {
        s.inner.clear();
        for (std::uint32_t l = 0; l < info.location_count; ++l)
          wire::put_varint(s.inner, s.locations[locations[l]].id);
        wire::put_bytes(sample, 1, s.inner);
      }
      s.inner.clear();
      const std::int64_t* row = s.values.data() + i * columns;
      for (std::size_t c = 0; c < columns; ++c)
        wire::put_varint(s.inner, static_cast<std::uint64_t>(row[c]));
      wire::put_bytes(sample, 2, s.inner);
      if (info.has_labels) {
        walk_sample(
            s.samples[i], ignored, [](std::uint64_t) {}, [](std::uint64_t) {},
            [&](std::string_view bytes) {
              Label l;
              read_label(bytes, l);
              s.message.clear();
              wire::put_varint_field(s.message, 1, mapped(l.key));
              wire::put_varint_field(s.message, 2, mapped(l.str));
              wire::put_varint_field(s.message, 3, l.num);
              wire::put_varint_field(s.message, 4, mapped(l.num_unit));
              wire::put_bytes(sample, 3, s.message);
            });
      }
      wire::put_bytes(profile, field::sample, sample);
    }

    for (std::size_t i = 0; i < s.locations.size(); ++i) {
      if (!s.location_used[i]) continue;
      const LocationEntry& loc = s.locations[i];
      if (loc.mapping_id != 0) {
        if (auto m = s.mapping_index.find(loc.mapping_id); m != IdIndex::absent)
          s.mapping_used[m] = 1;
      }
      for (std::uint32_t l = 0; l < loc.line_count; ++l) {
        if (auto fi = s.function_index.find(s.lines[loc.first_line + l].function_id);
            fi != IdIndex::absent)
          s.function_used[fi] = 1;
      }
    }
    constexpr std::uint32_t mapping_strings = (1U << 5) | (1U << 6);  // filename, build_id
    for (std::size_t i = 0; i < s.mappings.size(); ++i) {
      if (!s.mapping_used[i]) continue;
      s.message.clear();
      strings_ok =
          strings_ok && copy_remapped(s.mappings[i].bytes, mapping_strings, remap, s.message);
      wire::put_bytes(profile, field::mapping, s.message);
    }
    for (std::size_t i = 0; i < s.locations.size(); ++i) {
      if (s.location_used[i]) wire::put_bytes(profile, field::location, s.locations[i].bytes);
    }
    constexpr std::uint32_t function_strings = (1U << 2) | (1U << 3) | (1U << 4);
    for (std::size_t i = 0; i < s.functions.size(); ++i) {
      if (!s.function_used[i]) continue;
      s.message.clear();
      strings_ok =
          strings_ok && copy_remapped(s.functions[i].bytes, function_strings, remap, s.message);
      wire::put_bytes(profile, field::function, s.message);
    }

    // Fields after the string table still name strings: number them before writing the table.
    const std::uint64_t drop_frames = mapped(header.drop_frames);
    const std::uint64_t keep_frames = mapped(header.keep_frames);
    const std::uint64_t default_sample_type = mapped(header.default_sample_type);
    const std::uint64_t doc_url = mapped(header.doc_url);
    std::optional<std::pair<std::uint64_t, std::uint64_t>> period_type;
    if (header.period_type) {
      const std::uint64_t type = mapped(header.period_type->first);
      period_type = std::pair{type, mapped(header.period_type->second)};
    }
    s.inner.clear();
    for (std::uint64_t c : header.comments) wire::put_varint(s.inner, mapped(c));
    if (!strings_ok) return make_error("pprof: string index out of range");

    for (std::uint64_t old : s.kept_strings)
      wire::put_bytes(profile, field::string_table, s.strings[static_cast<std::size_t>(old)]);
    wire::put_varint_field(profile, field::drop_frames, drop_frames);
    wire::put_varint_field(profile, field::keep_frames, keep_frames);
    std::int64_t duration = header.duration_nanos;
    if (baseline_time_nanos_ > 0 && header.time_nanos > baseline_time_nanos_) {
      duration = header.time_nanos - baseline_time_nanos_;
    }
    wire::put_varint_field(profile, field::time_nanos,
                           static_cast<std::uint64_t>(header.time_nanos));
    wire::put_varint_field(profile, field::duration_nanos, static_cast<std::uint64_t>(duration));
    if (period_type) put_value_type(field::period_type, period_type->first, period_type->second);
    wire::put_varint_field(profile, field::period, static_cast<std::uint64_t>(header.period));
    if (!s.inner.empty()) wire::put_bytes(profile, field::comment, s.inner);
    wire::put_varint_field(profile, field::default_sample_type, default_sample_type);
    wire::put_varint_field(profile, field::doc_url, doc_url);

    out.sample_count = kept;
    out.time_nanos = header.time_nanos;
    out.duration_nanos = duration;
    out.cpu.encode = stopwatch.lap();
  }

  // Fresh, exactly sized copies: assign() would keep (and a string would double) the capacity of
  // the largest profile ever seen, and thousands of baselines are alive at once.
  // Both copies are made before either member changes, so running out of memory here cannot
  // leave keys and values out of step.
  std::vector<std::uint64_t> keys(s.next_keys.begin(), s.next_keys.end());
  std::string values(s.next_values);
  baseline_keys_ = std::move(keys);
  baseline_values_ = std::move(values);
  columns_hash_ = columns_hash;
  baseline_time_nanos_ = header.time_nanos;
  seeded_ = true;
  return out;
}

void DeltaComputer::reset() {
  baseline_keys_ = {};
  baseline_values_ = {};
  columns_hash_ = 0;
  baseline_time_nanos_ = 0;
  seeded_ = false;
}

std::size_t DeltaComputer::state_bytes() const {
  if (!seeded_) return 0;
  return baseline_keys_.capacity() * sizeof(std::uint64_t) + baseline_values_.capacity();
}

}  // namespace pprofd::pprof
