// `emr serve`: the server in the foreground, with a graceful drain on SIGTERM/SIGINT.

#include "actors/fleet_budget.hpp"
#include "actors/scheduler.hpp"
#include "cli/admin_secret.hpp"
#include "cli/commands.hpp"
#include "cli/config.hpp"
#include "cli/logging.hpp"
#include "http/caller_text.hpp"
#include "http/provider_records.hpp"
#include "http/replica_sync.hpp"
#include "http/server.hpp"
#include "providers/fresh_pages.hpp"
#include "storage/database_url.hpp"
#include "storage/fleet_ledger.hpp"
#include "storage/postgres_changes.hpp"
#include "storage/postgres_store.hpp"
#include "storage/sqlite_store.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <thread>
#include <unistd.h>

namespace emr {

namespace {

struct serve_options {
  std::string config_path;
  std::string port_file;
};

void write_port_file(const std::string& path, int port) {
  auto tmp = path + ".tmp";
  {
    std::ofstream out{tmp};
    out << port << "\n";
  }
  std::filesystem::rename(tmp, path);
}

// Blocks the stop signals in every thread (CAF's and httplib's inherit the mask), so that one
// dedicated thread can take them with sigwait.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR2); // internal: wakes the signal thread when serving ends otherwise
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return set;
}

/// Stops the fleet budget actor on every way out of `serve`, leaving the fleet so that the others'
/// shares of each limit grow at once. The handle goes too: the actor system waits for a detached
/// actor's thread, which waits until no handle to it is left.
struct fleet_budget_stop {
  fleet_budget_actor& fleet;
  ~fleet_budget_stop() {
    if (!fleet)
      return;
    caf::anon_send_exit(fleet, caf::exit_reason::user_shutdown);
    fleet = fleet_budget_actor{};
  }
};

/// This replica's name in the fleet's ledger: the host and process, made unique by a random part
/// (a restarted container may reuse both).
std::string replica_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return fmt::format("{}:{}:{:08x}", host, getpid(), std::random_device{}());
}

// The store the config names: EMR_DATABASE_URL, else [storage] url (PostgreSQL, shared by a
// fleet), else the SQLite file at [storage] path. The URL may hold a password, so it is taken from
// the environment rather than printed anywhere but redacted.
std::unique_ptr<store> open_store(emr_config& config) {
  if (auto url = std::getenv("EMR_DATABASE_URL"); url && *url)
    config.storage_url = url;
  if (!config.storage_url.empty())
    return std::make_unique<postgres_store>(config.storage_url);
  return std::make_unique<sqlite_store>(config.storage_path);
}

// The embedding cache's own connection to the same store (open_store has resolved the URL): its
// reads sit in callers' paths, so they never queue behind key checks and usage writes, and a
// PostgreSQL that stops answering costs a caller a second, not a connect timeout. The server
// ends a slow statement first (its clock starts after the connection's), so a slow read leaves
// the connection open.
std::unique_ptr<store> open_cache_store(const emr_config& config) {
  if (!config.storage_url.empty())
    return std::make_unique<postgres_store>(config.storage_url, 1, "-c statement_timeout=800");
  return std::make_unique<sqlite_store>(config.storage_path);
}

std::string store_description(const emr_config& config) {
  return config.storage_url.empty() ? config.storage_path
                                    : redacted_database_url(config.storage_url);
}

