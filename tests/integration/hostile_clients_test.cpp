// Clients that attack the HTTP front-end before they authenticate: compression bombs, bodies
// promised but not sent, heads sent a byte at a time, idle connections held open by the
// hundred, and requests whose unread rest would pass for the next request on their connection.
// And callers whose answers are awkward to write: pipelined, read slowly, or asked compressed.
// emr's memory stays bounded (peak RSS), the attackers are answered or cut off within the limits,
// and a normal caller keeps getting verified vectors meanwhile.

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

namespace json = boost::json;
using namespace emr::testing;
using namespace std::chrono_literals;

namespace {

/// Peak resident memory of `pid` so far, in MiB (VmHWM).
std::size_t peak_rss_mib(pid_t pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stoul(line.substr(6)) / 1024;
  return 0;
}

/// A valid gzip stream of `mib` MiB of zeros, about 1 KB on the wire per MiB. Deflating that
/// much would take the test seconds; after a full flush each MiB compresses to the same bytes,
/// so one MiB's are repeated and the trailer is computed.
std::string gzip_of_zeros(std::size_t mib) {
  const std::string zeros(1 << 20, '\0');
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  auto step = [&](std::size_t bytes, int flush) {
    std::string out;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
    z.avail_in = static_cast<uInt>(bytes);
    char buffer[1 << 16];
    do {
      z.next_out = reinterpret_cast<Bytef*>(buffer);
      z.avail_out = sizeof buffer;
      deflate(&z, flush);
      out.append(buffer, sizeof buffer - z.avail_out);
    } while (z.avail_out == 0);
    return out;
  };
  auto first = step(zeros.size(), Z_FULL_FLUSH); // with the gzip header
  auto repeated = step(zeros.size(), Z_FULL_FLUSH);
  EXPECT_EQ(step(zeros.size(), Z_FULL_FLUSH), repeated);
  auto last = step(0, Z_FINISH); // the final block, then CRC-32 and length of 3 MiB
  deflateEnd(&z);
  std::string out = first;
  for (std::size_t i = 1; i < mib; ++i)
    out += repeated;
  auto chunk_crc = crc32(0, reinterpret_cast<const Bytef*>(zeros.data()), zeros.size());
  uLong crc = 0;
  for (std::size_t i = 0; i < mib; ++i)
    crc = crc32_combine(crc, chunk_crc, static_cast<z_off_t>(zeros.size()));
  auto size = static_cast<std::uint32_t>(mib << 20);
  out += last.substr(0, last.size() - 8);
  for (std::uint32_t word : {static_cast<std::uint32_t>(crc), size})
    for (int i = 0; i < 4; ++i)
      out.push_back(static_cast<char>((word >> (8 * i)) & 0xff));
  return out;
}

bool send_all(int fd, const std::string& bytes) {
  for (std::size_t sent = 0; sent < bytes.size();) {
    auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

/// What the server sent on `fd` until it closed it; nullopt if it is still open after `wait`.
std::optional<std::string> read_until_closed(int fd, std::chrono::milliseconds wait) {
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd readable{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0)
      return std::nullopt;
    char buffer[4096];
    auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0)
      return in;
    in.append(buffer, static_cast<std::size_t>(n));
  }
}

/// Open connections, closed when the test ends.
struct connections {
  std::vector<int> fds;
  ~connections() {
    for (int fd : fds)
      ::close(fd);
  }
  /// Opens one more and sends `first_bytes` on it; false if either failed.
  bool open(int port, const std::string& first_bytes) {
    int fd = connect_loopback(port);
    if (fd < 0)
      return false;
    fds.push_back(fd);
    return send_all(fd, first_bytes);
  }
};

std::string embed_head(const std::string& key, std::size_t content_length,
                       const std::string& extra = {}) {
  return "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(content_length) +
         "\r\n" + extra + "\r\n";
}

struct hostile_clients : voyage_stack {
  explicit hostile_clients(std::string config = {}) : voyage_stack(std::move(config)) {}

