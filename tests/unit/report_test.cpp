// Run and date SLA reports (core/app/report.cpp, core/store/reports.cpp) over a real SQLite
// ledger: every expected figure below is worked out by hand from the rows the test inserts.
#include "app/report.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "app/callbacks.hpp"
#include "db_fixture.hpp"
#include "pg_fixture.hpp"
#include "cli/common.hpp"
#include "cli/report_watch.hpp"
#include "config/config.hpp"
#include "engine/alerts.hpp"
#include "engine/live.hpp"
#include "store/breakdown.hpp"
#include "store/dispatch_ledger.hpp"
#include "store/exports.hpp"
#include "store/pg.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_reports.hpp"
#include "store/pg_status.hpp"
#include "store/reports.hpp"
#include "store/status_events.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr Millis kSlot1 = 1795825800000;  // 2026-11-28T00:30:00Z = 06:00 IST
constexpr Millis kSlot2 = 1795845600000;  // 2026-11-28T06:00:00Z = 06:00 in London: a second run of the day
constexpr Millis kDeadlineMs = 300'000;
const std::string kDate = "2026-11-28";

// One delivery row as the test wants it; the rest of the columns get fixed values.
struct Row {
  std::string advisor;
  std::string tier;
  std::string state;
  std::string channel;
  std::string sender;
  std::string source;
  Millis planned_at = 0;
  std::optional<Millis> first_sent_at;
  std::optional<Millis> accepted_at;
  bool possible_duplicate = false;
};

class ReportTest : public test_support::DbTest {
 protected:
  ReportTest() : DbTest("report", "ledger.db") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    db_path_ = db_path();
    db_->exec("INSERT INTO content(content_id, title, body, language, updated_at) VALUES ('c1','t','b','en',0)");
  }

  std::int64_t add_run(Millis slot, const std::string& state) {
    store::RunUpsertParams p;
    p.date = kDate;
    p.window = window_for(slot, WindowPolicy{});
    std::int64_t id = store::RunUpsert(*db_, p);
    auto& q = db_->stmt("UPDATE runs SET state = ? WHERE run_id = ?");
    q.bind(1, state);
    q.bind(2, id);
    q.exec();
    return id;
  }

  std::int64_t add_delivery(std::int64_t run_id, Millis slot, const Row& r) {
    auto& a = db_->stmt(
        "INSERT OR IGNORE INTO advisors(advisor_id, name, tier, timezone, slot, channels, opted_in, language, "
        "updated_at) VALUES (?, 'n', ?, 'Asia/Kolkata', '06:00', 'whatsapp|email', 1, 'en', 0)");
    a.bind(1, r.advisor);
    a.bind(2, r.tier);
    a.exec();
    auto& q = db_->stmt(
        "INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, "
        "sender, planned_at, deadline_at, first_sent_at, accepted_at, possible_duplicate, updated_at, order_key) "
        "VALUES (?, ?, ?, ?, 'c1', ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, 0, daybreak_order_key(?2, ?3)) RETURNING delivery_id");
    q.bind(1, run_id);
    q.bind(2, r.advisor);
    q.bind(3, kDate);
    q.bind(4, slot);
    q.bind(5, r.source);
    q.bind(6, r.tier);
    q.bind(7, r.state);
    q.bind(8, r.channel);
    q.bind(9, r.sender);
    q.bind(10, r.planned_at);
    q.bind(11, slot + kDeadlineMs);
    if (r.first_sent_at) q.bind(12, *r.first_sent_at); else q.bind(12);
    if (r.accepted_at) q.bind(13, *r.accepted_at); else q.bind(13);
    q.bind(14, r.possible_duplicate ? 1 : 0);
    q.executeStep();
    std::int64_t id = q.getColumn(0).getInt64();
    q.reset();
    return id;
  }

  void add_attempt(std::int64_t delivery_id, int no, const std::string& outcome, const std::string& code,
                   const std::string& detail) {
    auto& q = db_->stmt(
        "INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, "
        "error_code, error_detail) VALUES (?, ?, 'whatsapp', 'wa-1', 0, 0, ?, ?, ?)");
    q.bind(1, delivery_id);
    q.bind(2, no);
    q.bind(3, outcome);
    if (code.empty()) q.bind(4); else q.bind(4, code);
    if (detail.empty()) q.bind(5); else q.bind(5, detail);
    q.exec();
  }

  // Run 1 (06:00 IST, closed): eight deliveries over two tiers covering every outcome.
  //   d1 platinum accepted on time    lag 10  accept lag 200
  //   d2 platinum delivered on time   lag 30  accept lag 500
  //   d3 platinum read, but late      lag 50  accepted 1 s after the deadline
  //   d4 platinum dead                lag 20
  //   d5 gold accepted on time on the fallback channel (email), possible duplicate, lag 40, accept lag 900
  //   d6 gold retry_wait (failed)     lag 60
  //   d7 gold cancelled               (not eligible)
  //   d8 gold planned, never sent     (failed)
  std::int64_t make_run1(const std::string& state = "closed") {
    const Millis s = kSlot1, dl = kSlot1 + kDeadlineMs;
    std::int64_t run = add_run(s, state);
    auto d1 = add_delivery(run, s, {"a1", "platinum", "accepted", "whatsapp", "wa-1", "editorial", s - 20000, s - 19990, s - 19800, false});
    auto d2 = add_delivery(run, s, {"a2", "platinum", "delivered", "whatsapp", "wa-1", "editorial", s - 10000, s - 9970, s - 9500, false});
    auto d3 = add_delivery(run, s, {"a3", "platinum", "read", "whatsapp", "wa-1", "editorial", s + 200000, s + 200050, dl + 1000, false});
    auto d4 = add_delivery(run, s, {"a4", "platinum", "dead", "whatsapp", "wa-1", "editorial", s, s + 20, std::nullopt, false});
    auto d5 = add_delivery(run, s, {"a5", "gold", "accepted", "email", "smtp-1", "fallback", s + 1000, s + 1040, s + 1900, true});
    auto d6 = add_delivery(run, s, {"a6", "gold", "retry_wait", "email", "smtp-1", "emergency", s + 2000, s + 2060, std::nullopt, false});
    add_delivery(run, s, {"a7", "gold", "cancelled", "email", "smtp-1", "editorial", s + 3000, std::nullopt, std::nullopt, false});
    add_delivery(run, s, {"a8", "gold", "planned", "email", "smtp-1", "editorial", s + 4000, std::nullopt, std::nullopt, false});
    add_attempt(d1, 1, "accepted", "", "");
    add_attempt(d2, 1, "retryable", "131000", "Something went wrong");
    add_attempt(d2, 2, "accepted", "", "");
    add_attempt(d3, 1, "rate_limited", "130429", "Rate limit hit");
    add_attempt(d3, 2, "accepted", "", "");
    add_attempt(d4, 1, "retryable", "131000", "Something went wrong (again)");
    add_attempt(d4, 2, "permanent", "131026", "Message undeliverable");
    add_attempt(d5, 1, "permanent", "131047", "Re-engagement message");
    add_attempt(d5, 2, "uncertain", "", "");
    add_attempt(d5, 3, "accepted", "", "");
    add_attempt(d6, 1, "retryable", "421", "421 <a.rao@example.com> try again later, +919812345678");
    return run;  // 11 attempts
  }

  // Run 2 (06:00 London, closed): two platinum deliveries, both on time, lags 5 and 15.
  std::int64_t make_run2() {
    const Millis s = kSlot2;
    std::int64_t run = add_run(s, "closed");
    auto e1 = add_delivery(run, s, {"b1", "platinum", "accepted", "whatsapp", "wa-2", "editorial", s - 5000, s - 4995, s - 4000, false});
    auto e2 = add_delivery(run, s, {"b2", "platinum", "read", "whatsapp", "wa-2", "advisor", s, s + 15, s + 700, false});
    add_attempt(e1, 1, "accepted", "", "");
    add_attempt(e2, 1, "accepted", "", "");
    return run;
  }

  store::Run load_run(std::int64_t id) { return store::RunGet(*db_, id).value(); }

  std::string db_path_;
};

