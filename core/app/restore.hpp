#pragma once
// The part of `daybreak restore` (core/cli/op_backup.cpp) that carries the provider's status
// callbacks over: the receiver may have stored status events in the live database after the
// backup was taken; the restore would drop them, and the deliveries they prove accepted would be
// resent. They are read from the replaced database (its DB.pre-restore copy) before anything
// else can lose them.
#include <cstdint>
#include <string>

#include "domain/types.hpp"
#include "store/db.hpp"
#include "store/status_events.hpp"

namespace daybreak {

/// What carry_status_events did.
struct CarriedStatuses {
  std::int64_t events = 0;   ///< status_events rows copied (raw bodies the restored ledger lacked)
  std::int64_t updates = 0;  ///< statuses in them not already in the restored ledger
  store::StatusApplySummary applied;  ///< applying every pending status afterwards
};

/// Copies into `db` every status event of the database file `previous` (opened read-only) that
/// `db` does not hold (same raw bytes, body_sha256), received at or after `since`, with its
/// original receive time, signature and source; parses its statuses again and stores them
/// pending; then applies every pending status (store::StatusApplyPending), which settles the
/// `uncertain` deliveries they name. One write transaction. A `previous` without status_events
/// carries nothing.
CarriedStatuses carry_status_events(store::Db& db, const std::string& previous, Millis since, Millis now);

}  // namespace daybreak
