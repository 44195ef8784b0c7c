// A fake embeddings provider for tests and benchmarks. One HTTP server speaks the Voyage, Cohere
// (v1 and v2) and OpenAI wire formats of providers.md §6, answers with the deterministic vectors of
// fake_vectors.hpp, enforces each provider's validation rules and rate limits, and injects faults
// on request (POST /_faults) so that retry and error paths of the router can be tested end to end.

#include "tools/fake_vectors.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <httplib.h>

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

namespace json = boost::json;
namespace fake = emr::fake;
using steady_clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Configuration

struct options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string port_file;
  int threads = 512;
  int latency_ms = 0;
  int latency_per_token_us = 0;
  long rpm = 0;
  long tpm = 0;
  std::optional<int> retry_after; // unset: computed from the window; -1: no header
  std::string poison_marker = "__poison__";
  std::string api_key; // empty: any non-empty key is accepted
  std::uint64_t seed = 1;
};

enum class flavor { voyage, cohere_v1, cohere_v2, openai };

// How a route picks the provider: the shared /v1/embeddings path decides by model.
enum class route { by_model, voyage, openai, cohere_v1, cohere_v2 };

// ---------------------------------------------------------------------------------------------
// Small helpers

void append_float(std::string& out, float f) {
  if (std::isnan(f)) { // Deliberately invalid JSON, for the "nan" fault.
    out += "NaN";
    return;
  }
  char buf[32];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, f).ptr);
}

void append_float_array(std::string& out, const std::vector<float>& v) {
  out += '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i)
      out += ',';
    append_float(out, v[i]);
  }
  out += ']';
}

void append_int_array(std::string& out, const std::vector<int>& v) {
  out += '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i)
      out += ',';
    out += std::to_string(v[i]);
  }
  out += ']';
}

void append_json_string(std::string& out, std::string_view s) {
  out += json::serialize(s);
}

// Treats JSON null like an absent field: voyage-py sends every unset option as null.
const json::value* field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return (v && !v->is_null()) ? v : nullptr;
}

std::optional<std::int64_t> as_integer(const json::value& v) {
  if (v.is_int64())
    return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(v.get_uint64());
  return std::nullopt;
}

std::string random_hex(std::size_t digits) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(digits, '0');
  for (char& c : out)
    c = hex[rng() & 15];
  return out;
}

std::string random_uuid() {
  std::string h = random_hex(32);
  h[12] = '4';
  h[16] = "89ab"[h[16] % 4];
  return h.substr(0, 8) + '-' + h.substr(8, 4) + '-' + h.substr(12, 4) + '-' + h.substr(16, 4) +
         '-' + h.substr(20);
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Go-style duration strings, as OpenAI's x-ratelimit-reset-* headers use ("12ms", "2.5s", "6m0s").
std::string go_duration(double seconds) {
  if (seconds <= 0)
    return "0s";
  if (seconds < 1)
    return std::to_string(static_cast<long>(std::ceil(seconds * 1000))) + "ms";
  if (seconds < 60) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", seconds);
    std::string s = buf;
    while (s.back() == '0')
      s.pop_back();
    if (s.back() == '.')
      s.pop_back();
    return s + "s";
  }
  const long whole = static_cast<long>(std::ceil(seconds));
  return std::to_string(whole / 60) + "m" + std::to_string(whole % 60) + "s";
}

// Sleeps that end early on shutdown, so SIGTERM never waits for an injected 10 s timeout.
class stop_signal {
public:
  void sleep_ms(long ms) {
    if (ms <= 0)
      return;
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  }
  void trigger() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

// ---------------------------------------------------------------------------------------------
// Requests, errors, output encodings

struct api_error {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error"; // OpenAI only
  std::string code;                           // OpenAI only; empty renders as null
  std::string param;                          // OpenAI only; empty renders as null
};

// An error in the Voyage or Cohere shape, which carry only a status and a message.
api_error plain_error(int status, std::string message) {
  api_error e;
  e.status = status;
  e.message = std::move(message);
  return e;
}

api_error bad_request(std::string message) {
  return plain_error(400, std::move(message));
}

enum class dtype { float32, int8, uint8, binary, ubinary };

struct encoding {
  dtype type = dtype::float32;
  bool base64 = false;
};

// A validated embeddings request, whichever provider it came in as.
struct embed_job {
  flavor kind = flavor::voyage;
  std::string model;
  std::string input_type;
  std::vector<std::string> texts;
  int total_tokens = 0;
  int dims = 0;
  encoding enc;                                               // Voyage, OpenAI
  std::vector<std::pair<std::string, encoding>> cohere_types; // empty: v1 floats response
  std::vector<std::string> echoed_texts;                      // Cohere
};

std::vector<int> quantize(const std::vector<float>& v, dtype type) {
  std::vector<int> out;
  if (type == dtype::int8 || type == dtype::uint8) {
    out.reserve(v.size());
    for (float x : v) {
      if (type == dtype::int8)
        out.push_back(static_cast<int>(std::clamp(std::lround(x * 127.0), -128L, 127L)));
      else
        out.push_back(static_cast<int>(std::clamp(std::lround((x + 1.0) * 127.5), 0L, 255L)));
    }
    return out;
  }
  // Bit-packed, MSB first, bit = 1 iff the component is positive; binary is offset by 128.
  out.assign((v.size() + 7) / 8, 0);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i] > 0)
      out[i / 8] |= 1 << (7 - i % 8);
  if (type == dtype::binary)
    for (int& x : out)
      x -= 128;
  return out;
}

void append_embedding(std::string& out, const std::vector<float>& v, encoding enc) {
  if (enc.type == dtype::float32) {
    if (!enc.base64)
      return append_float_array(out, v);
    out += '"';
    out += fake::float32_base64(v);
    out += '"';
    return;
  }
  const std::vector<int> q = quantize(v, enc.type);
  if (!enc.base64)
    return append_int_array(out, q);
  std::vector<unsigned char> bytes(q.size());
  std::transform(q.begin(), q.end(), bytes.begin(),
                 [](int x) { return static_cast<unsigned char>(x & 0xff); });
  out += '"';
  out += fake::base64_encode(bytes.data(), bytes.size());
  out += '"';
}

// ---------------------------------------------------------------------------------------------
// Faults

// wrong_dims: every vector half as long as it should be, as from a provider that ignores the
// dimensions asked for; only a script asks for it, so seeded random draws replay as before.
enum class malformed {
  none,
  non_json,
  wrong_count,
  bad_index,
  missing_index,
  truncated,
  nan,
  wrong_dims
};

malformed parse_malformed(std::string_view s) {
  static const std::map<std::string_view, malformed> kinds = {
      {"non_json", malformed::non_json},    {"wrong_count", malformed::wrong_count},
      {"bad_index", malformed::bad_index},  {"missing_index", malformed::missing_index},
      {"truncated", malformed::truncated},  {"nan", malformed::nan},
      {"wrong_dims", malformed::wrong_dims}};
  const auto it = kinds.find(s);
  if (it == kinds.end())
    throw std::invalid_argument("unknown malformed kind: " + std::string(s));
  return it->second;
}

// What to do with one embeddings call; the default answers normally.
struct fault_step {
  int status = 0; // 0 or 200: answer normally
  std::string retry_after;
  std::string retry_after_ms;
  malformed shape = malformed::none;
  long delay_ms = 0;
};

struct fault_plan {
  std::vector<fault_step> script;
  std::optional<fault_step> then;
  double p429 = 0, p500 = 0, p_timeout = 0, p_malformed = 0, p_slow = 0;
  long timeout_ms = 10000, slow_ms = 500;
  std::string retry_after;
};

