#include "actors/batcher.hpp"

#include <algorithm>
#include <random>
#include <string_view>

namespace emr {

namespace {

std::int64_t ms_between(clock_time from, clock_time to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

failure unavailable(const provider_spec& spec, std::string message, std::int64_t retry_after_ms) {
  return failure{503, "provider_unavailable", std::move(message), retry_after_ms, spec.name};
}

failure paused(const provider_spec& spec, clock_time now, clock_time until) {
  return failure{429, "rate_limited",
                 "provider '" + spec.name + "' asked for a pause that outlasts the caller's wait",
                 ms_between(now, until), spec.name};
}

chunk_result refusal(failure error) {
  return chunk_result{nullptr, {}, 0, std::move(error), {}};
}

} // namespace

batcher_factories real_factories(const provider_spec& spec, upstream_settings settings) {
  std::shared_ptr<const embedding_provider> adapter{make_provider(spec)};
  return {
      [spec, adapter, settings](caf::local_actor& owner) -> upstream_actor {
        return owner.spawn<caf::detached>(upstream_worker, spec, adapter, settings);
      },
      [](caf::local_actor& owner, supervisor_job job) -> supervisor_actor {
        return owner.spawn(retry_supervisor, std::move(job));
      },
  };
}

batcher_state::~batcher_state() {
  for (const auto& worker : all_workers)
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
  if (!self)
    return;
  failure lost{502, "provider_error",
               "provider '" + spec.name + "' stopped unexpectedly (" +
                   self->system().render(self->fail_state()) + ")",
               -1, spec.name};
  fail_waiting(lost);
  for (auto& [id, call] : calls)
    if (!call.probe)
      fail_chunks(call.chunks, lost);
  // They would retry for nobody, and report the failures of the workers that died with us.
  for (auto& [id, actors] : actors_of)
    caf::anon_send_exit(actors.supervisor, caf::exit_reason::user_shutdown);
}

clock_time batcher_state::now() const {
  return self->clock().now();
}

caf::result<chunk_results> batcher_state::enqueue(chunk_requests&& message) {
  auto t = now();
  std::uint32_t number;
  if (free_messages.empty()) {
    number = static_cast<std::uint32_t>(messages.size());
    messages.emplace_back();
  } else {
    number = free_messages.back();
    free_messages.pop_back();
  }
  auto n = message.chunks.size();
  {
    auto& waiting = messages[number];
    waiting.promise = self->make_response_promise<chunk_results>();
    waiting.answers.results.resize(n);
    waiting.left = n;
  }
  auto promise = messages[number].promise;
  bool arrived = false;
  for (std::size_t i = 0; i < n; ++i) {
    chunk_caller caller{number, static_cast<std::uint32_t>(i)};
    if (auto at_once = admit(std::move(message.chunks[i]), caller, t))
      answer(caller, std::move(*at_once));
    else
      arrived = true;
  }
  // A message is one arrival, however many callers' chunks it holds: they came together, and
  // every one is queued before the next decision, so they share calls.
  if (arrived)
    policy.on_arrival(t);
  pump();
  return promise;
}

std::optional<chunk_result> batcher_state::admit(chunk_request&& request, chunk_caller caller,
                                                 clock_time t) {
  if (draining)
    return refusal(failure{400, "invalid_request",
                           "provider '" + spec.name + "' is being removed or disabled", -1,
                           spec.name});
  if (condition.sin_binned && t < condition.sin_bin_until)
    return refusal(unavailable(spec,
                               "provider '" + spec.name + "' is sin-binned after repeated failures",
                               ms_between(t, condition.sin_bin_until)));
  auto limits = model_limits(spec, *adapter, request.key.model);
  if (request.texts.empty() || request.texts.size() > limits.max_texts)
    return refusal(failure{400, "invalid_request",
                           "a chunk must hold 1 to " + std::to_string(limits.max_texts) + " texts",
                           -1, spec.name});
  std::size_t tokens = 0;
  for (const auto& text : request.texts)
    tokens += estimate_tokens(text);
  if (limits.max_tokens > 0 && tokens > limits.max_tokens)
    return refusal(failure{400, "invalid_request",
                           "input is longer than provider '" + spec.name +
                               "' accepts in one call (about " + std::to_string(tokens) +
                               " tokens, limit " + std::to_string(limits.max_tokens) + ")",
                           -1, spec.name});
  if (auto reused = recent.find(request.key, request.texts, tokens, t)) {
    ++counted.chunks_received;
    ++counted.chunks_reused;
    return reused;
  }
  // Queued, the chunk would only be failed once its caller stopped waiting; told now, a caller
  // with another provider still has the time to try it.
  if (t < policy.paused_until() && request.deadline <= policy.paused_until()) {
    ++counted.chunks_refused_paused;
    return refusal(paused(spec, t, policy.paused_until()));
  }
  if (queues.texts() + request.texts.size() > settings.max_queued_texts) {
    ++counted.rejected_overload;
    return refusal(
        unavailable(spec, "provider '" + spec.name + "' has too many queued texts", 1000));
  }
  ++counted.chunks_received;
  auto texts = request.texts.size();
  pending_chunk chunk{
      std::move(request.texts), tokens, std::move(request.request_id), caller, t, request.deadline,
      request.tenant,           0};
  // Identical texts are sent once even across calls: a caller whose texts are already on their
  // way rides along and is answered from the same matrix.
  if (auto joined = calls.join(request.key, chunk)) {
    ++counted.chunks_joined;
    ++chunks_flushed;
    counted.texts_flushed += texts;
    // The call may now retry for as long as its latest caller waits. (A supervisor that already
    // settled hears nothing: its outcome, in our mailbox, answers this chunk too, which costs it
    // less than its texts going upstream again.)
    if (joined->extends_wait)
      self->send(actors_of.at(joined->id).supervisor, atom::wait_until::value,
                 calls.find(joined->id)->callers_wait_until);
    return std::nullopt;
  }
  queues.push(request.key, std::move(chunk), limits);
  return std::nullopt;
}

void batcher_state::answer(chunk_caller caller, chunk_result&& result) {
  auto& waiting = messages[caller.message];
  waiting.answers.results[caller.index] = std::move(result);
  if (--waiting.left > 0)
    return;
  waiting.promise.deliver(std::move(waiting.answers));
  waiting.answers.results.clear();
  waiting.promise = {};
  free_messages.push_back(caller.message);
}

std::optional<batcher_state::flush_choice>
batcher_state::take_batch(clock_time t, std::optional<clock_time>& recheck) {
  for (auto [key, queue] : queues.by_age()) {
    // Counted in distinct texts: a burst of callers sharing texts fills one call, not one per
    // max_texts callers.
    bool full = queue->call_full();
    bool held = false, burst_ended = false;
    if (!draining && !hurrying) {
      auto d =
          policy.decide(t, queue->oldest(), full,
                        queue->prefix.distinct <
                            budget.flush_threshold(t, queue->limits.max_texts, allowance.share()),
                        settings.arriving && settings.arriving->under_way() > 0);
      if (!d.flush_now) {
        recheck = recheck ? std::min(*recheck, d.recheck) : d.recheck;
        continue;
      }
      held = d.held;
      burst_ended = d.burst_ended;
    }
    batch_key chosen = *key; // take_call may end the queue that holds the key
    auto chunks = queues.take_call(chosen);
    return flush_choice{std::move(chosen), std::move(chunks), held, burst_ended};
  }
  return std::nullopt;
}

void batcher_state::pump() {
  auto t = now();
  drop_expired(t);
  std::optional<clock_time> recheck;
  ask_fleet(t);
  // Even a drain keeps to the provider's budget: a refused call would only come back.
  auto paced_until = next_send(t);
  while (!idle_workers.empty() && (draining || policy.can_send(t)) && paced_until <= t) {
    if (auto half = queues.take_put_back()) {
      start(std::move(half->first), std::move(half->second), false);
      paced_until = next_send(t);
      continue;
    }
    auto batch = take_batch(t, recheck);
    if (!batch)
      break;
    policy.on_flushed(batch->chunks.size(), batch->held);
    if (batch->burst_ended)
      policy.on_burst_flushed(t);
    auto parts = calls_for(t, batch->chunks);
    auto runs = spread_evenly(std::move(batch->chunks), parts);
    start(batch->key, std::move(runs.front()), false);
    paced_until = next_send(t);
    for (std::size_t i = 1; i < runs.size(); ++i) {
      if (idle_workers.empty() || !policy.can_send(t) || paced_until > t) {
        // The budget or the window has no room for the rest after all: one call of their own.
        std::vector<pending_chunk> rest;
        for (; i < runs.size(); ++i)
          std::move(runs[i].begin(), runs[i].end(), std::back_inserter(rest));
        queues.put_back(batch->key, std::move(rest));
        break;
      }
      ++counted.calls_spread;
      start(batch->key, std::move(runs[i]), false);
      paced_until = next_send(t);
    }
  }
  ask_fleet(t);
  bool waiting = queues.waiting();
  if (waiting && !draining && t < policy.paused_until())
    arm_timer(policy.paused_until());
  else if (waiting && paced_until > t && paced_until != clock_time::max())
    arm_timer(paced_until); // never: an ask is pending, and its answer pumps
  else if (recheck)
    arm_timer(*recheck);
  if (waiting && queues.next_deadline() != clock_time::max())
    arm_timer(queues.next_deadline());
  if (finished_draining())
    self->quit();
}

std::size_t batcher_state::calls_for(clock_time t, const std::vector<pending_chunk>& chunks) const {
  // Only a batch that opens a busy spell is spread: no call is out and none started for four
  // typical calls. An isolated burst pays its one further call once; under steady load every
  // round would pay it again, so there calls stay full. One, not more: a host busy enough to
  // pause a burst's arrivals makes the flush policy send the rest apart, and a burst then costs
  // at most two calls beyond the fewest that carry it. Never while the budget runs short (calls
  // then fill to the flush threshold), nor when a text repeats (each call would send it).
  constexpr std::size_t most_calls = 2;
  constexpr int quiet_calls = 4;
  if (draining || hurrying || policy.in_flight() > 0 ||
      t - last_call_started < quiet_calls * cost.typical())
    return 1;
  auto max_texts = model_limits(spec, *adapter, spec.model).max_texts;
  if (budget.flush_threshold(t, max_texts, allowance.share()) > 1)
    return 1;
  // Nor when a further full call's worth of requests is still being read: later calls carry
  // most of such a burst, the spread would answer this batch's callers a few milliseconds sooner
  // and leave the burst one spare call fewer for the pauses a busy host puts in its arrivals.
  // (Requests for any provider, a request a text: which provider a request is for is only known
  // once it is read. An approximation, as for the hold in flush_policy.)
  if (settings.arriving && settings.arriving->under_way() >= max_texts)
    return 1;
  auto most = std::min({most_calls, idle_workers.size(), policy.window(), chunks.size()});
  if (most < 2 || !texts_distinct(chunks))
    return 1;
  std::size_t tokens = 0;
  for (const auto& chunk : chunks)
    tokens += chunk.tokens;
  return cost.calls_for(tokens, most);
}

clock_time batcher_state::next_send(clock_time t) const {
  return std::max(budget.next_send(t), allowance.next_send(t));
}

void batcher_state::ask_fleet(clock_time t) {
  // A grant taken during a pause would only expire: asked once it is over.
  if (!settings.fleet || !queues.waiting() || t < policy.paused_until())
    return;
  auto max_texts = std::max<std::size_t>(1, model_limits(spec, *adapter, spec.model).max_texts);
  // What this replica's own bucket is short of full, while it spends its share alone: charged
  // to the shared bucket when the ledger answers again, so that the fleet's offline spending
  // and its shared spending together stay within the limit.
  auto owed = [t](const minute_bucket& bucket) {
    return bucket.limited()
               ? (1.0 - bucket.share(t)) * static_cast<double>(bucket.per_minute()) / 10
               : 0.0;
  };
  // Calls put back after a refusal or a split are waiting too, though not counted in texts().
  auto calls = std::max<std::size_t>(1, (queues.texts() + max_texts - 1) / max_texts);
  auto ask = allowance.ask(t, spec.name, calls, owed(budget.requests()), owed(budget.tokens()));
  if (!ask)
    return;
  self->request(settings.fleet, std::chrono::seconds{5}, atom::grant::value, std::move(*ask))
      .then([this](budget_grant& grant) { on_grant(grant); },
            [this](caf::error&) {
              budget_grant none;
              none.reachable = false;
              none.replicas = allowance.replicas();
              on_grant(none);
            });
}

void batcher_state::on_grant(const budget_grant& grant) {
  auto t = now();
  auto was = allowance.sharing();
  allowance.on_grant(t, grant);
  auto is = allowance.sharing();
  // Out of reach, this replica spends a 1/N share of the limit on its own; back, the whole
  // limit again, under the fleet's grants.
  if (is != was) {
    auto share = is == budget_sharing::fleet_offline ? allowance.replicas() : 1;
    auto part = [share](std::uint64_t limit) {
      return limit == 0 ? 0 : std::max<std::uint64_t>(1, limit / share);
    };
    budget.configure(part(spec.requests_per_minute), part(spec.tokens_per_minute), t);
    if (is == budget_sharing::fleet_offline)
      budget.empty_buckets(t);
  }
  if (allowance.paused_until() > t)
    policy.pause_until(allowance.paused_until());
  pump();
}

void batcher_state::on_fleet_pause(double seconds) {
  auto t = now();
  auto until = t + std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::duration<double>{seconds});
  allowance.pause(until);
  policy.pause_until(until);
  // As for a pause of its own: callers who cannot outlast it hear it now.
  counted.chunks_refused_paused += fail_waiting(paused(spec, t, until), until);
  pump();
}

void batcher_state::start(batch_key key, std::vector<pending_chunk> chunks, bool probe) {
  auto opened = calls.open(std::move(key), std::move(chunks), probe);
  auto& call = *calls.find(opened.id);
  auto& upstream = opened.batch;
  last_call_started = now();
  auto worker = idle_workers.back();
  idle_workers.pop_back();
  policy.on_call_started();
  budget.on_sent(now(), call.sent_tokens);
  allowance.on_sent(now(), call.sent_tokens);
  if (!probe) {
    std::size_t asked = 0;
    for (const auto& chunk : call.chunks)
      asked += chunk.texts.size();
    ++counted.batches_flushed;
    chunks_flushed += call.chunks.size();
    counted.texts_flushed += asked;
    counted.texts_sent += upstream.texts.size();
    counted.largest_call_texts =
        std::max<std::uint64_t>(counted.largest_call_texts, upstream.texts.size());
    counted.texts_per_call.observe(static_cast<double>(upstream.texts.size()));
  }
  // A lone caller's id goes upstream as is; a shared call gets its own, which the access log
  // line of every caller it carried names.
  call.upstream_id = call.chunks.size() == 1 && !call.chunks.front().request_id.empty()
                         ? call.chunks.front().request_id
                         : "emr-" + spec.name + "-" + std::to_string(opened.id);
  supervisor_job job;
  job.batch_id = opened.id;
  job.provider = spec.name;
  job.call = upstream_call{adapter->encode_request(upstream), upstream.texts.size(),
                           call.upstream_id, expected_dimensions(*adapter, upstream)};
  job.worker = worker;
  job.batcher = self;
  job.health = health;
  job.retry = settings.retry;
  job.attempt_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      settings.upstream.connect_timeout + 2 * settings.upstream.read_timeout);
  job.callers_wait_until = call.callers_wait_until;
  job.seed = jitter_seeds();
  job.probe = probe;
  auto supervisor = factories.supervisor(*self, std::move(job));
  self->monitor(supervisor);
  actors_of.emplace(opened.id, call_actors{std::move(worker), std::move(supervisor)});
}

