#pragma once
// A credential kept in a file (bearer token, password) that may rotate underneath us: re-read
// when older than max_age, and on demand after the server rejected it. The contents are never
// logged. Not thread-safe.

#include "pprofd/common/result.hpp"

#include <chrono>
#include <string>

namespace pprofd {

class TokenFile {
 public:
  explicit TokenFile(std::string path, std::chrono::seconds max_age = std::chrono::seconds(60))
      : path_(std::move(path)), max_age_(max_age) {}

  // The file's contents with surrounding whitespace trimmed; empty path gives "".
  Result<std::string> get();
  void invalidate() { loaded_at_ = {}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::chrono::seconds max_age_;
  std::string value_;
  std::chrono::steady_clock::time_point loaded_at_{};
};

// Reads a whole file; an error names the path and the reason.
Result<std::string> read_file(const std::string& path);

}  // namespace pprofd