// "retry_after" may be sent as a string or a number; the header wants text either way.
std::string header_text(const json::value& v) {
  if (v.is_string())
    return std::string(v.get_string());
  if (auto i = as_integer(v))
    return std::to_string(*i);
  if (v.is_double()) {
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v.get_double()).ptr);
  }
  throw std::invalid_argument("retry_after must be a string or a number");
}

long integer_field(const json::object& o, std::string_view key, long fallback) {
  const json::value* v = field(o, key);
  if (!v)
    return fallback;
  const auto i = as_integer(*v);
  if (!i)
    throw std::invalid_argument(std::string(key) + " must be an integer");
  return static_cast<long>(*i);
}

double probability_field(const json::object& o, std::string_view key) {
  const json::value* v = field(o, key);
  if (!v)
    return 0.0;
  if (!v->is_number())
    throw std::invalid_argument(std::string(key) + " must be a number");
  return v->to_number<double>();
}

fault_step parse_fault_step(const json::value& v) {
  if (!v.is_object())
    throw std::invalid_argument("every fault step must be an object");
  const json::object& o = v.get_object();
  fault_step step;
  step.status = static_cast<int>(integer_field(o, "status", 0));
  step.delay_ms = integer_field(o, "delay_ms", 0);
  if (const json::value* r = field(o, "retry_after"))
    step.retry_after = header_text(*r);
  if (const json::value* r = field(o, "retry_after_ms"))
    step.retry_after_ms = header_text(*r);
  if (const json::value* m = field(o, "malformed")) {
    if (!m->is_string())
      throw std::invalid_argument("malformed must be a string");
    step.shape = parse_malformed(m->get_string());
  }
  return step;
}

fault_plan parse_fault_plan(const json::value& v) {
  if (!v.is_object())
    throw std::invalid_argument("body must be a JSON object");
  const json::object& o = v.get_object();
  fault_plan plan;
  if (const json::value* s = field(o, "script")) {
    if (!s->is_array())
      throw std::invalid_argument("script must be an array");
    for (const json::value& step : s->get_array())
      plan.script.push_back(parse_fault_step(step));
  }
  if (const json::value* t = field(o, "then"))
    plan.then = parse_fault_step(*t);
  plan.p429 = probability_field(o, "p429");
  plan.p500 = probability_field(o, "p500");
  plan.p_timeout = probability_field(o, "p_timeout");
  plan.p_malformed = probability_field(o, "p_malformed");
  plan.p_slow = probability_field(o, "p_slow");
  plan.timeout_ms = integer_field(o, "timeout_ms", plan.timeout_ms);
  plan.slow_ms = integer_field(o, "slow_ms", plan.slow_ms);
  if (const json::value* r = field(o, "retry_after"))
    plan.retry_after = header_text(*r);
  return plan;
}

// The current fault plan; every embeddings call consumes one step from it.
class fault_injector {
public:
  explicit fault_injector(std::uint64_t seed) : seed_(seed), rng_(seed) {}

  void replace(fault_plan plan) {
    std::lock_guard lock(mutex_);
    plan_ = std::move(plan);
    next_ = 0;
  }

  void reset() {
    std::lock_guard lock(mutex_);
    plan_ = fault_plan{};
    next_ = 0;
    rng_.seed(seed_);
  }

  /// `positional_rows`: the answer's vectors carry no index (Cohere).
  fault_step next_step(bool positional_rows) {
    std::lock_guard lock(mutex_);
    if (next_ < plan_.script.size())
      return plan_.script[next_++];
    if (plan_.then)
      return *plan_.then;
    return draw(positional_rows);
  }

private:
  // Independent draws in a fixed order, so a given seed replays the same fault sequence.
  fault_step draw(bool positional_rows) {
    fault_step step;
    if (chance(plan_.p429)) {
      step.status = 429;
      step.retry_after = plan_.retry_after;
    } else if (chance(plan_.p500)) {
      step.status = 500;
    } else if (chance(plan_.p_timeout)) {
      step.delay_ms = plan_.timeout_ms;
    } else if (chance(plan_.p_malformed)) {
      static constexpr malformed kinds[] = {malformed::non_json,  malformed::wrong_count,
                                            malformed::bad_index, malformed::missing_index,
                                            malformed::truncated, malformed::nan};
      step.shape = kinds[std::uniform_int_distribution<std::size_t>(0, 5)(rng_)];
      // A drawn malformed answer must be one a router can tell from a good one. Rows without an
      // index turn "bad_index" into a well-formed answer with the wrong vectors; a script may
      // still ask for that.
      if (positional_rows && step.shape == malformed::bad_index)
        step.shape = malformed::wrong_count;
    } else if (chance(plan_.p_slow)) {
      step.delay_ms = plan_.slow_ms;
    }
    return step;
  }

  bool chance(double p) {
    return p > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
  }

  std::mutex mutex_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  fault_plan plan_;
  std::size_t next_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Rate limiting: a sliding 60 s window of admitted calls per (API key, model)

class rate_limiter {
public:
  struct verdict {
    bool allowed = true;
    bool by_tokens = false;
    long limit = 0, used = 0, requested = 0;
    double wait_s = 0; // until the window has room for this call
  };
  struct usage {
    long requests = 0, tokens = 0;
    double reset_requests_s = 0, reset_tokens_s = 0;
  };

  rate_limiter(long rpm, long tpm) : rpm_(rpm), tpm_(tpm) {}

  bool enabled() const { return rpm_ > 0 || tpm_ > 0; }
  long rpm() const { return rpm_; }
  long tpm() const { return tpm_; }

  verdict admit(const std::string& key, long tokens) {
    if (!enabled())
      return {};
    const auto now = steady_clock::now();
    std::lock_guard lock(mutex_);
    auto& window = windows_[key];
    expire(window, now);
    long used_tokens = 0;
    for (const auto& e : window)
      used_tokens += e.tokens;
    const long used_requests = static_cast<long>(window.size());
    if (rpm_ > 0 && used_requests + 1 > rpm_)
      return {false, false, rpm_, used_requests, 1, seconds_until(window.front().at, now)};
    if (tpm_ > 0 && used_tokens + tokens > tpm_)
      return {false, true, tpm_, used_tokens, tokens, token_wait(window, tokens, now)};
    window.push_back({now, tokens});
    return {};
  }

  usage peek(const std::string& key) {
    usage u;
    if (!enabled())
      return u;
    const auto now = steady_clock::now();
    std::lock_guard lock(mutex_);
    auto& window = windows_[key];
    expire(window, now);
    u.requests = static_cast<long>(window.size());
    for (const auto& e : window)
      u.tokens += e.tokens;
    if (!window.empty()) {
      u.reset_requests_s = seconds_until(window.front().at, now);
      u.reset_tokens_s = seconds_until(window.back().at, now);
    }
    return u;
  }

  void reset() {
    std::lock_guard lock(mutex_);
    windows_.clear();
  }

private:
  struct entry {
    steady_clock::time_point at;
    long tokens;
  };
  static constexpr auto window_length = std::chrono::seconds(60);

  static void expire(std::deque<entry>& window, steady_clock::time_point now) {
    while (!window.empty() && now - window.front().at >= window_length)
      window.pop_front();
  }

  static double seconds_until(steady_clock::time_point admitted, steady_clock::time_point now) {
    return std::chrono::duration<double>(admitted + window_length - now).count();
  }

  // Time until enough old entries leave the window for `tokens` more to fit.
  double token_wait(const std::deque<entry>& window, long tokens,
                    steady_clock::time_point now) const {
    if (tokens > tpm_)
      return 60.0;
    long used = 0;
    for (const auto& e : window)
      used += e.tokens;
    for (const auto& e : window) {
      used -= e.tokens;
      if (used + tokens <= tpm_)
        return seconds_until(e.at, now);
    }
    return 60.0;
  }

