#include "cli/config.hpp"

#include "storage/database_url.hpp"

#include <boost/json.hpp>
#include <toml.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>

namespace json = boost::json;

namespace emr {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

enum class kind { integer, string, boolean };

struct config_key {
  std::string_view section;
  std::string_view key;
  std::string_view doc;
  kind type;
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::function<std::optional<std::string>(emr_config&, const toml::value&)> set;
  std::function<json::value(const emr_config&)> get;
};

config_key integer_key(std::string_view section, std::string_view key, std::string_view doc,
                       std::int64_t min, std::int64_t max,
                       std::function<void(emr_config&, std::int64_t)> set,
                       std::function<std::int64_t(const emr_config&)> get) {
  return config_key{section,
                    key,
                    doc,
                    kind::integer,
                    min,
                    max,
                    [set](emr_config& c, const toml::value& v) -> std::optional<std::string> {
                      set(c, v.as_integer());
                      return std::nullopt;
                    },
                    [get](const emr_config& c) { return json::value(get(c)); }};
}

config_key
string_key(std::string_view section, std::string_view key, std::string_view doc,
           std::function<std::optional<std::string>(emr_config&, const std::string&)> set,
           std::function<std::string(const emr_config&)> get) {
  return config_key{
      section,
      key,
      doc,
      kind::string,
      0,
      0,
      [set](emr_config& c, const toml::value& v) { return set(c, v.as_string().str); },
      [get](const emr_config& c) { return json::value(get(c)); }};
}

std::optional<std::string> set_bind(emr_config& c, const std::string& bind) {
  auto colon = bind.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return "bind must be HOST:PORT";
  int port = 0;
  try {
    std::size_t used = 0;
    port = std::stoi(bind.substr(colon + 1), &used);
    if (used != bind.size() - colon - 1)
      return "bind must be HOST:PORT";
  } catch (...) {
    return "bind must be HOST:PORT";
  }
  if (port < 0 || port > 65535)
    return "port must be 0 to 65535";
  c.http.host = bind.substr(0, colon);
  c.http.port = port;
  return std::nullopt;
}

// The table: one line of truth per key.
const std::vector<config_key>& keys() {
  static const std::vector<config_key> table{
      string_key(
          "server", "bind", "Address and port to listen on (port 0 picks a free one).", set_bind,
          [](const emr_config& c) { return c.http.host + ":" + std::to_string(c.http.port); }),
      integer_key(
          "server", "threads", "HTTP worker threads; a caller holds one while its request is read.",
          16, 65536, [](emr_config& c, std::int64_t v) { c.http.threads = v; },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.http.threads); }),
      integer_key(
          "server", "prewritten_heap_kib",
          "Heap each HTTP thread writes as it starts, so that a fresh server's first burst does "
          "not fault in a page at a time; 0: none.",
          0, 65536, [](emr_config& c, std::int64_t v) { c.http.prewritten_heap_bytes = v * 1024; },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.http.prewritten_heap_bytes / 1024);
          }),
      integer_key(
          "server", "max_connections", "Open connections beyond which new ones are refused.", 16,
          1'000'000, [](emr_config& c, std::int64_t v) { c.http.max_connections = v; },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.http.max_connections); }),
      integer_key(
          "server", "read_timeout_s", "Longest wait for a client's bytes.", 1, 3600,
          [](emr_config& c, std::int64_t v) { c.http.read_timeout = seconds{v}; },
          [](const emr_config& c) { return c.http.read_timeout.count(); }),
      integer_key(
          "server", "write_timeout_s", "Longest wait for a client to take our bytes.", 1, 3600,
          [](emr_config& c, std::int64_t v) { c.http.write_timeout = seconds{v}; },
          [](const emr_config& c) { return c.http.write_timeout.count(); }),
      integer_key(
          "server", "request_read_timeout_s",
          "A request's head, and then its body, must arrive within this.", 1, 3600,
          [](emr_config& c, std::int64_t v) { c.http.request_read_timeout = seconds{v}; },
          [](const emr_config& c) { return c.http.request_read_timeout.count(); }),
      integer_key(
          "server", "keep_alive_timeout_s", "Idle keep-alive connections close after this.", 1,
          3600, [](emr_config& c, std::int64_t v) { c.http.keep_alive_timeout = seconds{v}; },
          [](const emr_config& c) { return c.http.keep_alive_timeout.count(); }),
      integer_key(
          "server", "deadline_ms", "Every caller gets an answer (504 at worst) within this.", 100,
          3'600'000, [](emr_config& c, std::int64_t v) { c.http.deadline = milliseconds{v}; },
          [](const emr_config& c) { return c.http.deadline.count(); }),
      integer_key(
          "server", "shutdown_timeout_s", "Longest drain on SIGTERM before exiting.", 1, 3600,
          [](emr_config& c, std::int64_t v) { c.shutdown_timeout = seconds{v}; },
          [](const emr_config& c) { return c.shutdown_timeout.count(); }),
      integer_key(
          "limits", "max_body_bytes", "Largest request body.", 1024, 1LL << 30,
          [](emr_config& c, std::int64_t v) { c.http.max_body_bytes = v; },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.http.max_body_bytes); }),
      integer_key(
          "limits", "max_texts_per_request", "Most texts in one request's input.", 1, 1'000'000,
          [](emr_config& c, std::int64_t v) { c.http.limits.max_texts = v; },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.http.limits.max_texts); }),
      integer_key(
          "limits", "max_text_bytes", "Longest single text.", 1, 1LL << 30,
          [](emr_config& c, std::int64_t v) { c.http.limits.max_text_bytes = v; },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.http.limits.max_text_bytes);
          }),
      integer_key(
          "limits", "max_batch_requests", "Most sub-requests in one /v1/embeddings/batch call.", 1,
          100'000, [](emr_config& c, std::int64_t v) { c.http.max_batch_requests = v; },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.http.max_batch_requests); }),
      integer_key(
          "limits", "max_batch_texts", "Most texts across all sub-requests of one batch call.", 1,
          1'000'000, [](emr_config& c, std::int64_t v) { c.http.limits.max_batch_texts = v; },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.http.limits.max_batch_texts);
          }),
      integer_key(
          "limits", "max_response_bytes", "Most bytes of vectors one answer may hold (413 beyond).",
          1024, 1LL << 40,
          [](emr_config& c, std::int64_t v) { c.http.limits.max_response_bytes = v; },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.http.limits.max_response_bytes);
          }),
      integer_key(
          "limits", "max_queued_texts", "Texts a provider may queue before callers get 503.", 1,
          100'000'000, [](emr_config& c, std::int64_t v) { c.batching.max_queued_texts = v; },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.batching.max_queued_texts);
          }),
      string_key(
          "storage", "path", "SQLite database file (created mode 0600).",
          [](emr_config& c, const std::string& v) -> std::optional<std::string> {
            if (v.empty())
              return "path must not be empty";
            c.storage_path = v;
            return std::nullopt;
          },
          [](const emr_config& c) { return c.storage_path; }),
      string_key(
          "storage", "url",
          "PostgreSQL database shared by every replica (postgresql://user:password@host:port/db); "
          "empty: the SQLite file at path. EMR_DATABASE_URL wins over both.",
          [](emr_config& c, const std::string& v) -> std::optional<std::string> {
            if (!v.empty() && !v.starts_with("postgresql://") && !v.starts_with("postgres://"))
              return "url must start with postgresql://";
            c.storage_url = v;
            return std::nullopt;
          },
          // Shown by `emr config show` and GET /admin/config: never the password.
          [](const emr_config& c) { return redacted_database_url(c.storage_url); }),
      integer_key(
          "batching", "window_ms", "Longest a text waits for company before it is sent.", 0, 10'000,
          [](emr_config& c, std::int64_t v) { c.batching.flush.window = milliseconds{v}; },
          [](const emr_config& c) {
            return duration_cast<milliseconds>(c.batching.flush.window).count();
          }),
      // Not 0: a batch waiting for requests still being read looks again a linger later, and
      // would look again at once, in a loop, while they are read.
      integer_key(
          "batching", "linger_us", "A held batch goes once arrivals pause this long.", 1, 1'000'000,
          [](emr_config& c, std::int64_t v) {
            c.batching.flush.linger = std::chrono::microseconds{v};
          },
          [](const emr_config& c) {
            return duration_cast<std::chrono::microseconds>(c.batching.flush.linger).count();
          }),
      integer_key(
          "batching", "coalesce_us", "After a quiet spell, how long a first text waits for others.",
          0, 1'000'000,
          [](emr_config& c, std::int64_t v) {
            c.batching.flush.coalesce = std::chrono::microseconds{v};
          },
          [](const emr_config& c) {
            return duration_cast<std::chrono::microseconds>(c.batching.flush.coalesce).count();
          }),
      integer_key(
          "batching", "reuse_ms",
          "Identical texts asked again this soon after a call are answered from it.", 0, 60'000,
          [](emr_config& c, std::int64_t v) { c.batching.reuse = milliseconds{v}; },
          [](const emr_config& c) { return c.batching.reuse.count(); }),
      integer_key(
          "batching", "initial_concurrency", "Concurrent upstream calls per provider at start.", 1,
          1024, [](emr_config& c, std::int64_t v) { c.batching.flush.initial_concurrency = v; },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.batching.flush.initial_concurrency);
          }),
      integer_key(
          "batching", "max_concurrency", "Most concurrent upstream calls per provider.", 1, 1024,
          [](emr_config& c, std::int64_t v) { c.batching.flush.max_concurrency = v; },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.batching.flush.max_concurrency);
          }),
      integer_key(
          "retry", "max_retries", "Retries of one upstream call after its first attempt.", 0, 10,
          [](emr_config& c, std::int64_t v) { c.batching.retry.max_retries = static_cast<int>(v); },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.batching.retry.max_retries);
          }),
      integer_key(
          "retry", "attempt_cap_ms", "Longest single wait between attempts.", 0, 600'000,
          [](emr_config& c, std::int64_t v) { c.batching.retry.attempt_cap = milliseconds{v}; },
          [](const emr_config& c) { return c.batching.retry.attempt_cap.count(); }),
      integer_key(
          "retry", "budget_ms",
          "No retry of a call starts later than this after its first attempt.", 0, 3'600'000,
          [](emr_config& c, std::int64_t v) { c.batching.retry.budget = milliseconds{v}; },
          [](const emr_config& c) { return c.batching.retry.budget.count(); }),
      integer_key(
          "retry", "base_ms", "First backoff ceiling when the provider names no wait.", 1, 600'000,
          [](emr_config& c, std::int64_t v) { c.batching.retry.base = milliseconds{v}; },
          [](const emr_config& c) { return c.batching.retry.base.count(); }),
      integer_key(
          "upstream", "connect_timeout_s", "Longest wait to connect to a provider.", 1, 600,
          [](emr_config& c, std::int64_t v) { c.batching.upstream.connect_timeout = seconds{v}; },
          [](const emr_config& c) { return c.batching.upstream.connect_timeout.count(); }),
      integer_key(
          "upstream", "timeout_s", "Longest wait for a provider's answer.", 1, 3600,
          [](emr_config& c, std::int64_t v) { c.batching.upstream.read_timeout = seconds{v}; },
          [](const emr_config& c) { return c.batching.upstream.read_timeout.count(); }),
      integer_key(
          "health", "window_s", "Rolling window of the per-provider metrics.", 1, 86'400,
          [](emr_config& c, std::int64_t v) { c.health.window = seconds{v}; },
          [](const emr_config& c) { return c.health.window.count(); }),
      integer_key(
          "health", "failure_threshold", "Consecutive failures that sin-bin a provider.", 1, 1000,
          [](emr_config& c, std::int64_t v) { c.health.failure_threshold = static_cast<int>(v); },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.health.failure_threshold);
          }),
      integer_key(
          "health", "sin_bin_s", "First sin-bin; doubles on each re-entry.", 1, 86'400,
          [](emr_config& c, std::int64_t v) { c.health.sin_bin_base = seconds{v}; },
          [](const emr_config& c) { return c.health.sin_bin_base.count(); }),
      integer_key(
          "health", "sin_bin_max_s", "Longest sin-bin.", 1, 86'400,
          [](emr_config& c, std::int64_t v) { c.health.sin_bin_max = seconds{v}; },
          [](const emr_config& c) { return c.health.sin_bin_max.count(); }),
      integer_key(
          "health", "probe_interval_s",
          "Longest gap between recovery probes of a sin-binned provider (at most half its "
          "sin-bin).",
          1, 86'400, [](emr_config& c, std::int64_t v) { c.health.probe_interval = seconds{v}; },
          [](const emr_config& c) { return c.health.probe_interval.count(); }),
      integer_key(
          "health", "max_restarts",
          "Restarts of a crashed batcher (or health actor) within restart_window_s; past it, "
          "it stays down and is reported failed.",
          0, 1000,
          [](emr_config& c, std::int64_t v) { c.restarts.max_restarts = static_cast<int>(v); },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.restarts.max_restarts); }),
      integer_key(
          "health", "restart_window_s", "The window max_restarts counts over.", 1, 86'400,
          [](emr_config& c, std::int64_t v) { c.restarts.window = seconds{v}; },
          [](const emr_config& c) { return c.restarts.window.count(); }),
      integer_key(
          "auth", "argon2_t_cost", "argon2id passes for caller keys (OWASP: 2).", 1, 100,
          [](emr_config& c, std::int64_t v) { c.argon2.t_cost = static_cast<std::uint32_t>(v); },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.argon2.t_cost); }),
      integer_key(
          "auth", "argon2_m_cost_kib", "argon2id memory in KiB (OWASP: 19456).", 8, 4'194'304,
          [](emr_config& c, std::int64_t v) {
            c.argon2.m_cost_kib = static_cast<std::uint32_t>(v);
          },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.argon2.m_cost_kib); }),
      integer_key(
          "auth", "failures_per_minute_per_key",
          "Failed key verifications per key id per minute; then 429.", 1, 1'000'000,
          [](emr_config& c, std::int64_t v) {
            c.auth.failures_per_minute_per_key = static_cast<std::uint32_t>(v);
          },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.auth.failures_per_minute_per_key);
          }),
      integer_key(
          "auth", "failures_per_minute_per_address",
          "Failed key verifications per client address per minute; then 429.", 1, 1'000'000,
          [](emr_config& c, std::int64_t v) {
            c.auth.failures_per_minute_per_address = static_cast<std::uint32_t>(v);
          },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.auth.failures_per_minute_per_address);
          }),
      integer_key(
          "auth", "max_concurrent_verifications",
          "argon2 runs at once (0: half the cores, at least 1).", 0, 1024,
          [](emr_config& c, std::int64_t v) {
            c.auth.max_concurrent_verifications = static_cast<std::uint32_t>(v);
          },
          [](const emr_config& c) {
            return static_cast<std::int64_t>(c.auth.max_concurrent_verifications);
          }),
      integer_key(
          "auth", "verification_wait_ms", "Longest wait for a free argon2 run; then 503.", 0,
          60'000, [](emr_config& c, std::int64_t v) { c.auth.verification_wait = milliseconds{v}; },
          [](const emr_config& c) { return c.auth.verification_wait.count(); }),
      integer_key(
          "cache", "max_bytes",
          "Most bytes the embedding cache's vectors and bookkeeping take; 0 turns it off.", 0,
          1LL << 40, [](emr_config& c, std::int64_t v) { c.cache.max_bytes = v; },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.cache.max_bytes); }),
      integer_key(
          "cache", "ttl_s", "How long a cached vector answers again.", 1, 365LL * 24 * 3600,
          [](emr_config& c, std::int64_t v) { c.cache.ttl = std::chrono::seconds{v}; },
          [](const emr_config& c) { return c.cache.ttl.count(); }),
      integer_key(
          "cache", "stored_entries",
          "Most vectors also kept in the store, for restarts and the other replicas of a fleet; "
          "0 keeps them in memory only.",
          0, 1LL << 32, [](emr_config& c, std::int64_t v) { c.cache.stored_entries = v; },
          [](const emr_config& c) { return static_cast<std::int64_t>(c.cache.stored_entries); }),
      string_key(
          "log", "level", "trace, debug, info, warn, error or off.",
          [](emr_config& c, const std::string& v) -> std::optional<std::string> {
            static const std::set<std::string> levels{"trace", "debug", "info",
                                                      "warn",  "error", "off"};
            if (!levels.count(v))
              return "level must be one of trace, debug, info, warn, error, off";
            c.log.level = v;
            return std::nullopt;
          },
          [](const emr_config& c) { return c.log.level; }),
      string_key(
          "log", "format", "\"text\" or \"json\" (one object per line).",
          [](emr_config& c, const std::string& v) -> std::optional<std::string> {
            if (v != "text" && v != "json")
              return "format must be \"text\" or \"json\"";
            c.log.format = v;
            return std::nullopt;
          },
          [](const emr_config& c) { return c.log.format; }),
  };
  return table;
}

