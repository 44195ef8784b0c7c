#pragma once
// What the batcher and directory tests share: an upstream that never answers (for the
// directory's real batchers), callers that record their answers, and the matrix a supervisor
// would deliver for some texts.

#include "actors/actors.hpp"
#include "tools/fake_vectors.hpp"

#include <caf/all.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace emr::testing {

// A TCP listener that never accepts: calls connect, send their body and then wait. Closing it
// resets them, so the detached workers are free again at teardown.
struct black_hole {
  int fd = -1;
  int port = 0;
  black_hole() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(fd, 64);
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  void close() {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
  ~black_hole() { close(); }
};

struct client_answer {
  bool answered = false;
  std::vector<chunk_result> results; ///< one per chunk sent, in order
  chunk_result result;               ///< the first of them
  std::string error;
};

/// Spawns a caller that sends `chunks` to `batcher` in one message and records the answers; the
/// caller is added to `clients`, for the test to stop.
inline std::shared_ptr<client_answer> ask_all(caf::actor_system& sys,
                                              std::vector<caf::actor>& clients,
                                              batcher_actor batcher,
                                              std::vector<chunk_request> chunks) {
  auto out = std::make_shared<client_answer>();
  clients.push_back(sys.spawn(
      [out](caf::event_based_actor* self, batcher_actor b, chunk_requests message) {
        self->request(b, std::chrono::seconds{3600}, atom::embed::value, std::move(message))
            .then(
                [out](chunk_results& r) {
                  out->answered = true;
                  out->results = std::move(r.results);
                  if (!out->results.empty())
                    out->result = out->results.front();
                },
                [out, self](caf::error& e) {
                  out->answered = true;
                  out->error = self->system().render(e);
                });
      },
      std::move(batcher), chunk_requests{std::move(chunks)}));
  return out;
}

/// Sends one chunk, as a caller of one chunk does.
inline std::shared_ptr<client_answer> ask(caf::actor_system& sys, std::vector<caf::actor>& clients,
                                          batcher_actor batcher, chunk_request chunk) {
  std::vector<chunk_request> chunks;
  chunks.push_back(std::move(chunk));
  return ask_all(sys, clients, std::move(batcher), std::move(chunks));
}

/// A matrix of fake voyage-3.5 vectors of 8 dimensions, one row per text, as a supervisor would
/// deliver it.
inline shared_matrix matrix_of(const std::vector<std::string>& texts, std::int64_t tokens) {
  auto m = std::make_shared<embedding_matrix>();
  m->rows = texts.size();
  m->dims = 8;
  for (const auto& t : texts) {
    auto v = fake::fake_vector("voyage-3.5", "", t, 8);
    m->values.insert(m->values.end(), v.begin(), v.end());
  }
  m->total_tokens = tokens;
  return m;
}

} // namespace emr::testing
