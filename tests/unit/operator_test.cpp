// Tests for the operator's store pieces: store/audit, store/overrides, store/catalog,
// store/exports and store/retention, on a real SQLite file in a per-test temporary directory
// (kept when a test fails).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <set>
#include <string>

#include "db_fixture.hpp"
#include "domain/delivery_fsm.hpp"
#include "store/advisors.hpp"
#include "store/audit.hpp"
#include "store/catalog.hpp"
#include "store/content.hpp"
#include "store/db.hpp"
#include "store/deliveries.hpp"
#include "store/exports.hpp"
#include "store/overrides.hpp"
#include "store/retention.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;

constexpr Millis kT0Operator = 1'764'300'000'000;  // any fixed instant

class OperatorStoreTest : public test_support::DbTest {
 protected:
  OperatorStoreTest() : DbTest("operator") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    db_->write_tx([&] {
      for (const char* id : {"C1", "C2"}) {
        Content c;
        c.content_id = id;
        c.title = std::string("Title ") + id;
        c.body = "Body";
        c.language = "en";
        store::ContentUpsert(*db_, {c, kT0Operator});
      }
    });
  }
  void add_advisor(const std::string& id, const std::string& tier = "gold", const std::string& name = "Advisor") {
    Advisor a;
    a.advisor_id = id;
    a.name = name;
    a.tier = tier;
    a.phone = "+919810000001";
    a.email = id + "@example.com";
    a.timezone = "Asia/Kolkata";
    a.slot = "06:00";
    a.channels = {Channel::whatsapp, Channel::email};
    a.language = "en";
    db_->write_tx([&] { store::AdvisorUpsert(*db_, {a, kT0Operator}); });
  }

  std::int64_t add_run(const std::string& date, Millis slot) {
    store::RunUpsertParams p;
    p.date = date;
    p.window = {slot, slot - 30000, slot + 270000, slot + 300000};
    p.planned_count = 0;
    std::int64_t id = 0;
    db_->write_tx([&] { id = store::RunUpsert(*db_, p); });
    return id;
  }

  std::int64_t add_delivery(std::int64_t run, const std::string& advisor, const std::string& date, Millis slot) {
    const store::DeliveryInsertParams p = test_support::planned_delivery(run, advisor, date, slot, slot, kT0Operator);
    db_->write_tx([&] { EXPECT_TRUE(store::DeliveryInsert(*db_, p)); });
    SQLite::Statement q(db_->raw(), "SELECT delivery_id FROM deliveries WHERE advisor_id = ? AND date = ?");
    q.bind(1, advisor);
    q.bind(2, date);
    q.executeStep();
    return q.getColumn(0).getInt64();
  }

  void set_state(std::int64_t id, const std::string& state, int possible_dup = 0) {
    SQLite::Statement q(db_->raw(), "UPDATE deliveries SET state = ?, possible_duplicate = ?, last_error = 'boom', attempts = 1 WHERE delivery_id = ?");
    q.bind(1, state);
    q.bind(2, possible_dup);
    q.bind(3, id);
    q.exec();
  }

  void add_attempt(std::int64_t id, const std::string& code) {
    store::AttemptInsertParams a;
    a.delivery_id = id;
    a.attempt_no = 1;
    a.channel = "whatsapp";
    a.sender = "wa-1";
    a.started_at = kT0Operator;
    a.finished_at = kT0Operator + 10;
    a.outcome = "permanent";
    a.error_code = code;
    db_->write_tx([&] { store::AttemptInsert(*db_, a); });
  }

};

