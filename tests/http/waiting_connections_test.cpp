// waiting_connections: when a request head is complete, too large or too slow, when an idle
// connection times out, which idle connection makes room first, and that a closing one only
// drops what it is sent; time is passed in.

#include "http/waiting_connections.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

using namespace std::chrono_literals;
using progress = waiting_connections::progress;

const waiting_limits limits{5s, 30s, 64};
const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

TEST(request_head_end, is_one_past_the_blank_line_after_the_request_line) {
  EXPECT_EQ(request_head_end("GET / HTTP/1.1\r\n\r\n"), 18u);
  EXPECT_EQ(request_head_end("GET / HTTP/1.1\r\nHost: a\r\n\r\n{\"input\""), 27u);
  EXPECT_EQ(request_head_end("GET / HTTP/1.1\r\nHost: a\r\n"), std::nullopt);
  // httplib ends lines at LF but takes only CR LF as the blank line.
  EXPECT_EQ(request_head_end("GET / HTTP/1.1\nHost: a\n\n"), std::nullopt);
  EXPECT_EQ(request_head_end(""), std::nullopt);
}

TEST(waiting_connections, a_head_sent_a_byte_at_a_time_completes_on_its_last_byte) {
  waiting_connections table{limits};
  table.add({7, {}, false}, t0);
  std::string head = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::size_t i = 0; i + 1 < head.size(); ++i)
    ASSERT_EQ(table.received(7, head.substr(i, 1), t0 + 1ms * i), progress::waiting) << i;
  EXPECT_EQ(table.received(7, head.substr(head.size() - 1), t0 + 1s), progress::head_complete);
  auto c = table.take(7);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->received, head);
  EXPECT_EQ(table.size(), 0u);
}

TEST(waiting_connections, a_head_over_the_size_limit_can_never_complete) {
  waiting_connections table{limits};
  table.add({7, {}, false}, t0);
  EXPECT_EQ(table.received(7, "GET /" + std::string(40, 'a'), t0), progress::waiting);
  EXPECT_EQ(table.received(7, std::string(30, 'a'), t0), progress::head_too_large);
}

TEST(waiting_connections,
     a_head_that_ends_past_the_size_limit_in_the_read_that_ends_it_is_too_large) {
  waiting_connections table{limits};
  table.add({7, {}, false}, t0);
  const std::string line = "GET / HTTP/1.1\r\n";
  EXPECT_EQ(table.received(7, line + "X: " + std::string(30, 'a'), t0), progress::waiting);
  // 49 bytes so far; this read ends the head at byte 71, with the limit at 64.
  EXPECT_EQ(table.received(7, std::string(18, 'a') + "\r\n\r\n", t0), progress::head_too_large);
  // One that ends exactly at the limit is whole.
  table.add({8, {}, false}, t0);
  auto at_limit = line + "X: " + std::string(41, 'a') + "\r\n\r\n";
  ASSERT_EQ(at_limit.size(), 64u);
  EXPECT_EQ(table.received(8, at_limit, t0), progress::head_complete);
}

TEST(waiting_connections,
     a_head_times_out_from_its_first_byte_and_an_idle_one_from_its_last_answer) {
  waiting_connections table{limits};
  table.add({1, {}, false}, t0); // idle from t0
  table.add({2, {}, false}, t0); // begins a head at t0 + 4 s
  table.received(2, "GET", t0 + 4s);
  EXPECT_TRUE(table.take_expired(t0 + 5s - 1ms).empty());
  auto expired = table.take_expired(t0 + 5s);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].conn.fd, 1);
  EXPECT_FALSE(expired[0].head_begun);
  // Trickling more bytes does not move the head's deadline.
  table.received(2, " / HTTP", t0 + 30s);
  EXPECT_TRUE(table.take_expired(t0 + 34s - 1ms).empty());
  expired = table.take_expired(t0 + 34s);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].conn.fd, 2);
  EXPECT_TRUE(expired[0].head_begun);
  EXPECT_EQ(table.size(), 0u);
}

TEST(waiting_connections, a_connection_given_back_with_part_of_its_next_head_is_timed_as_a_head) {
  waiting_connections table{limits};
  table.add({3, "GET / HT", false}, t0);
  EXPECT_TRUE(table.take_expired(t0 + 10s).empty());
  EXPECT_EQ(table.received(3, "TP/1.1\r\n\r\n", t0 + 10s), progress::head_complete);
}

TEST(waiting_connections, the_connection_idle_longest_makes_room_first_and_heads_never_do) {
  waiting_connections table{limits};
  table.add({1, {}, false}, t0 + 2s);
  table.add({2, {}, false}, t0);
  table.add({3, {}, false}, t0 + 1s);
  table.add({4, {}, false}, t0 - 1s);
  table.received(4, "POST", t0);
  EXPECT_EQ(table.take_oldest_idle()->fd, 2);
  EXPECT_EQ(table.take_oldest_idle()->fd, 3);
  EXPECT_EQ(table.take_oldest_idle()->fd, 1);
  EXPECT_FALSE(table.take_oldest_idle().has_value());
  EXPECT_TRUE(table.holds(4));
}

TEST(waiting_connections, a_closing_connection_drops_what_it_is_sent_until_the_idle_timeout) {
  waiting_connections table{limits};
  table.add({7, {}, false, true}, t0);
  EXPECT_EQ(table.received(7, "GET /health HTTP/1.1\r\n\r\n", t0 + 1s), progress::waiting)
      << "never a request: its connection has had its last answer";
  EXPECT_EQ(table.received(7, std::string(100, 'x'), t0 + 2s), progress::waiting)
      << "never too large either: nothing is kept";
  EXPECT_TRUE(table.take_expired(t0 + 5s - 1ms).empty()) << "sending does not extend its time";
  auto expired = table.take_expired(t0 + 5s);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].conn.fd, 7);
  EXPECT_TRUE(expired[0].conn.received.empty());
  EXPECT_FALSE(expired[0].head_begun) << "closed quietly, not answered 408";
}

} // namespace
} // namespace emr
