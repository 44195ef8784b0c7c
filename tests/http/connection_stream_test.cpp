// connection_stream: a request whose bytes are still on the network stops counting as arriving,
// so a slow client cannot hold other callers' batches back; one whose bytes are here keeps it.
// An answer's writes leave together, in order, and before the stream waits for the client.

#include "http/connection_stream.hpp"

#include "actors/arrivals.hpp"
#include "tests/http/socket_pair.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace emr {
namespace {

using namespace std::chrono_literals;

using testing::socket_pair;

TEST(connection_stream, a_request_waiting_for_its_bytes_stops_counting_as_arriving) {
  socket_pair sockets;
  connection_stream stream{sockets.fds[0], "ab", 1s, 1s};
  arrivals arriving;
  arrivals::entry request{arriving};
  char buffer[8];
  ASSERT_EQ(stream.read(buffer, sizeof buffer), 2) << "what the gate already received";
  ASSERT_EQ(::send(sockets.fds[1], "cd", 2, 0), 2);
  ASSERT_EQ(stream.read(buffer, sizeof buffer), 2);
  EXPECT_EQ(std::string(buffer, 2), "cd");
  EXPECT_EQ(arriving.under_way(), 1u) << "its bytes were here: still arriving";
  stream.read_until(connection_stream::clock::now());
  EXPECT_EQ(stream.read(buffer, sizeof buffer), -1);
  EXPECT_EQ(arriving.under_way(), 0u) << "it had to wait for the network";
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

/// Up to `bytes` from fd: fewer when a second passes with nothing more, so a stream that failed
/// to send fails the test instead of hanging it.
std::string receive(int fd, std::size_t bytes) {
  std::string got(bytes, '\0');
  std::size_t have = 0;
  while (have < bytes) {
    if (pollfd p{fd, POLLIN, 0}; ::poll(&p, 1, 1000) != 1)
      break;
    auto n = ::recv(fd, got.data() + have, bytes - have, 0);
    if (n <= 0)
      break;
    have += static_cast<std::size_t>(n);
  }
  got.resize(have);
  return got;
}

TEST(connection_stream, an_answers_head_leaves_with_its_body) {
  socket_pair sockets;
  connection_stream stream{sockets.fds[0], "", 1s, 1s};
  ASSERT_EQ(stream.write("HTTP/1.1 200 OK\r\n\r\n", 19), 19);
  EXPECT_FALSE(readable(sockets.fds[1])) << "the head waits for its body";
  ASSERT_EQ(stream.write("{}", 2), 2);
  ASSERT_TRUE(stream.flush());
  char got[64];
  EXPECT_EQ(::recv(sockets.fds[1], got, sizeof got, MSG_DONTWAIT), 21) << "one send of both";
  EXPECT_EQ(std::string(got, 21), "HTTP/1.1 200 OK\r\n\r\n{}");
  EXPECT_TRUE(stream.flush()) << "nothing held: nothing to send";
  EXPECT_FALSE(readable(sockets.fds[1]));
}

TEST(connection_stream, a_large_body_goes_at_once_after_what_was_held) {
  socket_pair sockets;
  connection_stream stream{sockets.fds[0], "", 1s, 1s};
  std::string head = "HTTP/1.1 200 OK\r\n\r\n";
  std::string body(100 * 1024, 'x');
  body.back() = 'y';
  ASSERT_EQ(stream.write(head.data(), head.size()), static_cast<ssize_t>(head.size()));
  ASSERT_EQ(stream.write(body.data(), body.size()), static_cast<ssize_t>(body.size()));
  EXPECT_EQ(receive(sockets.fds[1], head.size() + body.size()), head + body);
  EXPECT_FALSE(readable(sockets.fds[1])) << "nothing sent twice";
}

TEST(connection_stream, waiting_for_the_client_first_sends_what_is_held) {
  socket_pair sockets;
  connection_stream stream{sockets.fds[0], "", 1s, 1s};
  // httplib's answer to `Expect: 100-continue`, after which the client sends the body.
  std::string go_on = "HTTP/1.1 100 Continue\r\n\r\n";
  ASSERT_EQ(stream.write(go_on.data(), go_on.size()), static_cast<ssize_t>(go_on.size()));
  stream.read_until(connection_stream::clock::now());
  char buffer[8];
  EXPECT_EQ(stream.read(buffer, sizeof buffer), -1) << "no body came before the deadline";
  EXPECT_EQ(receive(sockets.fds[1], go_on.size()), go_on);
}

TEST(connection_stream, a_write_to_a_closed_client_fails) {
  socket_pair sockets;
  connection_stream stream{sockets.fds[0], "", 1s, 1s};
  ::close(sockets.fds[1]);
  sockets.fds[1] = -1;
  ASSERT_EQ(stream.write("abc", 3), 3) << "held: the failure shows when it is sent";
  EXPECT_FALSE(stream.flush());
}

} // namespace
} // namespace emr
