// Concurrent loopback callers and exact vector verification; see load_client.hpp.

#include "tools/load_client.hpp"

#include "providers/float_codec.hpp"

#include <boost/json.hpp>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace emr::load {

namespace {

namespace json = boost::json;
using steady = std::chrono::steady_clock;

constexpr time_t connect_timeout_s = 5;
constexpr time_t read_timeout_s = 120;
constexpr std::size_t body_excerpt_chars = 300;

double ms_since(steady::time_point start) {
  return std::chrono::duration<double, std::milli>(steady::now() - start).count();
}

struct host_port {
  std::string host;
  int port = 0;
};

// Only plain http to a loopback address: this tool must never load someone else's server.
host_port parse_loopback_url(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    throw std::invalid_argument("base_url must start with http://: " + url);
  std::string rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos)
    rest.resize(slash);
  host_port hp;
  std::string port_text;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
      throw std::invalid_argument("base_url must be http://[HOST]:PORT: " + url);
    hp.host = rest.substr(1, close - 1);
    port_text = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos)
      throw std::invalid_argument("base_url must name a port: " + url);
    hp.host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  }
  try {
    std::size_t used = 0;
    hp.port = std::stoi(port_text, &used);
    if (used != port_text.size() || hp.port <= 0 || hp.port > 65535)
      throw std::invalid_argument("port");
  } catch (const std::exception&) {
    throw std::invalid_argument("base_url has no valid port: " + url);
  }
  if (hp.host != "localhost" && hp.host.rfind("127.", 0) != 0 && hp.host != "::1")
    throw std::invalid_argument("base_url must be a loopback address: " + url);
  return hp;
}

// What every request of a run shares, computed once.
struct prepared_endpoint {
  host_port target;
  std::string path;
  httplib::Headers headers;
  std::string body_suffix; // the extra fields and the closing brace
};

prepared_endpoint prepare(const endpoint& e) {
  prepared_endpoint p;
  p.target = parse_loopback_url(e.base_url);
  p.path = e.path;
  if (!e.bearer.empty())
    p.headers.emplace("Authorization", "Bearer " + e.bearer);
  for (const auto& [name, value] : e.headers)
    p.headers.emplace(name, value);
  for (const auto& [key, raw] : e.extra_fields) {
    p.body_suffix += ',';
    p.body_suffix += json::serialize(json::string_view{key});
    p.body_suffix += ':';
    p.body_suffix += raw;
  }
  p.body_suffix += '}';
  return p;
}

// One /v1/embeddings request object; a batch's sub-request also carries its id.
std::string embeddings_request(const prepared_endpoint& p, const caller& c, const std::string& id) {
  std::string body = id.empty()
                         ? R"({"input":[)"
                         : R"({"id":)" + json::serialize(json::string_view{id}) + R"(,"input":[)";
  for (std::size_t i = 0; i < c.texts.size(); ++i) {
    if (i != 0)
      body += ',';
    body += json::serialize(json::string_view{c.texts[i]});
  }
  body += ']';
  if (!c.input_type.empty())
    body += R"(,"input_type":)" + json::serialize(json::string_view{c.input_type});
  if (!c.encoding_format.empty())
    body += R"(,"encoding_format":)" + json::serialize(json::string_view{c.encoding_format});
  body += p.body_suffix;
  return body;
}

std::string request_body(const prepared_endpoint& p, const caller& c) {
  if (c.batch.empty())
    return embeddings_request(p, c, {});
  std::string body = R"({"requests":[)";
  for (std::size_t i = 0; i < c.batch.size(); ++i) {
    if (i != 0)
      body += ',';
    body += embeddings_request(p, c.batch[i], std::to_string(i));
  }
  body += "]}";
  return body;
}

// A closed-loop caller's keep-alive connection.
class connection : public httplib::ClientImpl {
public:
  explicit connection(const host_port& hp) : httplib::ClientImpl(hp.host, hp.port) {
    set_keep_alive(true);
    set_tcp_nodelay(true);
    set_connection_timeout(connect_timeout_s);
    set_read_timeout(read_timeout_s);
    set_write_timeout(read_timeout_s);
  }
};

