#include "tests/integration/load_balancer.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <thread>

namespace emr::testing {

namespace {

/// A loopback port nothing listens on right now.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

} // namespace

load_balancer::load_balancer(const scratch_dir& dir, const std::vector<int>& replica_ports)
    : port_(free_port()) {
  auto config = dir.path / "haproxy.cfg";
  {
    std::ofstream out{config};
    out << "global\n"
           "  maxconn 4096\n"
           "defaults\n"
           "  mode http\n"
           "  timeout connect 5s\n"
           // Longer than emr's own deadline: emr answers every caller, HAProxy need not.
           "  timeout client 90s\n"
           "  timeout server 90s\n"
           "frontend emr\n"
           "  bind 127.0.0.1:"
        << port_
        << "\n"
           "  default_backend replicas\n"
           "backend replicas\n"
           "  balance roundrobin\n"
           "  option httpchk GET /health\n";
    for (std::size_t i = 0; i < replica_ports.size(); ++i)
      out << "  server replica" << i + 1 << " 127.0.0.1:" << replica_ports[i]
          << " check inter 500ms\n";
  }
  process_ =
      child{{"/usr/sbin/haproxy", "-db", "-f", config.string()}, {}, dir.path / "haproxy.log"};
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (int fd = connect_loopback(port_); fd >= 0) {
      ::close(fd);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  throw std::runtime_error("haproxy did not listen on port " + std::to_string(port_) + ": " +
                           process_.log());
}

} // namespace emr::testing
