// Tests for core/domain/retry.cpp: backoff ceilings, full jitter, and every decision rule of
// the retry policy (domain/retry.hpp) with a fake "now".
#include "domain/retry.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>

#include "domain/planner.hpp"  // mix64, a handy source of random bits

namespace daybreak {
namespace {

constexpr Millis kNow = 1'795'825'800'000;    // 06:00 IST on 2026-11-28
constexpr Millis kDeadlineRetry = kNow + 300'000;  // 06:05
constexpr std::uint64_t kRandom = 0x0123456789abcdefULL;

TEST(Backoff, CeilingDoublesThenCaps) {
  RetryPolicy p;  // base 1 s, cap 30 s
  EXPECT_EQ(backoff_ceiling(p, 1), 1000);
  EXPECT_EQ(backoff_ceiling(p, 2), 2000);
  EXPECT_EQ(backoff_ceiling(p, 3), 4000);
  EXPECT_EQ(backoff_ceiling(p, 4), 8000);
  EXPECT_EQ(backoff_ceiling(p, 5), 16000);
  EXPECT_EQ(backoff_ceiling(p, 6), 30000);
  EXPECT_EQ(backoff_ceiling(p, 7), 30000);
  EXPECT_EQ(backoff_ceiling(p, 1'000'000), 30000);  // no overflow, no long loop
  EXPECT_EQ(backoff_ceiling(p, 0), 1000);           // below 1 counts as 1
  EXPECT_EQ(backoff_ceiling(p, -5), 1000);
}

TEST(Backoff, HugeCapSaturatesWithoutOverflow) {
  RetryPolicy p;
  p.base_ms = 3;
  p.max_backoff_ms = INT64_MAX;
  EXPECT_EQ(backoff_ceiling(p, 2), 6);
  EXPECT_EQ(backoff_ceiling(p, 200), INT64_MAX);
}

TEST(Backoff, FullJitterEdges) {
  RetryPolicy p;
  EXPECT_EQ(full_jitter_backoff(p, 3, 0), 0);
  EXPECT_EQ(full_jitter_backoff(p, 3, UINT64_MAX), 4000);
  EXPECT_EQ(full_jitter_backoff(p, 3, std::uint64_t{1} << 63), 2000);  // the middle of [0, 4000]
}

TEST(Backoff, FullJitterIsSpreadOverTheWholeRange) {
  RetryPolicy p;
  const Millis ceiling = backoff_ceiling(p, 4);  // 8000
  constexpr int kDraws = 10'000;
  std::set<Millis> distinct;
  int low = 0, high = 0;
  double sum = 0;
  for (int i = 0; i < kDraws; ++i) {
    const Millis b = full_jitter_backoff(p, 4, mix64(static_cast<std::uint64_t>(i)));
    ASSERT_GE(b, 0);
    ASSERT_LE(b, ceiling);
    distinct.insert(b);
    sum += static_cast<double>(b);
    low += b < ceiling / 10 ? 1 : 0;
    high += b > ceiling - ceiling / 10 ? 1 : 0;
  }
  EXPECT_GT(distinct.size(), 5000U);
  EXPECT_NEAR(sum / kDraws, 4000.0, 150.0);  // uniform: mean ≈ ceiling / 2
  EXPECT_GT(low, 800);                       // ≈ 10% in each tail decile
  EXPECT_GT(high, 800);
}

RC_GTEST_PROP(BackoffProps, JitterWithinZeroAndCeiling, (std::uint64_t random)) {
  RetryPolicy p;
  p.base_ms = *rc::gen::inRange<Millis>(0, 10'000);
  p.max_backoff_ms = *rc::gen::inRange<Millis>(0, 120'000);
  const int attempt = *rc::gen::inRange(-2, 100);
  const Millis ceiling = backoff_ceiling(p, attempt);
  RC_ASSERT(ceiling <= p.max_backoff_ms);
  const Millis b = full_jitter_backoff(p, attempt, random);
  RC_ASSERT(b >= 0);
  RC_ASSERT(b <= ceiling);
}

TEST(Decide, PermanentMovesOnAtOnceOrDies) {
  RetryPolicy p;
  auto d = decide_after_failure(p, FailureKind::permanent, 1, kNow, kDeadlineRetry, true, 0, kRandom);
  EXPECT_EQ(d.action, RetryDecision::next_channel);
  EXPECT_EQ(d.next_attempt_at, kNow);
  EXPECT_NE(d.reason.find("permanent"), std::string::npos);
  d = decide_after_failure(p, FailureKind::permanent, 1, kNow, kDeadlineRetry, false, 5000, kRandom);
  EXPECT_EQ(d.action, RetryDecision::dead);
  EXPECT_EQ(d.next_attempt_at, kNow);
}

TEST(Decide, CredentialsMovesOnOrWaitsTheLongestBackoff) {
  RetryPolicy p;
  auto d = decide_after_failure(p, FailureKind::credentials, 1, kNow, kDeadlineRetry, true, 0, kRandom);
  EXPECT_EQ(d.action, RetryDecision::next_channel);
  EXPECT_EQ(d.next_attempt_at, kNow);
  d = decide_after_failure(p, FailureKind::credentials, 1, kNow, kDeadlineRetry, false, 0, kRandom);
  EXPECT_EQ(d.action, RetryDecision::retry);
  EXPECT_EQ(d.next_attempt_at, kNow + 30'000);
  EXPECT_NE(d.reason.find("credentials"), std::string::npos);
  // Bounded like every retry, so a run with a broken sender still finishes.
  d = decide_after_failure(p, FailureKind::credentials, 6, kNow, kDeadlineRetry, false, 0, kRandom);
  EXPECT_EQ(d.action, RetryDecision::dead);
}

TEST(Decide, TransientRetriesAfterJitteredBackoff) {
  RetryPolicy p;
  for (FailureKind k : {FailureKind::retryable, FailureKind::sender_rate_limited, FailureKind::recipient_throttled,
                        FailureKind::uncertain}) {
    for (int attempts = 1; attempts < p.max_attempts; ++attempts) {
      auto d = decide_after_failure(p, k, attempts, kNow, kDeadlineRetry, true, 0, kRandom);
      EXPECT_EQ(d.action, RetryDecision::retry) << to_string(k) << " " << attempts;
      EXPECT_EQ(d.next_attempt_at, kNow + full_jitter_backoff(p, attempts, kRandom));
      EXPECT_GE(d.next_attempt_at, kNow);
      EXPECT_LE(d.next_attempt_at, kNow + backoff_ceiling(p, attempts));
      EXPECT_NE(d.reason.find(std::string(to_string(k))), std::string::npos);
    }
  }
}

TEST(Decide, RetryAfterHintIsAFloor) {
  RetryPolicy p;
  // Jitter at attempt 1 is at most 1 s; the provider asked for 7 s.
  auto d = decide_after_failure(p, FailureKind::sender_rate_limited, 1, kNow, kDeadlineRetry, false, 7000, kRandom);
  EXPECT_EQ(d.action, RetryDecision::retry);
  EXPECT_EQ(d.next_attempt_at, kNow + 7000);
  // A hint smaller than the drawn backoff does not shorten it.
  d = decide_after_failure(p, FailureKind::retryable, 5, kNow, kDeadlineRetry, false, 1, UINT64_MAX);
  EXPECT_EQ(d.next_attempt_at, kNow + 16000);
}

TEST(Decide, MovesToNextChannelBeforeTheDeadlineWhenARetryCouldNotLand) {
  RetryPolicy p;  // expected latency 2 s
  // Retry would be at now + 16 s (attempt 5, all bits set = ceiling); deadline in 17 s: lands
  // at now + 18 s > deadline → next channel, now.
  const Millis now = kDeadlineRetry - 17'000;
  auto d = decide_after_failure(p, FailureKind::retryable, 5, now, kDeadlineRetry, true, 0, UINT64_MAX);
  EXPECT_EQ(d.action, RetryDecision::next_channel);
  EXPECT_EQ(d.next_attempt_at, now);
  EXPECT_LT(d.next_attempt_at, kDeadlineRetry);
  // Exactly on the deadline still counts as landing in time.
  d = decide_after_failure(p, FailureKind::retryable, 5, kDeadlineRetry - 18'000, kDeadlineRetry, true, 0, UINT64_MAX);
  EXPECT_EQ(d.action, RetryDecision::retry);
  EXPECT_EQ(d.next_attempt_at, kDeadlineRetry - 2'000);
  // A long retry-after hint pushes it over too.
  d = decide_after_failure(p, FailureKind::recipient_throttled, 1, kDeadlineRetry - 10'000, kDeadlineRetry, true, 9'000, 0);
  EXPECT_EQ(d.action, RetryDecision::next_channel);
}

TEST(Decide, LateWithoutAnotherChannelKeepsRetrying) {
  RetryPolicy p;
  // Near the deadline, no next channel: retry anyway (a late delivery beats none).
  auto d = decide_after_failure(p, FailureKind::retryable, 3, kDeadlineRetry - 1'000, kDeadlineRetry, false, 0, UINT64_MAX);
  EXPECT_EQ(d.action, RetryDecision::retry);
  EXPECT_EQ(d.next_attempt_at, kDeadlineRetry - 1'000 + 4'000);
  EXPECT_NE(d.reason.find("late"), std::string::npos);
  // Past the deadline: still retry while attempts remain.
  d = decide_after_failure(p, FailureKind::uncertain, 5, kDeadlineRetry + 60'000, kDeadlineRetry, false, 0, 0);
  EXPECT_EQ(d.action, RetryDecision::retry);
  EXPECT_EQ(d.next_attempt_at, kDeadlineRetry + 60'000);
}

TEST(Decide, ExhaustedAttemptsMoveOnOrDie) {
  RetryPolicy p;
  auto d = decide_after_failure(p, FailureKind::retryable, 6, kNow, kDeadlineRetry, true, 0, kRandom);
  EXPECT_EQ(d.action, RetryDecision::next_channel);
  EXPECT_EQ(d.next_attempt_at, kNow);
  EXPECT_NE(d.reason.find("exhausted"), std::string::npos);
  d = decide_after_failure(p, FailureKind::sender_rate_limited, 6, kNow, kDeadlineRetry, false, 0, kRandom);
  EXPECT_EQ(d.action, RetryDecision::dead);
  d = decide_after_failure(p, FailureKind::uncertain, 9, kDeadlineRetry + 1, kDeadlineRetry, false, 0, kRandom);
  EXPECT_EQ(d.action, RetryDecision::dead);
  EXPECT_EQ(to_string(d.action), "dead");
}

RC_GTEST_PROP(DecideProps, NeverActsInThePastAndNeverRetriesPastMaxAttempts, (std::uint64_t random, bool has_next)) {
  RetryPolicy p;
  const auto kind =
      *rc::gen::element(FailureKind::retryable, FailureKind::sender_rate_limited, FailureKind::recipient_throttled,
                        FailureKind::permanent, FailureKind::credentials, FailureKind::uncertain);
  const int attempts = *rc::gen::inRange(1, 10);
  const Millis now = kNow + *rc::gen::inRange<Millis>(-60'000, 600'000);
  const Millis hint = *rc::gen::element<Millis>(0, 500, 5'000, 60'000);
  const auto d = decide_after_failure(p, kind, attempts, now, kDeadlineRetry, has_next, hint, random);
  RC_ASSERT(d.next_attempt_at >= now);
  RC_ASSERT(!d.reason.empty());
  if (d.action == RetryDecision::retry) {
    RC_ASSERT(attempts < p.max_attempts);
    RC_ASSERT(kind != FailureKind::permanent);
    // With a next channel, a retry is only chosen when it can land by the deadline.
    if (has_next) RC_ASSERT(d.next_attempt_at + p.expected_latency_ms <= kDeadlineRetry);
  } else {
    RC_ASSERT(d.next_attempt_at == now);
    RC_ASSERT((d.action == RetryDecision::next_channel) == has_next);
  }
}

}  // namespace
}  // namespace daybreak
