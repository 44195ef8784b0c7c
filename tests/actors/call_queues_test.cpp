// The batcher's queues, without an actor: what the next call of each key holds, counted in
// distinct texts and estimated tokens, and what is taken when callers stop waiting.

#include "actors/call_queues.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace call_queues_tests {

using namespace std::chrono_literals;

const batch_key documents{"voyage-3.5", "document", 0};
const batch_key queries{"voyage-3.5", "query", 0};
const clock_time t0{};

pending_chunk chunk(std::vector<std::string> texts, clock_time arrived = t0,
                    clock_time deadline = clock_time::max(), std::int64_t tenant = 0) {
  std::size_t tokens = 0;
  for (const auto& t : texts)
    tokens += estimate_tokens(t);
  return pending_chunk{std::move(texts), tokens, "req", {}, arrived, deadline, tenant, 0};
}

// A tenant's chunk of `n` texts named "<tenant>-<first>".."<tenant>-<first + n - 1>".
pending_chunk tenants_chunk(std::int64_t tenant, std::size_t first, std::size_t n,
                            clock_time arrived = t0) {
  std::vector<std::string> texts;
  for (std::size_t i = first; i < first + n; ++i)
    texts.push_back(std::to_string(tenant) + "-" + std::to_string(i));
  return chunk(std::move(texts), arrived, clock_time::max(), tenant);
}

// How many texts of each tenant a call carries.
std::map<std::int64_t, std::size_t> texts_by_tenant(const std::vector<pending_chunk>& call) {
  std::map<std::int64_t, std::size_t> out;
  for (const auto& c : call)
    out[c.tenant] += c.texts.size();
  return out;
}

std::vector<std::vector<std::string>> texts_of(const std::vector<pending_chunk>& chunks) {
  std::vector<std::vector<std::string>> out;
  for (const auto& c : chunks)
    out.push_back(c.texts);
  return out;
}

TEST(call_queues, the_next_call_is_counted_in_distinct_texts) {
  call_queues q;
  batch_limits four{4, 0};
  q.push(documents, chunk({"p"}), four);
  q.push(documents, chunk({"q", "p"}), four);
  q.push(documents, chunk({"p", "q", "r"}), four);
  const auto& queue = q.queues().at(documents);
  EXPECT_EQ(queue.prefix.chunks, 3u);
  EXPECT_EQ(queue.prefix.texts, 6u);
  EXPECT_EQ(queue.prefix.distinct, 3u);
  EXPECT_FALSE(queue.call_full());
  q.push(documents, chunk({"s"}), four);
  EXPECT_TRUE(q.queues().at(documents).call_full()) << "four distinct texts fill a call of four";
  EXPECT_EQ(q.texts(), 7u);
}

TEST(call_queues, a_chunk_that_does_not_fit_closes_the_call_and_waits_for_the_next) {
  call_queues q;
  batch_limits four{4, 0};
  q.push(documents, chunk({"a", "b", "c"}), four);
  q.push(documents, chunk({"d", "e"}), four);
  q.push(documents, chunk({"a"}), four); // would fit, but the call is closed: order is kept
  const auto& queue = q.queues().at(documents);
  EXPECT_EQ(queue.prefix.chunks, 1u);
  EXPECT_TRUE(queue.call_full());
  EXPECT_EQ(texts_of(q.take_call(documents)),
            (std::vector<std::vector<std::string>>{{"a", "b", "c"}}));
  const auto& rest = q.queues().at(documents);
  EXPECT_EQ(rest.prefix.chunks, 2u) << "counted anew once the call left";
  EXPECT_EQ(rest.prefix.distinct, 3u);
  EXPECT_EQ(q.texts(), 3u);
}

TEST(call_queues, a_chunk_whose_texts_are_all_in_the_call_fits_whatever_its_size) {
  call_queues q;
  batch_limits two{2, 0};
  q.push(documents, chunk({"a", "b"}), two);
  q.push(documents, chunk({"b", "a"}), two);
  EXPECT_EQ(q.queues().at(documents).prefix.chunks, 2u);
  EXPECT_EQ(q.queues().at(documents).prefix.distinct, 2u);
}

TEST(call_queues, the_token_cap_bounds_a_call_and_nine_tenths_of_it_is_full) {
  call_queues q;
  batch_limits capped{100, 1000};
  q.push(documents, chunk({std::string(1500, 'a')}), capped); // 501 tokens
  EXPECT_FALSE(q.queues().at(documents).call_full());
  q.push(documents, chunk({std::string(1200, 'b')}), capped); // 401: 902 in all, over 900
  EXPECT_TRUE(q.queues().at(documents).call_full());
  EXPECT_EQ(q.queues().at(documents).prefix.chunks, 2u);
  q.push(documents, chunk({"c"}), capped);                   // 1 more would still fit the cap
  q.push(documents, chunk({std::string(600, 'd')}), capped); // 201: over the cap
  EXPECT_EQ(q.queues().at(documents).prefix.chunks, 3u);
  EXPECT_TRUE(q.queues().at(documents).prefix.closed);
}

