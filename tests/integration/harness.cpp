#include "tests/integration/harness.hpp"
#include "providers/float_codec.hpp"
#include "tools/fake_vectors.hpp"

#include <httplib.h>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace json = boost::json;

namespace emr::testing {

scratch_dir::scratch_dir() {
  std::random_device rd;
  path = std::filesystem::temp_directory_path() /
         ("emr-it-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path);
}

scratch_dir::~scratch_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

child::child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
             const std::filesystem::path& log)
    : log_(log) {
  pid_ = fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    for (const auto& [k, v] : env)
      setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

child::~child() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

child::child(child&& other) noexcept : pid_(other.pid_), log_(std::move(other.log_)) {
  other.pid_ = -1;
}

child& child::operator=(child&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = other.pid_;
    log_ = std::move(other.log_);
    other.pid_ = -1;
  }
  return *this;
}

void child::signal(int sig) const {
  if (pid_ > 0)
    ::kill(pid_, sig);
}

int child::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    auto r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() > deadline)
      return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return -1;
}

std::string child::log() const {
  std::ifstream in{log_};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json::value http_answer::json() const {
  json::error_code ec;
  auto v = json::parse(body, ec);
  return ec ? json::value{} : v;
}

http_answer http_call(int port, const std::string& method, const std::string& path,
                      const std::string& body, const std::map<std::string, std::string>& headers) {
  httplib::Client client{"127.0.0.1", port};
  client.set_connection_timeout(5);
  client.set_read_timeout(120);
  httplib::Headers h;
  for (const auto& [k, v] : headers)
    h.emplace(k, v);
  auto type =
      headers.count("Content-Type") ? headers.at("Content-Type") : std::string{"application/json"};
  httplib::Result r = [&] {
    if (method == "GET")
      return client.Get(path, h);
    if (method == "DELETE")
      return client.Delete(path, h, body, type);
    if (method == "PATCH")
      return client.Patch(path, h, body, type);
    if (method == "PUT")
      return client.Put(path, h, body, type);
    return client.Post(path, h, body, type);
  }();
  http_answer a;
  if (!r)
    return a;
  a.status = r->status;
  a.body = r->body;
  for (const auto& [k, v] : r->headers)
    a.headers[k] = v;
  return a;
}

namespace {

// The status, headers and body of a complete answer in `in`, or nullopt while bytes are missing.
std::optional<http_answer> parse_answer(const std::string& in, bool closed) {
  auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos || in.rfind("HTTP/1.", 0) != 0)
    return std::nullopt;
  http_answer a;
  a.status = std::atoi(in.c_str() + 9);
  std::istringstream head{in.substr(0, head_end)};
  std::string line;
  std::getline(head, line);
  while (std::getline(head, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    auto value = line.substr(std::min(line.find_first_not_of(' ', colon + 1), line.size()));
    if (!value.empty() && value.back() == '\r')
      value.pop_back();
    a.headers[line.substr(0, colon)] = value;
  }
  a.body = in.substr(head_end + 4);
  auto length = a.headers.find("Content-Length");
  if (length == a.headers.end())
    return closed ? std::optional{a} : std::nullopt;
  auto expected = std::stoul(length->second);
  if (a.body.size() < expected)
    return std::nullopt;
  a.body.resize(expected);
  return a;
}

} // namespace

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

http_answer raw_http(int port, const std::string& request, std::chrono::milliseconds timeout) {
  int fd = connect_loopback(port);
  if (fd < 0)
    return {};
  // The server may answer and close before taking every byte (an early 411, say); what it said
  // is still worth reading.
  for (std::size_t sent = 0; sent < request.size();) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    sent += static_cast<std::size_t>(n);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string in;
  std::optional<http_answer> answer;
  while (!answer) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd readable{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0)
      break;
    char buffer[16384];
    auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0)
      in.append(buffer, static_cast<std::size_t>(n));
    answer = parse_answer(in, n <= 0);
    if (n <= 0)
      break;
  }
  ::close(fd);
  return answer.value_or(http_answer{});
}

int wait_for_port(const std::filesystem::path& port_file, const child& owner,
                  std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in{port_file};
    int port = 0;
    if (in >> port && port > 0)
      return port;
    if (!owner.running())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  throw std::runtime_error("no port in " + port_file.string() + "; log:\n" + owner.log());
}

