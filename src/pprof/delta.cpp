#include "pprofd/pprof/delta.hpp"

#include "pprofd/common/hash.hpp"
#include "pprofd/pprof/pprof.hpp"

#include "profile.pb.h"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <utility>

namespace pprofd::pprof {
namespace {

namespace pb = perftools::profiles;

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

bool is_delta_column(const ValueType& t) {
  return (t.type == "alloc_objects" && t.unit == "count") ||
         (t.type == "alloc_space" && t.unit == "bytes") ||
         (t.type == "contentions" && t.unit == "count") ||
         (t.type == "delay" && t.unit == "nanoseconds");
}

// Everything apply() derives from one profile before deciding what to do with the baseline.
struct Prepared {
  pb::Profile profile;
  std::vector<std::size_t> delta_columns;
  std::uint64_t columns_hash = 0;
  // Per sample: its key, and whether it is a later duplicate already merged into an earlier one.
  std::vector<std::uint64_t> keys;
  std::vector<bool> duplicate;
};

class Preparer {
 public:
  explicit Preparer(pb::Profile& p) : p_(p) {}

  Result<std::vector<std::uint64_t>> sample_keys() {
    if (auto r = index_functions(); !r) return r.error();
    if (auto r = hash_locations(); !r) return r.error();
    std::vector<std::uint64_t> keys;
    keys.reserve(static_cast<std::size_t>(p_.sample_size()));
    for (const pb::Sample& s : p_.sample()) {
      std::uint64_t stack = 0x5ca1ab1eULL;
      for (std::uint64_t id : s.location_id()) {
        auto it = location_hash_.find(id);
        if (it == location_hash_.end()) {
          return make_error("pprof: sample references missing location " + std::to_string(id));
        }
        stack = combine(stack, it->second);
      }
      stack = combine(stack, static_cast<std::uint64_t>(s.location_id_size()));
      // Labels are a set: a commutative sum of well-mixed label hashes ignores their order.
      std::uint64_t labels = 0;
      for (const pb::Label& l : s.label()) {
        std::uint64_t h = fnv1a64(str(l.key()));
        h = combine(h, fnv1a64(str(l.str())));
        h = combine(h, static_cast<std::uint64_t>(l.num()));
        h = combine(h, fnv1a64(str(l.num_unit())));
        labels += mix(h);
      }
      keys.push_back(combine(stack, labels));
    }
    return keys;
  }

 private:
  // Indices were range-checked by inspect().
  std::string_view str(std::int64_t i) const { return p_.string_table(static_cast<int>(i)); }

  Result<void> index_functions() {
    function_index_.reserve(static_cast<std::size_t>(p_.function_size()));
    for (int i = 0; i < p_.function_size(); ++i) {
      if (!function_index_.emplace(p_.function(i).id(), i).second) {
        return make_error("pprof: duplicate function id " + std::to_string(p_.function(i).id()));
      }
    }
    return {};
  }

  // Location ids differ between two profiles of one process, so the identity of a frame is its
  // address, or its symbolic lines when the address is unknown.
  Result<void> hash_locations() {
    location_hash_.reserve(static_cast<std::size_t>(p_.location_size()));
    for (const pb::Location& loc : p_.location()) {
      std::uint64_t h = 0;
      if (loc.address() != 0) {
        h = mix(loc.address());
      } else {
        h = 0x11fe5ULL;
        for (const pb::Line& line : loc.line()) {
          auto it = function_index_.find(line.function_id());
          if (it == function_index_.end()) {
            return make_error("pprof: location " + std::to_string(loc.id()) +
                              " references missing function " + std::to_string(line.function_id()));
          }
          const pb::Function& f = p_.function(it->second);
          h = combine(h, fnv1a64(str(f.name())));
          h = combine(h, fnv1a64(str(f.filename())));
          h = combine(h, static_cast<std::uint64_t>(line.line()));
        }
      }
      if (!location_hash_.emplace(loc.id(), h).second) {
        return make_error("pprof: duplicate location id " + std::to_string(loc.id()));
      }
    }
    return {};
  }