void batcher_state::settle(batch_outcome&& outcome) {
  auto closed = calls.close(outcome.batch_id);
  if (!closed)
    return;
  auto& call = *closed;
  auto actors = actors_of.extract(outcome.batch_id);
  if (!call.probe && outcome.matrix && outcome.attempts == 1 && outcome.latency.count() > 0)
    cost.on_answer(call.sent_tokens, outcome.latency);
  release_worker(std::move(actors.mapped().worker), outcome.worker_blocked);
  counted.upstream_attempts += outcome.attempts;
  counted.retries += outcome.attempts > 1 ? outcome.attempts - 1 : 0;
  auto t = now();
  // Retries spent the provider's budget too.
  for (int retry = 1; retry < outcome.attempts; ++retry) {
    budget.on_sent(t, call.sent_tokens);
    allowance.on_sent(t, call.sent_tokens);
  }
  budget.on_headers(t, outcome.limits);
  if (outcome.rate_limited) {
    std::optional<std::chrono::milliseconds> wait;
    if (outcome.error && outcome.error->retry_after_ms >= 0)
      wait = std::chrono::milliseconds{outcome.error->retry_after_ms};
    budget.on_refused(t, wait);
    // The provider counts the whole fleet's calls: none of them may go before the wait is over.
    if (wait && allowance.sharing() != budget_sharing::alone)
      self->send(settings.fleet, atom::pause::value, spec.name,
                 std::chrono::duration<double>{*wait}.count());
  }
  policy.on_call_finished(outcome.congestion ? call_signal::congestion
                          : outcome.matrix   ? call_signal::success
                                             : call_signal::neutral);
  if (call.probe) {
    pump();
    return;
  }
  if (outcome.matrix) {
    for (std::size_t i = 0; i < call.chunks.size(); ++i) {
      auto& chunk = call.chunks[i];
      answer(chunk.caller,
             chunk_result{outcome.matrix, std::move(call.rows[i]),
                          usage_share(outcome.matrix->total_tokens, chunk.tokens, call.tokens),
                          std::nullopt, call.upstream_id,
                          call.tokens == 0 ? 0.0
                                           : static_cast<double>(chunk.tokens) /
                                                 static_cast<double>(call.tokens)});
    }
    recent.remember(std::move(call), outcome.matrix, t);
  } else if (outcome.error && outcome.error->status == 429) {
    requeue(call, *outcome.error);
  } else if (outcome.splittable && call.chunks.size() > 1) {
    // One caller's text may have poisoned the call: retry the halves apart until it is alone.
    ++counted.batches_split;
    auto half = static_cast<std::ptrdiff_t>(halves_at(call.chunks));
    std::vector<pending_chunk> first(std::make_move_iterator(call.chunks.begin()),
                                     std::make_move_iterator(call.chunks.begin() + half));
    std::vector<pending_chunk> second(std::make_move_iterator(call.chunks.begin() + half),
                                      std::make_move_iterator(call.chunks.end()));
    queues.put_back(call.key, std::move(second));
    queues.put_back(std::move(call.key), std::move(first));
  } else {
    ++counted.batches_failed;
    fail_chunks(call.chunks, outcome.error ? *outcome.error
                                           : failure{502, "provider_error", "upstream call failed",
                                                     -1, spec.name});
  }
  pump();
}

