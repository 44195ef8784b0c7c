#include "actors/batcher.hpp"

#include "actors/supervisor.hpp"

#include <algorithm>
#include <random>
#include <string_view>

namespace json = boost::json;

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

// The matrix row of each text in a call's text-to-row map; nothing if any text is not in it.
template <class RowOf>
std::optional<std::vector<std::uint32_t>> rows_in(const RowOf& row_of,
                                                  const std::vector<std::string>& texts) {
  std::vector<std::uint32_t> rows;
  rows.reserve(texts.size());
  for (const auto& text : texts) {
    auto row = row_of.find(text);
    if (row == row_of.end())
      return std::nullopt;
    rows.push_back(row->second);
  }
  return rows;
}

} // namespace

batcher_state::~batcher_state() {
  for (const auto& worker : all_workers)
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
  if (!self)
    return;
  failure lost{502, "provider_error",
               "provider '" + spec.name + "' stopped unexpectedly (" +
                   self->system().render(self->fail_state()) + ")",
               -1, spec.name};
  fail_queued(lost);
  for (auto& [id, batch] : in_flight) {
    if (!batch.probe)
      fail_chunks(batch.chunks, lost);
    // It would retry for nobody, and report the failures of the worker that died with us.
    caf::anon_send_exit(batch.supervisor, caf::exit_reason::user_shutdown);
  }
}

clock_time batcher_state::now() const {
  return self->clock().now();
}

caf::result<chunk_result> batcher_state::enqueue(chunk_request&& request) {
  auto t = now();
  bool group_in = count_group_arrival(request, t);
  auto result = admit(std::move(request), t);
  // The last of a group answered without queueing (reused, joined or refused) still releases
  // the siblings waiting for it.
  if (group_in)
    pump();
  return result;
}

caf::result<chunk_result> batcher_state::admit(chunk_request&& request, clock_time t) {
  auto answer = [](failure f) { return chunk_result{nullptr, {}, 0, std::move(f), {}}; };
  if (draining)
    return answer(failure{400, "invalid_request",
                          "provider '" + spec.name + "' is being removed or disabled", -1,
                          spec.name});
  if (condition.sin_binned && t < condition.sin_bin_until)
    return answer(unavailable(spec,
                              "provider '" + spec.name + "' is sin-binned after repeated failures",
                              ms_between(t, condition.sin_bin_until)));
  if (request.texts.empty() || request.texts.size() > limits.max_texts)
    return answer(failure{400, "invalid_request",
                          "a chunk must hold 1 to " + std::to_string(limits.max_texts) + " texts",
                          -1, spec.name});
  std::size_t tokens = 0;
  for (const auto& text : request.texts)
    tokens += estimate_tokens(text);
  if (limits.max_tokens > 0 && tokens > limits.max_tokens)
    return answer(failure{400, "invalid_request",
                          "input is longer than provider '" + spec.name +
                              "' accepts in one call (about " + std::to_string(tokens) +
                              " tokens, limit " + std::to_string(limits.max_tokens) + ")",
                          -1, spec.name});
  if (auto reused = reuse_recent(request.key, request.texts, t)) {
    ++chunks_received;
    return std::move(*reused);
  }
  // Queued, the chunk would only be failed once its caller stopped waiting; told now, a caller
  // with another provider still has the time to try it.
  if (t < policy.paused_until() && request.deadline <= policy.paused_until()) {
    ++chunks_refused_paused;
    return answer(paused(spec, t, policy.paused_until()));
  }
  if (queued_texts + request.texts.size() > settings.max_queued_texts) {
    ++rejected_overload;
    return answer(
        unavailable(spec, "provider '" + spec.name + "' has too many queued texts", 1000));
  }
  policy.on_arrival(t);
  ++chunks_received;
  auto promise = self->make_response_promise<chunk_result>();
  pending_chunk chunk{std::move(request.texts), tokens, std::move(request.request_id), promise, t,
                      request.deadline};
  if (join_in_flight(request.key, chunk))
    return promise;
  next_expiry = std::min(next_expiry, chunk.deadline);
  queued_texts += chunk.texts.size();
  auto& queue = queues[std::move(request.key)];
  queue.texts += chunk.texts.size();
  queue.chunks.push_back(std::move(chunk));
  queue.extend_prefix(queue.chunks.back(), limits);
  pump();
  return promise;
}

