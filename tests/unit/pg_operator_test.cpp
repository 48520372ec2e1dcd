// The operator's write commands on the PostgreSQL ledger (store/pg_operator.hpp through
// cli/op_actions.hpp's *_pg actions) against a real PostgreSQL started for the test
// (pg_server.hpp): pause/resume write the controls row and its audit row in one transaction and
// a dispatch's heartbeat on PostgreSQL reads every scope of them; cancel (a run, one delivery)
// and a compliance pull leave the same delivery states and the same delivery_changes notes as
// the SQLite path does from the same starting data, and a dispatch's PollChanges returns them;
// `daybreak audit` reads the PostgreSQL audit_log; the commands that do not speak PostgreSQL are
// refused while [database] url is set.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <tuple>

#include "app/plan.hpp"
#include "cli/op_actions.hpp"
#include "cli/op_support.hpp"
#include "config/config.hpp"
#include "db_fixture.hpp"
#include "pg_server.hpp"
#include "store/assignments.hpp"
#include "store/audit.hpp"
#include "store/content.hpp"
#include "store/advisors.hpp"
#include "store/deliveries.hpp"
#include "store/overrides.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_operator.hpp"

namespace daybreak {
namespace {

constexpr Millis kOpT0 = 1'764'300'000'000;  // 2025-11-28 08:50 IST
const std::string kOpDay = "2025-11-29";
const std::string kOpFrom = "2025-11-27";  // yesterday of kOpT0 in Asia/Kolkata: where withdraw_content starts

class PgOperatorTest : public test_support::DbTest {
 protected:
  PgOperatorTest() : DbTest("pgoperator") {}
  static void SetUpTestSuite() { server_ = std::make_unique<test_support::PgServer>(); }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    if (!server_->up()) GTEST_SKIP() << "no PostgreSQL server for this test: " << server_->why_not();
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    static int n = 0;
    const std::string name = "pgoperator" + std::to_string(++n);
    store::PgConn(server_->url()).exec("CREATE DATABASE " + name);
    url_ = server_->url(name);
    cfg_.default_timezone = "Asia/Kolkata";
    cfg_.emergency_language = "mr";  // no item in mr: an advisor without an item in their language is held
  }

  void add_advisor(const std::string& id, const std::string& lang) {
    Advisor a;
    a.advisor_id = id;
    a.name = "Advisor " + id;
    a.tier = "gold";
    a.phone = "+919810012345";
    a.timezone = "Asia/Kolkata";
    a.slot = "06:00";
    a.channels = {Channel::whatsapp};
    a.language = lang;
    a.topics = {"tax"};
    store::AdvisorUpsert(*db_, {a, kOpT0});
  }
  void add_content(const std::string& id, const std::string& lang, bool emergency) {
    Content c;
    c.content_id = id;
    c.title = "Title " + id;
    c.body = "Body of " + id;
    c.language = lang;
    c.topics = {"tax"};
    c.valid_from = "2025-01-01";
    c.emergency = emergency;
    store::ContentUpsert(*db_, {c, kOpT0});
  }

  /// Run 1 on kOpDay: 12 advisors (hi and en, alternating) assigned "pulled", one delivery each in
  /// a spread of states; "em-hi" is the only emergency item (so en advisors are held). Copied into
  /// PostgreSQL: both ledgers start alike.
  void seed() {
    add_content("pulled", "en", false);
    add_content("em-hi", "hi", true);
    db_->write_tx([&] {
      db_->exec("INSERT INTO runs (run_id, date, slot_at, window_start, window_end, deadline_at, state) VALUES (1, '" + kOpDay +
                "', 0, 0, 0, 0, 'running')");
      for (int i = 0; i < 12; ++i) {
        const std::string id = "adv-" + std::to_string(i);
        add_advisor(id, i % 2 ? "en" : "hi");
        store::AssignmentUpsertParams p;
        p.assignment = {id, kOpDay, "pulled", Source::editorial, 0, "{}", "editorial import"};
        p.created_at = kOpT0;
        store::AssignmentUpsert(*db_, p);
        auto d = test_support::planned_delivery(1, id, kOpDay, 0, 0, kOpT0);
        d.content_id = "pulled";
        ASSERT_TRUE(store::DeliveryInsert(*db_, d));
      }
      // Delivery 3 retry_wait, 4 uncertain, 5 sending (at the provider), 6 accepted (final).
      db_->exec("UPDATE deliveries SET state = 'retry_wait', attempts = 1 WHERE delivery_id = 3");
      db_->exec("UPDATE deliveries SET state = 'uncertain', attempts = 1 WHERE delivery_id = 4");
      db_->exec("UPDATE deliveries SET state = 'sending', claim_owner = 'host-a', attempts = 1 WHERE delivery_id = 5");
      db_->exec("UPDATE deliveries SET state = 'accepted', attempts = 1, accepted_at = 5 WHERE delivery_id = 6");
    });
    store::migrate_ledger_to_pg(db_path(), url_, "");
  }