TEST_F(OperatorStoreTest, AuditListFiltersAndOrdersNewestFirst) {
  db_->write_tx([&] {
    store::AuditAppend(*db_, {kT0Operator, "alice", "", "daybreak cancel --delivery 1", "oops", "delivery:1", "{\"state\":\"planned\"}", "{\"state\":\"cancelled\"}"});
    store::AuditAppend(*db_, {kT0Operator + 1000, "root", "bob", "daybreak pause", "maintenance", "control:pause", "", "{}"});
    store::AuditAppend(*db_, {kT0Operator + 2000, "alice", "", "daybreak dead replay 7", "fixed phone", "delivery:7", "{}", "{}"});
  });
  std::vector<std::int64_t> ats;
  store::AuditList(*db_, {}, [&](const store::AuditRow& r) { ats.push_back(r.entry.at); });
  EXPECT_EQ(ats, (std::vector<std::int64_t>{kT0Operator + 2000, kT0Operator + 1000, kT0Operator}));

  auto ids = [&](store::AuditListParams p) {
    std::vector<std::string> t;
    store::AuditList(*db_, p, [&](const store::AuditRow& r) { t.push_back(r.entry.target); });
    return t;
  };
  store::AuditListParams p;
  p.actor = "bob";  // SUDO_USER counts as the actor too
  EXPECT_EQ(ids(p), std::vector<std::string>{"control:pause"});
  p = {};
  p.command = "dead replay";
  EXPECT_EQ(ids(p), std::vector<std::string>{"delivery:7"});
  p = {};
  p.since = kT0Operator + 1000;
  p.until = kT0Operator + 2000;
  EXPECT_EQ(ids(p), std::vector<std::string>{"control:pause"});
  p = {};
  p.target = "delivery:1";
  EXPECT_EQ(ids(p), std::vector<std::string>{"delivery:1"});
  p = {};
  p.limit = 1;
  EXPECT_EQ(ids(p).size(), 1U);

  store::AuditList(*db_, {}, [&](const store::AuditRow& r) {
    if (r.entry.target == "control:pause") {
      EXPECT_EQ(r.entry.sudo_user, "bob");
      EXPECT_EQ(r.entry.before, "");  // NULL before stays empty
    }
  });
}

TEST_F(OperatorStoreTest, CancelMovesOnlyRowsNotAtTheProviderAndNotesThem) {
  add_advisor("A1");
  add_advisor("A2");
  add_advisor("A3");
  auto run = add_run("2026-12-01", kT0Operator);
  auto d1 = add_delivery(run, "A1", "2026-12-01", kT0Operator);
  auto d2 = add_delivery(run, "A2", "2026-12-01", kT0Operator);
  auto d3 = add_delivery(run, "A3", "2026-12-01", kT0Operator);
  set_state(d2, "sending");
  set_state(d3, "accepted");
  auto seq0 = store::DeliveryChangeLastSeq(*db_);

  bool ok = false;
  db_->write_tx([&] { ok = store::DeliveryCancel(*db_, d1, kT0Operator + 1); });
  EXPECT_TRUE(ok);
  db_->write_tx([&] { ok = store::DeliveryCancel(*db_, d2, kT0Operator + 1); });
  EXPECT_FALSE(ok) << "a sending row is at the provider; cancel must not overwrite it";
  db_->write_tx([&] { ok = store::DeliveryCancel(*db_, d3, kT0Operator + 1); });
  EXPECT_FALSE(ok);
  EXPECT_EQ(store::DeliveryInfoGet(*db_, d1)->state, "cancelled");
  EXPECT_EQ(store::DeliveryInfoGet(*db_, d2)->state, "sending");
  auto changes = store::DeliveryChangesSince(*db_, run, seq0);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].delivery_id, d1);
  EXPECT_EQ(changes[0].kind, "cancel");
  // A cancelled row can no longer be claimed by dispatch.
  db_->write_tx([&] { EXPECT_FALSE(store::DeliveryClaim(*db_, d1, "me", kT0Operator + 9999, kT0Operator + 2)); });
}

TEST_F(OperatorStoreTest, RunCancelCancelsEveryPendingDeliveryAndCountsInFlight) {
  for (int i = 0; i < 4; ++i) add_advisor("A" + std::to_string(i));
  auto run = add_run("2026-12-01", kT0Operator);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(add_delivery(run, "A" + std::to_string(i), "2026-12-01", kT0Operator));
  set_state(ids[1], "retry_wait");
  set_state(ids[2], "sending");
  set_state(ids[3], "dead");
  store::RunCancelResult r;
  db_->write_tx([&] { r = store::RunCancel(*db_, run, kT0Operator + 5); });
  EXPECT_EQ(std::set<std::int64_t>(r.cancelled.begin(), r.cancelled.end()), (std::set<std::int64_t>{ids[0], ids[1]}));
  EXPECT_EQ(r.in_flight, 1);
  EXPECT_EQ(store::RunGet(*db_, run)->state, "cancelled");
  EXPECT_EQ(store::DeliveryInfoGet(*db_, ids[3])->state, "dead");
  EXPECT_EQ(store::DeliveryChangesSince(*db_, run, 0).size(), 2U);
}

