// Run kinds and the whole-ledger alert rules on the PostgreSQL ledger, against a real PostgreSQL
// started for the test (pg_server.hpp):
//  - sql/postgresql/006 gives runs a kind, backfilled from the plan report of the urgent runs
//    published before it; a publish copies the kind; the ledger, the reports and the day's run
//    count (the dead-man's switch, plan_missing) read it
//  - a dispatch running on PostgreSQL adopts an urgent run published while it runs (as
//    urgent_adopt_test on SQLite): leased within its adoption poll, every row sent once, closed
//  - plan_missing with [database] url asks PostgreSQL whether the day is published: not missing
//    on a host whose file has no planning data when another host published it; missing when it
//    is published nowhere; not judged (PlanMissingUnknown) when PostgreSQL does not answer
//  - content_held's reader returns the held rows to one session of those sharing the ledger (its
//    rule lock), and to the next once that session ends
#include <gtest/gtest.h>

#include <atomic>

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "app/schedule.hpp"
#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/clock.hpp"
#include "domain/time.hpp"
#include "engine/dispatcher.hpp"
#include "pg_fixture.hpp"
#include "store/deliveries.hpp"
#include "store/migrations.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_reports.hpp"
#include "store/pg_status.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

constexpr Millis kKindsT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST
constexpr int kKindsMorningRows = 200;
constexpr int kKindsUrgentRows = 30;

Millis kinds_at(const char* iso) {
  auto t = parse_instant(iso);
  EXPECT_TRUE(t.ok()) << iso;
  return t.ok() ? *t : 0;
}