void batcher_state::requeue(in_flight_call& call, const failure& refused) {
  // Held until the provider's named wait is over and the budget lets a call go again (the health
  // actor's pause for the same 429 may come later); a provider that named no wait and taught no
  // limit gets a second's rest.
  auto t = now();
  auto resumes = std::max({t, policy.paused_until(), budget.next_send(t),
                           t + std::chrono::milliseconds{refused.retry_after_ms}});
  if (resumes == t)
    resumes = t + std::chrono::seconds{1};
  policy.pause_until(resumes);
  std::vector<pending_chunk> kept;
  for (auto& chunk : call.chunks) {
    if (chunk.deadline > resumes) {
      kept.push_back(std::move(chunk));
      continue;
    }
    auto told = refused;
    told.retry_after_ms = std::max(told.retry_after_ms, ms_between(t, resumes));
    answer(chunk.caller, refusal(told));
  }
  if (kept.empty()) {
    ++counted.batches_failed;
    return;
  }
  ++counted.batches_requeued;
  queues.put_back(std::move(call.key), std::move(kept));
}

void batcher_state::fail_chunks(std::vector<pending_chunk>& chunks, const failure& error) {
  for (auto& chunk : chunks)
    answer(chunk.caller, refusal(error));
}

std::size_t batcher_state::fail_waiting(const failure& error, clock_time by) {
  auto due = queues.take_due(by);
  fail_chunks(due, error);
  return due.size();
}

