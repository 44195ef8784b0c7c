// provider_records: the admin API's provider fields as records, specs and JSON; here the
// operator's rate limits and the model's name.

#include "http/provider_records.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace json = boost::json;

namespace emr {
namespace {

json::object body(std::string_view extra_fields = "") {
  auto text = std::string{R"({"name":"voyage","type":"voyage",)"
                          R"("endpoint":"http://127.0.0.1:9/v1/embeddings",)"
                          R"("model":"voyage-3.5","api_key_env":"VOYAGE_API_KEY")"} +
              std::string{extra_fields} + "}";
  return json::parse(text).as_object();
}

provider_record created(std::string_view extra_fields = "") {
  auto parsed = provider_from_json(body(extra_fields));
  if (auto e = std::get_if<api_error>(&parsed))
    ADD_FAILURE() << e->message;
  return std::get<provider_record>(parsed);
}

// The provider `body()` describes with `field` set to `value`: its record, or its refusal.
std::variant<provider_record, api_error> with(const char* field, json::value value) {
  auto fields = body();
  fields[field] = std::move(value);
  return provider_from_json(fields);
}

void expect_refused(const std::variant<provider_record, api_error>& parsed,
                    std::string_view param) {
  auto error = std::get_if<api_error>(&parsed);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->status, 400);
  EXPECT_EQ(error->param, param);
}

TEST(provider_model, one_with_control_characters_or_over_128_characters_is_a_400) {
  // It goes into the log and into `emr providers list` as it is.
  for (const auto& model : {std::string{"voyage-3.5\n[forged log line]"},
                            std::string{"\x1b[31mred"}, std::string(129, 'm')}) {
    SCOPED_TRACE(model);
    expect_refused(with("model", json::string{model}), "model");
  }
  EXPECT_TRUE(std::holds_alternative<provider_record>(with("model", json::string(128, 'm'))));
}

TEST(provider_fields, an_unknown_field_on_create_is_a_400_naming_it) {
  auto parsed = provider_from_json(body(R"(,"max_batches":64)"));
  auto error = std::get_if<api_error>(&parsed);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->status, 400);
  EXPECT_EQ(error->type, "invalid_request");
  EXPECT_EQ(error->param, "max_batches");
  EXPECT_EQ(error->message,
            "unknown field 'max_batches'; the fields are name, type, endpoint, model, "
            "api_key_env, max_batch, enabled, requests_per_minute, tokens_per_minute");
}

TEST(provider_fields, a_patch_of_a_fixed_or_unknown_field_or_of_nothing_is_a_400_changing_nothing) {
  struct refused_patch {
    std::string body;
    std::string param;
    std::string message;
  };
  const std::string changeable = "endpoint, model, api_key_env, max_batch, enabled, "
                                 "requests_per_minute, tokens_per_minute";
  for (const auto& [patch, param, message] : std::vector<refused_patch>{
           {R"({"name":"other","model":"voyage-3.5-lite"})", "name",
            "'name' cannot be changed; the fields that can are " + changeable},
           {R"({"type":"cohere"})", "type",
            "'type' cannot be changed; the fields that can are " + changeable},
           {R"({"model":"voyage-3.5-lite","request_per_minute":5})", "request_per_minute",
            "unknown field 'request_per_minute'; the fields are " + changeable},
           {"{}", "", "nothing to change: give at least one of " + changeable}}) {
    SCOPED_TRACE(patch);
    auto record = created();
    auto error = patch_provider(record, json::parse(patch).as_object());
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->status, 400);
    EXPECT_EQ(error->type, "invalid_request");
    EXPECT_EQ(error->param, param);
    EXPECT_EQ(error->message, message);
    EXPECT_EQ(record, created());
  }
}

TEST(provider_key_env, may_not_name_emr_s_own_secrets) {
  for (const char* name : {"EMR_ADMIN_SECRET", "EMR_DATABASE_URL"}) {
    SCOPED_TRACE(name);
    expect_refused(with("api_key_env", name), "api_key_env");
  }
  EXPECT_TRUE(
      std::holds_alternative<provider_record>(with("api_key_env", "EMR_TEST_PROVIDER_KEY")));
}

TEST(provider_rate_limits, are_unset_unless_given) {
  auto record = created();
  EXPECT_EQ(record.requests_per_minute, 0);
  EXPECT_EQ(record.tokens_per_minute, 0);
  auto spec = to_spec(record);
  EXPECT_EQ(spec.requests_per_minute, 0u);
  EXPECT_EQ(spec.tokens_per_minute, 0u);
  auto shown = provider_json(record);
  EXPECT_EQ(shown.at("requests_per_minute"), 0);
  EXPECT_EQ(shown.at("tokens_per_minute"), 0);
}

TEST(provider_rate_limits, a_created_provider_carries_them_to_its_spec_and_its_json) {
  auto record = created(R"(,"requests_per_minute":3000,"tokens_per_minute":1000000)");
  EXPECT_EQ(record.requests_per_minute, 3000);
  EXPECT_EQ(record.tokens_per_minute, 1'000'000);
  auto spec = to_spec(record);
  EXPECT_EQ(spec.requests_per_minute, 3000u);
  EXPECT_EQ(spec.tokens_per_minute, 1'000'000u);
  auto shown = provider_json(record);
  EXPECT_EQ(shown.at("requests_per_minute"), 3000);
  EXPECT_EQ(shown.at("tokens_per_minute"), 1'000'000);
  EXPECT_TRUE(shown.at("problem").is_null());
}

