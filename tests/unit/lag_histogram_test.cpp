// dispatch's lag_us (man/dispatch.1): the log-linear histogram against an exact sort of the same
// values (nearest rank, within 1%), its buckets' layout and edges, the microsecond readings of
// the clocks, and the dispatcher recording a known schedule of late first sends on a ManualClock
// that stands still while they go out, against a fake transport that accepts everything.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/clock.hpp"
#include "domain/lag_histogram.hpp"
#include "engine/dispatcher.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

/// The nearest-rank percentile of `sorted` (domain/sla.cpp's rule, in per mille).
Micros exact_rank(const std::vector<Micros>& sorted, unsigned permille) {
  std::size_t r = (permille * sorted.size() + 999) / 1000;
  r = std::clamp<std::size_t>(r, 1, sorted.size());
  return sorted[r - 1];
}

void expect_quantiles_match_sort(std::vector<Micros> values, const char* what) {
  LagHistogram h;
  for (Micros v : values) h.record(v);
  std::sort(values.begin(), values.end());
  for (unsigned pm : {1U, 10U, 100U, 250U, 500U, 750U, 900U, 950U, 990U, 995U, 999U, 1000U}) {
    const Micros exact = exact_rank(values, pm);
    const Micros est = h.quantile(pm);
    if (exact < 2 * LagHistogram::kSub) {
      EXPECT_EQ(est, exact) << what << " permille " << pm;
    } else {
      EXPECT_LE(std::abs(static_cast<double>(est - exact)), 0.01 * static_cast<double>(exact))
          << what << " permille " << pm << ": exact " << exact << ", histogram " << est;
    }
  }
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
  long double sum = 0;
  for (Micros v : values) sum += static_cast<long double>(v);
  EXPECT_DOUBLE_EQ(h.mean(), static_cast<double>(sum / static_cast<long double>(values.size())));
}

