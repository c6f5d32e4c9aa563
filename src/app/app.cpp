#include "pprofd/app/app.hpp"

#include "pprofd/common/hash.hpp"
#include "pprofd/common/thread_name.hpp"
#include "pprofd/config/config.hpp"
#include "pprofd/discovery/kubernetes.hpp"
#include "pprofd/discovery/static.hpp"
#include "pprofd/http/client.hpp"
#include "pprofd/http/server.hpp"
#include "pprofd/scrape/manager.hpp"
#include "pprofd/server/admin.hpp"
#include "pprofd/sinks/sink.hpp"
#include "pprofd/telemetry/log.hpp"
#include "pprofd/telemetry/metrics.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <exception>
#include <iostream>
#include <latch>
#include <memory>
#include <thread>

namespace pprofd::app {
namespace asio = boost::asio;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::string_view usage_text =
    "usage: pprofd [run|check-config|version] [flags]\n"
    "\n"
    "  run            run the collector (default)\n"
    "  check-config   validate the configuration and exit (0 valid, 2 invalid)\n"
    "  version        print version information\n"
    "\n"
    "flags:\n"
    "  --config.file=FILE            configuration file (required for run and check-config)\n"
    "  --log.level=LEVEL             debug, info, warn or error (default info)\n"
    "  --log.format=FORMAT           logfmt or json (default logfmt)\n"
    "  --web.listen-address=ADDR     overrides server.listen_address\n";

void print_config_errors(const std::vector<config::ConfigError>& errors) {
  for (const auto& e : errors) std::cerr << e.to_string() << "\n";
}

config::LoadResult load(const Options& options) {
  if (options.config_file.empty())
    return {std::nullopt, {{"config.file", "no configuration file given (--config.file=FILE)"}}};
  return config::load_file(options.config_file, config::process_env());
}

std::uint64_t instance_seed() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return fnv1a64(host);
}

// Everything a scrape loop needs from the config; building it is where TLS files are read.
boost::system::result<scrape::Settings, config::ConfigError> scrape_settings(
    const config::Config& c) {
  scrape::Settings s;
  s.interval = c.scrape.interval;
  s.timeout = c.scrape.timeout;
  s.cpu_duration = c.scrape.cpu_duration;
  s.max_concurrent = c.scrape.max_concurrent;
  s.body_size_limit = c.scrape.body_size_limit;
  s.external_labels = c.scrape.external_labels;
  for (const auto& p : c.profiles) s.delta[static_cast<std::size_t>(p.kind)] = p.delta;
  auto tls = http::make_client_tls_context(http::tls_settings(c.scrape.tls));
  if (!tls) return config::ConfigError{"scrape.tls", tls.error().message};
  s.tls = *tls;
  s.tls_config = c.scrape.tls;
  s.tls_server_name = c.scrape.tls.server_name;
  s.bearer_token_file = c.scrape.bearer_token_file;
  s.seed = instance_seed();
  return s;
}

// Every target holds a keep-alive connection: 1,024 descriptors, a common default soft limit,
// would cap pprofd at about a thousand targets. Raised to the hard limit, as Go programs do.
void raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const auto soft = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  telemetry::log_debug("open files limit raised",
                       {{"from", std::to_string(soft)}, {"to", std::to_string(limit.rlim_max)}});
}

// Names every thread of a pool: each naming job waits until all of them have started, so no
// thread can take two and every thread takes one.
void name_pool_threads(asio::thread_pool& pool, std::size_t threads, const char* name) {
  auto started = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(threads));
  for (std::size_t i = 0; i < threads; ++i)
    asio::post(pool, [started, name] {
      set_thread_name(name);
      started->arrive_and_wait();
    });
}

// The running daemon: owns every long-lived object and the order they start and stop in.
// Threads (named for per-thread CPU in /proc/PID/task/*/comm): `pprofd-io` runs the one
// io_context — scrape loops and HTTP pulls, sinks' senders (request encoding included), discovery
// and the admin server; `pprofd-work` × cores runs gunzip, validation, delta and gzip; each file
// sink writes on its own `pprofd-file`. The main thread only waits for `pprofd-io`.
class Daemon {
 public:
  Daemon(const Options& options, config::Config config)
      : options_(options),
        config_(std::move(config)),
        worker_threads_(std::max(1u, std::thread::hardware_concurrency())),
        workers_(worker_threads_),
        admin_(io_.get_executor(), server::make_admin_handler(admin_views())),
        signals_(io_, SIGINT, SIGTERM, SIGHUP) {
    name_pool_threads(workers_, worker_threads_, "pprofd-work");
  }

