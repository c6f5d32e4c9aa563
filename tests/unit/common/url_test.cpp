#include "pprofd/common/url.hpp"

#include <catch2/catch.hpp>

TEST_CASE("url_encode keeps only unreserved characters") {
  CHECK(pprofd::url_encode("aZ09-._~") == "aZ09-._~");
  CHECK(pprofd::url_encode("a b/c?d=e&f%") == "a%20b%2Fc%3Fd%3De%26f%25");
  CHECK(pprofd::url_encode("\xc3\xa9") == "%C3%A9");
  CHECK(pprofd::url_encode("") == "");
}