void batcher_state::drop_expired(clock_time t) {
  if (t < queues.next_deadline())
    return;
  counted.chunks_expired += fail_waiting(failure{504, "deadline_exceeded",
                                                 "the caller stopped waiting before provider '" +
                                                     spec.name + "' could be sent its texts",
                                                 -1, spec.name},
                                         t);
}

void batcher_state::spawn_worker() {
  auto worker = factories.worker(*self);
  all_workers.push_back(worker);
  idle_workers.push_back(worker);
}

void batcher_state::release_worker(upstream_actor worker, bool blocked) {
  if (!blocked) {
    idle_workers.push_back(std::move(worker));
    return;
  }
  ++blocked_workers;
  // The provider keeps its concurrency while a worker is stuck; the bound keeps a provider that
  // hangs every call from costing more than twice the threads.
  auto usable = all_workers.size() - blocked_workers;
  if (usable < settings.flush.max_concurrency &&
      all_workers.size() < 2 * settings.flush.max_concurrency)
    spawn_worker();
  // The worker answers this once its call has returned; a worker that dies fails the request. So
  // either way the batcher hears, and no timeout is needed.
  self->request(worker, caf::infinite, atom::ready::value)
      .then([this, worker] { unblock_worker(worker); },
            [this, worker](caf::error&) {
              --blocked_workers;
              all_workers.erase(std::find(all_workers.begin(), all_workers.end(), worker));
              // The calls it would have made still need a worker: without one, queued chunks
              // would wait until their deadlines for calls that never start.
              if (all_workers.size() - blocked_workers < settings.flush.max_concurrency) {
                spawn_worker();
                pump();
              }
            });
}

