// Parsing and drawing fault steps; see faults.hpp.

#include "tools/fake_provider/faults.hpp"

#include "tools/fake_provider/json_fields.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <map>
#include <stdexcept>
#include <string_view>

namespace emr::fake {

namespace json = boost::json;

namespace {

malformed parse_malformed(std::string_view s) {
  static const std::map<std::string_view, malformed> kinds = {
      {"non_json", malformed::non_json},     {"wrong_count", malformed::wrong_count},
      {"bad_index", malformed::bad_index},   {"missing_index", malformed::missing_index},
      {"truncated", malformed::truncated},   {"nan", malformed::nan},
      {"wrong_dims", malformed::wrong_dims}, {"oversized", malformed::oversized}};
  const auto it = kinds.find(s);
  if (it == kinds.end())
    throw std::invalid_argument("unknown malformed kind: " + std::string(s));
  return it->second;
}

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

} // namespace

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

void fault_injector::replace(fault_plan plan) {
  std::lock_guard lock(mutex_);
  plan_ = std::move(plan);
  next_ = 0;
}

void fault_injector::reset() {
  std::lock_guard lock(mutex_);
  plan_ = fault_plan{};
  next_ = 0;
  rng_.seed(seed_);
}

fault_step fault_injector::next_step(bool positional_rows) {
  std::lock_guard lock(mutex_);
  if (next_ < plan_.script.size())
    return plan_.script[next_++];
  if (plan_.then)
    return *plan_.then;
  return draw(positional_rows);
}

// Independent draws in a fixed order, so a given seed replays the same fault sequence.
fault_step fault_injector::draw(bool positional_rows) {
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

bool fault_injector::chance(double p) {
  return p > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
}

void apply_to_job(malformed shape, embed_job& job) {
  if (shape == malformed::wrong_dims)
    job.dims = std::max(1, job.dims / 2);
}

void apply_to_answer(malformed shape, std::string& body, std::string& content_type) {
  if (shape == malformed::non_json) {
    body = "<html>oops</html>";
    content_type = "text/html";
  } else if (shape == malformed::truncated) {
    body.resize(body.size() / 2);
  } else if (shape == malformed::oversized) {
    body.append(std::size_t{4} << 20, ' ');
  }
}

} // namespace emr::fake
