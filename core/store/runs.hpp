#pragma once
// Query module for `runs`: one row per (delivery day, slot instant), carrying the dispatch
// lease (owner, lease_until, heartbeat_at) and the live progress object.
#include <optional>
#include <string>
#include <vector>

#include "domain/time.hpp"
#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// A run row.
struct Run {
  std::int64_t run_id = 0;
  std::string date;
  Millis slot_at = 0;
  Millis window_start = 0;
  Millis window_end = 0;
  Millis deadline_at = 0;
  std::string state;  ///< planned | running | closed | cancelled
  std::int64_t planned_count = 0;
  bool feasible = true;
  std::string plan_report;  ///< JSON text
  std::optional<std::string> owner;
  std::optional<Millis> lease_until;
  std::optional<Millis> heartbeat_at;
  std::string progress;     ///< JSON text
  std::optional<Millis> started_at;
  std::optional<Millis> finished_at;
  std::string kind = "morning";  ///< morning | urgent (sql/014); RunGet leaves it, RunKindGet reads it
};

struct RunUpsertParams {
  std::string date;
  Window window;
  std::int64_t planned_count = 0;
  bool feasible = true;
  std::string plan_report = "{}";
};

/// Inserts the run for (date, slot) or updates its plan figures; returns its id.
std::int64_t RunUpsert(Db& db, const RunUpsertParams& p);
std::optional<Run> RunGet(Db& db, std::int64_t run_id);
/// A run's kind (sql/014): morning or urgent. Apart from RunGet, whose readers (sla-report)
/// may open a ledger not migrated this far.
std::string RunKindGet(Db& db, std::int64_t run_id);
/// Inserts a run of kind urgent (daybreak send-now) for `p.date` at `p.window.slot_at`; when a
/// run of that day already has that slot instant the slot moves 1 ms later until it is free
/// (p.window.slot_at is updated). Returns its id. Call inside a write transaction.
std::int64_t RunInsertUrgent(Db& db, RunUpsertParams& p);

/// What the morning runs that are sending at `now` still have to send on one channel: their rows
/// not final, the last planned time among them and the earliest deadline of those runs.
struct ChannelBacklog {
  std::string channel;
  std::int64_t remaining = 0;
  Millis last_planned_at = 0;
  Millis deadline_at = 0;
};
/// Per channel, the morning runs (kind morning, not closed or cancelled) whose window is open at
/// `now` (window_start <= now <= deadline + `drain_ms`). Empty when no morning run is sending.
std::vector<ChannelBacklog> RunMorningBacklog(Db& db, Millis now, Millis drain_ms);

/// Urgent runs (kind urgent, planned or running) whose window overlaps [from, to], not in
/// `known`, whose lease is free or expired at `now`: what a running dispatch adopts.
std::vector<std::int64_t> RunListAdoptableUrgent(Db& db, Millis from, Millis to, Millis now,
                                                 const std::vector<std::int64_t>& known);

/// The owner of a live lease (lease_until > now) on a run not closed or cancelled: a dispatch
/// is running. nullopt when none.
std::optional<std::string> RunLiveDispatchOwner(Db& db, Millis now);

/// Runs of one delivery day, by slot instant.
std::vector<Run> RunListForDate(Db& db, const std::string& date);
/// Runs not closed or cancelled whose window overlaps [from, to] (dispatch picks its work here).
std::vector<Run> RunListActive(Db& db, Millis from, Millis to);
/// Most recent runs first.
std::vector<Run> RunListRecent(Db& db, int limit);

/// Outcome of trying to take a run's lease.
struct LeaseResult {
  bool acquired = false;
  bool took_over = false;           ///< the previous owner's lease had expired
  std::optional<std::string> previous_owner;
  std::optional<Millis> previous_heartbeat;
};
/// Takes the lease when it is free, expired, or already ours. Call inside a write transaction.
LeaseResult RunAcquireLease(Db& db, std::int64_t run_id, const std::string& owner, Millis now, Millis lease_ms);
/// Renews the lease and writes the progress object; false when we no longer own it.
bool RunHeartbeat(Db& db, std::int64_t run_id, const std::string& owner, Millis now, Millis lease_ms,
                  const std::string& progress_json);
/// Gives the lease up (graceful exit), leaving the run resumable.
void RunReleaseLease(Db& db, std::int64_t run_id, const std::string& owner);
/// Marks a run closed and releases the lease, only when this owner holds it (or nobody does)
/// and every delivery of the run is final. False when it did not close: a row is still
/// planned, sending, uncertain or retry_wait (the run stays open for the next dispatch), or
/// another owner holds the run.
bool RunClose(Db& db, std::int64_t run_id, const std::string& owner, Millis now, const std::string& progress_json);
/// How many deliveries of a run are not final.
std::int64_t RunCountNonFinal(Db& db, std::int64_t run_id);

}  // namespace daybreak::store