// What toml11 3.7 mishandles, refused before it reads the text. It recurses once per level of
// nested arrays and inline tables and once per part of a dotted key, so some thousands of levels
// overflow the stack (each level costing quadratic time); no level comes without its '[', '{' or
// '.', and emr.toml needs few: its keys are section.key with plain values. And its error path
// for invalid UTF-8 in a literal string reads past the text; TOML must be UTF-8 anyway.
std::optional<std::string> toml11_hazard(std::string_view text, const std::string& origin) {
  if (std::count_if(text.begin(), text.end(), [](char c) { return c == '[' || c == '{'; }) > 100)
    return origin + ": more than 100 '[' and '{'; emr.toml's values are never nested";
  if (std::count(text.begin(), text.end(), '.') > 1000)
    return origin + ": more than 1000 '.'; emr.toml's keys are section.key";
  if (auto bad = toml::detail::check_utf8_validity(std::string{text}); bad >= 0)
    return origin + ":" + std::to_string(std::count(text.begin(), text.begin() + bad, '\n') + 1) +
           ": not valid UTF-8, which TOML requires";
  return std::nullopt;
}

// A plain loop rather than std::find_if: clang before 16 cannot capture the structured
// bindings the caller holds the names in, and the fuzz build uses clang.
const config_key* find_key(std::string_view section, std::string_view key) {
  for (const auto& k : keys())
    if (k.section == section && k.key == key)
      return &k;
  return nullptr;
}

