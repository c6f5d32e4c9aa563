#include "pprofd/telemetry/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace pprofd::telemetry {
namespace {

std::atomic<LogFormat> current_format{LogFormat::logfmt};

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_logfmt_value(std::string& out, std::string_view s) {
  bool needs_quotes = s.empty();
  for (unsigned char c : s)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\') needs_quotes = true;
  if (needs_quotes)
    append_json_string(out, s);  // logfmt quoting is JSON-string quoting
  else
    out += s;
}

std::string timestamp_now() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

}  // namespace

std::string format_log_line(LogFormat format, std::string_view level, std::string_view msg,
                            LogFields fields) {
  std::string out;
  out.reserve(64 + msg.size());
  if (format == LogFormat::json) {
    out += "{\"level\":";
    append_json_string(out, level);
    out += ",\"msg\":";
    append_json_string(out, msg);
    for (const auto& [key, value] : fields) {
      out += ',';
      append_json_string(out, key);
      out += ':';
      append_json_string(out, value);
    }
    out += '}';
  } else {
    out += "level=";
    out += level;
    out += " msg=";
    append_logfmt_value(out, msg);
    for (const auto& [key, value] : fields) {
      out += ' ';
      out += key;
      out += '=';
      append_logfmt_value(out, value);
    }
  }
  return out;
}

bool setup_logging(std::string_view level, std::string_view format) {
  spdlog::level::level_enum lvl;
  if (level == "debug")
    lvl = spdlog::level::debug;
  else if (level == "info")
    lvl = spdlog::level::info;
  else if (level == "warn")
    lvl = spdlog::level::warn;
  else if (level == "error")
    lvl = spdlog::level::err;
  else
    return false;
  LogFormat fmt;
  if (format == "logfmt")
    fmt = LogFormat::logfmt;
  else if (format == "json")
    fmt = LogFormat::json;
  else
    return false;

  // Logs go to stderr: stdout is left to commands that print results (check-config, version).
  auto logger =
      std::make_shared<spdlog::logger>("pprofd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  current_format = fmt;
  return true;
}

void log(spdlog::level::level_enum level, std::string_view msg, LogFields fields) {
  if (!spdlog::should_log(level)) return;
  const std::string body = format_log_line(current_format, level_name(level), msg, fields);
  const std::string ts = timestamp_now();
  if (current_format == LogFormat::json)
    spdlog::log(level, "{{\"ts\":\"{}\",{}", ts, std::string_view(body).substr(1));
  else
    spdlog::log(level, "ts={} {}", ts, body);
}

}  // namespace pprofd::telemetry
