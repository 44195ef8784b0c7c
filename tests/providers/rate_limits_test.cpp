// Rate-limit headers: what each x-ratelimit-* value means to emr, and what it ignores.

#include "providers/rate_limits.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace emr {
namespace {

using std::chrono::milliseconds;
using header_list = std::vector<std::pair<std::string, std::string>>;

TEST(go_duration, reads_every_form_openai_and_the_fake_send) {
  const std::vector<std::pair<std::string, std::int64_t>> rows{
      {"0", 0},
      {"0s", 0},
      {"12ms", 12},
      {"1s", 1'000},
      {"2.5s", 2'500},
      {"0.1s", 100},
      {"6m0s", 360'000},
      {"1m30s", 90'000},
      {"17m", 1'020'000},
      {"1h2m3.5s", 3'723'500},
      {"1.5h", 5'400'000},
      {".5s", 500},
      {"1.s", 1'000},
      {"+3s", 3'000},
      {" 7s\t", 7'000},
      {"1h1h", 7'200'000},
  };
  for (const auto& [text, ms] : rows)
    EXPECT_EQ(parse_go_duration(text), milliseconds{ms}) << text;
}

TEST(go_duration, rounds_parts_of_a_millisecond_up) {
  EXPECT_EQ(parse_go_duration("1ns"), milliseconds{1});
  EXPECT_EQ(parse_go_duration("500us"), milliseconds{1});
  EXPECT_EQ(parse_go_duration("1500\u00b5s"), milliseconds{2}); // micro sign
  EXPECT_EQ(parse_go_duration("2000\u03bcs"), milliseconds{2}); // Greek mu
  EXPECT_EQ(parse_go_duration("1.0001s"), milliseconds{1'001});
  EXPECT_EQ(parse_go_duration("3000000ns"), milliseconds{3});
}

TEST(go_duration, refuses_what_go_refuses_and_what_cannot_be_a_wait) {
  for (std::string text : {"",
                           " ",
                           "1",
                           "12",
                           "s",
                           ".s",
                           ".",
                           "1.2.3s",
                           "-1s",
                           "-0",
                           "1 s",
                           "1s ms",
                           "1sec",
                           "1d",
                           "1S",
                           "1MS",
                           "0x10s",
                           "1e3ms",
                           "nan",
                           "inf",
                           "9223372037s",
                           "2562048h",
                           "99999999999999999999ms",
                           "2562047h47m16.854775808s"})
    EXPECT_EQ(parse_go_duration(text), std::nullopt) << '"' << text << '"';
  // The longest Go duration still reads.
  EXPECT_EQ(parse_go_duration("2562047h47m16.854775807s"), milliseconds{9'223'372'036'855});
}

TEST(rate_limit_headers, reads_the_six_openai_headers) {
  auto limits = read_rate_limit_headers(header_list{
      {"x-ratelimit-limit-requests", "3000"},
      {"x-ratelimit-limit-tokens", "1000000"},
      {"x-ratelimit-remaining-requests", "2999"},
      {"x-ratelimit-remaining-tokens", "999984"},
      {"x-ratelimit-reset-requests", "20ms"},
      {"x-ratelimit-reset-tokens", "6m0s"},
      {"x-request-id", "req_0123"},
      {"content-type", "application/json"},
  });
  EXPECT_EQ(limits.limit_requests, 3000u);
  EXPECT_EQ(limits.limit_tokens, 1'000'000u);
  EXPECT_EQ(limits.remaining_requests, 2999u);
  EXPECT_EQ(limits.remaining_tokens, 999'984u);
  EXPECT_EQ(limits.reset_requests, milliseconds{20});
  EXPECT_EQ(limits.reset_tokens, milliseconds{360'000});
  EXPECT_TRUE(limits.any());
}

TEST(rate_limit_headers, names_match_in_any_letter_case) {
  auto limits = read_rate_limit_headers(header_list{
      {"X-RateLimit-Limit-Requests", "60"},
      {"X-RATELIMIT-REMAINING-TOKENS", "149984"},
      {"x-Ratelimit-Reset-Tokens", "1s"},
  });
  EXPECT_EQ(limits.limit_requests, 60u);
  EXPECT_EQ(limits.remaining_tokens, 149'984u);
  EXPECT_EQ(limits.reset_tokens, milliseconds{1'000});
  EXPECT_EQ(limits.limit_tokens, std::nullopt);
  EXPECT_EQ(limits.remaining_requests, std::nullopt);
  EXPECT_EQ(limits.reset_requests, std::nullopt);
}

TEST(rate_limit_headers, an_answer_without_them_leaves_every_field_unset) {
  auto limits = read_rate_limit_headers(
      std::multimap<std::string, std::string>{{"content-type", "application/json"},
                                              {"retry-after", "3"},
                                              {"x-ratelimit-", "5"},
                                              {"x-ratelimit-limit", "5"},
                                              {"ratelimit-limit-requests", "5"}});
  EXPECT_FALSE(limits.any());
  EXPECT_EQ(limits.reset_requests, std::nullopt);
  EXPECT_EQ(limits.reset_tokens, std::nullopt);
}

TEST(rate_limit_headers, garbage_leaves_its_field_unset_and_never_throws) {
  for (std::string garbage : {"", " ", "-1", "+5", "1.5", "1e3", "12abc", "0x10", "ten", "1 000",
                              "18446744073709551616", "99999999999999999999999"}) {
    SCOPED_TRACE('"' + garbage + '"');
    rate_limit_headers limits;
    EXPECT_NO_THROW(limits = read_rate_limit_headers(header_list{
                        {"x-ratelimit-limit-requests", garbage},
                        {"x-ratelimit-limit-tokens", garbage},
                        {"x-ratelimit-remaining-requests", garbage},
                        {"x-ratelimit-remaining-tokens", garbage},
                        {"x-ratelimit-reset-requests", garbage},
                        {"x-ratelimit-reset-tokens", garbage},
                    }));
    EXPECT_FALSE(limits.any());
    EXPECT_EQ(limits.reset_requests, std::nullopt);
    EXPECT_EQ(limits.reset_tokens, std::nullopt);
  }
}

TEST(rate_limit_headers, counts_take_surrounding_blanks_and_the_full_64_bit_range) {
  auto limits = read_rate_limit_headers(header_list{
      {"x-ratelimit-limit-tokens", " 18446744073709551615\t"},
      {"x-ratelimit-remaining-requests", "0"},
  });
  EXPECT_EQ(limits.limit_tokens, 18'446'744'073'709'551'615u);
  EXPECT_EQ(limits.remaining_requests, 0u);
}

TEST(rate_limit_headers, one_garbage_header_spoils_only_its_own_field) {
  auto limits = read_rate_limit_headers(header_list{
      {"x-ratelimit-limit-requests", "sixty"},
      {"x-ratelimit-remaining-requests", "59"},
      {"x-ratelimit-reset-requests", "soon"},
      {"x-ratelimit-reset-tokens", "250ms"},
  });
  EXPECT_EQ(limits.limit_requests, std::nullopt);
  EXPECT_EQ(limits.remaining_requests, 59u);
  EXPECT_EQ(limits.reset_requests, std::nullopt);
  EXPECT_EQ(limits.reset_tokens, milliseconds{250});
}

} // namespace
} // namespace emr