std::string excerpt(const std::string& body) {
  return body.size() <= body_excerpt_chars ? body : body.substr(0, body_excerpt_chars) + "...";
}

// An embedding as float32, from either wire encoding; false if it is neither.
bool read_embedding(const json::value& v, std::vector<float>& out) {
  out.clear();
  if (const auto* s = v.if_string())
    return decode_base64_floats(std::string_view{s->data(), s->size()}, out);
  const auto* a = v.if_array();
  if (!a)
    return false;
  out.reserve(a->size());
  for (const auto& x : *a) {
    if (!x.is_number())
      return false;
    out.push_back(static_cast<float>(x.to_number<double>()));
  }
  return true;
}

// Empty when `list`, one provider's list answer, holds exactly the expected vectors.
std::string check_list(const caller& c, const json::object& list, const expectation* expect) {
  const auto* data_value = list.if_contains("data");
  const auto* data = data_value ? data_value->if_array() : nullptr;
  if (!data)
    return "200 without a data array: " + excerpt(json::serialize(list));
  if (data->size() != c.texts.size())
    return "200 with " + std::to_string(data->size()) + " embeddings for " +
           std::to_string(c.texts.size()) + " texts";

  int dims = 0;
  std::string upstream_type;
  if (expect) {
    dims = expect->dims > 0 ? expect->dims : fake::default_dims(expect->model);
    if (dims <= 0)
      return "cannot verify: no dimensions known for model " + expect->model;
    upstream_type = expect->upstream_input_type(c.input_type);
  }
  std::vector<float> got;
  for (std::size_t i = 0; i < data->size(); ++i) {
    const std::string where = "data[" + std::to_string(i) + "]";
    const auto* item = (*data)[i].if_object();
    const auto* index = item ? item->if_contains("index") : nullptr;
    if (!index || !index->is_number() || index->to_number<double>() != static_cast<double>(i))
      return where + " has no index " + std::to_string(i);
    const auto* embedding = item->if_contains("embedding");
    if (!embedding || !read_embedding(*embedding, got) || got.empty())
      return where + " has no float32 embedding";
    if (!expect)
      continue;
    const auto want = fake::fake_vector(expect->model, upstream_type, c.texts[i], dims);
    if (got.size() != want.size())
      return where + " has " + std::to_string(got.size()) + " dimensions, expected " +
             std::to_string(want.size());
    const auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin());
    if (g != got.end())
      return where + " (\"" + c.texts[i] + "\") differs at component " +
             std::to_string(g - got.begin()) + ": got " + std::to_string(*g) + ", expected " +
             std::to_string(*w) + " (model " + expect->model + ", input_type \"" + upstream_type +
             "\")";
  }
  return {};
}

std::string string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// The expectation for an answer `provider` gave: the caller's own, or under several providers
// the one naming it; null (with `error` set) for a provider the caller did not ask for.
const expectation* expectation_for(const std::optional<expectation>& expect,
                                   const std::string& provider, std::string& error) {
  if (!expect)
    return nullptr;
  if (expect->providers.empty()) {
    if (expect->provider.empty() || expect->provider == provider)
      return &*expect;
  } else {
    for (const auto& e : expect->providers)
      if (e.provider == provider)
        return &e;
  }
  error = "answered by provider \"" + provider + "\", which the caller did not ask for";
  return nullptr;
}

// Empty when a 200 /v1/embeddings answer (a list, or a map under policy "all") holds exactly
// the expected vectors. Also takes a list answer's "provider" field.
std::string check_response(const caller& c, const json::object& answer,
                           const std::optional<expectation>& expect, std::string& provider) {
  if (string_field(answer, "object") != "map") {
    provider = string_field(answer, "provider");
    std::string error;
    const expectation* e = expectation_for(expect, provider, error);
    return error.empty() ? check_list(c, answer, e) : error;
  }
  const auto* results_value = answer.if_contains("results");
  const auto* results = results_value ? results_value->if_object() : nullptr;
  if (!results)
    return "200 map without a results object: " + excerpt(json::serialize(answer));
  if (expect && results->size() != std::max<std::size_t>(expect->providers.size(), 1))
    return "200 map with " + std::to_string(results->size()) + " providers' answers";
  for (const auto& [name, list] : *results) {
    const auto* o = list.if_object();
    if (!o || string_field(*o, "provider") != name)
      return "results[\"" + std::string(name) + "\"] is not that provider's answer";
    std::string error;
    const expectation* e = expectation_for(expect, std::string(name), error);
    if (error.empty())
      error = check_list(c, *o, e);
    if (!error.empty())
      return "results[\"" + std::string(name) + "\"]: " + error;
  }
  return {};
}

