// The status tables are bounded: StatusApplyPending's queue reaches every pending row of a
// backlog in turn, one batch per call; pending statuses expire after
// [retention] status_pending_expiry_hours; status events and their statuses older than
// [retention] status_days are deleted in batches (store/retention.cpp, `daybreak retention`);
// WhatsApp holds that have ended go too, those in force stay.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"
#include "db_fixture.hpp"
#include "store/retention.hpp"
#include "store/status_events.hpp"
#include "store/whatsapp_holds.hpp"

namespace daybreak {
namespace {

constexpr Millis kT0Purge = 1'764'300'000'000;
constexpr Millis kHourMs = 3'600'000;
constexpr Millis kDayMs = 24 * kHourMs;

class StatusPurgeTest : public test_support::DbTest {
 protected:
  StatusPurgeTest() : DbTest("statuspurge") {}
  /// One event received at `at` with `n` statuses about messages `prefix`1..n; returns its id.
  std::int64_t add_event(Millis at, int n, const std::string& prefix, bool applied = false) {
    SQLite::Statement e(db_->raw(),
                        "INSERT INTO status_events (received_at, source, signature, verified, body, body_sha256, state) "
                        "VALUES (?, 'receiver', 'sha256=x', 1, '{\"phone\":\"919810012345\"}', ?, 'processed')");
    e.bind(1, static_cast<std::int64_t>(at));
    e.bind(2, prefix);
    e.exec();
    const std::int64_t id = db_->raw().getLastInsertRowid();
    for (int i = 1; i <= n; ++i) {
      SQLite::Statement u(db_->raw(),
                          "INSERT INTO status_updates (event_id, provider_message_id, status, provider_at, received_at, applied_at, outcome) "
                          "VALUES (?, ?, 'delivered', ?, ?, ?, ?)");
      u.bind(1, id);
      u.bind(2, prefix + std::to_string(i));
      u.bind(3, static_cast<std::int64_t>(at));
      u.bind(4, static_cast<std::int64_t>(at));
      if (applied) {
        u.bind(5, static_cast<std::int64_t>(at));
        u.bind(6, "moved");
      } else {
        u.bind(5);
        u.bind(6);
      }
      u.exec();
    }
    return id;
  }
};

TEST_F(StatusPurgeTest, QueueReachesEveryRowOfTheBacklogInTurn) {
  add_event(kT0Purge, 50, "wamid.never.");
  add_event(kT0Purge, 1, "wamid.late.");  // queued behind the 50
  // Its delivery turns up: an accepted row with that message id (no run needed for matching).
  test_support::add_content_and_run(*db_, kT0Purge);
  test_support::add_whatsapp_advisor(*db_, "A1", kT0Purge);
  const std::int64_t run = scalar("SELECT MAX(run_id) FROM runs");
  auto p = test_support::planned_delivery(run, "A1", "2026-11-28", kT0Purge, kT0Purge, kT0Purge);
  ASSERT_TRUE(store::DeliveryInsert(*db_, p));
  const std::int64_t id = db_->raw().getLastInsertRowid();
  SQLite::Statement a(db_->raw(), "UPDATE deliveries SET state = 'accepted', provider_message_id = 'wamid.late.1', accepted_at = ? WHERE delivery_id = ?");
  a.bind(1, static_cast<std::int64_t>(kT0Purge));
  a.bind(2, id);
  a.exec();

  int calls = 0;
  int applied = 0;
  while (applied == 0 && calls < 10) {
    store::StatusApplySummary s;
    db_->write_tx([&] { s = store::StatusApplyPending(*db_, kT0Purge + (++calls) * 1000, 10); });
    EXPECT_LE(s.applied + s.pending, 10) << "call " << calls;
    applied += s.applied;
  }
  EXPECT_EQ(applied, 1);
  EXPECT_EQ(calls, 6) << "50 unmatched rows ahead of it, 10 per call: the sixth call reaches it";
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'"), 1);
  // Every unmatched row was tried once and went to the back of the queue.
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL AND checked_at IS NOT NULL"), 50);
  // Restore's carry-over still reads them all.
  store::StatusApplySummary all;
  db_->write_tx([&] { all = store::StatusApplyPending(*db_, kT0Purge + 60'000, store::kStatusPendingAll); });
  EXPECT_EQ(all.pending, 50);
}

TEST_F(StatusPurgeTest, PendingStatusesExpireAfterTheirAgeInBatches) {
  const Millis now = kT0Purge + 10 * kDayMs;
  add_event(now - 80 * kHourMs, 7, "wamid.old.");          // pending, older than 72 h
  add_event(now - 80 * kHourMs, 3, "wamid.done.", true);   // applied: not touched
  add_event(now - 10 * kHourMs, 4, "wamid.young.");        // pending, young
  const Millis cutoff = now - 72 * kHourMs;
  EXPECT_EQ(store::StatusCountPendingOlderThan(*db_, cutoff), 7);
  std::int64_t n1 = 0, n2 = 0, n3 = 0;
  db_->write_tx([&] { n1 = store::StatusExpirePendingBatch(*db_, cutoff, now, 5); });
  db_->write_tx([&] { n2 = store::StatusExpirePendingBatch(*db_, cutoff, now, 5); });
  db_->write_tx([&] { n3 = store::StatusExpirePendingBatch(*db_, cutoff, now, 5); });
  EXPECT_EQ(n1, 5);
  EXPECT_EQ(n2, 2);
  EXPECT_EQ(n3, 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE outcome = 'expired' AND applied_at = " + std::to_string(now)), 7);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL"), 4);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE outcome = 'moved'"), 3);
  // Expired rows are out of the pending queue.
  store::StatusApplySummary s;
  db_->write_tx([&] { s = store::StatusApplyPending(*db_, now); });
  EXPECT_EQ(s.pending, 4);
}

TEST_F(StatusPurgeTest, OldEventsGoWithTheirStatusesInBatchesOldestFirst) {
  const Millis now = kT0Purge + 100 * kDayMs;
  for (int d = 40; d >= 31; --d) add_event(now - d * kDayMs, 2, "wamid.d" + std::to_string(d) + ".", true);
  const std::int64_t keep = add_event(now - 29 * kDayMs, 2, "wamid.keep.");
  const Millis cutoff = now - 30 * kDayMs;
  auto would = store::StatusCountOlderThan(*db_, cutoff);
  EXPECT_EQ(would.events, 10);
  EXPECT_EQ(would.updates, 20);
  store::StatusPurgeCounts first;
  db_->write_tx([&] { first = store::StatusPurgeBatch(*db_, cutoff, 4); });
  EXPECT_EQ(first.events, 4);
  EXPECT_EQ(first.updates, 8);
  // Oldest first: days 40..37 are gone, 36 is still there.
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE provider_message_id LIKE 'wamid.d40.%'"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE provider_message_id LIKE 'wamid.d36.%'"), 2);
  store::StatusPurgeCounts step;
  std::int64_t events = first.events;
  do {
    db_->write_tx([&] { step = store::StatusPurgeBatch(*db_, cutoff, 4); });
    events += step.events;
  } while (step.events > 0);
  EXPECT_EQ(events, 10);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events"), 1);
  EXPECT_EQ(scalar("SELECT event_id FROM status_events"), keep);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates"), 2);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE event_id NOT IN (SELECT event_id FROM status_events)"), 0);
}

