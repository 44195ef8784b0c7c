// fleet_ledger against a real PostgreSQL 15 cluster: replicas count each other by heartbeat and
// stop counting one that leaves, share one bucket per provider on the database's clock, and see
// each other's pauses.

#include "storage/fleet_ledger.hpp"
#include "storage/postgres_changes.hpp"
#include "storage/postgres_store.hpp"
#include "tests/postgres/cluster.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <optional>

namespace emr {
namespace {

struct fleet_ledger_test : ::testing::Test {
  void SetUp() override {
    ASSERT_EQ(database.error(), "");
    postgres_store migrated{database.url()}; // the schema the ledger's tables are in
  }
  budget_ask ask(std::uint64_t requests) const {
    budget_ask a;
    a.provider = "voyage";
    a.requests_per_minute = 600;
    a.requests = requests;
    return a;
  }
  testing::postgres_database database;
};

TEST_F(fleet_ledger_test, replicas_count_each_other_and_one_that_leaves_is_no_longer_counted) {
  fleet_ledger first{database.url(), "first"};
  EXPECT_EQ(first.heartbeat(), 1u);
  {
    fleet_ledger second{database.url(), "second"};
    EXPECT_EQ(second.heartbeat(), 2u);
    EXPECT_EQ(first.heartbeat(), 2u);
  }
  EXPECT_EQ(first.heartbeat(), 1u);
  EXPECT_EQ(testing::run_sql(database.url(),
                             "UPDATE fleet_replicas SET seen_at = seen_at - 60 WHERE id = 'first';"
                             "INSERT INTO fleet_replicas VALUES ('silent', 0)"),
            "");
  EXPECT_EQ(first.heartbeat(), 1u) << "a replica silent for long is not in the fleet";
}

TEST_F(fleet_ledger_test, replicas_take_their_grants_from_one_bucket_per_provider) {
  fleet_ledger first{database.url(), "first"};
  fleet_ledger second{database.url(), "second"};
  first.heartbeat();
  second.heartbeat();
  ASSERT_EQ(first.heartbeat(), 2u);
  // A full bucket of 600 a minute holds 60: a fair half each, then the rest, then nothing.
  EXPECT_EQ(first.grant(ask(100)).requests, 30u);
  EXPECT_EQ(second.grant(ask(100)).requests, 30u);
  auto none = first.grant(ask(100));
  EXPECT_LE(none.requests, 1u) << "only what refilled in the moments between";
  EXPECT_LT(none.share, 0.05);
  auto other = ask(1);
  other.provider = "cohere";
  EXPECT_EQ(second.grant(other).requests, 1u) << "another provider has a bucket of its own";
}

TEST_F(fleet_ledger_test, a_pause_one_replica_records_holds_every_replica_and_is_announced) {
  fleet_ledger first{database.url(), "first"};
  fleet_ledger second{database.url(), "second"};
  ASSERT_EQ(first.grant(ask(1)).requests, 1u);
  EXPECT_TRUE(first.pauses().empty());
  std::mutex mutex;
  std::condition_variable heard;
  int resyncs = 0, pauses_heard = 0;
  postgres_changes listener{database.url(), [&](change_topic topic) {
                              std::lock_guard lock(mutex);
                              resyncs += topic == change_topic::keys;
                              pauses_heard += topic == change_topic::pauses;
                              heard.notify_all();
                            }};
  std::unique_lock lock(mutex);
  // Its first read of everything comes once it listens.
  ASSERT_TRUE(heard.wait_for(lock, std::chrono::seconds{10}, [&] { return resyncs > 0; }));
  lock.unlock();
  second.pause("voyage", 30);
  lock.lock();
  EXPECT_TRUE(heard.wait_for(lock, std::chrono::seconds{10}, [&] { return pauses_heard > 0; }))
      << "every replica hears of the pause at once";
  lock.unlock();
  auto paused = first.pauses();
  ASSERT_EQ(paused.size(), 1u);
  EXPECT_EQ(paused[0].first, "voyage");
  EXPECT_GT(paused[0].second, 29);
  auto g = first.grant(ask(1));
  EXPECT_EQ(g.requests, 0u);
  EXPECT_GT(g.paused_for_s, 29);
  EXPECT_LE(g.paused_for_s, 30);
}

TEST_F(fleet_ledger_test, out_of_reach_it_throws_store_unavailable_without_the_password) {
  std::optional<fleet_ledger> ledger;
  try {
    ledger.emplace("postgresql://emr:hunter2-secret@127.0.0.1:1/emr", "lost");
    FAIL() << "connected to nothing";
  } catch (const store_unavailable& e) {
    EXPECT_EQ(std::string{e.what()}.find("hunter2-secret"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace emr
