// deferred_answer: an answer written from another thread reaches the client whole, with the head
// httplib would write, and the connection goes on once both parties are done; a large answer's
// body goes back to answer_bodies for the next answer.

#include "http/deferred_answer.hpp"

#include "http/answer_bodies.hpp"

#include "tests/http/socket_pair.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

namespace emr {
namespace {

using namespace std::chrono_literals;

struct recording_owner : connection_owner {
  std::vector<std::pair<int, answered>> carried;
  int ran_blocking = 0;
  void carry_on(int fd, answered how) override { carried.emplace_back(fd, std::move(how)); }
  void run_blocking(std::function<void()> job) override {
    ++ran_blocking;
    job();
  }
  bool stopping() const override { return false; }
  std::chrono::steady_clock::duration write_timeout() const override { return 5s; }
  std::string keep_alive() const override { return "timeout=5, max=100"; }
};

TEST(deferred_answer, a_large_answer_reaches_the_client_whole_and_its_body_serves_the_next) {
  testing::socket_pair sockets;
  recording_owner owner;
  constexpr std::size_t body_bytes = 3 << 20; // more than the socket takes at once
  std::string received;
  // A short answer fails the test instead of holding the client's read forever.
  timeval wait_at_most{5, 0};
  ASSERT_EQ(
      ::setsockopt(sockets.fds[1], SOL_SOCKET, SO_RCVTIMEO, &wait_at_most, sizeof wait_at_most), 0);
  std::thread client([&] {
    char chunk[65536];
    for (;;) {
      auto n = ::read(sockets.fds[1], chunk, sizeof chunk);
      if (n <= 0)
        return;
      received.append(chunk, static_cast<std::size_t>(n));
      if (received.size() >= body_bytes && received.find("\r\n\r\n") != std::string::npos &&
          received.size() - received.find("\r\n\r\n") - 4 == body_bytes)
        return;
    }
  });

  auto answer = std::make_shared<deferred_answer>(sockets.fds[0], owner, false);
  answer->request_done("GET /next", true, true);
  EXPECT_TRUE(owner.carried.empty()) << "the answer is not out yet";
  httplib::Response res;
  res.status = 200;
  res.set_header("Content-Type", "application/json");
  res.body = answer_bodies().take(body_bytes);
  res.body.assign(body_bytes, 'v');
  const char* storage = res.body.data();
  answer->send(std::move(res));
  client.join();

  auto head_end = received.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  auto head = received.substr(0, head_end + 4);
  EXPECT_EQ(head, "HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\nContent-Type: "
                  "application/json\r\nKeep-Alive: timeout=5, max=100\r\n\r\n");
  EXPECT_EQ(received.size() - head.size(), body_bytes);
  EXPECT_TRUE(std::all_of(received.begin() + static_cast<std::ptrdiff_t>(head.size()),
                          received.end(), [](char c) { return c == 'v'; }));
  EXPECT_EQ(owner.ran_blocking, 1) << "the rest waited for room on an HTTP thread";
  ASSERT_EQ(owner.carried.size(), 1u);
  EXPECT_EQ(owner.carried[0].first, sockets.fds[0]);
  EXPECT_TRUE(owner.carried[0].second.keep);
  EXPECT_FALSE(owner.carried[0].second.failed);
  EXPECT_EQ(owner.carried[0].second.unread, "GET /next");

  EXPECT_EQ(answer_bodies().take(body_bytes).data(), storage)
      << "the next large answer is written into the same pages";
}

} // namespace
} // namespace emr
