// Pending statuses (store/status_events.cpp, sql/010): a status that never matches a delivery
// stays pending, and StatusApplyPending reads them in one bounded batch per call, so a large
// backlog of unmatched statuses costs the same small batch on every pass instead of a reload of
// all of them (dispatch calls it inside its write transaction).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "db_fixture.hpp"
#include "store/status_events.hpp"

namespace daybreak {
namespace {

constexpr Millis kT0Pending = 1'764'300'000'000;  // 2025-11-28T03:20:00Z

class PendingBacklogTest : public test_support::DbTest {
 protected:
  PendingBacklogTest() : DbTest("pending") {}
  /// `n` pending statuses naming no delivery, received at `at`, in one raw event.
  void add_unmatched(std::int64_t n, Millis at, const std::string& prefix = "wamid.none.") {
    SQLite::Statement e(db_->raw(),
                        "INSERT INTO status_events (received_at, source, signature, verified, body, body_sha256, state) "
                        "VALUES (?, 'receiver', 'sha256=x', 1, '{}', ?, 'processed')");
    e.bind(1, static_cast<std::int64_t>(at));
    e.bind(2, prefix + std::to_string(at));
    e.exec();
    const std::int64_t event_id = db_->raw().getLastInsertRowid();
    SQLite::Statement u(db_->raw(),
                        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1) "
                        "INSERT INTO status_updates (event_id, provider_message_id, status, provider_at, received_at) "
                        "SELECT ?2, ?3 || i, 'delivered', ?4, ?4 FROM k");
    u.bind(1, n);
    u.bind(2, event_id);
    u.bind(3, prefix);
    u.bind(4, static_cast<std::int64_t>(at));
    db_->write_tx([&] { u.exec(); });
  }
};

TEST_F(PendingBacklogTest, OneCallReadsABoundedBatchOfABigBacklog) {
  add_unmatched(5000, kT0Pending);
  store::StatusApplySummary s;
  db_->write_tx([&] { s = store::StatusApplyPending(*db_, kT0Pending + 1000); });
  // Every row read is counted as applied or pending: one call touches at most one batch.
  EXPECT_LE(s.applied + s.pending, 1000);
  EXPECT_GT(s.pending, 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL"), 5000) << "unmatched rows stay pending";
}

TEST_F(PendingBacklogTest, BatchIsReadThroughAnIndexInQueueOrder) {
  SQLite::Statement q(db_->raw(),
                      "EXPLAIN QUERY PLAN SELECT update_id FROM status_updates WHERE applied_at IS NULL "
                      "ORDER BY checked_at, update_id LIMIT 1000");
  std::string plan;
  while (q.executeStep()) plan += q.getColumn(3).getString() + "\n";
  EXPECT_NE(plan.find("status_updates_pending_queue"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << "no sort of the whole backlog: " << plan;
}

// The measurement behind docs/reliability.md: one StatusApplyPending call over a million
// pending rows. Run with DAYBREAK_BENCH_PENDING=1 (it takes a while to build the rows).
TEST_F(PendingBacklogTest, BenchMillionPendingRows) {
  if (std::getenv("DAYBREAK_BENCH_PENDING") == nullptr) GTEST_SKIP() << "set DAYBREAK_BENCH_PENDING=1 to measure";
  add_unmatched(1'000'000, kT0Pending);
  for (int pass = 1; pass <= 3; ++pass) {
    store::StatusApplySummary s;
    const auto t0 = std::chrono::steady_clock::now();
    db_->write_tx([&] { s = store::StatusApplyPending(*db_, kT0Pending + pass * 1000); });
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "StatusApplyPending over 1,000,000 pending rows, pass " << pass << ": " << ms << " ms, rows read "
              << s.applied + s.pending << "\n";
  }
}

}  // namespace
}  // namespace daybreak
