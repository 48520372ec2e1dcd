// store/db.cpp: how a connection waits for another's write lock.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "store/db.hpp"

namespace daybreak::store {
namespace {

// Every sleep until the schedule gives up, for one timeout.
std::vector<std::int64_t> sleeps_until_busy(int timeout_ms) {
  std::vector<std::int64_t> out;
  for (int retry = 0;; ++retry) {
    const auto us = busy_retry_sleep_us(retry, timeout_ms);
    if (us == 0) return out;
    out.push_back(us);
    if (retry > 1'000'000) {
      ADD_FAILURE() << "never gives up at " << timeout_ms << " ms";
      return out;
    }
  }
}

TEST(BusyRetry, TriesAgainWithinAMillisecondEveryTime) {
  EXPECT_EQ(busy_retry_sleep_us(0, 5000), 100);
  EXPECT_EQ(busy_retry_sleep_us(1, 5000), 200);
  EXPECT_EQ(busy_retry_sleep_us(8, 5000), 900);
  EXPECT_EQ(busy_retry_sleep_us(9, 5000), 1000);
  for (auto us : sleeps_until_busy(5000)) {
    EXPECT_GT(us, 0);
    EXPECT_LE(us, 1000);  // SQLite's own busy timeout sleeps up to 100 ms a try
  }
}

TEST(BusyRetry, WaitsTheWholeTimeoutThenGivesUp) {
  for (int timeout_ms : {1, 2, 5, 30, 1000, 5000}) {
    std::int64_t total = 0;
    for (auto us : sleeps_until_busy(timeout_ms)) total += us;
    // At least the timeout (a lock freed within it is taken), and no more than one sleep past it.
    EXPECT_GE(total, std::int64_t{timeout_ms} * 1000) << timeout_ms << " ms";
    EXPECT_LT(total, std::int64_t{timeout_ms} * 1000 + 1000) << timeout_ms << " ms";
  }
  // busy_timeout_ms = 0: a busy lock fails at once, as with no busy handler.
  EXPECT_TRUE(sleeps_until_busy(0).empty());
  EXPECT_EQ(busy_retry_sleep_us(-1, 5000), 0);
}

}  // namespace
}  // namespace daybreak::store
