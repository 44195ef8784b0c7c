// The admin secret as serve and the admin commands read it: blanks around it dropped, control
// characters inside refused.
#include "cli/admin_secret.hpp"

#include "cli/commands.hpp"

#include <gtest/gtest.h>

namespace emr::admin_secret_test {

TEST(admin_secret, spaces_tabs_and_line_breaks_around_it_are_dropped) {
  EXPECT_EQ(admin_secret_from("s3cret-0123456789\n", "EMR_ADMIN_SECRET"), "s3cret-0123456789");
  EXPECT_EQ(admin_secret_from(" \t s3cret 0123456789\r\n", "x"), "s3cret 0123456789");
  EXPECT_EQ(admin_secret_from("s3cret", "x"), "s3cret");
  EXPECT_EQ(admin_secret_from(" \r\n", "x"), "");
  EXPECT_EQ(admin_secret_from("", "x"), "");
}

TEST(admin_secret, a_control_character_inside_is_refused_naming_the_source) {
  using namespace std::string_view_literals;
  for (auto raw : {"two\nlines"sv, "car\rriage"sv, "ta\tb"sv, "nul\0byte"sv, "del\x7f"sv}) {
    try {
      admin_secret_from(raw, "--admin-secret");
      ADD_FAILURE() << raw;
    } catch (const command_failure& e) {
      EXPECT_EQ(std::string{e.what()},
                "--admin-secret holds a control character inside (a line break, a tab); the admin "
                "secret must be one line of printable characters");
    }
  }
}

} // namespace emr::admin_secret_test
