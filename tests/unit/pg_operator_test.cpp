// The operator's write commands on the PostgreSQL ledger (store/pg_operator.hpp through
// cli/op_actions.hpp's *_pg actions) against a real PostgreSQL started for the test
// (pg_server.hpp): pause/resume write the controls row and its audit row in one transaction and
// a dispatch's heartbeat on PostgreSQL reads every scope of them; cancel (a run, one delivery)
// and a compliance pull leave the same delivery states and the same delivery_changes notes as
// the SQLite path does from the same starting data, and a dispatch's PollChanges returns them;
// `daybreak audit` reads the PostgreSQL audit_log; an advisor's change and an assignment leave
// PostgreSQL's rows as the SQLite path leaves the file's, and the advisor's pending deliveries
// there follow its channels; a publish brings changed advisors and content up to date there and
// nothing else; the commands that do not speak PostgreSQL are refused while [database] url is set.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <tuple>

#include "app/callbacks.hpp"
#include "app/plan.hpp"
#include "app/unsubscribe.hpp"
#include "channels/signature.hpp"
#include "cli/op_actions.hpp"
#include "cli/op_support.hpp"
#include "config/config.hpp"
#include "db_fixture.hpp"
#include "pg_fixture.hpp"
#include "store/assignments.hpp"
#include "store/audit.hpp"
#include "store/content.hpp"
#include "store/advisors.hpp"
#include "store/deliveries.hpp"
#include "store/exports.hpp"
#include "store/overrides.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_operator.hpp"
#include "store/pg_status.hpp"
#include "store/withdrawal.hpp"