  long rpm_, tpm_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::deque<entry>> windows_;
};

// ---------------------------------------------------------------------------------------------
// Statistics for /_stats

struct call_record {
  double t_ms = 0;
  std::string path, model, input_type;
  int texts = 0;
  int status = 0;
  std::string request_id;
  std::vector<std::string> header_names; // what arrived, so a test can see an injected header
};

class call_stats {
public:
  void begin_call() {
    const long now = ++in_flight_;
    long peak = peak_in_flight_.load();
    while (now > peak && !peak_in_flight_.compare_exchange_weak(peak, now)) {
    }
  }
  void end_call() { --in_flight_; }

  void record(call_record rec, bool ok_vectors) {
    rec.t_ms = std::chrono::duration<double, std::milli>(steady_clock::now() - start_).count();
    std::lock_guard lock(mutex_);
    ++calls_;
    ++status_counts_[rec.status];
    if (ok_vectors) {
      ++ok_calls_;
      texts_ += rec.texts;
      largest_batch_ = std::max<long>(largest_batch_, rec.texts);
    }
    log_.push_back(std::move(rec));
    if (log_.size() > max_log_entries)
      log_.pop_front();
  }

  void reset() {
    std::lock_guard lock(mutex_);
    calls_ = ok_calls_ = texts_ = largest_batch_ = 0;
    peak_in_flight_ = in_flight_.load();
    status_counts_.clear();
    log_.clear();
  }

  json::value to_json() {
    std::lock_guard lock(mutex_);
    json::object counts;
    for (const auto& [status, n] : status_counts_)
      counts[std::to_string(status)] = n;
    json::array log;
    log.reserve(log_.size());
    for (const auto& r : log_)
      log.push_back({{"t_ms", r.t_ms},
                     {"path", r.path},
                     {"model", r.model},
                     {"input_type", r.input_type},
                     {"texts", r.texts},
                     {"status", r.status},
                     {"request_id", r.request_id},
                     {"header_names", json::value_from(r.header_names)}});
    return {{"calls", calls_},
            {"ok_calls", ok_calls_},
            {"texts", texts_},
            {"largest_batch", largest_batch_},
            {"peak_in_flight", peak_in_flight_.load()},
            {"status_counts", std::move(counts)},
            {"calls_log", std::move(log)}};
  }

private:
  static constexpr std::size_t max_log_entries = 20000;
  const steady_clock::time_point start_ = steady_clock::now();
  std::atomic<long> in_flight_{0}, peak_in_flight_{0};
  std::mutex mutex_;
  long calls_ = 0, ok_calls_ = 0, texts_ = 0, largest_batch_ = 0;
  std::map<int, long> status_counts_;
  std::deque<call_record> log_;
};

// ---------------------------------------------------------------------------------------------
// Voyage (providers.md §1, §6.2)

struct voyage_limits {
  int context;
  int token_cap;
  bool flexible; // output_dimension and non-float dtypes allowed
};

voyage_limits voyage_limits_for(std::string_view model) {
  static const std::map<std::string_view, voyage_limits> table = {
      {"voyage-4-large", {32000, 120000, true}},
      {"voyage-4", {32000, 320000, true}},
      {"voyage-4-lite", {32000, 1000000, true}},
      {"voyage-3-large", {32000, 120000, true}},
      {"voyage-3.5", {32000, 320000, true}},
      {"voyage-3.5-lite", {32000, 1000000, true}},
      {"voyage-code-3", {32000, 120000, true}},
      {"voyage-finance-2", {32000, 120000, false}},
      {"voyage-law-2", {16000, 120000, false}},
      {"voyage-code-2", {16000, 120000, false}},
      {"voyage-3", {32000, 320000, false}},
      {"voyage-3-lite", {32000, 1000000, false}},
      {"voyage-multilingual-2", {32000, 120000, false}},
      {"voyage-large-2-instruct", {16000, 120000, false}},
      {"voyage-large-2", {16000, 120000, false}},
      {"voyage-2", {4000, 320000, false}}};
  const auto it = table.find(model);
  return it != table.end() ? it->second : voyage_limits{4000, 120000, false}; // deprecated models
}

bool is_voyage_model(std::string_view m) {
  return starts_with(m, "voyage-") && fake::default_dims(m);
}
bool is_cohere_model(std::string_view m) {
  return starts_with(m, "embed-") && fake::default_dims(m);
}
bool is_openai_model(std::string_view m) {
  return starts_with(m, "text-embedding-") && fake::default_dims(m);
}

std::optional<api_error> parse_voyage_input(const json::value& input, embed_job& job) {
  if (input.is_string()) {
    if (input.get_string().empty())
      return bad_request("Input cannot be an empty string.");
    job.texts.emplace_back(input.get_string());
    return std::nullopt;
  }
  if (!input.is_array())
    return bad_request("Input must be a string or a list of strings.");
  const json::array& items = input.get_array();
  if (items.empty())
    return bad_request("Input cannot be an empty list.");
  if (items.size() > 1000)
    return bad_request("The batch size limit is 1000. Your batch size is " +
                       std::to_string(items.size()) + ".");
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string())
      return bad_request("Input at index " + std::to_string(i) + " is not a string.");
    if (items[i].get_string().empty())
      return bad_request("Input at index " + std::to_string(i) + " is an empty string.");
    job.texts.emplace_back(items[i].get_string());
  }
  return std::nullopt;
}

std::optional<api_error> parse_voyage_options(const json::object& o, embed_job& job,
                                              const voyage_limits& limits) {
  if (const json::value* t = field(o, "input_type")) {
    if (!t->is_string() || (t->get_string() != "query" && t->get_string() != "document"))
      return bad_request("Value of input_type must be null, 'query' or 'document'.");
    job.input_type = t->get_string();
  }
  job.dims = fake::default_dims(job.model);
  if (const json::value* d = field(o, "output_dimension")) {
    const auto k = as_integer(*d);
    const bool allowed =
        k &&
        (limits.flexible ? (*k == 256 || *k == 512 || *k == 1024 || *k == 2048) : *k == job.dims);
    if (!allowed)
      return bad_request("Model " + job.model + " does not support output_dimension " +
                         json::serialize(*d) + ".");
    job.dims = static_cast<int>(*k);
  }
  if (const json::value* t = field(o, "output_dtype")) {
    static const std::map<std::string_view, dtype> dtypes = {{"float", dtype::float32},
                                                             {"int8", dtype::int8},
                                                             {"uint8", dtype::uint8},
                                                             {"binary", dtype::binary},
                                                             {"ubinary", dtype::ubinary}};
    const auto it = t->is_string() ? dtypes.find(t->get_string()) : dtypes.end();
    if (it == dtypes.end())
      return bad_request(
          "Value of output_dtype must be one of float, int8, uint8, binary, ubinary.");
    if (it->second != dtype::float32 && !limits.flexible)
      return bad_request("Model " + job.model + " only supports output_dtype float.");
    job.enc.type = it->second;
  }
  if (const json::value* e = field(o, "encoding_format")) {
    if (!e->is_string() || e->get_string() != "base64")
      return bad_request("Value of encoding_format must be null or 'base64'.");
    job.enc.base64 = true;
  }
  return std::nullopt;
}

