// Durability: `emr serve` is killed with SIGKILL while callers create and revoke keys and add,
// update and remove providers. The database the kill left must pass SQLite's integrity check and
// stay owner-only, and after a restart every change the admin API acknowledged must be there.
// The kill comes after a fixed number of acknowledged changes, so the counts do not depend on time.

#include "tests/integration/harness.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

constexpr int admin_threads = 4;
constexpr int kill_after_acknowledged = 200;
constexpr std::int64_t patched_max_batch = 64;

// Two upstream workers per provider keep the dozens of providers the test adds cheap.
constexpr const char* few_workers = "[batching]\nmax_concurrency = 2\n";

/// How an admin call ended: acknowledged with a 2xx, or unanswered because the server died first
/// (such a change may or may not have been applied).
enum class fate { acknowledged, unanswered };

struct key_change {
  std::string name{};
  fate created = fate::unanswered;
  std::int64_t id = 0;
  std::string token{};
  std::optional<fate> revoked{}; ///< unset: no revocation attempted
};

struct provider_change {
  std::string name{};
  fate added = fate::unanswered;
  std::optional<fate> patched{}; ///< unset: no update attempted
  std::optional<fate> removed{}; ///< unset: no removal attempted
};

/// What one admin thread attempted, in order.
struct admin_log {
  std::vector<key_change> keys;
  std::vector<provider_change> providers;
};

/// PRAGMA integrity_check on a read-only connection of the test's own.
std::string integrity_check(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  std::string report;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    report = std::string{"cannot open: "} + sqlite3_errmsg(db);
    sqlite3_close(db);
    return report;
  }
  sqlite3_stmt* check = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr) != SQLITE_OK)
    report = std::string{"cannot check: "} + sqlite3_errmsg(db);
  while (check && sqlite3_step(check) == SQLITE_ROW)
    report += (report.empty() ? "" : "\n") +
              std::string{reinterpret_cast<const char*>(sqlite3_column_text(check, 0))};
  sqlite3_finalize(check);
  sqlite3_close(db);
  return report;
}

mode_t permission_bits(const std::filesystem::path& file) {
  struct stat st {};
  return ::stat(file.c_str(), &st) == 0 ? st.st_mode & 0777 : 0;
}

struct durability : ::testing::Test {
  scratch_dir dir;
  fake_provider fake{dir};
  emr_server emr{dir, few_workers};
  std::string probe_key;
  std::atomic<int> acknowledged{0};
  std::atomic<bool> killed{false};

  void SetUp() override {
    ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5"), 201);
    probe_key = emr.create_key("probe");
  }

  /// One admin call; the thread that brings the acknowledged count to the mark kills the server.
  std::optional<json::value> change(const std::string& method, const std::string& path,
                                    const std::string& body = {}) {
    auto answer = emr.admin(method, path, body);
    if (answer.status == 0)
      return std::nullopt;
    EXPECT_TRUE(answer.status >= 200 && answer.status < 300)
        << method << " " << path << ": " << answer.body;
    if (++acknowledged == kill_after_acknowledged) {
      emr.process().signal(SIGKILL);
      killed = true;
    }
    return answer.json();
  }

  /// An admin listing (GET path answers {"<list>": [...]}) by each entry's name.
  std::map<std::string, json::object> listed_by_name(const std::string& path,
                                                     const char* list) const {
    std::map<std::string, json::object> by_name;
    auto answer = emr.admin("GET", path);
    EXPECT_EQ(answer.status, 200) << answer.body;
    auto listing = answer.json();
    if (answer.status == 200)
      for (const auto& entry : listing.at(list).as_array())
        by_name.emplace(std::string{entry.at("name").as_string()}, entry.as_object());
    return by_name;
  }

  static fate fate_of(const std::optional<json::value>& answer) {
    return answer ? fate::acknowledged : fate::unanswered;
  }

