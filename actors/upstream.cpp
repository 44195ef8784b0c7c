#include "actors/upstream.hpp"

#include "providers/http_client.hpp"

#include <httplib.h>

#include <cstdlib>

namespace emr {

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
  if (auto key = std::getenv(api_key_env.c_str()); key && *key)
    headers.emplace("Authorization", std::string{"Bearer "} + key);
  auto started = std::chrono::steady_clock::now();
  auto res = client->Post(path, headers, call.body, "application/json");
  reply.latency = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  if (!res) {
    reply.transport_error = httplib::to_string(res.error());
    reply.timed_out = res.error() == httplib::Error::Read && reply.latency >= read_timeout * 9 / 10;
    return reply;
  }
  reply.status = res->status;
  reply.retry_after = res->get_header_value("Retry-After");
  reply.retry_after_ms = res->get_header_value("retry-after-ms");
  if (res->status >= 200 && res->status < 300) {
    auto decoded = adapter->decode_response(res->body, {call.rows, call.dims});
    if (decoded.matrix)
      reply.matrix = std::make_shared<const embedding_matrix>(std::move(*decoded.matrix));
    else
      reply.error_message = std::move(decoded.error);
  } else {
    reply.error_message = adapter->error_message(res->body);
  }
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
