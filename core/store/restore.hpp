#pragma once
// What `daybreak restore` reads from a backup and changes in the restored ledger: the deliveries
// that may have been sent after the backup was taken (domain/restore.hpp states the rule; the SQL
// here is the same rule, and tests/unit/deliveries_test.cpp checks the two agree state by state).
#include <cstdint>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// One run of a backup with deliveries that may have been sent after the backup was taken.
struct RestoreRunAtRisk {
  std::int64_t run_id = 0;
  std::string date;
  Millis slot_at = 0;
  std::string state;            ///< the run's state in the backup
  std::int64_t at_risk = 0;     ///< deliveries restored_row_may_have_been_sent() says yes to
  std::int64_t in_flight = 0;   ///< of those, sending/uncertain/retry_wait in the backup
};

/// The runs of `db` (a backup opened read-only, or the restored ledger) with deliveries that may
/// have been sent between the backup and `restore_at`, by run id. Closed runs are skipped: every
/// delivery of a closed run is final (RunClose refuses otherwise).
std::vector<RestoreRunAtRisk> RestoreRunsAtRisk(SQLite::Database& db, Millis restore_at, Millis claim_lead_ms);

/// Marks those deliveries `uncertain` with possible_duplicate = 1 and no claim, and releases the
/// lease the snapshot holds on their runs (the dispatch that held it is not running any more).
/// The next dispatch then treats them as it treats rows a dead dispatch left mid-send: it waits
/// dispatch.uncertain_grace_seconds for a status callback naming them, then resends and counts
/// each acceptance as a possible duplicate. Returns the number of deliveries marked. Call inside
/// Db::write_tx.
std::int64_t RestoreMarkUncertain(Db& db, Millis restore_at, Millis claim_lead_ms, Millis now);

}  // namespace daybreak::store
