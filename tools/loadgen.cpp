// loadgen: loads emr (or the fake provider directly, for a baseline) with concurrent callers over
// loopback, verifies every vector it gets back, and prints a summary.

#include "tools/load_client.hpp"

#include <CLI/CLI.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

namespace {

namespace json = boost::json;
using emr::load::caller;

struct options {
  std::string url;
  std::string key;
  std::string provider;
  std::string model;
  std::string path = "/v1/embeddings";
  std::string mode = "burst";
  std::size_t callers = 100;
  std::size_t requests = 10;
  double duration_s = 10;
  std::size_t texts_per_call = 1;
  std::string text_prefix = "loadgen";
  std::size_t distinct_callers = 0;
  std::size_t text_bytes = 0;
  std::vector<std::string> headers;
  std::string latencies_file;
  std::string verify_model;
  int verify_dims = 0;
  int dimensions = 0;
  std::string input_type;
  std::string encoding;
  bool retry_429 = false;
  int max_retries = 2;
  bool json = false;
};

// Pads a text to `bytes` with words, so token-heavy loads stay deterministic and verifiable.
std::string padded(std::string text, std::size_t bytes) {
  static constexpr std::string_view filler = " the quick brown fox jumps over the lazy dog";
  while (text.size() < bytes)
    text.append(filler.substr(0, std::min(filler.size(), bytes - text.size())));
  return text;
}

// Texts are "<prefix> <caller> <n>", so every text of a run is distinct unless
// --distinct-callers folds callers onto the same texts (caller modulo that count).
caller make_caller(const options& o, std::size_t who, std::size_t call) {
  caller c;
  c.input_type = o.input_type;
  c.encoding_format = o.encoding;
  const std::size_t seen_as = o.distinct_callers ? who % o.distinct_callers : who;
  for (std::size_t j = 0; j < o.texts_per_call; ++j)
    c.texts.push_back(padded(o.text_prefix + " " + std::to_string(seen_as) + " " +
                                 std::to_string(call * o.texts_per_call + j),
                             o.text_bytes));
  return c;
}

// "Name: value" as a header's name and value; nullopt unless both are there.
std::optional<std::pair<std::string, std::string>> header_field(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos)
    return std::nullopt;
  auto name = boost::algorithm::trim_copy(text.substr(0, colon));
  auto value = boost::algorithm::trim_copy(text.substr(colon + 1));
  if (name.empty() || value.empty())
    return std::nullopt;
  return std::pair{std::move(name), std::move(value)};
}

emr::load::endpoint make_endpoint(const options& o) {
  emr::load::endpoint e;
  e.base_url = o.url;
  e.path = o.path;
  e.bearer = o.key;
  if (!o.provider.empty())
    e.extra_fields.emplace_back("provider", json::serialize(json::string_view{o.provider}));
  if (!o.model.empty())
    e.extra_fields.emplace_back("model", json::serialize(json::string_view{o.model}));
  if (o.dimensions > 0)
    e.extra_fields.emplace_back("dimensions", std::to_string(o.dimensions));
  for (const auto& h : o.headers)
    e.headers.push_back(*header_field(h));
  return e;
}

std::vector<emr::load::result> run(const options& o,
                                   const std::optional<emr::load::expectation>& expect) {
  const auto e = make_endpoint(o);
  const auto make = [&o](std::size_t w, std::size_t i) { return make_caller(o, w, i); };
  if (o.mode == "burst") {
    std::vector<caller> callers;
    callers.reserve(o.callers);
    for (std::size_t c = 0; c < o.callers; ++c)
      callers.push_back(make_caller(o, c, 0));
    return emr::load::fire_concurrent(e, callers, expect);
  }
  if (o.mode == "closed")
    return emr::load::closed_loop(e, o.callers, o.requests, make, expect);
  const auto duration = std::chrono::milliseconds(static_cast<long>(o.duration_s * 1000));
  return emr::load::run_for(e, o.callers, duration, make, expect, o.retry_429, o.max_retries);
}

// The first few distinct failure reasons, enough to see what went wrong without a flood.
std::vector<std::string> sample_errors(const std::vector<emr::load::result>& results) {
  constexpr std::size_t max_samples = 5;
  std::vector<std::string> samples;
  for (const auto& r : results) {
    if (r.vectors_ok || r.error.empty())
      continue;
    if (std::find(samples.begin(), samples.end(), r.error) == samples.end())
      samples.push_back(r.error);
    if (samples.size() == max_samples)
      break;
  }
  return samples;
}

void print_json(const options& o, const emr::load::summary& s, bool verified,
                const std::vector<std::string>& errors) {
  json::object counts;
  for (const auto& [status, n] : s.status_counts)
    counts[std::to_string(status)] = n;
  json::array error_samples;
  for (const auto& e : errors)
    error_samples.emplace_back(e);
  const json::object out{{"mode", o.mode},
                         {"callers", o.callers},
                         {"texts_per_call", o.texts_per_call},
                         {"verified", verified},
                         {"total", s.total},
                         {"ok", s.ok},
                         {"wrong_vectors", s.wrong_vectors},
                         {"transport_errors", s.transport_errors},
                         {"retries", s.retries},
                         {"status_counts", std::move(counts)},
                         {"p50_ms", s.p50_ms},
                         {"p95_ms", s.p95_ms},
                         {"p99_ms", s.p99_ms},
                         {"max_ms", s.max_ms},
                         {"wall_s", s.wall_s},
                         {"throughput_rps", s.throughput_rps},
                         {"errors", std::move(error_samples)}};
  std::cout << json::serialize(out) << '\n';
}

