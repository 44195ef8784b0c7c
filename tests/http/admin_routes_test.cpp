// The admin routes on loopback, over a real store and provider directory. Changes to one provider,
// or to one key, sent at once: the second waits for the first, so neither's change is lost and
// what runs is what is stored; a store that calls back on a read lets the second change arrive
// while the first stands between its read and its write.

#include "actors/directory.hpp"
#include "http/app.hpp"
#include "http/provider_records.hpp"
#include "http/route_table.hpp"
#include "http/routes.hpp"
#include "storage/sqlite_store.hpp"

#include <boost/json.hpp>
#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <future>
#include <thread>

namespace fs = std::filesystem;

namespace emr {
namespace {

constexpr const char* test_admin_secret = "admin-routes-test-secret";

// The store, with a callback once the next provider or key read has read.
class read_hooked_store final : public store {
public:
  explicit read_hooked_store(const fs::path& file) : db_(file) {}
  std::function<void()> after_next_read;

  bool add_provider(const provider_record& r) override { return db_.add_provider(r); }
  std::vector<provider_record> providers() override { return db_.providers(); }
  std::optional<provider_record> provider(std::string_view name) override {
    auto record = db_.provider(name);
    read();
    return record;
  }
  bool update_provider(const provider_record& r) override { return db_.update_provider(r); }
  bool remove_provider(std::string_view name) override { return db_.remove_provider(name); }
  key_record create_key(std::string_view name, std::string_view public_id,
                        std::string_view secret_hash, const key_limits& limits) override {
    return db_.create_key(name, public_id, secret_hash, limits);
  }
  std::vector<key_record> keys() override { return db_.keys(); }
  std::optional<key_record> key_by_public_id(std::string_view public_id) override {
    return db_.key_by_public_id(public_id);
  }
  std::optional<key_record> key(std::int64_t id) override {
    auto record = db_.key(id);
    read();
    return record;
  }
  bool revoke_key(std::int64_t id) override { return db_.revoke_key(id); }
  bool set_key_limits(std::int64_t id, const key_limits& limits) override {
    return db_.set_key_limits(id, limits);
  }
  std::optional<key_record> rotate_key(std::int64_t id, std::string_view new_public_id,
                                       std::string_view new_secret_hash) override {
    return db_.rotate_key(id, new_public_id, new_secret_hash);
  }
  void touch_keys(const std::vector<std::pair<std::int64_t, std::int64_t>>& times) override {
    db_.touch_keys(times);
  }
  void add_key_usage(const std::vector<key_usage_row>& rows) override { db_.add_key_usage(rows); }
  std::vector<key_usage_row> key_usage(std::int64_t key_id, std::int64_t from_day) override {
    return db_.key_usage(key_id, from_day);
  }
  void put_cached_vectors(const std::vector<stored_vector>& vectors) override {
    db_.put_cached_vectors(vectors);
  }
  std::vector<stored_vector> cached_vectors(const std::vector<std::string>& keys,
                                            std::int64_t now) override {
    return db_.cached_vectors(keys, now);
  }
  std::int64_t trim_cached_vectors(std::int64_t now, std::int64_t max_entries) override {
    return db_.trim_cached_vectors(now, max_entries);
  }
  std::int64_t clear_cached_vectors() override { return db_.clear_cached_vectors(); }
  std::int64_t cached_vector_count() override { return db_.cached_vector_count(); }
  std::int64_t schema_version() override { return db_.schema_version(); }
  std::string integrity_check() override { return db_.integrity_check(); }

private:
  void read() {
    if (auto hook = std::exchange(after_next_read, nullptr))
      hook();
  }
  sqlite_store db_;
};

fs::path scratch_directory() {
  std::string pattern = (fs::temp_directory_path() / "emr_admin_routes_XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// The admin routes on loopback, over the store above and a real provider directory.
struct admin_routes_test : ::testing::Test {
  fs::path directory = scratch_directory();
  read_hooked_store db{directory / "emr.db"};
  caf::actor_system_config caf_config;
  caf::actor_system system{caf_config};
  provider_directory running{system, {}, {}, {}};
  caller_auth auth{db, argon2_params{1, 64, 1}};
  std::shared_ptr<arrivals> arriving = std::make_shared<arrivals>();
  key_usage_meter usage{db};
  key_quotas quotas{usage};
  app a{system,
        db,
        running,
        auth,
        *arriving,
        usage,
        quotas,
        nullptr,
        nullptr,
        {},
        test_admin_secret,
        {},
        std::chrono::steady_clock::now(),
        {0},
        {0},
        {}};
  admin_changes changes;
  httplib::Server server;
  route_table routes{server};
  int port = 0;
  std::thread listening;

  void SetUp() override {
    install_admin_routes(routes, a, changes);
    port = server.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    listening = std::thread{[this] { server.listen_after_bind(); }};
  }
  void TearDown() override {
    server.stop();
    listening.join();
    running.drain_all();
    fs::remove_all(directory);
  }

  // The answer's status and body.
  std::pair<int, std::string> call(const std::string& method, const std::string& path,
                                   const std::string& body) const {
    httplib::Client client{"127.0.0.1", port};
    client.set_bearer_token_auth(test_admin_secret);
    httplib::Request req;
    req.method = method;
    req.path = path;
    req.body = body;
    req.set_header("Content-Type", "application/json");
    auto res = client.send(req);
    if (!res)
      return {0, "no answer"};
    return {res->status, res->body};
  }

  // Makes `first`, and on its first read of the store, checks whether a second change could go
  // ahead now. If it could, `second` is made then and there, whole, which is the race the review
  // saw lose a change; if not, it is made once `first` is done, as the lock would have it.
  bool second_waits_for_first(std::mutex& kind, const std::function<int()>& first,
                              const std::function<int()>& second) {
    bool held = false;
    int second_status = 0;
    db.after_next_read = [&] {
      std::thread{[&] {
        std::unique_lock<std::mutex> attempt{kind, std::try_to_lock};
        held = !attempt.owns_lock();
      }}.join();
      if (!held)
        second_status = std::async(std::launch::async, second).get();
    };
    EXPECT_EQ(first(), 200);
    if (held)
      second_status = second();
    EXPECT_EQ(second_status, 200);
    return held;
  }
};

TEST_F(admin_routes_test, two_patches_of_one_provider_both_land_and_what_runs_is_stored) {
  ASSERT_EQ(
      call("POST", "/admin/providers",
           R"({"name":"voyage","type":"voyage","endpoint":"http://127.0.0.1:9/v1/embeddings",)"
           R"("model":"voyage-3.5","api_key_env":"VOYAGE_API_KEY"})")
          .first,
      201);
  EXPECT_TRUE(second_waits_for_first(
      changes.providers,
      [&] {
        return call("PATCH", "/admin/providers/voyage", R"({"requests_per_minute":1000})").first;
      },
      [&] { return call("PATCH", "/admin/providers/voyage", R"({"max_batch":100})").first; }));
  auto stored = db.provider("voyage");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->requests_per_minute, 1000);
  EXPECT_EQ(stored->max_batch, 100);
  auto specs = running.specs();
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0], to_spec(*stored));
}

TEST_F(admin_routes_test, two_patches_of_one_key_both_land) {
  auto created = call("POST", "/admin/keys", R"({"name":"billing"})");
  ASSERT_EQ(created.first, 201);
  EXPECT_TRUE(second_waits_for_first(
      changes.keys,
      [&] { return call("PATCH", "/admin/keys/1", R"({"requests_per_minute":5})").first; },
      [&] { return call("PATCH", "/admin/keys/1", R"({"tokens_per_day":1000})").first; }));
  auto stored = db.key(1);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->limits.requests_per_minute, 5);
  EXPECT_EQ(stored->limits.tokens_per_day, 1000);
}

