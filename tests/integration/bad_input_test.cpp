// The bad-input battery: every public and admin endpoint fed malformed, mistyped, oversized,
// unauthenticated and mis-framed requests. Each must get its exact status and JSON error type,
// and a normal caller must still get verified vectors right after it.

#include "tests/integration/harness.hpp"
#include "tools/load_client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace json = boost::json;
using namespace emr::testing;

namespace {

// Small limits make the over-limit requests cheap; the short read timeout bounds what the
// truncated body costs (it is answered only once the server stops waiting for the rest).
constexpr const char* small_limits = R"(read_timeout_s = 1
[limits]
max_text_bytes = 64
max_texts_per_request = 4
max_body_bytes = 4096
max_batch_requests = 3
max_batch_texts = 6
max_response_bytes = 20000
)";

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One row of the battery: a request as it goes on the wire, and the answer it must get.
struct bad_input {
  std::string name;
  std::string request;
  int status;
  std::string type;       ///< error.type
  std::string param = {}; ///< error.param, when the error names a field
  std::string allow = {}; ///< the Allow header of a 405
};

// A request line, Host and `headers` as given, then `body`: nothing is added or fixed up.
std::string wire(const std::string& method, const std::string& target, const header_list& headers,
                 const std::string& body = {}) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers)
    out += name + ": " + value + "\r\n";
  return out + "\r\n" + body;
}

// A well-framed request: its Content-Length, a JSON content type when it has a body (unless
// `extra` names another), `authorization` unless empty, and `extra`.
std::string json_request(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& authorization,
                         header_list extra = {}) {
  header_list headers{{"Content-Length", std::to_string(body.size())}};
  bool typed = std::any_of(extra.begin(), extra.end(),
                           [](const auto& h) { return h.first == "Content-Type"; });
  if (!body.empty() && !typed)
    headers.emplace_back("Content-Type", "application/json");
  if (!authorization.empty())
    headers.emplace_back("Authorization", authorization);
  headers.insert(headers.end(), extra.begin(), extra.end());
  return wire(method, path, headers, body);
}