  // A normal caller gets its vectors, checked against the fake's.
  void expect_served(const std::string& while_what) const {
    emr::load::endpoint voyage;
    voyage.base_url = emr.base_url();
    voyage.bearer = key;
    voyage.extra_fields = {{"provider", "\"voyage\""}};
    auto results = emr::load::fire_concurrent(
        voyage, {emr::load::caller{{"served while " + while_what, "and a second text"}}},
        emr::load::expectation{"voyage-3.5"});
    EXPECT_TRUE(results[0].status == 200 && results[0].vectors_ok)
        << while_what << ": " << results[0].status << " " << results[0].error;
  }
};

void expect_error(const http_answer& answer, int status, const std::string& type) {
  EXPECT_EQ(answer.status, status) << answer.body.substr(0, 300);
  auto body = answer.json();
  ASSERT_TRUE(body.is_object() && body.as_object().contains("error")) << answer.body;
  EXPECT_EQ(body.at("error").at("type").as_string(), type) << answer.body;
}

using CompressedBodies = hostile_clients;

TEST_F(CompressedBodies, a_gzip_bomb_is_refused_before_it_is_inflated) {
  // About 0.9 MB on the wire, 900 MiB inflated: httplib would inflate it whole before any
  // handler, the 16 MiB body limit seeing only the compressed length.
  static const std::string bomb = gzip_of_zeros(900);
  ASSERT_LT(bomb.size(), 1'000'000u);
  auto before = peak_rss_mib(emr.process().pid());
  for (const char* encoding : {"gzip", "deflate", "br", "GZIP", "identity, gzip"}) {
    SCOPED_TRACE(encoding);
    auto answer =
        raw_http(emr.port(), embed_head("emr-wrong.key", bomb.size(),
                                        std::string{"Content-Encoding: "} + encoding + "\r\n") +
                                 bomb);
    expect_error(answer, 415, "unsupported_media_type");
    EXPECT_NE(answer.body.find("Content-Encoding"), std::string::npos) << answer.body;
    EXPECT_EQ(answer.headers["Connection"], "close");
  }
  // A few at once, as an attacker would send them.
  std::vector<std::future<http_answer>> parallel;
  for (int i = 0; i < 4; ++i)
    parallel.push_back(std::async(std::launch::async, [&] {
      return raw_http(emr.port(),
                      embed_head("emr-wrong.key", bomb.size(), "Content-Encoding: gzip\r\n") +
                          bomb);
    }));
  for (auto& answer : parallel)
    expect_error(answer.get(), 415, "unsupported_media_type");
  EXPECT_LT(peak_rss_mib(emr.process().pid()), before + 64);
  // An uncompressed body, declared so or not, is read as always.
  auto identity = emr.embed(key, R"({"input":"plain","provider":"voyage"})",
                            {{"Content-Encoding", "identity"}});
  EXPECT_EQ(identity.status, 200) << identity.body;
  expect_served("after the bombs");
}

/// The status of every answer in what a server sent, in order.
std::vector<int> statuses_in(const std::string& sent) {
  std::vector<int> statuses;
  for (auto at = sent.find("HTTP/1.1 "); at != std::string::npos;
       at = sent.find("HTTP/1.1 ", at + 1))
    statuses.push_back(std::stoi(sent.substr(at + 9, 3)));
  return statuses;
}

using PromisedBodies = hostile_clients;

TEST_F(PromisedBodies, memory_grows_with_the_bytes_sent_not_the_length_declared) {
  // Each declares the 16 MiB maximum and sends ten bytes: 300 of them would be 4.8 GB if the
  // declared length were reserved.
  auto before = peak_rss_mib(emr.process().pid());
  connections slow;
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(slow.open(emr.port(), embed_head("emr-wrong.key", 16u << 20) + "{\"input\":"));
  expect_served("300 bodies are promised");
  EXPECT_LT(peak_rss_mib(emr.process().pid()), before + 64);
  // Nor do they hold batches back as requests still arriving: their bytes are not here. (Each
  // leaves the count once its HTTP thread finds the socket empty; on a loaded machine that may
  // take a moment.)
  auto give_up = std::chrono::steady_clock::now() + 10s;
  auto arriving = emr.stats().at("http_requests_arriving").to_number<std::int64_t>();
  while (arriving != 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
    arriving = emr.stats().at("http_requests_arriving").to_number<std::int64_t>();
  }
  EXPECT_EQ(arriving, 0);
}

TEST_F(PromisedBodies, a_body_is_refused_before_it_is_read_when_its_head_says_enough) {
  // Heads alone, their bodies never sent: each must be answered from its head, where reading the
  // body first would wait for the read timeout (10 s here).
  const std::string admin_head = "POST /admin/keys HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Authorization: Bearer not-the-secret\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
  struct row {
    std::string what, head;
    int status;
    std::string type;
  };
  const std::vector<row> rows{
      {"a caller without a valid key", embed_head("emr-wrong.key", 1 << 20), 401,
       "authentication_error"},
      {"no key at all",
       "POST /v1/embeddings/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n", 401,
       "authentication_error"},
      {"the admin API without its secret", admin_head, 401, "authentication_error"},
      {"a length over max_body_bytes", embed_head(key, (16u << 20) + 1), 413, "payload_too_large"},
      {"a length no server could take",
       "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key +
           "\r\nContent-Length: 99999999999999999999999\r\n\r\n",
       413, "payload_too_large"},
      {"a multipart form",
       "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + key +
           "\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n",
       415, "unsupported_media_type"},
      {"a body for no route",
       "POST /v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n", 404,
       "not_found"},
      {"HTTP/2's preface method with no length", "PRI /v1/embeddings HTTP/1.1\r\nHost: x\r\n\r\n",
       501, "not_implemented"},
  };
  for (const auto& r : rows) {
    int fd = connect_loopback(emr.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, r.head)) << r.what;
    auto sent = read_until_closed(fd, 5s);
    ::close(fd);
    ASSERT_TRUE(sent.has_value()) << r.what << ": no answer before the body";
    EXPECT_EQ(statuses_in(*sent), std::vector<int>{r.status}) << r.what << ":\n" << *sent;
    EXPECT_NE(sent->find("\"type\":\"" + r.type + "\""), std::string::npos) << r.what << ":\n"
                                                                            << *sent;
  }
  expect_served("heads refused before their bodies");
}