std::string error_message(const std::string& answer) {
  return std::string{boost::json::parse(answer).at("error").at("message").as_string()};
}

TEST_F(admin_routes_test,
       a_stored_provider_that_cannot_run_is_tested_with_its_problem_and_disabled) {
  // As written by hand or by an older emr, loaded at start and listed with its problem.
  ASSERT_TRUE(db.add_provider({.name = "legacy",
                               .type = "mistral",
                               .endpoint = "http://127.0.0.1:9/v1/embeddings",
                               .model = "mistral-embed",
                               .api_key_env = "MISTRAL_API_KEY",
                               .requests_per_minute = 60}));
  const auto as_stored = db.provider("legacy");
  const std::string problem = "'type' must be one of voyage, cohere, openai, openai-compatible";

  auto tested = call("POST", "/admin/providers/legacy/test", "");
  EXPECT_EQ(tested.first, 400);
  EXPECT_EQ(error_message(tested.second), "provider 'legacy' cannot run: " + problem);

  // What would leave it enabled and still unable to run, or make it run, is refused.
  for (const char* patch : {R"({"model":"mistral-embed-2"})", R"({"enabled":true})",
                            R"({"enabled":false,"max_batch":10})"}) {
    SCOPED_TRACE(patch);
    auto refused = call("PATCH", "/admin/providers/legacy", patch);
    EXPECT_EQ(refused.first, 400);
    EXPECT_EQ(error_message(refused.second), problem);
  }
  EXPECT_EQ(db.provider("legacy"), as_stored);

  auto cleared = call("PATCH", "/admin/providers/legacy", R"({"requests_per_minute":0})");
  EXPECT_EQ(cleared.first, 200) << cleared.second;
  auto disabled = call("PATCH", "/admin/providers/legacy", R"({"enabled":false})");
  EXPECT_EQ(disabled.first, 200) << disabled.second;
  EXPECT_EQ(boost::json::parse(disabled.second).at("problem").as_string(), problem);
  auto stored = db.provider("legacy");
  ASSERT_TRUE(stored.has_value());
  EXPECT_FALSE(stored->enabled);
  EXPECT_EQ(stored->requests_per_minute, 0);
  EXPECT_TRUE(running.specs().empty());

  tested = call("POST", "/admin/providers/legacy/test", "");
  EXPECT_EQ(tested.first, 400);
  EXPECT_EQ(error_message(tested.second), "provider 'legacy' cannot run: " + problem);
  EXPECT_EQ(call("DELETE", "/admin/providers/legacy", "").first, 200);
}

