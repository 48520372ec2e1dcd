// A dispatch on the PostgreSQL ledger runs its monitoring on its own host (engine::HostMonitoring,
// as dispatch_on_pg sets it up): the live alert rules write their alerts and notification outbox
// to this host's SQLite file ([database] path, created and migrated by dispatch when missing),
// and the metrics textfile is written from the live snapshot. A locked host file holds none of
// the ledger's batches. On a throwaway PostgreSQL (pg_server.hpp); the day is seeded in SQLite
// and copied with migrate_ledger_to_pg.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>

#include "app/report.hpp"
#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/clock.hpp"
#include "pg_server.hpp"
#include "store/deliveries.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_reports.hpp"
#include "store/pg_status.hpp"
#include "store/reports.hpp"

namespace daybreak {
namespace pg_monitor_test {

namespace fs = std::filesystem;

constexpr Millis kT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST
constexpr int kRows = 60;                  // one planned every 500 ms: 30 s of sending

/// Accepts one request in four; the others fail permanently (131026: the advisor has no other
/// channel, so the delivery is dead). Live success ends at 25%, far below 97%.
class MostlyFailingTransport final : public channels::Transport {
 public:
  void submit(channels::Request, Done done) override {
    int n = 0;
    {
      std::lock_guard lk(mu_);
      n = ++n_;
    }
    if (n % 4 != 0) {
      channels::Response r;
      r.transport_ok = true;
      r.status = 400;
      r.body = R"({"error":{"message":"Message Undeliverable","type":"OAuthException","code":131026}})";
      done(std::move(r));
      return;
    }
    done(test_support::whatsapp_accepted(n));
  }
  void shutdown() override {}

 private:
  std::mutex mu_;
  int n_ = 0;
};

/// The samples of a Prometheus textfile, by "name{labels}".
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

class PgMonitorTest : public test_support::DbTest {
 protected:
  PgMonitorTest() : DbTest("pgmonitor") {}

  /// Seeds run 1 (kRows WhatsApp deliveries) in a SQLite file of its own and copies it into a
  /// fresh database `name` on the server; returns its URL.
  std::string seed_pg(test_support::PgServer& pg, const std::string& name) {
    const std::string src = (dir_ / (name + "-seed.db")).string();
    {
      store::Db db(src);
      EXPECT_EQ(test_support::add_content_and_run(db, kT0 - 3'600'000), 1);
      db.write_tx([&] {
        for (int i = 0; i < kRows; ++i) {
          const std::string id = "adv-" + std::to_string(i);
          test_support::add_whatsapp_advisor(db, id, kT0 - 3'600'000);
          db.exec("UPDATE advisor_channels SET address = '+9198100" + std::to_string(10000 + i) + "' WHERE advisor_id = '" +
                  id + "'");
          EXPECT_TRUE(store::DeliveryInsert(
              db, test_support::planned_delivery(1, id, "2026-11-28", kT0, kT0 + i * 500, kT0 - 3'600'000)));
        }
      });
      test_support::set_run_window(db, 1, kT0);
    }
    store::PgConn(pg.url()).exec("CREATE DATABASE " + name);
    const std::string url = pg.url(name);
    store::migrate_ledger_to_pg(src, url, "");
    return url;
  }

  /// This host's configuration: its SQLite file at `host_db` (not created yet), the metrics
  /// directory, one on-call level whose webhook nobody answers (notifications stay queued).
  Config config(const std::string& host_db, const std::string& url) {
    Config cfg = parse_config("[database]\npath = \"" + host_db +
                                  "\"\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 50\n",
                              "");
    cfg.database_url = url;
    cfg.dispatch.metrics_dir = (dir_ / "metrics").string();
    fs::create_directories(cfg.dispatch.metrics_dir);
    AlertLevel l;
    l.name = "oncall";
    l.webhooks = {"http://127.0.0.1:9/hook"};
    cfg.alerts.chain.push_back(l);
    return cfg;
  }

