// GET /metrics: Prometheus text, rendered from the same status replies /admin/stats shows, so
// the two cannot disagree.

#include "http/exchange.hpp"
#include "http/route_table.hpp"
#include "http/routes.hpp"

#include <boost/json.hpp>

#include <functional>
#include <sstream>

namespace json = boost::json;

namespace emr {

namespace {

std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string number(const json::value& v) {
  if (auto d = v.if_double()) {
    std::ostringstream s;
    s.precision(17);
    s << *d;
    return s.str();
  }
  if (auto i = v.if_int64())
    return std::to_string(*i);
  if (auto u = v.if_uint64())
    return std::to_string(*u);
  if (auto b = v.if_bool())
    return *b ? "1" : "0";
  return "0";
}

class exposition {
public:
  void header(std::string_view name, std::string_view type, std::string_view help) {
    out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void sample(std::string_view name, const std::string& labels, const std::string& value) {
    out_ << name;
    if (!labels.empty())
      out_ << "{" << labels << "}";
    out_ << " " << value << "\n";
  }
  // A histogram as reported by emr::histogram::to_json().
  void histogram(std::string_view name, const std::string& labels, const json::object& h) {
    auto sep = labels.empty() ? "" : ",";
    for (const auto& b : h.at("buckets").as_array())
      sample(std::string{name} + "_bucket", labels + sep + "le=\"" + number(b.at(0)) + "\"",
             number(b.at(1)));
    sample(std::string{name} + "_bucket", labels + sep + "le=\"+Inf\"", number(h.at("count")));
    sample(std::string{name} + "_sum", labels, number(h.at("sum")));
    sample(std::string{name} + "_count", labels, number(h.at("count")));
  }
  std::string str() const { return out_.str(); }

private:
  std::ostringstream out_;
};

// Per-provider series taken from a batcher's status reply: one declaration each.
struct batcher_series {
  std::string_view name;
  std::string_view type;
  std::string_view help;
  std::string_view field;
};

constexpr batcher_series batcher_metrics[] = {
    {"emr_texts_total", "counter", "Texts callers asked for, across upstream calls.",
     "texts_flushed"},
    {"emr_upstream_texts_total", "counter", "Distinct texts sent upstream (after de-duplication).",
     "texts_sent"},
    {"emr_upstream_batches_total", "counter", "Upstream batch calls started.", "batches_flushed"},
    {"emr_retries_total", "counter", "Upstream attempts beyond each call's first.", "retries"},
    {"emr_queued_texts", "gauge", "Texts waiting in a provider's queues.", "queued_texts"},
    {"emr_in_flight_calls", "gauge", "Upstream calls in progress.", "in_flight_calls"},
    {"emr_call_window", "gauge", "Concurrent upstream calls the provider may have (AIMD).",
     "call_window"},
};

} // namespace

void install_metrics_route(route_table& routes, app& a) {
  routes.get("/metrics", [&a](const httplib::Request&, httplib::Response& res) {
    auto stats = collect_stats(a);
    const auto& providers = stats.at("providers").as_array();
    const auto& health = stats.at("health").as_object();
    auto callers = a.callers.to_json();
    exposition e;

    e.header("emr_caller_requests_total", "counter",
             "Caller requests answered, by provider and HTTP status.");
    for (const auto& r : callers.at("requests").as_array())
      e.sample("emr_caller_requests_total",
               "provider=\"" + label_value(r.at("provider").as_string()) + "\",status=\"" +
                   number(r.at("status")) + "\"",
               number(r.at("count")));
    e.header("emr_caller_latency_seconds", "histogram",
             "Time from a caller's request to its answer.");
    e.histogram("emr_caller_latency_seconds", "", callers.at("latency_seconds").as_object());
    e.header("emr_rate_limited_passed_on_total", "counter", "Caller answers that were 429.");
    e.sample("emr_rate_limited_passed_on_total", "", number(callers.at("rate_limited_passed_on")));
    for (const auto& c : a.auth.counters()) {
      auto name = "emr_auth_" + std::string{c.name} + "_total";
      e.header(name, "counter", c.help);
      e.sample(name, "", std::to_string(c.value));
    }

    for (const auto& m : batcher_metrics) {
      e.header(m.name, m.type, m.help);
      for (const auto& p : providers)
        e.sample(m.name, "provider=\"" + label_value(p.at("provider").as_string()) + "\"",
                 number(p.at(m.field)));
    }
    e.header("emr_upstream_texts_per_call", "histogram", "Distinct texts in each upstream call.");
    for (const auto& p : providers)
      e.histogram("emr_upstream_texts_per_call",
                  "provider=\"" + label_value(p.at("provider").as_string()) + "\"",
                  p.at("texts_per_call").as_object());

    e.header("emr_upstream_calls_total", "counter", "Upstream attempts by provider and outcome.");
    for (const auto& [name, h] : health)
      for (const auto& [outcome, count] : h.at("totals").as_object())
        e.sample("emr_upstream_calls_total",
                 "provider=\"" + label_value(name) + "\",outcome=\"" + std::string{outcome} + "\"",
                 number(count));
    e.header("emr_rate_limited_received_total", "counter", "429 answers received from providers.");
    for (const auto& [name, h] : health)
      e.sample("emr_rate_limited_received_total", "provider=\"" + label_value(name) + "\"",
               number(h.at("totals").at("rate_limited")));
    e.header("emr_upstream_latency_seconds", "histogram", "Latency of each upstream attempt.");
    for (const auto& [name, h] : health)
      e.histogram("emr_upstream_latency_seconds", "provider=\"" + label_value(name) + "\"",
                  h.at("upstream_latency_seconds").as_object());
    std::size_t sin_binned = 0;
    for (const auto& [name, h] : health)
      sin_binned += h.at("state").as_string() == "sin-binned";
    e.header("emr_sin_binned_providers", "gauge", "Providers currently sin-binned.");
    e.sample("emr_sin_binned_providers", "", std::to_string(sin_binned));
    e.header("emr_request_actors", "gauge", "Request actors alive (one per caller in flight).");
    e.sample("emr_request_actors", "", std::to_string(live_request_actors()));
    res.status = 200;
    res.set_content(e.str(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

} // namespace emr
