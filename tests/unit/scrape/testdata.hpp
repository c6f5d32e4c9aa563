#pragma once
// Reads a file from tests/testdata/pprof (PPROFD_TESTDATA overrides the testdata directory).

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

inline std::string testdata(const std::string& name) {
  const char* dir = std::getenv("PPROFD_TESTDATA");
  std::ifstream in(std::string(dir ? dir : "tests/testdata") + "/pprof/" + name, std::ios::binary);
  REQUIRE(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}