  // Builds sinks and the scrape manager; a sink that cannot be built fails startup.
  Result<void> init(scrape::Settings settings) {
    std::vector<sinks::SinkPtr> sink_list;
    for (const auto& sink_config : config_.sinks) {
      auto sink = sinks::make_sink(sink_config, io_.get_executor(), metrics_, clock_);
      if (!sink) return sink.error();
      sink_list.push_back(std::move(*sink));
    }
    fanout_ = std::make_unique<sinks::Fanout>(std::move(sink_list));
    manager_ =
        std::make_unique<scrape::ScrapeManager>(io_.get_executor(), workers_.get_executor(),
                                                metrics_, *fanout_, clock_, std::move(settings));
    if (config_.kubernetes.enabled) {
      auto api = kube::load_api_config(config_.kubernetes.kubeconfig, config::process_env());
      if (!api) return make_error("kubernetes discovery: " + api.error().message);
      telemetry::log_info("kubernetes discovery",
                          {{"api", api->endpoint.authority()}, {"source", api->source}});
      kube_ = std::make_unique<discovery::KubernetesDiscovery>(
          io_.get_executor(), config_, std::move(*api), metrics_,
          [this](std::vector<model::TargetGroup> groups) -> asio::awaitable<void> {
            co_await manager_->sync(std::move(groups));
          });
    }
    return {};
  }

