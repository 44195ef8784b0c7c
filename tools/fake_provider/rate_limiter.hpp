// The providers' rate limits as the fake models them: a sliding 60 s window of admitted calls
// per (API key, model), limited in requests and in tokens per minute.
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace emr::fake {

class rate_limiter {
public:
  using clock = std::chrono::steady_clock;

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

  /// 0 for either limit: unlimited in that measure.
  rate_limiter(long rpm, long tpm) : rpm_(rpm), tpm_(tpm) {}

  bool enabled() const { return rpm_ > 0 || tpm_ > 0; }
  long rpm() const { return rpm_; }
  long tpm() const { return tpm_; }

  /// Admits a call of `tokens` into `key`'s window, or says which limit refuses it and how long
  /// until it would fit.
  verdict admit(const std::string& key, long tokens);
  /// What `key`'s window holds now, for OpenAI's x-ratelimit-* headers.
  usage peek(const std::string& key);
  void reset();

private:
  struct entry {
    clock::time_point at;
    long tokens;
  };
  static constexpr auto window_length = std::chrono::seconds(60);

  static void expire(std::deque<entry>& window, clock::time_point now);
  static double seconds_until(clock::time_point admitted, clock::time_point now);
  double token_wait(const std::deque<entry>& window, long tokens, clock::time_point now) const;

  long rpm_, tpm_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::deque<entry>> windows_;
};

} // namespace emr::fake