  /// Cycles of: create a key, add a provider, revoke the key (odd cycles), patch the provider,
  /// remove the provider (even cycles); until the server is dead.
  admin_log churn(int thread) {
    admin_log log;
    for (int cycle = 0; !killed; ++cycle) {
      auto suffix = std::to_string(thread) + "-" + std::to_string(cycle);
      auto& key = log.keys.emplace_back(key_change{"key-" + suffix});
      auto created =
          change("POST", "/admin/keys", json::serialize(json::object{{"name", key.name}}));
      key.created = fate_of(created);
      if (created) {
        key.id = created->at("id").as_int64();
        key.token = std::string{created->at("key").as_string()};
      }
      if (killed)
        break;
      auto& provider = log.providers.emplace_back(provider_change{"provider-" + suffix});
      json::object record{{"name", provider.name},
                          {"type", "voyage"},
                          {"endpoint", fake.url("/v1/embeddings")},
                          {"model", "voyage-3.5"},
                          {"api_key_env", provider_key_env}};
      provider.added = fate_of(change("POST", "/admin/providers", json::serialize(record)));
      if (killed)
        break;
      if (cycle % 2 == 1 && created) {
        key.revoked = fate_of(change("DELETE", "/admin/keys/" + std::to_string(key.id)));
        if (killed)
          break;
      }
      if (provider.added == fate::unanswered)
        continue;
      provider.patched =
          fate_of(change("PATCH", "/admin/providers/" + provider.name,
                         json::serialize(json::object{{"max_batch", patched_max_batch}})));
      if (killed)
        break;
      if (cycle % 2 == 0)
        provider.removed = fate_of(change("DELETE", "/admin/providers/" + provider.name));
    }
    return log;
  }
};

} // namespace

TEST_F(durability, every_acknowledged_change_survives_a_kill_during_admin_churn) {
  std::vector<admin_log> logs(admin_threads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < admin_threads; ++t)
      threads.emplace_back([this, t, &logs] { logs[t] = churn(t); });
  }
  ASSERT_EQ(emr.process().wait(), 128 + SIGKILL);

  // The file exactly as the kill left it, before a restart could repair anything.
  EXPECT_EQ(integrity_check(emr.db_path), "ok");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    auto file = emr.db_path.string() + suffix;
    if (std::filesystem::exists(file)) {
      EXPECT_EQ(permission_bits(file), 0600u) << file;
    }
  }

  emr.start();
  auto stored_keys = listed_by_name("/admin/keys", "keys");
  auto stored_providers = listed_by_name("/admin/providers", "providers");

  int unanswered = 0;
  auto count = [&](std::optional<fate> f) { unanswered += f == fate::unanswered; };
  std::set<std::string> attempted{"probe", "voyage"};
  auto embed_with = [&](const std::string& key, const std::string& provider) {
    return emr
        .embed(key,
               json::serialize(json::object{{"input", "after the kill"}, {"provider", provider}}))
        .status;
  };
  for (const auto& log : logs) {
    for (const auto& key : log.keys) {
      attempted.insert(key.name);
      count(key.created);
      count(key.revoked);
      auto stored = stored_keys.find(key.name);
      if (key.created == fate::unanswered)
        continue;
      ASSERT_NE(stored, stored_keys.end()) << "acknowledged key " << key.name << " is gone";
      EXPECT_EQ(stored->second.at("id").as_int64(), key.id) << key.name;
      bool revoked = stored->second.at("revoked").as_bool();
      if (key.revoked != fate::unanswered) {
        EXPECT_EQ(revoked, key.revoked == fate::acknowledged) << key.name;
      }
      EXPECT_EQ(embed_with(key.token, "voyage"), revoked ? 401 : 200) << key.name;
    }
    for (const auto& provider : log.providers) {
      attempted.insert(provider.name);
      count(provider.added);
      count(provider.patched);
      count(provider.removed);
      auto stored = stored_providers.find(provider.name);
      bool present = stored != stored_providers.end();
      if (provider.removed == fate::acknowledged) {
        EXPECT_FALSE(present) << "removed provider " << provider.name << " is back";
      } else if (provider.added == fate::acknowledged && !provider.removed) {
        EXPECT_TRUE(present) << "acknowledged provider " << provider.name << " is gone";
      }
      if (!present)
        continue;
      auto max_batch = stored->second.at("max_batch").as_int64();
      if (provider.patched == fate::acknowledged) {
        EXPECT_EQ(max_batch, patched_max_batch) << provider.name;
      } else if (!provider.patched) {
        EXPECT_EQ(max_batch, 0) << provider.name;
      }
      EXPECT_EQ(embed_with(probe_key, provider.name), 200)
          << provider.name << " does not serve after the restart";
    }
  }
  for (const auto& [name, record] : stored_keys)
    EXPECT_TRUE(attempted.contains(name)) << "key " << name << " was never created";
  for (const auto& [name, record] : stored_providers)
    EXPECT_TRUE(attempted.contains(name)) << "provider " << name << " was never added";
  EXPECT_GE(acknowledged.load(), kill_after_acknowledged);
  std::printf("[ durability ] %d changes acknowledged, %d unanswered at the kill; after the "
              "restart: %zu keys, "
              "%zu providers\n",
              acknowledged.load(), unanswered, stored_keys.size(), stored_providers.size());
}