TEST(provider_rate_limits, the_bounds_themselves_are_accepted) {
  auto record = created(R"(,"requests_per_minute":10000000,"tokens_per_minute":10000000000)");
  EXPECT_EQ(record.requests_per_minute, most_requests_per_minute);
  EXPECT_EQ(record.tokens_per_minute, most_tokens_per_minute);
  EXPECT_EQ(to_spec(record).tokens_per_minute, 10'000'000'000u);
}

TEST(provider_rate_limits, a_patch_sets_one_keeps_the_other_and_zero_clears) {
  auto record = created(R"(,"requests_per_minute":3000,"tokens_per_minute":1000000)");
  EXPECT_EQ(patch_provider(record, json::parse(R"({"requests_per_minute":60})").as_object()),
            std::nullopt);
  EXPECT_EQ(record.requests_per_minute, 60);
  EXPECT_EQ(record.tokens_per_minute, 1'000'000);
  EXPECT_EQ(patch_provider(record, json::parse(R"({"tokens_per_minute":0})").as_object()),
            std::nullopt);
  EXPECT_EQ(record.requests_per_minute, 60);
  EXPECT_EQ(record.tokens_per_minute, 0);
  EXPECT_EQ(to_spec(record).tokens_per_minute, 0u);
  EXPECT_EQ(patch_provider(record, json::parse(R"({"requests_per_minute":null})").as_object()),
            std::nullopt);
  EXPECT_EQ(record.requests_per_minute, 60) << "null is no change, as for max_batch";
}

struct bad_limit {
  std::string field;
  std::string value;
  std::string message;
};

const std::vector<bad_limit> bad_limits{
    {"requests_per_minute", R"("60")", "'requests_per_minute' must be an integer (0: not set)"},
    {"requests_per_minute", "60.0", "'requests_per_minute' must be an integer (0: not set)"},
    {"requests_per_minute", "60.5", "'requests_per_minute' must be an integer (0: not set)"},
    {"requests_per_minute", "1e400", "'requests_per_minute' must be at most 10000000"},
    {"requests_per_minute", "true", "'requests_per_minute' must be an integer (0: not set)"},
    {"requests_per_minute", "[60]", "'requests_per_minute' must be an integer (0: not set)"},
    {"requests_per_minute", "-1", "'requests_per_minute' must not be negative (0: not set)"},
    {"requests_per_minute", "10000001", "'requests_per_minute' must be at most 10000000"},
    {"requests_per_minute", "18446744073709551615",
     "'requests_per_minute' must be at most 10000000"},
    {"tokens_per_minute", R"({"n":1})", "'tokens_per_minute' must be an integer (0: not set)"},
    {"tokens_per_minute", "-9223372036854775808",
     "'tokens_per_minute' must not be negative (0: not set)"},
    {"tokens_per_minute", "10000000001", "'tokens_per_minute' must be at most 10000000000"},
    {"tokens_per_minute", "99999999999999999999",
     "'tokens_per_minute' must be at most 10000000000"},
    {"tokens_per_minute", "-1e30", "'tokens_per_minute' must not be negative (0: not set)"},
};

TEST(provider_rate_limits, a_bad_value_on_create_is_a_400_naming_its_field) {
  for (const auto& bad : bad_limits) {
    SCOPED_TRACE(bad.field + " = " + bad.value);
    auto parsed = provider_from_json(body(",\"" + bad.field + "\":" + bad.value));
    auto error = std::get_if<api_error>(&parsed);
    ASSERT_NE(error, nullptr);
    EXPECT_EQ(error->status, 400);
    EXPECT_EQ(error->type, "invalid_request");
    EXPECT_EQ(error->param, bad.field);
    EXPECT_EQ(error->message, bad.message);
  }
}

TEST(provider_rate_limits, a_bad_value_in_a_patch_is_a_400_naming_its_field) {
  for (const auto& bad : bad_limits) {
    SCOPED_TRACE(bad.field + " = " + bad.value);
    auto record = created(R"(,"requests_per_minute":3000,"tokens_per_minute":1000000)");
    auto error = patch_provider(
        record, json::parse("{\"" + bad.field + "\":" + bad.value + "}").as_object());
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->status, 400);
    EXPECT_EQ(error->param, bad.field);
    EXPECT_EQ(error->message, bad.message);
  }
}

// A record edited by hand in the database past the bounds is listed with its problem, not run.
TEST(provider_rate_limits, a_stored_record_past_the_bounds_shows_its_problem) {
  auto record = created();
  record.tokens_per_minute = most_tokens_per_minute + 1;
  auto problem = check_provider(record);
  ASSERT_TRUE(problem.has_value());
  EXPECT_EQ(problem->param, "tokens_per_minute");
  EXPECT_EQ(provider_json(record).at("problem"), "'tokens_per_minute' must be at most 10000000000");
}

} // namespace
} // namespace emr
