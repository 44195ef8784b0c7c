// The base64 float32 layout against the worked examples in providers.md §3.4.

#include "providers/float_codec.hpp"

#include <gtest/gtest.h>

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

} // namespace
} // namespace emr
