// A fake embeddings provider for tests and benchmarks. One HTTP server speaks the Voyage, Cohere
// (v1 and v2) and OpenAI wire formats of providers.md §6, answers with the deterministic vectors of
// fake_vectors.hpp, enforces each provider's validation rules and rate limits, and injects faults
// on request (POST /_faults) so that retry and error paths of the router can be tested end to end.
//
// The folder, one idea a file: server.* (routes and the life of one call), wire_format.* (what a
// provider's format must say) with voyage.cpp, cohere.cpp and openai.cpp, list_answer.* and
// embedding_encoding.* (answer rendering they share), faults.* (the fault language),
// rate_limiter.*, request_queue.* (--concurrency), call_stats.* (/_stats), and this file: the
// command line and the process.

#include "tools/fake_provider/server.hpp"

#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

namespace {

using emr::fake::options;

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
  app.add_option("--concurrency", o.concurrency,
                 "Calls served at once per API key; the rest wait in arrival order (0 = unlimited)")
      ->check(CLI::NonNegativeNumber);
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

  emr::fake::fake_provider provider(opts);
  emr::fake::http_server svr;
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
    provider.stop();
    svr.stop();
  }).detach();

  svr.listen_after_bind();
  return 0;
}
