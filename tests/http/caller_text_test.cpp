// The rule for caller text that leaves emr outside JSON: is_token and to_token.

#include "http/caller_text.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

TEST(is_token, takes_1_to_128_bytes_of_the_token_alphabet) {
  EXPECT_TRUE(is_token("req_0123-abc.DEF"));
  EXPECT_TRUE(is_token(std::string(128, 'a')));
  EXPECT_FALSE(is_token(""));
  EXPECT_FALSE(is_token(std::string(129, 'a')));
  for (auto bad :
       {"a b", "a\r\nX-Injected: 1", "a\n", "a:b", "a/b", "a%0d", "caf\xc3\xa9", "a\"b", "a\\b"})
    EXPECT_FALSE(is_token(bad)) << bad;
}

TEST(to_token, keeps_tokens_and_hashes_anything_else_into_one) {
  EXPECT_EQ(to_token("order-1"), "order-1");
  auto injected = to_token("a\r\nX-Injected: 1\r\n\r\nPOST / HTTP/1.1");
  EXPECT_TRUE(is_token(injected)) << injected;
  EXPECT_EQ(injected.size(), 17u);
  EXPECT_EQ(injected.front(), 'x');
  EXPECT_EQ(injected, to_token("a\r\nX-Injected: 1\r\n\r\nPOST / HTTP/1.1")) << "stable";
  EXPECT_NE(to_token("order #1"), to_token("order #2"));
  EXPECT_TRUE(is_token(to_token("")));
  EXPECT_TRUE(is_token(to_token(std::string(5000, 'a'))));
}

} // namespace
} // namespace emr
