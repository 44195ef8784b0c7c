#pragma once
// HAProxy in front of `emr serve` replicas, as docs/deployment.md runs a fleet: round robin over
// every replica, each checked on GET /health, on a free loopback port.

#include "tests/integration/harness.hpp"

#include <string>
#include <vector>

namespace emr::testing {

class load_balancer {
public:
  load_balancer(const scratch_dir& dir, const std::vector<int>& replica_ports);
  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
  child process_;
  int port_ = 0;
};

} // namespace emr::testing
