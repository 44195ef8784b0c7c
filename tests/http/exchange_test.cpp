// exchange: the rule for the names an operator gives keys, providers and models.

#include "http/exchange.hpp"

#include <gtest/gtest.h>

namespace emr {
namespace {

std::string repeated(std::string_view piece, int times) {
  std::string text;
  for (int i = 0; i < times; ++i)
    text += piece;
  return text;
}

TEST(valid_name, counts_characters_not_bytes) {
  EXPECT_TRUE(valid_name(repeated("日", 50))) << "50 characters, 150 bytes";
  EXPECT_TRUE(valid_name(repeated("日", 128)));
  EXPECT_FALSE(valid_name(repeated("日", 129)));
  EXPECT_TRUE(valid_name(repeated("\xf0\x9f\x98\x80", 128))) << "four bytes each";
  EXPECT_TRUE(valid_name(std::string(128, 'n')));
  EXPECT_FALSE(valid_name(std::string(129, 'n')));
}

TEST(valid_name, keeps_the_names_it_took_before) {
  for (const char* name : {"billing-service", "voyage", "voyage-3.5", "text-embedding-3-small",
                           "team a / prod", "x", "name with inner  spaces", "café", "a_b.c:d"})
    EXPECT_TRUE(valid_name(name)) << name;
}

TEST(valid_name, refuses_controls_c0_del_and_c1) {
  for (const char* name :
       {"a\nb", "a\tb", "\x1b[31mred", "a\x7f", "x\xc2\x85y", "x\xc2\x80y", "x\xc2\x9fy"})
    EXPECT_FALSE(valid_name(name)) << name;
  EXPECT_FALSE(valid_name(std::string{"a\0b", 3}));
  EXPECT_TRUE(valid_name("x\xc2\xa0y")) << "U+00A0, past C1, inside the name";
}

TEST(valid_name, refuses_what_is_not_utf8) {
  for (const char* name : {"\xff", "caf\xc3", "caf\xc3\x28", "\xc0\xaf", "\xe0\x80\xaf",
                           "\xed\xa0\x80", "\xf4\x90\x80\x80"})
    EXPECT_FALSE(valid_name(name)) << name;
}

TEST(valid_name, refuses_empty_blank_and_spaces_at_either_end) {
  for (const char* name :
       {"", " ", "   ", " name", "name ", "\xc2\xa0name", "name\xe3\x80\x80", "\xe2\x80\x83"})
    EXPECT_FALSE(valid_name(name)) << name;
}

TEST(invalid_name, says_the_rule_and_names_the_field) {
  auto e = invalid_name("name");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.type, "invalid_request");
  EXPECT_EQ(e.param, "name");
  EXPECT_EQ(e.message, "'name' must be 1 to 128 characters of UTF-8, without control characters "
                       "or a space at either end");
}

} // namespace
} // namespace emr