TEST_F(ReportTest, OutcomesLoadEveryDeliveryOfTheRun) {
  auto id = make_run1();
  make_run2();
  std::map<std::string, std::int64_t> sources;
  auto outcomes = store::DeliveryOutcomesForRun(*db_, id, &sources);
  ASSERT_EQ(outcomes.size(), 8u);
  // Found by planned time: the loader returns index order (state, id), which no caller relies on.
  auto at = [&](Millis planned) -> const DeliveryOutcome& {
    auto it = std::find_if(outcomes.begin(), outcomes.end(), [&](const auto& o) { return o.planned_at == planned; });
    EXPECT_NE(it, outcomes.end()) << planned;
    return *it;
  };
  const DeliveryOutcome& late = at(kSlot1 + 200000);
  EXPECT_EQ(late.state, DeliveryState::read);
  EXPECT_EQ(late.tier, "platinum");
  EXPECT_EQ(late.deadline_at, kSlot1 + kDeadlineMs);
  EXPECT_EQ(late.first_sent_at, kSlot1 + 200050);
  EXPECT_EQ(late.accepted_at, kSlot1 + kDeadlineMs + 1000);
  const DeliveryOutcome& fallback = at(kSlot1 + 1000);
  EXPECT_EQ(fallback.channel, "email");
  EXPECT_EQ(fallback.sender, "smtp-1");
  EXPECT_TRUE(fallback.possible_duplicate);
  const DeliveryOutcome& unsent = at(kSlot1 + 4000);
  EXPECT_EQ(unsent.state, DeliveryState::planned);
  EXPECT_FALSE(unsent.first_sent_at.has_value());
  EXPECT_FALSE(unsent.accepted_at.has_value());
  EXPECT_FALSE(unsent.possible_duplicate);
  EXPECT_EQ(sources, (std::map<std::string, std::int64_t>{{"editorial", 6}, {"emergency", 1}, {"fallback", 1}}));
  EXPECT_TRUE(store::DeliveryOutcomesForRun(*db_, id + 100).empty());
}

TEST_F(ReportTest, RunReportFiguresMatchTheLedger) {
  auto id = make_run1();
  const Millis now = kSlot1 + 2 * 3600 * 1000;
  json r = build_run_report(*db_, load_run(id), now);

  EXPECT_EQ(r["kind"], "run");
  EXPECT_EQ(r["run_id"], id);
  EXPECT_EQ(r["date"], kDate);
  EXPECT_EQ(r["slot_at"], "2026-11-28T00:30:00Z");
  EXPECT_EQ(r["slot_at_ms"], kSlot1);
  EXPECT_EQ(r["deadline_at"], "2026-11-28T00:35:00Z");
  EXPECT_EQ(r["state"], "closed");
  EXPECT_EQ(r["closed"], true);
  EXPECT_EQ(r["eligible"], 7);
  EXPECT_EQ(r["on_time"], 3);
  EXPECT_EQ(r["late"], 1);
  EXPECT_EQ(r["failed"], 2);
  EXPECT_EQ(r["dead"], 1);
  EXPECT_EQ(r["cancelled"], 1);
  EXPECT_EQ(r["possible_duplicates"], 1);
  EXPECT_DOUBLE_EQ(r["sla_pct"].get<double>(), 300.0 / 7.0);
  EXPECT_DOUBLE_EQ(r["target_pct"].get<double>(), 99.0);
  EXPECT_EQ(r["met"], false);
  EXPECT_EQ(r["verdict"], "missed");
  EXPECT_EQ(report_exit_code(r), kExitCheckFailed);
  // Every eligible delivery is decided two hours later: 3 on time of 7.
  EXPECT_DOUBLE_EQ(r["live_success_pct"].get<double>(), 300.0 / 7.0);

  // Dispatch lag over the six sent: 10 20 30 40 50 60 (nearest rank).
  EXPECT_EQ(r["lag_ms"]["n"], 6);
  EXPECT_EQ(r["lag_ms"]["p50"], 30);
  EXPECT_EQ(r["lag_ms"]["p95"], 60);
  EXPECT_EQ(r["lag_ms"]["p99"], 60);
  EXPECT_EQ(r["lag_ms"]["max"], 60);
  // Accept lag over the four accepted: 200 500 900 101000.
  EXPECT_EQ(r["accept_lag_ms"]["n"], 4);
  EXPECT_EQ(r["accept_lag_ms"]["p50"], 500);
  EXPECT_EQ(r["accept_lag_ms"]["p99"], 101000);

  const json& plat = r["by_tier"]["platinum"];
  EXPECT_EQ(plat["eligible"], 4);
  EXPECT_EQ(plat["on_time"], 2);
  EXPECT_EQ(plat["late"], 1);
  EXPECT_EQ(plat["dead"], 1);
  EXPECT_EQ(plat["failed"], 0);
  EXPECT_DOUBLE_EQ(plat["sla_pct"].get<double>(), 50.0);
  const json& gold = r["by_tier"]["gold"];
  EXPECT_EQ(gold["eligible"], 3);
  EXPECT_EQ(gold["on_time"], 1);
  EXPECT_EQ(gold["failed"], 2);
  EXPECT_EQ(gold["cancelled"], 1);
  EXPECT_DOUBLE_EQ(gold["sla_pct"].get<double>(), 100.0 / 3.0);
  EXPECT_EQ(r["by_channel"]["email"]["eligible"], 3);
  EXPECT_EQ(r["by_channel"]["whatsapp"]["on_time"], 2);
  EXPECT_EQ(r["by_sender"]["smtp-1"]["on_time"], 1);
  EXPECT_EQ(r["by_source"], (json{{"editorial", 6}, {"emergency", 1}, {"fallback", 1}}));

  EXPECT_EQ(r["attempts"], 11);
  const json& reasons = r["top_failure_reasons"];
  ASSERT_EQ(reasons.size(), 6u);
  EXPECT_EQ(reasons[0]["error_code"], "131000");
  EXPECT_EQ(reasons[0]["count"], 2);
  EXPECT_EQ(reasons[0]["example"], "Something went wrong (again)");  // the most recent one
  EXPECT_EQ(reasons[0]["outcome"], "retryable");
  // Ties by code, so the order is stable.
  EXPECT_EQ(reasons[1]["error_code"], "130429");
  EXPECT_EQ(reasons[2]["error_code"], "131026");
  EXPECT_EQ(reasons[3]["error_code"], "131047");
  EXPECT_EQ(reasons[4]["error_code"], "421");
  // Addresses quoted by a provider are masked as in the logs.
  EXPECT_EQ(reasons[4]["example"], "421 <a***@example.com> try again later, +91******5678");
  EXPECT_EQ(reasons[5]["error_code"], "uncertain");  // no code recorded: the outcome stands in
  EXPECT_EQ(reasons[5]["count"], 1);
}

// docs/whatsapp-errors.md: attempts held for quality assessment, unknown codes and blocks are
// counted per run and per day, in JSON and text.
TEST_F(ReportTest, ProviderFiguresHeldForQualityUnknownCodesAndBlocks) {
  auto id = make_run1();
  const Millis now = kSlot1 + 2 * 3600 * 1000;
  json before = build_run_report(*db_, load_run(id), now);
  EXPECT_EQ(before["held_for_quality"], 0);
  EXPECT_EQ(before["unknown_error_codes"], 0);
  // d1's accepted attempt was held; two attempts of d4 answered a code the table lacks; one 131048, one 368.
  db_->exec("UPDATE delivery_attempts SET held_for_quality = 1 WHERE outcome = 'accepted' AND delivery_id = "
            "(SELECT MIN(delivery_id) FROM deliveries WHERE run_id = " + std::to_string(id) + ")");
  const auto d4 = db_->raw().execAndGet("SELECT delivery_id FROM deliveries WHERE advisor_id = 'a4'").getInt64();
  add_attempt(d4, 3, "retryable", "139999", "unknown");
  add_attempt(d4, 4, "retryable", "139999", "unknown");
  add_attempt(d4, 5, "blocked", "131048", "Spam rate limit hit");
  add_attempt(d4, 6, "blocked", "368", "Temporarily blocked");
  db_->exec("UPDATE delivery_attempts SET error_scope = 'unknown' WHERE error_code = '139999'");
  db_->exec("UPDATE delivery_attempts SET error_scope = 'phone_number', fbtrace_id = 'AbC' WHERE error_code = '131048'");
  db_->exec("UPDATE delivery_attempts SET error_scope = 'account' WHERE error_code = '368'");
  json r = build_run_report(*db_, load_run(id), now);
  EXPECT_EQ(r["held_for_quality"], 1);
  EXPECT_EQ(r["unknown_error_codes"], 2);
  EXPECT_EQ(r["unknown_codes"], json({{"139999", 2}}));
  EXPECT_EQ(r["number_blocked_attempts"], 1);
  EXPECT_EQ(r["account_blocked_attempts"], 1);
  json d = build_date_report(*db_, kDate, now);
  EXPECT_EQ(d["held_for_quality"], 1);
  EXPECT_EQ(d["unknown_error_codes"], 2);
  const std::string text = format_report_text(r, {"platinum", "gold"}, "");
  EXPECT_NE(text.find("held for quality assessment 1  unknown error codes 2 (139999 x2)  number blocked 1  account blocked 1"),
            std::string::npos)
      << text;
}

