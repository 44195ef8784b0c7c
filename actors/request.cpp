#include "actors/request.hpp"

#include <algorithm>

namespace emr {

namespace {
std::atomic<std::int64_t> live_requests{0};
std::atomic<std::uint64_t> spawned_requests{0};

using self_ptr = caf::stateful_actor<request_state>*;

void send_route(self_ptr self, std::size_t route_index, bool first_send);
} // namespace

request_state::request_state() {
  ++live_requests;
  ++spawned_requests;
}

request_state::~request_state() {
  // An actor torn down without answering (system shutdown) still answers its caller.
  if (!answered && out)
    out->set_value(
        caller_outcome{{}, failure{503, "shutting_down", "emr is shutting down", 1000, {}}});
  --live_requests;
}

std::int64_t live_request_actors() {
  return live_requests.load();
}
std::uint64_t spawned_request_actors() {
  return spawned_requests.load();
}

void request_state::finish(caller_outcome outcome) {
  if (answered)
    return;
  answered = true;
  out->set_value(std::move(outcome));
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

std::shared_ptr<const caller_group> group_of(const std::vector<const caller_job*>& jobs) {
  static std::atomic<std::uint64_t> next_id{1};
  auto group = std::make_shared<caller_group>();
  group->id = next_id++;
  for (const auto* job : jobs) {
    if (job->texts.empty())
      continue; // answered without sending anything
    auto first_routes = job->policy == routing_policy::all
                            ? job->routes.size()
                            : std::min<std::size_t>(1, job->routes.size());
    for (std::size_t r = 0; r < first_routes; ++r) {
      const auto& route = job->routes[r];
      group->chunks[{route.name, batch_key{route.model, job->input_type, job->dimensions}}] +=
          static_cast<std::uint32_t>(chunk_ends(job->texts, route.limits).size());
    }
  }
  return group;
}

namespace {

std::chrono::milliseconds remaining(self_ptr self) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(self->state.deadline -
                                                                    self->clock().now());
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

// A route's chunks have all answered: move on according to the policy.
void route_settled(self_ptr self, std::size_t route_index) {
  auto& st = self->state;
  auto& error = st.route_errors[route_index];
  if (st.job.policy == routing_policy::any) {
    if (!error) {
      st.finish(caller_outcome{{std::move(st.answers[route_index])}, std::nullopt});
      self->quit();
      return;
    }
    st.failures.push_back(*error);
    bool time_left = st.deadline - self->clock().now() >= std::chrono::milliseconds{1};
    if (++st.next_route < st.job.routes.size() && time_left) {
      send_route(self, st.next_route, false);
      return;
    }
    st.finish(caller_outcome{
        {}, error->status == 504 ? deadline_failure(st.job) : combine_failures(st.failures)});
    self->quit();
    return;
  }
  if (st.pending > 0)
    return;
  for (auto& e : st.route_errors)
    if (e)
      st.failures.push_back(*e);
  if (st.failures.empty())
    st.finish(caller_outcome{std::move(st.answers), std::nullopt});
  else
    st.finish(caller_outcome{{}, combine_failures(st.failures)});
  self->quit();
}

void send_route(self_ptr self, std::size_t route_index, bool first_send) {
  auto& st = self->state;
  const auto& route = st.job.routes[route_index];
  auto chunks = split_into_chunks(st.job.texts, route.limits);
  auto& answer = st.answers[route_index];
  answer.provider = route.name;
  answer.model = route.model;
  answer.chunks.resize(chunks.size());
  auto outstanding = std::make_shared<std::size_t>(chunks.size());
  st.pending += chunks.size();
  bool last_route = st.job.policy == routing_policy::all || route_index + 1 == st.job.routes.size();
  auto wait = last_route ? remaining(self)
                         : route_share(remaining(self), st.job.routes.size() - route_index);
  auto deadline = self->clock().now() + wait;
  batch_key key{route.model, st.job.input_type, st.job.dimensions};
  std::uint64_t group = 0;
  std::uint32_t group_chunks = 0;
  if (first_send && st.job.group)
    if (auto n = st.job.group->chunks.find({route.name, key}); n != st.job.group->chunks.end()) {
      group = st.job.group->id;
      group_chunks = n->second;
    }
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    auto on_done = [self, route_index, outstanding] {
      --self->state.pending;
      if (--*outstanding == 0)
        route_settled(self, route_index);
    };
    self->request(route.batcher, wait, atom::embed::value,
                  chunk_request{key, std::move(chunks[i]), st.job.request_id, group, group_chunks,
                                deadline})
        .then(
            [self, route_index, i, on_done](chunk_result& result) {
              auto& st = self->state;
              if (result.error) {
                if (!st.route_errors[route_index])
                  st.route_errors[route_index] = std::move(result.error);
              } else {
                st.answers[route_index].tokens += result.tokens;
                st.answers[route_index].chunks[i] = std::move(result);
              }
              on_done();
            },
            [self, route_index, last_route, wait, on_done](caf::error& err) {
              auto& st = self->state;
              if (!st.route_errors[route_index]) {
                if (err == caf::sec::request_timeout)
                  st.route_errors[route_index] =
                      last_route ? deadline_failure(st.job)
                                 : share_failure(st.job.routes[route_index], wait);
                else
                  st.route_errors[route_index] =
                      failure{502, "provider_error",
                              "provider '" + st.job.routes[route_index].name +
                                  "' is not running (" + self->system().render(err) + ")",
                              -1, st.job.routes[route_index].name};
              }
              on_done();
            });
  }
}

} // namespace

void request(self_ptr self, caller_job job, outcome_promise out) {
  auto& st = self->state;
  st.deadline = self->clock().now() + job.deadline;
  st.out = std::move(out);
  st.answers.resize(job.routes.size());
  st.route_errors.resize(job.routes.size());
  st.job = std::move(job);
  if (st.job.routes.empty() || st.job.texts.empty()) {
    st.finish(caller_outcome{{}, failure{400, "invalid_request", "nothing to embed", -1, {}}});
    self->quit();
    return;
  }
  if (st.job.policy == routing_policy::any)
    send_route(self, 0, true);
  else
    for (std::size_t r = 0; r < st.job.routes.size(); ++r)
      send_route(self, r, true);
}

} // namespace emr
