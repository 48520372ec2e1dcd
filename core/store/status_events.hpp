#pragma once
// Query module for `status_events` (verified raw webhook bodies) and `status_updates` (one row per
// status inside them), sql/003, and the one path that applies statuses to the ledger:
// idempotent (a status seen twice changes nothing the second time) and
// monotonic (accepted → delivered → read; a late lower status never downgrades; `failed`
// records the error, a 131049's WhatsApp hold (store/whatsapp_holds.hpp) and, on an accepted
// WhatsApp row, a change note a running dispatch acts on). docs/state_machine.md has the transitions.
//
// Call order, as core/app/callbacks.cpp (store_callbacks) does it, for a batch of requests:
//   1. write_tx { SAVEPOINT { StatusEventStore (processed); StatusUpdatesInsertApplied — each new
//                             event of the batch (a duplicate: StatusApplyEvents of its event) }
//                 and only if that failed (rolled back to the savepoint), the two-step form:
//                 StatusEventStore; StatusUpdatesInsert   — each request of the batch
//                 SAVEPOINT { StatusApplyEvents }         — all of them; rolled back alone if it fails
//               }                                         — committed before any of their 200s
//   3. write_tx { StatusApplyPending } now and then          — statuses that named no known delivery,
//                                                             one bounded batch per call
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/status_event.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// A verified raw request to keep.
struct StatusEventStoreParams {
  std::string source = "receiver";  ///< 'receiver' or 'spool'
  std::string source_ref;           ///< spool file name
  std::string signature;            ///< X-Hub-Signature-256 as received
  std::string body;                 ///< raw body, byte for byte
  std::optional<std::string> malformed_error;  ///< set when the body did not parse (kept for forensics)
  Millis now = 0;
  /// Store a new event already `processed` (processed_at = now): its statuses are applied in
  /// the same transaction (StatusUpdatesInsertApplied). Ignored for a malformed body.
  bool processed = false;
};
struct StatusEventStored {
  std::int64_t event_id = 0;
  bool duplicate = false;  ///< the same bytes were stored before (a retried or duplicated request)
};
/// Stores a verified body unless the same bytes are already stored. Call inside Db::write_tx.
StatusEventStored StatusEventStore(Db& db, const StatusEventStoreParams& p);

/// Inserts the statuses of an event as pending rows; a (provider_message_id, status) already
/// present is skipped. Returns how many were new. Call inside the same write_tx as the store.
int StatusUpdatesInsert(Db& db, std::int64_t event_id, const std::vector<StatusUpdate>& updates, Millis now);

/// Keeps the elements of an event's body that were rejected one by one (at most
/// kRejectsPerBodyMax rows; `total` counts them all and goes to status_events.rejected).
/// Call inside the same write_tx as the store, for an event that is not a duplicate.
void StatusRejectsInsert(Db& db, std::int64_t event_id, const std::vector<StatusReject>& rejects, int total, Millis now);

/// A status_rejects row.
struct StatusRejectRow {
  std::int64_t reject_id = 0;
  std::int64_t event_id = 0;
  Millis received_at = 0;
  StatusReject reject;
};
/// Rejected elements received at or after `since`, newest first, at most `limit`.
std::vector<StatusRejectRow> StatusRejectList(Db& db, Millis since, std::int64_t limit);
/// How many elements were rejected since `since` (all of them, from status_events.rejected).
std::int64_t StatusRejectCountSince(Db& db, Millis since);