std::string type_name(kind k) {
  switch (k) {
  case kind::integer:
    return "an integer";
  case kind::string:
    return "a string";
  case kind::boolean:
    return "true or false";
  }
  return "a value";
}

bool has_type(const toml::value& v, kind k) {
  switch (k) {
  case kind::integer:
    return v.is_integer();
  case kind::string:
    return v.is_string();
  case kind::boolean:
    return v.is_boolean();
  }
  return false;
}

} // namespace

loaded_config parse_config(std::string_view text, const std::string& origin) {
  loaded_config out;
  if (auto hazard = toml11_hazard(text, origin)) {
    out.problems.push_back(*hazard);
    return out;
  }
  toml::value root;
  try {
    std::istringstream in{std::string{text}};
    root = toml::parse(in, origin);
  } catch (const std::exception& e) {
    out.problems.push_back(std::string{e.what()});
    return out;
  }
  auto where = [&](const toml::value& v) {
    return origin + ":" + std::to_string(v.location().line()) + ": ";
  };
  for (const auto& [section, table] : root.as_table()) {
    if (!table.is_table()) {
      out.problems.push_back(where(table) + "'" + section + "' must be a table like [" + section +
                             "]");
      continue;
    }
    for (const auto& [key, value] : table.as_table()) {
      auto known = find_key(section, key);
      if (!known) {
        out.problems.push_back(where(value) + "unknown key '" + section + "." + key + "'");
        continue;
      }
      if (!has_type(value, known->type)) {
        out.problems.push_back(where(value) + "'" + section + "." + key + "' must be " +
                               type_name(known->type));
        continue;
      }
      if (known->type == kind::integer &&
          (value.as_integer() < known->min || value.as_integer() > known->max)) {
        out.problems.push_back(where(value) + "'" + section + "." + key + "' must be between " +
                               std::to_string(known->min) + " and " + std::to_string(known->max));
        continue;
      }
      if (auto problem = known->set(out.config, value))
        out.problems.push_back(where(value) + "'" + section + "." + key + "': " + *problem);
    }
  }
  return out;
}