// Ends the process when a drain outlasts shutdown_timeout or a second signal comes. serve()
// declares it before the actor system, so it still bounds the wait for the actors' last upstream
// calls when the system is torn down, and is woken and joined before logging stops.
class drain_deadline {
public:
  void start(std::chrono::seconds timeout, sigset_t signals) {
    thread_ = std::jthread{[timeout, signals] {
      auto deadline = std::chrono::steady_clock::now() + timeout;
      int sig = -1;
      do {
        // A wait interrupted (a debugger or the leak checker stopping every thread) is no
        // deadline: wait again for the time left.
        auto left = std::max(std::chrono::nanoseconds{deadline - std::chrono::steady_clock::now()},
                             std::chrono::nanoseconds{0});
        timespec wait{static_cast<time_t>(left.count() / 1'000'000'000),
                      static_cast<long>(left.count() % 1'000'000'000)};
        sig = sigtimedwait(&signals, nullptr, &wait);
      } while (sig < 0 && errno == EINTR);
      if (sig == SIGUSR2)
        return; // drained in time
      int code = sig > 0 ? 130 : 1;
      warn_before_exit(code == 1
                           ? "the drain took longer than " + std::to_string(timeout.count()) +
                                 " s; exiting before it finished"
                           : std::string{"a second signal: exiting before the drain finished"});
      std::_Exit(code);
    }};
  }
  ~drain_deadline() {
    if (thread_.joinable()) {
      kill(getpid(), SIGUSR2);
      thread_.join();
    }
  }

private:
  std::jthread thread_;
};

int serve(const serve_options& options) {
  tune_the_allocator();
  auto signals = block_stop_signals();
  auto path = resolve_config_path(options.config_path);
  loaded_config loaded;
  if (!path.empty()) {
    loaded = load_config(path);
    if (!loaded.problems.empty()) {
      for (const auto& p : loaded.problems)
        std::cerr << p << "\n";
      throw command_failure("configuration " + path + " has " +
                            std::to_string(loaded.problems.size()) +
                            " problem(s); fix them or check with `emr config validate`");
    }
  }
  auto& config = loaded.config;
  auto raw_secret = std::getenv("EMR_ADMIN_SECRET");
  auto secret = admin_secret_from(raw_secret ? raw_secret : "", "EMR_ADMIN_SECRET");
  if (secret.empty())
    throw command_failure("EMR_ADMIN_SECRET is not set; set it to the admin API's secret");
  if (secret.size() < 16)
    throw command_failure("EMR_ADMIN_SECRET must be at least 16 bytes long");
  setup_logging(config.log);

  drain_deadline deadline;
  auto store = open_store(config);
  auto& db = *store;
  caf::actor_system_config caf_config;
  // The workers share one queue of ready actors and sleep on it when idle (actors/ready_queue);
  // timers are kept without waking a thread for each (actors/timer_clock).
  caf_config.load<scheduler>();
  caf::actor_system system{caf_config};
  auto arriving = std::make_shared<arrivals>();
  config.batching.arriving = arriving;
  // In a fleet, the providers' limits are shared by every replica through the shared store.
  if (!config.storage_url.empty())
    config.batching.fleet = system.spawn<caf::detached>(
        fleet_budget, std::make_unique<fleet_ledger>(config.storage_url, replica_name()),
        std::chrono::milliseconds{1000});
  fleet_budget_stop fleet_stop{config.batching.fleet};
  provider_directory directory{system, config.batching, config.health, config.restarts};
  // A record that cannot run (written by an older emr or by hand) is reported and skipped: the
  // others still serve, and `emr providers list` shows why.
  for (const auto& record : db.providers()) {
    if (auto problem = check_provider(record))
      spdlog::warn("provider {} is not started: {}", json_quoted(record.name), problem->message);
    else if (record.enabled)
      directory.start(to_spec(record));
  }
  caller_auth auth{db, config.argon2, config.auth};
  key_usage_meter usage{db};
  key_quotas quotas{usage};
  quotas.load(db.keys());
  auto cache = std::make_shared<embedding_cache>(config.cache);
  std::unique_ptr<emr::store> cache_db;
  std::optional<stored_cache> stored;
  if (config.cache.stored_entries > 0 && cache->enabled()) {
    cache_db = open_cache_store(config);
    stored.emplace(*cache_db, *cache, config.cache.stored_entries);
  } else if (config.cache.stored_entries > 0)
    spdlog::warn("[cache] stored_entries is ignored: max_bytes = 0 turns the cache off");
  app a{system,
        db,
        directory,
        auth,
        *arriving,
        usage,
        quotas,
        cache,
        stored ? &*stored : nullptr,
        config.http,
        secret,
        config_json(config),
        std::chrono::steady_clock::now(),
        {0},
        {0},
        {}};
  http_server server{a};
  int port = server.bind();
  if (port < 0)
    throw command_failure("cannot listen on " + config.http.host + ":" +
                          std::to_string(config.http.port));
  if (!options.port_file.empty())
    write_port_file(options.port_file, port);
  spdlog::info("emr {} listening on http://{}:{} ({} providers, store {})", EMR_VERSION,
               config.http.host, port, directory.specs().size(), store_description(config));
  // In a fleet, what the other replicas change in the shared store reaches this one.
  replica_sync sync{db, auth, quotas, directory};
  std::optional<postgres_changes> changes;
  if (!config.storage_url.empty())
    changes.emplace(config.storage_url, [&sync, &config](change_topic topic) {
      if (topic == change_topic::keys)
        sync.keys_changed();
      else if (topic == change_topic::providers)
        sync.providers_changed();
      else if (config.batching.fleet)
        caf::anon_send(config.batching.fleet, atom::pause::value);
    });

  std::atomic<bool> stopping{false};
  std::jthread signal_watch{[&, shutdown_timeout = config.shutdown_timeout] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGUSR2)
      return;
    stopping = true;
    spdlog::info("received {}; draining (a second signal exits at once)", strsignal(sig));
    // A draining replica starts no provider another one added.
    changes.reset();
    directory.hurry_all();
    deadline.start(shutdown_timeout, signals);
    // Connections already in the kernel's accept queue are callers too: let the accept loop
    // take them before the listening socket closes.
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
    server.stop();
  }};
  server.run();
  // run() can also end without a signal (a failed listener); wake the watcher then.
  if (!stopping)
    kill(getpid(), SIGUSR2);
  signal_watch.join();
  changes.reset();
  auth.flush_last_used();
  usage.flush();
  directory.drain_all();
  spdlog::info("drained; bye");
  return 0;
}

} // namespace

void add_serve_command(CLI::App& app) {
  auto options = std::make_shared<serve_options>();
  auto cmd = app.add_subcommand("serve", "Run the router in the foreground");
  cmd->add_option("--config", options->config_path, "TOML config (default ./emr.toml if present)");
  cmd->add_option("--port-file", options->port_file, "Write the bound port here once listening");
  cmd->callback([options] {
    // Logging stops only once serve() has torn everything down, actors included.
    int code = serve(*options);
    stop_logging();
    if (code != 0)
      std::exit(code);
  });
}

} // namespace emr