std::optional<api_error> parse_voyage(const json::object& o, embed_job& job) {
  const json::value* model = field(o, "model");
  if (!model)
    return bad_request("Field 'model' is required.");
  if (!model->is_string() || !is_voyage_model(model->get_string()))
    return bad_request(
        "Model " +
        (model->is_string() ? std::string(model->get_string()) : json::serialize(*model)) +
        " is not supported.");
  job.model = model->get_string();
  const voyage_limits limits = voyage_limits_for(job.model);

  const json::value* input = field(o, "input");
  if (!input)
    return bad_request("Field 'input' is required.");
  if (auto err = parse_voyage_input(*input, job))
    return err;

  bool truncation = true;
  if (const json::value* t = field(o, "truncation")) {
    if (!t->is_bool())
      return bad_request("Value of truncation must be a boolean.");
    truncation = t->get_bool();
  }
  if (auto err = parse_voyage_options(o, job, limits))
    return err;

  for (std::size_t i = 0; i < job.texts.size(); ++i) {
    const int tokens = fake::fake_token_count(job.texts[i]);
    if (tokens > limits.context && !truncation)
      return bad_request("Input at index " + std::to_string(i) + " has " + std::to_string(tokens) +
                         " tokens, over the context length of " + std::to_string(limits.context) +
                         " tokens for model " + job.model +
                         ". Set truncation to true to truncate it.");
    job.total_tokens += std::min(tokens, limits.context);
  }
  if (job.total_tokens > limits.token_cap)
    return bad_request("Request to model '" + job.model +
                       "' failed. The max allowed tokens per submitted batch is " +
                       std::to_string(limits.token_cap) + ". Your batch has " +
                       std::to_string(job.total_tokens) +
                       " tokens after truncation. Please lower the number of tokens in the batch.");
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Cohere (providers.md §2, §6.3)

api_error cohere_error(int status, std::string message) {
  return plain_error(status, std::move(message));
}

int cohere_context(std::string_view model) {
  if (model == "embed-v4.0")
    return 128000;
  if (model == "embed-multilingual-v2.0")
    return 256;
  return 512;
}

std::optional<api_error> check_cohere_fields(const json::object& o, bool v2) {
  static const std::vector<std::string_view> v1_fields = {
      "texts", "images", "model", "input_type", "embedding_types", "truncate"};
  static const std::vector<std::string_view> v2_only = {"inputs", "output_dimension", "max_tokens",
                                                        "priority"};
  for (const auto& [key, value] : o) {
    const bool known = std::find(v1_fields.begin(), v1_fields.end(), key) != v1_fields.end() ||
                       (v2 && std::find(v2_only.begin(), v2_only.end(), key) != v2_only.end());
    if (!known)
      return cohere_error(422,
                          "unknown field: parameter " + std::string(key) + " is not a valid field");
  }
  return std::nullopt;
}

// v2 "inputs": the text parts of each input's content, joined by newlines, make one text.
std::optional<api_error> parse_cohere_inputs(const json::value& inputs, embed_job& job) {
  if (!inputs.is_array())
    return cohere_error(422, "invalid request: inputs must be a list");
  for (const json::value& input : inputs.get_array()) {
    const json::value* content = input.is_object() ? field(input.get_object(), "content") : nullptr;
    if (!content || !content->is_array())
      return cohere_error(422, "invalid request: every input needs a content list");
    std::string text;
    for (const json::value& part : content->get_array()) {
      const json::object* p = part.if_object();
      const json::value* type = p ? field(*p, "type") : nullptr;
      const json::value* t = p ? field(*p, "text") : nullptr;
      if (!type || !type->is_string() || type->get_string() != "text" || !t || !t->is_string())
        return cohere_error(400, "invalid request: the fake provider only supports text content");
      if (!text.empty())
        text += '\n';
      text += t->get_string();
    }
    job.texts.push_back(std::move(text));
  }
  return std::nullopt;
}

std::optional<api_error> parse_cohere_texts(const json::object& o, embed_job& job, bool v2) {
  if (field(o, "images"))
    return cohere_error(400, "invalid request: images are not supported by the fake provider");
  if (const json::value* texts = field(o, "texts")) {
    if (!texts->is_array())
      return cohere_error(422, "invalid request: texts must be a list");
    for (const json::value& t : texts->get_array()) {
      if (!t.is_string())
        return cohere_error(422, "invalid request: texts must be strings");
      job.texts.emplace_back(t.get_string());
    }
    job.echoed_texts = job.texts;
  } else if (const json::value* inputs = v2 ? field(o, "inputs") : nullptr) {
    if (auto err = parse_cohere_inputs(*inputs, job))
      return err;
  }
  if (job.texts.empty())
    return cohere_error(400, "invalid request: texts must be a non-empty list of strings");
  if (job.texts.size() > 96)
    return cohere_error(400,
                        "invalid request: total number of texts must be at most 96 - received " +
                            std::to_string(job.texts.size()));
  for (std::size_t i = 0; i < job.texts.size(); ++i)
    if (job.texts[i].empty())
      return cohere_error(400, "invalid request: inputs contains an element that is the empty "
                               "string at index " +
                                   std::to_string(i));
  return std::nullopt;
}

std::optional<api_error> parse_cohere_embedding_types(const json::object& o, embed_job& job,
                                                      bool v2) {
  static const std::map<std::string_view, encoding> types = {
      {"float", {dtype::float32, false}},   {"int8", {dtype::int8, false}},
      {"uint8", {dtype::uint8, false}},     {"binary", {dtype::binary, false}},
      {"ubinary", {dtype::ubinary, false}}, {"base64", {dtype::float32, true}}};
  const json::value* requested = field(o, "embedding_types");
  if (!requested) {
    if (v2)
      job.cohere_types.emplace_back("float", encoding{});
    return std::nullopt;
  }
  if (!requested->is_array())
    return cohere_error(422, "invalid request: embedding_types must be a list");
  for (const json::value& t : requested->get_array()) {
    const auto it = t.is_string() ? types.find(t.get_string()) : types.end();
    if (it == types.end())
      return cohere_error(422, "invalid request: embedding_types must be one of float, int8, "
                               "uint8, binary, ubinary, base64");
    job.cohere_types.emplace_back(it->first, it->second);
  }
  if (job.cohere_types.empty())
    return cohere_error(400, "invalid request: embedding_types must not be empty");
  return std::nullopt;
}

std::optional<api_error> parse_cohere_dimension(const json::object& o, embed_job& job) {
  job.dims = fake::default_dims(job.model);
  const json::value* d = field(o, "output_dimension");
  if (!d)
    return std::nullopt;
  if (job.model != "embed-v4.0")
    return cohere_error(400, "invalid request: output_dimension is only supported by embed-v4.0");
  const auto k = as_integer(*d);
  if (!k || (*k != 256 && *k != 512 && *k != 1024 && *k != 1536))
    return cohere_error(400,
                        "invalid request: output_dimension must be one of 256, 512, 1024, 1536");
  job.dims = static_cast<int>(*k);
  return std::nullopt;
}

std::optional<api_error> parse_cohere_truncation(const json::object& o, embed_job& job, bool v2) {
  std::string truncate = "END";
  if (const json::value* t = field(o, "truncate")) {
    if (!t->is_string() ||
        (t->get_string() != "NONE" && t->get_string() != "START" && t->get_string() != "END"))
      return cohere_error(422, "invalid request: truncate must be one of NONE, START, END");
    truncate = t->get_string();
  }
  int limit = cohere_context(job.model);
  if (const json::value* m = v2 ? field(o, "max_tokens") : nullptr) {
    const auto k = as_integer(*m);
    if (!k || *k < 1)
      return cohere_error(422, "invalid request: max_tokens must be a positive integer");
    limit = static_cast<int>(std::min<std::int64_t>(limit, *k));
  }
  for (std::size_t i = 0; i < job.texts.size(); ++i) {
    const int tokens = fake::fake_token_count(job.texts[i]);
    if (tokens > limit && truncate == "NONE")
      return cohere_error(400, "invalid request: input at index " + std::to_string(i) + " has " +
                                   std::to_string(tokens) +
                                   " tokens, which exceeds the maximum of " +
                                   std::to_string(limit) + " tokens; use truncate START or END");
    job.total_tokens += std::min(tokens, limit);
  }
  return std::nullopt;
}

std::optional<api_error> parse_cohere(const json::object& o, embed_job& job, bool v2) {
  if (auto err = check_cohere_fields(o, v2))
    return err;
  const json::value* model = field(o, "model");
  if (!model)
    return cohere_error(400, "a model parameter is required for this endpoint.");
  if (!model->is_string())
    return cohere_error(422, "invalid request: model must be a string");
  job.model = model->get_string();
  if (!is_cohere_model(job.model))
    return cohere_error(404, "model '" + job.model +
                                 "' not found, make sure the correct model ID was used and that "
                                 "you have access to the model.");
  if (auto err = parse_cohere_texts(o, job, v2))
    return err;

  static const std::vector<std::string_view> input_types = {
      "search_document", "search_query", "classification", "clustering", "image"};
  if (const json::value* t = field(o, "input_type")) {
    if (!t->is_string() ||
        std::find(input_types.begin(), input_types.end(), t->get_string()) == input_types.end())
      return cohere_error(422, "invalid request: input_type must be one of search_document, "
                               "search_query, classification, clustering, image");
    job.input_type = t->get_string();
  } else if (v2 || !job.model.ends_with("-v2.0")) {
    return cohere_error(
        400, "invalid request: valid input_type must be provided with the provided model");
  }
  if (auto err = parse_cohere_embedding_types(o, job, v2))
    return err;
  if (auto err = v2 ? parse_cohere_dimension(o, job) : std::nullopt)
    return err;
  if (!v2)
    job.dims = fake::default_dims(job.model);
  return parse_cohere_truncation(o, job, v2);
}

// ---------------------------------------------------------------------------------------------
// OpenAI (providers.md §3, §6.4)

api_error openai_error(int status, std::string message, std::string type = "invalid_request_error",
                       std::string code = {}, std::string param = {}) {
  return {status, std::move(message), std::move(type), std::move(code), std::move(param)};
}

api_error openai_invalid_input() {
  return openai_error(400, "'$.input' is invalid. Please check the API reference: "
                           "https://platform.openai.com/docs/api-reference.");
}

std::string openai_context_message(int tokens) {
  const std::string n = std::to_string(tokens);
  return "This model's maximum context length is 8192 tokens, however you requested " + n +
         " tokens (" + n +
         " in your prompt; 0 for the completion). Please reduce your prompt; or "
         "completion length.";
}

// A token-id array stands for its ids joined by spaces, so the vector stays deterministic.
std::optional<std::string> token_array_text(const json::array& ids) {
  if (ids.empty())
    return std::nullopt;
  std::string text;
  for (const json::value& id : ids) {
    const auto i = as_integer(id);
    if (!i)
      return std::nullopt;
    if (!text.empty())
      text += ' ';
    text += std::to_string(*i);
  }
  return text;
}

// Returns the token count per input (token arrays count their ids, texts use the fake tokenizer).
std::optional<std::vector<int>> parse_openai_input(const json::value& input, embed_job& job) {
  std::vector<int> tokens;
  if (input.is_string()) {
    if (input.get_string().empty())
      return std::nullopt;
    job.texts.emplace_back(input.get_string());
    tokens.push_back(fake::fake_token_count(job.texts.back()));
    return tokens;
  }
  if (!input.is_array() || input.get_array().empty() || input.get_array().size() > 2048)
    return std::nullopt;
  const json::array& items = input.get_array();
  if (items[0].is_number()) { // one input given as token ids
    auto text = token_array_text(items);
    if (!text)
      return std::nullopt;
    job.texts.push_back(std::move(*text));
    tokens.push_back(static_cast<int>(items.size()));
    return tokens;
  }
  const bool strings = items[0].is_string(); // OpenAI rejects lists mixing texts and token ids
  for (const json::value& item : items) {
    if (item.is_string() != strings)
      return std::nullopt;
    if (item.is_string() && !item.get_string().empty()) {
      job.texts.emplace_back(item.get_string());
      tokens.push_back(fake::fake_token_count(job.texts.back()));
    } else if (item.is_array()) {
      auto text = token_array_text(item.get_array());
      if (!text)
        return std::nullopt;
      job.texts.push_back(std::move(*text));
      tokens.push_back(static_cast<int>(item.get_array().size()));
    } else {
      return std::nullopt;
    }
  }
  return tokens;
}

std::optional<api_error> parse_openai_options(const json::object& o, embed_job& job) {
  if (const json::value* e = field(o, "encoding_format")) {
    if (!e->is_string() || (e->get_string() != "float" && e->get_string() != "base64"))
      return openai_error(
          400,
          "Invalid value for 'encoding_format' = " +
              (e->is_string() ? std::string(e->get_string()) : json::serialize(*e)) +
              ". Supported values: ['float', 'base64'].",
          "invalid_request_error", {}, "encoding_format");
    job.enc.base64 = e->get_string() == "base64";
  }
  const int native = fake::default_dims(job.model);
  job.dims = native;
  if (const json::value* d = field(o, "dimensions")) {
    if (job.model == "text-embedding-ada-002")
      return openai_error(400, "This model does not support specifying dimensions.");
    const auto k = as_integer(*d);
    if (!k || *k < 1)
      return openai_error(
          400, "Invalid value for 'dimensions' = " + json::serialize(*d) + ". Must be at least 1.",
          "invalid_request_error", {}, "dimensions");
    if (*k > native)
      return openai_error(400,
                          "This model's maximum dimensions is " + std::to_string(native) +
                              ", however you requested " + std::to_string(*k) + ".",
                          "invalid_request_error", {}, "dimensions");
    job.dims = static_cast<int>(*k);
  }
  return std::nullopt;
}

std::optional<api_error> parse_openai(const json::object& o, embed_job& job) {
  static const std::vector<std::string_view> known = {"input", "model", "encoding_format",
                                                      "dimensions", "user"};
  for (const auto& [key, value] : o)
    if (std::find(known.begin(), known.end(), key) == known.end())
      return openai_error(400, "Unrecognized request argument supplied: " + std::string(key));
  const json::value* model = field(o, "model");
  if (!model || !model->is_string())
    return openai_error(400, "you must provide a model parameter");
  job.model = model->get_string();
  if (!is_openai_model(job.model))
    return openai_error(
        404, "The model `" + job.model + "` does not exist or you do not have access to it.",
        "invalid_request_error", "model_not_found");
  const json::value* input = field(o, "input");
  if (!input)
    return openai_error(400, "'input' is a required property");
  const auto tokens = parse_openai_input(*input, job);
  if (!tokens)
    return openai_invalid_input();
  if (auto err = parse_openai_options(o, job))
    return err;
  for (int t : *tokens) {
    if (t > 8192)
      return openai_error(400, openai_context_message(t));
    job.total_tokens += t;
  }
  if (job.total_tokens > 300000)
    return openai_error(400,
                        "Requested " + std::to_string(job.total_tokens) +
                            " tokens, max 300000 tokens per request",
                        "max_tokens_per_request", "max_tokens_per_request");
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Provider-shaped errors

std::string error_body(flavor kind, const api_error& e) {
  if (kind == flavor::voyage)
    return json::serialize(json::object{{"detail", e.message}});
  if (kind != flavor::openai)
    return json::serialize(json::object{{"message", e.message}, {"id", random_uuid()}});
  auto nullable = [](const std::string& s) { return s.empty() ? json::value() : json::value(s); };
  return json::serialize(json::object{{"error", json::object{{"message", e.message},
                                                             {"type", e.type},
                                                             {"param", nullable(e.param)},
                                                             {"code", nullable(e.code)}}}});
}

std::optional<api_error> auth_error(flavor kind, const httplib::Request& req,
                                    const std::string& expected_key, std::string& key) {
  const std::string header = req.get_header_value("Authorization");
  if (header.size() > 7 && (starts_with(header, "Bearer ") || starts_with(header, "bearer ")))
    key = header.substr(7);
  const bool missing = key.empty();
  if (!missing && (expected_key.empty() || key == expected_key))
    return std::nullopt;
  switch (kind) {
  case flavor::voyage:
    return plain_error(401, missing
                                ? "No API key provided. Send it as 'Authorization: Bearer <key>'."
                                : "Provided API key is invalid.");
  case flavor::cohere_v1:
  case flavor::cohere_v2:
    return plain_error(401, missing ? "no api key supplied" : "invalid api token");
  case flavor::openai:
    if (missing)
      return openai_error(
          401,
          "You didn't provide an API key. You need to provide your API key in an "
          "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as "
          "the password field (with blank username) if you're accessing the API from your "
          "browser and are prompted for a username and password. You can obtain an API key "
          "from https://platform.openai.com/account/api-keys.");
    return openai_error(
        401,
        "Incorrect API key provided: " + key.substr(0, std::min<std::size_t>(3, key.size())) +
            "****" + (key.size() > 7 ? key.substr(key.size() - 4) : "") +
            ". You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error", "invalid_api_key");
  }
  return std::nullopt;
}

api_error parse_error(flavor kind, const json::error_code& ec) {
  switch (kind) {
  case flavor::voyage:
    return bad_request("Request body is not valid JSON: " + ec.message());
  case flavor::cohere_v1:
  case flavor::cohere_v2:
    return cohere_error(400, "invalid json syntax: " + ec.message());
  case flavor::openai:
    break;
  }
  return openai_error(400, "We could not parse the JSON body of your request. (HINT: This likely "
                           "means you aren't using your HTTP library correctly. The OpenAI API "
                           "expects a JSON payload, but what was sent was not valid JSON.)");
}

// The error an injected status answers with, worded like the provider's own.
api_error injected_error(flavor kind, int status, const std::string& model) {
  if (status == 429) {
    if (kind == flavor::openai)
      return openai_error(429,
                          "Rate limit reached for " + model +
                              " in organization org-fake on "
                              "requests per min (RPM): Limit 1, Used 1, Requested 1. Please try "
                              "again in 1s. Visit https://platform.openai.com/account/rate-limits "
                              "to learn more.",
                          "requests", "rate_limit_exceeded");
    if (kind == flavor::voyage)
      return plain_error(429, "Rate limit exceeded. Please try again later.");
    return plain_error(
        429, "You are past the per minute request limit, please wait and try again later.");
  }
  if (status == 500) {
    if (kind == flavor::openai)
      return openai_error(500,
                          "The server had an error processing your request. Sorry about "
                          "that! You can retry your request, or contact us through our help "
                          "center at help.openai.com if you keep seeing this error.",
                          "server_error");
    return plain_error(500,
                       kind == flavor::voyage ? "Internal Server Error" : "internal server error");
  }
  if (status >= 502 && status <= 504)
    return openai_error(status,
                        "Service unavailable: the servers are experiencing high traffic. "
                        "Please retry your requests after a brief wait.",
                        "server_error");
  return openai_error(status, "Injected fault: status " + std::to_string(status) + ".",
                      status >= 500 ? "server_error" : "invalid_request_error");
}

// The 400 a text carrying the poison marker gets: as if it were over the context length.
api_error poison_error(flavor kind, std::size_t index, const std::string& model) {
  const std::string at = std::to_string(index);
  switch (kind) {
  case flavor::voyage:
    return bad_request("Input at index " + at +
                       " is too long: it exceeds the context length of "
                       "model " +
                       model + ". Set truncation to true to truncate it.");
  case flavor::cohere_v1:
  case flavor::cohere_v2:
    return cohere_error(400, "invalid request: input at index " + at +
                                 " is too long and could not be embedded");
  case flavor::openai:
    break;
  }
  return openai_error(400, "Input at index " + at + " is invalid. " + openai_context_message(8193));
}

api_error rate_limit_error(flavor kind, const rate_limiter::verdict& v, const std::string& model) {
  const std::string per = v.by_tokens ? "tokens per min (TPM)" : "requests per min (RPM)";
  switch (kind) {
  case flavor::voyage:
    return plain_error(429, "Rate limit exceeded for model " + model + ": limit of " +
                                std::to_string(v.limit) + " " + per +
                                " reached. Please try again later.");
  case flavor::cohere_v1:
  case flavor::cohere_v2:
    if (v.by_tokens)
      return plain_error(429, "token rate limit exceeded, limit is " + std::to_string(v.limit) +
                                  " tokens per minute");
    return plain_error(
        429, "You are past the per minute request limit, please wait and try again later.");
  case flavor::openai:
    break;
  }
  return openai_error(429,
                      "Rate limit reached for " + model + " in organization org-fake on " + per +
                          ": Limit " + std::to_string(v.limit) + ", Used " +
                          std::to_string(v.used) + ", Requested " + std::to_string(v.requested) +
                          ". Please try again in " + go_duration(v.wait_s) +
                          ". Visit https://platform.openai.com/account/rate-limits to learn more.",
                      v.by_tokens ? "tokens" : "requests", "rate_limit_exceeded");
}

// ---------------------------------------------------------------------------------------------
// Rendering successful responses

void append_list_item(std::string& out, const embed_job& job, std::size_t i, malformed shape) {
  std::vector<float> v = fake::fake_vector(job.model, job.input_type, job.texts[i], job.dims);
  if (shape == malformed::nan && i == 0 && !v.empty())
    v[0] = std::numeric_limits<float>::quiet_NaN();
  const std::string index = std::to_string(i + (shape == malformed::bad_index ? 1 : 0));
  const bool with_index = shape != malformed::missing_index;
  out += R"({"object":"embedding",)";
  if (job.kind == flavor::openai && with_index)
    out += R"("index":)" + index + ',';
  out += R"("embedding":)";
  append_embedding(out, v, job.enc);
  if (job.kind == flavor::voyage && with_index)
    out += R"(,"index":)" + index;
  out += '}';
}

// Voyage and OpenAI share the list shape; they differ in key order and usage fields.
std::string render_list(const embed_job& job, malformed shape) {
  const std::size_t count = job.texts.size() - (shape == malformed::wrong_count ? 1 : 0);
  std::string out;
  out.reserve(64 + count * (static_cast<std::size_t>(job.dims) * 12 + 64));
  out += R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < count; ++i) {
    if (i)
      out += ',';
    append_list_item(out, job, i, shape);
  }
  out += R"(],"model":)";
  append_json_string(out, job.model);
  const std::string n = std::to_string(job.total_tokens);
  if (job.kind == flavor::openai)
    out += R"(,"usage":{"prompt_tokens":)" + n + R"(,"total_tokens":)" + n + "}}";
  else
    out += R"(,"usage":{"total_tokens":)" + n + "}}";
  return out;
}

// Cohere vectors are positional; "bad_index" rotates them and "missing_index" drops the key.
std::string render_cohere(const embed_job& job, malformed shape) {
  const std::size_t n = job.texts.size();
  std::vector<std::vector<float>> vectors;
  vectors.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t source = shape == malformed::bad_index ? (i + 1) % n : i;
    vectors.push_back(fake::fake_vector(job.model, job.input_type, job.texts[source], job.dims));
  }
  if (shape == malformed::wrong_count)
    vectors.pop_back();
  if (shape == malformed::nan && !vectors[0].empty())
    vectors[0][0] = std::numeric_limits<float>::quiet_NaN();

  std::string out;
  out.reserve(256 + n * (static_cast<std::size_t>(job.dims) * 12 + 64));
  out += R"({"id":")" + random_uuid() + R"(","texts":)";
  out += json::serialize(json::value_from(job.echoed_texts));
  if (shape != malformed::missing_index) {
    out += R"(,"embeddings":)";
    auto append_all = [&](encoding enc) {
      out += '[';
      for (std::size_t i = 0; i < vectors.size(); ++i) {
        if (i)
          out += ',';
        append_embedding(out, vectors[i], enc);
      }
      out += ']';
    };
    if (job.cohere_types.empty()) {
      append_all(encoding{});
    } else {
      out += '{';
      for (std::size_t t = 0; t < job.cohere_types.size(); ++t) {
        if (t)
          out += ',';
        append_json_string(out, job.cohere_types[t].first);
        out += ':';
        append_all(job.cohere_types[t].second);
      }
      out += '}';
    }
  }
  out += R"(,"meta":{"api_version":{"version":")";
  out += job.kind == flavor::cohere_v2 ? "2" : "1";
  out += R"("},"billed_units":{"input_tokens":)" + std::to_string(job.total_tokens) + "}}";
  out += job.cohere_types.empty() ? R"(,"response_type":"embeddings_floats"})"
                                  : R"(,"response_type":"embeddings_by_type"})";
  return out;
}

