// Fuzzes a caller's body for POST /v1/embeddings and the sub-requests (and ids) of
// /v1/embeddings/batch, and the error each refusal renders: whatever the bytes, the caller gets
// valid JSON back.

#include "http/embed_request.hpp"

#include <boost/json.hpp>

#include <cstdlib>

namespace json = boost::json;

namespace {

void expect_valid_json(const std::string& text) {
  json::error_code ec;
  json::parse(text, ec);
  if (ec)
    std::abort();
}

void parse_one(const json::value& body) {
  // Small limits so the fuzzer's short inputs reach the limit checks too.
  emr::request_limits limits{.max_texts = 4, .max_text_bytes = 64};
  auto parsed = emr::parse_embed_request(body, limits);
  if (auto e = std::get_if<emr::api_error>(&parsed))
    return expect_valid_json(emr::render_error(*e));
  auto& request = std::get<emr::embed_request>(parsed);
  if (request.texts.empty() || request.texts.size() > limits.max_texts)
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto body = emr::parse_json_body({reinterpret_cast<const char*>(data), size});
  if (auto e = std::get_if<emr::api_error>(&body)) {
    expect_valid_json(emr::render_error(*e));
    return 0;
  }
  auto& value = std::get<json::value>(body);
  parse_one(value);
  if (auto requests = value.as_object().if_contains("requests"); requests && requests->is_array())
    for (std::size_t i = 0; i < requests->get_array().size(); ++i) {
      const auto& item = requests->get_array()[i];
      auto id = emr::parse_batch_id(item, i);
      if (auto e = std::get_if<emr::api_error>(&id))
        expect_valid_json(emr::render_error(*e));
      emr::count_texts(item);
      parse_one(item);
    }
  return 0;
}