// Empty when a 200 batch answer has one result per sub-request, in order, and every result
// answered 200 holds exactly its vectors; records each sub-request's status.
std::string check_batch(const caller& c, const json::object& answer,
                        const std::optional<expectation>& expect, result& r) {
  const auto* results_value = answer.if_contains("results");
  const auto* results = results_value ? results_value->if_array() : nullptr;
  if (!results || results->size() != c.batch.size())
    return "200 batch without one result per sub-request: " + excerpt(json::serialize(answer));
  for (std::size_t i = 0; i < results->size(); ++i) {
    const std::string where = "results[" + std::to_string(i) + "]";
    const auto* item = (*results)[i].if_object();
    const auto* status = item ? item->if_contains("status") : nullptr;
    if (!status || !status->is_int64() || string_field(*item, "id") != std::to_string(i))
      return where + " has no status or not the id \"" + std::to_string(i) + "\"";
    r.batch_statuses.push_back(static_cast<int>(status->get_int64()));
    if (r.batch_statuses.back() != 200)
      continue;
    const auto* response = item->if_contains("response");
    std::string provider;
    std::string error = response && response->is_object()
                            ? check_response(c.batch[i], response->get_object(), expect, provider)
                            : "200 without a response";
    if (!error.empty())
      return where + ": " + error;
  }
  return {};
}

// Empty when a 200 answer holds exactly the expected vectors, else why not.
std::string check_answer(const caller& c, const std::string& body,
                         const std::optional<expectation>& expect, result& r) {
  json::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object())
    return "200 with a body that is not a JSON object: " + excerpt(body);
  return c.batch.empty() ? check_response(c, doc.get_object(), expect, r.provider)
                         : check_batch(c, doc.get_object(), expect, r);
}

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

// ---------------------------------------------------------------------------------------------
// fire_concurrent: one thread drives every connection with non-blocking sockets and epoll, so
// the burst's requests leave within a few milliseconds of each other.

constexpr int max_connect_attempts = 6;
constexpr auto first_connect_backoff = std::chrono::milliseconds(20);
constexpr auto burst_timeout = std::chrono::seconds(120);
constexpr std::size_t max_verifier_threads = 4;

// Enough descriptors for one socket per caller, plus some for everything else.
void raise_fd_limit(std::size_t sockets) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return;
  const rlim_t needed = static_cast<rlim_t>(sockets) + 64;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < needed) {
    lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? needed : lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim); // if this fails, the sockets past the limit report EMFILE
  }
}

std::string host_header(const host_port& hp) {
  const bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) +
         (hp.port == 80 ? "" : ":" + std::to_string(hp.port));
}

std::string serialize_request(const prepared_endpoint& p, const caller& c) {
  const std::string body = request_body(p, c);
  std::string req;
  req.reserve(body.size() + 256);
  req += "POST " + p.path + " HTTP/1.1\r\n";
  req += "Host: " + host_header(p.target) + "\r\n";
  req += "Content-Type: application/json\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "Connection: close\r\n";
  for (const auto& [name, value] : p.headers)
    req += name + ": " + value + "\r\n";
  if (!c.request_id.empty())
    req += "X-Request-Id: " + c.request_id + "\r\n";
  req += "\r\n";
  req += body;
  return req;
}

struct burst_call {
  enum class phase { waiting_to_connect, connecting, connected, exchanging, done };

  std::string request; // the whole serialized request
  int fd = -1;
  phase state = phase::waiting_to_connect;
  int attempts = 0;
  std::size_t address = 0; // which resolved address the next attempt uses
  steady::time_point retry_at{}, connect_started{};
  std::string last_connect_error;

