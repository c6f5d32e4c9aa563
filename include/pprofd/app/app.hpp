#pragma once
// Process entry: command-line parsing, wiring of every module, reload and ordered shutdown.

#include <string>
#include <vector>

namespace pprofd::app {

struct Options {
  std::string command = "run";  // run, check-config, version
  std::string config_file;
  std::string log_level = "info";
  std::string log_format = "logfmt";
  std::string listen_address;  // overrides server.listen_address when set
};

struct ParsedArgs {
  Options options;
  std::string error;  // non-empty: usage error (exit 2)
  bool help = false;
};

ParsedArgs parse_args(const std::vector<std::string>& args);

// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
int main(int argc, char** argv);
int run(const Options& options);
int check_config(const Options& options);

}  // namespace pprofd::app