// What the server logs while it lives.
struct log_capture {
  std::ostringstream lines;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink =
      std::make_shared<spdlog::sinks::ostream_sink_mt>(lines);
  log_capture() { spdlog::default_logger()->sinks().push_back(sink); }
  ~log_capture() { std::erase(spdlog::default_logger()->sinks(), sink); }
  std::size_t count(std::string_view text) const {
    std::size_t n = 0;
    auto all = lines.str();
    for (auto at = all.find(text); at != std::string::npos; at = all.find(text, at + 1))
      ++n;
    return n;
  }
};

TEST_F(admin_routes_test, revoking_a_revoked_key_answers_200_says_so_and_logs_nothing) {
  ASSERT_EQ(call("POST", "/admin/keys", R"({"name":"billing"})").first, 201);
  log_capture log;
  auto first = call("DELETE", "/admin/keys/1", "");
  auto again = call("DELETE", "/admin/keys/1", "");
  ASSERT_EQ(first.first, 200);
  ASSERT_EQ(again.first, 200);
  auto first_json = boost::json::parse(first.second).as_object();
  auto again_json = boost::json::parse(again.second).as_object();
  EXPECT_EQ(first_json.at("revoked").as_bool(), true);
  EXPECT_EQ(first_json.at("already_revoked").as_bool(), false);
  EXPECT_EQ(again_json.at("revoked").as_bool(), true);
  EXPECT_EQ(again_json.at("already_revoked").as_bool(), true);
  EXPECT_EQ(again_json.at("revoked_at"), first_json.at("revoked_at"));
  EXPECT_EQ(log.count("revoked caller key 1"), 1u) << log.lines.str();
}

} // namespace
} // namespace emr