  bool sent = false; // the first byte went out at sent_at
  std::size_t written = 0;
  steady::time_point sent_at{}, done_at{};

  std::string in; // response bytes as they arrive
  bool head_done = false;
  std::size_t body_start = 0;
  std::optional<std::size_t> content_length;
  bool chunked = false;

  // The outcome: an error (transport failure) or status, headers and body.
  std::string error;
  int status = 0;
  std::string retry_after, body;
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Parses the status line and headers once they are complete; false (with c.error set) when
// they are malformed. Interim 1xx answers are skipped.
bool parse_head(burst_call& c) {
  for (;;) {
    const auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos)
      return true; // not complete yet
    const std::string_view head(c.in.data(), end);
    const auto line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    int status = 0;
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12 ||
        std::from_chars(status_line.data() + 9, status_line.data() + 12, status).ec !=
            std::errc{}) {
      c.error = "malformed status line: " + excerpt(std::string(status_line));
      return false;
    }
    if (status >= 100 && status < 200) {
      c.in.erase(0, end + 4);
      continue;
    }
    c.status = status;
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
    while (!rest.empty()) {
      const auto eol = rest.find("\r\n");
      const std::string_view line = rest.substr(0, eol);
      rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos)
        continue;
      const std::string_view name = trim(line.substr(0, colon));
      const std::string_view value = trim(line.substr(colon + 1));
      if (iequals(name, "Content-Length")) {
        std::size_t n = 0;
        if (std::from_chars(value.data(), value.data() + value.size(), n).ec != std::errc{}) {
          c.error = "malformed Content-Length: " + std::string(value);
          return false;
        }
        c.content_length = n;
      } else if (iequals(name, "Retry-After")) {
        c.retry_after = std::string(value);
      } else if (iequals(name, "Transfer-Encoding")) {
        c.chunked = value.size() >= 7 && iequals(value.substr(value.size() - 7), "chunked");
      }
    }
    if (c.status == 204 || c.status == 304)
      c.content_length = 0;
    if (c.chunked)
      c.content_length.reset();
    c.body_start = end + 4;
    c.head_done = true;
    return true;
  }
}

// The body of a chunked answer read to its end; nullopt if it is not well formed.
std::optional<std::string> dechunk(std::string_view in) {
  std::string out;
  for (;;) {
    const auto eol = in.find("\r\n");
    if (eol == std::string_view::npos)
      return std::nullopt;
    std::size_t size = 0;
    const auto [ptr, ec] = std::from_chars(in.data(), in.data() + eol, size, 16);
    if (ec != std::errc{} || ptr == in.data())
      return std::nullopt;
    in.remove_prefix(eol + 2);
    if (size == 0)
      return out;
    if (in.size() < size + 2)
      return std::nullopt;
    out.append(in.data(), size);
    in.remove_prefix(size + 2);
  }
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// Runs the calling thread under SCHED_FIFO while it lives, if the process may; else no-op.
class realtime_section {
public:
  realtime_section() {
    if (pthread_getschedparam(pthread_self(), &old_policy_, &old_param_) != 0)
      return;
    sched_param rt{};
    rt.sched_priority = 1;
    active_ = pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) == 0;
  }
  ~realtime_section() {
    if (active_)
      pthread_setschedparam(pthread_self(), old_policy_, &old_param_);
  }
  realtime_section(const realtime_section&) = delete;
  realtime_section& operator=(const realtime_section&) = delete;

private:
  int old_policy_ = SCHED_OTHER;
  sched_param old_param_{};
  bool active_ = false;
};

class burst_driver {
public:
  burst_driver(const host_port& target, std::vector<burst_call>& calls)
      : calls_(calls), deadline_(steady::now() + burst_timeout) {
    resolve(target);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0)
      fail_all("epoll_create1: " + errno_text(errno));
  }
  ~burst_driver() {
    for (auto& c : calls_)
      close_socket(c);
    if (epoll_ >= 0)
      ::close(epoll_);
  }
  burst_driver(const burst_driver&) = delete;
  burst_driver& operator=(const burst_driver&) = delete;

  void run() {
    if (epoll_ < 0 || addresses_.empty())
      return;
    connect_all();
    send_all();
    receive_all();
  }