TEST(call_queues, keys_are_offered_longest_waiting_first) {
  call_queues q;
  q.push(queries, chunk({"q"}, t0 + 2ms), {4, 0});
  q.push(documents, chunk({"d"}, t0 + 1ms), {4, 0});
  auto order = q.by_age();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(*order[0].first, documents);
  EXPECT_EQ(*order[1].first, queries);
}

TEST(call_queues, chunks_due_are_taken_from_queues_and_put_back_halves_alike) {
  call_queues q;
  batch_limits four{4, 0};
  q.push(documents, chunk({"a"}, t0, t0 + 10ms), four);
  q.push(documents, chunk({"b"}, t0, t0 + 30ms), four);
  std::vector<pending_chunk> half;
  half.push_back(chunk({"h1"}, t0, t0 + 20ms));
  half.push_back(chunk({"h2"}, t0, t0 + 40ms));
  q.put_back(queries, std::move(half));
  EXPECT_EQ(q.next_deadline(), t0 + 10ms);
  EXPECT_EQ(texts_of(q.take_due(t0 + 20ms)),
            (std::vector<std::vector<std::string>>{{"a"}, {"h1"}}));
  EXPECT_EQ(q.next_deadline(), t0 + 30ms);
  EXPECT_EQ(q.texts(), 1u);
  EXPECT_EQ(q.queues().at(documents).prefix.chunks, 1u);
  auto back = q.take_put_back();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->first, queries);
  EXPECT_EQ(texts_of(back->second), (std::vector<std::vector<std::string>>{{"h2"}}));
  EXPECT_EQ(texts_of(q.take_due()), (std::vector<std::vector<std::string>>{{"b"}}));
  EXPECT_FALSE(q.waiting());
  EXPECT_TRUE(q.queues().empty());
}

TEST(call_queues, halves_put_back_go_first_the_latest_ahead) {
  call_queues q;
  std::vector<pending_chunk> second, first;
  second.push_back(chunk({"second"}));
  first.push_back(chunk({"first"}));
  q.put_back(documents, std::move(second));
  q.put_back(documents, std::move(first));
  EXPECT_TRUE(q.waiting());
  EXPECT_EQ(texts_of(q.take_put_back()->second),
            (std::vector<std::vector<std::string>>{{"first"}}));
  EXPECT_EQ(texts_of(q.take_put_back()->second),
            (std::vector<std::vector<std::string>>{{"second"}}));
  EXPECT_FALSE(q.take_put_back());
}

TEST(call_queues, a_rejected_call_is_halved_by_the_distinct_texts_sent_again) {
  std::vector<pending_chunk> call;
  call.push_back(chunk({"a", "b", "c", "d", "e", "f"}));
  call.push_back(chunk({"g"}));
  call.push_back(chunk({"h"}));
  call.push_back(chunk({"i"}));
  EXPECT_EQ(halves_at(call), 1u) << "six texts against three, not seven against two";
  call.insert(call.begin(), chunk({"a", "b", "c"}));
  EXPECT_EQ(halves_at(call), 2u) << "a to f, then g, h and i: not a, b and c, then all nine";
  std::vector<pending_chunk> two;
  two.push_back(chunk({"x"}));
  two.push_back(chunk({"x", "y", "z"}));
  EXPECT_EQ(halves_at(two), 1u) << "two chunks always part";
  std::vector<pending_chunk> even;
  for (auto t : {"p", "q", "r", "s"})
    even.push_back(chunk({t}));
  EXPECT_EQ(halves_at(even), 2u);
}

// The texts of each run, for comparing whole spreads at once.
std::vector<std::vector<std::string>>
texts_of(const std::vector<std::vector<pending_chunk>>& runs) {
  std::vector<std::vector<std::string>> out;
  for (const auto& run : runs) {
    out.emplace_back();
    for (const auto& c : run)
      out.back().insert(out.back().end(), c.texts.begin(), c.texts.end());
  }
  return out;
}

TEST(call_queues, a_spread_batch_parts_at_chunk_boundaries_into_runs_of_about_equal_texts) {
  std::vector<pending_chunk> singles;
  for (int i = 0; i < 10; ++i)
    singles.push_back(chunk({"t" + std::to_string(i)}));
  EXPECT_EQ(texts_of(spread_evenly(std::move(singles), 3)),
            (std::vector<std::vector<std::string>>{
                {"t0", "t1", "t2", "t3"}, {"t4", "t5", "t6"}, {"t7", "t8", "t9"}}));

  std::vector<pending_chunk> uneven;
  uneven.push_back(chunk({"a", "b", "c", "d", "e", "f"}));
  uneven.push_back(chunk({"g"}));
  uneven.push_back(chunk({"h", "i"}));
  EXPECT_EQ(
      texts_of(spread_evenly(std::move(uneven), 3)),
      (std::vector<std::vector<std::string>>{{"a", "b", "c", "d", "e", "f"}, {"g"}, {"h", "i"}}))
      << "a chunk is never cut, and every run gets one";

  std::vector<pending_chunk> two;
  two.push_back(chunk({"x"}));
  two.push_back(chunk({"y"}));
  EXPECT_EQ(texts_of(spread_evenly(std::move(two), 3)),
            (std::vector<std::vector<std::string>>{{"x"}, {"y"}}))
      << "at most one run per chunk";

  std::vector<pending_chunk> whole;
  whole.push_back(chunk({"x", "y"}));
  EXPECT_EQ(texts_of(spread_evenly(std::move(whole), 1)),
            (std::vector<std::vector<std::string>>{{"x", "y"}}));
}

