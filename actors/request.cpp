#include "actors/request.hpp"

#include "actors/pending_chunk.hpp"

#include <algorithm>

namespace emr {

namespace {
std::atomic<std::int64_t> live_requests{0};
std::atomic<std::uint64_t> spawned_requests{0};

using self_ptr = caf::stateful_actor<request_state>*;
} // namespace

request_state::request_state() {
  ++live_requests;
  ++spawned_requests;
}

request_state::~request_state() {
  // An actor torn down without answering (system shutdown) still answers its callers.
  for (auto& caller : callers)
    if (!caller.answered && caller.out)
      caller.finish(
          caller_outcome{{}, failure{503, "shutting_down", "emr is shutting down", 1000, {}}});
  --live_requests;
}

std::int64_t live_request_actors() {
  return live_requests.load();
}
std::uint64_t spawned_request_actors() {
  return spawned_requests.load();
}

double provider_answer::upstream_calls() const {
  double calls = 0;
  for (const auto& chunk : chunks)
    calls += chunk.call_share;
  return calls;
}

void caller_progress::finish(caller_outcome outcome) {
  if (answered)
    return;
  answered = true;
  out->set(std::move(outcome));
}

failure combine_failures(const std::vector<failure>& failures) {
  if (failures.empty())
    return failure{502, "provider_error", "no provider could serve the request", -1, {}};
  if (failures.size() == 1)
    return failures.front();
  // A rate limit anywhere means "come back later" beats "broken": tell the caller when.
  std::int64_t retry_after = -1;
  for (const auto& f : failures)
    if (f.status == 429)
      retry_after = std::max(retry_after, f.retry_after_ms);
  std::string message = "every provider failed: ";
  for (std::size_t i = 0; i < failures.size(); ++i)
    message += (i ? "; " : "") + failures[i].provider + ": " + failures[i].message;
  if (retry_after >= 0)
    return failure{429, "rate_limited", message, retry_after, {}};
  bool all_invalid = std::all_of(failures.begin(), failures.end(),
                                 [](const failure& f) { return f.status == 400; });
  if (all_invalid)
    return failure{400, "invalid_request", message, -1, {}};
  return failure{502, "provider_error", message, -1, {}};
}

std::chrono::milliseconds route_share(std::chrono::milliseconds left, std::size_t routes_left) {
  if (routes_left <= 1)
    return left;
  auto share = left / static_cast<std::chrono::milliseconds::rep>(routes_left);
  return std::min(left, std::max(share, min_route_share));
}

std::vector<std::size_t> chunk_ends(const std::vector<std::string>& texts,
                                    const batch_limits& limits) {
  std::vector<std::size_t> ends;
  std::size_t begin = 0, tokens = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto t = estimate_tokens(texts[i]);
    bool full =
        i - begin >= limits.max_texts || (limits.max_tokens > 0 && tokens + t > limits.max_tokens);
    if (i > begin && full) {
      ends.push_back(i);
      begin = i;
      tokens = 0;
    }
    tokens += t;
  }
  if (!texts.empty())
    ends.push_back(texts.size());
  return ends;
}

std::vector<std::vector<std::string>> split_into_chunks(const std::vector<std::string>& texts,
                                                        const batch_limits& limits) {
  std::vector<std::vector<std::string>> chunks;
  std::size_t begin = 0;
  for (auto end : chunk_ends(texts, limits)) {
    chunks.emplace_back(texts.begin() + static_cast<std::ptrdiff_t>(begin),
                        texts.begin() + static_cast<std::ptrdiff_t>(end));
    begin = end;
  }
  return chunks;
}

namespace {

/// Where one chunk of a message came from: its caller, the caller's route, and its place there.
struct chunk_place {
  std::size_t caller = 0;
  std::size_t route = 0;
  std::size_t chunk = 0;
};

void send_routes(self_ptr self, const std::vector<std::pair<std::size_t, std::size_t>>& sends);

std::chrono::milliseconds remaining(self_ptr self, const caller_progress& caller) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(caller.deadline - self->clock().now());
  return std::max(left, std::chrono::milliseconds{1});
}

failure deadline_failure(const caller_job& job) {
  return failure{504,
                 "deadline_exceeded",
                 "no answer within the " + std::to_string(job.deadline.count()) + " ms deadline",
                 -1,
                 {}};
}

failure share_failure(const provider_route& route, std::chrono::milliseconds share) {
  return failure{504, "deadline_exceeded",
                 "provider '" + route.name + "' gave no answer within its " +
                     std::to_string(share.count()) + " ms share of the deadline",
                 -1, route.name};
}

