// `sla-report trend` (build_trend in core/app/report.cpp) over a simulated 30 days of stored
// run reports: per-day SLA over the day's deliveries, a day missed when any of its runs missed,
// days without runs and runs without a stored report counted apart, and the summary.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "db_fixture.hpp"
#include "cli/common.hpp"
#include "app/report.hpp"
#include "store/reports.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr Millis kDay = 86'400'000;
constexpr Millis kNov1 = 1795825800000 - 27 * kDay;  // 2026-11-01T00:30:00Z = 06:00 IST

class TrendTest : public test_support::DbTest {
 protected:
  TrendTest() : DbTest("trend", "ledger.db") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    db_->exec("INSERT INTO content(content_id, title, body, language, updated_at) VALUES ('c1','t','b','en',0)");
    db_->exec("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) "
              "INSERT INTO advisors(advisor_id, name, tier, timezone, slot, channels, opted_in, language, updated_at) "
              "SELECT 'A' || i, 'n', 'gold', 'Asia/Kolkata', '06:00', 'whatsapp', 1, 'en', 0 FROM n");
  }
  // A closed run of `n` deliveries of which `late` were accepted after the deadline; its report
  // is stored unless `store` is false.
  void add_run(const std::string& date, Millis slot, int n, int late, bool store = true) {
    store::RunUpsertParams p;
    p.date = date;
    p.window = window_for(slot, WindowPolicy{});
    p.planned_count = n;
    std::int64_t run = store::RunUpsert(*db_, p);
    const std::string s = std::to_string(slot);
    db_->exec("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(n - 1) + ") "
              "INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, "
              "sender, planned_at, deadline_at, first_sent_at, accepted_at, updated_at, order_key) "
              "SELECT " + std::to_string(run) + ", 'A' || i, '" + date + "', " + s + ", 'c1', 'editorial', 'gold', 1, 'accepted', "
              "'whatsapp', 'wa-1', " + s + " + i * 100, " + s + " + 300000, " + s + " + i * 100 + 5, "
              "CASE WHEN i < " + std::to_string(late) + " THEN " + s + " + 400000 ELSE " + s + " + i * 100 + 300 END, 0, daybreak_order_key('A' || i, '" + date + "') FROM n");
    db_->exec("UPDATE runs SET state = 'closed' WHERE run_id = " + std::to_string(run));
    if (store) store_run_report(*db_, *store::RunGet(*db_, run), slot + 3'600'000);
  }

  // November 2026: one 06:00 IST run of 100 a day, except: no run on the 11th; the 4th, 18th
  // and 25th miss with 5 late; the 21st has a second run (06:00 London, 50 deliveries, 1 late)
  // that misses alone; the 26th's report was never stored.
  void simulate_november() {
    for (int k = 0; k < 30; ++k) {
      const std::string date = fmt(k);
      const Millis slot = kNov1 + k * kDay;
      if (k == 10) continue;
      add_run(date, slot, 100, (k == 3 || k == 17 || k == 24) ? 5 : 0, k != 25);
      if (k == 20) add_run(date, slot + 19'800'000, 50, 1);
    }
  }
  static std::string fmt(int k) {
    // k is a day index 0..29: the day of month is two digits
    std::string day = std::to_string(k + 1);
    return "2026-11-" + std::string(day.size() < 2 ? "0" : "") + day;
  }

};

TEST_F(TrendTest, ThirtyDaysOfStoredReports) {
  simulate_november();
  json t = build_trend(*db_, "2026-11-30", 30);
  EXPECT_EQ(t["from"], "2026-11-01");
  EXPECT_EQ(t["to"], "2026-11-30");
  ASSERT_EQ(t["dates"].size(), 30u);
  const json& d = t["dates"];
  EXPECT_EQ(d[0]["date"], "2026-11-01");
  EXPECT_DOUBLE_EQ(d[0]["sla_pct"].get<double>(), 100.0);
  EXPECT_EQ(d[0]["met"], true);
  EXPECT_DOUBLE_EQ(d[3]["sla_pct"].get<double>(), 95.0);
  EXPECT_EQ(d[3]["met"], false);
  EXPECT_EQ(d[10]["runs"], 0);
  EXPECT_FALSE(d[10].contains("sla_pct"));
  // Two runs: the day's SLA is over its 150 deliveries, but the day missed because one run did.
  EXPECT_EQ(d[20]["runs"], 2);
  EXPECT_EQ(d[20]["eligible"], 150);
  EXPECT_EQ(d[20]["on_time"], 149);
  EXPECT_DOUBLE_EQ(d[20]["sla_pct"].get<double>(), 100.0 * 149 / 150);
  EXPECT_EQ(d[20]["met"], false);
  EXPECT_DOUBLE_EQ(d[20]["worst_run_sla_pct"].get<double>(), 98.0);
  EXPECT_EQ(d[25]["runs"], 1);
  EXPECT_EQ(d[25]["reported_runs"], 0);
  EXPECT_FALSE(d[25].contains("sla_pct"));

  const json& s = t["summary"];
  EXPECT_EQ(s["days_with_runs"], 29);
  EXPECT_EQ(s["days_reported"], 28);
  EXPECT_EQ(s["days_met"], 24);
  EXPECT_EQ(s["days_missed"], 4);
  EXPECT_EQ(s["runs_without_report"], 1);
  EXPECT_EQ(s["eligible"], 2850);
  EXPECT_EQ(s["on_time"], 2834);
  EXPECT_DOUBLE_EQ(s["overall_sla_pct"].get<double>(), 100.0 * 2834 / 2850);
  EXPECT_DOUBLE_EQ(s["mean_daily_sla_pct"].get<double>(), (24 * 100.0 + 3 * 95.0 + 100.0 * 149 / 150) / 28);
  EXPECT_EQ(s["worst_day"]["date"], "2026-11-04");
  EXPECT_DOUBLE_EQ(s["worst_day"]["sla_pct"].get<double>(), 95.0);

  std::string text = format_trend_text(t);
  EXPECT_NE(text.find("2026-11-04     1       100        95    95.00  MISSED"), std::string::npos) << text;
  EXPECT_NE(text.find("no stored report"), std::string::npos) << text;
  EXPECT_NE(text.find("met 24, missed 4"), std::string::npos) << text;
}

TEST_F(TrendTest, ShorterWindowAndEmptyPeriod) {
  simulate_november();
  json t = build_trend(*db_, "2026-11-30", 7);
  EXPECT_EQ(t["from"], "2026-11-24");
  EXPECT_EQ(t["summary"]["days_with_runs"], 7);
  EXPECT_EQ(t["summary"]["days_reported"], 6);
  EXPECT_EQ(t["summary"]["days_missed"], 1);
  json none = build_trend(*db_, "2026-10-15", 7);
  EXPECT_EQ(none["summary"]["days_with_runs"], 0);
  EXPECT_TRUE(none["summary"]["overall_sla_pct"].is_null());
  EXPECT_THROW(build_trend(*db_, "2026-02-30", 7), UsageError);
}

TEST_F(TrendTest, StoredReportEqualsRecomputationFromTheLedger) {
  simulate_november();
  for (const auto& run : store::RunListForDate(*db_, "2026-11-21")) {
    json stored = json::parse(*store::SlaReportGet(*db_, run.run_id));
    json fresh = build_run_report(*db_, run, stored["generated_at_ms"].get<Millis>());
    EXPECT_EQ(stored, fresh);
  }
}

}  // namespace
}  // namespace daybreak
