// caller_auth: one argon2 run per presented key under a burst, limits on failed attempts and on
// runs at once, revoked keys told apart only by their holders, revokes that beat verifications
// in flight. A counting verifier that tests can hold mid-run stands in for argon2's timing.

#include "actors/arrivals.hpp"
#include "http/caller_auth.hpp"
#include "tests/http/manual_clock.hpp"

#include "storage/sqlite_store.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <thread>
#include <unistd.h>

namespace emr {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr argon2_params cheap_argon2{1, 64, 1};

using testing::manual_clock;

/// verify_secret, counted, and held at its start while `hold` is set.
class held_verifier {
public:
  secret_verifier function() {
    return [this](const std::string& hash, std::string_view secret) {
      {
        std::unique_lock lock{mutex_};
        ++runs_;
        changed_.notify_all();
        changed_.wait(lock, [this] { return !hold_; });
      }
      return verify_secret(hash, secret);
    };
  }
  void hold() {
    std::lock_guard guard{mutex_};
    hold_ = true;
  }
  void release() {
    {
      std::lock_guard guard{mutex_};
      hold_ = false;
    }
    changed_.notify_all();
  }
  /// Waits until n runs started; false after 10 s (the code under test serialized them).
  bool started(int n) {
    std::unique_lock lock{mutex_};
    return changed_.wait_for(lock, 10s, [&] { return runs_ >= n; });
  }
  int runs() {
    std::lock_guard guard{mutex_};
    return runs_;
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool hold_ = false;
  int runs_ = 0;
};

/// Releases a held verifier when a test ends early, before its caller threads are joined.
struct release_at_exit {
  held_verifier& verifier;
  ~release_at_exit() { verifier.release(); }
};

/// token with another secret: a wrong one, distinct for each n.
std::string other_secret_of(const std::string& token, int n) {
  auto suffix = std::to_string(1000 + n);
  auto wrong = token.substr(0, token.size() - 6) + "Zz" + suffix;
  if (wrong == token)
    wrong = token.substr(0, token.size() - 6) + "Yy" + suffix;
  return wrong;
}

class caller_auth_test : public ::testing::Test {
protected:
  caller_auth_test() {
    std::string pattern = (fs::temp_directory_path() / "emr_auth_XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    dir = pattern;
    db = std::make_unique<sqlite_store>(dir / "emr.db");
  }
  ~caller_auth_test() override {
    if (auth)
      verifier.release();
    auth.reset();
    db.reset();
    fs::remove_all(dir);
  }

  void start(auth_limits limits = {}) {
    auth = std::make_unique<caller_auth>(*db, cheap_argon2, limits, verifier.function(),
                                         clock.function());
  }

  /// A live key: its record and its token.
  std::pair<key_record, std::string> new_key(const std::string& name = "caller") {
    return auth->create(name);
  }

  std::variant<cached_key, api_error> present(const std::string& token,
                                              const std::string& address = "10.0.0.1") {
    return auth->authenticate("Bearer " + token, address);
  }

  /// Spins (never sleeps) until the counter reaches n; false after 10 s.
  bool counter_reaches(std::uint64_t auth_stats::*counter, std::uint64_t n) const {
    auto give_up = std::chrono::steady_clock::now() + 10s;
    while (auth->stats().*counter < n)
      if (std::chrono::steady_clock::now() > give_up)
        return false;
      else
        std::this_thread::yield();
    return true;
  }

  /// n callers presenting token at once: the first is held in argon2 until the others joined it.
  std::vector<std::variant<cached_key, api_error>> burst(const std::string& token, std::size_t n) {
    std::vector<std::variant<cached_key, api_error>> results(n);
    std::vector<std::jthread> callers;
    verifier.hold();
    release_at_exit guard{verifier};
    callers.emplace_back([&] { results[0] = present(token); });
    EXPECT_TRUE(verifier.started(1));
    for (std::size_t i = 1; i < n; ++i)
      callers.emplace_back([&, i] { results[i] = present(token); });
    EXPECT_TRUE(counter_reaches(&auth_stats::shared_verifications, n - 1));
    verifier.release();
    callers.clear();
    return results;
  }

  /// What presenting token answers when `meanwhile` runs while its argon2 run is under way.
  std::variant<cached_key, api_error> present_around(const std::string& token,
                                                     const std::function<void()>& meanwhile) {
    std::variant<cached_key, api_error> result;
    verifier.hold();
    {
      std::jthread caller{[&] { result = present(token); }};
      release_at_exit guard{verifier};
      EXPECT_TRUE(verifier.started(1));
      meanwhile();
    }
    return result;
  }

  fs::path dir;
  std::unique_ptr<sqlite_store> db;
  manual_clock clock;
  held_verifier verifier;
  std::unique_ptr<caller_auth> auth;
};

int status_of(const std::variant<cached_key, api_error>& result) {
  if (auto e = std::get_if<api_error>(&result))
    return e->status;
  return 200;
}

std::string message_of(const std::variant<cached_key, api_error>& result) {
  if (auto e = std::get_if<api_error>(&result))
    return render_error(*e);
  return "ok";
}

// -- one argon2 run per presented key -------------------------------------------

TEST_F(caller_auth_test, a_caller_stops_holding_batches_back_while_its_key_is_verified) {
  start();
  auto [record, token] = new_key();
  arrivals arriving;
  {
    arrivals::entry request{arriving};
    ASSERT_TRUE(std::holds_alternative<cached_key>(present(token)));
    EXPECT_EQ(verifier.runs(), 1);
    EXPECT_EQ(arriving.under_way(), 0u) << "argon2 ran: the caller left the count first";
  }
  {
    arrivals::entry request{arriving};
    ASSERT_TRUE(std::holds_alternative<cached_key>(present(token)));
    EXPECT_EQ(verifier.runs(), 1);
    EXPECT_EQ(arriving.under_way(), 1u) << "a cached key costs microseconds: still counted";
  }
}

TEST_F(caller_auth_test, a_key_another_replica_revoked_is_refused_once_it_is_forgotten) {
  start();
  auto [record, token] = new_key();
  ASSERT_TRUE(std::holds_alternative<cached_key>(present(token)));
  // Revoked in the shared store, not through this instance: its cache still says yes.
  ASSERT_TRUE(db->revoke_key(record.id));
  EXPECT_TRUE(std::holds_alternative<cached_key>(present(token)));
  auth->forget_revoked(db->keys());
  auto refused = present(token);
  ASSERT_TRUE(std::holds_alternative<api_error>(refused));
  EXPECT_EQ(std::get<api_error>(refused).status, 401);
  EXPECT_EQ(std::get<api_error>(refused).message, "this API key was revoked");
}

TEST_F(caller_auth_test, a_burst_of_one_wrong_secret_costs_one_argon2_run) {
  start();
  auto [record, token] = new_key();
  auto wrong = other_secret_of(token, 1);
  auto results = burst(wrong, 8);
  auto expected = message_of(present(other_secret_of(token, 2)));
  for (const auto& r : results)
    EXPECT_EQ(message_of(r), expected);
  EXPECT_EQ(verifier.runs(), 2) << "one for the burst, one for the comparison";
  EXPECT_EQ(auth->stats().argon2_verifications, 2u);
  EXPECT_EQ(auth->stats().failures, 9u);
  // Later callers with the same wrong secret are answered from memory.
  EXPECT_EQ(status_of(present(wrong)), 401);
  EXPECT_EQ(verifier.runs(), 2);
}

TEST_F(caller_auth_test, a_burst_of_one_right_secret_costs_one_argon2_run_and_all_get_in) {
  start();
  auto [record, token] = new_key("billing");
  auto results = burst(token, 6);
  for (const auto& r : results) {
    ASSERT_EQ(status_of(r), 200) << message_of(r);
    EXPECT_EQ(std::get<cached_key>(r).key_id, record.id);
    EXPECT_EQ(std::get<cached_key>(r).name, "billing");
  }
  EXPECT_EQ(verifier.runs(), 1);
  EXPECT_EQ(auth->stats().failures, 0u);
}

TEST_F(caller_auth_test, different_secrets_for_one_key_id_are_not_serialized) {
  auth_limits limits;
  limits.max_concurrent_verifications = 2;
  start(limits);
  auto [record, token] = new_key();
  verifier.hold();
  std::jthread first{
      [&, token = token] { EXPECT_EQ(status_of(present(other_secret_of(token, 1))), 401); }};
  std::jthread second{
      [&, token = token] { EXPECT_EQ(status_of(present(other_secret_of(token, 2))), 401); }};
  release_at_exit guard{verifier};
  EXPECT_TRUE(verifier.started(2)) << "the second secret waited for the first one's run";
  verifier.release();
}

// -- failed attempts, limited -----------------------------------------------------

TEST_F(caller_auth_test, failures_per_key_id_are_limited_before_argon2_runs) {
  auth_limits limits;
  limits.failures_per_minute_per_key = 3;
  limits.failures_per_minute_per_address = 1000;
  start(limits);
  auto [record, token] = new_key();
  auto [other_record, other_token] = new_key("other");
  // Each guess from its own address: only the key id's budget can stop them.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(status_of(present(other_secret_of(token, i), "10.0.1." + std::to_string(i))), 401);
  auto refused = present(other_secret_of(token, 3), "10.0.1.3");
  ASSERT_EQ(status_of(refused), 429);
  const auto& e = std::get<api_error>(refused);
  EXPECT_EQ(e.type, "rate_limited");
  EXPECT_EQ(e.code, "too_many_failed_attempts");
  EXPECT_EQ(e.retry_after_ms, 20000) << "3 a minute, all spent at once: one back in 20 s";
  EXPECT_EQ(verifier.runs(), 3);
  EXPECT_EQ(auth->stats().argon2_verifications, 3u);
  EXPECT_EQ(auth->stats().failures, 3u);
  EXPECT_EQ(auth->stats().rate_limited, 1u);
  // Other keys are not held to this key's budget.
  EXPECT_EQ(status_of(present(other_token)), 200);
  clock.advance(20s);
  EXPECT_EQ(status_of(present(other_secret_of(token, 4), "10.0.1.4")), 401);
  EXPECT_EQ(status_of(present(other_secret_of(token, 5), "10.0.1.5")), 429);
  EXPECT_EQ(verifier.runs(), 5);
}

TEST_F(caller_auth_test, failures_per_address_are_limited_across_key_ids) {
  auth_limits limits;
  limits.failures_per_minute_per_key = 1000;
  limits.failures_per_minute_per_address = 2;
  start(limits);
  auto [record, token] = new_key();
  EXPECT_EQ(status_of(present(other_secret_of(token, 1), "192.0.2.7")), 401);
  EXPECT_EQ(status_of(present("emr_AAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
                              "192.0.2.7")),
            401)
      << "an unknown key id costs the address too";
  auto refused = present(other_secret_of(token, 2), "192.0.2.7");
  ASSERT_EQ(status_of(refused), 429);
  EXPECT_EQ(std::get<api_error>(refused).retry_after_ms, 30000);
  EXPECT_EQ(verifier.runs(), 1);
  EXPECT_EQ(status_of(present(other_secret_of(token, 3), "192.0.2.8")), 401)
      << "another address has its own budget";
  EXPECT_EQ(status_of(present(token, "192.0.2.7")), 429)
      << "a secret never verified before is a guess like any other";
  EXPECT_EQ(auth->stats().rate_limited, 2u);
}

TEST_F(caller_auth_test, a_repeated_wrong_secret_is_charged_once) {
  auth_limits limits;
  limits.failures_per_minute_per_key = 1;
  start(limits);
  auto [record, token] = new_key();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(status_of(present(other_secret_of(token, 1))), 401) << i;
  EXPECT_EQ(verifier.runs(), 1);
  EXPECT_EQ(auth->stats().rate_limited, 0u);
}

TEST_F(caller_auth_test, a_key_holder_is_not_locked_out_by_guesses_at_its_key_id) {
  auth_limits limits;
  limits.failures_per_minute_per_key = 2;
  limits.failures_per_minute_per_address = 2;
  start(limits);
  auto [record, token] = new_key();
  ASSERT_EQ(status_of(present(token)), 200);
  // The verified-key cache expires; then guesses from the holder's own address spend both the
  // key id's and the address's budgets.
  clock.advance(301s);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(status_of(present(other_secret_of(token, i))), 401);
  ASSERT_EQ(status_of(present(other_secret_of(token, 9))), 429);
  auto runs = verifier.runs();
  auto holder = present(token);
  EXPECT_EQ(status_of(holder), 200) << message_of(holder);
  EXPECT_EQ(verifier.runs(), runs + 1) << "the holder's secret was verified again, not trusted";
}

TEST_F(caller_auth_test, argon2_runs_at_once_are_bounded) {
  auth_limits limits;
  limits.max_concurrent_verifications = 1;
  limits.verification_wait = 0ms;
  limits.failures_per_minute_per_key = 2;
  start(limits);
  auto [record, token] = new_key();
  verifier.hold();
  std::jthread first{
      [&, token = token] { EXPECT_EQ(status_of(present(other_secret_of(token, 1))), 401); }};
  release_at_exit guard{verifier};
  ASSERT_TRUE(verifier.started(1));
  auto busy = present(other_secret_of(token, 2));
  ASSERT_EQ(status_of(busy), 503);
  EXPECT_EQ(std::get<api_error>(busy).type, "server_busy");
  EXPECT_EQ(std::get<api_error>(busy).retry_after_ms, 1000);
  EXPECT_EQ(auth->stats().busy, 1u);
  verifier.release();
  first.join();
  // The refused attempt was not charged: the key id's second failure is still allowed.
  EXPECT_EQ(status_of(present(other_secret_of(token, 2))), 401);
  EXPECT_EQ(verifier.runs(), 2);
}

// -- revoked keys -------------------------------------------------------------------

TEST_F(caller_auth_test, a_revoked_key_is_told_only_to_whoever_holds_its_secret) {
  start();
  auto [record, token] = new_key();
  ASSERT_TRUE(auth->revoke(record.id));
  auto unknown = present("emr_AAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
  auto wrong = present(other_secret_of(token, 1));
  EXPECT_EQ(status_of(wrong), 401);
  EXPECT_EQ(message_of(wrong), message_of(unknown));
  EXPECT_EQ(message_of(wrong),
            render_error(api_error{
                401, "authentication_error", "invalid API key", {}, "invalid_api_key", -1}));
  auto right = present(token);
  EXPECT_EQ(status_of(right), 401);
  EXPECT_EQ(std::get<api_error>(right).message, "this API key was revoked");
  EXPECT_EQ(verifier.runs(), 2);
  // Remembered: the holder's retries cost nothing and say the same.
  EXPECT_EQ(std::get<api_error>(present(token)).message, "this API key was revoked");
  EXPECT_EQ(verifier.runs(), 2);
}

TEST_F(caller_auth_test, a_revoked_keys_right_secret_is_not_charged_as_a_guess) {
  auth_limits limits;
  limits.failures_per_minute_per_address = 1;
  start(limits);
  auto [record, token] = new_key();
  auto [other, other_token] = new_key("other");
  ASSERT_TRUE(auth->revoke(record.id));
  ASSERT_EQ(std::get<api_error>(present(token)).message, "this API key was revoked");
  EXPECT_EQ(status_of(present(other_secret_of(other_token, 1))), 401);
  EXPECT_EQ(status_of(present(other_secret_of(other_token, 2))), 429);
}

TEST_F(caller_auth_test, a_revoke_during_verification_wins) {
  start();
  auto [record, token] = new_key();
  auto during =
      present_around(token, [&, record = record] { EXPECT_TRUE(auth->revoke(record.id)); });
  ASSERT_EQ(status_of(during), 401) << message_of(during);
  EXPECT_EQ(std::get<api_error>(during).message, "this API key was revoked");
  // Nothing was cached as valid: the next request is refused too.
  EXPECT_EQ(status_of(present(token)), 401);
}

TEST_F(caller_auth_test, a_rotate_during_verification_wins) {
  start();
  auto [record, token] = new_key();
  std::optional<std::pair<key_record, std::string>> rotated;
  auto during = present_around(token, [&, record = record] { rotated = auth->rotate(record.id); });
  ASSERT_TRUE(rotated);
  EXPECT_EQ(status_of(during), 401) << message_of(during);
  EXPECT_EQ(status_of(present(token)), 401);
  EXPECT_EQ(status_of(present(rotated->second)), 200);
}

TEST_F(caller_auth_test, another_keys_revoke_during_verification_does_not_refuse) {
  start();
  auto [record, token] = new_key();
  auto [other, other_token] = new_key("other");
  auto during = present_around(token, [&, other = other] { EXPECT_TRUE(auth->revoke(other.id)); });
  EXPECT_EQ(status_of(during), 200) << message_of(during);
  EXPECT_EQ(status_of(present(token)), 200);
  EXPECT_EQ(verifier.runs(), 1) << "the key was cached as usual";
}

TEST_F(caller_auth_test, malformed_headers_count_as_failures_without_argon2) {
  start();
  EXPECT_EQ(status_of(auth->authenticate("", "10.0.0.1")), 401);
  EXPECT_EQ(status_of(auth->authenticate("Basic abc", "10.0.0.1")), 401);
  EXPECT_EQ(status_of(auth->authenticate("Bearer emr_short", "10.0.0.1")), 401);
  EXPECT_EQ(auth->stats().failures, 3u);
  EXPECT_EQ(verifier.runs(), 0);
}

} // namespace
} // namespace emr