void key_queue::extend_prefix(const pending_chunk& chunk, const batch_limits& limits) {
  if (prefix.closed)
    return;
  std::vector<std::string_view> fresh;
  for (const auto& text : chunk.texts)
    if (prefix.seen.insert(text).second)
      fresh.push_back(text);
  auto tokens = fresh.empty() ? 0 : chunk.tokens;
  // The first chunk always goes: the request actor sized it to fit a call.
  if (prefix.chunks > 0 &&
      (prefix.distinct + fresh.size() > limits.max_texts ||
       (limits.max_tokens > 0 && prefix.tokens + tokens > limits.max_tokens))) {
    for (auto text : fresh)
      prefix.seen.erase(text);
    prefix.closed = true;
    return;
  }
  ++prefix.chunks;
  prefix.texts += chunk.texts.size();
  prefix.distinct += fresh.size();
  prefix.tokens += tokens;
}

void key_queue::recount_prefix(const batch_limits& limits) {
  prefix = {};
  for (const auto& chunk : chunks) {
    extend_prefix(chunk, limits);
    if (prefix.closed)
      break;
  }
}

bool batcher_state::count_group_arrival(const chunk_request& request, clock_time t) {
  if (draining || request.group == 0 || request.group_chunks <= 1)
    return false;
  auto q = queues.try_emplace(request.key).first;
  auto g =
      q->second.awaited.try_emplace(request.group, awaited_group{request.group_chunks, t}).first;
  if (--g->second.left > 0)
    return false;
  q->second.awaited.erase(g);
  if (q->second.chunks.empty() && q->second.awaited.empty())
    queues.erase(q);
  return true;
}

std::optional<clock_time> batcher_state::group_wait(key_queue& queue, clock_time t) {
  std::optional<clock_time> until;
  for (auto g = queue.awaited.begin(); g != queue.awaited.end();) {
    // A sibling that never comes (its caller gave up first) holds nobody past the window.
    if (g->second.since + settings.flush.window <= t) {
      g = queue.awaited.erase(g);
      continue;
    }
    until = std::min(until.value_or(clock_time::max()), g->second.since + settings.flush.window);
    ++g;
  }
  if (until && !queue.chunks.empty())
    until = std::min(*until, queue.chunks.front().arrived + settings.flush.window);
  if (until && *until <= t)
    return std::nullopt;
  return until;
}

std::optional<chunk_result> batcher_state::reuse_recent(const batch_key& key,
                                                        const std::vector<std::string>& texts,
                                                        clock_time t) {
  while (!recent.empty() && recent.front().expires <= t)
    forget_oldest_recent();
  if (texts.empty())
    return std::nullopt;
  // One lookup, not a scan of every kept call: a chunk whose texts rode in one call finds it by
  // its first text (an older call holding them all too is not looked for).
  auto newest = recent_by_text.find(texts.front());
  if (newest == recent_by_text.end())
    return std::nullopt;
  const auto& answer = recent[newest->second - recent.front().seq];
  if (answer.key != key)
    return std::nullopt;
  auto rows = rows_in(answer.row_of, texts);
  if (!rows)
    return std::nullopt;
  ++chunks_reused;
  // The caller's usage is what its texts cost in the call that carried them, as for a chunk
  // that rode in that call.
  std::size_t tokens = 0;
  for (const auto& text : texts)
    tokens += estimate_tokens(text);
  auto share = answer.tokens == 0
                   ? 0
                   : answer.matrix->total_tokens * static_cast<std::int64_t>(tokens) /
                         static_cast<std::int64_t>(answer.tokens);
  return chunk_result{answer.matrix, std::move(*rows), share, std::nullopt, answer.upstream_id};
}

void batcher_state::remember(in_flight_batch&& batch, const shared_matrix& matrix, clock_time t) {
  if (settings.reuse.count() <= 0)
    return;
  // A bound on what is kept, whatever the call rate: the oldest answers go first.
  static constexpr std::size_t max_recent_calls = 1024;
  if (recent.size() == max_recent_calls)
    forget_oldest_recent();
  auto& answer = recent.emplace_back();
  answer.seq = next_recent_seq++;
  answer.key = std::move(batch.key);
  answer.expires = t + settings.reuse;
  answer.matrix = matrix;
  answer.tokens = batch.tokens;
  answer.upstream_id = std::move(batch.upstream_id);
  // Moving a text vector hands over its buffer, so the strings (and row_of's views of them) stay
  // where they are.
  answer.texts.reserve(batch.chunks.size());
  for (auto& chunk : batch.chunks)
    answer.texts.push_back(std::move(chunk.texts));
  answer.row_of = std::move(batch.row_of);
  for (const auto& [text, row] : answer.row_of) {
    // The entry's key must view this call's copy: an older call's goes when that call does.
    if (auto older = recent_by_text.find(text); older != recent_by_text.end())
      recent_by_text.erase(older);
    recent_by_text.emplace(text, answer.seq);
  }
}

