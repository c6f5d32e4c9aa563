#include "pprofd/config/config.hpp"

#include <catch2/catch.hpp>

using pprofd::config::parse_host_port;

TEST_CASE("parse_host_port accepts names, IPv4 and bracketed IPv6") {
  struct Case {
    const char* address;
    const char* host;
    std::uint16_t port;
  };
  for (const Case& c :
       {Case{"127.0.0.1:6060", "127.0.0.1", 6060}, Case{"localhost:1", "localhost", 1},
        Case{"pyroscope.observability.svc:4040", "pyroscope.observability.svc", 4040},
        Case{"web-0.web.default.svc.cluster.local.:65535", "web-0.web.default.svc.cluster.local.",
             65535},
        Case{"[::1]:6060", "::1", 6060}, Case{"[2001:db8::1]:80", "2001:db8::1", 80},
        Case{"[fe80::1%eth0]:80", "fe80::1%eth0", 80}}) {
    INFO(c.address);
    std::string why;
    const auto hp = parse_host_port(c.address, &why);
    INFO(why);
    REQUIRE(hp.has_value());
    CHECK(hp->host == c.host);
    CHECK(hp->port == c.port);
  }
}

TEST_CASE("parse_host_port rejects malformed addresses and says why") {
  struct Case {
    const char* address;
    const char* why;
  };
  for (const Case& c : {Case{"", "empty address"},
                        Case{"127.0.0.1", "missing port"},
                        Case{"127.0.0.1:", "missing port"},
                        Case{"[::1]", "missing port"},
                        Case{"[::1]6060", "unexpected text"},
                        Case{"[::1:6060", "missing \"]\""},
                        Case{"[nothex]:80", "invalid IPv6"},
                        Case{"::1:6060", "brackets"},
                        Case{":6060", "missing host"},
                        Case{"http://host:6060", "without a scheme"},
                        Case{"host:6060/debug/pprof", "without a path"},
                        Case{"host :6060", "spaces"},
                        Case{"host:60 60", "spaces"},
                        Case{"host:0", "port must be 1-65535"},
                        Case{"host:65536", "port must be 1-65535"},
                        Case{"host:99999999999999999999", "port must be 1-65535"},
                        Case{"host:-1", "port must be a number"},
                        Case{"host:http", "port must be a number"},
                        Case{"256.0.0.1:80", "invalid IPv4"},
                        Case{"1.2.3:80", "invalid IPv4"},
                        Case{"-host:80", "invalid host name"},
                        Case{"a..b:80", "invalid host name"},
                        Case{"h*st:80", "invalid host name"}}) {
    INFO(c.address);
    std::string why;
    CHECK_FALSE(parse_host_port(c.address, &why).has_value());
    CHECK_THAT(why, Catch::Contains(c.why));
  }
  // why is optional.
  CHECK_FALSE(parse_host_port("nope").has_value());
}

TEST_CASE("parse_host_port takes port 0 only when asked") {
  CHECK_FALSE(parse_host_port("127.0.0.1:0").has_value());
  const auto hp = parse_host_port("127.0.0.1:0", nullptr, /*allow_port_zero=*/true);
  REQUIRE(hp.has_value());
  CHECK(hp->port == 0);
  std::string why;
  CHECK_FALSE(parse_host_port("127.0.0.1:70000", &why, true).has_value());
  CHECK(why == "port must be 0-65535");
}
