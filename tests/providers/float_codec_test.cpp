// The base64 float32 layout against the worked examples in providers.md §3.4.

#include "providers/float_codec.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <limits>

namespace emr {
namespace {

std::string encode(const std::vector<float>& v) {
  std::string out;
  append_base64_floats(out, v.data(), v.size());
  return out;
}

TEST(float_codec, encodes_the_documented_examples) {
  EXPECT_EQ(encode({0.5f, -0.25f, 1.0f}), "AAAAPwAAgL4AAIA/");
  EXPECT_EQ(encode({0.1f, -0.2f}), "zczMPc3MTL4=");
}

TEST(float_codec, decodes_what_it_encodes_and_rejects_the_rest) {
  std::vector<float> out{42.0f};
  ASSERT_TRUE(decode_base64_floats("AAAAPwAAgL4AAIA/", out));
  EXPECT_EQ(out, (std::vector<float>{42.0f, 0.5f, -0.25f, 1.0f}));
  // Padding only at the end, no whitespace or PEM dashes around it, the standard alphabet only,
  // whole floats only.
  for (auto bad :
       {"AAAAPwAAgL4AAIA", "AAAA*wAA", "zczM", "AA=A", "AAAA==AA",
        "A===", "====", " AAAAPwAAgL4AAIA", "AAAAPwAAgL4AAIA/ ", "    AAAA", "AAAAPwAAgL4A----",
        "AAAAPwAAgL4AAIA\n", "AAAA PwAAgL4AAIA", "AAAAPw-_gL4AAIA/", "AAAAPwAAgL4AAIA==="}) {
    auto before = out;
    EXPECT_FALSE(decode_base64_floats(bad, out)) << bad;
    EXPECT_EQ(out, before) << bad;
  }
}

TEST(float_codec, round_trips_every_length_of_padding) {
  // One, two and three floats end in no padding, "==" and "=": every tail the decoder reads.
  for (std::size_t n = 0; n < 40; ++n) {
    std::vector<float> in;
    for (std::size_t i = 0; i < n; ++i)
      in.push_back(static_cast<float>(i) * -1.5f + 0.125f);
    std::vector<float> out{7.0f};
    ASSERT_TRUE(decode_base64_floats(encode(in), out)) << n;
    in.insert(in.begin(), 7.0f);
    EXPECT_EQ(out, in) << n;
  }
}

// Found by fuzzing: the empty string passed memcpy null pointers (undefined, caught by UBSan).
TEST(float_codec, decodes_the_empty_string_to_no_floats) {
  std::vector<float> out;
  ASSERT_TRUE(decode_base64_floats("", out));
  EXPECT_TRUE(out.empty());
}

TEST(float_codec, json_floats_are_shortest_round_trip) {
  std::string out;
  std::vector<float> v{0.1f, -0.0123456f, 1e-8f};
  append_json_floats(out, v.data(), v.size());
  EXPECT_EQ(out, "[0.1,-0.0123456,1e-08]");
}

TEST(float_codec, json_floats_of_the_longest_forms_come_back_bit_identical) {
  // The longest shortest forms, after text already in the buffer, many times over: the room
  // reserved per float must hold each of them.
  std::vector<float> v;
  for (int i = 0; i < 100; ++i)
    for (float f : {-std::numeric_limits<float>::min(), -std::numeric_limits<float>::denorm_min(),
                    -std::numeric_limits<float>::max(), -1.17549435e-38f, -9.99999944e-39f, -0.0f,
                    -1.23456791e-12f})
      v.push_back(f);
  std::string out = "prefix";
  append_json_floats(out, v.data(), v.size());
  ASSERT_EQ(out.substr(0, 7), "prefix[");
  ASSERT_EQ(out.back(), ']');
  std::vector<float> back;
  const char* p = out.data() + 7;
  const char* end = out.data() + out.size() - 1;
  while (p < end) {
    float f = 0;
    auto [next, ec] = std::from_chars(p, end, f);
    ASSERT_EQ(ec, std::errc{}) << std::string(p, end);
    back.push_back(f);
    p = next < end && *next == ',' ? next + 1 : next;
  }
  ASSERT_EQ(back.size(), v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    EXPECT_EQ(std::bit_cast<std::uint32_t>(back[i]), std::bit_cast<std::uint32_t>(v[i])) << i;
}

} // namespace
} // namespace emr