void batcher_state::forget_oldest_recent() {
  const auto& oldest = recent.front();
  for (const auto& [text, row] : oldest.row_of)
    if (auto entry = recent_by_text.find(text);
        entry != recent_by_text.end() && entry->second == oldest.seq)
      recent_by_text.erase(entry);
  recent.pop_front();
}

// in_flight_batch::row_of views texts inside chunks; a vector that copied chunks on growth
// instead of moving them would leave those views dangling.
static_assert(std::is_nothrow_move_constructible_v<pending_chunk>);

bool batcher_state::join_in_flight(const batch_key& key, pending_chunk& chunk) {
  for (auto& [id, batch] : in_flight) {
    if (batch.probe || batch.key != key)
      continue;
    auto rows = rows_in(batch.row_of, chunk.texts);
    if (!rows)
      continue;
    // Identical texts are sent once even across calls: a caller whose texts are already on their
    // way rides along and is answered from the same matrix.
    ++chunks_joined;
    ++chunks_flushed;
    // The call may now retry for as long as its latest caller waits. (A supervisor that already
    // settled hears nothing: its outcome, in our mailbox, answers this chunk too, which costs it
    // less than its texts going upstream again.)
    if (chunk.deadline > batch.callers_wait_until) {
      batch.callers_wait_until = chunk.deadline;
      self->send(batch.supervisor, atom::wait_until::value, chunk.deadline);
    }
    texts_flushed += chunk.texts.size();
    batch.tokens += chunk.tokens;
    batch.rows.push_back(std::move(*rows));
    batch.chunks.push_back(std::move(chunk));
    return true;
  }
  return false;
}

std::optional<batcher_state::flush_choice>
batcher_state::take_batch(clock_time t, std::optional<clock_time>& recheck) {
  // Oldest waiting key first, so one busy key cannot starve another.
  std::vector<std::map<batch_key, key_queue>::iterator> order;
  for (auto i = queues.begin(); i != queues.end(); ++i)
    if (!i->second.chunks.empty())
      order.push_back(i);
  std::sort(order.begin(), order.end(), [](auto a, auto b) {
    return a->second.chunks.front().arrived < b->second.chunks.front().arrived;
  });
  for (auto i : order) {
    auto& queue = i->second;
    // Counted in distinct texts: a burst of callers sharing texts fills one call, not one per
    // max_texts callers.
    const auto& prefix = queue.prefix;
    auto n = prefix.chunks, texts = prefix.texts, tokens = prefix.tokens;
    bool full = n < queue.chunks.size() || prefix.distinct == limits.max_texts ||
                (limits.max_tokens > 0 && tokens * 10 >= limits.max_tokens * 9);
    bool held = false;
    if (!draining && !hurrying) {
      if (auto until = group_wait(queue, t); until && !full) {
        recheck = recheck ? std::min(*recheck, *until) : *until;
        continue;
      }
      auto out = partial_calls.find(i->first);
      auto d = policy.decide(t, queue.chunks.front().arrived, full,
                             out != partial_calls.end() && out->second > 0);
      if (!d.flush_now) {
        recheck = recheck ? std::min(*recheck, d.recheck) : d.recheck;
        continue;
      }
      held = d.held;
    }
    std::vector<pending_chunk> chunks;
    chunks.reserve(n);
    for (std::size_t k = 0; k < n; ++k) {
      chunks.push_back(std::move(queue.chunks.front()));
      queue.chunks.pop_front();
    }
    queue.texts -= texts;
    queued_texts -= texts;
    queue.recount_prefix(limits);
    batch_key key = i->first;
    if (queue.chunks.empty() && queue.awaited.empty())
      queues.erase(i);
    return flush_choice{std::move(key), std::move(chunks), held, !full};
  }
  return std::nullopt;
}