void batcher_state::unblock_worker(const upstream_actor& worker) {
  --blocked_workers;
  if (all_workers.size() - blocked_workers > settings.flush.max_concurrency) {
    all_workers.erase(std::find(all_workers.begin(), all_workers.end(), worker));
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
  } else {
    idle_workers.push_back(worker);
  }
  pump();
}

void batcher_state::apply(const provider_condition& c) {
  condition = c;
  policy.pause_until(c.paused_until);
  auto t = now();
  // Queued callers learn at once, so those with another provider can fall over to it.
  if (c.sin_binned && t < c.sin_bin_until)
    fail_waiting(unavailable(spec,
                             "provider '" + spec.name + "' was sin-binned after repeated failures",
                             ms_between(t, c.sin_bin_until)));
  else if (t < policy.paused_until())
    counted.chunks_refused_paused +=
        fail_waiting(paused(spec, t, policy.paused_until()), policy.paused_until());
  pump();
}

void batcher_state::run_probe() {
  if (idle_workers.empty() || draining)
    return;
  std::vector<pending_chunk> chunks(1);
  chunks.front().texts.push_back("emr health probe");
  chunks.front().tokens = estimate_tokens(chunks.front().texts.front());
  chunks.front().arrived = now();
  start(batch_key{spec.model, "", 0}, std::move(chunks), true);
}

