#pragma once
// Shared helpers for the pprof tests: reading recorded Go profiles and building synthetic ones.

#include "pprofd/pprof/pprof.hpp"

#include "profile.pb.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pprofd::pprof::test {

namespace pb = perftools::profiles;

inline std::string testdata_path(const std::string& name) {
  const char* env = std::getenv("PPROFD_TESTDATA");
  return std::string(env && *env ? env : PPROFD_TESTDATA_DIR) + "/pprof/" + name;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A gzipped profile file, uncompressed.
inline std::string go_profile_at(const std::string& path) {
  auto raw = gunzip(read_file(path), 64 << 20);
  REQUIRE(raw.has_value());
  return std::move(*raw);
}

// A recorded Go profile from tests/testdata/pprof, uncompressed.
inline std::string go_profile(const std::string& name) {
  return go_profile_at(testdata_path(name));
}

inline pb::Profile must_decode(std::string_view raw) {
  auto p = decode(raw);
  REQUIRE(p.has_value());
  return std::move(*p);
}

// Builds small profiles by hand; strings are interned so indices stay valid.
class Builder {
 public:
  explicit Builder(std::initializer_list<std::pair<const char*, const char*>> types) {
    p_.add_string_table("");
    for (const auto& [type, unit] : types) {
      auto* t = p_.add_sample_type();
      t->set_type(str(type));
      t->set_unit(str(unit));
    }
  }

  std::int64_t str(const std::string& s) {
    for (int i = 0; i < p_.string_table_size(); ++i) {
      if (p_.string_table(i) == s) return i;
    }
    p_.add_string_table(s);
    return p_.string_table_size() - 1;
  }

  // A location with an address; function name derived from the address so stacks are readable.
  std::uint64_t location(std::uint64_t address, const std::string& function) {
    const std::uint64_t fid = function_id(function);
    auto* l = p_.add_location();
    l->set_id(static_cast<std::uint64_t>(p_.location_size()) + id_offset_);
    l->set_address(address);
    auto* line = l->add_line();
    line->set_function_id(fid);
    line->set_line(static_cast<std::int64_t>(address % 1000));
    return l->id();
  }

  std::uint64_t function_id(const std::string& name) {
    for (const auto& f : p_.function()) {
      if (p_.string_table(static_cast<int>(f.name())) == name) return f.id();
    }
    auto* f = p_.add_function();
    f->set_id(static_cast<std::uint64_t>(p_.function_size()) + id_offset_);
    f->set_name(str(name));
    f->set_filename(str("main.go"));
    return f->id();
  }

  pb::Sample& sample(std::initializer_list<std::uint64_t> locations,
                     std::initializer_list<std::int64_t> values) {
    auto* s = p_.add_sample();
    for (auto id : locations) s->add_location_id(id);
    for (auto v : values) s->add_value(v);
    return *s;
  }

  void label(pb::Sample& s, const std::string& key, const std::string& value) {
    auto* l = s.add_label();
    l->set_key(str(key));
    l->set_str(str(value));
  }

  // Ids in the built profile start at offset + 1, to mimic Go renumbering between scrapes.
  void set_id_offset(std::uint64_t offset) { id_offset_ = offset; }
  pb::Profile& profile() { return p_; }
  std::string bytes() const { return p_.SerializeAsString(); }

 private:
  pb::Profile p_;
  std::uint64_t id_offset_ = 0;
};

inline std::string name_of(const pb::Profile& p, std::int64_t i) {
  return p.string_table(static_cast<int>(i));
}

inline int column(const pb::Profile& p, const std::string& type) {
  for (int i = 0; i < p.sample_type_size(); ++i) {
    if (name_of(p, p.sample_type(i).type()) == type) return i;
  }
  FAIL("no sample type " << type);
  return -1;
}

// "leaf;caller;..." with file:line of every frame: independent of location ids and addresses.
inline std::string stack_of(const pb::Profile& p, const pb::Sample& s) {
  std::map<std::uint64_t, const pb::Location*> locs;
  for (const auto& l : p.location()) locs[l.id()] = &l;
  std::map<std::uint64_t, const pb::Function*> funcs;
  for (const auto& f : p.function()) funcs[f.id()] = &f;
  std::string out;
  for (auto id : s.location_id()) {
    const pb::Location* l = locs.at(id);
    for (const auto& line : l->line()) {
      const pb::Function* f = funcs.at(line.function_id());
      out += name_of(p, f->name()) + ":" + std::to_string(line.line()) + ";";
    }
  }
  return out;
}

inline std::string leaf_function(const pb::Profile& p, const pb::Sample& s) {
  const std::string stack = stack_of(p, s);
  return stack.substr(0, stack.find(':'));
}

// Sum of one column per stack (labels ignored), zero sums dropped.
template <class KeyFn>
std::map<std::string, std::int64_t> sum_by(const pb::Profile& p, const std::string& type,
                                           KeyFn key) {
  const int c = column(p, type);
  std::map<std::string, std::int64_t> out;
  for (const auto& s : p.sample()) out[key(p, s)] += s.value(c);
  std::erase_if(out, [](const auto& kv) { return kv.second == 0; });
  return out;
}

inline std::map<std::string, std::int64_t> minus(std::map<std::string, std::int64_t> a,
                                                 const std::map<std::string, std::int64_t>& b) {
  for (const auto& [k, v] : b) a[k] -= v;
  std::erase_if(a, [](const auto& kv) { return kv.second == 0; });
  return a;
}

}  // namespace pprofd::pprof::test
