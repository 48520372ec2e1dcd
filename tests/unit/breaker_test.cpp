// The per-sender circuit breaker: closed → open on the failure ratio over the window, half-open
// after the cool-down with a bounded number of probes, closed when they succeed, open again
// (with a doubled cool-down) when one fails. Time is passed in.
#include <gtest/gtest.h>

#include "domain/breaker.hpp"

namespace daybreak {
namespace {

BreakerPolicy policy() {
  BreakerPolicy p;
  p.window_ms = 10000;
  p.min_requests = 10;
  p.failure_ratio = 0.5;
  p.open_ms = 5000;
  p.max_open_ms = 20000;
  p.half_open_probes = 2;
  return p;
}

TEST(Breaker, StaysClosedBelowTheMinimumSample) {
  Breaker b(policy());
  for (int i = 0; i < 9; ++i) b.record(true, 1000 + i);
  EXPECT_EQ(b.state(1100), BreakerState::closed);
  EXPECT_TRUE(b.allow(1100));
}

TEST(Breaker, StaysClosedBelowTheRatio) {
  Breaker b(policy());
  for (int i = 0; i < 60; ++i) b.record(i % 3 == 0, 1000 + i * 10);  // a third fail
  EXPECT_EQ(b.state(2000), BreakerState::closed);
}

TEST(Breaker, OpensAtTheRatioAndRefusesTraffic) {
  Breaker b(policy());
  for (int i = 0; i < 5; ++i) b.record(false, 1000 + i);
  for (int i = 0; i < 5; ++i) b.record(true, 1100 + i);
  EXPECT_EQ(b.state(1200), BreakerState::open);
  EXPECT_FALSE(b.allow(1200));
  EXPECT_FALSE(b.usable(1200));
  EXPECT_EQ(b.reopens_at(), 1104 + 5000);
  EXPECT_EQ(b.opened_count(), 1);
}

TEST(Breaker, OldFailuresLeaveTheWindow) {
  Breaker b(policy());
  for (int i = 0; i < 8; ++i) b.record(true, 1000 + i);
  // 20 s later those eight are outside the 10 s window: two more failures are not ten.
  b.record(true, 21000);
  b.record(true, 21001);
  EXPECT_EQ(b.state(21002), BreakerState::closed);
  EXPECT_DOUBLE_EQ(b.failure_ratio(21002), 1.0);
}

TEST(Breaker, HalfOpenProbesCloseIt) {
  Breaker b(policy());
  for (int i = 0; i < 10; ++i) b.record(true, 1000);
  const Millis t = b.reopens_at();
  EXPECT_EQ(b.state(t - 1), BreakerState::open);
  EXPECT_EQ(b.state(t), BreakerState::half_open);
  EXPECT_TRUE(b.allow(t));
  EXPECT_TRUE(b.allow(t));
  EXPECT_FALSE(b.allow(t)) << "only half_open_probes requests while half-open";
  EXPECT_FALSE(b.usable(t));
  b.record(false, t + 100);
  EXPECT_EQ(b.state(t + 100), BreakerState::half_open);
  b.record(false, t + 200);
  EXPECT_EQ(b.state(t + 200), BreakerState::closed);
  // A fresh window: one failure right after closing does not reopen it.
  b.record(true, t + 300);
  EXPECT_EQ(b.state(t + 300), BreakerState::closed);
}

TEST(Breaker, FailedProbeReopensWithALongerCooldownUpToTheCap) {
  Breaker b(policy());
  for (int i = 0; i < 10; ++i) b.record(true, 0);
  Millis t = b.reopens_at();
  EXPECT_EQ(t, 5000);
  ASSERT_TRUE(b.allow(t));
  b.record(true, t);
  EXPECT_EQ(b.state(t), BreakerState::open);
  EXPECT_EQ(b.reopens_at(), t + 10000);
  t = b.reopens_at();
  ASSERT_TRUE(b.allow(t));
  b.record(true, t);
  EXPECT_EQ(b.reopens_at(), t + 20000);
  t = b.reopens_at();
  ASSERT_TRUE(b.allow(t));
  b.record(true, t);
  EXPECT_EQ(b.reopens_at(), t + 20000) << "capped at max_open_ms";
  EXPECT_EQ(b.opened_count(), 1) << "reopening from half-open is the same outage";
}

}  // namespace
}  // namespace daybreak
