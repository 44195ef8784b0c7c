// connection_stream: a request whose bytes are still on the network stops counting as arriving,
// so a slow client cannot hold other callers' batches back; one whose bytes are here keeps it.

#include "http/connection_stream.hpp"

#include "actors/arrivals.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

namespace emr {
namespace {

using namespace std::chrono_literals;

struct socket_pair {
  int fds[2] = {-1, -1};
  socket_pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  ~socket_pair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

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

} // namespace
} // namespace emr
