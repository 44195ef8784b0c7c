#include "actors/upstream.hpp"

#include "providers/fresh_pages.hpp"
#include "providers/http_client.hpp"
#include "providers/matrix_buffers.hpp"

#include <httplib.h>

#include <algorithm>
#include <cstdlib>

namespace emr {

namespace {

// The latest answer's body, its capacity kept for the next call. A worker is detached, so this
// thread is the worker's own for its whole life.
thread_local std::string body;
/// The most a Content-Length makes the worker set aside before the bytes come.
constexpr std::uint64_t most_reserved = 16 << 20;
/// A larger buffer is given back after its call: every worker of every provider keeps one.
constexpr std::size_t most_kept = 1 << 20;

void keep_body_small() {
  if (body.capacity() > most_kept)
    body = std::string{};
}

} // namespace

upstream_state::upstream_state() = default;
upstream_state::~upstream_state() = default;

upstream_reply upstream_state::post(const upstream_call& call) {
  upstream_reply reply;
  if (!client) {
    reply.transport_error = "provider endpoint is not a valid http(s) URL";
    return reply;
  }
  // The HTTP layer makes request ids tokens; a CR or LF here would still end the header block.
  httplib::Headers headers;
  if (call.request_id.find_first_of("\r\n") == std::string::npos)
    headers.emplace("X-Request-Id", call.request_id);
  // Read per call so a rotated key in the environment of a restarted worker takes effect.
  if (auto key = std::getenv(api_key_env.c_str()); key && *key) {
    // A key kept in a secret file often ends in a line break; left in, it would end the header
    // block, and the provider's 400 would be blamed on the callers' texts.
    std::string_view k{key};
    while (!k.empty() &&
           (k.back() == '\n' || k.back() == '\r' || k.back() == ' ' || k.back() == '\t'))
      k.remove_suffix(1);
    if (k.find_first_of("\r\n") != std::string_view::npos) {
      reply.transport_error = "the provider key in " + api_key_env + " holds a line break";
      return reply;
    }
    headers.emplace("Authorization", "Bearer " + std::string{k});
  }
  headers.emplace("Content-Type", "application/json");
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = std::move(headers);
  req.body = call.body;
  // The answer lands in a buffer the worker keeps: sized once from Content-Length, not grown by
  // doubling (a copy of the body each time, and fresh pages for every call's large buffer).
  keep_body_small();
  body.clear();
  req.response_handler = [](const httplib::Response& head) {
    auto announced = head.get_header_value<std::uint64_t>("Content-Length");
    auto needed = static_cast<std::size_t>(std::min<std::uint64_t>(announced, most_reserved));
    if (needed > body.capacity()) {
      body.reserve(needed);
      map_in_for_writing(body.data(), body.capacity());
    }
    return true;
  };
  // An answer longer than its rows can be (a compressed bomb httplib inflates, a stream that
  // never ends) is cut off, and so is one still trickling in once the supervisor has given up on
  // the call: httplib's read timeout bounds each read, not the whole answer.
  auto started = std::chrono::steady_clock::now();
  auto most_bytes = most_answer_bytes(call.rows, call.dims);
  auto give_up_at = started + longest_call;
  bool too_long = false, too_slow = false;
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    too_long = body.size() + n > most_bytes;
    too_slow = std::chrono::steady_clock::now() > give_up_at;
    if (too_long || too_slow)
      return false;
    body.append(data, n);
    return true;
  };
  httplib::Response res;
  auto error = httplib::Error::Success;
  bool answered = client->send(req, res, error);
  reply.latency = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  if (too_long) {
    // Not retried into anyone's vectors: an answer of that size cannot be trusted.
    reply.status = res.status > 0 ? res.status : 200;
    reply.error_message = "its answer ran past " + std::to_string(most_bytes) +
                          " bytes, more than " + std::to_string(call.rows) + " embeddings can take";
    keep_body_small();
    return reply;
  }
  if (too_slow) {
    reply.timed_out = true;
    reply.transport_error = "its answer was still arriving after " +
                            std::to_string(longest_call.count() / 1'000'000) + " s";
    keep_body_small();
    return reply;
  }
  if (!answered) {
    reply.transport_error = httplib::to_string(error);
    reply.timed_out = error == httplib::Error::Read && reply.latency >= read_timeout * 9 / 10;
    return reply;
  }
  reply.status = res.status;
  reply.retry_after = res.get_header_value("Retry-After");
  reply.retry_after_ms = res.get_header_value("retry-after-ms");
  reply.limits = read_rate_limit_headers(res.headers);
  if (res.status >= 200 && res.status < 300) {
    auto decoded = adapter->decode_response(body, {call.rows, call.dims, body.size() / 2});
    if (decoded.matrix)
      reply.matrix = share_matrix(std::move(*decoded.matrix), decoded_matrix_buffers());
    else
      reply.error_message = std::move(decoded.error);
  } else {
    reply.error_message = adapter->error_message(body);
  }
  keep_body_small();
  return reply;
}

upstream_actor::behavior_type upstream_worker(upstream_actor::stateful_pointer<upstream_state> self,
                                              provider_spec spec,
                                              std::shared_ptr<const embedding_provider> adapter,
                                              upstream_settings settings) {
  auto& st = self->state;
  st.adapter = std::move(adapter);
  st.api_key_env = spec.api_key_env;
  st.read_timeout = settings.read_timeout;
  st.longest_call = settings.connect_timeout + 2 * settings.read_timeout;
  if (auto parsed = parse_endpoint(spec.endpoint); parsed.endpoint) {
    st.path = parsed.endpoint->target;
    st.client = make_http_client(*parsed.endpoint);
    // The parser checked the target's encoding; httplib's own would rewrite '+' and ',' in it.
    st.client->set_url_encode(false);
    st.client->set_keep_alive(true);
    st.client->set_connection_timeout(settings.connect_timeout);
    st.client->set_read_timeout(settings.read_timeout);
    st.client->set_write_timeout(settings.read_timeout);
    st.client->set_tcp_nodelay(true);
  }
  return {
      [self](atom::call, const upstream_call& call) { return self->state.post(call); },
      [](atom::ready) {},
  };
}

} // namespace emr