TEST(RetentionConfigTest, StatusRetentionKeysAndDefaults) {
  Config d = parse_config("", "t.toml");
  EXPECT_EQ(d.retention.status_days, 30);
  EXPECT_EQ(d.retention.status_pending_expiry_ms, 72 * kHourMs);
  Config c = parse_config("[retention]\nstatus_days = 14\nstatus_pending_expiry_hours = 24\n", "t.toml");
  EXPECT_EQ(c.retention.status_days, 14);
  EXPECT_EQ(c.retention.status_pending_expiry_ms, 24 * kHourMs);
  try {
    (void)parse_config("[retention]\nstatus_days = 0\n", "t.toml");
    FAIL() << "status_days = 0 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("retention.status_days"), std::string::npos) << e.what();
  }
}

TEST_F(StatusPurgeTest, EndedWhatsAppHoldsGoInBatchesAndHoldsInForceStay) {
  const Millis now = kT0Purge + 10 * kDayMs;
  db_->write_tx([&] {
    for (int i = 0; i < 7; ++i)
      store::WhatsAppHoldSet(*db_, {"ended-" + std::to_string(i), now - kDayMs + i, 131049, std::nullopt, now - 2 * kDayMs});
    store::WhatsAppHoldSet(*db_, {"held", now + kHourMs, 131049, std::nullopt, now - kHourMs});
  });
  EXPECT_EQ(store::WhatsappHoldCountEnded(*db_, now), 7);
  std::int64_t a = 0, b = 0, c = 0;
  db_->write_tx([&] { a = store::WhatsappHoldPurgeEndedBatch(*db_, now, 4); });
  db_->write_tx([&] { b = store::WhatsappHoldPurgeEndedBatch(*db_, now, 4); });
  db_->write_tx([&] { c = store::WhatsappHoldPurgeEndedBatch(*db_, now, 4); });
  EXPECT_EQ(a, 4);
  EXPECT_EQ(b, 3);
  EXPECT_EQ(c, 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM whatsapp_holds"), 1);
  EXPECT_EQ(store::WhatsAppHoldsActive(*db_, now).count("held"), 1U);
}

}  // namespace
}  // namespace daybreak
