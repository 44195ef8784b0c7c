#pragma once
// Two connected local sockets: a server's end and its client's, for code that writes to a
// connection.

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

namespace emr::testing {

struct socket_pair {
  int fds[2] = {-1, -1};
  socket_pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  socket_pair(const socket_pair&) = delete;
  socket_pair& operator=(const socket_pair&) = delete;
  ~socket_pair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

} // namespace emr::testing