namespace daybreak {
namespace {

constexpr Millis kOpT0 = 1'764'300'000'000;  // 2025-11-28 08:50 IST
const std::string kOpDay = "2025-11-29";
const std::string kOpFrom = "2025-11-27";  // yesterday of kOpT0 in Asia/Kolkata: where withdraw_content starts

class PgOperatorTest : public test_support::PgDbTest {
 protected:
  PgOperatorTest() : test_support::PgDbTest("pgoperator") {}
  void SetUp() override {
    test_support::PgDbTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
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

  /// `id` reads email first, then WhatsApp, and its delivery `delivery_id` was planned on email,
  /// on both ledgers (the day seeded first).
  void email_first(const std::string& id, std::int64_t delivery_id) {
    auto a = store::AdvisorGet(*db_, id)->advisor;
    a.channels = {Channel::email, Channel::whatsapp};
    a.email = id + "@example.test";
    const std::string planned_on_email = "UPDATE deliveries SET channel = 'email', channel_index = 0, sender = 'mail-1' "
                                         "WHERE delivery_id = " + std::to_string(delivery_id);
    db_->write_tx([&] {
      store::AdvisorUpsert(*db_, {a, kOpT0 + 1});
      db_->exec(planned_on_email);
    });
    store::PgOperator pg(url_);
    pg.tx(false, [&] { pg.advisor_put(*store::AdvisorGet(*db_, id)); });
    store::PgConn(url_).exec(planned_on_email);
  }
  /// daybreak-callbacks on [database] url with the SQLite file beside it, one-click unsubscribes
  /// signed with kUnsubSecretPg.
  std::unique_ptr<CallbackReceiver> receiver_on_both(const Clock& clock) {
    receiver_cfg_ = parse_config("[database]\npath = \"" + db_path() + "\"\nurl = \"" + url_ +
                                     "\"\n[email]\nunsubscribe_secret = \"" + kUnsubSecretPg + "\"\n",
                                 "t.toml");
    auto log = std::make_shared<spdlog::logger>("unsubscribe-pg", std::make_shared<spdlog::sinks::null_sink_mt>());
    return std::make_unique<CallbackReceiver>(db_.get(), receiver_cfg_, clock, log, "", std::make_unique<store::PgStatusStore>(url_));
  }
  static constexpr const char* kUnsubSecretPg = "unsub-secret-pg";
  Config receiver_cfg_;

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
  // What content_held reads, from each ledger: the en rows held on kOpDay.
  auto groups = [](const std::vector<store::HeldGroup>& g) {
    std::vector<std::tuple<std::string, std::string, std::string, std::int64_t>> out;
    for (const auto& x : g) out.emplace_back(x.content_id, x.language, x.date, x.count);
    return out;
  };
  EXPECT_EQ(groups(store::pg_held_delivery_groups(pg.conn(), kOpFrom)), groups(store::HeldDeliveryGroups(*db_, kOpFrom)));
  EXPECT_EQ(groups(store::pg_held_delivery_groups(pg.conn(), kOpFrom)),
            (std::vector<std::tuple<std::string, std::string, std::string, std::int64_t>>{{"pulled", "en", kOpDay, 4}}));

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

TEST_F(PgOperatorTest, ResendMatchesTheSqlitePathAndADispatchPollsItsRow) {
  seed();
  store::PgOperator pg(url_);
  const auto tz = cfg_.default_timezone;
  // An accepted delivery of the running run: back to planned, due now, noted for the dispatch.
  auto s6 = ops::resend_delivery(*db_, tz, 6, "advisor lost it", who_, kOpT0 + 1, false);
  auto p6 = ops::resend_delivery_pg(pg, tz, 6, "advisor lost it", who_, kOpT0 + 1, false);
  EXPECT_EQ(p6, s6);
  EXPECT_EQ(p6["before"], "accepted");
  EXPECT_FALSE(p6["run_reopened"].get<bool>());
  // Refused alike: not final yet (planned, sending), unknown; a dry run changes nothing.
  EXPECT_THROW(ops::resend_delivery_pg(pg, tz, 1, "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::resend_delivery_pg(pg, tz, 5, "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::resend_delivery_pg(pg, tz, 999, "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::resend_delivery_pg(pg, tz, 6, " ", who_, kOpT0, false), UsageError);
  ops::cancel_delivery(*db_, tz, 2, "advisor asked", who_, kOpT0 + 2, false);
  ops::cancel_delivery_pg(pg, tz, 2, "advisor asked", who_, kOpT0 + 2, false);
  auto dry = ops::resend_delivery_pg(pg, tz, 2, "just looking", who_, kOpT0 + 3, true);
  EXPECT_TRUE(dry["dry_run"].get<bool>());
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 2 AND state = 'cancelled'"), 1);
  // A cancelled delivery of a closed run: the run is reopened for the next dispatch.
  db_->exec("UPDATE runs SET state = 'closed' WHERE run_id = 1");
  pg.conn().exec("UPDATE runs SET state = 'closed' WHERE run_id = 1");
  auto s2 = ops::resend_delivery(*db_, tz, 2, "advisor asked again", who_, kOpT0 + 4, false);
  auto p2 = ops::resend_delivery_pg(pg, tz, 2, "advisor asked again", who_, kOpT0 + 4, false);
  EXPECT_EQ(p2, s2);
  EXPECT_TRUE(p2["run_reopened"].get<bool>());

  EXPECT_EQ(pg_rows(), sqlite_rows());
  EXPECT_EQ(pg_changes(), sqlite_changes());
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE delivery_id IN (2, 6) AND state = 'planned' AND next_attempt_at = resent_at "
                  "AND claim_owner IS NULL"),
            2);
  EXPECT_EQ(count("SELECT attempts FROM deliveries WHERE delivery_id = 6"), 1);  // its history is kept
  EXPECT_EQ(count("SELECT COUNT(*) FROM runs WHERE run_id = 1 AND state = 'running' AND reopened_at IS NOT NULL"), 1);

  // A dispatch on PostgreSQL reloads both rows as planned and takes the reopened run again.
  store::PgDispatchLedger ledger(url_, "host-a");
  store::ledger_op::PollChanges poll;
  poll.run_ids = {1};
  auto changes = std::get<store::OperatorChanges>(ledger.apply(poll));
  std::vector<std::int64_t> ids;
  for (const auto& r : changes.rows) {
    ids.push_back(r.delivery_id);
    EXPECT_EQ(r.state, DeliveryState::planned) << r.delivery_id;
  }
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{2, 6}));
  auto runs = ledger.list_dispatchable(kOpT0 + 40, kOpT0 + 40);
  ASSERT_EQ(runs.size(), 1U);
  EXPECT_EQ(runs[0].run_id, 1);

  store::AuditListParams p;
  p.target = "delivery:2";
  auto a = pg_audit(p);
  ASSERT_EQ(a.size(), 2U);  // the cancel and the resend (the dry run left none)
  EXPECT_EQ(a[0].entry.reason, "advisor asked again");
  EXPECT_EQ(nlohmann::json::parse(a[0].entry.before)["state"], "cancelled");
  EXPECT_EQ(nlohmann::json::parse(a[0].entry.after)["state"], "planned");
  EXPECT_EQ(nlohmann::json::parse(a[0].entry.after)["run_reopened"], true);
}

TEST_F(PgOperatorTest, AReplacementMatchesTheSqlitePathAndADispatchPollsItsRows) {
  add_content("better", "en", false);
  add_content("other-hi", "hi", false);
  add_content("old", "en", false);
  db_->exec("UPDATE content SET valid_until = '2025-11-28' WHERE content_id = 'old'");
  seed();
  store::PgOperator pg(url_);
  const auto tz = cfg_.default_timezone;
  const auto& lang = cfg_.emergency_language;
  // Refused alike before anything changes: the same item, unknown items, another language, not
  // valid on a day the item is assigned (kOpDay), the substitute withdrawn.
  EXPECT_THROW(ops::replace_content_pg(pg, tz, lang, "pulled", "pulled", "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::replace_content_pg(pg, tz, lang, "nope", "better", "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::replace_content_pg(pg, tz, lang, "pulled", "nope", "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::replace_content_pg(pg, tz, lang, "pulled", "other-hi", "x", who_, kOpT0, false), UsageError);
  EXPECT_THROW(ops::replace_content_pg(pg, tz, lang, "pulled", "old", "x", who_, kOpT0, false), UsageError);
  // A dry run reports and changes nothing.
  auto dry = ops::replace_content_pg(pg, tz, lang, "pulled", "better", "just looking", who_, kOpT0 + 1, true);
  EXPECT_EQ(dry["assignments_replaced"], 12);
  EXPECT_EQ(count("SELECT COUNT(*) FROM content WHERE withdrawn_at IS NOT NULL"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM delivery_changes"), 0);
  EXPECT_TRUE(dry["dispatch_confirmed"].is_null());

  auto s = ops::replace_content(*db_, tz, lang, "pulled", "better", "regulator", who_, kOpT0 + 10, false);
  auto p = ops::replace_content_pg(pg, tz, lang, "pulled", "better", "regulator", who_, kOpT0 + 10, false);
  for (const char* k : {"command", "content_id", "with", "already_withdrawn", "assignments_replaced", "deliveries_repointed",
                        "deliveries_in_flight", "dry_run"}) {
    EXPECT_EQ(p[k], s[k]) << k;
  }
  EXPECT_EQ(p["assignments_replaced"], 12);
  EXPECT_EQ(p["deliveries_repointed"], 9);  // all but 4 (uncertain), 5 (sending) and 6 (accepted)
  EXPECT_EQ(p["deliveries_in_flight"], 2);
  EXPECT_EQ(p["dispatch_confirmed"], true);  // in flight, and no dispatch holds a lease
  EXPECT_EQ(p["ledger"], "postgresql");
  EXPECT_EQ(pg_rows(), sqlite_rows());
  EXPECT_EQ(pg_changes(), sqlite_changes());
  EXPECT_EQ(count("SELECT COUNT(*) FROM assignments WHERE content_id = 'better' AND source = 'override' "
                  "AND reason = 'replaced pulled by better (content replace)'"),
            12);
  EXPECT_EQ(count("SELECT COUNT(*) FROM content WHERE content_id = 'pulled' AND withdrawn_at IS NOT NULL"), 1);

  // A dispatch on PostgreSQL reloads the re-pointed rows and learns the item is withdrawn, so its
  // content guard holds the in-flight ones it claimed (the run never closes with them open).
  store::PgDispatchLedger ledger(url_, "host-a");
  store::ledger_op::PollChanges poll;
  poll.run_ids = {1};
  auto changes = std::get<store::OperatorChanges>(ledger.apply(poll));
  EXPECT_EQ(changes.rows.size(), 9U);
  EXPECT_EQ(changes.withdrawn, std::vector<std::string>{"pulled"});
  for (const auto& r : changes.rows) EXPECT_EQ(r.content_id, "better") << r.delivery_id;

  auto audit = pg_audit();
  ASSERT_EQ(audit.size(), 1U);
  EXPECT_EQ(audit[0].entry.target, "content:pulled");
  EXPECT_EQ(audit[0].entry.reason, "regulator");
  EXPECT_EQ(nlohmann::json::parse(audit[0].entry.after)["replaced_by"], "better");
  EXPECT_EQ(nlohmann::json::parse(audit[0].entry.before)["withdrawn"], false);
}

TEST_F(PgOperatorTest, AnExportStreamsTheSameColumnsTypesAndValuesAsTheSqliteFile) {
  seed();
  store::PgOperator pg(url_);
  // Two attempts on both ledgers (one with NULLs, one with text a spreadsheet would evaluate).
  const std::string attempts =
      "INSERT INTO delivery_attempts (attempt_id, delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, "
      "error_code, error_detail, provider_message_id, latency_ms) VALUES "
      "(1, 6, 1, 'whatsapp', 'wa-1', 10, 20, 'accepted', NULL, NULL, 'wamid.6', 10), "
      "(2, 3, 1, 'whatsapp', 'wa-1', 11, 21, 'transient', '131026', '=HYPERLINK(x)', NULL, NULL)";
  db_->exec(attempts);
  pg.conn().exec(attempts);
  // (name, null, number, text) of every cell, row by row (a NULL is written as null whatever its
  // column's type).
  using Cell = std::tuple<std::string, bool, bool, std::string>;
  for (auto kind : {store::ExportKind::deliveries, store::ExportKind::attempts}) {
    std::vector<std::vector<Cell>> sqlite, postgres;
    store::ExportRows(*db_, kind, kOpDay, kOpDay, [&](SQLite::Statement& q) {
      auto& row = sqlite.emplace_back();
      for (int i = 0; i < q.getColumnCount(); ++i) {
        auto c = q.getColumn(i);
        row.emplace_back(q.getColumnName(i), c.isNull(), !c.isNull() && (c.isInteger() || c.isFloat()), c.isNull() ? "" : c.getString());
      }
    });
    store::ExportRowsPg(pg.conn(), kind, kOpDay, kOpDay, [&](const store::PgResult& r) {
      auto& row = postgres.emplace_back();
      for (int i = 0; i < r.cols(); ++i) {
        row.emplace_back(r.name(i), r.null(0, i), !r.null(0, i) && (r.is_integer(i) || r.is_float(i)), r.str(0, i));
      }
    });
    EXPECT_EQ(postgres.size(), kind == store::ExportKind::deliveries ? 12U : 2U);
    EXPECT_EQ(postgres, sqlite);
  }
  // Another day's range: nothing.
  int n = 0;
  store::ExportRowsPg(pg.conn(), store::ExportKind::deliveries, "2025-12-01", "2025-12-31", [&](const store::PgResult&) { ++n; });
  EXPECT_EQ(n, 0);
  // No run of the day was closed by a dispatch on PostgreSQL: no stored report to stream.
  n = 0;
  store::ExportRowsPg(pg.conn(), store::ExportKind::reports, kOpDay, kOpDay, [&](const store::PgResult&) { ++n; });
  EXPECT_EQ(n, 0);
}

TEST_F(PgOperatorTest, AnAdvisorChangeOnPostgresqlMatchesTheSqlitePathAndItsPendingDeliveriesFollowIt) {
  seed();
  store::PgOperator pg(url_);
  auto put = [&](const std::string& id) { pg.tx(false, [&] { pg.advisor_put(*store::AdvisorGet(*db_, id)); }); };
  // A pause of adv-1 on the day: the same rows cancelled and noted on both ledgers.
  std::vector<std::int64_t> sqlite_ids, pg_ids;
  db_->write_tx([&] {
    store::AdvisorSetAbsence(*db_, "adv-1", kOpDay, kOpDay, kOpT0 + 1);
    sqlite_ids = store::DeliveryCancelForAdvisorDays(*db_, "adv-1", kOpDay, kOpDay, kOpT0 + 1);
  });
  pg.tx(false, [&] {
    pg.advisor_put(*store::AdvisorGet(*db_, "adv-1"));
    pg_ids = pg.delivery_cancel_for_advisor_days("adv-1", kOpDay, kOpDay, kOpT0 + 1);
  });
  EXPECT_EQ(pg_ids, std::vector<std::int64_t>{2});
  EXPECT_EQ(pg_ids, sqlite_ids);
  EXPECT_EQ(pg_rows(), sqlite_rows());
  EXPECT_EQ(pg_changes(), sqlite_changes());
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisors WHERE advisor_id = 'adv-1' AND paused_from = '" + kOpDay + "' AND paused_until = '" +
                  kOpDay + "'"),
            1);
  // Another day's pause cancels nothing.
  EXPECT_TRUE(pg.delivery_cancel_for_advisor_days("adv-0", "2025-12-01", "", kOpT0).empty());

  // adv-2 (delivery 3, retry_wait) opts out of its only channel: cancelled, noted "cancel".
  db_->write_tx([&] { store::AdvisorChannelSetOptIn(*db_, "adv-2", "whatsapp", false, kOpT0 + 2); });
  store::PgOperator::AdvisorFollow f;
  pg.tx(false, [&] {
    pg.advisor_put(*store::AdvisorGet(*db_, "adv-2"));
    f = pg.advisor_follow("adv-2", kOpT0 + 2);
  });
  EXPECT_EQ(f.cancelled, std::vector<std::int64_t>{3});
  EXPECT_TRUE(f.moved.empty());
  EXPECT_TRUE(f.reloaded.empty());
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 3 AND state = 'cancelled'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'adv-2' AND opted_in = 0"), 1);

  // adv-7 (delivery 8) gets an email channel, then opts out of WhatsApp: moved to email.
  auto a7 = store::AdvisorGet(*db_, "adv-7")->advisor;
  a7.channels = {Channel::whatsapp, Channel::email};
  a7.email = "adv7@example.test";
  db_->write_tx([&] { store::AdvisorUpsert(*db_, {a7, kOpT0 + 3}); });
  pg.tx(false, [&] {
    pg.advisor_put(*store::AdvisorGet(*db_, "adv-7"));
    f = pg.advisor_follow("adv-7", kOpT0 + 3);
  });
  EXPECT_EQ(f.reloaded, std::vector<std::int64_t>{8});  // still on WhatsApp, reloaded with the new list
  db_->write_tx([&] { store::AdvisorChannelSetOptIn(*db_, "adv-7", "whatsapp", false, kOpT0 + 4); });
  pg.tx(false, [&] {
    pg.advisor_put(*store::AdvisorGet(*db_, "adv-7"));
    f = pg.advisor_follow("adv-7", kOpT0 + 4);
  });
  EXPECT_EQ(f.moved, std::vector<std::int64_t>{8});
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 8 AND state = 'planned' AND channel = 'email' "
                  "AND channel_index = 1"),
            1);
  // adv-4's delivery 5 is at the provider (sending): never touched.
  db_->write_tx([&] { store::AdvisorChannelSetOptIn(*db_, "adv-4", "whatsapp", false, kOpT0 + 5); });
  put("adv-4");
  pg.tx(false, [&] { f = pg.advisor_follow("adv-4", kOpT0 + 5); });
  EXPECT_TRUE(f.cancelled.empty() && f.moved.empty() && f.reloaded.empty());
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 5 AND state = 'sending'"), 1);

  // A running dispatch on PostgreSQL reloads the noted rows as they are now.
  store::PgDispatchLedger ledger(url_, "host-a");
  store::ledger_op::PollChanges poll;
  poll.run_ids = {1};
  auto changes = std::get<store::OperatorChanges>(ledger.apply(poll));
  std::map<std::int64_t, store::DeliveryRow> by_id;
  for (auto& r : changes.rows) by_id[r.delivery_id] = r;
  ASSERT_EQ(by_id.size(), 3U);
  EXPECT_EQ(by_id[2].state, DeliveryState::cancelled);
  EXPECT_EQ(by_id[3].state, DeliveryState::cancelled);
  EXPECT_EQ(by_id[8].channel, "email");
  EXPECT_EQ(by_id[8].email, "adv7@example.test");
  EXPECT_EQ(by_id[8].phone, "");  // opted out: no WhatsApp address
  EXPECT_EQ(by_id[8].channels, "whatsapp|email");
  auto kinds = pg_changes();
  EXPECT_EQ(std::count_if(kinds.begin(), kinds.end(), [](const Change& c) { return std::get<2>(c) == "advisor"; }), 2);

  // The advisor's row on PostgreSQL is the file's, column for column.
  auto a = store::AdvisorGet(*db_, "adv-7");
  auto r = store::PgConn(url_).query("SELECT name, channels, opted_in, updated_at FROM advisors WHERE advisor_id = 'adv-7'");
  EXPECT_EQ(r.str(0, 1), "whatsapp|email");
  EXPECT_EQ(r.i64(0, 3), a->updated_at);
}

// daybreak-callbacks on [database] url with the SQLite file beside it: a one-click unsubscribe
// (POST /unsubscribe, CallbackReceiver::unsubscribe) changes the advisor on both ledgers, and
// the day's pending email delivery on PostgreSQL, the one a dispatch sends from, moves too.
TEST_F(PgOperatorTest, AOneClickUnsubscribeMovesThePendingEmailDeliveryOnPostgresqlAsInTheFile) {
  seed();
  email_first("adv-7", 8);
  ManualClock clock(kOpT0 + 2);
  auto receiver_ptr = receiver_on_both(clock);
  auto& receiver = *receiver_ptr;
  const std::string token = channels::unsubscribe_token(kUnsubSecretPg, "adv-7");
  auto on_email = [&] {
    return count("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 8 AND channel = 'email' AND state = 'planned'");
  };

  // PostgreSQL refuses the audit row: 503, nothing changed on either ledger, the click can be repeated.
  store::PgConn(url_).exec("ALTER TABLE audit_log RENAME TO audit_log_away");
  auto refused = receiver.unsubscribe(token, "List-Unsubscribe=One-Click");
  EXPECT_EQ(refused.http_status, 503) << refused.reason;
  EXPECT_NE(refused.reason.find("nothing changed"), std::string::npos) << refused.reason;
  EXPECT_EQ(scalar("SELECT opted_in FROM advisor_channels WHERE advisor_id = 'adv-7' AND channel = 'email'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 8 AND channel = 'email'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_log"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'adv-7' AND channel = 'email' AND opted_in = 1"), 1);
  EXPECT_EQ(on_email(), 1);
  store::PgConn(url_).exec("ALTER TABLE audit_log_away RENAME TO audit_log");

  // The click again: the email channel is out on both ledgers, delivery 8 moves to WhatsApp on
  // both, noted for a dispatch on each, and each ledger has the audit row.
  clock.set(kOpT0 + 3);
  auto out = receiver.unsubscribe(token, "List-Unsubscribe=One-Click");
  ASSERT_EQ(out.http_status, 200) << out.reason;
  EXPECT_TRUE(out.changed);
  EXPECT_EQ(out.moved, 2U);  // one row in the file, the same row on PostgreSQL
  EXPECT_EQ(on_email(), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 8 AND channel = 'whatsapp' AND channel_index = 1 "
                  "AND state = 'planned'"),
            1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'adv-7' AND channel = 'email' AND opted_in = 0"), 1);
  EXPECT_EQ(pg_rows(), sqlite_rows());
  EXPECT_EQ(pg_changes(), sqlite_changes());
  auto audit = pg_audit();
  ASSERT_EQ(audit.size(), 1U);
  EXPECT_EQ(audit[0].entry.actor, "daybreak-callbacks");
  EXPECT_EQ(audit[0].entry.target, "advisor:adv-7");
  EXPECT_EQ(nlohmann::json::parse(audit[0].entry.after)["postgresql"]["deliveries_moved"], nlohmann::json::array({8}));
  // A second click: 200, nothing more on either ledger.
  auto again = receiver.unsubscribe(token, "List-Unsubscribe=One-Click");
  EXPECT_EQ(again.http_status, 200);
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(pg_audit().size(), 1U);

  // A running dispatch on PostgreSQL reloads the row on its new channel.
  store::PgDispatchLedger ledger(url_, "host-a");
  store::ledger_op::PollChanges poll;
  poll.run_ids = {1};
  auto changes = std::get<store::OperatorChanges>(ledger.apply(poll));
  ASSERT_EQ(changes.rows.size(), 1U);
  EXPECT_EQ(changes.rows[0].delivery_id, 8);
  EXPECT_EQ(changes.rows[0].channel, "whatsapp");
  EXPECT_EQ(changes.rows[0].email, "");  // unsubscribed: no email address any more
}

// The file's own commit failing after PostgreSQL's (a commit hook refuses it here): the answer
// says PostgreSQL has the unsubscribe and the file does not, and the next click brings the file
// along without moving anything twice.
TEST_F(PgOperatorTest, AnUnsubscribeWhoseFileCommitFailsAfterPostgresqlsSaysSoAndTheNextClickCompletesIt) {
  seed();
  email_first("adv-9", 10);
  ManualClock clock(kOpT0 + 2);
  auto receiver = receiver_on_both(clock);
  const std::string token = channels::unsubscribe_token(kUnsubSecretPg, "adv-9");

  // The file refuses its next commit.
  static int refusals = 0;
  refusals = 1;
  sqlite3_commit_hook(db_->raw().getHandle(), [](void*) { return refusals > 0 ? (--refusals, 1) : 0; }, nullptr);
  auto failed = receiver->unsubscribe(token, "List-Unsubscribe=One-Click");
  sqlite3_commit_hook(db_->raw().getHandle(), nullptr, nullptr);
  EXPECT_EQ(failed.http_status, 503);
  EXPECT_NE(failed.reason.find("is on PostgreSQL but the SQLite file could not be changed"), std::string::npos) << failed.reason;
  EXPECT_EQ(scalar("SELECT opted_in FROM advisor_channels WHERE advisor_id = 'adv-9' AND channel = 'email'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'adv-9' AND channel = 'email' AND opted_in = 0"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 10 AND channel = 'whatsapp'"), 1);

  // The click again: the file follows; PostgreSQL has nothing left to move.
  clock.set(kOpT0 + 3);
  auto again = receiver->unsubscribe(token, "List-Unsubscribe=One-Click");
  ASSERT_EQ(again.http_status, 200) << again.reason;
  EXPECT_TRUE(again.changed);
  EXPECT_EQ(again.moved, 1U);  // the file's row; PostgreSQL's moved at the first click
  EXPECT_EQ(scalar("SELECT opted_in FROM advisor_channels WHERE advisor_id = 'adv-9' AND channel = 'email'"), 0);
  EXPECT_EQ(pg_rows(), sqlite_rows());
}

TEST_F(PgOperatorTest, AnAssignmentOnPostgresqlRepointsThePendingDeliveryAsTheSqlitePathDoes) {
  seed();
  add_content("other", "en", false);
  store::PgOperator pg(url_);
  auto item = store::ContentInfoGet(*db_, "other");
  ASSERT_TRUE(item);
  std::optional<std::int64_t> sqlite_id, pg_id;
  db_->write_tx([&] { sqlite_id = store::DeliveryRepointAdvisor(*db_, "adv-1", kOpDay, "other", kOpT0 + 1); });
  pg.tx(false, [&] {
    EXPECT_TRUE(pg.content_add_missing(*item));  // imported after the last publish
    EXPECT_FALSE(pg.content_add_missing(*item));
    Assignment s{"adv-1", kOpDay, "other", Source::override_, 0, "{}", "operator override: better"};
    pg.assignment_override(s, kOpT0 + 1);
    pg_id = pg.delivery_repoint_advisor("adv-1", kOpDay, "other", kOpT0 + 1);
  });
  EXPECT_EQ(pg_id, std::optional<std::int64_t>(2));
  EXPECT_EQ(pg_id, sqlite_id);
  EXPECT_EQ(pg_rows(), sqlite_rows());
  EXPECT_EQ(pg_changes(), sqlite_changes());
  EXPECT_EQ(count("SELECT COUNT(*) FROM assignments WHERE advisor_id = 'adv-1' AND date = '" + kOpDay +
                  "' AND content_id = 'other' AND source = 'override'"),
            1);
  auto d = pg.delivery_info_for_advisor_date("adv-4", kOpDay);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->delivery_id, 5);
  EXPECT_EQ(d->state, "sending");
  // At the provider: not re-pointed (the command refuses it before).
  pg.tx(false, [&] { EXPECT_FALSE(pg.delivery_repoint_advisor("adv-4", kOpDay, "other", kOpT0 + 2)); });
  EXPECT_FALSE(pg.delivery_info_for_advisor_date("adv-4", "2025-12-01"));
}

TEST_F(PgOperatorTest, APublishBringsChangedAdvisorsAndContentUpToDateAndLeavesDeliveriesAndWithdrawalsAlone) {
  seed();
  store::PgOperator pg(url_);
  // On PostgreSQL: delivery 1 accepted by dispatch, "pulled" withdrawn by `content withdraw`.
  pg.conn().exec("UPDATE deliveries SET state = 'accepted', accepted_at = 9 WHERE delivery_id = 1");
  pg.conn().exec("UPDATE content SET withdrawn_at = 7, withdrawn_by = 'asha' WHERE content_id = 'pulled'");
  // ...and adv-8 opted out there through another host's file (its row newer than this file's).
  pg.conn().exec("UPDATE advisors SET updated_at = " + std::to_string(kOpT0 + 100) + " WHERE advisor_id = 'adv-8'");
  pg.conn().exec("UPDATE advisor_channels SET opted_in = 0 WHERE advisor_id = 'adv-8'");
  // In the file: adv-3 a new phone, adv-5 an email channel, adv-6 WhatsApp swapped for email;
  // the item "em-hi" retitled.
  auto a3 = store::AdvisorGet(*db_, "adv-3")->advisor;
  a3.phone = "+919800000003";
  auto a5 = store::AdvisorGet(*db_, "adv-5")->advisor;
  a5.channels = {Channel::whatsapp, Channel::email};
  a5.email = "adv5@example.test";
  auto a6 = store::AdvisorGet(*db_, "adv-6")->advisor;
  a6.channels = {Channel::email};
  a6.email = "adv6@example.test";
  Content em;
  em.content_id = "em-hi";
  em.title = "New title";
  em.body = "Body of em-hi";
  em.language = "hi";
  em.topics = {"tax"};
  em.valid_from = "2025-01-01";
  em.emergency = true;
  db_->write_tx([&] {
    for (const auto& a : {a3, a5, a6}) store::AdvisorUpsert(*db_, {a, kOpT0 + 10});
    store::ContentUpsert(*db_, {em, kOpT0 + 10});
  });
  store::LedgerCopyScope scope;
  scope.date = kOpDay;
  scope.controls = false;
  auto counts = store::copy_ledger_to_pg(pg.conn(), db_path(), scope);
  std::map<std::string, std::int64_t> updated(counts.updated.begin(), counts.updated.end());
  EXPECT_EQ(updated["advisors"], 2);          // adv-5's and adv-6's channel lists (a phone is a channel row's)
  EXPECT_EQ(updated["advisor_channels"], 2);  // adv-3's address; adv-6's WhatsApp row deleted
  EXPECT_EQ(updated["content"], 1);
  std::map<std::string, std::int64_t> inserted(counts.tables.begin(), counts.tables.end());
  EXPECT_EQ(inserted["advisor_channels"], 2);  // adv-5's and adv-6's email rows
  EXPECT_EQ(inserted["deliveries"], 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'adv-3' AND address = '+919800000003'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'adv-5'"), 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'adv-6' AND channel = 'whatsapp'"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisors WHERE advisor_id = 'adv-6' AND channels = 'email'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM content WHERE content_id = 'em-hi' AND title = 'New title'"), 1);
  // Never undone by a publish: the withdrawal on PostgreSQL and what dispatch wrote.
  EXPECT_EQ(count("SELECT COUNT(*) FROM content WHERE content_id = 'pulled' AND withdrawn_at = 7 AND withdrawn_by = 'asha'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 1 AND state = 'accepted'"), 1);
  // The newest row wins: this file's older adv-8 does not opt it back in.
  EXPECT_EQ(count("SELECT COUNT(*) FROM advisor_channels WHERE advisor_id = 'adv-8' AND opted_in = 0"), 1);
  // Again: nothing left to change.
  counts = store::copy_ledger_to_pg(pg.conn(), db_path(), scope);
  for (const auto& [t, n] : counts.updated) EXPECT_EQ(n, 0) << t;
  for (const auto& [t, n] : counts.tables) EXPECT_EQ(n, 0) << t;
}

}  // namespace
}  // namespace daybreak