void print_human(const options& o, const emr::load::summary& s, bool verified,
                 const std::vector<std::string>& errors) {
  std::printf("%s: %zu requests (%zu callers, %zu texts each) in %.2f s, %.0f req/s\n",
              o.mode.c_str(), s.total, o.callers, o.texts_per_call, s.wall_s, s.throughput_rps);
  std::printf("  ok%s: %zu   wrong vectors: %zu   transport errors: %zu   429 retries: %zu\n",
              verified ? " (verified)" : " (shape only)", s.ok, s.wrong_vectors, s.transport_errors,
              s.retries);
  std::printf("  status:");
  for (const auto& [status, n] : s.status_counts)
    std::printf(" %d=%zu", status, n);
  std::printf("\n  latency ms: p50 %.1f  p95 %.1f  p99 %.1f  max %.1f\n", s.p50_ms, s.p95_ms,
              s.p99_ms, s.max_ms);
  for (const auto& e : errors)
    std::printf("  error: %s\n", e.c_str());
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"Concurrent loopback load for emr or the fake provider, verifying every vector",
               "loadgen"};
  options o;
  app.add_option("--url", o.url, "Base URL, e.g. http://127.0.0.1:8080 (loopback only)")
      ->required();
  app.add_option("--key", o.key, "Bearer key (emr caller key, or any key for the fake)");
  app.add_option("--path", o.path, "Request path")->capture_default_str();
  auto* provider = app.add_option("--provider", o.provider, "emr provider name to route to");
  app.add_option("--model", o.model, "Model field, for direct calls at the fake")
      ->excludes(provider);
  app.add_option("--mode", o.mode,
                 "burst: all callers at once; closed: --requests each; "
                 "duration: for --duration-s")
      ->check(CLI::IsMember({"burst", "closed", "duration"}))
      ->capture_default_str();
  app.add_option("--callers", o.callers, "Concurrent callers (workers)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--requests", o.requests, "Requests per worker in closed mode")
      ->capture_default_str();
  app.add_option("--duration-s", o.duration_s, "Run length in duration mode")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--texts-per-call", o.texts_per_call, "Texts in each request")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--text-prefix", o.text_prefix, "Texts are \"<prefix> <caller> <i>\"")
      ->capture_default_str();
  auto* verify = app.add_option("--verify-model", o.verify_model,
                                "Check every vector against the fake's vectors for this model");
  app.add_option("--verify-dims", o.verify_dims, "Dimensions to verify (default: the model's)")
      ->needs(verify);
  app.add_option("--dimensions", o.dimensions,
                 "dimensions to ask for (and to verify, unless --verify-dims says otherwise)")
      ->check(CLI::PositiveNumber);
  app.add_option("--distinct-callers", o.distinct_callers,
                 "Caller n sends the texts of caller n modulo this (0: every caller distinct)");
  app.add_option("--text-bytes", o.text_bytes, "Pad every text to this many bytes");
  app.add_option("--header", o.headers, "Extra request header, \"Name: value\" (repeatable)")
      ->check([](const std::string& h) {
        return header_field(h) ? std::string() : std::string("expected \"Name: value\"");
      });
  app.add_option("--latencies", o.latencies_file,
                 "Write every request's latency in ms, one per line, to this file");
  app.add_option("--input-type", o.input_type, "input_type to send (default: omitted)");
  app.add_option("--encoding", o.encoding, "encoding_format to send (default: omitted)")
      ->check(CLI::IsMember({"float", "base64"}));
  app.add_flag("--retry-429", o.retry_429, "Retry 429s like the official SDKs (duration mode)");
  app.add_option("--max-retries", o.max_retries, "Retries of one 429'd call")
      ->capture_default_str();
  app.add_flag("--json", o.json, "Print one JSON summary object");
  CLI11_PARSE(app, argc, argv);

  std::optional<emr::load::expectation> expect;
  if (!o.verify_model.empty()) {
    expect.emplace();
    expect->model = o.verify_model;
    expect->dims = o.verify_dims > 0 ? o.verify_dims : o.dimensions;
  }

  std::vector<emr::load::result> results;
  const auto start = std::chrono::steady_clock::now();
  try {
    results = run(o, expect);
  } catch (const std::exception& e) {
    std::cerr << "loadgen: " << e.what() << '\n';
    return 2;
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!o.latencies_file.empty()) {
    std::ofstream out(o.latencies_file);
    for (const auto& r : results)
      out << r.latency_ms << '\n';
  }
  const auto s = emr::load::summarize(results, wall_s);
  const auto errors = sample_errors(results);
  if (o.json)
    print_json(o, s, expect.has_value(), errors);
  else
    print_human(o, s, expect.has_value(), errors);
  return expect && s.ok != s.total ? 1 : 0;
}