TEST_F(ReportTest, StoredReportEqualsAFreshRecomputation) {
  auto id = make_run1();
  const Millis now = kSlot1 + 3600 * 1000;
  store::Run stale = load_run(id);
  stale.state = "running";  // the caller's copy from before RunClose
  store_run_report(*db_, stale, now);

  auto text = store::SlaReportGet(*db_, id);
  ASSERT_TRUE(text.has_value());
  json stored = json::parse(*text);
  EXPECT_EQ(stored, build_run_report(*db_, load_run(id), now));
  EXPECT_EQ(stored["closed"], true);  // the row was re-read, not the stale copy used

  auto summary = store::SlaReportGetSummary(*db_, id);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->date, kDate);
  EXPECT_EQ(summary->generated_at, now);
  EXPECT_DOUBLE_EQ(summary->sla_pct, 300.0 / 7.0);

  // Storing again replaces the row instead of failing on the key.
  store_run_report(*db_, load_run(id), now + 1);
  EXPECT_EQ(store::SlaReportGetSummary(*db_, id)->generated_at, now + 1);
  EXPECT_FALSE(store::SlaReportGet(*db_, id + 100).has_value());
}

TEST_F(ReportTest, DateReportCombinesEveryDeliveryOfTheDay) {
  auto id1 = make_run1();
  auto id2 = make_run2();
  store_run_report(*db_, load_run(id2), kSlot2 + 3600 * 1000);
  json d = build_date_report(*db_, kDate, kSlot2 + 3600 * 1000);

  EXPECT_EQ(d["kind"], "date");
  EXPECT_EQ(d["date"], kDate);
  EXPECT_EQ(d["closed"], true);
  EXPECT_EQ(d["eligible"], 9);
  EXPECT_EQ(d["on_time"], 5);
  EXPECT_EQ(d["late"], 1);
  EXPECT_EQ(d["failed"], 2);
  EXPECT_EQ(d["dead"], 1);
  EXPECT_EQ(d["cancelled"], 1);
  EXPECT_DOUBLE_EQ(d["sla_pct"].get<double>(), 500.0 / 9.0);  // over deliveries, not the mean of runs
  // Lags of both runs: 5 10 15 20 30 40 50 60.
  EXPECT_EQ(d["lag_ms"]["n"], 8);
  EXPECT_EQ(d["lag_ms"]["p50"], 20);
  EXPECT_EQ(d["lag_ms"]["p99"], 60);
  EXPECT_EQ(d["by_tier"]["platinum"]["eligible"], 6);
  EXPECT_EQ(d["by_tier"]["platinum"]["on_time"], 4);
  EXPECT_EQ(d["by_tier"]["gold"]["eligible"], 3);
  EXPECT_EQ(d["by_sender"]["wa-2"]["on_time"], 2);
  EXPECT_EQ(d["by_source"]["advisor"], 1);
  EXPECT_EQ(d["attempts"], 13);
  EXPECT_EQ(d["top_failure_reasons"][0]["error_code"], "131000");

  ASSERT_EQ(d["runs"].size(), 2u);
  EXPECT_EQ(d["runs"][0]["run_id"], id1);
  EXPECT_EQ(d["runs"][0]["verdict"], "missed");
  EXPECT_EQ(d["runs"][0]["stored_report"], false);
  EXPECT_EQ(d["runs"][1]["run_id"], id2);
  EXPECT_EQ(d["runs"][1]["slot_at"], "2026-11-28T06:00:00Z");
  EXPECT_DOUBLE_EQ(d["runs"][1]["sla_pct"].get<double>(), 100.0);
  EXPECT_EQ(d["runs"][1]["verdict"], "met");
  EXPECT_EQ(d["runs"][1]["stored_report"], true);
  // The target is per run: one missed run fails the day.
  EXPECT_EQ(d["met"], false);
  EXPECT_EQ(d["verdict"], "missed");
  EXPECT_EQ(report_exit_code(d), kExitCheckFailed);

  EXPECT_THROW(build_date_report(*db_, "2026-11-29", kSlot2), CheckFailed);
}

