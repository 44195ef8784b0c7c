#pragma once
// The health actor: rolling metrics per provider, the sin-bin (circuit breaker), and the
// rate-limit pause, which is its own state and never counted as ill health.

#include "actors/actors.hpp"

#include <deque>
#include <map>

namespace emr {

struct health_settings {
  std::chrono::seconds window{60};       ///< rolling window of the metrics
  int failure_threshold = 5;             ///< consecutive failures that sin-bin a provider
  std::chrono::seconds sin_bin_base{30}; ///< first sin-bin; doubles on each re-entry
  std::chrono::seconds sin_bin_max{600};
  std::chrono::seconds probe_interval{30}; ///< at most; a sin-bin is probed twice or more
  std::chrono::milliseconds tick{1000};
};

enum class provider_state { healthy, degraded, sin_binned, paused };
std::string_view to_string(provider_state);

/// One provider's health: pure logic on an injected clock, unit-tested without actors.
class provider_health {
public:
  explicit provider_health(health_settings settings) : settings_(settings) {}

  /// Records an attempt; true when the verdict pushed to the batcher changed. A sole provider is
  /// sin-binned like any other: its callers get a 503 with Retry-After at once instead of each
  /// paying for the failing calls, and probes find out when it is back.
  bool record(const call_report& report, clock_time now);
  /// Advances time: a sin-bin may expire. True when the verdict changed.
  bool advance(clock_time now);
  /// Whether a recovery probe is due now (and marks it sent).
  bool probe_due(clock_time now);

  provider_state state(clock_time now) const;
  bool can_serve(clock_time now) const { return !sin_binned(now); }
  bool sin_binned(clock_time now) const { return sin_binned_ && now < sin_bin_until_; }
  provider_condition condition() const { return {sin_binned_, sin_bin_until_, paused_until_}; }
  int consecutive_failures() const { return consecutive_failures_; }
  int sin_bin_entries() const { return entries_; }
  provider_health_stats stats(clock_time now);

private:
  struct sample {
    clock_time at;
    std::chrono::microseconds latency;
    outcome_class outcome;
  };
  void prune(clock_time now);
  void restore();

  health_settings settings_;
  std::deque<sample> samples_;
  // Totals since start, for /metrics counters (the window above is for health decisions).
  outcome_totals totals_;
  histogram latency_{histogram::latency_bounds()};
  int consecutive_failures_ = 0;
  int entries_ = 0;
  bool sin_binned_ = false;
  clock_time sin_bin_until_{};
  std::chrono::nanoseconds probe_gap_{}; ///< between probes of the current sin-bin
  clock_time next_probe_{};
  clock_time paused_until_{};
  clock_time healthy_since_{};
};

struct health_state {
  struct tracked {
    provider_health health;
    batcher_actor batcher;
    /// Why the batcher stopped, while no new one has attached: the provider directory restarts
    /// a crashed batcher at once, so this stays only past its restart limit.
    std::string failure;
  };
  health_actor::pointer self = nullptr;
  health_settings settings;
  std::map<std::string, tracked> providers;
  static inline const char* name = "health";

  clock_time now() const;
  void on_report(const call_report& report);
  void on_tick();
  void on_attach(const std::string& provider, batcher_actor batcher);
  void on_batcher_down(const caf::down_msg& down);
  void push(const std::string& name, tracked& t);
  health_stats stats();
};

health_actor::behavior_type health(health_actor::stateful_pointer<health_state> self,
                                   health_settings settings);

} // namespace emr
