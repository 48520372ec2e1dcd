// Status callbacks in the PostgreSQL ledger (store/pg_status.hpp) against a real PostgreSQL
// started for the test (pg_server.hpp): the same statuses, stored by the SQLite path
// (store_callbacks, StatusApplyPending, DeliveryRerouteAfterFailedStatus) and by the PostgreSQL
// one (store_callbacks_pg, PgStatusStore::apply_pending, ledger_op::RerouteAfterFailed), leave the
// same deliveries (state, message id, accepted/delivered/read times, error), the same status
// outcomes, change notes and WhatsApp holds, in both ledgers.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

#include "app/callbacks.hpp"
#include "db_fixture.hpp"
#include "pg_fixture.hpp"
#include "store/deliveries.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_status.hpp"
#include "store/retention.hpp"
#include "store/whatsapp_holds.hpp"

namespace daybreak {
namespace {

constexpr Millis kT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST

class PgStatusTest : public test_support::PgDbTest {
 protected:
  PgStatusTest() : test_support::PgDbTest("pgstatus") {}
  void SetUp() override {
    test_support::PgDbTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    log_ = std::make_shared<spdlog::logger>("pgstatus", std::make_shared<spdlog::sinks::null_sink_mt>());
  }

  /// `rows` planned WhatsApp deliveries (ids 1..rows) in run 1, in SQLite and copied to PostgreSQL.
  void seed(int rows) {
    ASSERT_EQ(test_support::add_content_and_run(*db_, kT0 - 3'600'000), 1);
    db_->write_tx([&] {
      for (int i = 1; i <= rows; ++i) {
        const std::string id = "adv-" + std::to_string(i);
        test_support::add_whatsapp_advisor(*db_, id, kT0 - 3'600'000);
        ASSERT_TRUE(store::DeliveryInsert(*db_, test_support::planned_delivery(1, id, "2026-11-28", kT0, kT0, kT0 - 3'600'000)));
      }
    });
    test_support::set_run_window(*db_, 1, kT0);
    store::migrate_ledger_to_pg(db_path(), url_, "2026-11-28");
    pg_ = std::make_unique<store::PgStatusStore>(url_);
  }

  /// The same statement on both ledgers (portable SQL only).
  void both(const std::string& sql) {
    db_->exec(sql);
    pg_->conn().exec(sql);
  }
  /// Dispatch's own write of a send answer: accepted with its message id.
  void accept(int id, const std::string& wamid, Millis at) {
    both("UPDATE deliveries SET state = 'accepted', provider_message_id = '" + wamid + "', accepted_at = " + std::to_string(at) +
         ", attempts = 1, first_sent_at = " + std::to_string(at) + " WHERE delivery_id = " + std::to_string(id));
  }

  /// A verified callback with one status (its body names it, so a different status is a
  /// different body and the same one is a duplicate request).
  static VerifiedCallback status(const std::string& wamid, MessageStatus s, Millis at, std::optional<std::int64_t> delivery = {},
                                 std::optional<long> code = {}) {
    VerifiedCallback v;
    v.signature = "sha256=test";
    v.body = R"({"id":")" + wamid + R"(","status":")" + std::string(to_string(s)) + R"(","ts":)" + std::to_string(at) + "}";
    StatusUpdate u;
    u.provider_message_id = wamid;
    u.status = s;
    u.provider_at = at;
    u.delivery_id = delivery;
    u.phone_number_id = "100000001";
    u.error_code = code;
    if (code) u.error_title = "Message undeliverable";
    v.updates.push_back(u);
    return v;
  }