private:
  struct address {
    sockaddr_storage addr{};
    socklen_t len = 0;
  };

  void resolve(const host_port& target) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(target.port);
    if (const int rc = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      fail_all("cannot resolve " + target.host + ": " + gai_strerror(rc));
      return;
    }
    for (auto* a = found; a; a = a->ai_next) {
      address addr;
      std::memcpy(&addr.addr, a->ai_addr, a->ai_addrlen);
      addr.len = static_cast<socklen_t>(a->ai_addrlen);
      addresses_.push_back(addr);
    }
    freeaddrinfo(found);
  }

  void fail_all(const std::string& why) {
    for (auto& c : calls_)
      if (c.state != burst_call::phase::done)
        finish_with_error(c, why);
  }

  void close_socket(burst_call& c) {
    if (c.fd >= 0) {
      ::close(c.fd); // also leaves the epoll set
      c.fd = -1;
    }
  }

  void finish(burst_call& c) {
    c.done_at = steady::now();
    c.state = burst_call::phase::done;
    close_socket(c);
    ++finished_;
  }

  void finish_with_error(burst_call& c, std::string why) {
    c.error = std::move(why);
    finish(c);
  }

  void watch(burst_call& c, std::uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = static_cast<std::uint64_t>(&c - calls_.data());
    if (epoll_ctl(epoll_, op, c.fd, &ev) != 0)
      finish_with_error(c, "epoll_ctl: " + errno_text(errno));
  }

  // A failed connect attempt: try again after a short, growing pause, or give up.
  void connect_failed(burst_call& c, const std::string& why) {
    close_socket(c);
    c.last_connect_error = why;
    ++c.address;
    if (c.attempts >= max_connect_attempts) {
      finish_with_error(c,
                        "connect failed after " + std::to_string(c.attempts) + " attempts: " + why);
      return;
    }
    c.state = burst_call::phase::waiting_to_connect;
    c.retry_at = steady::now() + first_connect_backoff * (1 << (c.attempts - 1));
  }

  void start_connect(burst_call& c) {
    ++c.attempts;
    const address& a = addresses_[c.address % addresses_.size()];
    c.fd = ::socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      const int err = errno;
      if (err == EMFILE || err == ENFILE) // more attempts will not free descriptors
        finish_with_error(c, "socket: " + errno_text(err));
      else
        connect_failed(c, "socket: " + errno_text(err));
      return;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.connect_started = steady::now();
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) == 0) {
      connected(c);
      return;
    }
    if (errno != EINPROGRESS) {
      connect_failed(c, errno_text(errno));
      return;
    }
    c.state = burst_call::phase::connecting;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
  }

  void connected(burst_call& c) {
    const bool registered = c.state == burst_call::phase::connecting;
    c.state = burst_call::phase::connected;
    // From now on only the server's answer (or its hang-up) is of interest.
    watch(c, EPOLLIN | EPOLLRDHUP, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
  }

  int wait_ms(steady::time_point until) const {
    const auto now = steady::now();
    if (until <= now)
      return 0;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(until - now).count());
  }

  // Opens every connection, retrying refused or failed ones, and returns once each is open or
  // has failed for good.
  void connect_all() {
    for (auto& c : calls_)
      if (c.state == burst_call::phase::waiting_to_connect)
        start_connect(c);
    std::vector<epoll_event> events(std::min<std::size_t>(calls_.size(), 1024));
    for (;;) {
      const auto now = steady::now();
      std::size_t pending = 0;
      auto next_wake = deadline_;
      for (auto& c : calls_) {
        if (c.state == burst_call::phase::waiting_to_connect) {
          if (now >= deadline_) {
            finish_with_error(c, "timed out waiting to connect: " + c.last_connect_error);
            continue;
          }
          if (c.retry_at <= now)
            start_connect(c);
          else
            next_wake = std::min(next_wake, c.retry_at);
        }
        if (c.state == burst_call::phase::connecting) {
          const auto give_up = c.connect_started + std::chrono::seconds(connect_timeout_s);
          if (now >= deadline_) {
            finish_with_error(c, "timed out connecting");
            continue;
          }
          if (now >= give_up) {
            connect_failed(c, "connect timed out");
            if (c.state == burst_call::phase::waiting_to_connect)
              next_wake = std::min(next_wake, c.retry_at);
          } else {
            next_wake = std::min(next_wake, give_up);
          }
        }
        if (c.state == burst_call::phase::waiting_to_connect ||
            c.state == burst_call::phase::connecting)
          ++pending;
      }
      if (pending == 0)
        return;
      const int n =
          epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), wait_ms(next_wake));
      if (n < 0 && errno != EINTR) {
        fail_all("epoll_wait: " + errno_text(errno));
        return;
      }
      for (int k = 0; k < n; ++k) {
        burst_call& c = calls_[events[k].data.u64];
        if (c.state == burst_call::phase::connecting) {
          int err = 0;
          socklen_t len = sizeof err;
          if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
          if (err == 0)
            connected(c);
          else
            connect_failed(c, errno_text(err));
        } else if (c.state == burst_call::phase::connected) {
          // The server hung up (or spoke) before the burst: the request cannot go out.
          finish_with_error(c, "connection closed by the server before the request was sent");
        }
      }
    }
  }

  // Writes as much of the request as the socket takes; false once the call has failed.
  bool write_some(burst_call& c) {
    while (c.written < c.request.size()) {
      const ssize_t n =
          ::send(c.fd, c.request.data() + c.written, c.request.size() - c.written, MSG_NOSIGNAL);
      if (n > 0) {
        c.written += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true;
      finish_with_error(c, "send failed: " + errno_text(n < 0 ? errno : EPIPE));
      return false;
    }
    return true;
  }

  // The burst: every request goes out in one tight loop, nothing else in between. Each send
  // wakes a server thread, and on a small machine those would preempt this loop and smear the
  // burst; a real-time priority for these few milliseconds keeps it tight where that is allowed.
  void send_all() {
    const realtime_section rt;
    for (auto& c : calls_) {
      if (c.state != burst_call::phase::connected)
        continue;
      c.sent_at = steady::now();
      c.sent = true;
      c.state = burst_call::phase::exchanging;
      write_some(c);
    }
    // Requests too large for one write finish as their sockets drain.
    for (auto& c : calls_)
      if (c.state == burst_call::phase::exchanging && c.written < c.request.size())
        watch(c, EPOLLIN | EPOLLRDHUP | EPOLLOUT, EPOLL_CTL_MOD);
  }

  // Reads what has arrived; finishes the call once its answer is complete or broken.
  void read_some(burst_call& c) {
    char buf[64 * 1024];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n < 0) {
        finish_with_error(c, "receive failed: " + errno_text(errno));
        return;
      }
      if (n == 0) {
        at_eof(c);
        return;
      }
      c.in.append(buf, static_cast<std::size_t>(n));
      if (!c.head_done && !parse_head(c)) {
        finish(c);
        return;
      }
      if (c.head_done && c.content_length && c.in.size() - c.body_start >= *c.content_length) {
        c.body = c.in.substr(c.body_start, *c.content_length);
        std::string().swap(c.in);
        finish(c);
        return;
      }
    }
  }

  void at_eof(burst_call& c) {
    if (!c.head_done) {
      finish_with_error(c, c.in.empty() ? "connection closed without an answer"
                                        : "connection closed inside the response headers");
      return;
    }
    const std::size_t got = c.in.size() - c.body_start;
    if (c.content_length) { // shorter than announced, or it would have finished already
      finish_with_error(c, "connection closed after " + std::to_string(got) + " of " +
                               std::to_string(*c.content_length) + " body bytes");
      return;
    }
    const std::string_view raw(c.in.data() + c.body_start, got);
    if (c.chunked) {
      auto body = dechunk(raw);
      if (!body) {
        finish_with_error(c, "malformed chunked body");
        return;
      }
      c.body = std::move(*body);
    } else {
      c.body = std::string(raw);
    }
    std::string().swap(c.in);
    finish(c);
  }

  void receive_all() {
    std::vector<epoll_event> events(std::min<std::size_t>(calls_.size(), 1024));
    while (finished_ < calls_.size()) {
      const int timeout = wait_ms(deadline_);
      if (timeout == 0)
        break;
      const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0 && errno != EINTR) {
        fail_all("epoll_wait: " + errno_text(errno));
        return;
      }
      for (int k = 0; k < n; ++k) {
        burst_call& c = calls_[events[k].data.u64];
        if (c.state != burst_call::phase::exchanging)
          continue;
        if ((events[k].events & EPOLLOUT) && c.written < c.request.size()) {
          if (!write_some(c))
            continue;
          if (c.written == c.request.size())
            watch(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
          if (c.state != burst_call::phase::exchanging)
            continue;
        }
        if (events[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
          read_some(c);
      }
    }
    for (auto& c : calls_)
      if (c.state != burst_call::phase::done)
        finish_with_error(c, "no complete answer within " + std::to_string(burst_timeout.count()) +
                                 " s");
  }

  std::vector<burst_call>& calls_;
  const steady::time_point deadline_;
  std::vector<address> addresses_;
  int epoll_ = -1;
  std::size_t finished_ = 0;
};

void run_burst(const host_port& target, std::vector<burst_call>& calls) {
  burst_driver(target, calls).run();
}

} // namespace