loaded_config load_config(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return {{}, {path + ": cannot open the file"}};
  return parse_config(std::string{std::istreambuf_iterator<char>{in}, {}}, path);
}

std::string default_config_text() {
  std::ostringstream out;
  out << "# emr configuration. Every key is optional; the values shown are the defaults.\n"
         "# Environment: EMR_ADMIN_SECRET (required by `emr serve`, at least 16 bytes).\n"
         "# Provider API keys are never stored here: each provider names the environment\n"
         "# variable that holds its key (`emr providers add --api-key-env VAR`).\n";
  emr_config defaults;
  std::string_view section;
  for (const auto& k : keys()) {
    if (k.section != section) {
      section = k.section;
      out << "\n[" << section << "]\n";
    }
    out << "# " << k.doc << "\n# " << k.key << " = " << json::serialize(k.get(defaults)) << "\n";
  }
  return out.str();
}

json::object config_json(const emr_config& config) {
  json::object out;
  for (const auto& k : keys()) {
    auto& section = out[k.section];
    if (!section.is_object())
      section = json::object{};
    section.as_object()[k.key] = k.get(config);
  }
  return out;
}

std::string resolve_config_path(const std::string& explicit_path) {
  if (!explicit_path.empty())
    return explicit_path;
  if (std::filesystem::exists("emr.toml"))
    return "emr.toml";
  return {};
}

} // namespace emr