// Heads and bodies must arrive whole within two seconds here.
struct slow_clients : hostile_clients {
  slow_clients() : hostile_clients("threads = 16\nrequest_read_timeout_s = 2\n") {}
};

using SlowClients = slow_clients;

TEST_F(SlowClients, heads_and_bodies_sent_a_byte_at_a_time_are_cut_off_at_the_deadline) {
  // 40 send their head a byte every 250 ms, 8 their body (which holds an HTTP thread): each
  // byte arrives well within read_timeout_s, so only the whole-request deadline can end them.
  constexpr int slow_heads = 40;
  constexpr int slow_bodies = 8;
  const std::string head = embed_head(key, 64);
  connections slow;
  for (int i = 0; i < slow_heads + slow_bodies; ++i)
    ASSERT_TRUE(slow.open(emr.port(), i < slow_heads ? std::string{} : head));
  std::atomic<bool> dribbling{true};
  std::thread dribbler([&] {
    for (std::size_t at = 0; dribbling; ++at) {
      for (int i = 0; i < slow_heads + slow_bodies; ++i)
        ::send(slow.fds[i], i < slow_heads ? &head[at % head.size()] : "x", 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(250ms);
    }
  });
  // Stopped however the test ends: a failed ASSERT returns early.
  struct stop_dribbling {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~stop_dribbling() {
      flag = false;
      thread.join();
    }
  } stop{dribbling, dribbler};
  expect_served("48 clients dribble");
  // Every one is answered 408 and closed: 2 s after its first byte, plus the sweep and slack
  // for a loaded machine.
  std::size_t cut_off = 0;
  for (int i = 0; i < slow_heads + slow_bodies; ++i) {
    auto said = read_until_closed(slow.fds[i], 8s);
    ASSERT_TRUE(said) << "connection " << i << " still open";
    EXPECT_EQ(said->rfind("HTTP/1.1 408 ", 0), 0u) << i << ": " << said->substr(0, 200);
    EXPECT_NE(said->find("\"request_timeout\""), std::string::npos) << said->substr(0, 300);
    ++cut_off;
  }
  EXPECT_EQ(cut_off, static_cast<std::size_t>(slow_heads + slow_bodies));
  expect_served("after the dribblers");
}

TEST_F(SlowClients, idle_keep_alive_connections_do_not_take_the_http_threads) {
  // 16 HTTP threads; 300 keep-alive connections that asked once and now idle (for up to the
  // test config's 30 s keep_alive_timeout), and 20 heads that never finish.
  connections idle;
  const std::string health = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(idle.open(emr.port(), health));
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(idle.open(emr.port(), "POST /v1/embeddings HTTP/1.1\r\nHost: 1"));
  const std::string body = R"({"input":["a","b"],"provider":"voyage"})";
  auto answer = raw_http(emr.port(), embed_head(key, body.size()) + body, 20s);
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.json().at("data").as_array().size(), 2u);
  expect_served("320 connections idle");
}