/// Accepts every request; calls `on_request(n)` on the scheduler's thread first.
class KindsTransport final : public channels::Transport {
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

class PgKindsTest : public test_support::PgDbTest {
 protected:
  PgKindsTest() : test_support::PgDbTest("pgkinds") {}
  std::int64_t count(const std::string& sql) { return pg_scalar(sql); }
  std::string text(const std::string& sql) { return store::PgConn(url_).query(sql).str(0, 0); }
  /// An urgent run of `rows` planned now (what send-now writes) in the SQLite file; its id.
  std::int64_t write_urgent(Millis now, int rows) {
    store::RunUpsertParams rp;
    rp.date = "2026-11-28";
    rp.window = {now, now, now + 300'000, now + 300'000};
    rp.planned_count = rows;
    rp.plan_report = R"({"content_id":"C1","kind":"urgent"})";
    std::int64_t id = 0;
    db_->write_tx([&] {
      id = store::RunInsertUrgent(*db_, rp);
      for (int i = 0; i < rows; ++i) {
        auto d = test_support::planned_delivery(id, "urg-" + std::to_string(i), "2026-11-28", now, now, now);
        d.deadline_at = now + 300'000;
        d.source = "urgent";
        EXPECT_TRUE(store::DeliveryInsert(*db_, d));
      }
    });
    return id;
  }
  /// Publishes SQLite run `run_id` of 2026-11-28 (send-now's publish); its PostgreSQL id.
  std::int64_t publish_run(std::int64_t run_id) {
    store::PgConn c(url_);
    auto counts = store::copy_ledger_to_pg(c, db_path(), {"2026-11-28", run_id, false});
    EXPECT_EQ(counts.runs.size(), 1u);
    return counts.runs.empty() ? 0 : counts.runs[0].second;
  }
};

TEST_F(PgKindsTest, MigrationBackfillsTheKindOfUrgentRunsPublishedBeforeIt) {
  // A ledger at every level but 006, with a morning run and an urgent one of send-now published.
  {
    store::PgConn c(url_);
    c.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    for (const auto& m : store::embedded_pg_migrations()) {
      if (m.version == 6) continue;
      c.exec(std::string(m.sql));
      c.query("INSERT INTO schema_migrations(version, name) VALUES ($1, $2)", {std::to_string(m.version), std::string(m.name)});
    }
    c.exec("INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at, plan_report) VALUES "
           "('2026-11-28', 1, 1, 1, 1, '{\"eligible\":3,\"kind\":\"morning\"}'), "
           "('2026-11-28', 2, 2, 2, 2, '{\"content_id\":\"C1\",\"kind\":\"urgent\",\"segment\":\"all\"}')");
  }
  store::PgDispatchLedger l(url_, "m", /*migrate=*/true);  // applies 006 alone
  EXPECT_EQ(text("SELECT string_agg(kind, ',' ORDER BY slot_at) FROM runs"), "morning,urgent");
  EXPECT_EQ(l.load_run(2)->kind, "urgent");
  EXPECT_EQ(l.load_run(1)->kind, "morning");
  // The day's planned runs: the morning one only.
  EXPECT_EQ(store::pg_runs_of_day(l.conn(), "2026-11-28"), 1);
  // The column's values are checked as on SQLite.
  EXPECT_THROW(store::PgConn(url_).exec("UPDATE runs SET kind = 'evening'"), store::StoreError);
}

TEST_F(PgKindsTest, APublishCarriesTheKindAndTheReportsReadIt) {
  const Millis before = kKindsT0 - 3'600'000;
  ASSERT_EQ(test_support::add_content_and_run(*db_, before), 1);
  db_->write_tx([&] {
    for (int i = 0; i < 3; ++i) test_support::add_whatsapp_advisor(*db_, "urg-" + std::to_string(i), before);
  });
  store::migrate_ledger_to_pg(db_path(), url_, "2026-11-28");
  const auto pg_urgent = publish_run(write_urgent(kKindsT0 + 3'600'000, 3));
  EXPECT_EQ(text("SELECT kind FROM runs WHERE run_id = " + std::to_string(pg_urgent)), "urgent");
  EXPECT_EQ(text("SELECT kind FROM runs WHERE run_id = 1"), "morning");
  store::PgReportLedger rep(url_);
  EXPECT_EQ(rep.run_kind(pg_urgent), "urgent");
  EXPECT_EQ(rep.run_kind(1), "morning");
  EXPECT_EQ(rep.run(pg_urgent)->kind, "urgent");
}

// As urgent_adopt_test on SQLite: the morning run's dispatch on PostgreSQL, and at its 20th
// request an urgent run written to the SQLite file and published (what send-now does).
TEST_F(PgKindsTest, ARunningDispatchOnPostgresqlAdoptsAPublishedUrgentRun) {
  const Millis before = kKindsT0 - 3'600'000;
  ASSERT_EQ(test_support::add_content_and_run(*db_, before), 1);
  db_->write_tx([&] {
    for (int i = 0; i < kKindsMorningRows; ++i) {
      const std::string id = "adv-" + std::to_string(i);
      test_support::add_whatsapp_advisor(*db_, id, before);
      ASSERT_TRUE(store::DeliveryInsert(*db_, test_support::planned_delivery(1, id, "2026-11-28", kKindsT0, kKindsT0 + i * 20, before)));
    }
    for (int i = 0; i < kKindsUrgentRows; ++i) test_support::add_whatsapp_advisor(*db_, "urg-" + std::to_string(i), before);
  });
  test_support::set_run_window(*db_, 1, kKindsT0);
  store::migrate_ledger_to_pg(db_path(), url_, "2026-11-28");
  Config cfg = parse_config("[database]\npath = \"" + db_path() + "\"\nurl = \"" + url_ +
                                "\"\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 50\n",
                            "");
  ManualClock clock(kKindsT0 - 1'000);
  const std::string owner = "host-a:1";
  {
    store::PgDispatchLedger l(url_, owner);
    ASSERT_TRUE(l.acquire_lease(1, clock.now(), cfg.dispatch.lease_ms).acquired);
  }
  KindsTransport t;
  Millis urgent_at = 0;
  std::int64_t urgent_run = 0;
  // The clock holds still while the urgent run is written and published: on a loaded machine
  // that takes long enough in real time for the ticking clock to run seconds ahead of the poll.
  std::atomic<bool> publishing{false};
  t.on_request = [&](int n) {
    if (n != 20) return;
    publishing = true;
    urgent_at = clock.now();
    urgent_run = publish_run(write_urgent(urgent_at, kKindsUrgentRows));
    publishing = false;
  };
  auto summary = test_support::run_dispatch_ticking(cfg, clock, t, owner, {1}, "PG_KINDS_TEST_LOG",
                                                    store::pg_ledger_factory(url_, owner), {}, 20, nullptr,
                                                    [&] { return publishing.load(); });

  ASSERT_NE(urgent_run, 0);
  EXPECT_EQ(summary.runs_adopted, (std::vector<std::int64_t>{urgent_run}));
  EXPECT_EQ(std::set<std::int64_t>(summary.runs_closed.begin(), summary.runs_closed.end()),
            (std::set<std::int64_t>{1, urgent_run}));
  EXPECT_FALSE(summary.lost_lease);
  EXPECT_EQ(t.requests(), kKindsMorningRows + kKindsUrgentRows);  // every row once, none twice
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE state = 'accepted'"), kKindsMorningRows + kKindsUrgentRows);
  EXPECT_EQ(text("SELECT state || ' ' || kind FROM runs WHERE run_id = " + std::to_string(urgent_run)), "closed urgent");
  // Taken within the adoption poll (2 s) plus a commit or two; its rows go before the
  // morning's rows due meanwhile (an urgent run's rows first on their sender).
  const std::string u = std::to_string(urgent_run);
  const auto first_u = count("SELECT MIN(first_sent_at) FROM deliveries WHERE run_id = " + u);
  const auto last_u = count("SELECT MAX(first_sent_at) FROM deliveries WHERE run_id = " + u);
  const auto last_m = count("SELECT MAX(first_sent_at) FROM deliveries WHERE run_id = 1");
  EXPECT_LE(first_u - urgent_at, 3'000);
  EXPECT_LT(last_u, last_m);
}

// A second dispatch adopts nothing another live dispatch holds, and nothing that is not urgent.
TEST_F(PgKindsTest, AdoptionTakesOnlyUrgentRunsWhoseLeaseIsFreeOrExpired) {
  const Millis before = kKindsT0 - 3'600'000;
  ASSERT_EQ(test_support::add_content_and_run(*db_, before), 1);
  db_->write_tx([&] { test_support::add_whatsapp_advisor(*db_, "urg-0", before); });
  test_support::set_run_window(*db_, 1, kKindsT0);
  store::migrate_ledger_to_pg(db_path(), url_, "2026-11-28");
  const auto urgent = publish_run(write_urgent(kKindsT0, 1));
  store::PgDispatchLedger a(url_, "host-a:1");
  store::PgDispatchLedger b(url_, "host-b:2");
  auto adopt = [&](store::PgDispatchLedger& l, Millis now) {
    l.begin();
    auto r = l.apply(store::ledger_op::AdoptUrgent{{}, now - 60'000, now + 120'000, now, 15'000});
    l.commit();
    std::vector<std::int64_t> ids;
    for (const auto& run : std::get<store::AdoptedRuns>(r).runs) {
      EXPECT_EQ(run.kind, "urgent");
      ids.push_back(run.run_id);
    }
    return ids;
  };
  EXPECT_EQ(adopt(a, kKindsT0), (std::vector<std::int64_t>{urgent}));  // the morning run 1 is not adopted
  EXPECT_TRUE(adopt(b, kKindsT0 + 1'000).empty());                      // A's lease is live
  EXPECT_EQ(adopt(b, kKindsT0 + 16'000), (std::vector<std::int64_t>{urgent}));  // expired: B takes it
  EXPECT_EQ(text("SELECT owner FROM runs WHERE run_id = " + std::to_string(urgent)), "host-b:2");
}

TEST_F(PgKindsTest, PlanMissingOnPostgresqlAsksWhetherTheDayIsPublished) {
  Config cfg;  // 06:00 IST slot; plan by 22:00 the day before, again at 05:00
  cfg.database_url = url_;
  cfg.database_path = db_path();  // a dispatch-only host: no planning data
  { store::PgDispatchLedger migrate(url_, "m", true); }
  const Millis late = kinds_at("2026-12-07T05:00:30+05:30");
  auto missing = plan_missing_conditions(*db_, cfg, late);
  ASSERT_EQ(missing.size(), 2u);
  EXPECT_EQ(missing[0].subject, "date:2026-12-07");
  EXPECT_NE(missing[0].message.find("no delivery plan in the PostgreSQL ledger"), std::string::npos) << missing[0].message;
  // An urgent run of the day is not its plan.
  store::PgConn(url_).exec("INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at, kind) "
                           "VALUES ('2026-12-07', 1, 1, 1, 1, 'urgent')");
  EXPECT_EQ(plan_missing_conditions(*db_, cfg, late).size(), 2u);
  // Published by another host: not missing here, though this host's file has nothing.
  store::PgConn(url_).exec("INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at) "
                           "VALUES ('2026-12-07', 2, 2, 2, 2)");
  EXPECT_TRUE(plan_missing_conditions(*db_, cfg, late).empty());
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM runs"), 0);
  // Planned in this host's file but published nowhere: missing, and the message says so.
  store::RunUpsertParams rp;
  rp.date = "2026-12-08";
  rp.window = window_for(kinds_at("2026-12-08T06:00:00+05:30"), WindowPolicy{});
  store::RunUpsert(*db_, rp);
  auto unpublished = plan_missing_conditions(*db_, cfg, kinds_at("2026-12-07T22:00:30+05:30"));
  ASSERT_EQ(unpublished.size(), 1u);
  EXPECT_NE(unpublished[0].message.find("but not published"), std::string::npos) << unpublished[0].message;
  // PostgreSQL does not answer: not judged (before the deadline it is not even asked).
  cfg.database_url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2";
  EXPECT_THROW(plan_missing_conditions(*db_, cfg, late), PlanMissingUnknown);
  EXPECT_TRUE(plan_missing_conditions(*db_, cfg, kinds_at("2026-12-06T21:59:00+05:30")).empty());
}

TEST_F(PgKindsTest, ContentHeldIsReadByOneSessionAtATimeAndPassesOnWhenItEnds) {
  const Millis before = kKindsT0 - 3'600'000;
  ASSERT_EQ(test_support::add_content_and_run(*db_, before), 1);
  db_->write_tx([&] {
    for (int i = 0; i < 4; ++i) {
      const std::string id = "adv-" + std::to_string(i);
      test_support::add_whatsapp_advisor(*db_, id, before);
      ASSERT_TRUE(store::DeliveryInsert(*db_, test_support::planned_delivery(1, id, "2026-11-28", kKindsT0, kKindsT0, before)));
    }
  });
  store::migrate_ledger_to_pg(db_path(), url_, "2026-11-28");
  store::PgConn(url_).exec("UPDATE deliveries SET state = 'dead', last_error = 'held: C1 withdrawn' WHERE advisor_id IN ('adv-0', 'adv-1')");
  store::PgContentHeldReader b(url_);
  std::optional<std::vector<store::HeldGroup>> got;
  {
    store::PgContentHeldReader a(url_);
    got = a("2026-11-27");
    ASSERT_TRUE(got.has_value());
    ASSERT_EQ(got->size(), 1u);
    EXPECT_EQ((*got)[0].content_id, "C1");
    EXPECT_EQ((*got)[0].count, 2);
    EXPECT_TRUE(a.holds_lock());
    EXPECT_FALSE(b("2026-11-27").has_value());  // A's host raises it; B leaves the rule alone
    EXPECT_FALSE(b.holds_lock());
    auto copy = a;  // the monitoring keeps a copy: the same session
    EXPECT_TRUE(copy("2026-11-27").has_value());
    EXPECT_TRUE(a("2026-11-27").has_value());
  }  // A's host is gone: its session, and the lock with it
  // The server drops a closed session's locks when its backend exits, a moment after the client
  // hung up: B's next ticks take it (the monitoring asks every second).
  for (int tick = 0; tick < 100; ++tick) {
    got = b("2026-11-27");
    if (got.has_value()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->size(), 1u);
  EXPECT_TRUE(b.holds_lock());
}

}  // namespace
}  // namespace daybreak