TEST(LagHistogram, QuantilesWithinOnePercentOfAnExactSortOverRandomData) {
  std::mt19937_64 rng(20261207);
  {
    // Log-uniform from 1 µs to about 17 minutes: every bucket group is exercised.
    std::uniform_real_distribution<double> e(0.0, 30.0);
    std::vector<Micros> v(200'000);
    for (auto& x : v) x = static_cast<Micros>(std::exp2(e(rng)));
    expect_quantiles_match_sort(v, "log-uniform");
  }
  {
    // A dispatch's shape: most sends 100-900 µs late, a tail of a few ms, a handful of seconds.
    std::lognormal_distribution<double> body(std::log(400.0), 0.5);
    std::exponential_distribution<double> tail(1.0 / 3000.0);
    std::uniform_int_distribution<int> pick(0, 9999);
    std::vector<Micros> v(100'000);
    for (auto& x : v) {
      int p = pick(rng);
      x = p < 9800 ? static_cast<Micros>(body(rng)) : p < 9995 ? 1000 + static_cast<Micros>(tail(rng)) : 1'000'000 + p;
    }
    expect_quantiles_match_sort(v, "dispatch-like");
  }
  for (std::size_t n : {1U, 2U, 7U, 99U, 1000U}) {
    std::uniform_int_distribution<Micros> u(0, 5'000'000);
    std::vector<Micros> v(n);
    for (auto& x : v) x = u(rng);
    expect_quantiles_match_sort(v, ("uniform n=" + std::to_string(n)).c_str());
  }
}

TEST(LagHistogram, BucketsTileTheRangeAndStayWithinTheirError) {
  EXPECT_LE(sizeof(LagHistogram), 10'000U) << "a few KB, allocated with the object";
  for (std::size_t i = 0; i + 1 < LagHistogram::kBuckets; ++i) {
    ASSERT_EQ(LagHistogram::bucket_low(i + 1), LagHistogram::bucket_low(i) + LagHistogram::bucket_width(i)) << i;
    if (i < static_cast<std::size_t>(2 * LagHistogram::kSub)) {
      ASSERT_EQ(LagHistogram::bucket_width(i), 1) << i;  // exact below 128 µs
    } else {
      ASSERT_LE(LagHistogram::bucket_width(i) * LagHistogram::kSub, LagHistogram::bucket_low(i))
          << "bucket " << i << " is wider than 1/64 of its lower bound";
    }
  }
  const std::size_t last = LagHistogram::kBuckets - 1;
  EXPECT_EQ(LagHistogram::bucket_low(last) + LagHistogram::bucket_width(last), Micros{1} << LagHistogram::kMaxBits);
  for (Micros v : {Micros{0}, Micros{1}, Micros{127}, Micros{128}, Micros{129}, Micros{255}, Micros{256}, Micros{1000},
                   Micros{40'250}, Micros{999'999}, (Micros{1} << 39) + 5, (Micros{1} << 40) - 1}) {
    const std::size_t i = LagHistogram::index_of(v);
    EXPECT_LE(LagHistogram::bucket_low(i), v);
    EXPECT_LT(v, LagHistogram::bucket_low(i) + LagHistogram::bucket_width(i));
  }
}

TEST(LagHistogram, EdgesEmptyNegativeHugeAndMerge) {
  LagHistogram empty;
  auto s = empty.summary();
  EXPECT_EQ(s.n, 0U);
  EXPECT_EQ(s.p50, 0);
  EXPECT_EQ(s.max, 0);
  EXPECT_EQ(s.mean, 0.0);

  LagHistogram h;
  h.record(-500);  // sent before its planned instant (a backward wall-clock step): 0
  h.record(3);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.quantile(500), 0);
  EXPECT_EQ(h.quantile(1000), 3);
  // Past the top bucket: the exact maximum answers for it.
  const Micros huge = Micros{1} << 45;
  h.record(huge);
  EXPECT_EQ(h.quantile(1000), huge);
  EXPECT_EQ(h.max(), huge);

  // merge() is the same as recording everything in one.
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<Micros> u(0, 80'000);
  LagHistogram a, b, all;
  for (int i = 0; i < 5000; ++i) {
    Micros v = u(rng);
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  LagHistogram m;
  m.merge(a);
  m.merge(empty);
  m.merge(b);
  for (unsigned pm : {500U, 900U, 990U, 999U}) EXPECT_EQ(m.quantile(pm), all.quantile(pm)) << pm;
  EXPECT_EQ(m.count(), all.count());
  EXPECT_EQ(m.min(), all.min());
  EXPECT_EQ(m.max(), all.max());
  EXPECT_DOUBLE_EQ(m.mean(), all.mean());
}

TEST(ClockMicros, ReadingsAgreeWithTheMillisecondOnes) {
  ManualClock c(1'000'000);
  c.advance_us(1'750);
  EXPECT_EQ(c.now(), 1'000'001);
  EXPECT_EQ(c.now_us(), 1'000'001'750);
  EXPECT_EQ(c.steady_ms(), 1);
  EXPECT_EQ(c.steady_us(), 1'750);
  c.step_wall(-2);  // a wall step leaves steady time alone, to the microsecond
  EXPECT_EQ(c.now_us(), 999'999'750);
  EXPECT_EQ(c.now(), 999'999);
  EXPECT_EQ(c.steady_us(), 1'750);

  SystemClock sys;
  const Millis ms = sys.now();
  const Micros us = sys.now_us();
  EXPECT_GE(us / 1000, ms);
  EXPECT_LT(us / 1000 - ms, 1000);
  EXPECT_GE(sys.steady_us() / 1000, sys.steady_ms() - 1);
}

// ---- the dispatcher's lag_us over a known schedule --------------------------------------------

constexpr Millis kLagT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST

/// Accepts every request at once and counts them.
class LagUsTransport final : public channels::Transport {
 public:
  void submit(channels::Request, Done done) override {
    int n = ++n_;
    done(test_support::whatsapp_accepted(n));
  }
  void shutdown() override {}
  int count() const { return n_.load(); }

 private:
  std::atomic<int> n_{0};
};

class DispatchLagUsTest : public test_support::DbTest {
 protected:
  DispatchLagUsTest() : DbTest("lagus") {}
};

// 200 deliveries of one run, every one due before the clock shows kLagT0 + 250 µs, where it stands
// still until all 200 first requests are out: 190 planned 1 ms before kLagT0, 10 planned 5, 10, …,
// 50 ms before. Each first send is then exactly (kLagT0 - planned_at) ms + 250 µs late: nearest rank
// p99 of 200 is rank 198, the 8th of the ten, 40 ms + 250 µs; p50 1,250 µs; the maximum 50,250.
TEST_F(DispatchLagUsTest, AKnownScheduleOfLateSendsGivesItsP99) {
  constexpr int kRows = 200;
  auto run = test_support::add_content_and_run(*db_, kLagT0 - 3'600'000);
  ASSERT_EQ(run, 1);
  std::vector<Millis> late_ms;
  db_->write_tx([&] {
    for (int i = 0; i < kRows; ++i) {
      const Millis late = i < 190 ? 1 : 5 * (i - 189);
      late_ms.push_back(late);
      std::string id = "adv-" + std::to_string(i);
      test_support::add_whatsapp_advisor(*db_, id, kLagT0 - 3'600'000);
      auto d = test_support::planned_delivery(1, id, "2026-11-28", kLagT0, kLagT0 - late, kLagT0 - 3'600'000);
      ASSERT_TRUE(store::DeliveryInsert(*db_, d));
    }
  });
  test_support::set_run_window(*db_, 1, kLagT0);
  // mps 4000: a burst of 200 tokens, so every row goes out while the clock stands still.
  Config cfg = parse_config("[database]\npath = \"" + db_path() +
                                "\"\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 4000\n",
                            "");
  ManualClock clock(kLagT0);
  clock.advance_us(250);
  const std::string owner = "lag-us-test";
  ASSERT_TRUE(store::RunAcquireLease(*db_, 1, owner, clock.now(), cfg.dispatch.lease_ms).acquired);
  LagUsTransport t;
  // LAG_US_TEST_LOG=1 shows dispatch's log on stderr.
  auto s = test_support::run_dispatch_ticking(cfg, clock, t, owner, {1}, "LAG_US_TEST_LOG", nullptr, {}, 20, nullptr,
                                              [&] { return t.count() < kRows; });
  ASSERT_EQ(t.count(), kRows);
  EXPECT_EQ(s.accepted, kRows);
  ASSERT_EQ(s.runs_closed.size(), 1U);

  const LagUsSummary lag = s.lag_us.summary();
  EXPECT_EQ(lag.n, static_cast<std::uint64_t>(kRows));
  EXPECT_NEAR(static_cast<double>(lag.p99), 40'250.0, 0.01 * 40'250.0);
  EXPECT_NEAR(static_cast<double>(lag.p50), 1'250.0, 0.01 * 1'250.0);
  EXPECT_NEAR(static_cast<double>(lag.p90), 1'250.0, 0.01 * 1'250.0);
  EXPECT_EQ(lag.p999, 50'250);  // rank 200: the bucket's midpoint is kept within the maximum
  EXPECT_EQ(lag.max, 50'250);
  // (190 × 1,250 + (5 + 10 + … + 50) × 1,000 + 10 × 250) / 200, exactly.
  EXPECT_DOUBLE_EQ(lag.mean, 2'575.0);
  ASSERT_EQ(s.lag_us_by_run.size(), 1U);
  EXPECT_EQ(s.lag_us_by_run[0].first, 1);
  EXPECT_EQ(s.lag_us_by_run[0].second.count(), static_cast<std::uint64_t>(kRows));

  // The same start point as the ledger's lag (first_sent_at − planned_at): whole milliseconds there.
  std::sort(late_ms.begin(), late_ms.end());
  SQLite::Statement q(db_->raw(), "SELECT first_sent_at - planned_at FROM deliveries ORDER BY 1");
  std::vector<Millis> ledger;
  while (q.executeStep()) ledger.push_back(q.getColumn(0).getInt64());
  EXPECT_EQ(ledger, late_ms);
}

}  // namespace
}  // namespace daybreak