/// The connections `pid` accepted on `port` and still holds open: its sockets, as /proc/net/tcp
/// lists them, whose local port is `port` and that are not the listening one. (Its connections to
/// the fake provider, opened whenever a worker first calls, are not counted.)
std::size_t accepted_connections(pid_t pid, int port) {
  std::set<std::string> held;
  for (const auto& fd :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0)
      held.insert(target.substr(8, target.size() - 9));
  }
  std::ifstream tcp{"/proc/net/tcp"};
  std::string line;
  std::getline(tcp, line); // the column names
  std::size_t accepted = 0;
  while (std::getline(tcp, line)) {
    std::istringstream columns{line};
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    columns >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
        timeout >> inode;
    auto local_port = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
    accepted += local_port == port && state != "0A" && held.count(inode) > 0; // 0A: LISTEN
  }
  return accepted;
}

/// Waits up to `wait` for `pid` to hold `expected` connections on `port`; how many it holds then.
std::size_t accepted_reaching(pid_t pid, int port, std::size_t expected,
                              std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  auto held = accepted_connections(pid, port);
  while (held != expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    held = accepted_connections(pid, port);
  }
  return held;
}

struct connection_cap : hostile_clients {
  connection_cap() : hostile_clients("threads = 16\nmax_connections = 64\n") {}
};

using ConnectionCap = connection_cap;

TEST_F(ConnectionCap, at_the_cap_the_connection_idle_longest_makes_room) {
  connections idle;
  const std::string health = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(idle.open(emr.port(), health));
    // Answered, so idle from here on, in the order they were opened.
    ASSERT_FALSE(read_until_closed(idle.fds.back(), 50ms)) << i;
  }
  expect_served("64 connections idle at the cap");
  // Making room for that caller closed the one idle longest, and only that one.
  EXPECT_TRUE(read_until_closed(idle.fds.front(), 2s));
  EXPECT_FALSE(read_until_closed(idle.fds.back(), 200ms));
}