void batcher_state::arm_timer(clock_time due) {
  if (timer_due && *timer_due <= due)
    return;
  timer_due = due;
  auto delay = std::max(std::chrono::nanoseconds{0}, std::chrono::nanoseconds{due - now()});
  self->delayed_send(self, delay, atom::flush::value, ++timer_generation);
}

bool batcher_state::finished_draining() const {
  return draining && !queues.waiting() && calls.empty();
}

batcher_stats batcher_state::stats() {
  batcher_stats s = counted;
  s.provider = spec.name;
  s.type = to_string(spec.type);
  s.model = spec.model;
  for (const auto& [key, queue] : queues.queues()) {
    s.queues.push_back(
        {key.model, key.input_type, key.dimensions, queue.texts, queue.chunks.size()});
    s.queued_callers += queue.chunks.size();
  }
  s.queued_texts = queues.texts();
  auto limits = model_limits(spec, *adapter, spec.model);
  s.max_texts_per_call = limits.max_texts;
  s.max_tokens_per_call = limits.max_tokens;
  s.call_window = policy.window();
  s.in_flight_calls = policy.in_flight();
  s.live_supervisors = calls.size();
  s.holding_for_company = policy.holding();
  s.hold_gap_us = std::chrono::duration_cast<std::chrono::microseconds>(policy.hold_gap()).count();
  s.flush_window_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(settings.flush.window).count();
  auto t = now();
  s.paused_for_ms = t < policy.paused_until() ? ms_between(t, policy.paused_until()) : 0;
  s.requests_per_minute = budget.requests().per_minute();
  s.requests_limit_source = to_string(budget.requests().source());
  s.requests_left = budget.requests_left(t);
  s.tokens_per_minute = budget.tokens().per_minute();
  s.tokens_limit_source = to_string(budget.tokens().source());
  s.tokens_left = budget.tokens_left(t);
  s.flush_threshold = budget.flush_threshold(t, limits.max_texts, allowance.share());
  auto paced = next_send(t);
  s.paced_for_ms = paced == clock_time::max() ? -1 : paced > t ? ms_between(t, paced) : 0;
  s.budget_sharing = to_string(allowance.sharing());
  s.fleet_replicas = allowance.replicas();
  s.fleet_grants = allowance.grants_taken();
  s.granted_requests = allowance.requests_in_hand(t);
  s.upstream_call_ms = std::chrono::duration<double, std::milli>(cost.typical()).count();
  s.upstream_us_per_token = cost.ns_per_token() / 1000;
  if (s.batches_flushed > 0) {
    auto calls_made = static_cast<double>(s.batches_flushed);
    s.mean_texts_per_call = static_cast<double>(s.texts_sent) / calls_made;
    s.compression = static_cast<double>(chunks_flushed) / calls_made;
  }
  s.workers = all_workers.size();
  s.blocked_workers = blocked_workers;
  s.mailbox_size = self->mailbox().size();
  s.draining = draining;
  return s;
}

