#include "pprofd/kube/client.hpp"

#include "pprofd/common/async.hpp"
#include "pprofd/common/base64.hpp"
#include "pprofd/common/url.hpp"
#include "pprofd/telemetry/log.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <yaml-cpp/yaml.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <random>

namespace pprofd::kube {
namespace asio = boost::asio;
using json = nlohmann::json;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr auto list_timeout = std::chrono::seconds(60);

namespace {

Result<http::Endpoint> endpoint_from_url(const std::string& server) {
  const auto scheme_end = server.find("://");
  if (scheme_end == std::string::npos) return make_error("server \"" + server + "\" has no scheme");
  const std::string scheme = server.substr(0, scheme_end);
  std::string rest = server.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find('/'));
  if (rest.find(':') == std::string::npos || (rest.front() == '[' && rest.back() == ']'))
    rest += scheme == "https" ? ":443" : ":80";
  return http::parse_endpoint(scheme, rest);
}

std::string resolve_path(const std::filesystem::path& base_dir, const std::string& file) {
  if (file.empty() || std::filesystem::path(file).is_absolute()) return file;
  return (base_dir / file).string();
}

std::string yaml_string(const YAML::Node& node, const char* key) {
  const auto child = node[key];
  return child && child.IsScalar() ? child.as<std::string>() : std::string{};
}

const YAML::Node find_named(const YAML::Node& list, const std::string& name, const char* inner) {
  if (list && list.IsSequence())
    for (const auto& entry : list)
      if (yaml_string(entry, "name") == name) return entry[inner];
  return YAML::Node(YAML::NodeType::Undefined);
}

RequestFailure failure_of(const http::Failure& failure) {
  return failure.kind == http::FailureKind::connect ? RequestFailure::unreachable
                                                    : RequestFailure::other;
}

RequestFailure failure_of_status(unsigned status) {
  if (status == 410) return RequestFailure::gone;
  if (status == 401) return RequestFailure::unauthorized;
  if (status == 429) return RequestFailure::throttled;
  return RequestFailure::other;
}

}  // namespace

Result<ApiConfig> in_cluster_config(const Getenv& getenv) {
  const auto host = getenv("KUBERNETES_SERVICE_HOST");
  const auto port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port || host->empty() || port->empty())
    return make_error("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
  const std::string dir =
      getenv("PPROFD_SERVICEACCOUNT_DIR").value_or("/var/run/secrets/kubernetes.io/serviceaccount");
  ApiConfig api;
  const bool v6 = host->find(':') != std::string::npos;
  auto endpoint = http::parse_endpoint("https", (v6 ? "[" + *host + "]" : *host) + ":" + *port);
  if (!endpoint) return endpoint.error();
  api.endpoint = *endpoint;
  api.tls.ca_file = dir + "/ca.crt";
  api.token_file = dir + "/token";
  api.source = "in-cluster";
  if (!std::filesystem::exists(api.token_file))
    return make_error("in-cluster token " + api.token_file + " does not exist");
  return api;
}

Result<ApiConfig> kubeconfig_config(const std::string& path) {
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return make_error("kubeconfig " + path + ": " + e.what());
  }
  const auto dir = std::filesystem::path(path).parent_path();
  const std::string context_name = yaml_string(doc, "current-context");
  if (context_name.empty()) return make_error("kubeconfig " + path + ": no current-context");
  const auto context = find_named(doc["contexts"], context_name, "context");
  if (!context)
    return make_error("kubeconfig " + path + ": context \"" + context_name + "\" not found");
  const auto cluster = find_named(doc["clusters"], yaml_string(context, "cluster"), "cluster");
  if (!cluster)
    return make_error("kubeconfig " + path + ": cluster of context \"" + context_name +
                      "\" not found");
  const auto user = find_named(doc["users"], yaml_string(context, "user"), "user");

  ApiConfig api;
  api.source = path;
  auto endpoint = endpoint_from_url(yaml_string(cluster, "server"));
  if (!endpoint) return make_error("kubeconfig " + path + ": " + endpoint.error().message);
  api.endpoint = *endpoint;
  api.server_name = yaml_string(cluster, "tls-server-name");
  api.tls.ca_file = resolve_path(dir, yaml_string(cluster, "certificate-authority"));
  api.tls.ca_data = base64_decode(yaml_string(cluster, "certificate-authority-data"));
  api.tls.insecure_skip_verify = yaml_string(cluster, "insecure-skip-tls-verify") == "true";
  if (user) {
    api.tls.cert_file = resolve_path(dir, yaml_string(user, "client-certificate"));
    api.tls.key_file = resolve_path(dir, yaml_string(user, "client-key"));
    api.tls.cert_data = base64_decode(yaml_string(user, "client-certificate-data"));
    api.tls.key_data = base64_decode(yaml_string(user, "client-key-data"));
    api.token = yaml_string(user, "token");
    api.token_file = resolve_path(dir, yaml_string(user, "tokenFile"));
  }
  return api;
}

