// The tables `emr status` and the other admin commands print: cells from JSON, columns aligned.
#include "cli/admin_client.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <iostream>

namespace emr::admin_client_test {

TEST(admin_table, cell_shows_json_values_short) {
  EXPECT_EQ(cell(boost::json::value(nullptr)), "-");
  EXPECT_EQ(cell(boost::json::value("openai")), "openai");
  EXPECT_EQ(cell(boost::json::value(2.0 / 3.0)), "0.67");
  EXPECT_EQ(cell(boost::json::value(true)), "yes");
  EXPECT_EQ(cell(boost::json::value(false)), "no");
  EXPECT_EQ(cell(boost::json::value(42)), "42");
  EXPECT_EQ(cell(boost::json::value(-7)), "-7");
}

TEST(admin_table, columns_are_as_wide_as_their_widest_cell_plus_two_and_the_last_is_unpadded) {
  ::testing::internal::CaptureStdout();
  print_table({"NAME", "QUEUED", "MODE"},
              {{"openai-large", "3", "x"}, {"v", "12345678", "y"}, {"c"}});
  std::cout.flush();
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "NAME          QUEUED    MODE\n"
                                                      "openai-large  3         x\n"
                                                      "v             12345678  y\n"
                                                      "c                       \n");
}

} // namespace emr::admin_client_test