  /// One batch through both stores; returns the SQLite outcomes and checks the PostgreSQL ones match.
  std::vector<IngestOutcome> post(const std::vector<VerifiedCallback>& batch, Millis now) {
    std::vector<const VerifiedCallback*> items;
    for (const auto& b : batch) items.push_back(&b);
    auto lite = store_callbacks(*db_, items, "receiver", "", now, *log_);
    auto pg = store_callbacks_pg(*pg_, items, "receiver", "", now, *log_);
    EXPECT_EQ(lite.size(), pg.size());
    for (std::size_t i = 0; i < lite.size() && i < pg.size(); ++i) {
      EXPECT_EQ(lite[i].duplicate, pg[i].duplicate) << i;
      EXPECT_EQ(lite[i].new_updates, pg[i].new_updates) << i;
      EXPECT_EQ(lite[i].applied.applied, pg[i].applied.applied) << i;
      EXPECT_EQ(lite[i].applied.pending, pg[i].applied.pending) << i;
      EXPECT_EQ(lite[i].applied.reconciled, pg[i].applied.reconciled) << i;
      EXPECT_EQ(lite[i].applied.moved, pg[i].applied.moved) << i;
      EXPECT_EQ(lite[i].applied.errors_recorded, pg[i].applied.errors_recorded) << i;
      EXPECT_FALSE(pg[i].apply_failed) << i;
    }
    return lite;
  }

  /// Rows of `sql` as "a|b|c" lines (NULL as ~), from each ledger.
  std::vector<std::string> lite_rows(const std::string& sql) {
    std::vector<std::string> out;
    SQLite::Statement q(db_->raw(), sql);
    while (q.executeStep()) {
      std::string line;
      for (int c = 0; c < q.getColumnCount(); ++c) line += (c ? "|" : "") + (q.getColumn(c).isNull() ? std::string("~") : q.getColumn(c).getString());
      out.push_back(line);
    }
    return out;
  }
  std::vector<std::string> pg_rows(const std::string& sql, int cols) {
    std::vector<std::string> out;
    auto r = pg_->conn().query(sql);
    for (int i = 0; i < r.rows(); ++i) {
      std::string line;
      for (int c = 0; c < cols; ++c) line += (c ? "|" : "") + (r.null(i, c) ? std::string("~") : r.str(i, c));
      out.push_back(line);
    }
    return out;
  }
  /// The same rows in both ledgers (`cols` columns).
  void expect_same(const std::string& sql, int cols) { EXPECT_EQ(lite_rows(sql), pg_rows(sql, cols)) << sql; }
  void expect_same_deliveries() {
    expect_same("SELECT delivery_id, state, channel, provider_message_id, accepted_at, delivered_at, read_at, last_error, "
                "claim_owner FROM deliveries ORDER BY delivery_id",
                9);
  }
  void expect_same_statuses() {
    expect_same("SELECT provider_message_id, status, applied_at, matched_delivery_id, outcome FROM status_updates "
                "ORDER BY provider_message_id, status",
                5);
  }
  std::string lite_state(int id) {
    return lite_rows("SELECT state FROM deliveries WHERE delivery_id = " + std::to_string(id)).at(0);
  }
  std::string pg_state(int id) { return pg_->conn().query("SELECT state FROM deliveries WHERE delivery_id = " + std::to_string(id)).str(0, 0); }

