#include "pprofd/pprof/pprof.hpp"

#include "test_util.hpp"

#include <zlib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <random>
#include <string>

using namespace pprofd::pprof;

namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// Text-like data that compresses, so corruption lands inside real deflate blocks.
std::string compressible(std::size_t n) {
  std::string s;
  while (s.size() < n)
    s += "runtime.mallocgc /usr/local/go/src/runtime/malloc.go:" + std::to_string(s.size() % 977) +
         "\n";
  s.resize(n);
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Reference gzip stream from zlib, so gunzip is not only checked against our own gzip().
std::string zlib_gzip(const std::string& data) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

TEST_CASE("looks_gzipped checks the magic bytes", "[gzip]") {
  CHECK(looks_gzipped(gzip("x")));
  CHECK_FALSE(looks_gzipped("\x1f"));
  CHECK_FALSE(looks_gzipped("<html>"));
  CHECK_FALSE(looks_gzipped(""));
}

TEST_CASE("gzip and gunzip round trip", "[gzip]") {
  for (const std::string& data :
       {std::string(), std::string("a"), compressible(200000), random_bytes(70000, 1)}) {
    for (int level : {1, 6, 12}) {
      const std::string z = gzip(data, level);
      REQUIRE(looks_gzipped(z));
      auto back = gunzip(z, data.size());
      REQUIRE(back.has_value());
      CHECK(*back == data);
    }
  }
  // Level 1 must actually compress.
  CHECK(gzip(compressible(200000), 1).size() < 50000);
}

TEST_CASE("gunzip reads zlib output, Go output and concatenated members", "[gzip]") {
  const std::string a = compressible(50000);
  const std::string b = random_bytes(3000, 7);
  auto one = gunzip(zlib_gzip(a), 1 << 20);
  REQUIRE(one.has_value());
  CHECK(*one == a);

  auto two = gunzip(zlib_gzip(a) + gzip(b), 1 << 20);
  REQUIRE(two.has_value());
  CHECK(*two == a + b);
  // The cap counts every member, not just the last one.
  CHECK_FALSE(gunzip(zlib_gzip(a) + gzip(b), a.size() + b.size() - 1).has_value());
  CHECK(gunzip(zlib_gzip(a) + gzip(b), a.size() + b.size()).has_value());

  auto go =
      gunzip(pprofd::pprof::test::read_file(pprofd::pprof::test::testdata_path("allocs_2.pb.gz")),
             1 << 20);
  REQUIRE(go.has_value());
  CHECK(go->size() > 1000);
}

TEST_CASE("gunzip rejects corrupt, truncated and non-gzip input", "[gzip]") {
  const std::string data = compressible(100000);
  const std::string z = gzip(data);
  CHECK_FALSE(gunzip("", 1 << 20).has_value());
  CHECK_FALSE(gunzip("plain text, not gzip", 1 << 20).has_value());
  CHECK_FALSE(gunzip("\x1f\x8b", 1 << 20).has_value());

  for (std::size_t cut : {std::size_t{1}, std::size_t{4}, std::size_t{8}, std::size_t{9},
                          z.size() / 2, z.size() - 12}) {
    INFO("cut " << cut);
    CHECK_FALSE(gunzip(z.substr(0, z.size() - cut), 1 << 20).has_value());
  }
  // Flipped bits in the deflate body, in the CRC and in the header.
  for (std::size_t pos : {z.size() / 3, z.size() / 2, z.size() - 6, std::size_t{2}}) {
    std::string bad = z;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x55);
    INFO("flipped byte " << pos);
    CHECK_FALSE(gunzip(bad, 1 << 20).has_value());
  }
  // Trailing garbage after a complete member.
  CHECK_FALSE(gunzip(z + "garbage-garbage-garbage", 1 << 20).has_value());
  const auto err = gunzip(z.substr(0, z.size() / 2), 1 << 20);
  REQUIRE_FALSE(err.has_value());
  CHECK(err.error().message.find("gzip") != std::string::npos);
}

TEST_CASE("gunzip enforces max_output exactly", "[gzip]") {
  const std::string data = compressible(100000);
  const std::string z = gzip(data);
  CHECK(gunzip(z, data.size()).has_value());
  CHECK_FALSE(gunzip(z, data.size() - 1).has_value());
  CHECK_FALSE(gunzip(z, 0).has_value());
}

TEST_CASE("gunzip of a 100 MB zero bomb fails fast under a 1 MB cap", "[gzip]") {
  // Built once: Catch re-enters the test case for every section.
  static const std::string bomb = gzip(std::string(100u << 20, '\0'));
  REQUIRE(bomb.size() < (1u << 20));

  SECTION("honest size trailer") {
    const auto start = std::chrono::steady_clock::now();
    auto r = gunzip(bomb, 1 << 20);
    CHECK_FALSE(r.has_value());
    CHECK(seconds_since(start) < 0.5);
  }
  SECTION("forged size trailer forces the streaming path, which stops at the cap") {
    std::string forged = bomb;
    const std::uint32_t small = 1000;
    std::memcpy(forged.data() + forged.size() - 4, &small, 4);
    const auto start = std::chrono::steady_clock::now();
    auto r = gunzip(forged, 1 << 20);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("limit") != std::string::npos);
    // Inflating all 100 MB would take far longer than stopping after about 1 MB.
    CHECK(seconds_since(start) < 0.5);
  }
}