TEST_F(ReportTest, OpenRunIsInProgressUntilItsDeadlinePasses) {
  auto id = make_run2();
  auto& q = db_->stmt("UPDATE runs SET state = 'running' WHERE run_id = ?");
  q.bind(1, id);
  q.exec();
  // Make one delivery still pending so the run is not yet at 100%.
  db_->exec("UPDATE deliveries SET state = 'retry_wait', accepted_at = NULL WHERE advisor_id = 'b2'");

  json before = build_run_report(*db_, load_run(id), kSlot2 + 60'000);
  EXPECT_EQ(before["closed"], false);
  EXPECT_EQ(before["met"], false);  // 50% so far
  EXPECT_EQ(before["verdict"], "in_progress");
  EXPECT_EQ(report_exit_code(before), kExitOk);

  // Past the deadline and its grace, the SLA is settled even though dispatch never closed the run.
  json after = build_run_report(*db_, load_run(id), kSlot2 + kDeadlineMs + kDecidedGraceMs);
  EXPECT_EQ(after["verdict"], "missed");
  EXPECT_EQ(report_exit_code(after), kExitCheckFailed);
}

TEST_F(ReportTest, VerdictRules) {
  EXPECT_EQ(run_verdict(true, 99.0, 0, 0), "met");
  EXPECT_EQ(run_verdict(true, 98.99, 100, 100), "missed");
  EXPECT_EQ(run_verdict(false, 10, 100, 100), "in_progress");
  EXPECT_EQ(run_verdict(false, 10, 96.9, kLiveMinSample), "at_risk");
  EXPECT_EQ(run_verdict(false, 10, 0, kLiveMinSample - 1), "in_progress");  // too few to judge
  EXPECT_EQ(report_exit_code(json{{"verdict", "at_risk"}}), kExitCheckFailed);
  EXPECT_EQ(report_exit_code(json{{"verdict", "met"}}), kExitOk);
}

TEST_F(ReportTest, TextReportNamesTheVerdictAndOrdersTiers) {
  auto id = make_run1();
  json r = build_run_report(*db_, load_run(id), kSlot1 + 3600 * 1000);
  std::string text = format_report_text(r, {"platinum", "gold", "silver", "standard"}, "Asia/Kolkata");
  EXPECT_NE(text.find("SLA 42.85% vs target 99.00%: MISSED"), std::string::npos) << text;  // cut, not rounded
  EXPECT_NE(text.find("slot 2026-11-28T06:00:00+05:30"), std::string::npos) << text;
  EXPECT_LT(text.find("platinum"), text.find("gold")) << text;
  EXPECT_NE(text.find("Message undeliverable"), std::string::npos) << text;
}

TEST_F(ReportTest, ReadOnlyConnectionReadsTheReport) {
  auto id = make_run1();
  store::OpenOptions ro;
  ro.read_only = true;
  ro.migrate = false;
  store::Db reader(db_path_, ro);
  json a = build_run_report(reader, load_run(id), kSlot1);
  json b = build_run_report(*db_, load_run(id), kSlot1);
  EXPECT_EQ(a, b);
}

// ---- delivery truth: delivered / read / unknown / failed-after-accept from status callbacks ----

// Applies `statuses` (message id, status, provider time, error code or 0) through the receiver's
// own path (store, insert, apply), as daybreak-callbacks does.
void apply_statuses(store::Db& db, const std::vector<std::tuple<std::string, MessageStatus, Millis, long>>& statuses,
                    Millis now) {
  static int n = 0;
  db.write_tx([&] {
    store::StatusEventStoreParams p;
    p.signature = "sha256=00";
    p.body = "{\"n\":" + std::to_string(++n) + "}";
    p.now = now;
    auto e = store::StatusEventStore(db, p);
    std::vector<StatusUpdate> us;
    for (const auto& [id, st, at, code] : statuses) {
      StatusUpdate u;
      u.provider_message_id = id;
      u.status = st;
      u.provider_at = at;
      if (code) u.error_code = code;
      us.push_back(u);
    }
    store::StatusUpdatesInsert(db, e.event_id, us, now);
    store::StatusApplyEvent(db, e.event_id, now);
  });
}

class DeliveryTruthTest : public ReportTest {
 protected:
  // One run at kSlot1, every delivery accepted on time unless said otherwise; statuses by callback:
  //   t1 delivered 100 s before the deadline, read 60 s after it   → delivered on time, read
  //   t2 delivered 30 s after the deadline                           → delivered, not on time
  //   t3 read 5 s before the deadline, no delivered status           → delivered on time (read implies it), read
  //   t4 failed 131049                                               → failed after accept
  //   t5 sent only                                                   → unknown
  //   t6 no status at all                                            → unknown
  //   t7 dead                                                        → none (not accepted)
  //   t8 cancelled                                                   → not eligible
  //   t9 email, accepted, no callbacks exist for email               → unknown
  // eligible 8, accepted on time 7, delivered on time 2, delivered 3, read 2, unknown 3, failed after accept 1.
  std::int64_t make_truth_run(const std::string& state) {
    const Millis s = kSlot1, dl = kSlot1 + kDeadlineMs;
    std::int64_t run = add_run(s, state);
    int i = 0;
    for (const char* st : {"accepted", "accepted", "accepted", "accepted", "accepted", "accepted", "dead", "cancelled"}) {
      ++i;
      const bool acc = std::string(st) == "accepted";
      auto id = add_delivery(run, s, {"t" + std::to_string(i), "gold", st, "whatsapp", "wa-1", "editorial", s, s + 10,
                                      acc ? std::optional<Millis>(s + 500) : std::nullopt, false});
      if (acc) db_->exec("UPDATE deliveries SET provider_message_id = 'wamid.t" + std::to_string(i) + "' WHERE delivery_id = " + std::to_string(id));
    }
    add_delivery(run, s, {"t9", "gold", "accepted", "email", "smtp-1", "editorial", s, s + 10, s + 400, false});
    apply_statuses(*db_,
                   {{"wamid.t1", MessageStatus::delivered, dl - 100'000, 0},
                    {"wamid.t1", MessageStatus::read, dl + 60'000, 0},
                    {"wamid.t2", MessageStatus::delivered, dl + 30'000, 0},
                    {"wamid.t3", MessageStatus::read, dl - 5'000, 0},
                    {"wamid.t4", MessageStatus::failed, s + 2'000, 131049},
                    {"wamid.t5", MessageStatus::sent, s + 1'000, 0}},
                   dl + 90'000);
    return run;
  }
};

TEST_F(DeliveryTruthTest, RunReportShowsDeliveredReadUnknownAndFailedAfterAccept) {
  auto id = make_truth_run("closed");
  json r = build_run_report(*db_, load_run(id), kSlot1 + 3'600'000);
  EXPECT_EQ(r["eligible"], 8);
  EXPECT_EQ(r["on_time"], 7);  // the accepted headline is unchanged
  EXPECT_DOUBLE_EQ(r["sla_pct"].get<double>(), 87.5);
  EXPECT_EQ(r["delivered_on_time"], 2);
  EXPECT_EQ(r["delivered"], 3);
  EXPECT_EQ(r["read"], 2);
  EXPECT_EQ(r["unknown"], 3);
  EXPECT_EQ(r["failed_after_accept"], 1);
  EXPECT_DOUBLE_EQ(r["delivered_sla_pct"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(r["read_pct"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(r["unknown_pct"].get<double>(), 37.5);
  EXPECT_DOUBLE_EQ(r["failed_after_accept_pct"].get<double>(), 12.5);
  EXPECT_EQ(r["by_channel"]["email"]["unknown"], 1);
  EXPECT_EQ(r["by_channel"]["whatsapp"]["delivered_on_time"], 2);
  EXPECT_EQ(r["verdict"], "missed");  // judged on accepted: 87.5% < 99%
  std::string text = format_report_text(r, {"gold"}, "");
  EXPECT_NE(text.find("delivered within deadline 25.00% (2)  read 25.00% (2)  status unknown 37.50% (3)  failed after accept 12.50% (1)"),
            std::string::npos) << text;
  EXPECT_EQ(text.find("no delivery status has reached the ledger"), std::string::npos) << text;
  std::string html = render_html_report(*db_, r, {id}, build_trend(*db_, kDate, 1), "");
  EXPECT_NE(html.find("delivered within the deadline (status callbacks) <b>25.00%</b>"), std::string::npos);
  // Text from the ledger is escaped for both element content and the single-quoted attributes the
  // report uses, so a quote cannot end an attribute.
  auto hostile = r;
  hostile["notes"] = json::array({"it's <script>x</script>"});
  const std::string hostile_html = render_html_report(*db_, hostile, {id}, build_trend(*db_, kDate, 1), "");
  EXPECT_NE(hostile_html.find("it&#39;s &lt;script&gt;x&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(hostile_html.find("<script>x"), std::string::npos);
  // Not one status for any accepted message: the text says where to look, not only "0%".
  auto silent = r;
  silent["delivered"] = silent["delivered_on_time"] = silent["read"] = silent["failed_after_accept"] = 0;
  silent["unknown"] = 7;
  EXPECT_NE(format_report_text(silent, {"gold"}, "").find("no delivery status has reached the ledger for these deliveries: is "
                                                          "daybreak-callbacks receiving"),
            std::string::npos);
}

TEST_F(DeliveryTruthTest, SqlCountsAgreeWithTheDomainRules) {
  auto id = make_truth_run("running");
  // Before the deadline: decided on the delivered measure = t1, t2, t3 (a status), t4 (failed), t7 (dead).
  const Millis before = kSlot1 + kDeadlineMs - 1'000;
  store::DeliveryTruth c = store::DeliveryTruthForRun(*db_, id, before);
  EXPECT_EQ(c.eligible, 8);
  EXPECT_EQ(c.on_time, 7);
  EXPECT_EQ(c.delivered_on_time, 2);
  EXPECT_EQ(c.delivered, 3);
  EXPECT_EQ(c.read, 2);
  EXPECT_EQ(c.unknown, 3);
  EXPECT_EQ(c.failed_after_accept, 1);
  EXPECT_EQ(c.delivered_decided, 5);
  EXPECT_EQ(c.delivered_decided_on_time, 2);
  json r = build_run_report(*db_, load_run(id), before);
  EXPECT_DOUBLE_EQ(r["live_delivered_pct"].get<double>(), 40.0);
  // After the deadline every eligible delivery is decided.
  EXPECT_EQ(store::DeliveryTruthForRun(*db_, id, kSlot1 + kDeadlineMs + 1).delivered_decided, 8);
  // The trend counts the same from the ledger (no stored report needed for these).
  json t = build_trend(*db_, kDate, 1);
  const json& d = t["dates"][0];
  EXPECT_EQ(d["delivered_on_time"], 2);
  EXPECT_EQ(d["read"], 2);
  EXPECT_EQ(d["unknown"], 3);
  EXPECT_EQ(d["failed_after_accept"], 1);
  EXPECT_DOUBLE_EQ(d["delivered_sla_pct"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(t["summary"]["overall_delivered_sla_pct"].get<double>(), 25.0);
}

TEST_F(DeliveryTruthTest, LiveSnapshotAndLowSuccessRuleUseTheChosenMeasure) {
  auto id = make_truth_run("running");
  const Millis now = kSlot1 + kDeadlineMs - 1'000;
  Config cfg;
  engine::LiveSnapshot snap = engine::snapshot_from_ledger(*db_, {id}, cfg, now);
  ASSERT_EQ(snap.runs.size(), 1u);
  json l = engine::run_live_json(snap.runs[0]);
  EXPECT_EQ(l["delivered_on_time"], 2);
  EXPECT_EQ(l["unknown"], 3);
  EXPECT_EQ(l["failed_after_accept"], 1);
  EXPECT_DOUBLE_EQ(l["delivered_so_far_pct"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(l["live_delivered_pct"].get<double>(), 40.0);
  // Accepted live success is 7 of 8 decided = 87.5%: above an 80% threshold, so with the default
  // measure the rule is quiet; on the delivered measure (40%) it fires.
  AlertsConfig a;
  a.min_sample = 5;
  a.live_success_pct = 80;
  EXPECT_TRUE(engine::AlertEngine(a).live_conditions(snap, now).empty());
  a.success_measure = "delivered";
  auto conds = engine::AlertEngine(a).live_conditions(snap, now);
  ASSERT_EQ(conds.size(), 1u);
  EXPECT_EQ(conds[0].rule, "live_success_low");
  EXPECT_NE(conds[0].message.find("live delivered success 40.00%"), std::string::npos) << conds[0].message;
  EXPECT_NE(conds[0].message.find("1 failed after accept, 3 status unknown"), std::string::npos) << conds[0].message;
  // A snapshot without status figures (dispatch's, when it does not count them) says nothing.
  snap.runs[0].status.reset();
  EXPECT_TRUE(engine::AlertEngine(a).live_conditions(snap, now).empty());
}

// ledger_op::StoreRunReport on the SQLite ledger (the SQLite dispatch stores its reports with
// its Local hook; the operation does the same there): only for the close at that instant, the
// report the builder makes, upserted into sla_reports.
TEST_F(ReportTest, StoreRunReportOnTheSqliteLedgerStoresOnlyTheReportOfItsClose) {
  const std::int64_t id = make_run2();
  const Millis closed = kSlot2 + 3'600'000;
  db_->exec("UPDATE runs SET finished_at = " + std::to_string(closed) + " WHERE run_id = " + std::to_string(id));
  const store::RunReportBuilder build = [](store::ReportLedger& l, const store::Run& run, Millis at) {
    const json r = build_run_report(l, run, at);
    return store::BuiltRunReport{r.at("sla_pct").get<double>(), r.dump()};
  };
  {
    store::SqliteDispatchLedger l(db_path(), "me");
    l.begin();
    l.apply(store::ledger_op::StoreRunReport{id, closed - 1, build});  // not this run's close
    l.commit();
    EXPECT_FALSE(store::SlaReportGet(*db_, id).has_value());
    l.begin();
    l.apply(store::ledger_op::StoreRunReport{id, closed, build});
    l.commit();
  }
  const auto text = store::SlaReportGet(*db_, id);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(json::parse(*text), build_run_report(*db_, load_run(id), closed));
  EXPECT_EQ(store::SlaReportGetSummary(*db_, id)->generated_at, closed);
}

// ---- the same report from the PostgreSQL ledger (store/pg_reports.hpp) ----

// The SQLite day of ReportTest copied with migrate_ledger_to_pg into a throwaway PostgreSQL,
// then the same status callbacks stored and applied in each ledger by its own receiver path
// (store_callbacks on SQLite, store_callbacks_pg on PostgreSQL): the report built from
// PostgreSQL must equal the SQLite one in every field except those documented to differ
// (man/sla-report.1, "PostgreSQL ledger"): `ledger`, and `stored_report` (false: the copy
// brings no stored report; a dispatch on PostgreSQL stores those of the runs it closes). The
// delivery-status figures are compared like every other.
class PgReportTest : public test_support::WithPg<ReportTest> {
 protected:
  // Run 1 and run 2 of ReportTest, provider figures on run 1 (held, unknown codes, blocks), a
  // third run still running with deliveries due after `now`, and run 2's report stored. Every
  // WhatsApp delivery the provider took has its message id, "wamid.<advisor>".
  void make_day(Millis now) {
    make_run1();
    make_run2();
    db_->exec("UPDATE delivery_attempts SET held_for_quality = 1 WHERE outcome = 'accepted' AND delivery_id = "
              "(SELECT delivery_id FROM deliveries WHERE advisor_id = 'a1')");
    const auto d4 = db_->raw().execAndGet("SELECT delivery_id FROM deliveries WHERE advisor_id = 'a4'").getInt64();
    add_attempt(d4, 3, "retryable", "139999", "unknown");
    add_attempt(d4, 4, "blocked", "131048", "Spam rate limit hit");
    db_->exec("UPDATE delivery_attempts SET error_scope = 'unknown' WHERE error_code = '139999'");
    db_->exec("UPDATE delivery_attempts SET error_scope = 'phone_number' WHERE error_code = '131048'");
    const Millis s3 = now + 60'000;
    std::int64_t run3 = add_run(s3, "running");
    add_delivery(run3, s3, {"c1", "gold", "accepted", "whatsapp", "wa-2", "override", s3 - 90'000, s3 - 89'990, s3 - 89'000, false});
    add_delivery(run3, s3, {"c2", "gold", "planned", "whatsapp", "wa-2", "editorial", s3 + 10'000, std::nullopt, std::nullopt, false});
    db_->exec("UPDATE deliveries SET provider_message_id = 'wamid.' || advisor_id "
              "WHERE channel = 'whatsapp' AND state IN ('accepted', 'delivered', 'read')");
    store_run_report(*db_, load_run(2), now);
  }

  // After the copy: the provider's statuses, posted to both ledgers' receivers alike.
  //   a1 (run 1, accepted on time)        failed 131026                → failed after accept
  //   a2 (run 1, delivered, no time yet)  read 1 s before the deadline → read, delivered on time
  //   b1 (run 2, accepted on time)        delivered, then read after the deadline → delivered on time, read
  //   c1 (run 3, accepted)                delivered                    → delivered on time
  //   a5 (run 1, email: no callbacks)     nothing                      → unknown
  // The day (runs 1-3): delivered 5 (a2, a3, b1, b2, c1), delivered on time 3 (a2, b1, c1: a3
  // and b2 carry no status time), read 4 (a2, a3, b1, b2), unknown 1 (a5), failed after accept 1.
  void post_statuses(Millis now) {
    const Millis dl1 = kSlot1 + kDeadlineMs, dl2 = kSlot2 + kDeadlineMs, s3 = now + 60'000;
    std::vector<VerifiedCallback> batch;
    auto status = [&](const std::string& advisor, MessageStatus st, Millis at, std::optional<long> code = {}) {
      VerifiedCallback v;
      v.signature = "sha256=test";
      v.body = R"({"id":"wamid.)" + advisor + R"(","status":")" + std::string(to_string(st)) + R"(","ts":)" + std::to_string(at) + "}";
      StatusUpdate u;
      u.provider_message_id = "wamid." + advisor;
      u.status = st;
      u.provider_at = at;
      u.phone_number_id = "100000001";
      u.error_code = code;
      if (code) u.error_title = "Message undeliverable";
      v.updates.push_back(u);
      batch.push_back(std::move(v));
    };
    status("a1", MessageStatus::failed, kSlot1 - 10'000, 131026);
    status("a2", MessageStatus::read, dl1 - 1'000);
    status("b1", MessageStatus::delivered, kSlot2 - 3'000);
    status("b1", MessageStatus::read, dl2 + 60'000);
    status("c1", MessageStatus::delivered, s3 - 80'000);
    std::vector<const VerifiedCallback*> items;
    for (const auto& b : batch) items.push_back(&b);
    auto log = std::make_shared<spdlog::logger>("pgreport", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto lite = store_callbacks(*db_, items, "receiver", "", now, *log);
    store::PgStatusStore pg_status(url_);
    auto pg = store_callbacks_pg(pg_status, items, "receiver", "", now, *log);
    ASSERT_EQ(lite.size(), batch.size());
    ASSERT_EQ(pg.size(), batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      EXPECT_EQ(lite[i].applied.applied, 1) << "SQLite, status " << i;
      EXPECT_EQ(pg[i].applied.applied, 1) << "PostgreSQL, status " << i;
    }
  }

  // The SQLite report as the PostgreSQL ledger must show it after a copy (which brings the
  // stored reports of the closed runs): only the ledger's name differs.
  static json as_on_postgresql(json j) {
    j["ledger"] = "postgresql";
    return j;
  }

  // A run closed in the copy reopened on PostgreSQL and leased to `owner`, as a resend after
  // the close and the next dispatch pass leave it.
  void reopen_on_pg(std::int64_t run_id, const std::string& owner, Millis at) {
    store::PgConn(url_).exec("UPDATE runs SET state = 'running', finished_at = NULL, reopened_at = " + std::to_string(at) +
                             ", owner = '" + owner + "', lease_until = " + std::to_string(at + 60'000) +
                             " WHERE run_id = " + std::to_string(run_id));
  }
  // What dispatch_on_pg hands its dispatcher: the report builder of app/report.hpp.
  static store::BuiltRunReport build(store::ReportLedger& ledger, const store::Run& run, Millis at) {
    const json r = build_run_report(ledger, run, at);
    return {r.at("sla_pct").get<double>(), r.dump()};
  }
  // One writer transaction of `owner`'s dispatch: the close of `run_id` at `at`, then the report
  // (StoreRunReport for the close at `report_at`), as the dispatcher queues them.
  bool close_and_report(const std::string& owner, std::int64_t run_id, Millis at, Millis report_at) {
    store::PgDispatchLedger l(url_, owner);
    l.begin();
    auto c = std::get<store::CloseResult>(l.apply(store::ledger_op::CloseRun{run_id, at, "{}"}));
    l.apply(store::ledger_op::StoreRunReport{run_id, report_at, build});
    l.commit();
    return c.closed;
  }

};

TEST_F(PgReportTest, DateAndRunReportsFromPostgresqlEqualTheSqliteOnesExceptTheDocumentedFields) {
  const Millis now = kSlot2 + 3600 * 1000;
  make_day(now);
  store::migrate_ledger_to_pg(db_path(), url_, kDate);
  post_statuses(now);
  const std::vector<std::string> tiers = {"platinum", "gold"};

  json lite_day = build_date_report(*db_, kDate, now);
  store::PgReportLedger pg(url_);
  json pg_day = build_date_report(pg, kDate, now);
  // Not a vacuous comparison: the day has figures of every kind on SQLite, delivery truth too.
  EXPECT_EQ(lite_day["ledger"], "sqlite");
  EXPECT_FALSE(lite_day.contains("notes"));
  EXPECT_EQ(lite_day["runs"].size(), 3u);
  EXPECT_EQ(lite_day["eligible"], 11);
  EXPECT_EQ(lite_day["on_time"], 6);
  EXPECT_EQ(lite_day["verdict"], "missed");
  EXPECT_EQ(lite_day["held_for_quality"], 1);
  EXPECT_EQ(lite_day["unknown_codes"], json({{"139999", 1}}));
  EXPECT_EQ(lite_day["number_blocked_attempts"], 1);
  EXPECT_EQ(lite_day["runs"][1]["stored_report"], true);

  // The delivery truth read from PostgreSQL, as worked out in post_statuses: counted, not null or 0.
  EXPECT_EQ(pg_day["delivered"], 5);
  EXPECT_EQ(pg_day["delivered_on_time"], 3);
  EXPECT_EQ(pg_day["read"], 4);
  EXPECT_EQ(pg_day["unknown"], 1);
  EXPECT_EQ(pg_day["failed_after_accept"], 1);
  EXPECT_DOUBLE_EQ(pg_day["delivered_sla_pct"].get<double>(), 100.0 * 3 / 11);
  EXPECT_EQ(pg_day["by_channel"]["email"]["unknown"], 1);
  EXPECT_EQ(pg_day["by_sender"]["wa-2"]["delivered_on_time"], 2);  // b1 and c1
  EXPECT_EQ(pg_day["by_tier"]["platinum"]["failed_after_accept"], 1);
  EXPECT_EQ(pg_day["runs"][0]["failed_after_accept"], 1);
  EXPECT_EQ(pg_day["runs"][1]["read"], 2);
  EXPECT_EQ(pg_day["runs"][2]["delivered_on_time"], 1);
  EXPECT_TRUE(pg_day["live_delivered_pct"].is_number());

  // The copy brought run 2's stored report (run 1 has none in the file either), so only the
  // ledger's name differs.
  EXPECT_TRUE(pg.keeps_stored_reports());
  EXPECT_FALSE(pg_day.contains("notes")) << pg_day["notes"];
  EXPECT_EQ(pg_day["runs"][1]["stored_report"], true);
  EXPECT_EQ(pg_day["runs"][0]["stored_report"], false);

  const json want_day = as_on_postgresql(lite_day);
  EXPECT_EQ(pg_day, want_day) << "diff: " << json::diff(want_day, pg_day).dump(1);
  EXPECT_EQ(format_report_text(pg_day, tiers, "Asia/Kolkata"), format_report_text(want_day, tiers, "Asia/Kolkata"));
  const std::string text = format_report_text(pg_day, tiers, "");
  EXPECT_NE(text.find("delivered within deadline 27.27% (3)  read 36.36% (4)  status unknown 9.09% (1)  failed after accept 9.09% (1)"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("note: delivery statuses"), std::string::npos) << text;
  EXPECT_EQ(report_exit_code(pg_day), report_exit_code(lite_day));
  // The HTML page: the same bytes from either ledger (its charts read each ledger's deliveries),
  // given the same report and trend.
  const json trend = build_trend(pg, kDate, 30);
  const std::string pg_html = render_html_report(pg, pg_day, {1, 2, 3}, trend, "Asia/Kolkata");
  EXPECT_EQ(pg_html, render_html_report(*db_, want_day, {1, 2, 3}, trend, "Asia/Kolkata"));
  EXPECT_NE(pg_html.find("delivered within the deadline (status callbacks) <b>27.27%</b>"), std::string::npos);

  for (std::int64_t id : {1, 2, 3}) {
    json lite = build_run_report(*db_, load_run(id), now);
    auto run = pg.run(id);
    ASSERT_TRUE(run.has_value());
    json got = build_run_report(pg, *run, now);
    EXPECT_FALSE(got.contains("notes")) << got["notes"];
    EXPECT_GT(got["delivered"].get<std::int64_t>(), 0) << "run " << id;
    const json want = as_on_postgresql(lite);
    EXPECT_EQ(got, want) << "run " << id << " diff: " << json::diff(want, got).dump(1);
    EXPECT_EQ(format_report_text(got, tiers, ""), format_report_text(want, tiers, ""));
  }
  EXPECT_EQ(build_run_report(pg, *pg.run(3), now)["verdict"], "in_progress");

  // The day's truth counted in SQL, on both ledgers, before the deadline of run 3 (some
  // deliveries still undecided on the delivered measure) and after it.
  for (const Millis at : {now, now + 3'600'000}) {
    const auto lite_t = store::DeliveryTruthByDate(*db_, kDate, kDate, at);
    const auto pg_t = pg.truth_by_date(kDate, kDate, at);
    ASSERT_EQ(lite_t.size(), 1u);
    ASSERT_EQ(pg_t.size(), 1u);
    const auto& a = lite_t.at(kDate);
    const auto& b = pg_t.at(kDate);
    EXPECT_EQ(b.eligible, 11);
    EXPECT_EQ(b.failed_after_accept, 1);
    EXPECT_EQ(std::vector<std::int64_t>({b.eligible, b.on_time, b.delivered_on_time, b.delivered, b.read, b.unknown,
                                         b.failed_after_accept, b.delivered_decided, b.delivered_decided_on_time}),
              std::vector<std::int64_t>({a.eligible, a.on_time, a.delivered_on_time, a.delivered, a.read, a.unknown,
                                         a.failed_after_accept, a.delivered_decided, a.delivered_decided_on_time}))
        << "at " << at;
  }
  EXPECT_LT(pg.truth_by_date(kDate, kDate, now).at(kDate).delivered_decided,
            pg.truth_by_date(kDate, kDate, now + 3'600'000).at(kDate).delivered_decided);
  EXPECT_TRUE(pg.truth_by_date("2026-11-29", "2026-12-31", now).empty());

  // Listing: the same runs, newest first, on both.
  std::vector<std::int64_t> lite_ids, pg_ids;
  for (const auto& r : store::RunListRecent(*db_, 10)) lite_ids.push_back(r.run_id);
  for (const auto& r : pg.runs_recent(10)) pg_ids.push_back(r.run_id);
  EXPECT_EQ(pg_ids, lite_ids);
  // Run 2's report as the copy stored it: the file's SLA % to the last digit.
  ASSERT_TRUE(pg.stored_summary(2).has_value());
  EXPECT_EQ(pg.stored_summary(2)->sla_pct, store::SlaReportGetSummary(*db_, 2)->sla_pct);
  EXPECT_FALSE(pg.stored_summary(1).has_value());
}

TEST_F(PgReportTest, TheReportReadsPostgresqlNotTheSqliteCopy) {
  const Millis now = kSlot2 + 3600 * 1000;
  make_day(now);
  store::migrate_ledger_to_pg(db_path(), url_, kDate);
  // What dispatch on PostgreSQL did after the copy: one more of run 1 accepted on time (the
  // planned a8), one attempt more; the SQLite copy never hears of it.
  store::PgConn(url_).exec(
      "UPDATE deliveries SET state = 'accepted', first_sent_at = planned_at + 5, accepted_at = planned_at + 300 "
      "WHERE advisor_id = 'a8';"
      "INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome) "
      "SELECT delivery_id, 1, 'email', 'smtp-1', 0, 0, 'accepted' FROM deliveries WHERE advisor_id = 'a8'");
  store::PgReportLedger pg(url_);
  json got = build_run_report(pg, *pg.run(1), now);
  json lite = build_run_report(*db_, load_run(1), now);
  EXPECT_EQ(lite["on_time"], 3);
  EXPECT_EQ(got["on_time"], 4);
  EXPECT_EQ(got["failed"], lite["failed"].get<std::int64_t>() - 1);
  EXPECT_EQ(got["attempts"], lite["attempts"].get<std::int64_t>() + 1);
  EXPECT_EQ(got["by_tier"]["gold"]["on_time"], 2);
  EXPECT_EQ(got["lag_ms"]["n"], lite["lag_ms"]["n"].get<std::int64_t>() + 1);
  EXPECT_EQ(build_date_report(pg, kDate, now)["on_time"], 7);
}

TEST_F(PgReportTest, TrendFromPostgresqlCountsClosedRunsAsTheStoredReportsDo) {
  const Millis now = kSlot2 + 3600 * 1000;
  make_day(now);
  store_run_report(*db_, load_run(1), now);  // both closed runs reported on SQLite
  store::migrate_ledger_to_pg(db_path(), url_, kDate);
  post_statuses(now);
  json lite = build_trend(*db_, kDate, 3);
  {
    // The copy brought both stored reports: the trend is SQLite's but for the ledger's name.
    store::PgReportLedger pg(url_);
    json copied = build_trend(pg, kDate, 3);
    json want = lite;
    want["ledger"] = "postgresql";
    EXPECT_EQ(copied, want) << "diff: " << json::diff(want, copied).dump(1);
  }
  // Runs closed on PostgreSQL before reports were stored there have none: counted instead.
  store::PgConn(url_).exec("DELETE FROM run_reports");
  store::PgReportLedger pg(url_);
  json got = build_trend(pg, kDate, 3);
  const json& day = lite["dates"][2];
  ASSERT_EQ(day["date"], kDate);
  EXPECT_EQ(day["runs"], 3);
  EXPECT_EQ(day["reported_runs"], 2);  // run 3 still running
  EXPECT_EQ(day["eligible"], 9);
  EXPECT_EQ(day["on_time"], 5);
  ASSERT_TRUE(got.contains("notes"));
  ASSERT_EQ(got["notes"].size(), 1u) << got["notes"];
  EXPECT_EQ(got["ledger"], "postgresql");
  // The day's delivery truth (all three runs) read from PostgreSQL's statuses.
  const json& pg_day = got["dates"][2];
  EXPECT_EQ(pg_day["delivered_on_time"], 3);
  EXPECT_EQ(pg_day["read"], 4);
  EXPECT_EQ(pg_day["unknown"], 1);
  EXPECT_EQ(pg_day["failed_after_accept"], 1);
  EXPECT_EQ(got["summary"]["read"], 4);
  EXPECT_DOUBLE_EQ(got["summary"]["overall_delivered_sla_pct"].get<double>(), 100.0 * 3 / 11);

  // Neither closed run has a stored report there now: both counted, and said so.
  EXPECT_EQ(got["notes"][0], "2 closed runs have no stored report on the postgresql ledger (closed before reports were "
                             "stored there): counted as reported, from their deliveries now");

  json want = lite;
  want["ledger"] = "postgresql";
  want["notes"] = got["notes"];
  EXPECT_EQ(got, want) << "diff: " << json::diff(want, got).dump(1);
  EXPECT_EQ(format_trend_text(got), format_trend_text(want));
  EXPECT_NE(format_trend_text(got).find("note: 2 closed runs have no stored report"), std::string::npos);
  EXPECT_NE(format_trend_text(got).find("delivered 27.27%, read 36.36%"), std::string::npos) << format_trend_text(got);
}

// A dispatch on PostgreSQL stores the report of a run it closes in run_reports, in the writer's
// transaction, built by the SQLite report builder from PostgreSQL: one row per run, equal to the
// report computed from the ledger at the close; a host that did not make the close stores
// nothing; a run reopened and closed again by another host keeps one row, that host's. The
// readers (sla-report's ledger, the trend, export reports, pg_run_reports_between) see it.
TEST_F(PgReportTest, TheRunADispatchClosesHasItsReportStoredOnceAndEveryReaderSeesIt) {
  const Millis now = kSlot2 + 3600 * 1000;
  make_day(now);
  store::migrate_ledger_to_pg(db_path(), url_, kDate);
  post_statuses(now);
  const Millis t1 = now + 10'000;
  reopen_on_pg(2, "host-a", now);
  ASSERT_TRUE(close_and_report("host-a", 2, t1, t1));
  auto rows = [&](const std::string& where) { return pg_scalar("SELECT COUNT(*) FROM run_reports WHERE " + where); };
  EXPECT_EQ(rows("true"), 1);
  EXPECT_EQ(rows("run_id = 2 AND written_by = 'host-a' AND closed_at = " + std::to_string(t1) + " AND generated_at = " +
                 std::to_string(t1) + " AND date = '" + kDate + "'"),
            1);
  // The stored report is the one computed from the ledger at the close.
  {
    store::PgReportLedger pg(url_);
    ASSERT_TRUE(pg.keeps_stored_reports());
    auto run = pg.run(2);
    ASSERT_TRUE(run && run->state == "closed");
    const json computed = build_run_report(pg, *run, t1);
    const auto text = pg.stored_report(2);
    ASSERT_TRUE(text.has_value());
    const json stored = json::parse(*text);
    EXPECT_EQ(stored, computed) << json::diff(computed, stored).dump(1);
    EXPECT_GT(stored["eligible"].get<std::int64_t>(), 0);
    EXPECT_EQ(stored["closed"], true);
    const auto summary = pg.stored_summary(2);
    ASSERT_TRUE(summary.has_value());
    EXPECT_EQ(summary->sla_pct, computed["sla_pct"].get<double>());
    EXPECT_EQ(summary->generated_at, t1);
    EXPECT_FALSE(pg.stored_summary(1).has_value());
    // The day report says which runs have one; the trend takes run 2's from it and counts run 1.
    const json day = build_date_report(pg, kDate, now);
    EXPECT_EQ(day["runs"][0]["stored_report"], false);
    EXPECT_EQ(day["runs"][1]["stored_report"], true);
    const auto heads = pg.run_headlines_between(kDate, kDate);
    ASSERT_EQ(heads.size(), 2u);
    EXPECT_EQ(heads[0].run_id, 1);
    EXPECT_FALSE(heads[0].stored);
    EXPECT_EQ(heads[1].run_id, 2);
    EXPECT_TRUE(heads[1].stored);
    EXPECT_EQ(heads[1].eligible, computed["eligible"].get<std::int64_t>());
    EXPECT_EQ(heads[1].on_time, computed["on_time"].get<std::int64_t>());
    const json trend = build_trend(pg, kDate, 1);
    ASSERT_EQ(trend["notes"].size(), 1u);
    EXPECT_NE(trend["notes"][0].get<std::string>().find("1 closed run has no stored report"), std::string::npos);
  }
  // Another host's StoreRunReport for a close it did not make (another instant): nothing.
  {
    store::PgDispatchLedger b(url_, "host-b");
    b.begin();
    b.apply(store::ledger_op::StoreRunReport{2, t1 + 1, build});
    b.commit();
  }
  EXPECT_EQ(rows("written_by = 'host-a'"), 1);
  EXPECT_EQ(rows("true"), 1);
  // Reopened (a resend) and taken over by host-b, which closes it again: still one row, host-b's.
  const Millis t2 = t1 + 60'000;
  reopen_on_pg(2, "host-b", t1 + 30'000);
  ASSERT_TRUE(close_and_report("host-b", 2, t2, t2));
  EXPECT_EQ(rows("true"), 1);
  EXPECT_EQ(rows("run_id = 2 AND written_by = 'host-b' AND closed_at = " + std::to_string(t2)), 1);
  // A close the ledger refuses (host-a no longer owns the reopened run) stores nothing either.
  reopen_on_pg(2, "host-b", t2 + 1'000);
  EXPECT_FALSE(close_and_report("host-a", 2, t2 + 2'000, t2 + 2'000));
  EXPECT_EQ(rows("written_by = 'host-b' AND closed_at = " + std::to_string(t2)), 1);

  // The readers of the console's history and of export reports.
  store::PgConn c(url_);
  const auto listed = store::pg_run_reports_between(c, kDate, kDate);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].run_id, 2);
  EXPECT_EQ(listed[0].slot_at, kSlot2);
  EXPECT_TRUE(store::pg_run_reports_between(c, "2026-11-29", "2026-12-31").empty());
  std::vector<std::string> cols;
  int n = 0;
  store::ExportRowsPg(c, store::ExportKind::reports, kDate, kDate, [&](const store::PgResult& r) {
    ++n;
    for (int i = 0; cols.size() < static_cast<std::size_t>(r.cols()); ++i) cols.push_back(r.name(i));
    EXPECT_EQ(r.str(0, 0), "2");
    EXPECT_EQ(json::parse(r.str(0, 7))["run_id"], 2);
  });
  EXPECT_EQ(n, 1);
  std::vector<std::string> lite_cols;
  store::ExportRows(*db_, store::ExportKind::reports, kDate, kDate, [&](SQLite::Statement& q) {
    if (lite_cols.empty()) {
      for (int i = 0; i < q.getColumnCount(); ++i) lite_cols.push_back(q.getColumnName(i));
    }
  });
  EXPECT_EQ(cols, lite_cols);
}

// sla-report never migrates: a ledger no dispatch of this version has connected to yet has no
// run_reports. Its reports say so (stored_report null, a note), never false or zero, and export
// reports streams nothing instead of failing.
TEST_F(PgReportTest, ALedgerNotYetMigratedToKeepReportsSaysSo) {
  const Millis now = kSlot2 + 3600 * 1000;
  make_day(now);
  store::migrate_ledger_to_pg(db_path(), url_, kDate);
  store::PgConn(url_).exec("DROP TABLE run_reports; DELETE FROM schema_migrations WHERE version = 5");
  store::PgReportLedger pg(url_);
  EXPECT_FALSE(pg.keeps_stored_reports());
  EXPECT_FALSE(pg.stored_report(2).has_value());
  EXPECT_FALSE(pg.stored_summary(2).has_value());
  const json day = build_date_report(pg, kDate, now);
  ASSERT_EQ(day["notes"].size(), 1u) << day;
  EXPECT_NE(day["notes"][0].get<std::string>().find("not stored on the postgresql ledger"), std::string::npos);
  EXPECT_TRUE(day["runs"][1]["stored_report"].is_null());
  const json trend = build_trend(pg, kDate, 1);
  ASSERT_EQ(trend["notes"].size(), 1u) << trend;
  EXPECT_NE(trend["notes"][0].get<std::string>().find("not stored on the postgresql ledger"), std::string::npos);
  EXPECT_EQ(trend["dates"][0]["reported_runs"], 2);
  int n = 0;
  store::PgConn c(url_);
  store::ExportRowsPg(c, store::ExportKind::reports, kDate, kDate, [&](const store::PgResult&) { ++n; });
  EXPECT_EQ(n, 0);
  EXPECT_TRUE(store::pg_run_reports_between(c, kDate, kDate).empty());
}

TEST_F(PgReportTest, TheWatchFramesFromPostgresqlEqualTheSqliteOnes) {
  const Millis now = kSlot2 + 3600 * 1000;
  make_day(now);
  store::migrate_ledger_to_pg(db_path(), url_, kDate);
  post_statuses(now);
  Config cfg;
  store::SqliteReportLedger lite(*db_);
  store::PgReportLedger pg(url_);
  // The runs a watch picks: by day, and those running now (run 3, whose window is open).
  auto ids = [](const std::vector<store::Run>& runs) {
    std::vector<std::int64_t> out;
    for (const auto& r : runs) out.push_back(r.run_id);
    return out;
  };
  WatchOptions by_day;
  by_day.date = kDate;
  EXPECT_EQ(ids(watch_pick_runs(pg, by_day, now)), ids(watch_pick_runs(lite, by_day, now)));
  EXPECT_EQ(ids(watch_pick_runs(pg, by_day, now)).size(), 3U);
  EXPECT_EQ(ids(watch_pick_runs(pg, WatchOptions{}, now + 60'000)), ids(watch_pick_runs(lite, WatchOptions{}, now + 60'000)));
  WatchOptions missing;
  missing.run_id = 99;
  EXPECT_THROW(watch_pick_runs(pg, missing, now), CheckFailed);
  // Every run's frame counted from the ledger (no dispatch writes a fresh progress): the same.
  for (const auto& run : watch_pick_runs(lite, by_day, now)) {
    auto pg_run = pg.run(run.run_id);
    ASSERT_TRUE(pg_run);
    json l = watch_run_live(lite, run, cfg, now), p = watch_run_live(pg, *pg_run, cfg, now);
    EXPECT_EQ(p, l) << "run " << run.run_id;
    EXPECT_EQ(p["source"], "ledger");
  }
  // A dispatch's fresh figures are shown as they are, with the status figures counted there.
  const std::string progress = R"({"at":)" + std::to_string(now) + R"(,"live":{"run_id":3,"accepted":1,"total":2}})";
  db_->exec("UPDATE runs SET progress = '" + progress + "' WHERE run_id = 3");
  store::PgConn(url_).exec("UPDATE runs SET progress = '" + progress + "' WHERE run_id = 3");
  pg.refresh();  // a new snapshot sees the write
  auto r3 = pg.run(3);
  ASSERT_TRUE(r3);
  json p3 = watch_run_live(pg, *r3, cfg, now);
  EXPECT_EQ(p3, watch_run_live(lite, *store::RunGet(*db_, 3), cfg, now));
  EXPECT_EQ(p3["source"], "dispatch");
  EXPECT_EQ(p3["accepted"], 1);
  EXPECT_EQ(p3["delivered"], 1);  // c1's delivered status, counted on PostgreSQL
}

// The console's per tier/channel/sender counts (store/breakdown.hpp) on PostgreSQL: the same
// statement text as on SQLite, so the same rows in the same order, delivered counts included.
TEST_F(PgReportTest, TheConsoleBreakdownFromPostgresqlEqualsTheSqliteOne) {
  const Millis now = kSlot2 + 3600 * 1000;
  make_day(now);
  store::migrate_ledger_to_pg(db_path(), url_, kDate);
  post_statuses(now);
  store::PgReportLedger pg(url_);
  auto rows = [](const std::vector<store::BreakdownRow>& v) {
    std::vector<std::tuple<std::string, std::string, std::string, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                           std::int64_t, std::int64_t>>
        out;
    for (const auto& b : v) out.emplace_back(b.tier, b.channel, b.sender, b.total, b.accepted, b.on_time, b.delivered, b.dead, b.pending);
    return out;
  };
  std::int64_t delivered = 0, seen = 0;
  for (std::int64_t run = 1; run <= 3; ++run) {
    const auto lite = store::DeliveryBreakdown(*db_, run);
    EXPECT_EQ(rows(store::pg_delivery_breakdown(pg.conn(), run)), rows(lite)) << "run " << run;
    auto p = rows(store::pg_delivered_breakdown(pg.conn(), run)), l = rows(store::DeliveredBreakdown(*db_, run));
    std::sort(p.begin(), p.end());  // that statement has no order
    std::sort(l.begin(), l.end());
    EXPECT_EQ(p, l) << "run " << run;
    for (const auto& b : lite) {
      delivered += b.delivered;
      seen += b.total;
    }
  }
  EXPECT_GT(seen, 0);  // not a comparison of empty lists
  EXPECT_GT(delivered, 0);
  EXPECT_TRUE(store::pg_delivery_breakdown(pg.conn(), 99).empty());
}

TEST_F(PgReportTest, AnEmptyLedgerHasNoRunsAndNoDay) {
  { store::PgDispatchLedger migrate(url_, "test", /*migrate=*/true); }
  store::PgReportLedger pg(url_);
  EXPECT_TRUE(pg.runs_recent(5).empty());
  EXPECT_FALSE(pg.run(1).has_value());
  EXPECT_THROW(build_date_report(pg, kDate, kSlot1), CheckFailed);
}

}  // namespace
}  // namespace daybreak
