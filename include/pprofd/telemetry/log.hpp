#pragma once
// Structured logging on spdlog: every line is `ts=... level=... msg="..." key=value ...` (logfmt)
// or one JSON object. Thread-safe. Never log secrets: callers pass file paths, not file contents.

#include <spdlog/spdlog.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace pprofd::telemetry {

enum class LogFormat { logfmt, json };

using LogField = std::pair<std::string_view, std::string_view>;
using LogFields = std::initializer_list<LogField>;

// Returns false (and changes nothing) when level or format is not recognised.
bool setup_logging(std::string_view level, std::string_view format);

void log(spdlog::level::level_enum level, std::string_view msg, LogFields fields = {});
inline void log_debug(std::string_view msg, LogFields f = {}) { log(spdlog::level::debug, msg, f); }
inline void log_info(std::string_view msg, LogFields f = {}) { log(spdlog::level::info, msg, f); }
inline void log_warn(std::string_view msg, LogFields f = {}) { log(spdlog::level::warn, msg, f); }
inline void log_error(std::string_view msg, LogFields f = {}) { log(spdlog::level::err, msg, f); }
inline bool log_enabled(spdlog::level::level_enum level) { return spdlog::should_log(level); }

// The line as it would be written, without the timestamp (exposed for tests).
std::string format_log_line(LogFormat format, std::string_view level, std::string_view msg,
                            LogFields fields);

}  // namespace pprofd::telemetry