TEST_F(OperatorStoreTest, RequeueKeepsHistoryDeadlineAndDuplicateFlagAndReopensTheRun) {
  add_advisor("A1");
  auto run = add_run("2026-12-01", kT0Operator);
  auto d = add_delivery(run, "A1", "2026-12-01", kT0Operator);
  set_state(d, "dead", 1);
  add_attempt(d, "131026");
  db_->write_tx([&] {
    SQLite::Statement q(db_->raw(), "UPDATE runs SET state = 'closed', finished_at = 1 WHERE run_id = ?");
    q.bind(1, run);
    q.exec();
  });
  bool ok = false;
  db_->write_tx([&] { ok = store::DeliveryRequeue(*db_, d, {"planned"}, "replay", kT0Operator + 100); });
  EXPECT_FALSE(ok) << "only the named source states move";
  db_->write_tx([&] {
    ok = store::DeliveryRequeue(*db_, d, {"dead"}, "replay", kT0Operator + 100);
    EXPECT_TRUE(store::RunReopen(*db_, run, kT0Operator + 100));
  });
  ASSERT_TRUE(ok);
  auto info = store::DeliveryInfoGet(*db_, d);
  EXPECT_EQ(info->state, "planned");
  EXPECT_EQ(info->next_attempt_at, kT0Operator + 100);
  EXPECT_EQ(info->resent_at, kT0Operator + 100);
  EXPECT_EQ(info->deadline_at, kT0Operator + 300000) << "the SLA deadline is not moved by a replay";
  EXPECT_TRUE(info->possible_duplicate);
  EXPECT_EQ(info->attempts, 1);
  EXPECT_EQ(store::AttemptListForDelivery(*db_, d).size(), 1U);
  auto reopened = store::RunListReopened(*db_);
  ASSERT_EQ(reopened.size(), 1U);
  EXPECT_EQ(reopened[0].run_id, run);
  EXPECT_EQ(reopened[0].state, "running");
  EXPECT_EQ(store::DeliveryChangesSince(*db_, run, 0).back().kind, "replay");
}

TEST_F(OperatorStoreTest, DeadListFiltersAndDismissHidesButKeepsDead) {
  for (int i = 0; i < 3; ++i) add_advisor("A" + std::to_string(i));
  auto run = add_run("2026-12-01", kT0Operator);
  auto run2 = add_run("2026-12-02", kT0Operator + 86400000);
  auto a = add_delivery(run, "A0", "2026-12-01", kT0Operator);
  auto b = add_delivery(run, "A1", "2026-12-01", kT0Operator);
  auto c = add_delivery(run2, "A2", "2026-12-02", kT0Operator + 86400000);
  for (auto id : {a, b, c}) set_state(id, "dead");
  add_attempt(a, "131026");
  add_attempt(b, "131049");
  auto list = [&](store::DeadFilter f) {
    std::vector<std::int64_t> out;
    store::DeadList(*db_, f, [&](const store::DeliveryInfo& d) { out.push_back(d.delivery_id); });
    return out;
  };
  EXPECT_EQ(list({}).size(), 3U);
  store::DeadFilter f;
  f.run_id = run;
  EXPECT_EQ(list(f).size(), 2U);
  f = {};
  f.error_code = "131026";
  EXPECT_EQ(list(f), std::vector<std::int64_t>{a});
  f = {};
  f.date = "2026-12-02";
  EXPECT_EQ(list(f), std::vector<std::int64_t>{c});
  EXPECT_EQ(store::DeadCount(*db_), 3);

  bool ok = false;
  db_->write_tx([&] { ok = store::DeadDismiss(*db_, a, "alice", kT0Operator + 1); });
  EXPECT_TRUE(ok);
  db_->write_tx([&] { ok = store::DeadDismiss(*db_, a, "alice", kT0Operator + 2); });
  EXPECT_FALSE(ok) << "already dismissed";
  EXPECT_EQ(store::DeliveryInfoGet(*db_, a)->state, "dead");
  EXPECT_EQ(store::DeliveryInfoGet(*db_, a)->dismissed_by, "alice");
  EXPECT_EQ(list({}).size(), 2U);
  f = {};
  f.include_dismissed = true;
  EXPECT_EQ(list(f).size(), 3U);
  EXPECT_EQ(store::DeadCount(*db_), 2);
}

