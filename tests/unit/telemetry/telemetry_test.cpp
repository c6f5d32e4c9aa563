#include "pprofd/telemetry/log.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pprofd::telemetry;

TEST_CASE("logfmt quotes values that need it") {
  const auto line =
      format_log_line(LogFormat::logfmt, "warn", "scrape failed",
                      {{"target", "http://1.2.3.4:6060/x"}, {"error", "HTTP 500: a \"b\""}});
  CHECK(line ==
        "level=warn msg=\"scrape failed\" target=http://1.2.3.4:6060/x error=\"HTTP 500: a "
        "\\\"b\\\"\"");
}

TEST_CASE("json lines are valid JSON with escaped control characters") {
  const auto line = format_log_line(LogFormat::json, "info", "a\nb", {{"k", "v\t\x01"}});
  const auto doc = nlohmann::json::parse(line);
  CHECK(doc["msg"] == "a\nb");
  CHECK(doc["k"] == "v\t\x01");
  CHECK(doc["level"] == "info");
}

TEST_CASE("setup_logging rejects unknown levels and formats") {
  CHECK_FALSE(setup_logging("loud", "logfmt"));
  CHECK_FALSE(setup_logging("info", "xml"));
  CHECK(setup_logging("debug", "json"));
  CHECK(setup_logging("info", "logfmt"));
}

TEST_CASE("metrics render families and process metrics") {
  Metrics m;
  m.scrapes_total.Add({{"profile_type", "memory"}, {"result", "success"}}).Increment(3);
  const auto text = m.render();
  CHECK(text.find("pprofd_scrapes_total{profile_type=\"memory\",result=\"success\"} 3") !=
        std::string::npos);
  CHECK(text.find("pprofd_build_info{") != std::string::npos);
  CHECK(text.find("process_resident_memory_bytes ") != std::string::npos);
  CHECK(text.find("process_cpu_seconds_total ") != std::string::npos);
  CHECK(text.find("process_open_fds ") != std::string::npos);
  CHECK(text.find("process_start_time_seconds ") != std::string::npos);
}
