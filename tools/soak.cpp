// soak: drives a running emr with mixed traffic against fault-injecting fake providers for a set
// time, then prints a report with a verdict per check and exits non-zero if any fails.
// tools/soak.sh starts the stack (three fakes and `emr serve`) and runs this; `make soak` runs
// both.
//
// Traffic: phases cycling through 1, 10, 50 and 200 closed-loop callers; each caller sends one
// request kind of the mix (a single provider, `any` and `all` over two, the batch endpoint),
// floats or base64, and every vector is checked against the fake's deterministic vectors.

#include "cli/admin_client.hpp"
#include "tools/load_client.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

namespace {

namespace json = boost::json;
using emr::load::caller;
using emr::load::expectation;
using steady = std::chrono::steady_clock;

constexpr std::size_t concurrency_levels[] = {1, 10, 50, 200};
// Five cycles through the levels. The first two are the warm-up: call windows grow, upstream
// workers open their connections and the allocator's arenas fill. After it, memory and
// descriptors must stay flat.
constexpr std::size_t phases = 5 * std::size(concurrency_levels);
constexpr std::size_t warm_up_phases = 2 * std::size(concurrency_levels);
constexpr double max_growth = 0.10;
constexpr auto settle_timeout = std::chrono::seconds{90};
// Longer than emr's vector reuse (1 s) and keep-alive (5 s) windows, so what outlives a call is
// gone before memory and descriptors are sampled.
constexpr auto quiet_before_sample = std::chrono::seconds{6};
constexpr std::size_t error_samples_per_mix = 3;

struct options {
  std::string emr_url;
  int emr_pid = 0;
  std::string voyage_url, cohere_url, openai_url;
  std::string api_key_env;
  double duration_s = 600;
  double grace_ms = 250;
};

/// One kind of request in the mix: where it goes and what every answer must hold.
struct mix {
  std::string name;
  emr::load::endpoint endpoint;
  expectation expect;
  bool batch = false;
};

/// What the soak counted for one mix.
struct tally {
  std::size_t sent = 0, answered = 0, wrong_vectors = 0, past_deadline = 0;
  std::map<int, std::size_t> statuses, batch_statuses;
  std::vector<double> latencies_ms;
  std::vector<std::string> errors;

  void add(const std::vector<emr::load::result>& results, double late_ms) {
    for (const auto& r : results) {
      ++sent;
      ++statuses[r.status];
      for (int s : r.batch_statuses)
        ++batch_statuses[s];
      if (r.status == 0) {
        keep_error(r.error);
        continue;
      }
      ++answered;
      latencies_ms.push_back(r.latency_ms);
      past_deadline += r.latency_ms > late_ms;
      if (r.status == 200 && !r.vectors_ok) {
        ++wrong_vectors;
        keep_error(r.error);
      }
    }
  }

  void keep_error(const std::string& e) {
    if (errors.size() < error_samples_per_mix)
      errors.push_back(e);
  }