  int run() {
    auto bound = admin_.listen(config_.server.listen_address);
    if (!bound) {
      telemetry::log_error("cannot start HTTP server", {{"error", bound.error().message}});
      return 1;
    }
    telemetry::log_info("pprofd started", {{"version", telemetry::build_info().version},
                                           {"listen_address", bound->address().to_string() + ":" +
                                                                  std::to_string(bound->port())},
                                           {"config_file", options_.config_file}});
    metrics_.config_last_reload_successful.Add({}).Set(1);
    metrics_.config_last_reload_success_timestamp.Add({}).Set(
        static_cast<double>(unix_nanos(clock_.now())) / 1e9);
    for (auto& sink : fanout_->sinks()) sink->start();

    int exit_code = 0;
    asio::co_spawn(io_, main_task(), [&](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          telemetry::log_error("fatal", {{"error", ex.what()}});
        }
        exit_code = 1;
      }
      io_.stop();
    });
    // On its own thread rather than main, so the process keeps its name (comm) `pprofd`.
    std::exception_ptr failure;
    std::thread io_thread([&] {
      set_thread_name("pprofd-io");
      try {
        io_.run();
      } catch (...) {
        failure = std::current_exception();
      }
    });
    io_thread.join();
    if (failure) std::rethrow_exception(failure);
    workers_.join();
    return exit_code;
  }

 private:
  server::AdminViews admin_views() {
    return {
        [this] { return metrics_.render(); },
        [this] { return ready_ && (!kube_ || kube_->synced()); },
        [this] { return manager_->snapshot(); },
        [this] {
          asio::post(io_, [this] {
            reload_wanted_ = true;
            signals_.cancel();
          });
        },
        [this] { return kube_ ? kube_->dropped() : std::vector<discovery::DroppedCandidate>{}; }};
  }

  asio::awaitable<void> main_task() {
    static_groups_ = config_.static_configs.size();
    co_await manager_->sync(discovery::static_target_groups(config_));
    ready_ = true;
    if (kube_) {
      auto task = kube_->run();
      asio::co_spawn(io_, std::move(task),
                     asio::bind_cancellation_slot(stop_kube_.slot(), [this](std::exception_ptr e) {
                       if (e) telemetry::log_error("kubernetes discovery ended unexpectedly");
                       kube_stopped_ = true;
                       kube_done_.cancel();
                     }));
    }
    telemetry::log_info("targets synced", {{"loops", std::to_string(manager_->loop_count())}});

    while (true) {
      // A reload asked for while the previous one ran is done before waiting again.
      if (std::exchange(reload_wanted_, false)) {
        co_await reload();
        continue;
      }
      auto [ec, signal] = co_await signals_.async_wait(use_tuple);
      if (ec) continue;  // cancelled by POST /-/reload: reload_wanted_ is set
      if (signal == SIGHUP) {
        reload_wanted_ = true;
        continue;
      }
      // SIGTERM/SIGINT win over any pending reload.
      telemetry::log_info("shutting down", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
      break;
    }
    co_await shutdown();
  }

  asio::awaitable<void> reload() {
    auto loaded = load(options_);
    if (!loaded.config) {
      for (const auto& e : loaded.errors)
        telemetry::log_error("reload failed", {{"error", e.to_string()}});
      metrics_.config_last_reload_successful.Add({}).Set(0);
      co_return;
    }
    auto settings = scrape_settings(*loaded.config);
    if (!settings) {
      telemetry::log_error("reload failed", {{"error", settings.error().to_string()}});
      metrics_.config_last_reload_successful.Add({}).Set(0);
      co_return;
    }
    if (loaded.config->sinks != config_.sinks || loaded.config->server != config_.server ||
        loaded.config->shutdown_timeout != config_.shutdown_timeout)
      telemetry::log_warn("sinks, server and shutdown_timeout changes take effect after a restart");
    // The instance seed is fixed per process, so unchanged settings compare equal and keep
    // every loop (and its delta baseline) running.
    if (loaded.config->kubernetes.enabled != config_.kubernetes.enabled ||
        loaded.config->kubernetes.kubeconfig != config_.kubernetes.kubeconfig ||
        loaded.config->kubernetes.namespaces != config_.kubernetes.namespaces ||
        loaded.config->kubernetes.label_selector != config_.kubernetes.label_selector ||
        loaded.config->kubernetes.field_selector != config_.kubernetes.field_selector ||
        loaded.config->kubernetes.node_name != config_.kubernetes.node_name)
      telemetry::log_warn(
          "changes to what the Kubernetes watch selects take effect after a restart");
    co_await manager_->update_settings(std::move(*settings));
    config_.scrape = loaded.config->scrape;
    config_.profiles = loaded.config->profiles;
    config_.static_configs = loaded.config->static_configs;
    config_.kubernetes = loaded.config->kubernetes;
    co_await manager_->sync(discovery::static_target_groups(config_, static_groups_));
    if (kube_) kube_->update_config(config_);
    static_groups_ = config_.static_configs.size();
    metrics_.config_last_reload_successful.Add({}).Set(1);
    metrics_.config_last_reload_success_timestamp.Add({}).Set(
        static_cast<double>(unix_nanos(clock_.now())) / 1e9);
    telemetry::log_info("configuration reloaded",
                        {{"loops", std::to_string(manager_->loop_count())}});
  }

  // Stop scraping (cancelling pulls in flight), flush the sinks, then close the server — all
  // within shutdown_timeout; whatever is still queued at the deadline is counted as dropped.
  asio::awaitable<void> shutdown() {
    using namespace asio::experimental::awaitable_operators;
    const auto deadline = std::chrono::steady_clock::now() + config_.shutdown_timeout;
    asio::steady_timer timer(io_, deadline);
    if (kube_ && !kube_stopped_) {
      stop_kube_.emit(asio::cancellation_type::terminal);
      co_await (kube_done_.async_wait(use_tuple) || timer.async_wait(use_tuple));
      timer.expires_at(deadline);
    }
    auto stopped = co_await (manager_->stop() || timer.async_wait(use_tuple));
    if (stopped.index() == 1) telemetry::log_warn("scrape loops did not stop before the deadline");
    bool complete = true;
    for (auto& sink : fanout_->sinks()) complete = co_await sink->drain(deadline) && complete;
    if (!complete) telemetry::log_warn("some queued profiles were dropped at shutdown");
    co_await admin_.stop();
    telemetry::log_info("shutdown complete");
  }

  const Options& options_;
  config::Config config_;
  asio::io_context io_{1};
  std::size_t worker_threads_;
  asio::thread_pool workers_;
  telemetry::Metrics metrics_;
  SystemClock clock_;
  std::unique_ptr<sinks::Fanout> fanout_;
  std::unique_ptr<scrape::ScrapeManager> manager_;
  std::unique_ptr<discovery::KubernetesDiscovery> kube_;
  asio::cancellation_signal stop_kube_;
  asio::steady_timer kube_done_{io_, asio::steady_timer::time_point::max()};
  bool kube_stopped_ = false;
  http::Server admin_;
  asio::signal_set signals_;
  bool ready_ = false;
  bool reload_wanted_ = false;
  std::size_t static_groups_ = 0;
};

}  // namespace