void batcher_state::pump() {
  auto t = now();
  drop_expired(t);
  std::optional<clock_time> recheck;
  while (!idle_workers.empty() && (draining || policy.can_send(t))) {
    if (!isolated.empty()) {
      auto [key, chunks] = std::move(isolated.front());
      isolated.pop_front();
      if (!chunks.empty())
        start(std::move(key), std::move(chunks), false, false);
      continue;
    }
    auto batch = take_batch(t, recheck);
    if (!batch)
      break;
    policy.on_flushed(batch->chunks.size(), batch->held);
    start(std::move(batch->key), std::move(batch->chunks), false, batch->partial);
  }
  bool waiting = queued_texts > 0 || !isolated.empty();
  if (waiting && !draining && t < policy.paused_until())
    arm_timer(policy.paused_until());
  else if (recheck)
    arm_timer(*recheck);
  if (waiting && next_expiry != clock_time::max())
    arm_timer(next_expiry);
  if (finished_draining())
    self->quit();
}

void batcher_state::start(batch_key key, std::vector<pending_chunk> chunks, bool probe,
                          bool partial) {
  auto id = next_batch_id++;
  auto [pos, inserted] = in_flight.emplace(id, in_flight_batch{});
  auto& batch = pos->second;
  batch.key = std::move(key);
  batch.chunks = std::move(chunks);
  batch.probe = probe;
  batch.partial = partial;
  // Identical texts under one key are sent once; every chunk that asked maps to the same row.
  // The views in row_of stay valid: a chunk's texts never change, and moving chunks (or the
  // batch) moves their text vectors' buffers, not the strings in them.
  upstream_batch upstream{batch.key.model, batch.key.input_type, batch.key.dimensions, {}};
  std::size_t asked = 0;
  for (const auto& chunk : batch.chunks) {
    auto& rows = batch.rows.emplace_back();
    rows.reserve(chunk.texts.size());
    for (const auto& text : chunk.texts) {
      auto [it, fresh] =
          batch.row_of.emplace(text, static_cast<std::uint32_t>(upstream.texts.size()));
      if (fresh)
        upstream.texts.push_back(text);
      rows.push_back(it->second);
    }
    asked += chunk.texts.size();
    batch.tokens += chunk.tokens;
    batch.callers_wait_until = std::max(batch.callers_wait_until, chunk.deadline);
  }
  batch.worker = idle_workers.back();
  idle_workers.pop_back();
  policy.on_call_started();
  if (partial)
    ++partial_calls[batch.key];
  if (!probe) {
    ++batches_flushed;
    chunks_flushed += batch.chunks.size();
    texts_flushed += asked;
    texts_sent += upstream.texts.size();
    max_texts_per_call = std::max<std::uint64_t>(max_texts_per_call, upstream.texts.size());
    texts_per_call.observe(static_cast<double>(upstream.texts.size()));
  }
  supervisor_job job;
  job.batch_id = id;
  job.provider = spec.name;
  // A lone caller's id goes upstream as is; a shared call gets its own, which the access log
  // line of every caller it carried names.
  batch.upstream_id = batch.chunks.size() == 1 && !batch.chunks.front().request_id.empty()
                          ? batch.chunks.front().request_id
                          : "emr-" + spec.name + "-" + std::to_string(id);
  job.call = upstream_call{adapter->encode_request(upstream), upstream.texts.size(),
                           batch.upstream_id, expected_dimensions(*adapter, upstream)};
  job.worker = batch.worker;
  job.batcher = self;
  job.health = health;
  job.retry = settings.retry;
  job.attempt_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      settings.upstream.connect_timeout + 2 * settings.upstream.read_timeout);
  job.callers_wait_until = batch.callers_wait_until;
  job.seed = std::random_device{}() ^ id;
  job.probe = probe;
  auto supervisor = self->spawn(retry_supervisor, std::move(job));
  self->monitor(supervisor);
  batch.supervisor = supervisor;
}