TEST(call_queues, texts_are_distinct_only_when_no_chunk_repeats_another_chunks_text) {
  std::vector<pending_chunk> call;
  call.push_back(chunk({"a", "b"}));
  call.push_back(chunk({"c"}));
  EXPECT_TRUE(texts_distinct(call));
  call.push_back(chunk({"d", "a"}));
  EXPECT_FALSE(texts_distinct(call));
  std::vector<pending_chunk> within;
  within.push_back(chunk({"e", "e"}));
  EXPECT_FALSE(texts_distinct(within));
}

TEST(call_queues, a_lone_text_goes_in_the_next_call_ahead_of_a_bulk_tenants_backlog) {
  call_queues q;
  batch_limits call{128, 0};
  // Tenant 1 queues 100 chunks of 100 texts; tenant 2 then sends one text.
  for (std::size_t c = 0; c < 100; ++c)
    q.push(documents, tenants_chunk(1, c * 100, 100), call);
  q.push(documents, tenants_chunk(2, 0, 1, t0 + 1ms), call);
  auto first = q.take_call(documents);
  EXPECT_EQ(texts_by_tenant(first), (std::map<std::int64_t, std::size_t>{{1, 100}, {2, 1}}))
      << "its tag (1) is ahead of every queued bulk chunk but the first (100)";
  EXPECT_EQ(first.front().tenant, 2);
  // Tenant 1's own chunks keep their order.
  EXPECT_EQ(first.back().texts.front(), "1-0");
  EXPECT_EQ(q.take_call(documents).front().texts.front(), "1-100");
}

TEST(call_queues, two_busy_tenants_share_each_call_by_texts) {
  call_queues q;
  batch_limits call{100, 0};
  // Tenant 1 sends chunks of 50 texts, tenant 2 of 10; both have far more queued than a call.
  for (std::size_t c = 0; c < 20; ++c)
    q.push(documents, tenants_chunk(1, c * 50, 50), call);
  for (std::size_t c = 0; c < 100; ++c)
    q.push(documents, tenants_chunk(2, c * 10, 10), call);
  std::map<std::int64_t, std::size_t> total;
  for (int k = 0; k < 10; ++k) {
    auto taken = texts_by_tenant(q.take_call(documents));
    EXPECT_EQ(taken[1] + taken[2], 100u) << "every call is full";
    for (auto [tenant, n] : taken)
      total[tenant] += n;
  }
  EXPECT_EQ(total[1], 500u);
  EXPECT_EQ(total[2], 500u);
}

TEST(call_queues, one_tenant_alone_is_served_in_arrival_order_and_the_oldest_chunk_is_known) {
  call_queues q;
  batch_limits call{4, 0};
  q.push(documents, tenants_chunk(1, 0, 3, t0 + 5ms), call);
  q.push(documents, tenants_chunk(1, 3, 3, t0 + 6ms), call);
  q.push(documents, tenants_chunk(2, 0, 1, t0 + 7ms), call);
  const auto& queue = q.queues().at(documents);
  EXPECT_EQ(queue.chunks.front().tenant, 2) << "tag 1 is ahead of tags 3 and 6";
  EXPECT_EQ(queue.oldest(), t0 + 5ms);
  EXPECT_EQ(q.by_age().front().second->oldest(), t0 + 5ms);
  EXPECT_EQ(queue.prefix.distinct, 4u) << "recounted after the chunk went ahead";
  q.take_call(documents);
  EXPECT_EQ(q.queues().at(documents).oldest(), t0 + 6ms);
  auto due = q.take_due(clock_time::max());
  ASSERT_EQ(due.size(), 1u);
  EXPECT_TRUE(q.queues().empty());
}

TEST(call_queues, a_tenant_whose_chunks_expired_is_not_pushed_back_for_them) {
  call_queues q;
  batch_limits call{100, 0};
  // Tenant 1's 500 texts (tags 50 to 500) expire unsent; tenant 2 keeps a backlog of 100-text
  // chunks (tags 100 to 1,000).
  for (std::size_t c = 0; c < 10; ++c) {
    auto expiring = tenants_chunk(1, c * 50, 50);
    expiring.deadline = t0 + 1s;
    q.push(documents, std::move(expiring), call);
  }
  for (std::size_t c = 0; c < 10; ++c)
    q.push(documents, tenants_chunk(2, c * 100, 100), call);
  EXPECT_EQ(q.take_due(t0 + 1s).size(), 10u);
  q.push(documents, tenants_chunk(1, 0, 1), call);
  EXPECT_EQ(q.queues().at(documents).chunks.front().tenant, 1)
      << "its next text goes ahead of tenant 2's backlog, as if the expired ones never came";
}

} // namespace call_queues_tests
} // namespace emr
