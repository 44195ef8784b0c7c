// Fair batches on a live `emr serve`: a tenant's bulk backlog does not hold another tenant's lone
// text behind it.

#include "tests/integration/harness.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace json = boost::json;
using namespace emr::testing;

namespace {

struct fair_batches : ::testing::Test {
  scratch_dir dir;
  // Slow calls, so that a backlog lasts long enough to be queued behind.
  fake_provider fake{dir, {"--latency-ms", "100"}};
  emr_server emr{dir};
  std::string bulk_key, interactive_key;

  void SetUp() override {
    ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5", 128),
              201);
    bulk_key = emr.create_key("bulk-indexer");
    interactive_key = emr.create_key("search-api");
  }

  std::int64_t queued_texts() const {
    return emr.stats().at("providers").at(0).at("queued_texts").to_number<std::int64_t>();
  }
};

std::string inputs(const std::string& prefix, int n) {
  json::array texts;
  for (int i = 0; i < n; ++i)
    texts.emplace_back(prefix + " " + std::to_string(i));
  return json::serialize(texts);
}

} // namespace

TEST_F(fair_batches, a_lone_text_overtakes_another_tenants_backlog) {
  // The bulk tenant queues 16 requests of 2,048 texts: 256 full calls, 16 at a time. (Short
  // vectors in base64 keep its answers cheap to render and read; the lone text asks for the same
  // dimensions, so that it waits in the same queue.)
  constexpr int bulk_requests = 16;
  std::vector<std::future<int>> bulk;
  for (int r = 0; r < bulk_requests; ++r)
    bulk.push_back(std::async(std::launch::async, [&, r] {
      return emr
          .embed(bulk_key,
                 R"({"provider":"voyage","dimensions":256,"encoding_format":"base64","input":)" +
                     inputs("bulk " + std::to_string(r), 2048) + "}")
          .status;
    }));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (queued_texts() < 16'000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  ASSERT_GE(queued_texts(), 16'000) << "the backlog never formed";

  auto calls_before = fake.stats().at("calls").as_int64();
  auto lone = emr.embed(interactive_key,
                        R"({"provider":"voyage","dimensions":256,"input":"where is my order"})");
  auto calls_while_waiting = fake.stats().at("calls").as_int64() - calls_before;
  ASSERT_EQ(lone.status, 200) << lone.body;
  EXPECT_TRUE(is_fakes_vector(lone.json().at("data").at(0).at("embedding"), "voyage-3.5",
                              "where is my order", "", 256));
  // Queued first come, first served, the lone text would wait for every bulk text queued before
  // it: over a hundred calls. Fairly queued, it rides one of the next calls to start, which end
  // within two rounds of the 16 calls emr keeps out at once.
  EXPECT_LE(calls_while_waiting, 32) << "upstream calls made while the lone text waited";
  for (auto& f : bulk)
    EXPECT_EQ(f.get(), 200);
  auto stats = fake.stats();
  EXPECT_EQ(stats.at("texts").as_int64(), bulk_requests * 2048 + 1);
  EXPECT_LE(stats.at("largest_batch").as_int64(), 128);
}