Result<ApiConfig> load_api_config(const std::string& kubeconfig, const Getenv& getenv) {
  if (!kubeconfig.empty()) return kubeconfig_config(kubeconfig);
  if (getenv("KUBERNETES_SERVICE_HOST")) return in_cluster_config(getenv);
  if (auto env = getenv("KUBECONFIG"); env && !env->empty())
    return kubeconfig_config(env->substr(0, env->find(':')));
  if (auto home = getenv("HOME")) return kubeconfig_config(*home + "/.kube/config");
  return make_error("no Kubernetes configuration: not in a cluster, no $KUBECONFIG, no $HOME");
}

Result<ListPage> parse_pod_list(std::string_view text) {
  try {
    const auto doc = json::parse(text);
    ListPage page;
    const auto& meta = doc.at("metadata");
    page.resource_version = meta.value("resourceVersion", "");
    page.continue_token = meta.value("continue", "");
    if (doc.contains("items") && doc["items"].is_array()) {
      for (const auto& item : doc["items"]) {
        auto pod = pod_from_json(item);
        if (!pod) return pod.error();
        page.items.push_back(std::move(*pod));
      }
    }
    return page;
  } catch (const json::parse_error& e) {
    return make_error("pod list: invalid JSON at byte " + std::to_string(e.byte));
  } catch (const std::exception& e) {
    return make_error(std::string("pod list: ") + e.what());
  }
}

Result<WatchEvent> parse_watch_event(std::string_view line) {
  try {
    const auto doc = json::parse(line);
    WatchEvent event;
    const std::string type = doc.at("type").get<std::string>();
    const auto& object = doc.at("object");
    if (type == "ERROR") {
      event.type = WatchEvent::Type::error;
      event.error_code = object.value("code", 0);
      event.error_reason = object.value("reason", "");
      return event;
    }
    if (object.contains("metadata"))
      event.resource_version = object["metadata"].value("resourceVersion", "");
    if (type == "BOOKMARK") {
      event.type = WatchEvent::Type::bookmark;
      return event;
    }
    if (type == "ADDED")
      event.type = WatchEvent::Type::added;
    else if (type == "MODIFIED")
      event.type = WatchEvent::Type::modified;
    else if (type == "DELETED")
      event.type = WatchEvent::Type::deleted;
    else
      return make_error("watch event of unknown type \"" + type + "\"");
    auto pod = pod_from_json(object);
    if (!pod) return pod.error();
    event.pod = std::move(*pod);
    return event;
  } catch (const json::parse_error& e) {
    // Not e.what(): its excerpt of the input could carry pod data (env values) into the logs.
    return make_error("watch event: invalid JSON at byte " + std::to_string(e.byte));
  } catch (const std::exception& e) {
    return make_error(std::string("watch event: ") + e.what());
  }
}

struct PodInformer::Scope {
  std::string path;  // /api/v1/pods or /api/v1/namespaces/<ns>/pods
  Reflector reflector;
  http::Client client;
  ReflectorCounters reported;   // what was already added to the metrics
  bool sync_announced = false;  // on_change fired for the first completed list

  Scope(std::string p, std::function<double()> random, asio::any_io_executor io,
        const http::Endpoint& endpoint, http::ClientOptions options)
      : path(std::move(p)),
        reflector(std::move(random)),
        client(io, endpoint, std::move(options)) {}
};