  pb::Profile& p_;
  std::unordered_map<std::uint64_t, int> function_index_;
  std::unordered_map<std::uint64_t, std::uint64_t> location_hash_;
};

Result<Prepared> prepare(std::string_view raw) {
  auto summary = inspect(raw);
  if (!summary) return summary.error();
  Prepared out;
  std::uint64_t columns = fnv1a64_offset;
  for (std::size_t i = 0; i < summary->sample_types.size(); ++i) {
    const ValueType& t = summary->sample_types[i];
    columns = combine(columns, fnv1a64(t.type));
    columns = combine(columns, fnv1a64(t.unit));
    if (is_delta_column(t)) out.delta_columns.push_back(i);
  }
  if (out.delta_columns.empty()) {
    return make_error("pprof: profile has no cumulative columns to diff");
  }
  out.columns_hash = columns;

  auto decoded = decode(raw);
  if (!decoded) return decoded.error();
  out.profile = std::move(*decoded);

  auto keys = Preparer(out.profile).sample_keys();
  if (!keys) return keys.error();
  out.keys = std::move(*keys);

  // Go can write one stack with the same labels several times; fold those into the first.
  auto& samples = *out.profile.mutable_sample();
  out.duplicate.assign(out.keys.size(), false);
  std::unordered_map<std::uint64_t, int> first;
  first.reserve(out.keys.size());
  for (int i = 0; i < samples.size(); ++i) {
    auto [it, inserted] = first.emplace(out.keys[static_cast<std::size_t>(i)], i);
    if (inserted) continue;
    out.duplicate[static_cast<std::size_t>(i)] = true;
    auto* into = samples[it->second].mutable_value();
    const auto& from = samples[i].value();
    for (int v = 0; v < from.size(); ++v) {
      if (__builtin_add_overflow(into->Get(v), from.Get(v), into->Mutable(v))) {
        return make_error("pprof: sample values overflow when merging duplicates");
      }
    }
  }
  return out;
}

// Drops unreferenced locations, functions and mappings and rewrites the string table to hold
// only the strings still in use, in order of first use.
class Pruner {
 public:
  explicit Pruner(pb::Profile& p)
      : p_(p), remap_(static_cast<std::size_t>(p.string_table_size()), -1) {
    remap_[0] = 0;
    kept_strings_.push_back(0);
  }

  void run() {
    std::unordered_set<std::uint64_t> used_locations;
    for (const pb::Sample& s : p_.sample()) {
      for (std::uint64_t id : s.location_id()) used_locations.insert(id);
    }
    std::unordered_set<std::uint64_t> used_functions;
    std::unordered_set<std::uint64_t> used_mappings;
    compact(*p_.mutable_location(), [&](const pb::Location& l) {
      if (!used_locations.contains(l.id())) return false;
      if (l.mapping_id() != 0) used_mappings.insert(l.mapping_id());
      for (const pb::Line& line : l.line()) used_functions.insert(line.function_id());
      return true;
    });
    compact(*p_.mutable_function(),
            [&](const pb::Function& f) { return used_functions.contains(f.id()); });
    compact(*p_.mutable_mapping(),
            [&](const pb::Mapping& m) { return used_mappings.contains(m.id()); });
    remap_strings();
  }

 private:
  template <class T, class Keep>
  static void compact(google::protobuf::RepeatedPtrField<T>& items, Keep&& keep) {
    int out = 0;
    for (int i = 0; i < items.size(); ++i) {
      if (!keep(items.Get(i))) continue;
      if (out != i) items.SwapElements(out, i);
      ++out;
    }
    items.DeleteSubrange(out, items.size() - out);
  }

  std::int64_t intern(std::int64_t old) {
    auto& slot = remap_[static_cast<std::size_t>(old)];
    if (slot < 0) {
      slot = static_cast<std::int64_t>(kept_strings_.size());
      kept_strings_.push_back(old);
    }
    return slot;
  }

  void fix_value_type(pb::ValueType& t) {
    t.set_type(intern(t.type()));
    t.set_unit(intern(t.unit()));
  }

  void remap_strings() {
    for (pb::ValueType& t : *p_.mutable_sample_type()) fix_value_type(t);
    if (p_.has_period_type()) fix_value_type(*p_.mutable_period_type());
    for (pb::Sample& s : *p_.mutable_sample()) {
      for (pb::Label& l : *s.mutable_label()) {
        l.set_key(intern(l.key()));
        l.set_str(intern(l.str()));
        l.set_num_unit(intern(l.num_unit()));
      }
    }
    for (pb::Mapping& m : *p_.mutable_mapping()) {
      m.set_filename(intern(m.filename()));
      m.set_build_id(intern(m.build_id()));
    }
    for (pb::Function& f : *p_.mutable_function()) {
      f.set_name(intern(f.name()));
      f.set_system_name(intern(f.system_name()));
      f.set_filename(intern(f.filename()));
    }
    for (auto& c : *p_.mutable_comment()) c = intern(c);
    p_.set_drop_frames(intern(p_.drop_frames()));
    p_.set_keep_frames(intern(p_.keep_frames()));
    p_.set_default_sample_type(intern(p_.default_sample_type()));
    p_.set_doc_url(intern(p_.doc_url()));

    google::protobuf::RepeatedPtrField<std::string> table;
    table.Reserve(static_cast<int>(kept_strings_.size()));
    auto& old = *p_.mutable_string_table();
    for (std::int64_t i : kept_strings_) table.Add(std::move(old[static_cast<int>(i)]));
    old.Swap(&table);
  }