bool is_last_route(const caller_job& job, std::size_t route) {
  return job.policy == routing_policy::all || route + 1 == job.routes.size();
}

void finish(self_ptr self, caller_progress& caller, caller_outcome outcome) {
  if (caller.answered)
    return;
  caller.finish(std::move(outcome));
  if (--self->state.unanswered == 0)
    self->quit();
}

// Looks the caller's texts up for a route. True when some were found: `misses` then holds the
// others, the texts to send upstream.
bool look_up(self_ptr self, caller_progress& caller, std::size_t route,
             std::vector<std::string>& misses) {
  const auto& cache = self->state.cache;
  const auto& job = caller.job;
  auto& lookup = caller.lookups[route];
  if (!cache || !cache->enabled() || (!job.cache.read && !job.cache.write))
    return false;
  const auto& r = job.routes[route];
  lookup.keys.clear();
  lookup.keys.reserve(job.texts.size());
  for (const auto& text : job.texts)
    lookup.keys.push_back(
        make_cache_key(r.cache_scope, r.model, job.input_type, job.dimensions, text));
  if (!job.cache.read)
    return false;
  auto now = self->clock().now();
  lookup.hits.assign(job.texts.size(), std::nullopt);
  lookup.sent.clear();
  for (std::uint32_t i = 0; i < job.texts.size(); ++i)
    if (!(lookup.hits[i] = cache->find(lookup.keys[i], now)))
      lookup.sent.push_back(i);
  if (lookup.sent.size() == job.texts.size()) {
    lookup.hits.clear();
    lookup.sent.clear();
    return false;
  }
  misses.reserve(lookup.sent.size());
  for (auto i : lookup.sent)
    misses.push_back(job.texts[i]);
  return true;
}

// Keeps the vectors a route's calls brought, each with its share of its chunk's tokens: the share
// of the texts up to it less the share of those before it, so that the shares add up to the
// chunk's.
void remember_answer(self_ptr self, const caller_progress& caller, std::size_t route) {
  const auto& cache = self->state.cache;
  const auto& lookup = caller.lookups[route];
  if (!cache || !caller.job.cache.write || lookup.keys.empty())
    return;
  auto now = self->clock().now();
  std::size_t sent = 0;
  for (const auto& chunk : caller.answers[route].chunks) {
    auto text_of = [&](std::size_t k) -> std::size_t {
      return lookup.sent.empty() ? sent + k : lookup.sent[sent + k];
    };
    std::size_t estimate = 0;
    for (std::size_t k = 0; k < chunk.rows.size(); ++k)
      estimate += estimate_tokens(caller.job.texts[text_of(k)]);
    std::size_t before = 0;
    for (std::size_t k = 0; k < chunk.rows.size(); ++k) {
      auto after = before + estimate_tokens(caller.job.texts[text_of(k)]);
      cache->store(lookup.keys[text_of(k)], chunk.matrix->row(chunk.rows[k]), chunk.matrix->dims,
                   usage_share(chunk.tokens, after, estimate) -
                       usage_share(chunk.tokens, before, estimate),
                   now);
      before = after;
    }
    sent += chunk.rows.size();
  }
}

// A route answered every text it was sent: keep the new vectors, and put the cached ones in
// their places among them, in the caller's order.
void complete_answer(self_ptr self, caller_progress& caller, std::size_t route) {
  remember_answer(self, caller, route);
  auto& lookup = caller.lookups[route];
  if (lookup.hits.empty())
    return;
  auto& answer = caller.answers[route];
  std::vector<chunk_result> in_order;
  std::size_t chunk = 0, row = 0;
  bool extending = false; ///< the last piece holds rows of `chunk`, and may take the next
  for (auto& hit : lookup.hits) {
    if (hit) {
      answer.tokens += hit->tokens;
      ++answer.cached_texts;
      in_order.push_back(chunk_result{std::move(hit->vector), {0}, hit->tokens, std::nullopt, {}});
      extending = false;
      continue;
    }
    while (row == answer.chunks[chunk].rows.size()) {
      ++chunk;
      row = 0;
      extending = false;
    }
    const auto& from = answer.chunks[chunk];
    if (!extending) {
      // The chunk's tokens and call share go with its first piece, so the pieces add up.
      in_order.push_back(chunk_result{from.matrix,
                                      {},
                                      row == 0 ? from.tokens : 0,
                                      std::nullopt,
                                      from.upstream_id,
                                      row == 0 ? from.call_share : 0});
      extending = true;
    }
    in_order.back().rows.push_back(from.rows[row++]);
  }
  answer.chunks = std::move(in_order);
  lookup.hits.clear();
}