PodInformer::PodInformer(asio::any_io_executor io, ApiConfig api, InformerOptions options,
                         telemetry::Metrics& metrics, std::function<void()> on_change)
    : io_(io),
      api_(std::move(api)),
      options_(std::move(options)),
      metrics_(metrics),
      on_change_(std::move(on_change)),
      token_file_(api_.token_file) {
  if (api_.tls.insecure_skip_verify)
    telemetry::log_warn("Kubernetes API TLS verification is disabled (insecure-skip-tls-verify)",
                        {{"source", api_.source}});
  auto tls = http::make_client_tls_context(api_.tls);
  if (tls)
    tls_ = *tls;
  else
    telemetry::log_error("Kubernetes API TLS setup failed", {{"error", tls.error().message}});
  auto random = [engine = std::make_shared<std::mt19937_64>(std::random_device{}())] {
    return std::uniform_real_distribution<double>(0, 1)(*engine);
  };
  std::vector<std::string> paths;
  if (options_.namespaces.empty()) paths.push_back("/api/v1/pods");
  for (const auto& ns : options_.namespaces) paths.push_back("/api/v1/namespaces/" + ns + "/pods");
  for (auto& path : paths)
    scopes_.push_back(std::make_unique<Scope>(std::move(path), random, io_, api_.endpoint,
                                              http::ClientOptions{tls_, api_.server_name, 1}));
  metrics_.kubernetes_synced.Add({}).Set(0);
  metrics_.kubernetes_lists.Add({});
  metrics_.kubernetes_watch_restarts.Add({});
}

PodInformer::~PodInformer() = default;

bool PodInformer::synced() const {
  for (const auto& scope : scopes_)
    if (!scope->reflector.synced()) return false;
  return true;
}

const Pod* PodInformer::find(const std::string& key) const {
  for (const auto& scope : scopes_)
    if (const Pod* pod = scope->reflector.store().find(key)) return pod;
  return nullptr;
}

std::set<std::string> PodInformer::take_changes() {
  std::set<std::string> all;
  for (auto& scope : scopes_) all.merge(scope->reflector.store().take_changes());
  return all;
}

std::vector<std::string> PodInformer::keys() const {
  std::vector<std::string> out;
  for (const auto& scope : scopes_)
    for (const auto& [key, pod] : scope->reflector.store().pods()) out.push_back(key);
  return out;
}

std::size_t PodInformer::pod_count() const {
  std::size_t n = 0;
  for (const auto& scope : scopes_) n += scope->reflector.store().size();
  return n;
}

asio::awaitable<void> PodInformer::run() {
  co_await asio::this_coro::throw_if_cancelled(false);
  std::vector<asio::cancellation_signal> signals(scopes_.size());
  std::size_t running = scopes_.size();
  asio::steady_timer all_done(io_, asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < scopes_.size(); ++i) {
    auto task = run_scope(*scopes_[i]);
    asio::co_spawn(io_, std::move(task),
                   asio::bind_cancellation_slot(signals[i].slot(), [&](std::exception_ptr e) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                         telemetry::log_error("pod informer failed", {{"error", ex.what()}});
                       }
                     }
                     if (--running == 0) all_done.cancel();
                   }));
  }
  co_await all_done.async_wait(use_tuple);  // returns when cancelled (shutdown) or all ended
  for (auto& signal : signals) signal.emit(asio::cancellation_type::terminal);
  while (running > 0) {
    all_done.expires_at(asio::steady_timer::time_point::max());
    co_await all_done.async_wait(use_tuple);
  }
}