  /// (delivery_id, state, content_id, source, last_error) of every delivery, on each ledger.
  using Row = std::tuple<std::int64_t, std::string, std::string, std::string, std::string>;
  std::vector<Row> sqlite_rows() {
    std::vector<Row> out;
    SQLite::Statement q(db_->raw(), "SELECT delivery_id, state, content_id, source, COALESCE(last_error, '') FROM deliveries ORDER BY delivery_id");
    while (q.executeStep()) {
      out.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getString(), q.getColumn(3).getString(),
                       q.getColumn(4).getString());
    }
    return out;
  }
  std::vector<Row> pg_rows() {
    std::vector<Row> out;
    auto r = store::PgConn(url_).query(
        "SELECT delivery_id, state, content_id, source, COALESCE(last_error, '') FROM deliveries ORDER BY delivery_id");
    for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.i64(i, 0), r.str(i, 1), r.str(i, 2), r.str(i, 3), r.str(i, 4));
    return out;
  }
  /// The delivery_changes notes as (delivery_id, run_id, kind, at), in seq order.
  using Change = std::tuple<std::int64_t, std::int64_t, std::string, std::int64_t>;
  std::vector<Change> sqlite_changes() {
    std::vector<Change> out;
    SQLite::Statement q(db_->raw(), "SELECT delivery_id, run_id, kind, at FROM delivery_changes ORDER BY seq");
    while (q.executeStep()) out.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getInt64(), q.getColumn(2).getString(), q.getColumn(3).getInt64());
    return out;
  }
  std::vector<Change> pg_changes() {
    std::vector<Change> out;
    auto r = store::PgConn(url_).query("SELECT delivery_id, run_id, kind, at FROM delivery_changes ORDER BY seq");
    for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.i64(i, 0), r.i64(i, 1), r.str(i, 2), r.i64(i, 3));
    return out;
  }
  std::vector<store::AuditRow> pg_audit(const store::AuditListParams& p = {}) {
    store::PgOperator pg(url_);
    std::vector<store::AuditRow> out;
    pg.audit_list(p, [&](const store::AuditRow& r) { out.push_back(r); });
    return out;
  }
  std::int64_t count(const std::string& sql) { return store::PgConn(url_).query(sql).i64(0, 0); }

  static inline std::unique_ptr<test_support::PgServer> server_;
  std::string url_;
  Config cfg_;
  ops::Actor who_{"asha", "root", "daybreak pause --reason test"};
};

