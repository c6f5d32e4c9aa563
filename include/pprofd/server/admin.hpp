#pragma once
// pprofd's own HTTP endpoints (design §8) as a pure request -> response function over narrow
// read-only views of the running process.

#include "pprofd/discovery/pods.hpp"
#include "pprofd/http/server.hpp"
#include "pprofd/scrape/manager.hpp"

#include <functional>
#include <string>
#include <vector>

namespace pprofd::server {

struct AdminViews {
  std::function<std::string()> metrics;  // Prometheus text
  std::function<bool()> ready;           // config loaded, discovery synced
  std::function<std::vector<scrape::TargetStatus>()> targets;
  std::function<void()> request_reload;  // POST /-/reload
  std::function<std::vector<discovery::DroppedCandidate>()> dropped;
};

http::Handler make_admin_handler(AdminViews views);

std::string targets_json(const std::vector<scrape::TargetStatus>& targets,
                         const std::vector<discovery::DroppedCandidate>& dropped);
std::string targets_html(const std::vector<scrape::TargetStatus>& targets,
                         const std::vector<discovery::DroppedCandidate>& dropped);

}  // namespace pprofd::server
