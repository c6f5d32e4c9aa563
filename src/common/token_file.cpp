#include "pprofd/common/token_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pprofd {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Result<std::string> TokenFile::get() {
  if (path_.empty()) return std::string{};
  const auto now = std::chrono::steady_clock::now();
  if (loaded_at_ != std::chrono::steady_clock::time_point{} && now - loaded_at_ < max_age_)
    return value_;
  auto content = read_file(path_);
  if (!content) return content.error();
  auto& text = *content;
  const auto first = text.find_first_not_of(" \t\r\n");
  const auto last = text.find_last_not_of(" \t\r\n");
  value_ = first == std::string::npos ? std::string{} : text.substr(first, last - first + 1);
  loaded_at_ = now;
  return value_;
}

}  // namespace pprofd