batcher_actor::behavior_type batcher(batcher_actor::stateful_pointer<batcher_state> self,
                                     provider_spec spec, batcher_settings settings,
                                     health_actor health, batcher_factories factories) {
  auto& st = self->state;
  st.self = self;
  st.adapter = std::shared_ptr<const embedding_provider>{make_provider(spec)};
  st.settings = settings;
  st.factories = std::move(factories);
  st.health = health;
  st.policy = flush_policy{settings.flush};
  st.recent = recent_answers{settings.reuse};
  st.budget.configure(spec.requests_per_minute, spec.tokens_per_minute, st.now());
  st.allowance.configure(static_cast<bool>(settings.fleet), spec.requests_per_minute,
                         spec.tokens_per_minute);
  st.spec = std::move(spec);
  for (std::size_t i = 0; i < settings.flush.max_concurrency; ++i)
    st.spawn_worker();
  self->send(health, atom::attach::value, st.spec.name, batcher_actor{self});
  self->set_down_handler([self](caf::down_msg& msg) {
    // A supervisor that died without settling must not leave its callers waiting. A normal
    // exit always follows its `done`, so only abnormal ones matter here. Its worker may still be
    // inside the call, so it counts as blocked until it answers.
    if (!msg.reason)
      return;
    auto& st = self->state;
    for (auto& [id, actors] : st.actors_of)
      if (actors.supervisor.address() == msg.source) {
        batch_outcome lost;
        lost.batch_id = id;
        lost.error =
            failure{502, "internal_error",
                    "the upstream call's supervisor failed: " + self->system().render(msg.reason),
                    -1, st.spec.name};
        lost.worker_blocked = true;
        st.settle(std::move(lost));
        return;
      }
  });
  return {
      [self](atom::embed, chunk_requests& message) {
        return self->state.enqueue(std::move(message));
      },
      [self](atom::flush, std::uint64_t generation) {
        if (generation != self->state.timer_generation)
          return;
        self->state.timer_due.reset();
        self->state.pump();
      },
      [self](atom::done, batch_outcome& outcome) { self->state.settle(std::move(outcome)); },
      [self](atom::condition, const provider_condition& c) { self->state.apply(c); },
      [self](atom::probe) { self->state.run_probe(); },
      [self](atom::attach, const caf::actor& health) {
        self->state.health = caf::actor_cast<health_actor>(health);
        self->send(self->state.health, atom::attach::value, self->state.spec.name,
                   batcher_actor{self});
      },
      [self](atom::drain) {
        self->state.draining = true;
        self->state.pump();
      },
      [self](atom::hurry) {
        self->state.hurrying = true;
        self->state.pump();
      },
      [self](atom::pause, double seconds) { self->state.on_fleet_pause(seconds); },
      [self](atom::status) { return self->state.stats(); },
  };
}

} // namespace emr
