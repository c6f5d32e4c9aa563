#include "pprofd/model/labels.hpp"
#include "pprofd/model/profile_type.hpp"

#include <catch2/catch.hpp>

using pprofd::model::Labels;

TEST_CASE("labels stay sorted and unique") {
  Labels l{{"pod", "p"}, {"app", "a"}, {"namespace", "n"}};
  l.set("app", "b");
  std::vector<std::string> names;
  for (const auto& [n, v] : l) names.push_back(n);
  CHECK(names == std::vector<std::string>{"app", "namespace", "pod"});
  CHECK(l.get("app") == "b");
  CHECK_FALSE(l.set_if_absent("pod", "other"));
  CHECK(l.get("pod") == "p");
  l.erase("pod");
  CHECK_FALSE(l.contains("pod"));
  CHECK(l.to_string() == "{app=\"b\", namespace=\"n\"}");
}

TEST_CASE("label hash is order independent and separates name from value") {
  Labels a{{"x", "1"}, {"y", "2"}};
  Labels b{{"y", "2"}, {"x", "1"}};
  CHECK(a.hash() == b.hash());
  CHECK(Labels{{"ab", "c"}}.hash() != Labels{{"a", "bc"}}.hash());
  CHECK(Labels{{"a", "1"}}.hash() != Labels{{"a", "2"}}.hash());
}

TEST_CASE("godeltaprof types forward under their base name") {
  using pprofd::model::find_profile_type;
  REQUIRE(find_profile_type("godeltaprof_memory") != nullptr);
  CHECK(find_profile_type("godeltaprof_memory")->forwarded_name == "memory");
  CHECK(find_profile_type("memory")->cumulative);
  CHECK_FALSE(find_profile_type("goroutine")->cumulative);
  CHECK(find_profile_type("process_cpu")->duration);
  CHECK(find_profile_type("nope") == nullptr);
}
