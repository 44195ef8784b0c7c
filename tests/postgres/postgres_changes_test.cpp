// postgres_changes on a real PostgreSQL 15 cluster: a replica hears what another one's store
// writes changed, reads everything once when it starts listening and again after the server
// dropped its connection.

#include "storage/postgres_changes.hpp"
#include "storage/postgres_store.hpp"
#include "tests/postgres/cluster.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

namespace emr {
namespace {

using namespace std::chrono_literals;

/// What the handler heard, in order.
class heard {
public:
  postgres_changes::handler handler() {
    return [this](change_topic t) {
      std::lock_guard lock(mutex_);
      topics_.push_back(t);
      changed_.notify_all();
    };
  }
  /// Waits (10 s at most: a loaded machine) until `topic` was heard `n` times in all.
  bool reaches(change_topic topic, std::size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return count(topic) >= n; });
  }
  std::size_t count(change_topic topic) const {
    return static_cast<std::size_t>(std::count(topics_.begin(), topics_.end(), topic));
  }
  std::size_t heard_of(change_topic topic) {
    std::lock_guard lock(mutex_);
    return count(topic);
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<change_topic> topics_;
};

struct postgres_changes_test : ::testing::Test {
  void SetUp() override { ASSERT_EQ(database.error(), ""); }
  testing::postgres_database database;
};

TEST_F(postgres_changes_test, a_write_through_another_store_is_heard_once) {
  postgres_store writer{database.url()};
  heard h;
  // A resync far beyond the test: only the one at start and the notifications are heard.
  postgres_changes changes{database.url(), h.handler(), 1h};
  ASSERT_TRUE(h.reaches(change_topic::keys, 1)) << "everything is read once when listening starts";
  ASSERT_TRUE(h.reaches(change_topic::providers, 1));
  auto key = writer.create_key("k", "pub_k", "hash");
  ASSERT_TRUE(writer.revoke_key(key.id));
  ASSERT_TRUE(h.reaches(change_topic::keys, 2)) << "the revocation";
  provider_record p;
  p.name = "voyage";
  p.type = "voyage";
  p.endpoint = "http://127.0.0.1:9/v1/embeddings";
  p.model = "voyage-3.5";
  p.api_key_env = "VOYAGE_API_KEY";
  ASSERT_TRUE(writer.add_provider(p));
  ASSERT_TRUE(h.reaches(change_topic::providers, 2)) << "the new provider";
  EXPECT_FALSE(writer.revoke_key(key.id)) << "nothing changed: nothing announced";
  p.model = "voyage-3-large";
  ASSERT_TRUE(writer.update_provider(p));
  ASSERT_TRUE(h.reaches(change_topic::providers, 3));
  EXPECT_EQ(h.heard_of(change_topic::keys), 2u)
      << "create_key announces nothing, a no-op revoke neither";
  // A key born with limits is announced: the others must not admit it without them.
  auto limited = writer.create_key("limited", "pub_l", "hash", key_limits{5, 0, 100});
  ASSERT_TRUE(h.reaches(change_topic::keys, 3)) << "the limited key";
  postgres_store reader{database.url()};
  EXPECT_EQ(reader.key(limited.id)->limits, (key_limits{5, 0, 100}));
}

TEST_F(postgres_changes_test, a_dropped_connection_is_reopened_and_everything_read_again) {
  heard h;
  postgres_changes changes{database.url(), h.handler(), 1h};
  ASSERT_TRUE(h.reaches(change_topic::keys, 1));
  ASSERT_EQ(testing::run_sql(database.admin_url(),
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname"
                             " = '" +
                                 database.name() + "' AND query LIKE 'LISTEN%'"),
            "");
  EXPECT_TRUE(h.reaches(change_topic::keys, 2)) << "read again once listening again";
  postgres_store writer{database.url()};
  auto key = writer.create_key("k", "pub_k", "hash");
  ASSERT_TRUE(writer.revoke_key(key.id));
  EXPECT_TRUE(h.reaches(change_topic::keys, 3)) << "and notifications are heard again";
}

} // namespace
} // namespace emr
