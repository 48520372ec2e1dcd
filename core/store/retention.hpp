#pragma once
// Retention (`daybreak retention purge|archive`): old runs are deleted with everything that hangs
// off them in bounded batches, each its own short write transaction, so a running dispatch's
// writer never waits on one long delete (it waits at most one batch; busy_timeout covers that).
// The status tables (sql/003) go by age the same way: raw callback bodies and their statuses
// older than [retention] status_days, and pending statuses older than
// status_pending_expiry_hours are expired first. Assignments (the nights' plan input) go by day,
// with the runs' cutoff but never inside the ranker's history window (op_retention.cpp).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// A run old enough to go.
struct ExpiredRun {
  std::int64_t run_id = 0;
  std::string date;
  std::string state;
  std::int64_t deliveries = 0;
};
/// Runs of delivery days before `cutoff_date` that no live dispatch holds (no lease unexpired at
/// `now`), oldest first.
std::vector<ExpiredRun> RunListExpired(Db& db, const std::string& cutoff_date, Millis now);

/// Rows one RunPurgeBatch deleted.
struct PurgeCounts {
  std::int64_t attempts = 0;
  std::int64_t changes = 0;
  std::int64_t deliveries = 0;
  std::int64_t reports = 0;
  std::int64_t runs = 0;
  [[nodiscard]] std::int64_t total() const { return attempts + changes + deliveries + reports + runs; }
  PurgeCounts& operator+=(const PurgeCounts& o) {
    attempts += o.attempts; changes += o.changes; deliveries += o.deliveries; reports += o.reports; runs += o.runs;
    return *this;
  }
};
/// Deletes at most `batch` of the run's change notes and deliveries together (each delivery with
/// its attempts, a bounded few), children before parents; once nothing else is left, the report
/// and the run row. Returns what it deleted; runs == 1 means the run is gone. Call inside its
/// own Db::write_tx, once per batch.
PurgeCounts RunPurgeBatch(Db& db, std::int64_t run_id, std::int64_t batch);

/// Status-table rows one StatusPurgeBatch deleted (or, for StatusCountOlderThan, would delete).
struct StatusPurgeCounts {
  std::int64_t events = 0;   ///< status_events rows (raw bodies, which hold phone numbers)
  std::int64_t updates = 0;  ///< status_updates rows of those events
};
/// Deletes up to `batch` status events received before `cutoff` (ms), oldest first, each with
/// its statuses (children first). Call inside its own Db::write_tx, once per batch, until it
/// returns events == 0.
StatusPurgeCounts StatusPurgeBatch(Db& db, Millis cutoff, std::int64_t batch);
/// What StatusPurgeBatch would delete before `cutoff` (for --dry-run).
StatusPurgeCounts StatusCountOlderThan(Db& db, Millis cutoff);

/// Expires up to `batch` pending statuses (never matched to a delivery) received before
/// `cutoff`: applied_at = now, outcome 'expired', so StatusApplyPending no longer reads them.
/// Returns how many. Call inside its own Db::write_tx, once per batch, until it returns 0.
std::int64_t StatusExpirePendingBatch(Db& db, Millis cutoff, Millis now, std::int64_t batch);
/// How many pending statuses were received before `cutoff` (for --dry-run).
std::int64_t StatusCountPendingOlderThan(Db& db, Millis cutoff);
/// Deletes up to `batch` WhatsApp holds (sql/012) that ended before `now`: an ended hold changes
/// nothing, and its row names an advisor. Returns how many went.
std::int64_t WhatsappHoldPurgeEndedBatch(Db& db, Millis now, std::int64_t batch);
/// How many WhatsApp holds ended before `now` (for --dry-run).
std::int64_t WhatsappHoldCountEnded(Db& db, Millis now);

/// The days before `cutoff_date` that still have assignments, oldest first, each with its row
/// count. Each date is found by one search of the date-led key (sql/015).
std::vector<std::pair<std::string, std::int64_t>> AssignmentDaysBefore(Db& db, const std::string& cutoff_date);
/// Deletes up to `batch` assignments of `date` (one range of the date-led key). Returns how many
/// went. Call inside its own Db::write_tx, once per batch, until it returns fewer than `batch`.
std::int64_t AssignmentPurgeBatch(Db& db, const std::string& date, std::int64_t batch);

}  // namespace daybreak::store