/// What applying did, summed.
struct StatusApplySummary {
  int applied = 0;         ///< matched to a delivery (any outcome below)
  int reconciled = 0;      ///< uncertain/retry_wait → accepted or later: settled without a resend
  int moved = 0;           ///< accepted → delivered → read
  int unchanged = 0;       ///< matched, but lower than or equal to what the row already says
  int errors_recorded = 0; ///< `failed` recorded in last_error (no state change)
  int ignored = 0;         ///< the row is planned, dead or cancelled
  int pending = 0;         ///< no delivery matches yet, or it is still `sending` under a dispatch
  StatusApplySummary& operator+=(const StatusApplySummary& o);
};
/// Applies the pending statuses of one event, then marks the event processed. Call inside write_tx.
StatusApplySummary StatusApplyEvent(Db& db, std::int64_t event_id, Millis now);
/// StatusApplyEvent for several events (an id may repeat: a duplicate names its first event),
/// in order, marking them processed with one statement. Summaries in the order of `event_ids`.
/// Call inside write_tx.
std::vector<StatusApplySummary> StatusApplyEvents(Db& db, const std::vector<std::int64_t>& event_ids, Millis now);
/// StatusUpdatesInsert then StatusApplyEvent for a NEW event (StatusEventStore said not a
/// duplicate), in one pass: each status whose (provider_message_id, status) is not present yet
/// is applied to its delivery first and then inserted with its outcome (applied_at,
/// matched_delivery_id, outcome) already set, or inserted pending when no delivery can take it
/// yet; one already present is skipped. The rows, outcomes and delivery changes are those of the
/// two calls (the statuses are applied in the same order; what applying reads of status_updates,
/// reconciled and rerouted outcomes, never includes a row still pending), but each row is
/// written once instead of inserted pending and rewritten, which spares its partial indexes of
/// pending rows an insert and a delete. `inserted` is StatusUpdatesInsert's count. Call inside
/// write_tx; a throw leaves the transaction to be rolled back (to a savepoint) by the caller.
struct StatusInsertedApplied {
  int inserted = 0;
  StatusApplySummary applied;
};
StatusInsertedApplied StatusUpdatesInsertApplied(Db& db, std::int64_t event_id, const std::vector<StatusUpdate>& updates,
                                                 Millis now);
/// Rows one StatusApplyPending call reads at most, by default.
inline constexpr std::int64_t kStatusPendingBatch = 1000;
/// `limit` for StatusApplyPending to read every pending row (restore's carry-over).
inline constexpr std::int64_t kStatusPendingAll = -1;
/// Applies the pending statuses whose delivery can now be matched (its provider_message_id was
/// recorded after the status arrived), and marks events left `received` by a crash processed.
/// Reads at most `limit` pending rows, from the front of a queue (sql/010): rows never tried
/// come first, and a row tried that matched no delivery goes to the back (one waiting on a
/// `sending` row stays in front: dispatch's own write is a moment away), so repeated calls reach
/// every row of any backlog while each costs one bounded batch. applied + pending in the
/// summary is the number of rows read. Statuses that carry our delivery id
/// (biz_opaque_callback_data) are also found by StatusFindForDelivery whether applied or not.
/// Call inside write_tx; dispatch may call it after recording acceptances.
StatusApplySummary StatusApplyPending(Db& db, Millis now, std::int64_t limit = kStatusPendingBatch);

/// What the provider told us about one delivery: for dispatch, to settle an uncertain send
/// without resending it.
struct StatusMatch {
  std::string provider_message_id;  ///< of the best status (a resent delivery may have two)
  MessageStatus status = MessageStatus::sent;  ///< StatusFold::outcome over every status for it
  Millis provider_at = 0;           ///< earliest provider time of a progress status (sent/delivered/read), else of the failure
  std::optional<long> error_code;   ///< of a `failed` status, when that is the outcome
};
/// Every status that names `delivery_id` (by biz_opaque_callback_data or by a matched message
/// id), folded; nullopt when none arrived. A `failed` outcome means the provider took the
/// request but could not deliver it: not a reason to wait any longer, a reason to classify.
std::optional<StatusMatch> StatusFindForDelivery(Db& db, std::int64_t delivery_id);

/// Counts for `daybreak ingest --json` and tests.
struct StatusCounts {
  std::int64_t events = 0;
  std::int64_t malformed_events = 0;
  std::int64_t updates = 0;
  std::int64_t pending = 0;
};
StatusCounts StatusCountAll(Db& db);

}  // namespace daybreak::store