TEST_F(OperatorStoreTest, RepointAdvisorChangesOnlyAPendingDelivery) {
  add_advisor("A1");
  add_advisor("A2");
  auto run = add_run("2026-12-01", kT0Operator);
  auto d1 = add_delivery(run, "A1", "2026-12-01", kT0Operator);
  auto d2 = add_delivery(run, "A2", "2026-12-01", kT0Operator);
  set_state(d2, "accepted");
  std::optional<std::int64_t> r1, r2;
  db_->write_tx([&] {
    r1 = store::DeliveryRepointAdvisor(*db_, "A1", "2026-12-01", "C2", kT0Operator + 1);
    r2 = store::DeliveryRepointAdvisor(*db_, "A2", "2026-12-01", "C2", kT0Operator + 1);
  });
  EXPECT_EQ(r1, d1);
  EXPECT_FALSE(r2.has_value());
  EXPECT_EQ(store::DeliveryInfoGet(*db_, d1)->content_id, "C2");
  EXPECT_EQ(store::DeliveryInfoGet(*db_, d1)->source, "override");
  EXPECT_EQ(store::DeliveryInfoGet(*db_, d2)->content_id, "C1");
}

TEST_F(OperatorStoreTest, ControlsAreSetAndReplaced) {
  EXPECT_FALSE(store::ControlGet(*db_, "pause").has_value());
  db_->write_tx([&] { store::ControlSet(*db_, "pause", "1", kT0Operator, "alice"); });
  db_->write_tx([&] { store::ControlSet(*db_, "pause", "0", kT0Operator + 1, "bob"); });
  auto c = store::ControlGet(*db_, "pause");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->value, "0");
  EXPECT_EQ(c->updated_by, "bob");
  EXPECT_EQ(store::ControlList(*db_).size(), 1U);
}

TEST_F(OperatorStoreTest, AdvisorListFiltersAndAbsenceCancelsPendingDays) {
  add_advisor("A1", "gold", "Asha Rao");
  add_advisor("B2", "silver", "Bina Shah");
  auto list = [&](store::AdvisorFilter f) {
    std::vector<std::string> out;
    store::AdvisorListIds(*db_, f, [&](const std::string& id) { out.push_back(id); });
    return out;
  };
  store::AdvisorFilter f;
  f.tier = "silver";
  EXPECT_EQ(list(f), std::vector<std::string>{"B2"});
  f = {};
  f.search = "asha";
  EXPECT_EQ(list(f), std::vector<std::string>{"A1"});
  f = {};
  f.channel = "email";
  EXPECT_EQ(list(f).size(), 2U);
  f.channel = "webhook";
  EXPECT_TRUE(list(f).empty());

  auto r1 = add_run("2026-12-01", kT0Operator);
  auto r2 = add_run("2026-12-05", kT0Operator + 4 * 86400000LL);
  auto in = add_delivery(r1, "A1", "2026-12-01", kT0Operator);
  auto out = add_delivery(r2, "A1", "2026-12-05", kT0Operator + 4 * 86400000LL);
  std::vector<std::int64_t> cancelled;
  db_->write_tx([&] {
    EXPECT_TRUE(store::AdvisorSetAbsence(*db_, "A1", std::string("2026-12-01"), std::string("2026-12-03"), kT0Operator));
    cancelled = store::DeliveryCancelForAdvisorDays(*db_, "A1", "2026-12-01", "2026-12-03", kT0Operator);
  });
  EXPECT_EQ(cancelled, std::vector<std::int64_t>{in});
  EXPECT_EQ(store::DeliveryInfoGet(*db_, out)->state, "planned");
  f = {};
  f.paused = true;
  EXPECT_EQ(list(f), std::vector<std::string>{"A1"});
  EXPECT_TRUE(store::AdvisorListEligible(*db_, "2026-12-02").size() == 1U) << "A1 is paused on 12-02";

  db_->write_tx([&] { EXPECT_TRUE(store::AdvisorChannelSetOptIn(*db_, "B2", "email", false, kT0Operator)); });
  db_->write_tx([&] { EXPECT_FALSE(store::AdvisorChannelSetOptIn(*db_, "B2", "webhook", false, kT0Operator)); });
  auto b = store::AdvisorGet(*db_, "B2");
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->channels[1].opted_in);
}