TEST_F(ConnectionCap, past_the_cap_and_its_margin_new_connections_are_closed_at_once) {
  // Heads begun and never finished are not idle, so they make no room: at most 16 beyond the cap
  // of 64 wait for their 503, and the rest are closed as they come. (A connection whose first
  // byte the gate has not read yet counts as idle, so on a busy machine some of the first are
  // closed to make room instead.)
  auto pid = emr.process().pid();
  // The stack's own set-up calls are gone, so that what emr holds is the test's alone.
  ASSERT_EQ(accepted_reaching(pid, emr.port(), 0, 5s), 0u);
  connections begun;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(begun.open(emr.port(), "G"));
    // Time for the gate to read the byte, so that most heads have begun before the next comes
    // (those it has not read yet may be closed as idle instead, which the checks below allow).
    std::this_thread::sleep_for(2ms);
  }
  // Those emr has not closed, once it has accepted every one still open.
  std::vector<int> held = begun.fds;
  auto give_up = std::chrono::steady_clock::now() + 10s;
  do {
    std::erase_if(held, [](int fd) { return read_until_closed(fd, 10ms).has_value(); });
  } while (accepted_connections(pid, emr.port()) != held.size() &&
           std::chrono::steady_clock::now() < give_up);
  EXPECT_EQ(accepted_connections(pid, emr.port()), held.size());
  EXPECT_LE(held.size(), 64u + 16u);
  // Those within the cap are served; those beyond it are told why.
  std::map<int, std::size_t> statuses;
  for (int fd : held)
    ASSERT_TRUE(
        send_all(fd, "ET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  for (int fd : held) {
    auto told = read_until_closed(fd, 5s);
    ASSERT_TRUE(told.has_value());
    for (int status : statuses_in(*told))
      ++statuses[status];
  }
  EXPECT_LE(statuses[200], 64u);
  EXPECT_LE(statuses[503], 16u);
  EXPECT_EQ(statuses[200] + statuses[503], held.size());
  for (int fd : begun.fds)
    ::close(fd);
  begun.fds.clear();
  EXPECT_EQ(accepted_reaching(pid, emr.port(), 0, 5s), 0u);
  expect_served("after a flood of connections");
}

using UnreadRequests = hostile_clients;