TEST_F(PgOperatorTest, PauseAndResumeWriteTheSwitchAndItsAuditRowAndTheHeartbeatReadsEveryScope) {
  seed();
  store::PgOperator pg(url_);
  const std::vector<std::string> senders = {"wa-1", "wa-2"};
  auto all = ops::set_pause_target_pg(pg, {}, senders, true, "provider incident", who_, kOpT0, false);
  EXPECT_EQ(all["key"], "pause");
  EXPECT_FALSE(all["was_paused"].get<bool>());
  ops::set_pause_target_pg(pg, {"email", 0, ""}, senders, true, "relay down", who_, kOpT0 + 1, false);
  ops::set_pause_target_pg(pg, {"", 1, ""}, senders, true, "hold run 1", who_, kOpT0 + 2, false);
  ops::set_pause_target_pg(pg, {"", 0, "wa-2"}, senders, true, "number flagged", who_, kOpT0 + 3, false);
  // A dry run changes nothing, and neither does a refused one.
  ops::set_pause_target_pg(pg, {"whatsapp", 0, ""}, senders, true, "just looking", who_, kOpT0 + 4, true);
  EXPECT_THROW(ops::set_pause_target_pg(pg, {"", 99, ""}, senders, true, "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::set_pause_target_pg(pg, {"", 0, "wa-9"}, senders, true, "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::set_pause_target_pg(pg, {}, senders, true, " ", who_, kOpT0, false), UsageError);

  auto c = pg.control_get("pause");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->value, "1");
  EXPECT_EQ(c->updated_by, "asha");
  EXPECT_EQ(c->updated_at, kOpT0);
  EXPECT_FALSE(pg.control_get("pause.whatsapp"));
  EXPECT_EQ(count("SELECT COUNT(*) FROM controls"), 4);

  // The dispatch's heartbeat on PostgreSQL: every scope, as on SQLite.
  store::PgDispatchLedger ledger(url_, "host-a");
  auto hb = std::get<store::HeartbeatResult>(ledger.apply(store::ledger_op::Heartbeat{{}, kOpT0, 15'000}));
  EXPECT_TRUE(hb.controls.paused_all);
  EXPECT_TRUE(hb.controls.paused_channel[static_cast<int>(Channel::email)]);
  EXPECT_FALSE(hb.controls.paused_channel[static_cast<int>(Channel::whatsapp)]);
  EXPECT_EQ(hb.controls.paused_runs, std::vector<std::int64_t>{1});
  EXPECT_EQ(hb.controls.paused_senders, std::vector<std::string>{"wa-2"});

  auto res = ops::set_pause_target_pg(pg, {}, senders, false, "incident over", who_, kOpT0 + 10, false);
  EXPECT_TRUE(res["was_paused"].get<bool>());
  ops::set_pause_target_pg(pg, {"", 1, ""}, senders, false, "release run 1", who_, kOpT0 + 11, false);
  hb = std::get<store::HeartbeatResult>(ledger.apply(store::ledger_op::Heartbeat{{}, kOpT0 + 12, 15'000}));
  EXPECT_FALSE(hb.controls.paused_all);
  EXPECT_TRUE(hb.controls.paused_runs.empty());

  // Six audit rows (the dry run and the refused ones left none), newest first, with the actor.
  auto rows = pg_audit();
  ASSERT_EQ(rows.size(), 6U);
  EXPECT_EQ(rows[0].entry.target, "control:pause.run.1");
  EXPECT_EQ(rows[1].entry.target, "control:pause");
  EXPECT_EQ(rows[1].entry.reason, "incident over");
  EXPECT_EQ(rows[1].entry.actor, "asha");
  EXPECT_EQ(rows[1].entry.sudo_user, "root");
  EXPECT_EQ(nlohmann::json::parse(rows[1].entry.before)["paused"], true);
  EXPECT_EQ(nlohmann::json::parse(rows[1].entry.after)["paused"], false);
  store::AuditListParams only;
  only.target = "control:pause.sender.wa-2";
  ASSERT_EQ(pg_audit(only).size(), 1U);
  EXPECT_EQ(pg_audit(only)[0].entry.reason, "number flagged");
}

TEST_F(PgOperatorTest, CancelOfADeliveryAndOfARunMatchesTheSqlitePath) {
  seed();
  store::PgOperator pg(url_);
  const auto tz = cfg_.default_timezone;
  // One delivery.
  ops::cancel_delivery(*db_, tz, 2, "advisor asked", who_, kOpT0 + 1, false);
  ops::cancel_delivery_pg(pg, tz, 2, "advisor asked", who_, kOpT0 + 1, false);
  // Refused alike: at the provider, final, unknown.
  EXPECT_THROW(ops::cancel_delivery_pg(pg, tz, 5, "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::cancel_delivery_pg(pg, tz, 6, "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::cancel_delivery_pg(pg, tz, 999, "x", who_, kOpT0, false), UsageError);
  // The whole run.
  auto sqlite_out = ops::cancel_run(*db_, 1, "wrong content", who_, kOpT0 + 2, false);
  auto out = ops::cancel_run_pg(pg, 1, "wrong content", who_, kOpT0 + 2, false);
  EXPECT_EQ(out["cancelled"], 9);  // 12 less delivery 2 (cancelled already), 5 (sending) and 6 (accepted)
  EXPECT_EQ(out["in_flight"], 1);
  EXPECT_EQ(out, sqlite_out);
  EXPECT_THROW(ops::cancel_run_pg(pg, 1, "again", who_, kOpT0 + 3, false), UsageError);

  EXPECT_EQ(pg_rows(), sqlite_rows());
  EXPECT_EQ(pg_changes(), sqlite_changes());
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE run_id = 1 AND state = 'cancelled'"), 1);

  // A dispatch on PostgreSQL reloads exactly the noted rows.
  store::PgDispatchLedger ledger(url_, "host-a");
  store::ledger_op::PollChanges poll;
  poll.run_ids = {1};
  auto changes = std::get<store::OperatorChanges>(ledger.apply(poll));
  EXPECT_EQ(changes.rows.size(), 10U);
  for (const auto& r : changes.rows) EXPECT_EQ(r.state, DeliveryState::cancelled) << r.delivery_id;

  auto audit = pg_audit();
  ASSERT_EQ(audit.size(), 2U);
  EXPECT_EQ(audit[0].entry.target, "run:1");
  EXPECT_EQ(nlohmann::json::parse(audit[0].entry.after)["deliveries_cancelled"], 9);
  EXPECT_EQ(audit[1].entry.target, "delivery:2");
  EXPECT_EQ(nlohmann::json::parse(audit[1].entry.before)["state"], "planned");
  EXPECT_EQ(nlohmann::json::parse(audit[1].entry.after)["state"], "cancelled");
}

TEST_F(PgOperatorTest, AWithdrawalMatchesTheSqlitePathAndADispatchPollsItsRows) {
  seed();
  // No fallback candidate on either side (nothing is fallback-eligible), so the SQLite path's
  // ranking replaces nothing and both resolve the pending rows: hi → em-hi, en → held.
  auto sqlite_rep = withdraw_content(*db_, cfg_, "pulled", "regulator", "asha", "root", kOpT0 + 10);
  store::PgOperator pg(url_);
  auto pg_rep = ops::withdraw_content_pg(pg, cfg_.emergency_language, kOpFrom, "pulled", "regulator", {"asha", "root", "x"}, kOpT0 + 10);

  for (const char* k : {"deliveries_repointed", "deliveries_emergency", "deliveries_held", "deliveries_in_flight", "held_languages",
                        "already_withdrawn", "withdrawn_by"}) {
    EXPECT_EQ(pg_rep[k], sqlite_rep[k]) << k;
  }
  EXPECT_EQ(pg_rep["deliveries_emergency"], 5);  // hi rows 1, 3, 7, 9, 11 (5 is sending)
  EXPECT_EQ(pg_rep["deliveries_held"], 4);       // en rows 2, 8, 10, 12 (4 is uncertain, 6 accepted)
  EXPECT_EQ(pg_rep["deliveries_in_flight"], 2);  // 4 (uncertain) and 5 (sending)
  EXPECT_EQ(pg_rows(), sqlite_rows());
  EXPECT_EQ(pg_changes(), sqlite_changes());
  EXPECT_EQ(count("SELECT COUNT(*) FROM content WHERE content_id = 'pulled' AND withdrawn_at IS NOT NULL"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM assignments WHERE content_id = 'em-hi' AND source = 'emergency'"), 5);

  // A dispatch on PostgreSQL that loaded run 1 before the pull: its PollChanges returns every
  // changed row as it is now and names the item withdrawn, so its content guard stops the rest.
  store::PgDispatchLedger ledger(url_, "host-a");
  store::ledger_op::PollChanges poll;
  poll.run_ids = {1};
  auto changes = std::get<store::OperatorChanges>(ledger.apply(poll));
  EXPECT_EQ(changes.rows.size(), 9U);
  EXPECT_EQ(changes.withdrawn, std::vector<std::string>{"pulled"});
  for (const auto& r : changes.rows) {
    EXPECT_NE(r.content_id == "pulled" && r.state != DeliveryState::dead, true) << r.delivery_id;
  }

  // Both audit rows, in the same transaction as the change: named and reasoned.
  auto audit = pg_audit();
  ASSERT_EQ(audit.size(), 2U);
  std::vector<std::string> commands = {audit[0].entry.command, audit[1].entry.command};
  std::sort(commands.begin(), commands.end());
  EXPECT_EQ(commands, (std::vector<std::string>{"content withdraw", "content withdraw: replace"}));
  for (const auto& a : audit) {
    EXPECT_EQ(a.entry.actor, "asha");
    EXPECT_EQ(a.entry.reason, "regulator");
    EXPECT_EQ(a.entry.target, "pulled");
  }

  // Again: harmless, the first withdrawal's actor kept; an unknown item is refused.
  auto again = ops::withdraw_content_pg(pg, cfg_.emergency_language, kOpFrom, "pulled", "again", {"ravi", "", "x"}, kOpT0 + 20);
  EXPECT_TRUE(again["already_withdrawn"].get<bool>());
  EXPECT_EQ(again["withdrawn_by"], "asha");
  EXPECT_EQ(again["deliveries_held"], 0);
  EXPECT_THROW(ops::withdraw_content_pg(pg, "en", kOpFrom, "nope", "x", who_, kOpT0), CheckFailed);
}

TEST_F(PgOperatorTest, DeadReplayAndDismissMatchTheSqlitePath) {
  seed();
  // Both ledgers: the pull holds the en rows (dead, "held: …"), then run 1 is closed.
  withdraw_content(*db_, cfg_, "pulled", "regulator", "asha", "", kOpT0 + 10);
  store::PgOperator pg(url_);
  ops::withdraw_content_pg(pg, cfg_.emergency_language, kOpFrom, "pulled", "regulator", who_, kOpT0 + 10);
  db_->exec("UPDATE runs SET state = 'closed' WHERE run_id = 1");
  pg.conn().exec("UPDATE runs SET state = 'closed' WHERE run_id = 1");
  const auto tz = cfg_.default_timezone;

  store::DeadFilter held;
  held.error_code = "held";
  std::vector<std::int64_t> listed;
  pg.dead_list(held, [&](const store::DeliveryInfo& d) { listed.push_back(d.delivery_id); });
  EXPECT_EQ(listed, (std::vector<std::int64_t>{2, 8, 10, 12}));

  // Dismiss two by id, replay the rest by filter: the same rows, states, notes and reopened run.
  auto sd = ops::dead_change(*db_, tz, {2, 8}, std::nullopt, false, "known gap", who_, kOpT0 + 20, false);
  auto pd = ops::dead_change_pg(pg, tz, {2, 8}, std::nullopt, false, "known gap", who_, kOpT0 + 20, false);
  EXPECT_EQ(pd["count"], sd["count"]);
  EXPECT_THROW(ops::dead_change_pg(pg, tz, {2, 1}, std::nullopt, false, "x", who_, kOpT0 + 21, false), UsageError);  // 2 dismissed, 1 not dead
  auto sr = ops::dead_change(*db_, tz, {}, held, true, "item back", who_, kOpT0 + 30, false);
  auto pr = ops::dead_change_pg(pg, tz, {}, held, true, "item back", who_, kOpT0 + 30, false);
  EXPECT_EQ(pr["delivery_ids"], sr["delivery_ids"]);
  EXPECT_EQ(pr["delivery_ids"], nlohmann::json({10, 12}));
  EXPECT_EQ(pr["runs_reopened"], sr["runs_reopened"]);
  EXPECT_EQ(pr["runs_reopened"], nlohmann::json({1}));

  EXPECT_EQ(pg_rows(), sqlite_rows());
  EXPECT_EQ(pg_changes(), sqlite_changes());
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE run_id = 1 AND state = 'running' AND reopened_at IS NOT NULL"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE dismissed_by = 'asha'"), 2);
  // The reopened run is one a dispatch on PostgreSQL takes again.
  store::PgDispatchLedger ledger(url_, "host-a");
  auto runs = ledger.list_dispatchable(kOpT0 + 40, kOpT0 + 40);
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].run_id, 1);
  store::AuditListParams p;
  p.command = "";
  p.target = "delivery:12";
  auto a = pg_audit(p);
  ASSERT_EQ(a.size(), 1U);
  EXPECT_EQ(a[0].entry.reason, "item back");
  EXPECT_EQ(nlohmann::json::parse(a[0].entry.after)["state"], "planned");
}

TEST_F(PgOperatorTest, ACommandThatDoesNotSpeakPostgresqlIsRefusedWhileUrlIsSet) {
  for (const char* p : {"resend", "assign", "content replace", "export deliveries", "serve", "advisors opt-out",
                        "advisors pause", "advisors update"}) {
    EXPECT_TRUE(ops::refused_on_postgresql(p)) << p;
  }
  // send-now plans on the SQLite file and publishes its run to PostgreSQL (op_send_now.cpp).
  for (const char* p : {"send-now", "pause", "resume", "cancel", "content withdraw", "content list", "audit", "status", "doctor", "dead list",
                        "dead replay", "advisors list", "advisors show", "import", "retention purge", "backup", "alerts check",
                        "resender"}) {
    EXPECT_FALSE(ops::refused_on_postgresql(p)) << p;
  }
  const std::string conf = db_path() + ".toml";
  std::ofstream(conf) << "[database]\nurl = \"" << url_ << "\"\n";
  GlobalOptions g;
  g.config_path = conf;
  EXPECT_THROW(ops::refuse_on_postgresql(g, "resend"), ConfigError);
  EXPECT_NO_THROW(ops::refuse_on_postgresql(g, "pause"));
  g.database = db_path();  // the SQLite file named explicitly: allowed
  EXPECT_NO_THROW(ops::refuse_on_postgresql(g, "resend"));
}

}  // namespace
}  // namespace daybreak