  pb::Profile& p_;
  std::vector<std::int64_t> remap_;
  std::vector<std::int64_t> kept_strings_;
};

}  // namespace

Result<DeltaOutput> DeltaComputer::apply(std::string_view raw) {
  auto prepared = prepare(raw);
  if (!prepared) return prepared.error();
  Prepared& cur = *prepared;
  pb::Profile& profile = cur.profile;
  const std::size_t stride = cur.delta_columns.size();

  // The new baseline holds the current cumulative values, one row per distinct key. Rows that
  // are all zero are left out: a missing row already means "0 so far".
  auto& samples = *profile.mutable_sample();
  auto cumulative_nonzero = [&](int i) {
    const auto& v = samples[i].value();
    return std::any_of(cur.delta_columns.begin(), cur.delta_columns.end(),
                       [&](std::size_t c) { return v.Get(static_cast<int>(c)) != 0; });
  };
  std::size_t distinct = 0;
  for (int i = 0; i < samples.size(); ++i) {
    if (!cur.duplicate[static_cast<std::size_t>(i)] && cumulative_nonzero(i)) ++distinct;
  }
  std::unordered_map<std::uint64_t, std::uint32_t> rows;
  rows.reserve(distinct);
  std::vector<std::int64_t> values;
  values.reserve(distinct * stride);

  const bool comparable = seeded_ && columns_hash_ == cur.columns_hash;
  bool went_down = false;
  std::size_t matched = 0;
  for (int i = 0; i < samples.size(); ++i) {
    if (cur.duplicate[static_cast<std::size_t>(i)]) continue;
    const std::uint64_t key = cur.keys[static_cast<std::size_t>(i)];
    if (cumulative_nonzero(i)) {
      rows.emplace(key, static_cast<std::uint32_t>(rows.size()));
      for (std::size_t c : cur.delta_columns)
        values.push_back(samples[i].value(static_cast<int>(c)));
    }
    const std::int64_t* prev = nullptr;
    if (comparable) {
      if (auto it = baseline_rows_.find(key); it != baseline_rows_.end()) {
        prev = baseline_values_.data() + std::size_t{it->second} * stride;
        ++matched;
      }
    }
    auto* v = samples[i].mutable_value();
    for (std::size_t c = 0; c < stride; ++c) {
      std::int64_t& cell = *v->Mutable(static_cast<int>(cur.delta_columns[c]));
      std::int64_t delta = 0;
      if (__builtin_sub_overflow(cell, prev ? prev[c] : 0, &delta) || delta < 0) went_down = true;
      cell = delta;  // only used when emitting
    }
  }
  // Go never forgets a cumulative bucket, so a stack that had counts and is now gone went down
  // to zero: the process restarted, possibly as a new binary whose addresses all changed.
  if (comparable && matched < baseline_rows_.size()) went_down = true;

  DeltaOutput out;
  if (!comparable) {
    out.status = seeded_ ? DeltaStatus::reset : DeltaStatus::first;
  } else if (went_down) {
    out.status = DeltaStatus::reset;
  } else {
    out.status = DeltaStatus::emitted;
    int kept = 0;
    for (int i = 0; i < samples.size(); ++i) {
      const auto& v = samples[i].value();
      const bool all_zero = std::all_of(v.begin(), v.end(), [](std::int64_t x) { return x == 0; });
      if (cur.duplicate[static_cast<std::size_t>(i)] || all_zero) continue;
      if (kept != i) samples.SwapElements(kept, i);
      ++kept;
    }
    samples.DeleteSubrange(kept, samples.size() - kept);
    Pruner(profile).run();
    if (profile.time_nanos() != 0 && baseline_time_nanos_ != 0 &&
        profile.time_nanos() > baseline_time_nanos_) {
      profile.set_duration_nanos(profile.time_nanos() - baseline_time_nanos_);
    }
    out.profile = encode(profile);
  }

  baseline_rows_ = std::move(rows);
  baseline_values_ = std::move(values);
  columns_hash_ = cur.columns_hash;
  baseline_time_nanos_ = profile.time_nanos();
  seeded_ = true;
  return out;
}

void DeltaComputer::reset() {
  baseline_rows_ = {};
  baseline_values_ = {};
  columns_hash_ = 0;
  baseline_time_nanos_ = 0;
  seeded_ = false;
}

std::size_t DeltaComputer::state_bytes() const {
  if (!seeded_) return 0;
  // libstdc++ nodes: next pointer + key + row, plus one bucket pointer each.
  constexpr std::size_t node = sizeof(void*) + sizeof(std::uint64_t) + sizeof(std::uint32_t) + 4;
  return baseline_rows_.size() * node + baseline_rows_.bucket_count() * sizeof(void*) +
         baseline_values_.capacity() * sizeof(std::int64_t);
}

}  // namespace pprofd::pprof