void batcher_state::settle(batch_outcome&& outcome) {
  auto it = in_flight.find(outcome.batch_id);
  if (it == in_flight.end())
    return;
  auto batch = std::move(it->second);
  in_flight.erase(it);
  release_worker(batch.worker, outcome.worker_blocked);
  upstream_attempts += outcome.attempts;
  retries += outcome.attempts > 1 ? outcome.attempts - 1 : 0;
  policy.on_call_finished(outcome.congestion ? call_signal::congestion
                          : outcome.matrix   ? call_signal::success
                                             : call_signal::neutral);
  if (batch.partial)
    if (auto out = partial_calls.find(batch.key); out != partial_calls.end() && --out->second == 0)
      partial_calls.erase(out);
  if (batch.probe) {
    pump();
    return;
  }
  if (outcome.matrix) {
    for (std::size_t i = 0; i < batch.chunks.size(); ++i) {
      auto& chunk = batch.chunks[i];
      auto share = batch.tokens == 0
                       ? 0
                       : outcome.matrix->total_tokens * static_cast<std::int64_t>(chunk.tokens) /
                             static_cast<std::int64_t>(batch.tokens);
      chunk.promise.deliver(chunk_result{outcome.matrix, std::move(batch.rows[i]), share,
                                         std::nullopt, batch.upstream_id});
    }
    remember(std::move(batch), outcome.matrix, now());
  } else if (outcome.splittable && batch.chunks.size() > 1) {
    // One caller's text may have poisoned the call: retry the halves apart until it is alone.
    ++batches_split;
    for (const auto& chunk : batch.chunks)
      next_expiry = std::min(next_expiry, chunk.deadline);
    auto half = batch.chunks.size() / 2;
    std::vector<pending_chunk> first(std::make_move_iterator(batch.chunks.begin()),
                                     std::make_move_iterator(batch.chunks.begin() + half));
    std::vector<pending_chunk> second(std::make_move_iterator(batch.chunks.begin() + half),
                                      std::make_move_iterator(batch.chunks.end()));
    isolated.emplace_front(batch.key, std::move(second));
    isolated.emplace_front(batch.key, std::move(first));
  } else {
    ++batches_failed;
    fail_chunks(batch.chunks, outcome.error ? *outcome.error
                                            : failure{502, "provider_error", "upstream call failed",
                                                      -1, spec.name});
  }
  pump();
}

void batcher_state::fail_chunks(std::vector<pending_chunk>& chunks, const failure& error) {
  for (auto& chunk : chunks)
    chunk.promise.deliver(chunk_result{nullptr, {}, 0, error, {}});
}

std::size_t batcher_state::fail_queued(const failure& error, clock_time by) {
  std::size_t failed = 0;
  next_expiry = clock_time::max();
  // Keeps the chunks that wait beyond `by`, in order; returns the texts failed.
  auto fail_due = [&](auto& chunks) {
    std::size_t kept = 0, texts = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      if (chunks[i].deadline <= by) {
        chunks[i].promise.deliver(chunk_result{nullptr, {}, 0, error, {}});
        texts += chunks[i].texts.size();
        ++failed;
        continue;
      }
      next_expiry = std::min(next_expiry, chunks[i].deadline);
      if (kept != i)
        chunks[kept] = std::move(chunks[i]);
      ++kept;
    }
    chunks.erase(chunks.begin() + static_cast<std::ptrdiff_t>(kept), chunks.end());
    return texts;
  };
  for (auto q = queues.begin(); q != queues.end();) {
    auto& queue = q->second;
    auto texts = fail_due(queue.chunks);
    queue.texts -= texts;
    queued_texts -= texts;
    if (texts > 0)
      queue.recount_prefix(limits);
    q = queue.chunks.empty() && queue.awaited.empty() ? queues.erase(q) : std::next(q);
  }
  // An emptied half stays in line and is skipped when its turn comes.
  for (auto& [key, chunks] : isolated)
    fail_due(chunks);
  return failed;
}

void batcher_state::drop_expired(clock_time t) {
  if (t < next_expiry)
    return;
  chunks_expired += fail_queued(failure{504, "deadline_exceeded",
                                        "the caller stopped waiting before provider '" + spec.name +
                                            "' could be sent its texts",
                                        -1, spec.name},
                                t);
}

void batcher_state::spawn_worker() {
  auto worker = self->spawn<caf::detached>(upstream_worker, spec, adapter, settings.upstream);
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
    fail_queued(unavailable(spec,
                            "provider '" + spec.name + "' was sin-binned after repeated failures",
                            ms_between(t, c.sin_bin_until)));
  else if (t < policy.paused_until())
    chunks_refused_paused +=
        fail_queued(paused(spec, t, policy.paused_until()), policy.paused_until());
  pump();
}