fake_provider::fake_provider(const scratch_dir& dir, std::vector<std::string> args,
                             std::string name) {
  auto port_file = dir.path / (name + ".port");
  std::vector<std::string> argv{FAKE_PROVIDER_BINARY, "--port", "0", "--port-file",
                                port_file.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = child{argv, {}, dir.path / (name + ".log")};
  port_ = wait_for_port(port_file, process_);
}

std::string fake_provider::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

json::object fake_provider::stats() const {
  return http_call(port_, "GET", "/_stats").json().as_object();
}

void fake_provider::reset() const {
  http_call(port_, "POST", "/_reset", "{}");
}

void fake_provider::faults(const std::string& json) const {
  auto a = http_call(port_, "POST", "/_faults", json);
  if (a.status != 200)
    throw std::runtime_error("fake refused faults: " + a.body);
}

emr_server::emr_server(const scratch_dir& dir, std::string config_extra,
                       std::map<std::string, std::string> env)
    : dir_(dir), env_(std::move(env)) {
  config_path = dir.path / "emr.toml";
  db_path = dir.path / "emr.db";
  {
    std::ofstream out{config_path};
    // A burst's client opens every connection before it sends on any. On a loaded machine, and
    // under the sanitizers, opening 1,000 can take seconds (handshakes wait for the CPU), long
    // enough for the default 5 s idle close to drop the first connections before they speak.
    out << "[server]\nbind = \"127.0.0.1:0\"\nkeep_alive_timeout_s = 30\n" << config_extra << "\n";
    if (config_extra.find("[storage]") == std::string::npos)
      out << "[storage]\npath = \"" << db_path.string() << "\"\n";
    // Cheap argon2 keeps the suite fast; the key tests cover OWASP parameters explicitly.
    if (config_extra.find("[auth]") == std::string::npos)
      out << "[auth]\nargon2_t_cost = 1\nargon2_m_cost_kib = 64\n";
  }
  env_.emplace("EMR_ADMIN_SECRET", admin_secret);
  env_.emplace(provider_key_env, "sk-test-provider-key-4f1e");
  start();
}

emr_server::~emr_server() {
  if (process_.running()) {
    process_.signal(SIGTERM);
    process_.wait(std::chrono::seconds{30});
  }
}

void emr_server::start() {
  auto port_file = dir_.path / ("emr-" + std::to_string(++generation_) + ".port");
  process_ = child{
      {EMR_BINARY, "serve", "--config", config_path.string(), "--port-file", port_file.string()},
      env_,
      dir_.path / "emr.log"};
  port_ = wait_for_port(port_file, process_);
}

int emr_server::stop(int sig) {
  process_.signal(sig);
  return process_.wait(std::chrono::seconds{60});
}

std::string emr_server::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

http_answer admin_call(int port, const std::string& method, const std::string& path,
                       const std::string& body) {
  static const std::string authorization = std::string{"Bearer "} + admin_secret;
  return http_call(port, method, path, body, {{"Authorization", authorization}});
}

http_answer emr_server::admin(const std::string& method, const std::string& path,
                              const std::string& body) const {
  return admin_call(port_, method, path, body);
}

int emr_server::add_provider(const std::string& name, const std::string& type,
                             const std::string& endpoint, const std::string& model,
                             int max_batch) const {
  json::object o{{"name", name},
                 {"type", type},
                 {"endpoint", endpoint},
                 {"model", model},
                 {"api_key_env", provider_key_env}};
  if (max_batch > 0)
    o["max_batch"] = max_batch;
  return admin("POST", "/admin/providers", json::serialize(o)).status;
}

std::string emr_server::create_key(const std::string& name) const {
  auto a = admin("POST", "/admin/keys", json::serialize(json::object{{"name", name}}));
  if (a.status != 201)
    throw std::runtime_error("key creation failed: " + a.body);
  return std::string{a.json().at("key").as_string()};
}

http_answer emr_server::embed(const std::string& key, const std::string& body,
                              const std::map<std::string, std::string>& headers) const {
  auto h = headers;
  h.emplace("Authorization", "Bearer " + key);
  return http_call(port_, "POST", "/v1/embeddings", body, h);
}

json::object emr_server::stats() const {
  return admin("GET", "/admin/stats").json().as_object();
}

cli_result run_cli(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env) {
  scratch_dir dir;
  auto out_path = dir.path / "out";
  auto err_path = dir.path / "err";
  pid_t pid = fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT, 0600);
    dup2(out, 1);
    dup2(err, 2);
    for (const auto& [k, v] : env)
      setenv(k.c_str(), v.c_str(), 1);
    std::vector<std::string> argv{EMR_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c;
    for (auto& a : argv)
      c.push_back(a.data());
    c.push_back(nullptr);
    execv(c[0], c.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in{p};
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  return cli_result{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out_path), slurp(err_path)};
}

std::vector<float> floats_of(const boost::json::value& embedding) {
  std::vector<float> out;
  if (embedding.is_string()) {
    const auto& s = embedding.get_string();
    EXPECT_TRUE(emr::decode_base64_floats({s.data(), s.size()}, out));
    return out;
  }
  for (const auto& x : embedding.as_array())
    out.push_back(static_cast<float>(x.to_number<double>()));
  return out;
}

::testing::AssertionResult is_fakes_vector(const boost::json::value& embedding,
                                           const std::string& model, const std::string& text,
                                           const std::string& input_type, std::size_t dims) {
  auto expected =
      emr::fake::fake_vector(model, input_type, text, dims ? dims : emr::fake::default_dims(model));
  auto got = floats_of(embedding);
  if (got.size() != expected.size())
    return ::testing::AssertionFailure() << got.size() << " floats where " << model << " gives "
                                         << expected.size() << " for '" << text << "'";
  for (std::size_t i = 0; i < expected.size(); ++i)
    if (got[i] != expected[i])
      return ::testing::AssertionFailure()
             << "float " << i << " is " << got[i] << ", not the fake's " << expected[i] << " ("
             << model << " '" << input_type << "' '" << text << "')";
  return ::testing::AssertionSuccess();
}

} // namespace emr::testing
