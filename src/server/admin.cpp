#include "pprofd/server/admin.hpp"

#include <nlohmann/json.hpp>

#include <ctime>

namespace pprofd::server {
namespace bhttp = boost::beast::http;

namespace {

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::system_clock::to_time_t(t);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

nlohmann::json labels_json(const model::Labels& labels) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : labels) out[name] = value;
  return out;
}

}  // namespace

std::string targets_json(const std::vector<scrape::TargetStatus>& targets,
                         const std::vector<discovery::DroppedCandidate>& dropped) {
  nlohmann::json active = nlohmann::json::array();
  for (const auto& target : targets) {
    nlohmann::json profiles = nlohmann::json::array();
    for (const auto& loop : target.loops) {
      nlohmann::json p{
          {"profileType", model::info(loop.kind).name},
          {"scrapeUrl", loop.url},
          {"health", loop.health},
          {"lastError", loop.last_error},
          {"lastScrapeDurationSeconds", std::chrono::duration<double>(loop.last_duration).count()},
          {"lastScrapeBytes", loop.last_bytes},
          {"nextScrape", iso_time(loop.next_scrape)}};
      p["lastScrape"] = loop.last_scrape ? nlohmann::json(iso_time(*loop.last_scrape)) : nullptr;
      profiles.push_back(std::move(p));
    }
    active.push_back({{"source", target.source},
                      {"scheme", target.scheme},
                      {"address", target.address},
                      {"labels", labels_json(target.labels)},
                      {"profiles", std::move(profiles)}});
  }
  nlohmann::json dropped_json = nlohmann::json::array();
  for (const auto& d : dropped)
    dropped_json.push_back({{"pod", d.pod}, {"reason", d.reason}, {"detail", d.detail}});
  nlohmann::json doc{
      {"status", "success"},
      {"data",
       {{"activeTargets", std::move(active)}, {"droppedTargets", std::move(dropped_json)}}}};
  return doc.dump();
}

std::string targets_html(const std::vector<scrape::TargetStatus>& targets,
                         const std::vector<discovery::DroppedCandidate>& dropped) {
  std::string out =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>pprofd targets</title>"
      "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.down{color:#b00}"
      ".up{color:#070}</style></head><body><h1>Targets</h1>";
  out += "<p>" + std::to_string(targets.size()) + " active targets</p>";
  out +=
      "<table><tr><th>target</th><th>labels</th><th>profile</th><th>health</th>"
      "<th>last scrape</th><th>duration</th><th>bytes</th><th>error</th></tr>";
  for (const auto& target : targets) {
    for (const auto& loop : target.loops) {
      out += "<tr><td>" + html_escape(target.scheme + "://" + target.address) + "</td><td>" +
             html_escape(target.labels.to_string()) + "</td><td>" +
             std::string(model::info(loop.kind).name) + "</td><td class=\"" + loop.health + "\">" +
             loop.health + "</td><td>" +
             (loop.last_scrape ? iso_time(*loop.last_scrape) : std::string("never")) + "</td><td>" +
             std::to_string(std::chrono::duration<double>(loop.last_duration).count()) +
             "s</td><td>" + std::to_string(loop.last_bytes) + "</td><td>" +
             html_escape(loop.last_error) + "</td></tr>";
    }
  }
  out += "</table><h2>Dropped</h2><p>" + std::to_string(dropped.size()) +
         " pods (or ports) asked to be scraped but cannot be</p>";
  out += "<table><tr><th>pod</th><th>reason</th><th>detail</th></tr>";
  for (const auto& d : dropped)
    out += "<tr><td>" + html_escape(d.pod) + "</td><td>" + html_escape(d.reason) + "</td><td>" +
           html_escape(d.detail) + "</td></tr>";
  out += "</table></body></html>\n";
  return out;
}

http::Handler make_admin_handler(AdminViews views) {
  return [views = std::move(views)](const http::ServerRequest& req) -> http::ServerResponse {
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    const bool get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
    constexpr auto text = "text/plain; charset=utf-8";

    if (path == "/-/reload") {
      if (req.method() != bhttp::verb::post && req.method() != bhttp::verb::put)
        return http::make_response(req, 405, text, "use POST\n");
      views.request_reload();
      return http::make_response(req, 200, text, "reload requested\n");
    }
    if (!get) return http::make_response(req, 405, text, "method not allowed\n");
    if (path == "/metrics")
      return http::make_response(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                                 views.metrics());
    if (path == "/healthz") return http::make_response(req, 200, text, "ok\n");
    if (path == "/readyz") {
      const bool ready = views.ready();
      return http::make_response(req, ready ? 200 : 503, text, ready ? "ready\n" : "not ready\n");
    }
    if (path == "/api/v1/targets")
      return http::make_response(req, 200, "application/json",
                                 targets_json(views.targets(), views.dropped()));
    if (path == "/targets" || path == "/")
      return http::make_response(req, 200, "text/html; charset=utf-8",
                                 targets_html(views.targets(), views.dropped()));
    return http::make_response(req, 404, text, "not found\n");
  };
}

}  // namespace pprofd::server