  double percentile(double q) {
    if (latencies_ms.empty())
      return 0;
    std::sort(latencies_ms.begin(), latencies_ms.end());
    return latencies_ms[std::min(latencies_ms.size() - 1,
                                 static_cast<std::size_t>(q * latencies_ms.size()))];
  }
};

/// emr's process and actor numbers at one quiet moment.
struct sample {
  long rss_kib = -1;
  long open_fds = -1;
  std::int64_t actors_running = -1;
  std::int64_t request_actors_live = -1;
};

long rss_kib(int pid) {
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

long open_fds(int pid) {
  std::error_code ec;
  auto dir = std::filesystem::directory_iterator{"/proc/" + std::to_string(pid) + "/fd", ec};
  return ec ? -1 : std::distance(dir, std::filesystem::directory_iterator{});
}

std::string load_average() {
  std::ifstream in{"/proc/loadavg"};
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::int64_t stat_number(const json::value& stats, std::string_view key) {
  return stats.as_object().at(key).to_number<std::int64_t>();
}

// Waits until no request actor is left and the actor count is back to `baseline` (or the
// timeout passes), then samples. Retry supervisors may outlive their callers' deadlines.
sample settle(const emr::admin_options& admin, const options& o, std::int64_t baseline) {
  const auto give_up = steady::now() + settle_timeout;
  sample s;
  for (;;) {
    auto stats = emr::admin_call(admin, "GET", "/admin/stats");
    s.actors_running = stat_number(stats, "actors_running");
    s.request_actors_live = stat_number(stats, "request_actors_live");
    if ((s.request_actors_live == 0 && (baseline < 0 || s.actors_running <= baseline)) ||
        steady::now() > give_up)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{250});
  }
  std::this_thread::sleep_for(quiet_before_sample);
  s.rss_kib = rss_kib(o.emr_pid);
  s.open_fds = open_fds(o.emr_pid);
  return s;
}

void post_faults(const std::string& fake_url, const json::object& plan) {
  httplib::Client fake{fake_url};
  auto res = fake.Post("/_faults", json::serialize(plan), "application/json");
  if (!res || res->status != 200)
    throw std::runtime_error("the fake at " + fake_url + " refused the fault plan");
}

json::value fake_stats(const std::string& fake_url) {
  httplib::Client fake{fake_url};
  auto res = fake.Get("/_stats");
  return res && res->status == 200 ? json::parse(res->body) : json::value{};
}

std::string quoted(std::string_view s) {
  return json::serialize(json::string_view{s});
}

std::vector<mix> make_mixes(const std::string& emr_url, const std::string& key) {
  const expectation voyage{.model = "voyage-3.5", .provider = "voyage"};
  const expectation cohere{.model = "embed-v4.0",
                           .upstream_input_type =
                               [](const std::string& t) {
                                 return t == "query" ? std::string{"search_query"}
                                                     : std::string{"search_document"};
                               },
                           .provider = "cohere"};
  const expectation openai{.model = "text-embedding-3-small",
                           .upstream_input_type = [](const std::string&) { return std::string{}; },
                           .provider = "openai"};
  auto to = [&](std::vector<std::pair<std::string, std::string>> fields,
                std::string path = "/v1/embeddings") {
    emr::load::endpoint e;
    e.base_url = emr_url;
    e.path = std::move(path);
    e.bearer = key;
    e.extra_fields = std::move(fields);
    return e;
  };
  auto one_of = [](std::vector<expectation> providers) {
    expectation e;
    e.providers = std::move(providers);
    return e;
  };
  return {
      {"voyage", to({{"provider", quoted("voyage")}}), voyage},
      {"cohere", to({{"provider", quoted("cohere")}}), cohere},
      {"openai", to({{"provider", quoted("openai")}}), openai},
      {"any voyage,cohere",
       to({{"providers", R"(["voyage","cohere"])"}, {"policy", quoted("any")}}),
       one_of({voyage, cohere})},
      {"all cohere,openai",
       to({{"providers", R"(["cohere","openai"])"}, {"policy", quoted("all")}}),
       one_of({cohere, openai})},
      {"batch any openai,voyage",
       to({{"providers", R"(["openai","voyage"])"}}, "/v1/embeddings/batch"),
       one_of({openai, voyage}), true},
  };
}

// 1 to 4 texts; every fifth text is shared across callers, so identical texts meet in a call.
caller one_request(const std::string& tag, std::size_t worker, std::size_t i) {
  static const std::string input_types[] = {"", "query", "document"};
  caller c;
  c.input_type = input_types[(worker + i) % 3];
  c.encoding_format = (worker + i) % 2 ? "base64" : "float";
  const std::size_t texts = 1 + (worker * 7 + i) % 4;
  for (std::size_t j = 0; j < texts; ++j)
    c.texts.push_back((i + j) % 5 == 0 ? "soak shared " + std::to_string(j)
                                       : tag + " " + std::to_string(worker) + " " +
                                             std::to_string(i) + " " + std::to_string(j));
  return c;
}

caller request_of(const mix& m, const std::string& tag, std::size_t worker, std::size_t i) {
  if (!m.batch)
    return one_request(tag, worker, i);
  caller c;
  for (std::size_t k = 0; k <= i % 4; ++k)
    c.batch.push_back(one_request(tag + " sub" + std::to_string(k), worker, i));
  return c;
}

// One phase: `callers` closed-loop callers, caller k sending mix (k + phase) % mixes.
void run_phase(std::size_t phase, std::size_t callers, std::chrono::milliseconds length,
               const std::vector<mix>& mixes, std::vector<tally>& tallies, double late_ms) {
  std::mutex tallies_mutex;
  std::vector<std::jthread> groups;
  for (std::size_t m = 0; m < mixes.size(); ++m) {
    std::size_t workers = 0;
    for (std::size_t k = 0; k < callers; ++k)
      workers += (k + phase) % mixes.size() == m;
    if (workers == 0)
      continue;
    groups.emplace_back([&, m, workers] {
      const std::string tag = "soak p" + std::to_string(phase) + " m" + std::to_string(m);
      auto results = emr::load::run_for(
          mixes[m].endpoint, workers, length,
          [&](std::size_t w, std::size_t i) { return request_of(mixes[m], tag, w, i); },
          mixes[m].expect, false);
      std::lock_guard lock(tallies_mutex);
      tallies[m].add(results, late_ms);
    });
  }
}

std::string statuses_text(const std::map<int, std::size_t>& counts) {
  std::vector<std::string> parts;
  for (const auto& [status, n] : counts)
    parts.push_back(fmt::format("{}={}", status, n));
  return parts.empty() ? "-" : fmt::format("{}", fmt::join(parts, " "));
}

double growth(long from, long to) {
  return from > 0 ? static_cast<double>(to - from) / static_cast<double>(from) : 1.0;
}

struct check {
  std::string name, measured;
  bool pass;
};

int report(const options& o, const std::vector<mix>& mixes, std::vector<tally>& tallies,
           const sample& start, const sample& warm, const sample& end, double late_ms,
           double wall_s, const std::string& load_before) {
  std::printf("\nper request kind (statuses: 0 = no HTTP answer)\n");
  std::vector<std::vector<std::string>> rows;
  tally all;
  for (std::size_t m = 0; m < mixes.size(); ++m) {
    auto& t = tallies[m];
    rows.push_back({mixes[m].name, std::to_string(t.sent), std::to_string(t.answered),
                    statuses_text(t.statuses), std::to_string(t.wrong_vectors),
                    std::to_string(t.past_deadline), fmt::format("{:.0f}", t.percentile(0.5)),
                    fmt::format("{:.0f}", t.percentile(0.99)),
                    fmt::format("{:.0f}", t.percentile(1.0))});
    all.sent += t.sent;
    all.answered += t.answered;
    all.wrong_vectors += t.wrong_vectors;
    all.past_deadline += t.past_deadline;
    for (const auto& [s, n] : t.batch_statuses)
      all.batch_statuses[s] += n;
  }
  emr::print_table({"REQUESTS", "SENT", "ANSWERED", "STATUSES", "WRONG VECTORS", "PAST DEADLINE",
                    "P50 MS", "P99 MS", "MAX MS"},
                   rows);
  std::printf("batch sub-request statuses: %s\n", statuses_text(all.batch_statuses).c_str());

  std::printf("\nupstream calls per fake (statuses as the fake answered them)\n");
  rows.clear();
  for (auto [name, url] :
       {std::pair{"voyage", &o.voyage_url}, {"cohere", &o.cohere_url}, {"openai", &o.openai_url}}) {
    auto stats = fake_stats(*url);
    rows.push_back({name, stats.is_object() ? emr::cell(stats.at("calls")) : "-",
                    stats.is_object() ? json::serialize(stats.at("status_counts")) : "-"});
  }
  emr::print_table({"FAKE", "CALLS", "STATUSES"}, rows);

  for (std::size_t m = 0; m < mixes.size(); ++m)
    for (const auto& e : tallies[m].errors)
      std::printf("  %s: %s\n", mixes[m].name.c_str(), e.c_str());

  auto rss_growth = growth(warm.rss_kib, end.rss_kib);
  auto fd_growth = growth(warm.open_fds, end.open_fds);
  std::vector<check> checks{
      {"requests sent == answered", fmt::format("{} == {}", all.sent, all.answered),
       all.sent == all.answered},
      {"misrouted vectors", std::to_string(all.wrong_vectors), all.wrong_vectors == 0},
      {fmt::format("answers past deadline + {:.0f} ms ({:.0f} ms)", o.grace_ms, late_ms),
       std::to_string(all.past_deadline), all.past_deadline == 0},
      {"RSS growth after warm-up < 10%",
       fmt::format("start {:.1f} MiB, warm {:.1f} MiB, end {:.1f} MiB ({:+.1f}%)",
                   start.rss_kib / 1024.0, warm.rss_kib / 1024.0, end.rss_kib / 1024.0,
                   100 * rss_growth),
       end.rss_kib > 0 && rss_growth < max_growth},
      {"open fds growth after warm-up < 10%",
       fmt::format("start {}, warm {}, end {} ({:+.1f}%)", start.open_fds, warm.open_fds,
                   end.open_fds, 100 * fd_growth),
       end.open_fds > 0 && fd_growth < max_growth},
      {"live actors back to baseline",
       fmt::format("baseline {}, end {}; request actors {}", start.actors_running,
                   end.actors_running, end.request_actors_live),
       end.actors_running == start.actors_running && end.request_actors_live == 0},
  };
  std::printf("\n");
  rows.clear();
  bool passed = true;
  for (const auto& c : checks) {
    rows.push_back({c.name, c.measured, c.pass ? "pass" : "FAIL"});
    passed = passed && c.pass;
  }
  emr::print_table({"CHECK", "MEASURED", "RESULT"}, rows);
  std::printf("\n%s after %.0f s; load average before %s, after %s\n", passed ? "PASS" : "FAIL",
              wall_s, load_before.c_str(), load_average().c_str());
  return passed ? 0 : 1;
}

// Registers the three providers, creates the caller key and arms every fake's faults; returns
// the key.
std::string prepare_stack(const emr::admin_options& admin, const options& o,
                          const json::value& config) {
  for (auto [name, type, endpoint, model] :
       {std::tuple{"voyage", "voyage", o.voyage_url + "/v1/embeddings", "voyage-3.5"},
        {"cohere", "cohere", o.cohere_url + "/v2/embed", "embed-v4.0"},
        {"openai", "openai", o.openai_url + "/v1/embeddings", "text-embedding-3-small"}}) {
    json::value body = json::object{{"name", name},
                                    {"type", type},
                                    {"endpoint", endpoint},
                                    {"model", model},
                                    {"api_key_env", o.api_key_env}};
    emr::admin_call(admin, "POST", "/admin/providers", &body);
  }
  json::value key_body = json::object{{"name", "soak"}};
  auto key = emr::admin_call(admin, "POST", "/admin/keys", &key_body);

  // A timeout outlasts emr's upstream timeout; a slow answer takes half of it and still arrives.
  const auto upstream_timeout_ms =
      1000 * config.at("upstream").at("timeout_s").to_number<std::int64_t>();
  const json::object plan{{"p429", 0.05},
                          {"retry_after", "1"},
                          {"p500", 0.02},
                          {"p_timeout", 0.01},
                          {"timeout_ms", upstream_timeout_ms + 1000},
                          {"p_malformed", 0.01},
                          {"p_slow", 0.02},
                          {"slow_ms", upstream_timeout_ms / 2}};
  for (const auto* url : {&o.voyage_url, &o.cohere_url, &o.openai_url})
    post_faults(*url, plan);
  std::printf("faults on every fake: %s\n", json::serialize(plan).c_str());
  return std::string{key.at("key").as_string()};
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Mixed traffic through a running emr against fault-injecting fakes, with a pass/fail report",
      "soak"};
  options o;
  app.add_option("--emr", o.emr_url, "emr's base URL, e.g. http://127.0.0.1:3200 (loopback only)")
      ->required();
  app.add_option("--emr-pid", o.emr_pid, "emr's process id, for its memory and descriptors")
      ->required();
  app.add_option("--voyage", o.voyage_url, "Base URL of the fake registered as Voyage")->required();
  app.add_option("--cohere", o.cohere_url, "Base URL of the fake registered as Cohere")->required();
  app.add_option("--openai", o.openai_url, "Base URL of the fake registered as OpenAI")->required();
  app.add_option("--api-key-env", o.api_key_env,
                 "The variable holding the providers' key in emr's environment")
      ->required();
  app.add_option("--duration", o.duration_s, "Seconds of traffic")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--grace-ms", o.grace_ms,
                 "Lateness past emr's deadline still counted on time (scheduling jitter)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    emr::admin_options admin;
    admin.server = o.emr_url;
    const auto config = emr::admin_call(admin, "GET", "/admin/config");
    const double deadline_ms = config.at("server").at("deadline_ms").to_number<double>();
    const double late_ms = deadline_ms + o.grace_ms;
    const auto key = prepare_stack(admin, o, config);
    const auto mixes = make_mixes(o.emr_url, key);
    std::vector<tally> tallies(mixes.size());
    const std::string load_before = load_average();
    const auto start = settle(admin, o, -1);

    const auto phase_length =
        std::chrono::milliseconds{static_cast<long>(o.duration_s * 1000 / phases)};
    std::printf("soak: %zu phases of %.1f s through %zu, %zu, %zu and %zu callers; %zu request "
                "kinds; deadline %.0f "
                "ms\n",
                phases, phase_length.count() / 1000.0, concurrency_levels[0], concurrency_levels[1],
                concurrency_levels[2], concurrency_levels[3], mixes.size(), deadline_ms);
    const auto began = steady::now();
    sample warm;
    for (std::size_t phase = 0; phase < phases; ++phase) {
      const auto callers = concurrency_levels[phase % std::size(concurrency_levels)];
      run_phase(phase, callers, phase_length, mixes, tallies, late_ms);
      std::printf("  phase %2zu: %3zu callers done at %4.0f s; emr RSS %.1f MiB, %ld fds\n",
                  phase + 1, callers, std::chrono::duration<double>(steady::now() - began).count(),
                  rss_kib(o.emr_pid) / 1024.0, open_fds(o.emr_pid));
      std::fflush(stdout);
      if (phase + 1 == warm_up_phases)
        warm = settle(admin, o, start.actors_running);
    }
    const double wall_s = std::chrono::duration<double>(steady::now() - began).count();
    const auto end = settle(admin, o, start.actors_running);
    return report(o, mixes, tallies, start, warm, end, late_ms, wall_s, load_before);
  } catch (const std::exception& e) {
    std::cerr << "soak: " << e.what() << '\n';
    return 2;
  }
}