  /// One dispatch of run 1 on PostgreSQL as dispatch_on_pg runs it (lease, then the dispatcher
  /// with monitoring on this host and the run reports stored in PostgreSQL).
  static engine::DispatchSummary dispatch(const Config& cfg, ManualClock& clock, channels::Transport& t) {
    store::PgDispatchLedger pg(cfg.database_url, "host-a");
    EXPECT_TRUE(pg.acquire_lease(1, clock.now(), cfg.dispatch.lease_ms).acquired);
    engine::HostMonitoring host;
    host.store_path = cfg.database_path;
    host.status_figures = [url = cfg.database_url](std::int64_t run_id, Millis now) {
      store::PgConn c(url);
      return store::pg_delivery_truth_for_run(c, run_id, now);
    };
    host.last_closed_report = [url = cfg.database_url] {
      store::PgConn c(url);
      return store::pg_run_report_latest_closed(c);
    };
    // PG_MONITOR_TEST_LOG=1 shows dispatch's log on stderr.
    return test_support::run_dispatch_ticking(
        cfg, clock, t, "host-a", {1}, "PG_MONITOR_TEST_LOG", store::pg_ledger_factory(cfg.database_url, "host-a"), {}, 20, &host,
        nullptr, [](engine::Dispatcher& d) {
          d.store_reports_in_ledger([](store::ReportLedger& ledger, const store::Run& run, Millis at) {
            const nlohmann::json report = build_run_report(ledger, run, at);
            return store::BuiltRunReport{report.at("sla_pct").get<double>(), report.dump()};
          });
        });
  }
};

TEST_F(PgMonitorTest, LiveSuccessBelow97FiresInTheHostFileAndTheTextfileHasTheRun) {
  test_support::PgServer pg;
  if (!pg.up()) GTEST_SKIP() << "no PostgreSQL server for this test: " << pg.why_not();
  const std::string url = seed_pg(pg, "monitor");
  const std::string host_db = (dir_ / "host.db").string();
  ASSERT_FALSE(fs::exists(host_db));
  Config cfg = config(host_db, url);
  ManualClock clock(kT0 - 1000);
  MostlyFailingTransport t;
  auto summary = dispatch(cfg, clock, t);
  EXPECT_EQ(summary.writes_dropped, 0);

  // The run is on PostgreSQL, closed there; nothing of it is in the host file.
  store::PgConn pgc(url);
  EXPECT_EQ(pgc.query("SELECT state FROM runs WHERE run_id = 1").str(0, 0), "closed");
  EXPECT_EQ(pgc.query("SELECT COUNT(*) FROM deliveries WHERE state = 'dead'").i64(0, 0), kRows * 3 / 4);

  // The host file was created and migrated by dispatch, and holds the alert and its outbox.
  ASSERT_TRUE(fs::exists(host_db));
  store::Db host(host_db);
  auto one = [&](const std::string& sql) {
    SQLite::Statement q(host.raw(), sql);
    EXPECT_TRUE(q.executeStep()) << sql;
    return q.getColumn(0).getInt64();
  };
  EXPECT_EQ(one("SELECT COUNT(*) FROM runs"), 0);
  ASSERT_EQ(one("SELECT COUNT(*) FROM alerts WHERE rule = 'live_success_low' AND subject = 'run:1'"), 1);
  const Millis fired_at = one("SELECT fired_at FROM alerts WHERE rule = 'live_success_low' AND subject = 'run:1'");
  // Within a minute of the first failure (the first send, at kT0), while the run was sending.
  EXPECT_GE(fired_at, kT0);
  EXPECT_LE(fired_at - kT0, 60'000);
  EXPECT_LT(fired_at, kT0 + kRows * 500) << "fired only after the last send";
  // Its "fired" notification to the on-call level is in the outbox (nobody answers the webhook).
  EXPECT_EQ(one("SELECT COUNT(*) FROM alert_notifications n JOIN alerts a USING (alert_id) WHERE a.rule = "
                "'live_success_low' AND n.event = 'fired' AND n.sink = 'webhook' AND n.level = 0"),
            1);
  // The closed run's alert resolved with the last evaluation.
  EXPECT_EQ(one("SELECT COUNT(*) FROM alerts WHERE state = 'firing' AND rule = 'live_success_low'"), 0);
  // content_held: this host monitoring has no held_groups reader (dispatch's reads PostgreSQL;
  // pg_operator_test checks what it reads there), so nothing is evaluated for it here.
  EXPECT_EQ(one("SELECT COUNT(*) FROM alerts WHERE rule = 'content_held'"), 0);

  // The textfile: the run's figures from the live snapshot.
  const fs::path prom = fs::path(cfg.dispatch.metrics_dir) / "daybreak.prom";
  ASSERT_TRUE(fs::exists(prom));
  std::ifstream f(prom);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  auto s = samples(text);
  EXPECT_EQ(s["daybreak_deliveries{state=\"dead\",channel=\"whatsapp\",tier=\"platinum\",sender=\"wa-1\"}"], kRows * 3 / 4) << text;
  EXPECT_EQ(s["daybreak_deliveries{state=\"accepted\",channel=\"whatsapp\",tier=\"platinum\",sender=\"wa-1\"}"], kRows / 4);
  EXPECT_EQ(s["daybreak_requests_total{channel=\"whatsapp\",sender=\"wa-1\",outcome=\"permanent\"}"], kRows * 3 / 4);
  EXPECT_NEAR(s["daybreak_live_success_ratio{run_id=\"1\",date=\"2026-11-28\"}"], 0.25, 1e-9);
  EXPECT_EQ(s["daybreak_dead_letters"], kRows * 3 / 4);
  EXPECT_EQ(s["daybreak_alerts_firing"], 0);
  // The last-run SLA is the closed run's report as stored in PostgreSQL (the host file has no
  // runs), written after that report: run 1's 25% on time.
  const double stored_pct = std::stod(pgc.query("SELECT sla_pct FROM run_reports WHERE run_id = 1").str(0, 0));
  EXPECT_NEAR(stored_pct, 25.0, 1e-9);
  EXPECT_NEAR(s["daybreak_last_run_sla_ratio{run_id=\"1\"}"], stored_pct / 100.0, 1e-12) << text;
}

TEST_F(PgMonitorTest, ALockedHostFileHoldsNoLedgerBatch) {
  test_support::PgServer pg;
  if (!pg.up()) GTEST_SKIP() << "no PostgreSQL server for this test: " << pg.why_not();
  const std::string url = seed_pg(pg, "locked");
  const std::string host_db = (dir_ / "host.db").string();
  { store::Db create(host_db); }
  // Another process holds the host file's write lock for the whole dispatch.
  store::Db locker(host_db);
  locker.exec("BEGIN IMMEDIATE");
  Config cfg = config(host_db, url);
  ManualClock clock(kT0 - 1000);
  MostlyFailingTransport t;
  auto summary = dispatch(cfg, clock, t);
  locker.exec("ROLLBACK");

  // Every delivery final and the run closed on PostgreSQL, nothing dropped: monitoring failed
  // on its own thread, the ledger's writes went on.
  EXPECT_EQ(summary.writes_dropped, 0);
  store::PgConn pgc(url);
  EXPECT_EQ(pgc.query("SELECT state FROM runs WHERE run_id = 1").str(0, 0), "closed");
  EXPECT_EQ(pgc.query("SELECT COUNT(*) FROM deliveries WHERE state IN (" + non_final_states_sql() + ")").i64(0, 0), 0);
  EXPECT_EQ(pgc.query("SELECT COUNT(*) FROM deliveries").i64(0, 0), kRows);
  // Nothing could be written to the locked file.
  SQLite::Statement q(locker.raw(), "SELECT COUNT(*) FROM alerts");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getInt64(), 0);
}

TEST_F(PgMonitorTest, DeliveredFiguresOnPostgresMatchTheSqliteQuery) {
  // The delivered measure's counts (store::DeliveryTruthAggregatesSql) read alike on both
  // databases: one run copied to PostgreSQL, statuses applied to the same rows in both.
  test_support::PgServer pg;
  if (!pg.up()) GTEST_SKIP() << "no PostgreSQL server for this test: " << pg.why_not();
  const std::string url = seed_pg(pg, "truth");
  const std::string src = (dir_ / "truth-seed.db").string();
  const std::string dl = std::to_string(kT0 + 300'000);
  const std::vector<std::string> updates = {
      // accepted and delivered on time; read late; accepted, status unknown; failed after accept; dead
      "UPDATE deliveries SET state = 'delivered', accepted_at = planned_at + 10, delivered_at = planned_at + 20 WHERE delivery_id <= 10",
      "UPDATE deliveries SET state = 'read', accepted_at = planned_at + 10, read_at = " + dl + " + 5 WHERE delivery_id BETWEEN 11 AND 15",
      "UPDATE deliveries SET state = 'accepted', accepted_at = planned_at + 10 WHERE delivery_id BETWEEN 16 AND 30",
      "UPDATE deliveries SET state = 'accepted', accepted_at = planned_at + 10, last_error = 'status failed: 131026' "
      "WHERE delivery_id BETWEEN 31 AND 35",
      "UPDATE deliveries SET state = 'dead', last_error = '131026' WHERE delivery_id BETWEEN 36 AND 45"};
  store::Db db(src);
  store::PgConn pgc(url);
  for (const auto& u : updates) {
    db.exec(u);
    pgc.exec(u);
  }
  for (Millis now : {kT0 + 1000, kT0 + 400'000}) {
    const store::DeliveryTruth a = store::DeliveryTruthForRun(db, 1, now);
    const store::DeliveryTruth b = store::pg_delivery_truth_for_run(pgc, 1, now);
    EXPECT_EQ(a.eligible, b.eligible);
    EXPECT_EQ(a.on_time, b.on_time);
    EXPECT_EQ(a.delivered_on_time, b.delivered_on_time);
    EXPECT_EQ(a.read, b.read);
    EXPECT_EQ(a.delivered, b.delivered);
    EXPECT_EQ(a.unknown, b.unknown);
    EXPECT_EQ(a.failed_after_accept, b.failed_after_accept);
    EXPECT_EQ(a.delivered_decided, b.delivered_decided);
    EXPECT_EQ(a.delivered_decided_on_time, b.delivered_decided_on_time);
    EXPECT_EQ(b.eligible, kRows);
    EXPECT_EQ(b.delivered, 15);
    EXPECT_EQ(b.delivered_on_time, 10);
    EXPECT_EQ(b.unknown, 15);
    EXPECT_EQ(b.failed_after_accept, 5);
  }
}

}  // namespace pg_monitor_test
}  // namespace daybreak
