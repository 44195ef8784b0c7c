#include "actors/health.hpp"

#include "actors/restart_limit.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace emr {

std::string_view to_string(provider_state s) {
  switch (s) {
  case provider_state::healthy:
    return "healthy";
  case provider_state::degraded:
    return "degraded";
  case provider_state::sin_binned:
    return "sin-binned";
  case provider_state::paused:
    return "paused";
  }
  return "unknown";
}

void provider_health::prune(clock_time now) {
  while (!samples_.empty() && samples_.front().at + settings_.window < now)
    samples_.pop_front();
}

void provider_health::restore() {
  sin_binned_ = false;
  consecutive_failures_ = 0;
}

bool provider_health::record(const call_report& report, clock_time now) {
  prune(now);
  samples_.push_back({now, report.latency, report.outcome});
  latency_.observe(std::chrono::duration<double>(report.latency).count());
  bool changed = false;
  switch (report.outcome) {
  case outcome_class::success:
    ++totals_.success;
    consecutive_failures_ = 0;
    if (sin_binned_) {
      restore();
      healthy_since_ = now;
      changed = true;
    }
    break;
  case outcome_class::rate_limited:
    ++totals_.rate_limited;
    if (report.retry_after_ms >= 0) {
      auto until = now + std::chrono::milliseconds{report.retry_after_ms};
      if (until > paused_until_) {
        paused_until_ = until;
        changed = true;
      }
    }
    break;
  case outcome_class::caller_error:
    ++totals_.caller_error;
    break;
  case outcome_class::server_error:
    ++totals_.server_error;
    ++consecutive_failures_;
    if (!sin_binned_ && consecutive_failures_ >= settings_.failure_threshold) {
      // Re-entries double the sentence; a long healthy spell wipes the record.
      if (now - healthy_since_ > settings_.sin_bin_max)
        entries_ = 0;
      auto sentence = std::min<std::chrono::nanoseconds>(
          settings_.sin_bin_base * (1 << std::min(entries_, 10)), settings_.sin_bin_max);
      ++entries_;
      sin_binned_ = true;
      sin_bin_until_ = now + sentence;
      // A provider that is back early should not sit out its whole sentence: the first probe
      // comes halfway through at the latest.
      probe_gap_ = std::min<std::chrono::nanoseconds>(settings_.probe_interval, sentence / 2);
      next_probe_ = now + probe_gap_;
      changed = true;
    }
    break;
  }
  return changed;
}

bool provider_health::advance(clock_time now) {
  prune(now);
  if (sin_binned_ && now >= sin_bin_until_) {
    // The sentence is served; one more failure sends it straight back (half-open).
    sin_binned_ = false;
    consecutive_failures_ = settings_.failure_threshold - 1;
    healthy_since_ = now;
    return true;
  }
  return false;
}

bool provider_health::probe_due(clock_time now) {
  if (!sin_binned(now) || now < next_probe_)
    return false;
  next_probe_ = now + probe_gap_;
  return true;
}

provider_state provider_health::state(clock_time now) const {
  if (sin_binned(now))
    return provider_state::sin_binned;
  if (now < paused_until_)
    return provider_state::paused;
  if (consecutive_failures_ > 0)
    return provider_state::degraded;
  return provider_state::healthy;
}

provider_health_stats provider_health::stats(clock_time now) {
  prune(now);
  std::vector<std::int64_t> latencies;
  latencies.reserve(samples_.size());
  provider_health_stats s;
  std::size_t successes = 0, rejected = 0;
  for (const auto& sample : samples_) {
    latencies.push_back(sample.latency.count());
    s.errors += sample.outcome == outcome_class::server_error;
    successes += sample.outcome == outcome_class::success;
    s.rate_limited += sample.outcome == outcome_class::rate_limited;
    rejected += sample.outcome == outcome_class::caller_error;
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) -> double {
    if (latencies.empty())
      return 0.0;
    auto i = static_cast<std::size_t>(p * static_cast<double>(latencies.size() - 1) + 0.5);
    return static_cast<double>(latencies[i]) / 1000.0;
  };
  auto n = static_cast<double>(samples_.size());
  s.state = to_string(state(now));
  s.window_s = settings_.window.count();
  s.requests = samples_.size();
  s.error_rate = n == 0 ? 0.0 : static_cast<double>(s.errors) / n;
  // A rejected input says nothing about whether the provider is up.
  auto judged = static_cast<double>(samples_.size() - rejected);
  s.availability = judged == 0 ? 1.0 : static_cast<double>(successes + s.rate_limited) / judged;
  s.latency_p50_ms = pct(0.50);
  s.latency_p95_ms = pct(0.95);
  s.latency_p99_ms = pct(0.99);
  s.consecutive_failures = consecutive_failures_;
  s.sin_bin_entries = entries_;
  auto remaining = [&](clock_time until) {
    return until > now ? std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count()
                       : std::int64_t{0};
  };
  s.sin_bin_remaining_ms = sin_binned(now) ? remaining(sin_bin_until_) : 0;
  s.paused_remaining_ms = remaining(paused_until_);
  s.totals = totals_;
  s.upstream_latency_seconds = latency_;
  return s;
}