std::string nested_arrays(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

struct BadInput : voyage_stack {
  std::string revoked_key;

  BadInput() : voyage_stack(small_limits) {}

  void SetUp() override {
    voyage_stack::SetUp();
    auto revoked = emr.admin("POST", "/admin/keys", R"({"name":"revoked"})").json();
    revoked_key = std::string{revoked.at("key").as_string()};
    ASSERT_EQ(
        emr.admin("DELETE", "/admin/keys/" + std::to_string(revoked.at("id").as_int64())).status,
        200);
  }

  std::string caller() const { return "Bearer " + key; }
  static std::string admin() {
    // Appended, not `std::string + const char*`: GCC 12 at -O2 warns falsely (-Warray-bounds) on
    // that inlined into a braced list.
    std::string header = "Bearer ";
    header += admin_secret;
    return header;
  }

  std::string embed(const std::string& body, header_list extra = {}) const {
    return json_request("POST", "/v1/embeddings", body, caller(), std::move(extra));
  }
  std::string embed_as(const std::string& authorization) const {
    return json_request("POST", "/v1/embeddings", R"({"input":"x","provider":"voyage"})",
                        authorization);
  }
  std::string batch(const std::string& body) const {
    return json_request("POST", "/v1/embeddings/batch", body, caller());
  }
  static std::string admin_call(const std::string& method, const std::string& path,
                                const std::string& body = {}) {
    return json_request(method, path, body, admin());
  }

  std::vector<bad_input> embeddings_rows() const {
    return {
        // Bodies that are not the JSON object asked for.
        {"truncated JSON", embed(R"({"input": ["a",)"), 400, "invalid_request"},
        {"JSON cut inside a string", embed(R"({"input":"hel)"), 400, "invalid_request"},
        {"empty body", embed(""), 400, "invalid_request"},
        {"whitespace-only body", embed(" \t\r\n "), 400, "invalid_request"},
        {"body is an array", embed(R"(["hello"])"), 400, "invalid_request"},
        {"body is a string", embed(R"("hello")"), 400, "invalid_request"},
        {"data after the object", embed(R"({"input":"a","provider":"voyage"} {})"), 400,
         "invalid_request"},
        {"JSON nested deeper than 32", embed(nested_arrays(40)), 400, "invalid_request"},
        {"invalid UTF-8 in a text", embed("{\"input\":\"caf\xc3\x28\",\"provider\":\"voyage\"}"),
         400, "invalid_request"},
        {"lone surrogate escape", embed(R"({"input":"\ud800","provider":"voyage"})"), 400,
         "invalid_request"},
        {"raw NUL byte in the body",
         embed(R"({"input":"a)" + std::string(1, '\0') + R"(b","provider":"voyage"})"), 400,
         "invalid_request"},
        // input.
        {"input missing", embed(R"({"provider":"voyage"})"), 400, "invalid_request", "input"},
        {"input null", embed(R"({"input":null,"provider":"voyage"})"), 400, "invalid_request",
         "input"},
        {"input a number", embed(R"({"input":42,"provider":"voyage"})"), 400, "invalid_request",
         "input"},
        {"input an object", embed(R"({"input":{"text":"a"},"provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"input a boolean", embed(R"({"input":true,"provider":"voyage"})"), 400, "invalid_request",
         "input"},
        {"input an empty list", embed(R"({"input":[],"provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"input an empty string", embed(R"({"input":"","provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"input whitespace only", embed(R"({"input":" \t\n ","provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"a blank text among good ones", embed(R"({"input":["ok","   "],"provider":"voyage"})"),
         400, "invalid_request", "input"},
        {"a number among the texts", embed(R"({"input":["a",3.5],"provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"a null among the texts", embed(R"({"input":["a",null],"provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"token ids", embed(R"({"input":[1,2,3],"provider":"voyage"})"), 400, "invalid_request",
         "input"},
        {"lists of token ids", embed(R"({"input":[[1,2,3]],"provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"arrays nested within the depth limit",
         embed(R"({"provider":"voyage","input":)" + nested_arrays(30) + "}"), 400,
         "invalid_request", "input"},
        {"huge number among the texts", embed(R"({"input":[1e999],"provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"escaped NUL in a text", embed(R"({"input":"a\u0000b","provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"a text over max_text_bytes",
         embed(R"({"input":")" + std::string(65, 'x') + R"(","provider":"voyage"})"), 400,
         "invalid_request", "input"},
        {"more texts than max_texts_per_request",
         embed(R"({"input":["a","b","c","d","e"],"provider":"voyage"})"), 400, "invalid_request",
         "input"},
        // Routing fields: wrong types and values.
        {"provider a number", embed(R"({"input":"x","provider":42})"), 400, "invalid_request",
         "provider"},
        {"provider empty", embed(R"({"input":"x","provider":""})"), 400, "invalid_request",
         "provider"},
        {"unknown provider", embed(R"({"input":"x","provider":"nope"})"), 400, "invalid_request",
         "provider"},
        {"providers a string", embed(R"({"input":"x","providers":"voyage"})"), 400,
         "invalid_request", "providers"},
        {"providers empty", embed(R"({"input":"x","providers":[]})"), 400, "invalid_request",
         "providers"},
        {"providers holding a number", embed(R"({"input":"x","providers":[1]})"), 400,
         "invalid_request", "providers"},
        {"providers twice the same", embed(R"({"input":"x","providers":["voyage","voyage"]})"), 400,
         "invalid_request", "providers"},
        {"providers naming an unknown one", embed(R"({"input":"x","providers":["voyage","nope"]})"),
         400, "invalid_request", "provider"},
        {"both provider and providers",
         embed(R"({"input":"x","provider":"voyage","providers":["voyage"]})"), 400,
         "invalid_request", "provider"},
        {"no provider, providers or model", embed(R"({"input":"x"})"), 400, "invalid_request",
         "provider"},
        {"model an array", embed(R"({"input":"x","model":["voyage"]})"), 400, "invalid_request",
         "model"},
        {"model disagreeing with provider",
         embed(R"({"input":"x","provider":"voyage","model":"voyage-3-large"})"), 400,
         "invalid_request", "model"},
        {"policy a number", embed(R"({"input":"x","provider":"voyage","policy":1})"), 400,
         "invalid_request", "policy"},
        {"policy unknown", embed(R"({"input":"x","providers":["voyage"],"policy":"some"})"), 400,
         "invalid_request", "policy"},
        {"input_type a boolean", embed(R"({"input":"x","provider":"voyage","input_type":true})"),
         400, "invalid_request", "input_type"},
        {"input_type unknown", embed(R"({"input":"x","provider":"voyage","input_type":"passage"})"),
         400, "invalid_request", "input_type"},
        {"encoding_format a number",
         embed(R"({"input":"x","provider":"voyage","encoding_format":1})"), 400, "invalid_request",
         "encoding_format"},
        {"encoding_format unknown",
         embed(R"({"input":"x","provider":"voyage","encoding_format":"int8"})"), 400,
         "invalid_request", "encoding_format"},
        {"dimensions a string", embed(R"({"input":"x","provider":"voyage","dimensions":"256"})"),
         400, "invalid_request", "dimensions"},
        {"dimensions a fraction", embed(R"({"input":"x","provider":"voyage","dimensions":256.5})"),
         400, "invalid_request", "dimensions"},
        {"dimensions zero", embed(R"({"input":"x","provider":"voyage","dimensions":0})"), 400,
         "invalid_request", "dimensions"},
        {"dimensions negative", embed(R"({"input":"x","provider":"voyage","dimensions":-3})"), 400,
         "invalid_request", "dimensions"},
        {"dimensions past uint64",
         embed(R"({"input":"x","provider":"voyage","dimensions":99999999999999999999999})"), 400,
         "invalid_request", "dimensions"},
        {"dimensions past double", embed(R"({"input":"x","provider":"voyage","dimensions":1e400})"),
         400, "invalid_request", "dimensions"},
        {"dimensions the model cannot make",
         embed(R"({"input":"x","provider":"voyage","dimensions":777})"), 400, "invalid_request",
         "dimensions"},
        {"user an object", embed(R"({"input":"x","provider":"voyage","user":{}})"), 400,
         "invalid_request", "user"},
        {"id an object", embed(R"({"input":"x","provider":"voyage","id":{}})"), 400,
         "invalid_request", "id"},
        {"id a fraction", embed(R"({"input":"x","provider":"voyage","id":1.5})"), 400,
         "invalid_request", "id"},
        {"input_type image", embed(R"({"input":"x","provider":"voyage","input_type":"image"})"),
         400, "invalid_request", "input_type"},
        {"an answer over max_response_bytes",
         embed(R"({"input":"x","provider":"voyage","dimensions":2048})"), 413, "payload_too_large",
         "input"},
        // Size, content type and method.
        {"body over max_body_bytes",
         embed(R"({"input":")" + std::string(5000, 'x') + R"(","provider":"voyage"})"), 413,
         "payload_too_large"},
        {"text/plain body",
         embed(R"({"input":"x","provider":"voyage"})", {{"Content-Type", "text/plain"}}), 415,
         "unsupported_media_type"},
        {"form-encoded body",
         embed(R"({"input":"x","provider":"voyage"})",
               {{"Content-Type", "application/x-www-form-urlencoded"}}),
         415, "unsupported_media_type"},
        {"multipart form body",
         embed(R"({"input":"x","provider":"voyage"})",
               {{"Content-Type", "multipart/form-data; boundary=b"}}),
         415, "unsupported_media_type"},
        {"multipart form with an empty body",
         json_request("POST", "/v1/embeddings", "", caller(),
                      {{"Content-Type", "multipart/form-data; boundary=b"}}),
         415, "unsupported_media_type"},
        {"application/jsonp body",
         embed(R"({"input":"x","provider":"voyage"})", {{"Content-Type", "application/jsonp"}}),
         415, "unsupported_media_type"},
        {"GET /v1/embeddings", wire("GET", "/v1/embeddings", {{"Authorization", caller()}}), 405,
         "method_not_allowed", "", "POST"},
        {"DELETE /v1/embeddings", wire("DELETE", "/v1/embeddings", {{"Authorization", caller()}}),
         405, "method_not_allowed", "", "POST"},
    };
  }

  std::vector<bad_input> auth_rows() const {
    auto secret_start = key.rfind('_') + 1;
    auto wrong_secret = key;
    wrong_secret.back() = wrong_secret.back() == 'A' ? 'B' : 'A';
    return {
        {"no Authorization", embed_as(""), 401, "authentication_error"},
        {"Basic credentials", embed_as("Basic dXNlcjpwYXNz"), 401, "authentication_error"},
        {"the key without Bearer", embed_as(key), 401, "authentication_error"},
        {"Token scheme", embed_as("Token " + key), 401, "authentication_error"},
        {"Bearer without a key", embed_as("Bearer"), 401, "authentication_error"},
        {"Bearer and spaces", embed_as("Bearer    "), 401, "authentication_error"},
        {"not an emr key", embed_as("Bearer sk-not-an-emr-key"), 401, "authentication_error"},
        {"key cut short", embed_as("Bearer " + key.substr(0, secret_start + 10)), 401,
         "authentication_error"},
        {"right shape, unknown key",
         embed_as("Bearer emr_AAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"), 401,
         "authentication_error"},
        {"right key id, wrong secret", embed_as("Bearer " + wrong_secret), 401,
         "authentication_error"},
        {"revoked key", embed_as("Bearer " + revoked_key), 401, "authentication_error"},
        {"NUL inside the key",
         embed_as("Bearer " + key.substr(0, 30) + std::string{"\0", 1} + key.substr(31)), 401,
         "authentication_error"},
        {"the admin secret as a caller key", embed_as(admin()), 401, "authentication_error"},
        {"caller key on the admin API", json_request("GET", "/admin/keys", "", caller()), 401,
         "authentication_error"},
        {"admin API without Authorization", json_request("GET", "/admin/stats", "", ""), 401,
         "authentication_error"},
        {"admin API with the wrong secret",
         json_request("GET", "/admin/config", "", "Bearer not-the-secret"), 401,
         "authentication_error"},
        {"admin secret without Bearer", json_request("GET", "/admin/providers", "", admin_secret),
         401, "authentication_error"},
        {"batch without Authorization",
         json_request("POST", "/v1/embeddings/batch", R"({"requests":[]})", ""), 401,
         "authentication_error"},
    };
  }

  std::vector<bad_input> batch_rows() const {
    return {
        {"batch: truncated JSON", batch(R"({"requests":[{"id":"a",)"), 400, "invalid_request"},
        {"batch: body is an array", batch(R"([{"id":"a","input":"x","provider":"voyage"}])"), 400,
         "invalid_request"},
        {"batch: requests missing", batch(R"({"input":"x","provider":"voyage"})"), 400,
         "invalid_request", "requests"},
        {"batch: requests an object", batch(R"({"requests":{"id":"a"}})"), 400, "invalid_request",
         "requests"},
        {"batch: requests empty", batch(R"({"requests":[]})"), 400, "invalid_request", "requests"},
        {"batch: more than max_batch_requests",
         batch(
             R"({"requests":[{"id":"a","input":"x","provider":"voyage"},{"id":"b","input":"x","provider":"voyage"},)"
             R"({"id":"c","input":"x","provider":"voyage"},{"id":"d","input":"x","provider":"voyage"}]})"),
         400, "invalid_request", "requests"},
        {"batch: a sub-request that is a string", batch(R"({"requests":["x"]})"), 400,
         "invalid_request", "requests"},
        {"batch: a sub-request without id",
         batch(R"({"requests":[{"input":"x","provider":"voyage"}]})"), 400, "invalid_request",
         "requests"},
        {"batch: a fractional id",
         batch(R"({"requests":[{"id":1.5,"input":"x","provider":"voyage"}]})"), 400,
         "invalid_request", "requests"},
        {"batch: an empty id", batch(R"({"requests":[{"id":"","input":"x","provider":"voyage"}]})"),
         400, "invalid_request", "requests"},
        {"batch: the same id as a number and a string",
         batch(
             R"({"requests":[{"id":1,"input":"x","provider":"voyage"},{"id":"1","input":"y","provider":"voyage"}]})"),
         400, "invalid_request", "requests"},
        {"batch: more texts in all than max_batch_texts",
         batch(
             R"({"requests":[{"id":"a","input":["1","2","3","4"],"provider":"voyage"},{"id":"b","input":["5","6","7"],"provider":"voyage"}]})"),
         413, "payload_too_large", "requests"},
        {"batch: the same id twice",
         batch(
             R"({"requests":[{"id":"a","input":"x","provider":"voyage"},{"id":"a","input":"y","provider":"voyage"}]})"),
         400, "invalid_request", "requests"},
        {"batch: body over max_body_bytes",
         batch(R"({"requests":[{"id":"a","input":")" + std::string(5000, 'x') +
               R"(","provider":"voyage"}]})"),
         413, "payload_too_large"},
        {"GET /v1/embeddings/batch", wire("GET", "/v1/embeddings/batch", {}), 405,
         "method_not_allowed", "", "POST"},
    };
  }

  std::vector<bad_input> admin_rows() const {
    // A valid provider but for the one field each row spoils (`value` is JSON text, sent as is);
    // none may be registered.
    auto provider = [](const std::string& field, const std::string& value) {
      json::object o{{"name", "spoiled"},
                     {"type", "voyage"},
                     {"endpoint", "http://127.0.0.1:9/v1/embeddings"},
                     {"model", "voyage-3.5"},
                     {"api_key_env", provider_key_env}};
      o.erase(field);
      auto body = json::serialize(o);
      body.insert(body.size() - 1, ",\"" + field + "\":" + value);
      return admin_call("POST", "/admin/providers", body);
    };
    return {
        {"keys: truncated JSON", admin_call("POST", "/admin/keys", R"({"name":)"), 400,
         "invalid_request"},
        {"keys: body is an array", admin_call("POST", "/admin/keys", R"(["name"])"), 400,
         "invalid_request"},
        {"keys: JSON nested deeper than 32", admin_call("POST", "/admin/keys", nested_arrays(40)),
         400, "invalid_request"},
        {"keys: name missing", admin_call("POST", "/admin/keys", "{}"), 400, "invalid_request",
         "name"},
        {"keys: name a number", admin_call("POST", "/admin/keys", R"({"name":7})"), 400,
         "invalid_request", "name"},
        {"keys: name empty", admin_call("POST", "/admin/keys", R"({"name":""})"), 400,
         "invalid_request", "name"},
        {"keys: name over 128 characters",
         admin_call("POST", "/admin/keys", R"({"name":")" + std::string(129, 'n') + R"("})"), 400,
         "invalid_request", "name"},
        {"keys: NUL in the name", admin_call("POST", "/admin/keys", R"({"name":"a\u0000b"})"), 400,
         "invalid_request", "name"},
        {"keys: newline in the name",
         admin_call("POST", "/admin/keys", R"({"name":"a\nfake log line"})"), 400,
         "invalid_request", "name"},
        {"keys: a blank name", admin_call("POST", "/admin/keys", R"({"name":"   "})"), 400,
         "invalid_request", "name"},
        {"keys: a C1 control in the name",
         admin_call("POST", "/admin/keys", R"({"name":"x\u0085y"})"), 400, "invalid_request",
         "name"},
        {"keys: invalid UTF-8 in the name",
         admin_call("POST", "/admin/keys", "{\"name\":\"\xff\"}"), 400, "invalid_request"},
        {"keys: a misspelt limit on create",
         admin_call("POST", "/admin/keys", R"({"name":"typo","request_per_minute":5})"), 400,
         "invalid_request", "request_per_minute"},
        {"keys: patch a misspelt limit",
         admin_call("PATCH", "/admin/keys/1", R"({"request_per_minute":5})"), 400,
         "invalid_request", "request_per_minute"},
        {"keys: patch the name", admin_call("PATCH", "/admin/keys/1", R"({"name":"renamed"})"), 400,
         "invalid_request", "name"},
        {"keys: patch nothing", admin_call("PATCH", "/admin/keys/1", "{}"), 400, "invalid_request"},
        {"keys: text/plain body",
         json_request("POST", "/admin/keys", R"({"name":"x"})", admin(),
                      {{"Content-Type", "text/plain"}}),
         415, "unsupported_media_type"},
        {"keys: body over max_body_bytes",
         admin_call("POST", "/admin/keys", R"({"name":")" + std::string(5000, 'n') + R"("})"), 413,
         "payload_too_large"},
        {"keys: id not a number", admin_call("DELETE", "/admin/keys/abc"), 404, "not_found"},
        {"keys: id past int64", admin_call("DELETE", "/admin/keys/99999999999999999999999"), 404,
         "not_found"},
        {"keys: negative id", admin_call("DELETE", "/admin/keys/-1"), 404, "not_found"},
        {"keys: rotate a non-number", admin_call("POST", "/admin/keys/1x/rotate"), 404,
         "not_found"},
        {"keys: PUT", admin_call("PUT", "/admin/keys", R"({"name":"x"})"), 405,
         "method_not_allowed", "", "GET, HEAD, POST"},
        {"providers: type a number", provider("type", "5"), 400, "invalid_request", "type"},
        {"providers: unknown type", provider("type", R"("mistral")"), 400, "invalid_request",
         "type"},
        {"providers: name an object", provider("name", "{}"), 400, "invalid_request", "name"},
        {"providers: name with a slash", provider("name", R"("a/b")"), 400, "invalid_request",
         "name"},
        {"providers: NUL in the name", provider("name", R"("n\u0000ul")"), 400, "invalid_request",
         "name"},
        {"providers: endpoint a list", provider("endpoint", "[]"), 400, "invalid_request",
         "endpoint"},
        {"providers: endpoint not a URL", provider("endpoint", R"("ftp://example.com/embed")"), 400,
         "invalid_request", "endpoint"},
        {"providers: endpoint with a password",
         provider("endpoint", R"("http://user:pw@127.0.0.1:9/v1/embeddings")"), 400,
         "invalid_request", "endpoint"},
        {"providers: endpoint with a fragment",
         provider("endpoint", R"("http://127.0.0.1:9/v1/embeddings#x")"), 400, "invalid_request",
         "endpoint"},
        {"providers: endpoint port past 65535",
         provider("endpoint", R"("http://127.0.0.1:99999/v1/embeddings")"), 400, "invalid_request",
         "endpoint"},
        {"providers: endpoint without a host", provider("endpoint", R"("http:///v1/embeddings")"),
         400, "invalid_request", "endpoint"},
        {"providers: endpoint with a space",
         provider("endpoint", R"("http://127.0.0.1:9/v1/embed dings")"), 400, "invalid_request",
         "endpoint"},
        {"providers: endpoint with CR LF",
         provider("endpoint", R"("http://127.0.0.1:9/v1\r\nX-Injected: 1")"), 400,
         "invalid_request", "endpoint"},
        {"providers: endpoint with a control character",
         provider("endpoint", R"("http://127.0.0.1:9/v1\u0001")"), 400, "invalid_request",
         "endpoint"},
        {"providers: endpoint with a key in its query",
         provider("endpoint", R"("http://127.0.0.1:9/v1?api_key=sk-1")"), 400, "invalid_request",
         "endpoint"},
        {"providers: patch endpoint with a password",
         admin_call("PATCH", "/admin/providers/voyage",
                    R"({"endpoint":"http://user:pw@127.0.0.1:9/v1/embeddings"})"),
         400, "invalid_request", "endpoint"},
        {"providers: model null", provider("model", "null"), 400, "invalid_request", "model"},
        {"providers: api_key_env with a space", provider("api_key_env", R"("MY KEY")"), 400,
         "invalid_request", "api_key_env"},
        {"providers: max_batch a string", provider("max_batch", R"("64")"), 400, "invalid_request",
         "max_batch"},
        {"providers: max_batch past double", provider("max_batch", "1e400"), 400, "invalid_request",
         "max_batch"},
        {"providers: max_batch over the type's maximum", provider("max_batch", "5000"), 400,
         "invalid_request", "max_batch"},
        {"providers: enabled a string", provider("enabled", R"("yes")"), 400, "invalid_request",
         "enabled"},
        {"providers: patch enabled a string",
         admin_call("PATCH", "/admin/providers/voyage", R"({"enabled":"no"})"), 400,
         "invalid_request", "enabled"},
        {"providers: requests_per_minute negative", provider("requests_per_minute", "-1"), 400,
         "invalid_request", "requests_per_minute"},
        {"providers: tokens_per_minute a string", provider("tokens_per_minute", R"("1000")"), 400,
         "invalid_request", "tokens_per_minute"},
        {"providers: patch requests_per_minute past its bound",
         admin_call("PATCH", "/admin/providers/voyage", R"({"requests_per_minute":10000001})"), 400,
         "invalid_request", "requests_per_minute"},
        {"providers: patch tokens_per_minute a fraction",
         admin_call("PATCH", "/admin/providers/voyage", R"({"tokens_per_minute":0.5})"), 400,
         "invalid_request", "tokens_per_minute"},
        {"providers: patch max_batch zero",
         admin_call("PATCH", "/admin/providers/voyage", R"({"max_batch":0})"), 400,
         "invalid_request", "max_batch"},
        {"providers: a misspelt field on create", provider("max_batches", "64"), 400,
         "invalid_request", "max_batches"},
        {"providers: patch the name",
         admin_call("PATCH", "/admin/providers/voyage", R"({"name":"other"})"), 400,
         "invalid_request", "name"},
        {"providers: patch the type",
         admin_call("PATCH", "/admin/providers/voyage", R"({"type":"cohere"})"), 400,
         "invalid_request", "type"},
        {"providers: patch a misspelt field",
         admin_call("PATCH", "/admin/providers/voyage", R"({"max_batches":64})"), 400,
         "invalid_request", "max_batches"},
        {"providers: patch nothing", admin_call("PATCH", "/admin/providers/voyage", "{}"), 400,
         "invalid_request"},
        {"providers: patch with an array body",
         admin_call("PATCH", "/admin/providers/voyage", "[]"), 400, "invalid_request"},
        {"providers: patch an unknown one",
         admin_call("PATCH", "/admin/providers/nope", R"({"enabled":true})"), 404, "not_found"},
        {"providers: test an unknown one", admin_call("POST", "/admin/providers/nope/test"), 404,
         "not_found"},
        {"providers: invalid UTF-8 in the path", admin_call("DELETE", "/admin/providers/%FF%FE"),
         404, "not_found"},
        {"providers: GET one", admin_call("GET", "/admin/providers/voyage"), 405,
         "method_not_allowed", "", "DELETE, PATCH"},
        {"stats: DELETE", admin_call("DELETE", "/admin/stats"), 405, "method_not_allowed", "",
         "GET, HEAD"},
        {"config: POST", admin_call("POST", "/admin/config", "{}"), 405, "method_not_allowed", "",
         "GET, HEAD"},
        {"admin root", admin_call("GET", "/admin"), 404, "not_found"},
    };
  }

  std::vector<bad_input> path_and_method_rows() const {
    return {
        {"unknown path",
         json_request("POST", "/v1/embedding", R"({"input":"x","provider":"voyage"})", caller()),
         404, "not_found"},
        {"trailing slash", wire("GET", "/health/", {}), 404, "not_found"},
        {"dot-dot segment", wire("GET", "/v1/../health", {}), 404, "not_found"},
        {"percent-encoded dot-dot", wire("GET", "/v1/%2e%2e/health", {}), 404, "not_found"},
        {"dot-dot past the root", wire("GET", "/../../etc/passwd", {}), 404, "not_found"},
        {"encoded slashes in a key id", admin_call("DELETE", "/admin/keys/..%2F..%2Fhealth"), 404,
         "not_found"},
        {"dot-dot as a provider name", admin_call("POST", "/admin/providers/%2e%2e/test"), 404,
         "not_found"},
        {"dot-dot before a provider name", admin_call("DELETE", "/admin/providers/..%2Fvoyage"),
         404, "not_found"},
        {"rotate with a trailing dot-dot", admin_call("POST", "/admin/keys/1/rotate/.."), 404,
         "not_found"},
        {"encoded NUL in the path", wire("GET", "/hea%00lth", {}), 404, "not_found"},
        {"raw NUL in the request line", wire("GET", std::string{"/hea\0lth", 8}, {}), 400,
         "invalid_request"},
        {"path over 8 KiB", wire("GET", "/" + std::string(9000, 'a'), {}), 414, "uri_too_long"},
        {"POST /health", json_request("POST", "/health", "", ""), 405, "method_not_allowed", "",
         "GET, HEAD"},
        {"DELETE /health/providers", wire("DELETE", "/health/providers", {}), 405,
         "method_not_allowed", "", "GET, HEAD"},
        {"PATCH /status", json_request("PATCH", "/status", "{}", ""), 405, "method_not_allowed", "",
         "GET, HEAD"},
        {"POST /metrics", json_request("POST", "/metrics", "", ""), 405, "method_not_allowed", "",
         "GET, HEAD"},
        {"OPTIONS /v1/embeddings", wire("OPTIONS", "/v1/embeddings", {}), 405, "method_not_allowed",
         "", "POST"},
        {"TRACE /health", wire("TRACE", "/health", {}), 501, "not_implemented"},
        {"BREW /v1/embeddings", wire("BREW", "/v1/embeddings", {{"Authorization", caller()}}), 501,
         "not_implemented"},
        {"lower-case get", wire("get", "/health", {}), 501, "not_implemented"},
        {"HTTP/2.0 request line", "GET /health HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 400,
         "invalid_request"},
    };
  }

  std::vector<bad_input> framing_rows() const {
    const std::string body = R"({"input":"x","provider":"voyage"})";
    auto length = std::to_string(body.size());
    header_list json_type{{"Content-Type", "application/json"}};
    auto post = [&](header_list headers, const std::string& sent) {
      return wire("POST", "/v1/embeddings", headers, sent);
    };
    return {
        {"no Content-Length",
         post({{"Authorization", caller()}, {"Content-Type", "application/json"}}, body), 411,
         "length_required"},
        {"no Content-Length on the admin API",
         wire("POST", "/admin/keys",
              {{"Authorization", admin()}, {"Content-Type", "application/json"}},
              R"({"name":"x"})"),
         411, "length_required"},
        {"chunked body",
         post({{"Authorization", caller()},
               {"Content-Type", "application/json"},
               {"Transfer-Encoding", "chunked"}},
              "21\r\n" + body + "\r\n0\r\n\r\n"),
         411, "length_required"},
        {"Content-Length not a number",
         post({{"Authorization", caller()},
               {"Content-Type", "application/json"},
               {"Content-Length", "abc"}},
              body),
         400, "invalid_request"},
        {"negative Content-Length",
         post({{"Authorization", caller()},
               {"Content-Type", "application/json"},
               {"Content-Length", "-1"}},
              body),
         400, "invalid_request"},
        {"two Content-Lengths",
         post({{"Authorization", caller()},
               {"Content-Type", "application/json"},
               {"Content-Length", length},
               {"Content-Length", "5"}},
              body),
         400, "invalid_request"},
        {"two Authorization headers",
         post({{"Authorization", caller()},
               {"Authorization", "Bearer wrong"},
               {"Content-Type", "application/json"},
               {"Content-Length", length}},
              body),
         400, "invalid_request"},
        {"two Content-Types",
         post({{"Authorization", caller()},
               {"Content-Type", "application/json"},
               {"Content-Type", "text/plain"},
               {"Content-Length", length}},
              body),
         400, "invalid_request"},
        {"two Hosts",
         post({{"Host", "evil.example"}, {"Authorization", caller()}, {"Content-Length", length}},
              body),
         400, "invalid_request"},
        {"no Host", "GET /health HTTP/1.1\r\n\r\n", 400, "invalid_request"},
        {"body shorter than its Content-Length",
         post({{"Authorization", caller()},
               {"Content-Type", "application/json"},
               {"Content-Length", "100"}},
              body.substr(0, 20)),
         408, "request_timeout"},
        {"gzip-compressed body",
         post({{"Authorization", caller()},
               {"Content-Type", "application/json"},
               {"Content-Encoding", "gzip"},
               {"Content-Length", length}},
              body),
         415, "unsupported_media_type"},
        {"request head over 32 KiB",
         post({{"Authorization", caller()},
               {"X-Padding", std::string(40 * 1024, 'a')},
               {"Content-Length", length}},
              body),
         431, "request_header_fields_too_large"},
    };
  }

  // A normal caller right after a bad one gets its vectors, checked against the fake's.
  void expect_still_serving(const std::string& after) const {
    emr::load::endpoint voyage;
    voyage.base_url = emr.base_url();
    voyage.bearer = key;
    voyage.extra_fields = {{"provider", "\"voyage\""}};
    auto results =
        emr::load::fire_concurrent(voyage, {emr::load::caller{{"served after " + after}}},
                                   emr::load::expectation{"voyage-3.5"});
    EXPECT_TRUE(results[0].status == 200 && results[0].vectors_ok)
        << "after " << after << ": " << results[0].status << " " << results[0].error;
  }
};

void expect_answer(const bad_input& row, const http_answer& answer) {
  EXPECT_EQ(answer.status, row.status) << answer.body.substr(0, 300);
  EXPECT_EQ(answer.headers.count("Content-Type") ? answer.headers.at("Content-Type") : "",
            "application/json");
  auto body = answer.json();
  ASSERT_TRUE(body.is_object() && body.as_object().contains("error") &&
              body.at("error").is_object())
      << "not a JSON error: " << answer.body.substr(0, 300);
  const auto& error = body.at("error").as_object();
  auto text = [&](const char* field) -> std::string {
    auto v = error.if_contains(field);
    return !v ? "(missing)" : v->is_string() ? std::string{v->get_string()} : json::serialize(*v);
  };
  EXPECT_EQ(text("type"), row.type) << answer.body;
  EXPECT_TRUE(error.contains("message") && error.at("message").is_string() &&
              !text("message").empty());
  EXPECT_TRUE(error.contains("param") && error.contains("code")) << answer.body;
  if (!row.param.empty()) {
    EXPECT_EQ(text("param"), row.param) << answer.body;
  }
  if (!row.allow.empty()) {
    EXPECT_EQ(answer.headers.count("Allow") ? answer.headers.at("Allow") : "", row.allow);
  }
}

} // namespace

TEST_F(BadInput, every_endpoint_answers_exactly_and_keeps_serving) {
  std::vector<bad_input> rows;
  for (auto group : {embeddings_rows(), auth_rows(), batch_rows(), admin_rows(),
                     path_and_method_rows(), framing_rows()})
    rows.insert(rows.end(), group.begin(), group.end());
  EXPECT_GE(rows.size(), 60u);
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    expect_answer(row, raw_http(emr.port(), row.request));
    expect_still_serving(row.name);
  }
  // Nothing a bad row sent was kept.
  auto providers = emr.admin("GET", "/admin/providers").json().at("providers").as_array();
  ASSERT_EQ(providers.size(), 1u);
  EXPECT_EQ(providers[0].at("max_batch").as_int64(), 128);
  EXPECT_EQ(providers[0].at("requests_per_minute").as_int64(), 0);
  EXPECT_EQ(providers[0].at("tokens_per_minute").as_int64(), 0);
  EXPECT_EQ(emr.admin("GET", "/admin/keys").json().at("keys").as_array().size(), 2u);
}
