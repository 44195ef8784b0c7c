#pragma once
// Real processes on loopback for integration tests: the fake provider and `emr serve`,
// each on a port it picked itself (port 0) and reported through a port file.

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace emr::testing {

/// A temporary directory removed at the end of the test.
struct scratch_dir {
  std::filesystem::path path;
  scratch_dir();
  ~scratch_dir();
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

/// A child process with its output in a log file.
class child {
public:
  child() = default;
  child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
        const std::filesystem::path& log);
  ~child();
  child(child&& other) noexcept;
  child& operator=(child&& other) noexcept;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  void signal(int sig) const;
  /// Waits for the exit; returns the exit code (128 + signal when killed), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds{60});
  std::string log() const;

private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
};

struct http_answer {
  int status = 0; ///< 0 = no answer
  std::string body;
  std::map<std::string, std::string> headers;
  boost::json::value json() const;
};

/// One HTTP request to 127.0.0.1:port.
http_answer http_call(int port, const std::string& method, const std::string& path,
                      const std::string& body = {},
                      const std::map<std::string, std::string>& headers = {});

/// A TCP connection to 127.0.0.1:port, or -1.
int connect_loopback(int port);

/// Sends `request` to 127.0.0.1:port byte for byte, as no client library would (duplicate
/// headers, a wrong Content-Length, unknown methods, raw `..` segments), and reads one answer: up
/// to its Content-Length, or until the server closes. status 0 when none came within `timeout`.
http_answer raw_http(int port, const std::string& request,
                     std::chrono::milliseconds timeout = std::chrono::seconds{10});

/// Waits for a port file and returns its port.
int wait_for_port(const std::filesystem::path& port_file, const child& owner,
                  std::chrono::milliseconds timeout = std::chrono::seconds{20});

/// The fake provider (tools/fake_provider).
class fake_provider {
public:
  explicit fake_provider(const scratch_dir& dir, std::vector<std::string> args = {},
                         std::string name = "fake");
  int port() const { return port_; }
  std::string url(const std::string& path) const;
  boost::json::object stats() const;
  void reset() const;
  void faults(const std::string& json) const;
  child& process() { return process_; }

private:
  child process_;
  int port_ = 0;
};

// Under AddressSanitizer emr serves a few hundred requests a second, so concurrent callers (or a
// batch request's sub-requests) reach the batcher further apart than its coalescing time: how
// many calls they then take measures the sanitizers' cost, not the batching. Tests skip such
// counts in that build; `make test` checks them on the release build.
#ifdef EMR_SANITIZED
inline constexpr bool sanitized_build = true;
#else
inline constexpr bool sanitized_build = false;
#endif

inline constexpr const char* admin_secret = "integration-admin-secret-0123456789";
inline constexpr const char* provider_key_env = "EMR_TEST_PROVIDER_KEY";

/// Admin API call with the admin secret to whatever listens on `port` (a server or a balancer).
http_answer admin_call(int port, const std::string& method, const std::string& path,
                       const std::string& body = {});

/// A real `emr serve` with its own config and database in a scratch directory.
class emr_server {
public:
  /// `config_extra` is appended to the generated TOML (bind and storage path are set).
  emr_server(const scratch_dir& dir, std::string config_extra = {},
             std::map<std::string, std::string> env = {});
  ~emr_server();

  void start();
  /// SIGTERM and wait; returns the exit code.
  int stop(int sig = 15);
  int port() const { return port_; }
  std::string base_url() const;
  child& process() { return process_; }

  /// Admin API call with the admin secret.
  http_answer admin(const std::string& method, const std::string& path,
                    const std::string& body = {}) const;
  /// Registers a provider through the admin API; returns the answer status.
  int add_provider(const std::string& name, const std::string& type, const std::string& endpoint,
                   const std::string& model, int max_batch = 0) const;
  /// Creates a caller key through the admin API and returns it.
  std::string create_key(const std::string& name = "test") const;
  /// POST /v1/embeddings with the caller key.
  http_answer embed(const std::string& key, const std::string& body,
                    const std::map<std::string, std::string>& headers = {}) const;
  /// GET /admin/stats
  boost::json::object stats() const;

  std::filesystem::path config_path;
  std::filesystem::path db_path;

private:
  const scratch_dir& dir_;
  std::map<std::string, std::string> env_;
  child process_;
  int port_ = 0;
  int generation_ = 0;
};

/// Runs the emr CLI to completion; returns exit code and stdout/stderr.
struct cli_result {
  int code = -1;
  std::string out;
  std::string err;
};
cli_result run_cli(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {});

/// The floats of one embedding as a caller got it: a JSON array, or base64 of float32.
std::vector<float> floats_of(const boost::json::value& embedding);

/// Whether `embedding` is exactly the fake provider's vector for `text` sent to `model` with
/// `input_type` ("" for none), at `dims` floats (the model's default when 0).
::testing::AssertionResult is_fakes_vector(const boost::json::value& embedding,
                                           const std::string& model, const std::string& text,
                                           const std::string& input_type = {},
                                           std::size_t dims = 0);

/// A live emr in front of a fake Voyage (20 ms a call) registered as "voyage" with at most 128
/// texts a call, and a caller key.
struct voyage_stack : ::testing::Test {
  scratch_dir dir;
  fake_provider fake{dir, {"--latency-ms", "20"}};
  emr_server emr;
  std::string key;

  /// `config_extra` as for emr_server.
  explicit voyage_stack(std::string config_extra = {}) : emr{dir, std::move(config_extra)} {}

  void SetUp() override {
    ASSERT_EQ(emr.add_provider("voyage", "voyage", fake.url("/v1/embeddings"), "voyage-3.5", 128),
              201);
    key = emr.create_key("voyage-stack");
  }
};

} // namespace emr::testing
