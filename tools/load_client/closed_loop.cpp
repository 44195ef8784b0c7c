// closed_loop and run_for: worker threads, each sending its requests one after another on its
// own keep-alive connection, the way an SDK client does.

#include "tools/load_client.hpp"

#include "tools/load_client/answer_check.hpp"
#include "tools/load_client/request.hpp"

#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <random>
#include <thread>

namespace emr::load {

namespace {

using steady = std::chrono::steady_clock;

constexpr time_t read_timeout_s = 120;

double ms_since(steady::time_point start) {
  return std::chrono::duration<double, std::milli>(steady::now() - start).count();
}

// A closed-loop caller's keep-alive connection.
class connection : public httplib::ClientImpl {
public:
  explicit connection(const emr::endpoint& target) : httplib::ClientImpl(target.host, target.port) {
    set_keep_alive(true);
    set_tcp_nodelay(true);
    set_connection_timeout(connect_timeout_s);
    set_read_timeout(read_timeout_s);
    set_write_timeout(read_timeout_s);
  }
};

result send_one(connection& conn, const prepared_endpoint& p, const caller& c,
                const std::optional<expectation>& expect) {
  httplib::Headers headers = p.headers;
  if (!c.request_id.empty())
    headers.emplace("X-Request-Id", c.request_id);
  const std::string body = request_body(p, c);

  result r;
  const auto start = steady::now();
  auto res = conn.Post(p.path, headers, body, "application/json");
  // A server may close an idle keep-alive connection just as the request goes out; the request
  // never reached it, so sending it again on a new connection is safe.
  if (!res && res.error() == httplib::Error::Write)
    res = conn.Post(p.path, headers, body, "application/json");
  r.latency_ms = ms_since(start);
  if (!res) {
    r.error = "transport error: " + httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.retry_after = res->get_header_value("Retry-After");
  if (r.status != 200) {
    r.error = std::to_string(r.status) + ": " + excerpt(res->body);
    return r;
  }
  r.error = check_answer(c, res->body, expect, r);
  r.vectors_ok = r.error.empty();
  return r;
}

// The wait the official SDKs (openai-python, voyageai) take before retrying a 429.
std::chrono::milliseconds sdk_backoff(const std::string& retry_after, int retries_so_far) {
  if (!retry_after.empty()) {
    char* end = nullptr;
    const double seconds = std::strtod(retry_after.c_str(), &end);
    if (end != retry_after.c_str() && *end == '\0' && seconds >= 0 && seconds <= 60)
      return std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  }
  thread_local std::mt19937 rng{std::random_device{}()};
  const double base = std::min(0.5 * std::pow(2.0, retries_so_far), 8.0);
  const double jitter = 1.0 - 0.25 * std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  return std::chrono::milliseconds(static_cast<long>(base * jitter * 1000));
}

// One logical call in run_for: the request plus its SDK-style retries of 429s.
result send_with_retries(connection& conn, const prepared_endpoint& p, const caller& c,
                         const std::optional<expectation>& expect, bool retry_429, int max_retries,
                         steady::time_point deadline) {
  const auto start = steady::now();
  result r = send_one(conn, p, c, expect);
  int retries = 0;
  while (retry_429 && r.status == 429 && retries < max_retries) {
    const auto wait = sdk_backoff(r.retry_after, retries);
    if (steady::now() + wait > deadline)
      break;
    std::this_thread::sleep_for(wait);
    ++retries;
    r = send_one(conn, p, c, expect);
  }
  r.retries = retries;
  r.latency_ms = ms_since(start);
  return r;
}

} // namespace

std::vector<result> closed_loop(const endpoint& e, std::size_t workers, std::size_t per_worker,
                                const std::function<caller(std::size_t, std::size_t)>& make,
                                const std::optional<expectation>& expect) {
  const prepared_endpoint p = prepare(e);
  std::vector<result> results(workers * per_worker);
  {
    std::vector<std::jthread> threads;
    threads.reserve(workers);
    for (std::size_t w = 0; w < workers; ++w)
      threads.emplace_back([&, w] {
        connection conn(p.target);
        for (std::size_t i = 0; i < per_worker; ++i)
          results[w * per_worker + i] = send_one(conn, p, make(w, i), expect);
      });
  }
  return results;
}

std::vector<result> run_for(const endpoint& e, std::size_t workers,
                            std::chrono::milliseconds duration,
                            const std::function<caller(std::size_t, std::size_t)>& make,
                            const std::optional<expectation>& expect, bool retry_429,
                            int max_retries) {
  const prepared_endpoint p = prepare(e);
  std::vector<std::vector<result>> per_worker(workers);
  const auto deadline = steady::now() + duration;
  {
    std::vector<std::jthread> threads;
    threads.reserve(workers);
    for (std::size_t w = 0; w < workers; ++w)
      threads.emplace_back([&, w] {
        connection conn(p.target);
        for (std::size_t i = 0; steady::now() < deadline; ++i)
          per_worker[w].push_back(
              send_with_retries(conn, p, make(w, i), expect, retry_429, max_retries, deadline));
      });
  }
  std::vector<result> results;
  for (auto& rs : per_worker)
    std::move(rs.begin(), rs.end(), std::back_inserter(results));
  return results;
}

} // namespace emr::load