  std::unique_ptr<store::PgStatusStore> pg_;
  std::shared_ptr<spdlog::logger> log_;
};

TEST_F(PgStatusTest, TheSameStatusesLeaveTheSameDeliveriesOnBothLedgers) {
  seed(7);
  const Millis a = kT0 + 1'000;
  accept(1, "wamid.1", a);
  accept(2, "wamid.2", a);
  // 3 is still `sending` (dispatch has not recorded its send answer), 5 uncertain after a crash
  both("UPDATE deliveries SET state = 'sending', claim_owner = 'host-x', attempts = 1 WHERE delivery_id = 3");
  both("UPDATE deliveries SET state = 'uncertain', claim_owner = 'host-dead', attempts = 1 WHERE delivery_id = 5");

  // Batch 1: sent and delivered; read without delivered (Meta omits it); a status for the row
  // still sending; a sent naming uncertain row 5 by our id; a duplicated request; a status for
  // a message nobody sent yet.
  auto d1 = status("wamid.1", MessageStatus::delivered, a + 3'000);
  auto out = post({status("wamid.1", MessageStatus::sent, a + 1'000), d1, status("wamid.2", MessageStatus::read, a + 5'000),
                   status("wamid.3", MessageStatus::delivered, a + 2'000, 3), status("wamid.5", MessageStatus::sent, a + 500, 5), d1,
                   status("wamid.9", MessageStatus::delivered, a + 2'000)},
                  a + 6'000);
  EXPECT_TRUE(out[5].duplicate);
  EXPECT_EQ(out[3].applied.pending, 1);  // waits for dispatch's own write
  EXPECT_EQ(out[4].applied.reconciled, 1);
  EXPECT_EQ(lite_state(1), "delivered");
  EXPECT_EQ(pg_state(1), "delivered");
  EXPECT_EQ(pg_state(2), "read");
  EXPECT_EQ(pg_state(3), "sending");
  EXPECT_EQ(pg_state(5), "accepted");
  expect_same_deliveries();
  expect_same_statuses();

  // Batch 2: read, a second `delivered` of message 1 with an earlier time (the same status of the
  // same message: not new, ignored), a lower `sent` after read (never downgrades).
  post({status("wamid.1", MessageStatus::read, a + 9'000), status("wamid.2", MessageStatus::sent, a + 900)}, a + 10'000);
  auto dup = status("wamid.1", MessageStatus::delivered, a + 2'000);
  dup.body += " ";  // another request, the same status
  auto o2 = post({dup}, a + 11'000);
  EXPECT_FALSE(o2[0].duplicate);
  EXPECT_EQ(o2[0].new_updates, 0);
  EXPECT_EQ(pg_state(1), "read");
  EXPECT_EQ(pg_state(2), "read");
  expect_same_deliveries();

  // Dispatch records row 3's send answer; the pending pass applies the status that came first.
  accept(3, "wamid.3", a + 1'500);
  both("UPDATE deliveries SET claim_owner = NULL WHERE delivery_id = 3");
  store::StatusApplySummary lite_s;
  db_->write_tx([&] { lite_s = store::StatusApplyPending(*db_, a + 20'000); });
  auto pg_s = pg_->apply_pending(a + 20'000);
  EXPECT_EQ(lite_s.applied, 1);
  EXPECT_EQ(pg_s.applied, lite_s.applied);
  EXPECT_EQ(pg_s.pending, lite_s.pending);  // wamid.9: still no delivery
  EXPECT_EQ(pg_state(3), "delivered");
  expect_same_deliveries();
  expect_same_statuses();
  expect_same("SELECT delivery_id, run_id, kind, at FROM delivery_changes ORDER BY seq", 4);
  // (ids differ: PostgreSQL's identity skips a value for each duplicate insert)
  expect_same("SELECT state, processed_at, rejected FROM status_events ORDER BY body", 3);
  expect_same("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL AND checked_at IS NOT NULL", 1);
}

TEST_F(PgStatusTest, AFailedStatusIsRecordedAndTheOwnerReroutesItAndALateDeliveredIsIgnored) {
  seed(3);
  const Millis a = kT0 + 1'000;
  accept(1, "wamid.f", a);
  accept(2, "wamid.h", a);
  auto out = post({status("wamid.f", MessageStatus::failed, a + 2'000, std::nullopt, 131026),
                   status("wamid.h", MessageStatus::failed, a + 2'500, std::nullopt, 131049)},
                  a + 3'000);
  EXPECT_EQ(out[0].applied.errors_recorded, 1);
  expect_same_deliveries();
  // A change note a running dispatch acts on, in both ledgers; the 131049 holds WhatsApp 24 h.
  expect_same("SELECT delivery_id, kind FROM delivery_changes ORDER BY seq", 2);
  EXPECT_EQ(pg_->conn().query("SELECT COUNT(*) FROM delivery_changes WHERE kind = 'status_failed'").i64(0, 0), 2);
  expect_same("SELECT advisor_id, until, error_code, delivery_id, set_at FROM whatsapp_holds ORDER BY advisor_id", 5);
  store::PgDispatchLedger owner(url_, "host-a");
  ASSERT_TRUE(owner.acquire_lease(1, a + 3'500, 15'000).acquired);
  auto holds = owner.load_whatsapp_holds(a + 3'500);
  ASSERT_EQ(holds.count("adv-2"), 1u);
  EXPECT_EQ(holds["adv-2"], a + 2'500 + kWhatsAppMarketingHoldMs);

  // The run's owner moves row 1 to the next channel (dispatch's decide_after_failed_status).
  store::RerouteAfterFailedParams p;
  p.delivery_id = 1;
  p.channel = "email";
  p.channel_index = 1;
  p.sender = "mail-1";
  p.last_error = "rerouted after status failed: 131026 Message undeliverable -> email";
  p.now = a + 4'000;
  db_->exec("UPDATE runs SET owner = 'host-a', state = 'running' WHERE run_id = 1");
  bool moved = false;
  db_->write_tx([&] { moved = store::DeliveryRerouteAfterFailedStatus(*db_, p, "host-a"); });
  EXPECT_TRUE(moved);
  owner.begin();
  owner.apply(store::ledger_op::RerouteAfterFailed{p});
  owner.commit();
  EXPECT_EQ(pg_state(1), "retry_wait");
  // A host that does not own the run cannot: row 2 stays accepted with its error.
  store::PgDispatchLedger other(url_, "host-b");
  p.delivery_id = 2;
  other.begin();
  other.apply(store::ledger_op::RerouteAfterFailed{p});
  other.commit();
  EXPECT_EQ(pg_state(2), "accepted");

  // A late `delivered` of the failed WhatsApp message says nothing about the row now on email.
  auto late = post({status("wamid.f", MessageStatus::delivered, a + 5'000)}, a + 6'000);
  EXPECT_EQ(late[0].applied.ignored, 1);
  EXPECT_EQ(pg_state(1), "retry_wait");
  expect_same_deliveries();
  expect_same_statuses();
}

TEST_F(PgStatusTest, RejectedElementsMalformedBodiesAndTheExpiryOfPendingStatuses) {
  seed(1);
  VerifiedCallback bad;
  bad.signature = "sha256=x";
  bad.body = std::string("not json \xff\x00 at all", 18);  // raw bytes, kept byte for byte
  bad.malformed_error = "body is not JSON";
  auto rej = status("wamid.r", MessageStatus::sent, kT0);
  rej.rejected.push_back(StatusReject{"entry[0].changes[0].value.statuses[1]", "wamid.x", "timestamp is not a number",
                                      std::string("{\"ts\":\"\xe0\xa4", 9)});  // an excerpt cut inside a character
  rej.rejected_total = 3;
  auto out = post({bad, rej}, kT0 + 1'000);
  EXPECT_TRUE(out[0].malformed);
  expect_same("SELECT state, error, rejected FROM status_events ORDER BY received_at, state", 3);
  EXPECT_EQ(pg_->conn().query("SELECT encode(body, 'hex') FROM status_events WHERE state = 'malformed'").str(0, 0),
            "6e6f74206a736f6e20ff0020617420616c6c");
  expect_same("SELECT path, provider_message_id, reason FROM status_rejects ORDER BY reject_id", 3);
  EXPECT_EQ(pg_->conn().query("SELECT excerpt FROM status_rejects").str(0, 0), "{\"ts\":\"");
  // wamid.r names no delivery: pending until it expires.
  std::int64_t expired = -1;
  pg_->apply_pending(kT0 + 2'000, store::kStatusPendingBatch, kT0, &expired);
  EXPECT_EQ(expired, 0);
  pg_->apply_pending(kT0 + 3'000, store::kStatusPendingBatch, kT0 + 2'000, &expired);
  EXPECT_EQ(expired, 1);
  EXPECT_EQ(pg_->counts().pending, 0);
  EXPECT_EQ(pg_->conn().query("SELECT outcome FROM status_updates").str(0, 0), "expired");
}

TEST_F(PgStatusTest, RetentionBoundsTheStatusTablesAsOnSqlite) {
  seed(2);
  accept(1, "wamid.1", kT0);
  accept(2, "wamid.2", kT0);
  // Old: a delivered status, a pending one (names no delivery) with a rejected element; new: a read.
  post({status("wamid.1", MessageStatus::delivered, kT0 + 1'000)}, kT0 + 1'000);
  auto rej = status("wamid.x", MessageStatus::sent, kT0 + 2'000);
  rej.rejected.push_back(StatusReject{"entry[0].changes[0].value.statuses[1]", "wamid.y", "timestamp is not a number", "{}"});
  rej.rejected_total = 1;
  post({rej}, kT0 + 2'000);
  post({status("wamid.2", MessageStatus::delivered, kT0 + 3'000)}, kT0 + 3'000);
  post({status("wamid.1", MessageStatus::read, kT0 + 60'000)}, kT0 + 60'000);
  // One hold that has ended by kT0 + 10 s, one still in force.
  both("INSERT INTO whatsapp_holds (advisor_id, until, error_code, delivery_id, set_at) VALUES ('adv-1', " + std::to_string(kT0 + 5'000) +
       ", 131049, 1, " + std::to_string(kT0) + "), ('adv-2', " + std::to_string(kT0 + 86'400'000) + ", 131049, 2, " +
       std::to_string(kT0) + ")");
  const Millis now = kT0 + 10'000, cutoff = kT0 + 30'000, expiry = kT0 + 2'500;
  auto& c = pg_->conn();

  // --dry-run's counts.
  EXPECT_EQ(store::pg_status_count_pending_older_than(c, expiry), store::StatusCountPendingOlderThan(*db_, expiry));
  EXPECT_EQ(store::pg_status_count_pending_older_than(c, expiry), 1);
  const auto lite_count = store::StatusCountOlderThan(*db_, cutoff);
  const auto pg_count = store::pg_status_count_older_than(c, cutoff);
  EXPECT_EQ(pg_count.events, lite_count.events);
  EXPECT_EQ(pg_count.updates, lite_count.updates);
  EXPECT_EQ(pg_count.events, 3);
  EXPECT_EQ(pg_count.updates, 3);
  EXPECT_EQ(store::pg_whatsapp_hold_count_ended(c, now), store::WhatsappHoldCountEnded(*db_, now));
  EXPECT_EQ(store::pg_whatsapp_hold_count_ended(c, now), 1);

  // The batches, one row at a time: the same rows go, the same are left.
  std::int64_t expired = 0, lite_expired = 0;
  for (std::int64_t n = 1; n > 0;) {
    n = store::pg_status_expire_pending_batch(c, expiry, now, 1);
    expired += n;
  }
  for (std::int64_t n = 1; n > 0;) {
    db_->write_tx([&] { n = store::StatusExpirePendingBatch(*db_, expiry, now, 1); });
    lite_expired += n;
  }
  EXPECT_EQ(expired, 1);
  EXPECT_EQ(expired, lite_expired);
  store::StatusPurgeCounts purged, lite_purged;
  for (int i = 0; i < 10; ++i) {
    auto step = store::pg_status_purge_batch(c, cutoff, 1);
    store::StatusPurgeCounts lite;
    db_->write_tx([&] { lite = store::StatusPurgeBatch(*db_, cutoff, 1); });
    EXPECT_EQ(step.events, lite.events) << i;
    EXPECT_EQ(step.updates, lite.updates) << i;
    purged.events += step.events;
    purged.updates += step.updates;
    if (step.events == 0) break;
  }
  EXPECT_EQ(purged.events, 3);
  EXPECT_EQ(purged.updates, 3);
  EXPECT_EQ(store::pg_whatsapp_hold_purge_ended_batch(c, now, 5), 1);
  db_->write_tx([&] { store::WhatsappHoldPurgeEndedBatch(*db_, now, 5); });

  expect_same("SELECT received_at, state FROM status_events ORDER BY received_at", 2);
  expect_same_statuses();
  expect_same("SELECT advisor_id, until FROM whatsapp_holds ORDER BY advisor_id", 2);
  EXPECT_EQ(pg_rows("SELECT provider_message_id, status FROM status_updates", 2), std::vector<std::string>{"wamid.1|read"});
  EXPECT_EQ(c.query("SELECT COUNT(*) FROM status_rejects").i64(0, 0), 0);
  expect_same_deliveries();  // the deliveries keep what the statuses did to them
}

}  // namespace
}  // namespace daybreak