// A route's chunks have all answered: move on according to the caller's policy.
void route_settled(self_ptr self, std::size_t index, std::size_t route) {
  auto& caller = self->state.callers[index];
  if (caller.answered)
    return;
  auto& error = caller.route_errors[route];
  if (!error)
    complete_answer(self, caller, route);
  // Billed on the routes that give this caller nothing.
  auto unanswered_tokens = [&caller](std::optional<std::size_t> answered) {
    std::int64_t tokens = 0;
    for (std::size_t r = 0; r < caller.upstream_tokens.size(); ++r)
      if (r != answered)
        tokens += caller.upstream_tokens[r];
    return tokens;
  };
  if (caller.job.policy == routing_policy::any) {
    if (!error) {
      finish(self, caller,
             caller_outcome{
                 {std::move(caller.answers[route])}, std::nullopt, unanswered_tokens(route)});
      return;
    }
    caller.failures.push_back(*error);
    bool time_left = caller.deadline - self->clock().now() >= std::chrono::milliseconds{1};
    if (++caller.next_route < caller.job.routes.size() && time_left) {
      send_routes(self, {{index, caller.next_route}});
      return;
    }
    finish(self, caller,
           caller_outcome{{},
                          error->status == 504 ? deadline_failure(caller.job)
                                               : combine_failures(caller.failures),
                          unanswered_tokens(std::nullopt)});
    return;
  }
  // Counted by route, not by chunk: a route the cache answered whole has no chunk to wait for.
  if (--caller.routes_unsettled > 0)
    return;
  for (auto& e : caller.route_errors)
    if (e)
      caller.failures.push_back(*e);
  if (caller.failures.empty())
    finish(self, caller, caller_outcome{std::move(caller.answers), std::nullopt});
  else
    finish(self, caller,
           caller_outcome{{}, combine_failures(caller.failures), unanswered_tokens(std::nullopt)});
}

void chunk_answered(self_ptr self, const chunk_place& place, chunk_result&& result) {
  auto& caller = self->state.callers[place.caller];
  if (caller.route_over[place.route])
    return;
  if (result.error) {
    if (!caller.route_errors[place.route])
      caller.route_errors[place.route] = std::move(result.error);
  } else {
    caller.answers[place.route].tokens += result.tokens;
    caller.upstream_tokens[place.route] += result.tokens;
    caller.answers[place.route].chunks[place.chunk] = std::move(result);
  }
  if (--caller.chunks_left[place.route] == 0)
    route_settled(self, place.caller, place.route);
}

failure message_failure(self_ptr self, const caller_progress& caller, std::size_t route,
                        const caf::error& err) {
  const auto& r = caller.job.routes[route];
  if (err == caf::sec::request_timeout)
    return is_last_route(caller.job, route) ? deadline_failure(caller.job)
                                            : share_failure(r, caller.route_wait[route]);
  return failure{502, "provider_error",
                 "provider '" + r.name + "' is not running (" + self->system().render(err) + ")",
                 -1, r.name};
}

// A route's time ran out while the message carrying its chunks, given longer for another
// caller's sake, is still out: the route failed, and its chunks' answers will not count.
void route_timed_out(self_ptr self, std::size_t index, std::size_t route) {
  auto& caller = self->state.callers[index];
  if (caller.answered || caller.chunks_left[route] == 0)
    return;
  caller.route_over[route] = true;
  caller.chunks_left[route] = 0;
  if (!caller.route_errors[route])
    caller.route_errors[route] =
        message_failure(self, caller, route, caf::make_error(caf::sec::request_timeout));
  route_settled(self, index, route);
}

// One message per batcher: a batch request's sub-requests reach each batcher together, so it
// queues them all before it next decides what to send. The message waits as long as its most
// patient caller; a caller given less time has a timer of its own.
struct outgoing {
  batcher_actor batcher;
  std::chrono::milliseconds wait{};
  chunk_requests message;
  std::vector<chunk_place> places;
};

