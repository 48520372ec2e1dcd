// Unit-test entry point: quiet logs unless DAYBREAK_TEST_LOG is set.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