void batcher_state::run_probe() {
  if (idle_workers.empty() || draining)
    return;
  std::vector<pending_chunk> chunks(1);
  chunks.front().texts.push_back("emr health probe");
  chunks.front().tokens = estimate_tokens(chunks.front().texts.front());
  chunks.front().arrived = now();
  start(batch_key{spec.model, "", 0}, std::move(chunks), true, false);
}

void batcher_state::arm_timer(clock_time due) {
  if (timer_due && *timer_due <= due)
    return;
  timer_due = due;
  auto delay = std::max(std::chrono::nanoseconds{0}, std::chrono::nanoseconds{due - now()});
  self->delayed_send(self, delay, atom::flush::value, ++timer_generation);
}

bool batcher_state::finished_draining() const {
  return draining && queued_texts == 0 && isolated.empty() && in_flight.empty();
}

json::object batcher_state::status() {
  json::object o;
  o["provider"] = spec.name;
  o["type"] = to_string(spec.type);
  o["model"] = spec.model;
  json::array keys;
  std::size_t queued_chunks = 0;
  for (const auto& [key, queue] : queues) {
    keys.push_back(json::object{{"model", key.model},
                                {"input_type", key.input_type},
                                {"dimensions", key.dimensions},
                                {"queued_texts", queue.texts},
                                {"queued_callers", queue.chunks.size()}});
    queued_chunks += queue.chunks.size();
  }
  o["queues"] = std::move(keys);
  o["queued_texts"] = queued_texts;
  o["queued_callers"] = queued_chunks;
  o["max_texts_per_call"] = limits.max_texts;
  o["max_tokens_per_call"] = limits.max_tokens;
  o["call_window"] = policy.window();
  o["in_flight_calls"] = policy.in_flight();
  o["live_supervisors"] = in_flight.size();
  o["holding_for_company"] = policy.holding();
  o["hold_gap_us"] =
      std::chrono::duration_cast<std::chrono::microseconds>(policy.hold_gap()).count();
  o["flush_window_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(settings.flush.window).count();
  auto t = now();
  o["paused_for_ms"] = t < policy.paused_until() ? ms_between(t, policy.paused_until()) : 0;
  o["chunks_received"] = chunks_received;
  o["batches_flushed"] = batches_flushed;
  o["texts_flushed"] = texts_flushed;
  o["texts_sent"] = texts_sent;
  o["chunks_joined"] = chunks_joined;
  o["chunks_reused"] = chunks_reused;
  o["largest_call_texts"] = max_texts_per_call;
  o["mean_texts_per_call"] =
      batches_flushed == 0 ? 0.0
                           : static_cast<double>(texts_sent) / static_cast<double>(batches_flushed);
  o["compression"] = batches_flushed == 0 ? 0.0
                                          : static_cast<double>(chunks_flushed) /
                                                static_cast<double>(batches_flushed);
  o["upstream_attempts"] = upstream_attempts;
  o["retries"] = retries;
  o["texts_per_call"] = texts_per_call.to_json();
  o["batches_failed"] = batches_failed;
  o["batches_split"] = batches_split;
  o["rejected_overload"] = rejected_overload;
  o["chunks_expired"] = chunks_expired;
  o["chunks_refused_paused"] = chunks_refused_paused;
  o["workers"] = all_workers.size();
  o["blocked_workers"] = blocked_workers;
  o["mailbox_size"] = self->mailbox().size();
  o["draining"] = draining;
  return o;
}

batcher_actor::behavior_type batcher(batcher_actor::stateful_pointer<batcher_state> self,
                                     provider_spec spec, batcher_settings settings,
                                     health_actor health) {
  auto& st = self->state;
  st.self = self;
  st.adapter = std::shared_ptr<const embedding_provider>{make_provider(spec)};
  st.limits = effective_limits(spec, *st.adapter);
  st.settings = settings;
  st.health = health;
  st.policy = flush_policy{settings.flush};
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
    for (auto& [id, batch] : st.in_flight)
      if (batch.supervisor.address() == msg.source) {
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
      [self](atom::embed, chunk_request& request) {
        return self->state.enqueue(std::move(request));
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
      [self](atom::status) { return status_report{self->state.status()}; },
  };
}

} // namespace emr