TEST(FollowChannelIndex, OwnChannelWhileUsableElseTheFirstUsableOfTheListElseNone) {
  const std::vector<std::string> list = {"whatsapp", "email", "webhook"};
  EXPECT_EQ(follow_channel_index("email", list, {"whatsapp", "email"}), 1);    // still usable: kept
  EXPECT_EQ(follow_channel_index("whatsapp", list, {"email", "webhook"}), 1);  // left: the first usable
  EXPECT_EQ(follow_channel_index("webhook", list, {"email", "webhook"}), 2);
  EXPECT_EQ(follow_channel_index("whatsapp", list, {}), -1);                   // none left: cancelled
  EXPECT_EQ(follow_channel_index("sms", list, {"webhook"}), 2);                // not in the list any more
}

TEST_F(OperatorStoreTest, AnOptOutMovesOrCancelsTheAdvisorsPendingDeliveriesAndNotesThem) {
  add_advisor("A1");  // whatsapp|email
  add_advisor("A2");
  auto run = add_run("2026-12-01", kT0Operator);
  auto d1 = add_delivery(run, "A1", "2026-12-01", kT0Operator);  // on whatsapp, planned
  auto d2 = add_delivery(run, "A2", "2026-12-01", kT0Operator);
  set_state(d2, "sending");  // claimed: at the provider or about to be; not ours to change
  auto kinds = [&](std::int64_t id) {
    std::vector<std::string> out;
    SQLite::Statement q(db_->raw(), "SELECT kind FROM delivery_changes WHERE delivery_id = ? ORDER BY seq");
    q.bind(1, id);
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  };
  auto channel_of = [&](std::int64_t id) {
    SQLite::Statement q(db_->raw(), "SELECT channel || ':' || channel_index || ':' || sender FROM deliveries WHERE delivery_id = ?");
    q.bind(1, id);
    q.executeStep();
    return q.getColumn(0).getString();
  };
  store::AdvisorFollowCounts f;
  // Nothing changed: the row stays on its channel, noted so a running dispatch takes new addresses.
  db_->write_tx([&] { f = store::DeliveryFollowAdvisorChannels(*db_, "A1", kT0Operator); });
  EXPECT_EQ(f.reloaded, std::vector<std::int64_t>{d1});
  EXPECT_TRUE(f.moved.empty() && f.cancelled.empty());
  EXPECT_EQ(channel_of(d1), "whatsapp:0:wa-1");
  // Out of WhatsApp: the delivery moves to email (any sender of it), noted.
  db_->write_tx([&] {
    ASSERT_TRUE(store::AdvisorChannelSetOptIn(*db_, "A1", "whatsapp", false, kT0Operator + 1));
    f = store::DeliveryFollowAdvisorChannels(*db_, "A1", kT0Operator + 1);
  });
  EXPECT_EQ(f.moved, std::vector<std::int64_t>{d1});
  EXPECT_EQ(channel_of(d1), "email:1:");
  EXPECT_EQ(store::DeliveryInfoGet(*db_, d1)->state, "planned");
  // Out of email too: nothing reaches A1, so the delivery is cancelled, noted.
  db_->write_tx([&] {
    ASSERT_TRUE(store::AdvisorChannelSetOptIn(*db_, "A1", "email", false, kT0Operator + 2));
    f = store::DeliveryFollowAdvisorChannels(*db_, "A1", kT0Operator + 2);
  });
  EXPECT_EQ(f.cancelled, std::vector<std::int64_t>{d1});
  EXPECT_EQ(store::DeliveryInfoGet(*db_, d1)->state, "cancelled");
  EXPECT_EQ(kinds(d1), (std::vector<std::string>{"advisor", "advisor", "cancel"}));
  // A claimed row is left as it is, whatever the advisor did.
  db_->write_tx([&] {
    ASSERT_TRUE(store::AdvisorChannelSetOptIn(*db_, "A2", "whatsapp", false, kT0Operator + 3));
    ASSERT_TRUE(store::AdvisorChannelSetOptIn(*db_, "A2", "email", false, kT0Operator + 3));
    f = store::DeliveryFollowAdvisorChannels(*db_, "A2", kT0Operator + 3);
  });
  EXPECT_TRUE(f.moved.empty() && f.cancelled.empty() && f.reloaded.empty());
  EXPECT_EQ(store::DeliveryInfoGet(*db_, d2)->state, "sending");
  EXPECT_TRUE(kinds(d2).empty());
}