std::vector<result> fire_concurrent(const endpoint& e, const std::vector<caller>& callers,
                                    const std::optional<expectation>& expect) {
  const prepared_endpoint p = prepare(e);
  raise_fd_limit(callers.size());
  std::vector<burst_call> calls(callers.size());
  for (std::size_t i = 0; i < callers.size(); ++i)
    calls[i].request = serialize_request(p, callers[i]);
  if (!calls.empty())
    run_burst(p.target, calls);

  std::vector<result> results(callers.size());
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const burst_call& c = calls[i];
    result& r = results[i];
    r.latency_ms =
        c.sent ? std::chrono::duration<double, std::milli>(c.done_at - c.sent_at).count() : 0;
    if (!c.error.empty()) {
      r.error = "transport error: " + c.error;
      continue;
    }
    r.status = c.status;
    r.retry_after = c.retry_after;
    if (r.status != 200)
      r.error = std::to_string(r.status) + ": " + excerpt(c.body);
  }

  // Every answer is in: only now may verification take the CPU.
  std::vector<std::size_t> to_check;
  for (std::size_t i = 0; i < calls.size(); ++i)
    if (calls[i].error.empty() && calls[i].status == 200)
      to_check.push_back(i);
  std::atomic<std::size_t> next{0};
  const auto verify = [&] {
    for (std::size_t k; (k = next.fetch_add(1)) < to_check.size();) {
      const std::size_t i = to_check[k];
      result& r = results[i];
      r.error = check_answer(callers[i], calls[i].body, expect, r);
      r.vectors_ok = r.error.empty();
      std::string().swap(calls[i].body);
    }
  };
  const std::size_t verifiers =
      std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, max_verifier_threads);
  {
    std::vector<std::jthread> threads;
    for (std::size_t t = 1; t < std::min(verifiers, to_check.size()); ++t)
      threads.emplace_back(verify);
    verify();
  }
  return results;
}

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

summary summarize(const std::vector<result>& results, double wall_s) {
  summary s;
  s.total = results.size();
  s.wall_s = wall_s;
  std::vector<double> latencies;
  latencies.reserve(results.size());
  for (const auto& r : results) {
    latencies.push_back(r.latency_ms);
    ++s.status_counts[r.status];
    s.retries += static_cast<std::size_t>(r.retries);
    if (r.vectors_ok)
      ++s.ok;
    else if (r.status == 200)
      ++s.wrong_vectors;
    else if (r.status == 0)
      ++s.transport_errors;
  }
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    const auto rank = [&](double q) {
      const auto n = static_cast<double>(latencies.size());
      const auto k = static_cast<std::size_t>(std::max(1.0, std::ceil(q * n)));
      return latencies[std::min(k, latencies.size()) - 1];
    };
    s.p50_ms = rank(0.50);
    s.p95_ms = rank(0.95);
    s.p99_ms = rank(0.99);
    s.max_ms = latencies.back();
  }
  s.throughput_rps = wall_s > 0 ? static_cast<double>(s.total) / wall_s : 0;
  return s;
}

} // namespace emr::load
