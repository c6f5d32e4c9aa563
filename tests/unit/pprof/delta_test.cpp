#include "pprofd/pprof/delta.hpp"
#include "pprofd/pprof/pprof.hpp"

#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>
#include <string>

using namespace pprofd::pprof;
using namespace pprofd::pprof::test;

namespace {

pb::Profile must_emit(DeltaComputer& d, std::string_view raw) {
  auto r = d.apply(raw);
  REQUIRE(r.has_value());
  REQUIRE(r->status == DeltaStatus::emitted);
  REQUIRE(inspect(r->profile).has_value());
  return must_decode(r->profile);
}

DeltaStatus status_of(DeltaComputer& d, std::string_view raw) {
  auto r = d.apply(raw);
  REQUIRE(r.has_value());
  if (r->status != DeltaStatus::emitted) CHECK(r->profile.empty());
  return r->status;
}

void check_clean(const pb::Profile& p) {
  REQUIRE(p.string_table_size() > 0);
  CHECK(p.string_table(0).empty());
  std::set<std::uint64_t> referenced_locations;
  for (const auto& s : p.sample()) {
    bool any = false;
    for (auto v : s.value()) {
      CHECK(v >= 0);
      any = any || v != 0;
    }
    CHECK(any);
    referenced_locations.insert(s.location_id().begin(), s.location_id().end());
  }
  // Nothing unreferenced survives.
  CHECK(referenced_locations.size() == static_cast<std::size_t>(p.location_size()));
  std::set<std::uint64_t> referenced_functions;
  for (const auto& l : p.location()) {
    for (const auto& line : l.line()) referenced_functions.insert(line.function_id());
  }
  CHECK(referenced_functions.size() == static_cast<std::size_t>(p.function_size()));
  std::set<std::string> strings(p.string_table().begin(), p.string_table().end());
  CHECK(strings.size() == static_cast<std::size_t>(p.string_table_size()));  // no duplicates
}

auto stack_key = [](const pb::Profile& p, const pb::Sample& s) { return stack_of(p, s); };
auto leaf_key = [](const pb::Profile& p, const pb::Sample& s) { return leaf_function(p, s); };

bool have_go() { return std::system("command -v go >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("delta of two real allocs scrapes matches an independent computation", "[delta]") {
  const std::string raw1 = go_profile("allocs_1.pb.gz");
  const std::string raw2 = go_profile("allocs_2.pb.gz");
  const pb::Profile p1 = must_decode(raw1);
  const pb::Profile p2 = must_decode(raw2);

  DeltaComputer d;
  CHECK(status_of(d, raw1) == DeltaStatus::first);
  const pb::Profile out = must_emit(d, raw2);
  check_clean(out);

  for (const char* column : {"alloc_space", "alloc_objects"}) {
    INFO(column);
    const auto expected_stacks =
        minus(sum_by(p2, column, stack_key), sum_by(p1, column, stack_key));
    REQUIRE_FALSE(expected_stacks.empty());
    CHECK(sum_by(out, column, stack_key) == expected_stacks);
    const auto expected_leaves = minus(sum_by(p2, column, leaf_key), sum_by(p1, column, leaf_key));
    const auto leaves = sum_by(out, column, leaf_key);
    CHECK(leaves == expected_leaves);
    // The generator allocated more in both functions between the two scrapes.
    CHECK(leaves.count("main.allocSmall") == 1);
    CHECK(leaves.count("main.allocLarge") == 1);
  }
  // inuse_* pass through untouched.
  for (const char* column : {"inuse_space", "inuse_objects"}) {
    INFO(column);
    CHECK(sum_by(out, column, stack_key) == sum_by(p2, column, stack_key));
  }
  CHECK(out.time_nanos() == p2.time_nanos());
  CHECK(out.duration_nanos() == p2.time_nanos() - p1.time_nanos());
  CHECK(out.period() == p2.period());
  CHECK(name_of(out, out.period_type().type()) == "space");
  CHECK(name_of(out, out.default_sample_type()) == name_of(p2, p2.default_sample_type()));
  CHECK(out.sample_type_size() == 4);
}

TEST_CASE("delta of real mutex and block scrapes", "[delta]") {
  for (const char* kind : {"mutex", "block"}) {
    INFO(kind);
    const std::string raw1 = go_profile(std::string(kind) + "_1.pb.gz");
    const std::string raw2 = go_profile(std::string(kind) + "_2.pb.gz");
    DeltaComputer d;
    CHECK(status_of(d, raw1) == DeltaStatus::first);
    const pb::Profile out = must_emit(d, raw2);
    check_clean(out);
    const pb::Profile p1 = must_decode(raw1);
    const pb::Profile p2 = must_decode(raw2);
    for (const char* column : {"contentions", "delay"}) {
      const auto expected = minus(sum_by(p2, column, stack_key), sum_by(p1, column, stack_key));
      REQUIRE_FALSE(expected.empty());
      CHECK(sum_by(out, column, stack_key) == expected);
    }
  }
}

TEST_CASE("delta agrees with go tool pprof -diff_base", "[delta][go]") {
  if (!have_go()) {
    WARN("go is not on PATH: skipping the comparison with go tool pprof");
    return;
  }
  const auto dir =
      std::filesystem::temp_directory_path() / ("pprofd-delta-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() { std::filesystem::remove_all(p); }
  } cleanup{dir};

  struct Case {
    const char* base;
    const char* current;
    std::vector<const char*> columns;
  };
  for (const Case& c : {Case{"allocs_1", "allocs_2", {"alloc_space", "alloc_objects"}},
                        Case{"mutex_1", "mutex_2", {"contentions", "delay"}},
                        Case{"block_1", "block_2", {"contentions", "delay"}}}) {
    INFO(c.current);
    DeltaComputer d;
    REQUIRE(status_of(d, go_profile(std::string(c.base) + ".pb.gz")) == DeltaStatus::first);
    const pb::Profile ours = must_emit(d, go_profile(std::string(c.current) + ".pb.gz"));

    const auto theirs_path = dir / (std::string(c.current) + "-diff.pb.gz");
    const auto ours_path = dir / (std::string(c.current) + "-ours.pb.gz");
    {
      std::FILE* f = std::fopen(ours_path.c_str(), "wb");
      REQUIRE(f != nullptr);
      const std::string z = gzip(encode(ours));
      REQUIRE(std::fwrite(z.data(), 1, z.size(), f) == z.size());
      std::fclose(f);
    }
    const std::string cmd = "go tool pprof -proto -symbolize=none -diff_base=" +
                            testdata_path(std::string(c.base) + ".pb.gz") + " " +
                            testdata_path(std::string(c.current) + ".pb.gz") + " > " +
                            theirs_path.string() + " 2>" + (dir / "stderr").string();
    INFO(cmd);
    REQUIRE(std::system(cmd.c_str()) == 0);
    const pb::Profile theirs = must_decode(go_profile_at(theirs_path.string()));
    for (const char* column : c.columns) {
      INFO(column);
      const auto expected = sum_by(theirs, column, stack_key);
      REQUIRE_FALSE(expected.empty());
      CHECK(sum_by(ours, column, stack_key) == expected);
    }
    // go tool pprof must read our output too.
    const std::string top = "go tool pprof -top -symbolize=none " + ours_path.string() +
                            " >/dev/null 2>" + (dir / "stderr").string();
    CHECK(std::system(top.c_str()) == 0);
  }
}

TEST_CASE("a counter going down is a reset", "[delta]") {
  const std::string raw1 = go_profile("allocs_1.pb.gz");
  const std::string raw2 = go_profile("allocs_2.pb.gz");
  DeltaComputer d;
  CHECK(status_of(d, raw2) == DeltaStatus::first);
  CHECK(status_of(d, raw1) == DeltaStatus::reset);
  // The baseline was re-seeded from raw1, so raw2 now diffs against it.
  const pb::Profile out = must_emit(d, raw2);
  check_clean(out);

  SECTION("one key going down among many going up") {
    Builder b1({{"contentions", "count"}, {"delay", "nanoseconds"}});
    const auto a = b1.location(0x10, "main.a");
    const auto c = b1.location(0x20, "main.c");
    b1.sample({a}, {5, 500});
    b1.sample({c}, {5, 500});
    Builder b2 = b1;
    b2.profile().mutable_sample(0)->set_value(0, 50);
    b2.profile().mutable_sample(1)->set_value(1, 499);  // delay of main.c went down
    DeltaComputer d2;
    CHECK(status_of(d2, b1.bytes()) == DeltaStatus::first);
    CHECK(status_of(d2, b2.bytes()) == DeltaStatus::reset);
    CHECK(status_of(d2, b2.bytes()) == DeltaStatus::emitted);  // same values → nothing to send
  }
}

TEST_CASE("samples whose values are all zero are removed with what only they used", "[delta]") {
  const std::string raw = go_profile("mutex_1.pb.gz");
  DeltaComputer d;
  CHECK(status_of(d, raw) == DeltaStatus::first);
  const pb::Profile out = must_emit(d, raw);
  CHECK(out.sample_size() == 0);
  CHECK(out.location_size() == 0);
  CHECK(out.function_size() == 0);
  CHECK(out.mapping_size() == 0);
  // Only "", the sample and period type strings remain.
  const std::set<std::string> strings(out.string_table().begin(), out.string_table().end());
  CHECK(strings == std::set<std::string>{"", "contentions", "count", "delay", "nanoseconds"});

  // With allocs the inuse_* columns keep samples alive even when the alloc_* delta is zero.
  const std::string allocs = go_profile("allocs_2.pb.gz");
  DeltaComputer h;
  CHECK(status_of(h, allocs) == DeltaStatus::first);
  const pb::Profile same = must_emit(h, allocs);
  check_clean(same);
  CHECK(same.sample_size() > 0);
  CHECK(same.sample_size() < must_decode(allocs).sample_size());
  CHECK(sum_by(same, "alloc_space", stack_key).empty());
  CHECK(sum_by(same, "inuse_space", stack_key) ==
        sum_by(must_decode(allocs), "inuse_space", stack_key));
}

TEST_CASE("profiles without cumulative columns and malformed input are errors", "[delta]") {
  DeltaComputer d;
  for (const char* file : {"goroutine.pb.gz", "cpu.pb.gz"}) {
    auto r = d.apply(go_profile(file));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("cumulative") != std::string::npos);
  }
  CHECK(d.state_bytes() == 0);

  const std::string raw1 = go_profile("mutex_1.pb.gz");
  const std::string raw2 = go_profile("mutex_2.pb.gz");
  CHECK(status_of(d, raw1) == DeltaStatus::first);
  const std::size_t before = d.state_bytes();
  CHECK_FALSE(d.apply("<html>oops</html>").has_value());
  CHECK_FALSE(d.apply("").has_value());
  CHECK_FALSE(d.apply(raw2.substr(0, raw2.size() - 1)).has_value());
  // A sample pointing at a location that does not exist.
  pb::Profile broken = must_decode(raw2);
  broken.mutable_sample(0)->set_location_id(0, 999999);
  CHECK_FALSE(d.apply(encode(broken)).has_value());
  CHECK(d.state_bytes() == before);
  // The baseline is still raw1: the delta equals raw2 − raw1.
  const pb::Profile out = must_emit(d, raw2);
  CHECK(sum_by(out, "delay", stack_key) == minus(sum_by(must_decode(raw2), "delay", stack_key),
                                                 sum_by(must_decode(raw1), "delay", stack_key)));
}

TEST_CASE("keys ignore location ids and label order, and merge duplicates", "[delta]") {
  auto build = [](std::uint64_t id_offset, bool swap_labels, std::int64_t a_count,
                  std::int64_t dup_count) {
    Builder b({{"alloc_objects", "count"}, {"alloc_space", "bytes"}});
    b.set_id_offset(id_offset);
    const auto leaf = b.location(0x1111, "main.leaf");
    const auto root = b.location(0x2222, "main.root");
    auto& s = b.sample({leaf, root}, {a_count, a_count * 10});
    if (swap_labels) {
      b.label(s, "b", "2");
      b.label(s, "a", "1");
    } else {
      b.label(s, "a", "1");
      b.label(s, "b", "2");
    }
    // The same stack without labels twice: one key, values summed.
    b.sample({leaf, root}, {dup_count, dup_count});
    b.sample({leaf, root}, {dup_count, dup_count});
    // Reversed stack is a different key.
    b.sample({root, leaf}, {1, 1});
    return b.bytes();
  };
  DeltaComputer d;
  CHECK(status_of(d, build(0, false, 3, 5)) == DeltaStatus::first);
  const pb::Profile out = must_emit(d, build(100, true, 7, 6));
  check_clean(out);
  // Labelled sample: 7 − 3; duplicates merged: 2·6 − 2·5; reversed stack unchanged → removed.
  REQUIRE(out.sample_size() == 2);
  std::map<std::size_t, std::vector<std::int64_t>> by_labels;
  for (const auto& s : out.sample()) {
    by_labels[static_cast<std::size_t>(s.label_size())] = {s.value().begin(), s.value().end()};
    CHECK(stack_of(out, s).rfind("main.leaf", 0) == 0);
  }
  CHECK(by_labels[2] == std::vector<std::int64_t>{4, 40});
  CHECK(by_labels[0] == std::vector<std::int64_t>{2, 2});
  CHECK(out.location_size() == 2);  // ids from the current profile, all referenced
}

TEST_CASE("frames without addresses are keyed by function, file and line", "[delta]") {
  auto build = [](std::uint64_t id_offset, std::vector<std::pair<const char*, std::int64_t>> fs) {
    Builder b({{"delay", "nanoseconds"}});
    b.set_id_offset(id_offset);
    for (const auto& [name, value] : fs) b.sample({b.location(0, name)}, {value});
    return b.bytes();
  };
  DeltaComputer d;
  CHECK(status_of(d, build(0, {{"main.f", 100}})) == DeltaStatus::first);
  pb::Profile out = must_emit(d, build(50, {{"main.f", 150}}));
  REQUIRE(out.sample_size() == 1);
  CHECK(out.sample(0).value(0) == 50);
  // A different function name is a new key: its full value is the delta.
  out = must_emit(d, build(7, {{"main.g", 20}, {"main.f", 150}}));
  REQUIRE(out.sample_size() == 1);
  CHECK(out.sample(0).value(0) == 20);
  CHECK(leaf_function(out, out.sample(0)) == "main.g");
}

TEST_CASE("strings are remapped everywhere and unused ones dropped", "[delta]") {
  auto build = [](std::int64_t value) {
    Builder b({{"alloc_objects", "count"}, {"alloc_space", "bytes"}});
    auto& p = b.profile();
    b.str("unused-before");
    auto* m = p.add_mapping();
    m->set_id(1);
    m->set_filename(b.str("/bin/app"));
    m->set_build_id(b.str("build-123"));
    auto* m2 = p.add_mapping();
    m2->set_id(2);
    m2->set_filename(b.str("/lib/unused.so"));
    const auto kept = b.location(0x100, "main.kept");
    p.mutable_location(0)->set_mapping_id(1);
    const auto dropped = b.location(0x200, "main.dropped");
    p.mutable_location(1)->set_mapping_id(2);
    p.mutable_function(0)->set_system_name(b.str("_kept_sys"));
    auto& s = b.sample({kept}, {value, value * 8});
    auto* l = s.add_label();
    l->set_key(b.str("bytes"));
    l->set_num(8);
    l->set_num_unit(b.str("bytes-unit"));
    b.sample({dropped}, {1, 8});  // constant → all-zero delta
    p.add_comment(b.str("a comment"));
    p.set_drop_frames(b.str("drop.*"));
    p.set_keep_frames(b.str("keep.*"));
    p.set_doc_url(b.str("https://example.com/doc"));
    p.set_default_sample_type(b.str("alloc_space"));
    p.mutable_period_type()->set_type(b.str("space"));
    p.mutable_period_type()->set_unit(b.str("bytes"));
    p.set_period(512);
    return b.bytes();
  };
  DeltaComputer d;
  CHECK(status_of(d, build(1)) == DeltaStatus::first);
  const pb::Profile out = must_emit(d, build(3));
  check_clean(out);
  auto s = [&](std::int64_t i) { return name_of(out, i); };
  REQUIRE(out.sample_size() == 1);
  CHECK(out.sample(0).value(0) == 2);
  CHECK(out.sample(0).value(1) == 16);
  CHECK(s(out.sample(0).label(0).key()) == "bytes");
  CHECK(s(out.sample(0).label(0).num_unit()) == "bytes-unit");
  CHECK(out.sample(0).label(0).str() == 0);
  REQUIRE(out.mapping_size() == 1);
  CHECK(s(out.mapping(0).filename()) == "/bin/app");
  CHECK(s(out.mapping(0).build_id()) == "build-123");
  REQUIRE(out.function_size() == 1);
  CHECK(s(out.function(0).name()) == "main.kept");
  CHECK(s(out.function(0).system_name()) == "_kept_sys");
  CHECK(s(out.function(0).filename()) == "main.go");
  REQUIRE(out.comment_size() == 1);
  CHECK(s(out.comment(0)) == "a comment");
  CHECK(s(out.drop_frames()) == "drop.*");
  CHECK(s(out.keep_frames()) == "keep.*");
  CHECK(s(out.doc_url()) == "https://example.com/doc");
  CHECK(s(out.default_sample_type()) == "alloc_space");
  CHECK(s(out.period_type().type()) == "space");
  CHECK(s(out.sample_type(1).unit()) == "bytes");
  const std::set<std::string> strings(out.string_table().begin(), out.string_table().end());
  CHECK(strings.count("unused-before") == 0);
  CHECK(strings.count("main.dropped") == 0);
  CHECK(strings.count("/lib/unused.so") == 0);
}

TEST_CASE("duration covers the time between scrapes", "[delta]") {
  auto build = [](std::int64_t time, std::int64_t duration, std::int64_t value) {
    Builder b({{"contentions", "count"}});
    b.sample({b.location(0x1, "main.f")}, {value});
    b.profile().set_time_nanos(time);
    b.profile().set_duration_nanos(duration);
    return b.bytes();
  };
  DeltaComputer d;
  CHECK(status_of(d, build(1'000, 0, 1)) == DeltaStatus::first);
  pb::Profile out = must_emit(d, build(16'000, 7, 2));
  CHECK(out.time_nanos() == 16'000);
  CHECK(out.duration_nanos() == 15'000);
  // Unknown times keep the current profile's own duration.
  d.reset();
  CHECK(status_of(d, build(0, 0, 1)) == DeltaStatus::first);
  out = must_emit(d, build(16'000, 7, 2));
  CHECK(out.duration_nanos() == 7);
}

TEST_CASE("a different column layout re-seeds the baseline", "[delta]") {
  DeltaComputer d;
  CHECK(status_of(d, go_profile("mutex_1.pb.gz")) == DeltaStatus::first);
  CHECK(status_of(d, go_profile("allocs_1.pb.gz")) == DeltaStatus::reset);
  CHECK(status_of(d, go_profile("allocs_2.pb.gz")) == DeltaStatus::emitted);
}

TEST_CASE("state_bytes grows with distinct keys only", "[delta]") {
  // `distinct` stacks, each written `copies` times with value 1: merged, a key holds `copies`.
  auto build = [](int distinct, int copies) {
    Builder b({{"contentions", "count"}, {"delay", "nanoseconds"}});
    std::vector<std::uint64_t> locs;
    for (int i = 0; i < distinct; ++i) {
      locs.push_back(b.location(0x1000 + static_cast<std::uint64_t>(i), "main.f"));
    }
    for (int c = 0; c < copies; ++c) {
      for (auto loc : locs) b.sample({loc}, {1, 1});
    }
    return b.bytes();
  };
  DeltaComputer d;
  CHECK(d.state_bytes() == 0);
  CHECK(status_of(d, build(10, 1)) == DeltaStatus::first);
  const std::size_t ten = d.state_bytes();
  CHECK(ten > 0);
  CHECK(status_of(d, build(10, 50)) == DeltaStatus::emitted);  // 500 samples, 10 keys
  CHECK(d.state_bytes() == ten);
  CHECK(status_of(d, build(1000, 50)) == DeltaStatus::emitted);
  const std::size_t thousand = d.state_bytes();
  CHECK(thousand > 50 * ten);
  CHECK(thousand < 1000 * 100);  // a few dozen bytes per key, not a stored profile
  d.reset();
  CHECK(d.state_bytes() == 0);
}

TEST_CASE("a stack that had counts and disappears is a reset", "[delta]") {
  auto build = [](bool with_b) {
    Builder b({{"alloc_objects", "count"}, {"alloc_space", "bytes"}});
    b.sample({b.location(0x10, "main.a")}, {with_b ? 5 : 6, 50});
    if (with_b) b.sample({b.location(0x20, "main.b")}, {1, 10});
    b.sample({b.location(0x30, "main.zero")}, {0, 0});
    return b.bytes();
  };
  DeltaComputer d;
  CHECK(status_of(d, build(true)) == DeltaStatus::first);
  CHECK(status_of(d, build(false)) == DeltaStatus::reset);
  // Stacks whose cumulative values are zero are not remembered, so losing one is no reset.
  Builder only_a({{"alloc_objects", "count"}, {"alloc_space", "bytes"}});
  only_a.sample({only_a.location(0x10, "main.a")}, {7, 50});
  const pb::Profile out = must_emit(d, only_a.bytes());
  REQUIRE(out.sample_size() == 1);
  CHECK(out.sample(0).value(0) == 1);
}

TEST_CASE("a profile that would be invalid to emit never becomes the baseline", "[delta]") {
  auto good = [] {
    Builder b({{"contentions", "count"}, {"delay", "nanoseconds"}});
    b.sample({b.location(0x10, "main.a")}, {1, 10});
    return b;
  };
  SECTION("duplicate mapping ids") {
    Builder b = good();
    for (int i = 0; i < 2; ++i) b.profile().add_mapping()->set_id(1);
    DeltaComputer d;
    CHECK_FALSE(d.apply(b.bytes()).has_value());
    CHECK(d.state_bytes() == 0);
  }
  SECTION("a location naming a function or mapping that does not exist") {
    Builder dangling_function = good();
    dangling_function.profile().mutable_location(0)->mutable_line(0)->set_function_id(99);
    Builder dangling_mapping = good();
    dangling_mapping.profile().mutable_location(0)->set_mapping_id(42);
    for (const Builder* b : {&dangling_function, &dangling_mapping}) {
      DeltaComputer d;
      auto r = d.apply(b->bytes());
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().message.find("references missing") != std::string::npos);
      CHECK(d.state_bytes() == 0);
    }
  }
  SECTION("string indices out of range in fields only the output would use") {
    Builder bad_function = good();
    bad_function.profile().mutable_function(0)->set_system_name(1000);
    Builder bad_header = good();
    bad_header.profile().set_doc_url(1000);
    for (const Builder* b : {&bad_function, &bad_header}) {
      DeltaComputer d;
      CHECK_FALSE(d.apply(b->bytes()).has_value());
      CHECK(d.state_bytes() == 0);
    }
  }
  SECTION("more sample values than bytes is refused before allocating for them") {
    // 100,000 empty samples under 1,000 sample types would ask for 800 MB of cells.
    Builder b({{"contentions", "count"}});
    for (int i = 1; i < 1000; ++i) {
      auto* t = b.profile().add_sample_type();
      t->set_type(b.str("c" + std::to_string(i)));
      t->set_unit(b.str("count"));
    }
    for (int i = 0; i < 100000; ++i) b.profile().add_sample();
    DeltaComputer d;
    auto r = d.apply(b.bytes());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("more sample values") != std::string::npos);
  }
}

TEST_CASE("extreme timestamps do not overflow the duration", "[delta]") {
  Builder b({{"contentions", "count"}, {"delay", "nanoseconds"}});
  const auto loc = b.location(0x10, "main.a");
  b.sample({loc}, {1, 10});
  b.profile().set_time_nanos(std::numeric_limits<std::int64_t>::min() + 1);
  DeltaComputer d;
  CHECK(status_of(d, b.bytes()) == DeltaStatus::first);
  b.profile().mutable_sample(0)->set_value(0, 2);
  b.profile().set_time_nanos(std::numeric_limits<std::int64_t>::max());
  const pb::Profile out = must_emit(d, b.bytes());
  CHECK(out.time_nanos() == std::numeric_limits<std::int64_t>::max());
  CHECK(out.duration_nanos() >= 0);
}