TEST_F(OperatorStoreTest, PurgeDeletesInBoundedBatchesChildrenFirst) {
  for (int i = 0; i < 25; ++i) add_advisor("A" + std::to_string(i));
  auto run = add_run("2026-10-01", kT0Operator);
  auto keep = add_run("2026-12-01", kT0Operator + 60 * 86400000LL);
  for (int i = 0; i < 25; ++i) {
    auto d = add_delivery(run, "A" + std::to_string(i), "2026-10-01", kT0Operator);
    add_attempt(d, "131000");
    db_->write_tx([&] { store::DeliveryChangeNote(*db_, d, "cancel", kT0Operator); });
  }
  add_delivery(keep, "A0", "2026-12-01", kT0Operator + 60 * 86400000LL);
  auto expired = store::RunListExpired(*db_, "2026-11-01", kT0Operator);
  ASSERT_EQ(expired.size(), 1U);
  EXPECT_EQ(expired[0].run_id, run);
  EXPECT_EQ(expired[0].deliveries, 25);
  int batches = 0;
  store::PurgeCounts total;
  while (true) {
    store::PurgeCounts step;
    db_->write_tx([&] { step = store::RunPurgeBatch(*db_, run, 10); });
    ++batches;
    EXPECT_LE(step.changes + step.deliveries, 10) << "a batch deletes at most `batch` change notes and deliveries";
    EXPECT_LE(step.attempts, step.deliveries) << "each delivery here has one attempt";
    total += step;
    if (step.runs > 0 || step.total() == 0) break;
  }
  EXPECT_EQ(total.attempts, 25);
  EXPECT_EQ(total.changes, 25);
  EXPECT_EQ(total.deliveries, 25);
  EXPECT_EQ(total.runs, 1);
  EXPECT_GE(batches, 5);  // 25 notes and 25 deliveries, 10 per batch, then the run row
  EXPECT_FALSE(store::RunGet(*db_, run).has_value());
  EXPECT_TRUE(store::RunGet(*db_, keep).has_value());
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM delivery_attempts a WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.delivery_id = a.delivery_id)"), 0);
}

TEST_F(OperatorStoreTest, RetentionSkipsARunALiveDispatchHolds) {
  auto run = add_run("2026-10-01", kT0Operator);
  db_->write_tx([&] { store::RunAcquireLease(*db_, run, "host:1:x", kT0Operator, 15000); });
  EXPECT_TRUE(store::RunListExpired(*db_, "2026-11-01", kT0Operator + 1000).empty());
  EXPECT_EQ(store::RunListExpired(*db_, "2026-11-01", kT0Operator + 20000).size(), 1U);
}

TEST_F(OperatorStoreTest, ExportStreamsRowsOfTheDateRange) {
  for (int i = 0; i < 30; ++i) add_advisor("A" + std::to_string(i));
  auto r1 = add_run("2026-12-01", kT0Operator);
  auto r2 = add_run("2026-12-03", kT0Operator + 2 * 86400000LL);
  for (int i = 0; i < 20; ++i) add_attempt(add_delivery(r1, "A" + std::to_string(i), "2026-12-01", kT0Operator), "");
  for (int i = 20; i < 30; ++i) add_delivery(r2, "A" + std::to_string(i), "2026-12-03", kT0Operator + 2 * 86400000LL);
  int rows = 0;
  std::string first_col;
  store::ExportRows(*db_, store::ExportKind::deliveries, "2026-12-01", "2026-12-02", [&](SQLite::Statement& q) {
    if (rows++ == 0) first_col = q.getColumnName(0);
  });
  EXPECT_EQ(rows, 20);
  EXPECT_EQ(first_col, "delivery_id");
  rows = 0;
  store::ExportRows(*db_, store::ExportKind::deliveries, "2026-12-01", "2026-12-03", [&](SQLite::Statement&) { ++rows; });
  EXPECT_EQ(rows, 30);
  rows = 0;
  store::ExportRows(*db_, store::ExportKind::attempts, "2026-12-01", "2026-12-03", [&](SQLite::Statement&) { ++rows; });
  EXPECT_EQ(rows, 20);
  std::set<std::string> tables;
  store::ExportRunRows(*db_, r1, [&](store::ArchiveTable t, SQLite::Statement&) { tables.insert(store::to_string(t)); });
  EXPECT_EQ(tables, (std::set<std::string>{"runs", "deliveries", "delivery_attempts"}));
}

}  // namespace
}  // namespace daybreak
