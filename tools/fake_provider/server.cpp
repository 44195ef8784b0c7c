// The fake provider's routes; see server.hpp.

#include "tools/fake_provider/server.hpp"

#include "tools/fake_provider/embedding_encoding.hpp"
#include "tools/fake_provider/json_fields.hpp"
#include "tools/fake_vectors.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <exception>
#include <string_view>
#include <utility>
#include <vector>

namespace emr::fake {

namespace {

namespace json = boost::json;

void write_json(httplib::Response& res, int status, const json::value& v) {
  res.status = status;
  res.set_content(json::serialize(v), "application/json");
}

// The key an Authorization header carries; empty if none.
std::string bearer_key(const httplib::Request& req) {
  const std::string header = req.get_header_value("Authorization");
  const std::string_view h = header;
  if (h.size() > 7 && (h.starts_with("Bearer ") || h.starts_with("bearer ")))
    return header.substr(7);
  return {};
}

// The window a call counts against: one per (API key, model).
std::string window_key(const std::string& key, const std::string& model) {
  return key + '\x1f' + model;
}

} // namespace

const wire_format& fake_provider::wire_for(route r, const json::value* body) {
  switch (r) {
  case route::voyage:
    return voyage_wire();
  case route::openai:
    return openai_wire();
  case route::cohere_v1:
    return cohere_v1_wire();
  case route::cohere_v2:
    return cohere_v2_wire();
  case route::by_model:
    break;
  }
  const json::object* o = body ? body->if_object() : nullptr;
  const json::value* model = o ? field(*o, "model") : nullptr;
  if (model && model->is_string() &&
      std::string_view(model->get_string()).starts_with("text-embedding-"))
    return openai_wire();
  return voyage_wire(); // voyage-* and anything unknown: Voyage's 400 {"detail"}
}

void fake_provider::handle_embeddings(const httplib::Request& req, httplib::Response& res,
                                      route r) {
  const auto started = std::chrono::steady_clock::now();
  const std::string key = bearer_key(req);
  // Every call waits its turn, whatever it will be answered: a busy provider reads none of them
  // sooner. Only calls holding a turn count as in flight.
  const request_queue::turn turn = queue_.wait_for_turn(key);
  stats_.begin_call();
  json::error_code ec;
  const json::value body = json::parse(req.body, ec);
  const wire_format& wire = wire_for(r, ec ? nullptr : &body);

  embed_job job;
  reply out = serve_embeddings(wire, ec ? nullptr : &body, ec, job, key);
  wire.add_answer_headers(out.headers, limiter_, window_key(key, job.model), started);

  res.status = out.status;
  for (auto& [name, value] : out.headers)
    res.set_header(name.c_str(), value);
  res.set_content(std::move(out.body), out.content_type.c_str());

  std::vector<std::string> header_names;
  for (const auto& header : req.headers)
    header_names.push_back(header.first);
  stats_.record({0, req.path, job.model, job.input_type, static_cast<int>(job.texts.size()),
                 out.status, req.get_header_value("X-Request-Id"), std::move(header_names)},
                out.ok_vectors);
  stats_.end_call();
}

fake_provider::reply fake_provider::serve_embeddings(const wire_format& wire,
                                                     const json::value* body,
                                                     const json::error_code& ec, embed_job& job,
                                                     const std::string& key) {
  if (key.empty() || (!opts_.api_key.empty() && key != opts_.api_key))
    return error_reply(wire, wire.key_error(key));
  if (!body)
    return error_reply(wire, wire.json_error(ec));
  if (!body->is_object())
    return error_reply(wire, wire.json_error(make_error_code(json::error::not_object)));

  // Faults come before validation: they stand for the provider failing, not the request.
  const fault_step step = faults_.next_step(wire.positional_rows());
  stop_.sleep_ms(step.delay_ms);
  if (step.status != 0 && step.status != 200) {
    const json::value* m = field(body->get_object(), "model");
    job.model = m && m->is_string() ? std::string(m->get_string()) : "";
    reply r = error_reply(wire, wire.injected_error(step.status, job.model));
    if (!step.retry_after.empty())
      r.headers.emplace("Retry-After", step.retry_after);
    if (!step.retry_after_ms.empty())
      r.headers.emplace("retry-after-ms", step.retry_after_ms);
    return r;
  }

  if (auto err = wire.validate(body->get_object(), job))
    return error_reply(wire, *err);
  for (std::size_t i = 0; i < job.texts.size(); ++i)
    if (job.texts[i].find(opts_.poison_marker) != std::string::npos)
      return error_reply(wire, wire.poison_error(i, job.model));
  if (auto limited = check_rate_limit(wire, job, key))
    return std::move(*limited);

  stop_.sleep_ms(opts_.latency_ms +
                 static_cast<long>(static_cast<double>(opts_.latency_per_token_us) *
                                   job.total_tokens / 1000.0));
  apply_to_job(step.shape, job);
  reply r;
  r.body = wire.render(job, step.shape);
  r.ok_vectors = step.shape == malformed::none;
  apply_to_answer(step.shape, r.body, r.content_type);
  return r;
}

fake_provider::reply fake_provider::error_reply(const wire_format& wire, const api_error& e) {
  reply r;
  r.status = e.status;
  r.body = wire.error_body(e);
  return r;
}

std::optional<fake_provider::reply> fake_provider::check_rate_limit(const wire_format& wire,
                                                                    const embed_job& job,
                                                                    const std::string& key) {
  const rate_limiter::verdict v = limiter_.admit(window_key(key, job.model), job.total_tokens);
  if (v.allowed)
    return std::nullopt;
  reply r = error_reply(wire, wire.rate_limit_error(v, job.model));
  const int retry_after =
      opts_.retry_after.value_or(std::max(1, static_cast<int>(std::ceil(v.wait_s))));
  if (retry_after >= 0)
    r.headers.emplace("Retry-After", std::to_string(retry_after));
  return r;
}

void fake_provider::handle_faults(const httplib::Request& req, httplib::Response& res) {
  try {
    faults_.replace(parse_fault_plan(json::parse(req.body)));
    write_json(res, 200, {{"ok", true}});
  } catch (const std::exception& e) {
    write_json(res, 400, {{"error", e.what()}});
  }
}

void fake_provider::handle_reset(httplib::Response& res) {
  faults_.reset();
  stats_.reset();
  limiter_.reset();
  queue_.reset_peak();
  write_json(res, 200, {{"ok", true}});
}

void fake_provider::handle_stats(httplib::Response& res) {
  json::value stats = stats_.to_json();
  const request_queue::counts queued = queue_.queue_counts();
  stats.as_object()["waiting"] = queued.waiting;
  stats.as_object()["peak_waiting"] = queued.peak_waiting;
  write_json(res, 200, stats);
}

void fake_provider::handle_vectors(const httplib::Request& req, httplib::Response& res) {
  json::error_code ec;
  const json::value body = json::parse(req.body, ec);
  const json::object* o = ec ? nullptr : body.if_object();
  const json::value* model = o ? field(*o, "model") : nullptr;
  const json::value* texts = o ? field(*o, "texts") : nullptr;
  if (!model || !model->is_string() || !texts || !texts->is_array())
    return write_json(res, 400, {{"error", "expected {model, input_type, texts, dimensions}"}});
  const json::value* type = field(*o, "input_type");
  const json::value* dims_field = field(*o, "dimensions");
  const auto dims = dims_field ? as_integer(*dims_field)
                               : std::optional<std::int64_t>(default_dims(model->get_string()));
  if (!dims || *dims <= 0)
    return write_json(res, 400, {{"error", "unknown model and no dimensions given"}});
  const std::string input_type = type && type->is_string() ? std::string(type->get_string()) : "";

  std::string out = R"({"vectors":[)";
  for (std::size_t i = 0; i < texts->get_array().size(); ++i) {
    const json::value& t = texts->get_array()[i];
    if (!t.is_string())
      return write_json(res, 400, {{"error", "texts must be strings"}});
    if (i)
      out += ',';
    append_float_array(
        out, fake_vector(model->get_string(), input_type, t.get_string(), static_cast<int>(*dims)));
  }
  out += "]}";
  res.set_content(std::move(out), "application/json");
}

void fake_provider::install(http_server& svr) {
  const std::pair<const char*, route> embedding_routes[] = {
      {"/v1/embeddings", route::by_model},      {"/voyage/v1/embeddings", route::voyage},
      {"/openai/v1/embeddings", route::openai}, {"/v1/embed", route::cohere_v1},
      {"/v2/embed", route::cohere_v2},          {"/cohere/v1/embed", route::cohere_v1},
      {"/cohere/v2/embed", route::cohere_v2}};
  for (const auto& [path, r] : embedding_routes) {
    const route which = r;
    svr.Post(path, [this, which](const httplib::Request& req, httplib::Response& res) {
      handle_embeddings(req, res, which);
    });
  }
  svr.Post("/_faults", [this](const httplib::Request& req, httplib::Response& res) {
    handle_faults(req, res);
  });
  svr.Post("/_reset",
           [this](const httplib::Request&, httplib::Response& res) { handle_reset(res); });
  svr.Get("/_stats",
          [this](const httplib::Request&, httplib::Response& res) { handle_stats(res); });
  svr.Post("/_vectors", [this](const httplib::Request& req, httplib::Response& res) {
    handle_vectors(req, res);
  });
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          if (ep)
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        write_json(res, 500, {{"error", "fake_provider internal error: " + what}});
      });
}

} // namespace emr::fake
