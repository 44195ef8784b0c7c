// /metrics and /admin/stats made from the described stats: exact lines, and the docs' table.

#include "http/metric_families.hpp"
#include "http/stats_json.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace emr::metric_families_tests {

namespace {

metric_sources sample_sources() {
  metric_sources s;
  batcher_stats b;
  b.provider = "voyage";
  b.texts_flushed = 6;
  b.texts_sent = 5;
  b.batches_flushed = 2;
  b.call_window = 32;
  b.texts_per_call.observe(2);
  b.texts_per_call.observe(3);
  s.batchers.push_back(b);
  provider_health_stats h;
  h.state = "sin-binned";
  h.totals.success = 4;
  h.totals.rate_limited = 2;
  h.upstream_latency_seconds.observe(0.02);
  s.health.providers["voyage"] = h;
  s.callers.requests.push_back({"say \"hi\"", 200, 7});
  s.auth.failures = 3;
  s.cache.hits = 5;
  s.request_actors = 1;
  return s;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

std::string docs_table() {
  std::ifstream in{EMR_SOURCE_DIR "/docs/api.md"};
  std::stringstream all;
  all << in.rdbuf();
  auto text = all.str();
  const std::string begin = "<!-- metric table: made by metric_table(), checked by its test -->\n";
  auto from = text.find(begin);
  auto to = text.find("<!-- end of metric table -->", from);
  if (from == std::string::npos || to == std::string::npos)
    return "";
  return text.substr(from + begin.size(), to - from - begin.size());
}

} // namespace

TEST(metric_families, every_exported_field_is_a_line_with_its_provider) {
  auto text = prometheus_text(metric_families(sample_sources()));
  EXPECT_TRUE(has_line(text, "emr_texts_total{provider=\"voyage\"} 6")) << text;
  EXPECT_TRUE(has_line(text, "emr_upstream_texts_total{provider=\"voyage\"} 5"));
  EXPECT_TRUE(has_line(text, "emr_upstream_batches_total{provider=\"voyage\"} 2"));
  EXPECT_TRUE(has_line(text, "emr_call_window{provider=\"voyage\"} 32"));
  EXPECT_TRUE(has_line(text, "# TYPE emr_call_window gauge"));
  EXPECT_TRUE(has_line(text, "# TYPE emr_texts_total counter"));
  EXPECT_TRUE(has_line(text, "emr_upstream_texts_per_call_bucket{provider=\"voyage\",le=\"2\"} 1"));
  EXPECT_TRUE(has_line(text, "emr_upstream_texts_per_call_bucket{provider=\"voyage\",le=\"4\"} 2"));
  EXPECT_TRUE(
      has_line(text, "emr_upstream_texts_per_call_bucket{provider=\"voyage\",le=\"+Inf\"} 2"));
  EXPECT_TRUE(has_line(text, "emr_upstream_texts_per_call_sum{provider=\"voyage\"} 5"));
  EXPECT_TRUE(has_line(text, "emr_upstream_texts_per_call_count{provider=\"voyage\"} 2"));
  EXPECT_TRUE(
      has_line(text, "emr_upstream_calls_total{provider=\"voyage\",outcome=\"success\"} 4"));
  EXPECT_TRUE(
      has_line(text, "emr_upstream_calls_total{provider=\"voyage\",outcome=\"rate_limited\"} 2"));
  EXPECT_TRUE(has_line(text, "emr_rate_limited_received_total{provider=\"voyage\"} 2"));
  EXPECT_TRUE(
      has_line(text, "emr_upstream_latency_seconds_bucket{provider=\"voyage\",le=\"0.025\"} 1"));
  EXPECT_TRUE(has_line(text, "emr_sin_binned_providers 1"));
  EXPECT_TRUE(has_line(text, "emr_auth_failures_total 3"));
  EXPECT_TRUE(has_line(text, "emr_cache_hits_total 5"));
  EXPECT_TRUE(has_line(text, "# TYPE emr_cache_bytes gauge"));
  EXPECT_TRUE(has_line(text, "emr_request_actors 1"));
  EXPECT_TRUE(
      has_line(text, "emr_caller_requests_total{provider=\"say \\\"hi\\\"\",status=\"200\"} 7"))
      << "label values are escaped";
  EXPECT_TRUE(has_line(text, "emr_queued_texts{provider=\"voyage\"} 0"));
  EXPECT_EQ(text.find("hold_gap"), std::string::npos) << "fields without a metric stay out";
}

TEST(metric_families, each_family_is_listed_once_with_or_without_samples) {
  auto empty = metric_families({});
  auto full = metric_families(sample_sources());
  ASSERT_EQ(empty.size(), full.size());
  for (std::size_t i = 0; i < empty.size(); ++i) {
    EXPECT_EQ(empty[i].name, full[i].name);
    for (std::size_t j = 0; j < i; ++j)
      EXPECT_NE(empty[i].name, empty[j].name);
  }
}

TEST(metric_families, the_docs_table_is_the_one_the_code_makes) {
  EXPECT_EQ(docs_table(), metric_table(metric_families({})))
      << "docs/api.md's metric table is out of date; replace it with the expected text above";
}

TEST(stats_json, fields_go_under_their_keys_nested_and_optional_ones_too) {
  auto s = sample_sources();
  auto batcher = to_json(s.batchers[0]);
  EXPECT_EQ(batcher.at("provider").as_string(), "voyage");
  EXPECT_EQ(batcher.at("texts_flushed").as_uint64(), 6u);
  EXPECT_EQ(batcher.at("holding_for_company").as_bool(), false);
  EXPECT_EQ(batcher.at("texts_per_call").at("count").as_uint64(), 2u);
  EXPECT_EQ(batcher.at("texts_per_call").at("buckets").at(1),
            (boost::json::array{2.0, std::uint64_t{1}}));
  EXPECT_TRUE(batcher.at("queues").as_array().empty());
  auto health = to_json(s.health);
  EXPECT_EQ(health.at("voyage").at("totals").at("rate_limited").as_uint64(), 2u);
  EXPECT_FALSE(health.at("voyage").as_object().contains("failure"));
  s.health.providers["voyage"].failure = "gone";
  EXPECT_EQ(to_json(s.health).at("voyage").at("failure").as_string(), "gone");
  EXPECT_EQ(to_json(s.auth).at("failures").as_uint64(), 3u);
}

} // namespace emr::metric_families_tests