asio::awaitable<void> PodInformer::run_scope(Scope& scope) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto& reflector = scope.reflector;
  asio::steady_timer wait_timer(io_);
  const std::string selectors =
      (options_.label_selector.empty() ? ""
                                       : "&labelSelector=" + url_encode(options_.label_selector)) +
      (options_.field_selector.empty() ? ""
                                       : "&fieldSelector=" + url_encode(options_.field_selector));

  auto authorized = [&](http::Request& req) {
    std::string token = api_.token;
    if (!api_.token_file.empty()) {
      auto from_file = token_file_.get();
      if (from_file)
        token = *from_file;
      else
        telemetry::log_error("cannot read the Kubernetes token",
                             {{"error", from_file.error().message}});
    }
    if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
    req.headers.emplace_back("Accept", "application/json");
  };
  auto count_request = [&](std::string_view verb, const http::FetchResult& result) {
    const std::string code =
        result ? std::to_string(result->status) : std::string(http::to_string(result.error().kind));
    metrics_.kubernetes_requests.Add({{"verb", std::string(verb)}, {"code", code}}).Increment();
    if (result && result->status == 401) token_file_.invalidate();  // a rotated token
  };
  auto report = [&] {
    const auto& c = reflector.counters();
    metrics_.kubernetes_lists.Add({}).Increment(
        static_cast<double>(c.lists - scope.reported.lists));
    metrics_.kubernetes_relists.Add({{"reason", "expired"}})
        .Increment(static_cast<double>(c.relists_expired - scope.reported.relists_expired));
    metrics_.kubernetes_relists.Add({{"reason", "error"}})
        .Increment(static_cast<double>(c.relists_error - scope.reported.relists_error));
    metrics_.kubernetes_watch_restarts.Add({}).Increment(
        static_cast<double>(c.watch_restarts - scope.reported.watch_restarts));
    scope.reported = c;
    metrics_.kubernetes_synced.Add({}).Set(synced() ? 1 : 0);
    metrics_.kubernetes_pods.Add({}).Set(static_cast<double>(pod_count()));
    // The first completed list is news even when it holds no pods: discovery becomes ready.
    const bool first_sync = reflector.synced() && !std::exchange(scope.sync_announced, true);
    if (reflector.store().has_changes() || first_sync) on_change_();
  };

  ReflectorAction action = reflector.start();
  while (!co_await cancelled()) {
    report();
    if (action.kind == ReflectorAction::Kind::wait) {
      wait_timer.expires_after(action.delay);
      co_await wait_timer.async_wait(use_tuple);
      action = reflector.on_wait_done();
      continue;
    }
    if (action.kind == ReflectorAction::Kind::list) {
      http::Request req;
      req.target = scope.path + "?limit=" + std::to_string(action.limit) + selectors;
      if (!action.continue_token.empty())
        req.target += "&continue=" + url_encode(action.continue_token);
      req.timeout = list_timeout;
      req.body_limit = 512ULL << 20;
      authorized(req);
      auto result = co_await scope.client.fetch(std::move(req));
      count_request("list", result);
      if (!result) {
        if (result.error().kind == http::FailureKind::cancelled) break;
        telemetry::log_warn("pod list failed",
                            {{"path", scope.path}, {"error", result.error().message}});
        action = reflector.on_list_failed(RequestFailure::other);
      } else if (result->status != 200) {
        telemetry::log_warn("pod list failed",
                            {{"path", scope.path}, {"status", std::to_string(result->status)}});
        action = reflector.on_list_failed(failure_of_status(result->status));
      } else if (auto page = parse_pod_list(result->body); !page) {
        telemetry::log_warn("pod list unreadable",
                            {{"path", scope.path}, {"error", page.error().message}});
        action = reflector.on_list_failed(RequestFailure::other);
      } else {
        const bool was_synced = reflector.synced();
        action = reflector.on_list_page(std::move(*page));
        if (!was_synced && reflector.synced())
          telemetry::log_info("pods listed", {{"path", scope.path},
                                              {"pods", std::to_string(reflector.store().size())}});
      }
      continue;
    }

    // Watch.
    http::Request req;
    req.target = scope.path + "?watch=1&allowWatchBookmarks=true&resourceVersion=" +
                 url_encode(action.resource_version) +
                 "&timeoutSeconds=" + std::to_string(action.timeout_seconds) + selectors;
    // The server ends the stream at timeoutSeconds; the client deadline is only a backstop.
    req.timeout = std::chrono::seconds(action.timeout_seconds + 30);
    req.body_limit = 1 << 20;
    authorized(req);
    LineSplitter lines;
    std::size_t events = 0;
    bool unreadable = false;
    const auto started = std::chrono::steady_clock::now();
    auto result = co_await scope.client.stream(std::move(req), [&](std::string_view data) {
      lines.feed(data, [&](std::string_view line) {
        if (unreadable) return;
        auto event = parse_watch_event(line);
        if (!event) {
          telemetry::log_warn("watch event unreadable", {{"error", event.error().message}});
          unreadable = true;
          return;
        }
        static constexpr std::array names{"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};
        metrics_.kubernetes_watch_events.Add({{"type", names[static_cast<int>(event->type)]}})
            .Increment();
        ++events;
        reflector.on_watch_event(std::move(*event));
      });
      if (reflector.store().has_changes()) report();
      return !unreadable;
    });
    count_request("watch", result);
    const auto lasted = std::chrono::steady_clock::now() - started;
    std::optional<RequestFailure> failure;
    if (!result) {
      if (result.error().kind == http::FailureKind::cancelled) break;
      // Reaching our own backstop deadline mid-stream is a normal end, like the server's timeout.
      if (!(result.error().kind == http::FailureKind::timeout && events > 0)) {
        failure = failure_of(result.error());
        telemetry::log_warn("pod watch failed",
                            {{"path", scope.path}, {"error", result.error().message}});
      }
    } else if (result->status != 200) {
      failure = failure_of_status(result->status);
      telemetry::log_warn("pod watch refused",
                          {{"path", scope.path}, {"status", std::to_string(result->status)}});
    } else if (unreadable) {
      failure = RequestFailure::other;
    }
    action = reflector.on_watch_ended(failure, lasted, events);
  }
}

}  // namespace pprofd::kube