// ---------------------------------------------------------------------------------------------
// The server

struct reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  httplib::Headers headers;
  bool ok_vectors = false;
};

// cpp-httplib as Debian builds it fixes the listen backlog at 5; re-listening raises it.
class http_server : public httplib::Server {
public:
  bool relisten(int backlog) { return ::listen(svr_sock_, backlog) == 0; }
};

class fake_provider {
public:
  explicit fake_provider(options opts)
      : opts_(std::move(opts)), faults_(opts_.seed), limiter_(opts_.rpm, opts_.tpm) {}

  void install(http_server& svr);
  stop_signal& stopper() { return stop_; }

private:
  void handle_embeddings(const httplib::Request& req, httplib::Response& res, route r);
  reply serve_embeddings(const httplib::Request& req, flavor kind, const json::value* body,
                         const json::error_code& ec, embed_job& job, std::string& key);
  reply error_reply(flavor kind, const api_error& e) const;
  std::optional<api_error> validate(flavor kind, const json::object& o, embed_job& job) const;
  std::optional<reply> check_rate_limit(flavor kind, const embed_job& job, const std::string& key);
  void add_openai_headers(reply& r, const std::string& key, const std::string& model,
                          steady_clock::time_point started);
  void apply_shape(reply& r, malformed shape) const;

