// POST /v1/embeddings and its batch form: HTTP in, actor messages out, vectors back.

#include "http/answer_bodies.hpp"
#include "http/caller_text.hpp"
#include "http/deferred_answer.hpp"
#include "http/exchange.hpp"
#include "http/refusals.hpp"
#include "http/response_budget.hpp"
#include "http/route_table.hpp"
#include "http/routes.hpp"
#include "http/routing.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

namespace json = boost::json;

namespace emr {

namespace {

struct prepared_job {
  caller_job job;
  vector_encoding encoding = vector_encoding::float_array;
  routing_policy policy = routing_policy::any;
};

// `planned` is charged for the answer's vectors when their dimensions are known up front.
std::variant<prepared_job, api_error> prepare(app& a, const json::value& body,
                                              const std::string& id, cache_use allowed,
                                              response_budget& planned) {
  auto parsed = parse_embed_request(body, a.settings.limits);
  if (auto e = std::get_if<api_error>(&parsed))
    return *e;
  auto& request = std::get<embed_request>(parsed);
  auto routes = resolve_routes(request, a.directory);
  if (auto e = std::get_if<api_error>(&routes))
    return *e;
  auto& chosen = std::get<std::vector<provider_route>>(routes);
  if (request.dimensions > 0) {
    auto answers = request.policy == routing_policy::all ? chosen.size() : 1;
    if (auto e = planned.take(vector_bytes(request.texts.size() * answers,
                                           static_cast<std::size_t>(request.dimensions),
                                           request.encoding)))
      return *e;
  }
  prepared_job p;
  p.encoding = request.encoding;
  p.policy = request.policy.value_or(routing_policy::any);
  p.job.texts = std::move(request.texts);
  p.job.input_type = std::move(request.input_type);
  p.job.dimensions = request.dimensions;
  p.job.routes = std::move(chosen);
  p.job.policy = p.policy;
  p.job.deadline = a.settings.deadline;
  p.job.request_id = id;
  p.job.cache.read = request.cache.read && allowed.read;
  p.job.cache.write = request.cache.write && allowed.write;
  return p;
}

// What a job's answers will count, estimated from its texts' bytes: never less than a tokenizer's.
std::int64_t estimated_tokens(const caller_job& job) {
  std::size_t tokens = 0;
  for (const auto& text : job.texts)
    tokens += estimate_tokens(text);
  auto answers = job.policy == routing_policy::all ? job.routes.size() : 1;
  return static_cast<std::int64_t>(tokens * answers);
}

// One request actor for all the jobs: each batcher gets their chunks in one message.
std::vector<caller_slot> spawn_jobs(app& a, std::vector<caller_job> jobs) {
  std::vector<caller_slot> outs;
  outs.reserve(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i)
    outs.push_back(std::make_shared<outcome_slot<caller_outcome>>());
  // The store is read here, on the HTTP thread, so that the request actor finds the vectors
  // another replica or an earlier run embedded in memory and never waits on the store itself.
  // The time it takes comes out of the callers' deadline.
  if (a.stored) {
    auto started = std::chrono::steady_clock::now();
    a.stored->warm(jobs);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    for (auto& job : jobs)
      job.deadline = std::max(std::chrono::milliseconds{1}, job.deadline - took);
  }
  a.system.spawn(request, std::move(jobs), outs, arrivals::hand_over_current(), a.cache);
  return outs;
}

caller_outcome await_job(app& a, outcome_slot<caller_outcome>& slot) {
  // The actor's own deadline answers first; this only guards against a lost actor.
  if (auto outcome = slot.take(a.settings.deadline + std::chrono::seconds{2}))
    return std::move(*outcome);
  return caller_outcome{{},
                        failure{504, "deadline_exceeded", "no answer within the deadline", -1, {}}};
}

// Counts and logs one answered caller on every path, and adds it to its key's usage once the key
// is known; never its texts or its key.
class access_record {
public:
  access_record(app& a, const httplib::Request& req, httplib::Response& res)
      : a_(a), method_(req.method), path_(req.path), res_(&res),
        started_(std::chrono::steady_clock::now()) {
    ++a_.in_flight_http;
  }
  ~access_record() {
    --a_.in_flight_http;
    auto seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    a_.callers.record(provider, res_->status, seconds);
    if (res_->status == 200)
      ++a_.requests_served;
    if (use.key_id != 0) {
      use.requests = 1;
      use.errors += res_->status == 200 ? 0 : 1;
      a_.usage.record(use);
      // After the record: a day's count read meanwhile finds these tokens in the meter.
      if (admitted)
        a_.quotas.settle(*admitted, use.tokens);
    }
    spdlog::info("{} {} {} {:.1f}ms texts={} provider={} request_id={}{}", method_, path_,
                 res_->status, seconds * 1000, texts, provider.empty() ? "-" : provider,
                 res_->get_header_value("X-Request-Id"),
                 upstream.empty() ? "" : " upstream=" + upstream);
  }
  access_record(const access_record&) = delete;
  access_record& operator=(const access_record&) = delete;

