// A running dispatch takes an urgent run written while it runs (daybreak send-now): the
// dispatcher on a ManualClock and a fake transport; when the morning run's 20th request goes out,
// an urgent run of 30 rows is written through another connection. The dispatch leases it within
// its adoption poll, sends every row once on the same sender, closes both runs, and the urgent
// rows go out before the morning's rows that were due meanwhile.
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <string>

#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/clock.hpp"
#include "engine/dispatcher.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

constexpr Millis kAdoptT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST
constexpr int kMorningRows = 200;
constexpr int kUrgentRows = 30;

/// Accepts every request; calls `on_request(n)` on the scheduler's thread first.
class AdoptTransport final : public channels::Transport {
 public:
  std::function<void(int)> on_request;
  void submit(channels::Request, Done done) override {
    int n = 0;
    {
      std::lock_guard lk(mu_);
      n = ++n_;
    }
    if (on_request) on_request(n);
    done(test_support::whatsapp_accepted(n));
  }
  void shutdown() override {}
  int requests() {
    std::lock_guard lk(mu_);
    return n_;
  }

 private:
  std::mutex mu_;
  int n_ = 0;
};

class UrgentAdoptTest : public test_support::DbTest {
 protected:
  UrgentAdoptTest() : DbTest("urgent-adopt") {}
};

TEST_F(UrgentAdoptTest, ARunningDispatchTakesAnUrgentRunWrittenWhileItRuns) {
  const Millis before = kAdoptT0 - 3'600'000;
  ASSERT_EQ(test_support::add_content_and_run(*db_, before), 1);
  db_->write_tx([&] {
    for (int i = 0; i < kMorningRows; ++i) {
      const std::string id = "adv-" + std::to_string(i);
      test_support::add_whatsapp_advisor(*db_, id, before);
      // Planned 20 ms apart at 50 msg/s: a steady stream, so rows are due when the urgent run lands.
      ASSERT_TRUE(store::DeliveryInsert(*db_, test_support::planned_delivery(1, id, "2026-11-28", kAdoptT0, kAdoptT0 + i * 20, before)));
    }
    for (int i = 0; i < kUrgentRows; ++i) test_support::add_whatsapp_advisor(*db_, "urg-" + std::to_string(i), before);
  });
  test_support::set_run_window(*db_, 1, kAdoptT0);
  Config cfg = parse_config("[database]\npath = \"" + db_path() +
                                "\"\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 50\n",
                            "");
  ManualClock clock(kAdoptT0 - 1'000);
  const std::string owner = "urgent-adopt-test";
  ASSERT_TRUE(store::RunAcquireLease(*db_, 1, owner, clock.now(), cfg.dispatch.lease_ms).acquired);

  AdoptTransport t;
  Millis urgent_at = 0;
  std::int64_t urgent_run = 0;
  t.on_request = [&](int n) {
    if (n != 20) return;
    // What send-now writes: a run of kind urgent, slot now, its rows planned now.
    urgent_at = clock.now();
    store::RunUpsertParams rp;
    rp.date = "2026-11-28";
    rp.window = {urgent_at, urgent_at, urgent_at + 300'000, urgent_at + 300'000};
    rp.planned_count = kUrgentRows;
    db_->write_tx([&] {
      urgent_run = store::RunInsertUrgent(*db_, rp);
      for (int i = 0; i < kUrgentRows; ++i) {
        auto d = test_support::planned_delivery(urgent_run, "urg-" + std::to_string(i), "2026-11-28", urgent_at, urgent_at, urgent_at);
        d.deadline_at = urgent_at + 300'000;
        d.source = "urgent";
        ASSERT_TRUE(store::DeliveryInsert(*db_, d));
      }
    });
  };
  // The clock moves 5 ms per real millisecond (not the harness's 20): the adoption poll and its
  // commits get four times the real time per simulated second, so a loaded machine (ASan beside
  // the other tests) does not let the morning run finish before the urgent run is taken.
  auto summary = test_support::run_dispatch_ticking(cfg, clock, t, owner, {1}, "URGENT_ADOPT_TEST_LOG", nullptr, {}, 5);

  ASSERT_NE(urgent_run, 0);
  EXPECT_EQ(summary.runs_adopted, (std::vector<std::int64_t>{urgent_run}));
  EXPECT_EQ(std::set<std::int64_t>(summary.runs_closed.begin(), summary.runs_closed.end()),
            (std::set<std::int64_t>{1, urgent_run}));
  EXPECT_FALSE(summary.lost_lease);
  EXPECT_EQ(t.requests(), kMorningRows + kUrgentRows);  // every row once, none twice
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'accepted'"), kMorningRows + kUrgentRows);
  EXPECT_EQ(scalar("SELECT state = 'closed' AND kind = 'urgent' FROM runs WHERE run_id = " + std::to_string(urgent_run)), 1);
  // Taken within the adoption poll (2 s) plus a commit or two, and sent at once ahead of the
  // morning's rows due meanwhile: the urgent run's last send comes before the morning's last.
  const auto first_u = scalar("SELECT MIN(first_sent_at) FROM deliveries WHERE run_id = " + std::to_string(urgent_run));
  const auto last_u = scalar("SELECT MAX(first_sent_at) FROM deliveries WHERE run_id = " + std::to_string(urgent_run));
  const auto last_m = scalar("SELECT MAX(first_sent_at) FROM deliveries WHERE run_id = 1");
  EXPECT_LE(first_u - urgent_at, 3'000);
  EXPECT_LT(last_u, last_m);
  // Morning rows sent while the urgent run was being sent: only what was already claimed.
  const auto interleaved = scalar("SELECT COUNT(*) FROM deliveries WHERE run_id = 1 AND first_sent_at > " +
                                  std::to_string(first_u) + " AND first_sent_at < " + std::to_string(last_u));
  EXPECT_LE(interleaved, 10) << "morning rows sent between the urgent run's first and last send";
}

}  // namespace
}  // namespace daybreak