  void handle_faults(const httplib::Request& req, httplib::Response& res);
  void handle_reset(httplib::Response& res);
  void handle_stats(httplib::Response& res);
  void handle_vectors(const httplib::Request& req, httplib::Response& res);

  options opts_;
  fault_injector faults_;
  rate_limiter limiter_;
  call_stats stats_;
  stop_signal stop_;
};

flavor pick_flavor(route r, const json::value* body) {
  switch (r) {
  case route::voyage:
    return flavor::voyage;
  case route::openai:
    return flavor::openai;
  case route::cohere_v1:
    return flavor::cohere_v1;
  case route::cohere_v2:
    return flavor::cohere_v2;
  case route::by_model:
    break;
  }
  const json::object* o = body ? body->if_object() : nullptr;
  const json::value* model = o ? field(*o, "model") : nullptr;
  if (model && model->is_string() && starts_with(model->get_string(), "text-embedding-"))
    return flavor::openai;
  return flavor::voyage; // voyage-* and anything unknown: Voyage's 400 {"detail"}
}

void fake_provider::handle_embeddings(const httplib::Request& req, httplib::Response& res,
                                      route r) {
  const auto started = steady_clock::now();
  stats_.begin_call();
  json::error_code ec;
  const json::value body = json::parse(req.body, ec);
  const flavor kind = pick_flavor(r, ec ? nullptr : &body);

  embed_job job;
  job.kind = kind;
  std::string key;
  reply out = serve_embeddings(req, kind, ec ? nullptr : &body, ec, job, key);
  if (kind == flavor::openai)
    add_openai_headers(out, key, job.model, started);

  res.status = out.status;
  for (auto& [name, value] : out.headers)
    res.set_header(name.c_str(), value);
  res.set_content(std::move(out.body), out.content_type.c_str());

  std::vector<std::string> header_names;
  for (const auto& header : req.headers)
    header_names.push_back(header.first);
  stats_.record({0, req.path, job.model, job.input_type, static_cast<int>(job.texts.size()),
                 out.status, req.get_header_value("X-Request-Id"), std::move(header_names)},
                out.ok_vectors);
  stats_.end_call();
}

