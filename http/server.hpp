#pragma once
// The HTTP front-end: cpp-httplib with a pool sized for many waiting callers, a real backlog, and
// a gate that keeps idle and slow connections off the HTTP threads.

#include "http/app.hpp"

#include <memory>

namespace emr {

class http_server {
public:
  explicit http_server(app& a);
  ~http_server();

  /// Binds and listens; returns the bound port (useful with port 0), or -1.
  int bind();
  /// Serves until stop(); blocks the calling thread.
  void run();
  /// Stops accepting and returns run() once the pool is idle.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace emr