// Sends each (caller, route) its route's chunks.
void send_routes(self_ptr self, const std::vector<std::pair<std::size_t, std::size_t>>& sends) {
  auto& st = self->state;
  std::vector<outgoing> out;
  std::vector<std::pair<std::size_t, std::size_t>> cached_whole;
  for (auto [index, route_index] : sends) {
    auto& caller = st.callers[index];
    const auto& route = caller.job.routes[route_index];
    std::vector<std::string> misses;
    auto chunks = split_into_chunks(
        look_up(self, caller, route_index, misses) ? misses : caller.job.texts, route.limits);
    auto& answer = caller.answers[route_index];
    answer.provider = route.name;
    answer.model = route.model;
    answer.chunks.resize(chunks.size());
    caller.chunks_left[route_index] = chunks.size();
    auto wait = is_last_route(caller.job, route_index)
                    ? remaining(self, caller)
                    : route_share(remaining(self, caller), caller.job.routes.size() - route_index);
    caller.route_wait[route_index] = wait;
    if (chunks.empty()) {
      cached_whole.emplace_back(index, route_index);
      continue;
    }
    auto deadline = self->clock().now() + wait;
    auto to = std::find_if(out.begin(), out.end(),
                           [&](const outgoing& o) { return o.batcher == route.batcher; });
    if (to == out.end())
      to = out.insert(out.end(), outgoing{route.batcher, wait, {}, {}});
    to->wait = std::max(to->wait, wait);
    batch_key key{route.model, caller.job.input_type, caller.job.dimensions};
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      to->message.chunks.push_back(chunk_request{key, std::move(chunks[i]), caller.job.request_id,
                                                 deadline, caller.job.tenant});
      to->places.push_back(chunk_place{index, route_index, i});
    }
  }
  for (auto [index, route_index] : sends) {
    const auto& caller = st.callers[index];
    const auto& batcher = caller.job.routes[route_index].batcher;
    auto wait = caller.route_wait[route_index];
    for (const auto& o : out)
      if (o.batcher == batcher && wait < o.wait)
        self->delayed_send(self, wait, atom::share_over::value, index, route_index);
  }
  for (auto& o : out) {
    auto places = std::make_shared<const std::vector<chunk_place>>(std::move(o.places));
    self->request(o.batcher, o.wait, atom::embed::value, std::move(o.message))
        .then(
            [self, places](chunk_results& answers) {
              for (std::size_t k = 0; k < places->size(); ++k)
                chunk_answered(self, (*places)[k], std::move(answers.results.at(k)));
            },
            [self, places](caf::error& err) {
              for (const auto& place : *places) {
                auto& caller = self->state.callers[place.caller];
                chunk_answered(
                    self, place,
                    chunk_result{
                        nullptr, {}, 0, message_failure(self, caller, place.route, err), {}});
              }
            });
  }
  for (auto [index, route_index] : cached_whole)
    route_settled(self, index, route_index);
}

} // namespace

caf::behavior request(self_ptr self, std::vector<caller_job> jobs, std::vector<caller_slot> outs,
                      arrivals::in_transit arriving, std::shared_ptr<embedding_cache> cache) {
  auto& st = self->state;
  st.cache = std::move(cache);
  auto now = self->clock().now();
  st.callers.resize(jobs.size());
  st.unanswered = jobs.size();
  std::vector<std::pair<std::size_t, std::size_t>> first_sends;
  for (std::size_t c = 0; c < jobs.size(); ++c) {
    auto& caller = st.callers[c];
    caller.deadline = now + jobs[c].deadline;
    caller.out = std::move(outs.at(c));
    caller.job = std::move(jobs[c]);
    auto routes = caller.job.routes.size();
    caller.answers.resize(routes);
    caller.upstream_tokens.resize(routes);
    caller.lookups.resize(routes);
    caller.route_errors.resize(routes);
    caller.chunks_left.resize(routes);
    caller.route_wait.resize(routes);
    caller.route_over.resize(routes);
    if (routes == 0 || caller.job.texts.empty()) {
      caller.finish(
          caller_outcome{{}, failure{400, "invalid_request", "nothing to embed", -1, {}}});
      --st.unanswered;
      continue;
    }
    auto first_routes = caller.job.policy == routing_policy::any ? 1 : routes;
    caller.routes_unsettled = first_routes;
    for (std::size_t r = 0; r < first_routes; ++r)
      first_sends.emplace_back(c, r);
  }
  if (st.unanswered == 0) {
    self->quit();
    return {};
  }
  // Dropped just before the sends, not after: a batcher that took a lone caller's chunk while it
  // still counted as on its way would hold it for itself.
  arriving.reset();
  send_routes(self, first_sends);
  if (st.unanswered == 0)
    return {}; // the cache answered everyone
  return {
      [self](atom::share_over, std::size_t caller, std::size_t route) {
        route_timed_out(self, caller, route);
      },
  };
}

} // namespace emr