reply fake_provider::serve_embeddings(const httplib::Request& req, flavor kind,
                                      const json::value* body, const json::error_code& ec,
                                      embed_job& job, std::string& key) {
  if (auto err = auth_error(kind, req, opts_.api_key, key))
    return error_reply(kind, *err);
  if (!body)
    return error_reply(kind, parse_error(kind, ec));
  if (!body->is_object())
    return error_reply(kind, parse_error(kind, make_error_code(json::error::not_object)));

  // Faults come before validation: they stand for the provider failing, not the request.
  const fault_step step = faults_.next_step(kind == flavor::cohere_v1 || kind == flavor::cohere_v2);
  stop_.sleep_ms(step.delay_ms);
  if (step.status != 0 && step.status != 200) {
    const json::value* m = field(body->get_object(), "model");
    job.model = m && m->is_string() ? std::string(m->get_string()) : "";
    reply r = error_reply(kind, injected_error(kind, step.status, job.model));
    if (!step.retry_after.empty())
      r.headers.emplace("Retry-After", step.retry_after);
    if (!step.retry_after_ms.empty())
      r.headers.emplace("retry-after-ms", step.retry_after_ms);
    return r;
  }

  if (auto err = validate(kind, body->get_object(), job))
    return error_reply(kind, *err);
  for (std::size_t i = 0; i < job.texts.size(); ++i)
    if (job.texts[i].find(opts_.poison_marker) != std::string::npos)
      return error_reply(kind, poison_error(kind, i, job.model));
  if (auto limited = check_rate_limit(kind, job, key))
    return std::move(*limited);

  stop_.sleep_ms(opts_.latency_ms +
                 static_cast<long>(static_cast<double>(opts_.latency_per_token_us) *
                                   job.total_tokens / 1000.0));
  if (step.shape == malformed::wrong_dims)
    job.dims = std::max(1, job.dims / 2);
  reply r;
  r.body = kind == flavor::cohere_v1 || kind == flavor::cohere_v2 ? render_cohere(job, step.shape)
                                                                  : render_list(job, step.shape);
  r.ok_vectors = step.shape == malformed::none;
  apply_shape(r, step.shape);
  return r;
}

std::optional<api_error> fake_provider::validate(flavor kind, const json::object& o,
                                                 embed_job& job) const {
  switch (kind) {
  case flavor::voyage:
    return parse_voyage(o, job);
  case flavor::cohere_v1:
    return parse_cohere(o, job, false);
  case flavor::cohere_v2:
    return parse_cohere(o, job, true);
  case flavor::openai:
    break;
  }
  return parse_openai(o, job);
}

reply fake_provider::error_reply(flavor kind, const api_error& e) const {
  reply r;
  r.status = e.status;
  r.body = error_body(kind, e);
  return r;
}

std::optional<reply> fake_provider::check_rate_limit(flavor kind, const embed_job& job,
                                                     const std::string& key) {
  const rate_limiter::verdict v = limiter_.admit(key + '\x1f' + job.model, job.total_tokens);
  if (v.allowed)
    return std::nullopt;
  reply r = error_reply(kind, rate_limit_error(kind, v, job.model));
  const int retry_after =
      opts_.retry_after.value_or(std::max(1, static_cast<int>(std::ceil(v.wait_s))));
  if (retry_after >= 0)
    r.headers.emplace("Retry-After", std::to_string(retry_after));
  return r;
}