clock_time health_state::now() const {
  return self->clock().now();
}

void health_state::push(const std::string& provider, tracked& t) {
  auto c = t.health.condition();
  spdlog::info("provider {} is now {}", provider, to_string(t.health.state(now())));
  if (t.batcher)
    self->send(t.batcher, atom::condition::value, c);
}

void health_state::on_report(const call_report& report) {
  auto it = providers.find(report.provider);
  if (it == providers.end())
    return;
  if (it->second.health.record(report, now()))
    push(it->first, it->second);
}

void health_state::on_attach(const std::string& provider, batcher_actor batcher) {
  // Watched so that a batcher that dies shows as failed until its successor attaches.
  self->monitor(batcher);
  auto it = providers.find(provider);
  if (it == providers.end()) {
    providers.emplace(provider, tracked{provider_health{settings}, std::move(batcher), {}});
    return;
  }
  it->second.batcher = std::move(batcher);
  it->second.failure.clear();
  // A restarted batcher starts knowing nothing: it learns the current verdict at once.
  self->send(it->second.batcher, atom::condition::value, it->second.health.condition());
}

void health_state::on_batcher_down(const caf::down_msg& down) {
  for (auto it = providers.begin(); it != providers.end(); ++it)
    if (it->second.batcher.address() == down.source) {
      if (stopped_abnormally(down.reason))
        it->second.failure = self->system().render(down.reason);
      else
        // Drained, and no successor attached yet: either the provider was changed and the new
        // batcher's attach is still on its way (it comes from another sender), and it takes
        // this record back with its verdict, or the provider was removed and the directory's
        // detach overtook this batcher's attach. Until then it is not reported at all, so a
        // removed provider is never counted as serving in /health.
        it->second.batcher = nullptr;
      return;
    }
}

void health_state::on_tick() {
  auto t = now();
  for (auto& [provider, tracked] : providers) {
    if (tracked.health.advance(t))
      push(provider, tracked);
    if (tracked.health.probe_due(t) && tracked.batcher)
      self->send(tracked.batcher, atom::probe::value);
  }
}

health_stats health_state::stats() {
  health_stats out;
  auto t = now();
  for (auto& [provider, tracked] : providers) {
    if (!tracked.batcher)
      continue; // drained, no successor attached (on_batcher_down)
    auto s = tracked.health.stats(t);
    if (!tracked.failure.empty()) {
      s.state = "failed";
      s.failure = "its batcher stopped (" + tracked.failure + ") and was not restarted";
    }
    out.providers.emplace(provider, std::move(s));
  }
  return out;
}

health_actor::behavior_type health(health_actor::stateful_pointer<health_state> self,
                                   health_settings settings) {
  self->state.self = self;
  self->state.settings = settings;
  self->delayed_send(self, settings.tick, atom::tick::value);
  self->set_down_handler([self](caf::down_msg& down) { self->state.on_batcher_down(down); });
  return {
      [self](atom::report, const call_report& report) { self->state.on_report(report); },
      [self](atom::attach, const std::string& provider, batcher_actor batcher) {
        self->state.on_attach(provider, std::move(batcher));
      },
      [self](atom::detach, const std::string& provider) { self->state.providers.erase(provider); },
      [self](atom::tick) {
        self->state.on_tick();
        self->delayed_send(self, self->state.settings.tick, atom::tick::value);
      },
      [self](atom::status) { return self->state.stats(); },
  };
}

} // namespace emr