ParsedArgs parse_args(const std::vector<std::string>& args) {
  ParsedArgs parsed;
  auto& o = parsed.options;
  bool command_seen = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help" || arg == "help") {
      parsed.help = true;
      continue;
    }
    if (arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2), value;
      const auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        parsed.error = "flag --" + name + " needs a value";
        return parsed;
      }
      if (name == "config.file")
        o.config_file = value;
      else if (name == "log.level")
        o.log_level = value;
      else if (name == "log.format")
        o.log_format = value;
      else if (name == "web.listen-address")
        o.listen_address = value;
      else {
        parsed.error = "unknown flag --" + name;
        return parsed;
      }
      continue;
    }
    if (command_seen) {
      parsed.error = "unexpected argument \"" + arg + "\"";
      return parsed;
    }
    if (arg != "run" && arg != "check-config" && arg != "version") {
      parsed.error = arg == "capture" ? "command \"capture\" is not available in this build yet"
                                      : "unknown command \"" + arg + "\"";
      return parsed;
    }
    o.command = arg;
    command_seen = true;
  }
  return parsed;
}

int check_config(const Options& options) {
  auto loaded = load(options);
  if (!loaded.config) {
    print_config_errors(loaded.errors);
    return 2;
  }
  if (auto settings = scrape_settings(*loaded.config); !settings) {
    print_config_errors({settings.error()});
    return 2;
  }
  std::size_t targets = 0;
  for (const auto& s : loaded.config->static_configs) targets += s.targets.size();
  std::cout << "config OK: " << targets << " static targets, " << loaded.config->sinks.size()
            << " sinks, kubernetes discovery "
            << (loaded.config->kubernetes.enabled ? "enabled" : "disabled") << "\n";
  return 0;
}

int run(const Options& options) {
  auto loaded = load(options);
  if (!loaded.config) {
    print_config_errors(loaded.errors);
    return 2;
  }
  config::Config config = std::move(*loaded.config);
  if (!options.listen_address.empty()) {
    std::string why;
    if (!config::parse_host_port(options.listen_address, &why, /*allow_port_zero=*/true)) {
      std::cerr << "pprofd: --web.listen-address: " << why << "\n";
      return 2;
    }
    config.server.listen_address = options.listen_address;
  }
  auto settings = scrape_settings(config);
  if (!settings) {
    print_config_errors({settings.error()});
    return 2;
  }

  std::signal(SIGPIPE, SIG_IGN);
  raise_open_files_limit();
  Daemon daemon(options, std::move(config));
  if (auto ok = daemon.init(std::move(*settings)); !ok) {
    telemetry::log_error("startup failed", {{"error", ok.error().message}});
    return 1;
  }
  return daemon.run();
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parse_args(args);
  if (parsed.help) {
    std::cout << usage_text;
    return 0;
  }
  if (!parsed.error.empty()) {
    std::cerr << "pprofd: " << parsed.error << "\n\n" << usage_text;
    return 2;
  }
  const auto& o = parsed.options;
  if (!telemetry::setup_logging(o.log_level, o.log_format)) {
    std::cerr << "pprofd: invalid --log.level or --log.format\n";
    return 2;
  }
  if (o.command == "version") {
    const auto& info = telemetry::build_info();
    std::cout << "pprofd version " << info.version << " (revision " << info.revision << ", "
              << info.compiler << ")\n";
    return 0;
  }
  if (o.command == "check-config") return check_config(o);
  return run(o);
}

}  // namespace pprofd::app