TEST_F(UnreadRequests, a_request_emr_cannot_read_whole_is_the_last_on_its_connection) {
  const std::string health = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  struct row {
    std::string what, request;
    int status;
  };
  const std::vector<row> rows = {
      {"an unknown method, its headers unread",
       "BREW /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\n\r\n", 501},
      {"a method in lower case (methods are case-sensitive)",
       "get /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 501},
      {"a request line without a version", "GET /health\r\nHost: 127.0.0.1\r\n\r\n", 400},
      {"a header line over httplib's limit",
       "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + std::string(9000, 'a') + "\r\n\r\n",
       400},
      {"a target over the length limit",
       "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414},
      // The body is a whole request: behind a proxy that reuses connections, its answer would
      // go to the next user.
      {"a GET with a body",
       "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
           std::to_string(health.size()) + "\r\n\r\n" + health,
       400},
  };
  for (const auto& r : rows) {
    int fd = connect_loopback(emr.port());
    ASSERT_GE(fd, 0);
    // A well-formed request follows on the same connection: it must not be answered as if it
    // were the one before's.
    ASSERT_TRUE(send_all(fd, r.request + health)) << r.what;
    auto sent = read_until_closed(fd, 10s);
    ::close(fd);
    ASSERT_TRUE(sent.has_value()) << r.what << ": the connection stayed open";
    EXPECT_EQ(statuses_in(*sent), std::vector<int>{r.status}) << r.what << ":\n" << *sent;
    EXPECT_NE(sent->find("Connection: close\r\n"), std::string::npos) << r.what;
    EXPECT_NE(sent->find("{\"error\":"), std::string::npos) << r.what << ": a JSON error";
  }
  EXPECT_EQ(http_call(emr.port(), "GET", "/health").status, 200);
  expect_served("requests emr could not read whole");
}

TEST_F(UnreadRequests, a_refusal_before_the_body_reaches_a_client_that_sends_it_all_first) {
  // Most clients write the whole body before they read: had emr closed on the unread body, the
  // rest would meet a reset, and the client would report that instead of the answer.
  int fd = connect_loopback(emr.port());
  ASSERT_GE(fd, 0);
  std::string body(4 << 20, 'x');
  ASSERT_TRUE(send_all(fd, "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n" +
                               body))
      << "emr reset the connection under the client's body";
  auto sent = read_until_closed(fd, 10s);
  ::close(fd);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(statuses_in(*sent), std::vector<int>{411}) << *sent;
  EXPECT_NE(sent->find("\"type\":\"length_required\""), std::string::npos) << *sent;
  expect_served("a refused body sent whole");
}

// The stack closes idle connections after 30 s: only the clients, or emr itself, end these.
using ClosingClients = hostile_clients;

TEST_F(ClosingClients, one_that_asked_to_close_is_let_go_at_once_and_an_unread_one_when_it_closes) {
  auto pid = emr.process().pid();
  connections asked;
  const std::string health = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(asked.open(emr.port(), health));
    auto sent = read_until_closed(asked.fds.back(), 10s);
    ASSERT_TRUE(sent.has_value()) << i;
    EXPECT_EQ(statuses_in(*sent), std::vector<int>{200}) << *sent;
  }
  // The clients keep their ends open: emr has closed its own.
  EXPECT_EQ(accepted_reaching(pid, emr.port(), 0, 5s), 0u);
  // A request emr did not read whole: its connection is held, dropping what still comes, until
  // the client closes it.
  connections unread;
  ASSERT_TRUE(unread.open(emr.port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Content-Length: 4\r\n\r\nbody"));
  auto sent = read_until_closed(unread.fds.back(), 10s);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(statuses_in(*sent), std::vector<int>{400}) << *sent;
  EXPECT_EQ(accepted_connections(pid, emr.port()), 1u);
  ::close(unread.fds.back());
  unread.fds.clear();
  EXPECT_EQ(accepted_reaching(pid, emr.port(), 0, 5s), 0u);
}

/// The answers in what a server sent, split by their Content-Length.
struct sent_answer {
  int status = 0;
  std::string head;
  std::string body;
};
std::vector<sent_answer> answers_in(const std::string& sent) {
  std::vector<sent_answer> answers;
  for (std::size_t at = 0; at < sent.size();) {
    auto head_end = sent.find("\r\n\r\n", at);
    if (head_end == std::string::npos)
      break;
    sent_answer a;
    a.head = sent.substr(at, head_end + 4 - at);
    a.status = std::stoi(a.head.substr(9, 3));
    auto length_at = a.head.find("Content-Length: ");
    std::size_t length =
        length_at == std::string::npos ? 0 : std::stoul(a.head.substr(length_at + 16));
    a.body = sent.substr(head_end + 4, length);
    at = head_end + 4 + length;
    answers.push_back(std::move(a));
  }
  return answers;
}

std::string embed_request(const std::string& key, const json::array& texts,
                          const std::string& extra_headers) {
  auto body = json::serialize(json::object{{"model", "voyage-3.5"}, {"input", texts}});
  return embed_head(key, body.size(), extra_headers) + body;
}

using AnswerWriting = hostile_clients;

TEST_F(AnswerWriting, pipelined_requests_are_answered_in_order_on_their_connection) {
  // The first answer is written by whichever thread brings its vectors; the second request,
  // already here, must wait for it and be read only after.
  int fd = connect_loopback(emr.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, embed_request(key, {"first in the pipe"}, "X-Request-Id: one\r\n") +
                               embed_request(key, {"second in the pipe", "and its companion"},
                                             "X-Request-Id: two\r\nConnection: close\r\n")));
  auto sent = read_until_closed(fd, 10s);
  ::close(fd);
  ASSERT_TRUE(sent.has_value()) << "the connection stayed open after Connection: close";
  auto answers = answers_in(*sent);
  ASSERT_EQ(answers.size(), 2u) << *sent;
  EXPECT_EQ(answers[0].status, 200);
  EXPECT_NE(answers[0].head.find("X-Request-Id: one\r\n"), std::string::npos) << answers[0].head;
  EXPECT_NE(answers[0].head.find("Keep-Alive: timeout="), std::string::npos) << answers[0].head;
  EXPECT_EQ(answers[0].head.find("Connection: close"), std::string::npos) << answers[0].head;
  EXPECT_EQ(answers[1].status, 200);
  EXPECT_NE(answers[1].head.find("X-Request-Id: two\r\n"), std::string::npos) << answers[1].head;
  EXPECT_NE(answers[1].head.find("Connection: close\r\n"), std::string::npos) << answers[1].head;
  auto first = json::parse(answers[0].body);
  auto second = json::parse(answers[1].body);
  ASSERT_EQ(first.at("data").as_array().size(), 1u);
  EXPECT_TRUE(
      is_fakes_vector(first.at("data").at(0).at("embedding"), "voyage-3.5", "first in the pipe"));
  ASSERT_EQ(second.at("data").as_array().size(), 2u);
  EXPECT_TRUE(
      is_fakes_vector(second.at("data").at(0).at("embedding"), "voyage-3.5", "second in the pipe"));
  EXPECT_TRUE(
      is_fakes_vector(second.at("data").at(1).at("embedding"), "voyage-3.5", "and its companion"));
}

/// A connection to emr whose receive buffer holds a few KiB: an answer cannot leave in one send.
int connect_with_small_receive_buffer(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    if (fd >= 0)
      ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(AnswerWriting, callers_that_read_their_answers_slowly_get_them_whole_and_hold_up_no_one) {
  // Nothing is read for a while, and the answers outgrow what loopback's socket takes (a few
  // MB): sixty pipelined answers of seven vectors (about 90 KB each, written by the thread that
  // brings them), and one of three hundred (about 4 MB, rendered and written on an HTTP thread).
  // What does not fit waits for room on an HTTP thread, never on an actor's.
  struct shape {
    int requests, texts;
  };
  for (auto each : {shape{60, 7}, shape{1, 300}}) {
    const int requests = each.requests, texts = each.texts;
    int fd = connect_with_small_receive_buffer(emr.port());
    ASSERT_GE(fd, 0);
    auto text = [&](int r, int i) {
      return "slow reader's text " + std::to_string(texts) + " " + std::to_string(r) + " " +
             std::to_string(i);
    };
    auto served = [&] {
      return http_call(emr.port(), "GET", "/status").json().at("requests_served").as_int64();
    };
    auto served_before = served();
    std::string pipelined;
    for (int r = 0; r < requests; ++r) {
      json::array sent_texts;
      for (int i = 0; i < texts; ++i)
        sent_texts.emplace_back(text(r, i));
      pipelined += embed_request(key, sent_texts, r + 1 == requests ? "Connection: close\r\n" : "");
    }
    ASSERT_TRUE(send_all(fd, pipelined));
    // While its answers wait: others are served, from the same provider and batcher.
    for (int i = 0; i < 3; ++i)
      expect_served("a caller not reading its answers, " + std::to_string(i));
    // Read only once the answers stop going out (the socket is full: the writer waits for room,
    // and the next request waits for the writer) or all of them are out.
    auto last = served(), stalled = decltype(last){0};
    for (auto quiet_since = std::chrono::steady_clock::now();
         last < served_before + requests + 3 &&
         std::chrono::steady_clock::now() - quiet_since < 500ms;) {
      std::this_thread::sleep_for(20ms);
      if (auto now = served(); now != last) {
        last = now;
        quiet_since = std::chrono::steady_clock::now();
      }
    }
    stalled = last - served_before - 3;
    auto sent = read_until_closed(fd, 60s);
    ::close(fd);
    ASSERT_TRUE(sent.has_value()) << texts;
    auto answers = answers_in(*sent);
    ASSERT_EQ(answers.size(), static_cast<std::size_t>(requests)) << sent->substr(0, 300);
    if (requests > 1) {
      EXPECT_LT(stalled, requests) << "the answers all fitted: nothing waited for room";
    }
    for (int r = 0; r < requests; ++r) {
      EXPECT_EQ(answers[r].status, 200) << answers[r].head;
      auto body = json::parse(answers[r].body);
      auto& data = body.at("data").as_array();
      ASSERT_EQ(data.size(), static_cast<std::size_t>(texts));
      for (int i : {0, texts / 2, texts - 1})
        EXPECT_TRUE(is_fakes_vector(data[static_cast<std::size_t>(i)].at("embedding"), "voyage-3.5",
                                    text(r, i)))
            << texts << ": " << r << " " << i;
    }
  }
}

TEST_F(AnswerWriting, answers_go_uncompressed_whatever_the_client_accepts) {
  // httplib would compress them, with brotli at its slowest where `br` is accepted.
  for (const char* accepted : {"gzip, deflate, br", "br", "gzip"}) {
    auto one = http_call(emr.port(), "POST", "/v1/embeddings",
                         R"({"model":"voyage-3.5","input":["compress me"]})",
                         {{"Authorization", "Bearer " + key}, {"Accept-Encoding", accepted}});
    EXPECT_EQ(one.status, 200) << accepted << ": " << one.body.substr(0, 200);
    EXPECT_EQ(one.headers.count("Content-Encoding"), 0u) << accepted;
    EXPECT_TRUE(
        is_fakes_vector(one.json().at("data").at(0).at("embedding"), "voyage-3.5", "compress me"))
        << accepted;
    auto batch =
        http_call(emr.port(), "POST", "/v1/embeddings/batch",
                  R"({"requests":[{"id":"a","model":"voyage-3.5","input":["compress me too"]}]})",
                  {{"Authorization", "Bearer " + key}, {"Accept-Encoding", accepted}});
    EXPECT_EQ(batch.status, 200) << accepted << ": " << batch.body.substr(0, 200);
    EXPECT_EQ(batch.headers.count("Content-Encoding"), 0u) << accepted;
    EXPECT_TRUE(is_fakes_vector(
        batch.json().at("results").at(0).at("response").at("data").at(0).at("embedding"),
        "voyage-3.5", "compress me too"))
        << accepted;
  }
}

TEST_F(AnswerWriting, answers_are_whole_whatever_ranges_the_client_asks_for) {
  // httplib would write each range a client asks for as a part of its own: a few kilobytes of
  // "0-," would make the answer thousands of times its size.
  std::string ranges = "bytes=0-";
  for (int i = 0; i < 500; ++i)
    ranges += ",0-";
  auto metrics = http_call(emr.port(), "GET", "/metrics", {}, {{"Range", ranges}});
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers.count("Content-Range"), 0u);
  EXPECT_EQ(metrics.headers.at("Content-Type").rfind("text/plain", 0), 0u)
      << metrics.headers.at("Content-Type");
  const std::string help = "# HELP emr_auth_argon2_verifications_total ";
  auto first = metrics.body.find(help);
  ASSERT_NE(first, std::string::npos) << metrics.body.substr(0, 300);
  EXPECT_EQ(metrics.body.find(help, first + 1), std::string::npos) << "one copy of the page";
  auto batch = http_call(emr.port(), "POST", "/v1/embeddings/batch",
                         R"({"requests":[{"id":"a","model":"voyage-3.5","input":["ranged"]}]})",
                         {{"Authorization", "Bearer " + key}, {"Range", ranges}});
  EXPECT_EQ(batch.status, 200) << batch.body.substr(0, 200);
  EXPECT_EQ(batch.headers.at("Content-Type"), "application/json");
  EXPECT_TRUE(is_fakes_vector(
      batch.json().at("results").at(0).at("response").at("data").at(0).at("embedding"),
      "voyage-3.5", "ranged"));
  auto refused = http_call(emr.port(), "POST", "/v1/embeddings", R"({"input":"x"})",
                           {{"Authorization", "Bearer emr-wrong.key"}, {"Range", ranges}});
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.json().at("error").at("type").as_string(), "authentication_error");
  // One httplib cannot parse is refused before any route, the refusal whole as well.
  auto unreadable = http_call(emr.port(), "GET", "/health", {}, {{"Range", ranges + ",5-1"}});
  EXPECT_EQ(unreadable.status, 416);
  EXPECT_EQ(unreadable.headers.at("Content-Type"), "application/json");
  EXPECT_EQ(unreadable.json().at("error").at("type").as_string(), "range_not_satisfiable");
}

} // namespace