  /// The answer goes into `res` instead (one written later, once the request's is gone).
  void answer_into(httplib::Response& res) { res_ = &res; }
  std::size_t texts = 0;
  std::string provider;
  std::string upstream; ///< request ids of the upstream calls that carried this caller
  key_usage_row use;    ///< its key's, once authenticated; errors: failed sub-requests
  std::optional<key_quotas::admission> admitted; ///< what its key's limits counted for it

  /// Counts the request against its key's limits; false, with the refusal sent, past one.
  bool admit(std::int64_t requests, std::int64_t tokens) {
    auto verdict = a_.quotas.admit(use.key_id, requests, tokens);
    if (auto e = std::get_if<api_error>(&verdict)) {
      send_error(*res_, *e);
      return false;
    }
    admitted = std::get<key_quotas::admission>(verdict);
    return true;
  }

  /// Adds an answered (sub-)request's texts, tokens, cache hits and upstream share.
  void count(const caller_outcome& outcome) {
    use.tokens += outcome.unanswered_tokens;
    for (const auto& answer : outcome.answers) {
      std::size_t rows = 0;
      for (const auto& chunk : answer.chunks)
        rows += chunk.rows.size();
      use.texts += static_cast<std::int64_t>(rows);
      use.tokens += answer.tokens;
      use.cache_hits += static_cast<std::int64_t>(answer.cached_texts);
      use.upstream_texts += static_cast<std::int64_t>(rows - answer.cached_texts);
      use.upstream_calls += answer.upstream_calls();
    }
  }

private:
  app& a_;
  std::string method_;
  std::string path_;
  httplib::Response* res_;
  std::chrono::steady_clock::time_point started_;
};

std::string upstream_ids(const caller_outcome& outcome) {
  std::string ids;
  for (const auto& answer : outcome.answers)
    for (const auto& chunk : answer.chunks)
      if (ids.find(chunk.upstream_id) == std::string::npos)
        ids += (ids.empty() ? "" : ",") + chunk.upstream_id;
  return ids;
}

// An authenticated caller's JSON body, or the error already sent; its key goes to `record` as
// soon as it is verified, so that a bad body counts against the key too. The body is read only
// then: a request without a key costs no more than its head.
std::optional<json::value> caller_body(app& a, const httplib::Request& req, httplib::Response& res,
                                       const httplib::ContentReader& read, access_record& record) {
  auto who = a.auth.authenticate(req.get_header_value("Authorization"), req.remote_addr);
  if (auto e = std::get_if<api_error>(&who)) {
    refuse_unread(req, res, *e);
    return std::nullopt;
  }
  record.use.key_id = std::get<cached_key>(who).key_id;
  if (!read_body(req, res, read))
    return std::nullopt;
  auto body = parse_json_body(req.body);
  if (auto e = std::get_if<api_error>(&body)) {
    send_error(res, *e);
    return std::nullopt;
  }
  return std::get<json::value>(std::move(body));
}

// The answer to an embedding request whose job is done: its vectors or its error.
void answer_embedding(app& a, access_record& record, caller_outcome outcome,
                      vector_encoding encoding, routing_policy policy, httplib::Response& res) {
  record.count(outcome);
  if (outcome.error) {
    if (!outcome.error->provider.empty())
      record.provider = outcome.error->provider;
    return send_error(res, from_failure(*outcome.error));
  }
  record.provider = outcome.answers.front().provider;
  record.upstream = upstream_ids(outcome);
  response_budget rendered{a.settings.limits.max_response_bytes};
  if (auto e = rendered.take(vector_bytes(outcome, encoding)))
    return send_error(res, *e);
  send_json(res, 200, render_outcome(outcome, policy, encoding));
}

void embed(app& a, const httplib::Request& req, httplib::Response& res,
           const httplib::ContentReader& read) {
  // Shared: an answer written later takes it along.
  auto record = std::make_shared<access_record>(a, req, res);
  auto id = request_id(req, res);
  auto body = caller_body(a, req, res, read, *record);
  if (!body)
    return;
  response_budget planned{a.settings.limits.max_response_bytes};
  auto p = prepare(a, *body, id, cache_control_use(req.get_header_value("Cache-Control")), planned);
  if (auto e = std::get_if<api_error>(&p))
    return send_error(res, *e);
  auto& job = std::get<prepared_job>(p);
  job.job.tenant = record->use.key_id;
  record->texts = job.job.texts.size();
  record->provider = job.job.routes.front().name;
  if (!record->admit(1, estimated_tokens(job.job)))
    return;
  std::vector<caller_job> jobs;
  jobs.push_back(std::move(job.job));
  auto slot = spawn_jobs(a, std::move(jobs)).front();
  auto later = defer_answer(req);
  if (!later)
    return answer_embedding(a, *record, await_job(a, *slot), job.encoding, job.policy, res);
  // The request actor writes the answer; this thread goes on to other requests. What httplib
  // writes for this one goes nowhere.
  res.status = 200;
  auto write = [&a, record = std::move(record), later, id, encoding = job.encoding,
                policy = job.policy](caller_outcome outcome, bool on_http_thread) mutable {
    httplib::Response answer;
    answer.set_header("X-Request-Id", id);
    record->answer_into(answer);
    try {
      answer_embedding(a, *record, std::move(outcome), encoding, policy, answer);
    } catch (const std::exception& e) {
      // As httplib's exception handler answers on an HTTP thread: the caller still gets an
      // answer, and its connection is not left waiting for one.
      spdlog::error("unhandled error answering request {}: {}", id, e.what());
      send_error(
          answer,
          api_error{500, "internal_error", "internal error; see the server log", {}, {}, -1});
    }
    record.reset(); // counted and logged before the answer's bytes leave with it
    later->send(std::move(answer), on_http_thread);
  };
  slot->then(
      [later, write = std::move(write), encoding = job.encoding](caller_outcome outcome) mutable {
        // A few vectors are written where they arrive. Many would hold a scheduler thread, and
        // every actor queued behind it, for milliseconds (a thousand vectors are 12 MB of JSON):
        // they go to an HTTP thread, which a wake-up costs far less than their rendering.
        constexpr std::size_t rendered_where_they_arrive = 128 * 1024;
        if (vector_bytes(outcome, encoding) <= rendered_where_they_arrive)
          return write(std::move(outcome), false);
        later->elsewhere([write = std::move(write), outcome = std::move(outcome)]() mutable {
          write(std::move(outcome), true);
        });
      });
}

// A failed sub-result after its id: its status, the wait a 429 or 503 carries, and the error.
void append_failed_result(std::string& out, const api_error& e) {
  out += R"("status":)" + std::to_string(e.status) + ",";
  if (auto wait = retry_after(e))
    out += R"("retry_after":)" + std::to_string(*wait) + ",";
  out += render_error(e).substr(1);
}

void embed_batch(app& a, const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader& read) {
  access_record record{a, req, res};
  auto id = request_id(req, res);
  auto body = caller_body(a, req, res, read, record);
  if (!body)
    return;
  auto requests = body->as_object().if_contains("requests");
  if (!requests || !requests->is_array())
    return send_error(
        res, api_error{400, "invalid_request", "'requests' must be an array", "requests", {}, -1});
  auto& list = requests->get_array();
  if (list.empty())
    return send_error(
        res, api_error{400, "invalid_request", "'requests' must not be empty", "requests", {}, -1});
  if (list.size() > a.settings.max_batch_requests)
    return send_error(res, api_error{400,
                                     "invalid_request",
                                     "'requests' holds " + std::to_string(list.size()) +
                                         " sub-requests, over the limit of " +
                                         std::to_string(a.settings.max_batch_requests),
                                     "requests",
                                     {},
                                     -1});
  // Ids and the texts of all sub-requests are checked before any is parsed or sent upstream.
  std::vector<batch_id> ids;
  ids.reserve(list.size());
  std::set<std::string_view> seen;
  std::size_t texts = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto parsed = parse_batch_id(list[i], i);
    if (auto e = std::get_if<api_error>(&parsed))
      return send_error(res, *e);
    auto& sub_id = ids.emplace_back(std::get<batch_id>(std::move(parsed)));
    if (!seen.insert(sub_id.text).second)
      return send_error(res, api_error{400,
                                       "invalid_request",
                                       "id '" + sub_id.text + "' appears twice",
                                       "requests",
                                       {},
                                       -1});
    texts += count_texts(list[i]);
  }
  if (texts > a.settings.limits.max_batch_texts)
    return send_error(res, api_error{413, "payload_too_large",
                                     "the sub-requests hold " + std::to_string(texts) +
                                         " texts in all, over limits.max_batch_texts = " +
                                         std::to_string(a.settings.limits.max_batch_texts),
                                     "requests", "too_many_texts", -1});
  // Every sub-request enters the batchers before any is awaited, so they share upstream calls.
  struct slot {
    std::variant<prepared_job, api_error> prepared;
    caller_slot answer;
  };
  std::vector<slot> slots(list.size());
  std::vector<caller_job> jobs;
  std::vector<std::size_t> job_slots;
  response_budget planned{a.settings.limits.max_response_bytes};
  auto allowed = cache_control_use(req.get_header_value("Cache-Control"));
  for (std::size_t i = 0; i < list.size(); ++i) {
    // The sub-request's id reaches the upstream X-Request-Id only as a token.
    slots[i].prepared = prepare(a, list[i], id + "-" + to_token(ids[i].text), allowed, planned);
    if (auto p = std::get_if<prepared_job>(&slots[i].prepared)) {
      p->job.tenant = record.use.key_id;
      record.texts += p->job.texts.size();
      jobs.push_back(std::move(p->job));
      job_slots.push_back(i);
    }
  }
  std::int64_t estimate = 0;
  for (const auto& job : jobs)
    estimate += estimated_tokens(job);
  if (!jobs.empty() && !record.admit(static_cast<std::int64_t>(jobs.size()), estimate))
    return;
  if (!jobs.empty()) {
    auto answers = spawn_jobs(a, std::move(jobs));
    for (std::size_t j = 0; j < answers.size(); ++j)
      slots[job_slots[j]].answer = std::move(answers[j]);
  }
  response_budget rendered{a.settings.limits.max_response_bytes};
  std::string out = R"({"object":"batch","results":[)";
  for (std::size_t i = 0; i < slots.size(); ++i) {
    auto& s = slots[i];
    if (i != 0)
      out.push_back(',');
    out += R"({"id":)" + json::serialize(ids[i].sent) + ",";
    if (auto e = std::get_if<api_error>(&s.prepared)) {
      append_failed_result(out, *e);
      ++record.use.errors;
      continue;
    }
    auto& p = std::get<prepared_job>(s.prepared);
    auto outcome = await_job(a, *s.answer);
    // A failed sub-request too: what its providers billed counts against the key.
    record.count(outcome);
    if (outcome.error) {
      append_failed_result(out, from_failure(*outcome.error));
      ++record.use.errors;
      continue;
    }
    if (auto e = rendered.take(vector_bytes(outcome, p.encoding))) {
      append_failed_result(out, *e);
      ++record.use.errors;
      continue;
    }
    auto response = render_outcome(outcome, p.policy, p.encoding);
    out += R"("status":200,"response":)";
    out += response;
    out += "}";
    answer_bodies().give_back(std::move(response)); // written into the batch's answer
  }
  out += "]}";
  send_json(res, 200, std::move(out));
}

} // namespace

caller_outcome run_job(app& a, caller_job job) {
  std::vector<caller_job> jobs;
  jobs.push_back(std::move(job));
  return await_job(a, *spawn_jobs(a, std::move(jobs)).front());
}

void install_embedding_routes(route_table& routes, app& a) {
  routes.post("/v1/embeddings",
              [&a](const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& read) { embed(a, req, res, read); });
  routes.post("/v1/embeddings/batch",
              [&a](const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& read) { embed_batch(a, req, res, read); });
}

} // namespace emr