void fake_provider::add_openai_headers(reply& r, const std::string& key, const std::string& model,
                                       steady_clock::time_point started) {
  const rate_limiter::usage u = limiter_.peek(key + '\x1f' + model);
  // Unlimited still reports limits, since clients may throttle on these headers.
  const long rpm = limiter_.rpm() > 0 ? limiter_.rpm() : 10000;
  const long tpm = limiter_.tpm() > 0 ? limiter_.tpm() : 10000000;
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - started);
  r.headers.emplace("x-request-id", "req_" + random_hex(32));
  r.headers.emplace("openai-processing-ms", std::to_string(elapsed.count()));
  r.headers.emplace("openai-version", "2020-10-01");
  r.headers.emplace("x-ratelimit-limit-requests", std::to_string(rpm));
  r.headers.emplace("x-ratelimit-limit-tokens", std::to_string(tpm));
  r.headers.emplace("x-ratelimit-remaining-requests",
                    std::to_string(std::max(0L, rpm - u.requests)));
  r.headers.emplace("x-ratelimit-remaining-tokens", std::to_string(std::max(0L, tpm - u.tokens)));
  r.headers.emplace("x-ratelimit-reset-requests", go_duration(u.reset_requests_s));
  r.headers.emplace("x-ratelimit-reset-tokens", go_duration(u.reset_tokens_s));
}

void fake_provider::apply_shape(reply& r, malformed shape) const {
  if (shape == malformed::non_json) {
    r.body = "<html>oops</html>";
    r.content_type = "text/html";
  } else if (shape == malformed::truncated) {
    r.body.resize(r.body.size() / 2);
  }
}

void write_json(httplib::Response& res, int status, const json::value& v) {
  res.status = status;
  res.set_content(json::serialize(v), "application/json");
}

void fake_provider::handle_faults(const httplib::Request& req, httplib::Response& res) {
  try {
    faults_.replace(parse_fault_plan(json::parse(req.body)));
    write_json(res, 200, {{"ok", true}});
  } catch (const std::exception& e) {
    write_json(res, 400, {{"error", e.what()}});
  }
}

void fake_provider::handle_reset(httplib::Response& res) {
  faults_.reset();
  stats_.reset();
  limiter_.reset();
  write_json(res, 200, {{"ok", true}});
}

void fake_provider::handle_stats(httplib::Response& res) {
  write_json(res, 200, stats_.to_json());
}

void fake_provider::handle_vectors(const httplib::Request& req, httplib::Response& res) {
  json::error_code ec;
  const json::value body = json::parse(req.body, ec);
  const json::object* o = ec ? nullptr : body.if_object();
  const json::value* model = o ? field(*o, "model") : nullptr;
  const json::value* texts = o ? field(*o, "texts") : nullptr;
  if (!model || !model->is_string() || !texts || !texts->is_array())
    return write_json(res, 400, {{"error", "expected {model, input_type, texts, dimensions}"}});
  const json::value* type = field(*o, "input_type");
  const json::value* dims_field = field(*o, "dimensions");
  const auto dims = dims_field
                        ? as_integer(*dims_field)
                        : std::optional<std::int64_t>(fake::default_dims(model->get_string()));
  if (!dims || *dims <= 0)
    return write_json(res, 400, {{"error", "unknown model and no dimensions given"}});
  const std::string input_type = type && type->is_string() ? std::string(type->get_string()) : "";

  std::string out = R"({"vectors":[)";
  for (std::size_t i = 0; i < texts->get_array().size(); ++i) {
    const json::value& t = texts->get_array()[i];
    if (!t.is_string())
      return write_json(res, 400, {{"error", "texts must be strings"}});
    if (i)
      out += ',';
    append_float_array(out, fake::fake_vector(model->get_string(), input_type, t.get_string(),
                                              static_cast<int>(*dims)));
  }
  out += "]}";
  res.set_content(std::move(out), "application/json");
}

void fake_provider::install(http_server& svr) {
  const std::pair<const char*, route> embedding_routes[] = {
      {"/v1/embeddings", route::by_model},      {"/voyage/v1/embeddings", route::voyage},
      {"/openai/v1/embeddings", route::openai}, {"/v1/embed", route::cohere_v1},
      {"/v2/embed", route::cohere_v2},          {"/cohere/v1/embed", route::cohere_v1},
      {"/cohere/v2/embed", route::cohere_v2}};
  for (const auto& [path, r] : embedding_routes) {
    const route which = r;
    svr.Post(path, [this, which](const httplib::Request& req, httplib::Response& res) {
      handle_embeddings(req, res, which);
    });
  }
  svr.Post("/_faults", [this](const httplib::Request& req, httplib::Response& res) {
    handle_faults(req, res);
  });
  svr.Post("/_reset",
           [this](const httplib::Request&, httplib::Response& res) { handle_reset(res); });
  svr.Get("/_stats",
          [this](const httplib::Request&, httplib::Response& res) { handle_stats(res); });
  svr.Post("/_vectors", [this](const httplib::Request& req, httplib::Response& res) {
    handle_vectors(req, res);
  });
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          if (ep)
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        write_json(res, 500, {{"error", "fake_provider internal error: " + what}});
      });
}

// ---------------------------------------------------------------------------------------------
// Process setup

bool write_port_file(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    if (!(f << port << '\n'))
      return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

// SIGINT/SIGTERM are blocked everywhere and taken by one thread, which may then safely stop the
// server; a plain signal handler could not call stop().
void block_stop_signals(sigset_t& set) {
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void add_flags(CLI::App& app, options& o) {
  app.add_option("--host", o.host, "Address to bind (loopback by default)");
  app.add_option("--port", o.port, "Port to bind; 0 picks a free port");
  app.add_option("--port-file", o.port_file, "Write the bound port to this file once listening");
  app.add_option("--threads", o.threads, "HTTP worker threads (concurrent connections)")
      ->check(CLI::PositiveNumber);
  app.add_option("--latency-ms", o.latency_ms, "Base latency added to every embeddings call");
  app.add_option("--latency-per-token-us", o.latency_per_token_us,
                 "Extra latency per input token, in microseconds");
  app.add_option("--rpm", o.rpm, "Requests per minute per (key, model); 0 = unlimited");
  app.add_option("--tpm", o.tpm, "Tokens per minute per (key, model); 0 = unlimited");
  app.add_option(
      "--retry-after", o.retry_after,
      "Retry-After seconds on rate-limit 429s (default: until the window frees; -1: omit)");
  app.add_option("--poison-marker", o.poison_marker,
                 "Texts containing this string are rejected as over-length");
  app.add_option("--api-key", o.api_key, "The only accepted API key (default: any key)");
  app.add_option("--seed", o.seed, "Seed for probabilistic faults");
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Fake Voyage / Cohere / OpenAI embeddings provider for tests and benchmarks"};
  options opts;
  add_flags(app, opts);
  CLI11_PARSE(app, argc, argv);

  sigset_t stop_signals;
  block_stop_signals(stop_signals);

  fake_provider provider(opts);
  http_server svr;
  const std::size_t threads = static_cast<std::size_t>(opts.threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_keep_alive_max_count(100000);
  svr.set_payload_max_length(64u << 20);
  svr.set_tcp_nodelay(true);
  provider.install(svr);

  const int port = opts.port == 0 ? svr.bind_to_any_port(opts.host)
                                  : (svr.bind_to_port(opts.host, opts.port) ? opts.port : -1);
  if (port <= 0 || !svr.relisten(4096)) {
    std::cerr << "fake_provider: cannot listen on " << opts.host << ':' << opts.port << '\n';
    return 1;
  }
  if (!opts.port_file.empty() && !write_port_file(opts.port_file, port)) {
    std::cerr << "fake_provider: cannot write " << opts.port_file << '\n';
    return 1;
  }
  std::cout << "fake_provider listening on " << opts.host << ':' << port << std::endl;

  std::thread([&svr, &provider, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    provider.stopper().trigger();
    svr.stop();
  }).detach();

  svr.listen_after_bind();
  return 0;
}
