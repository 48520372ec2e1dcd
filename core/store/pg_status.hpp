#pragma once
// Status callbacks in the PostgreSQL ledger ([database] url; sql/postgresql/004): what
// store/status_events.hpp does on SQLite — keep each verified raw body once (status_events),
// its statuses once each (status_updates), the elements rejected one by one (status_rejects),
// and apply the statuses to the deliveries with the same rules (domain/status_event.hpp:
// idempotent, monotonic, `failed` recorded with a 131049's WhatsApp hold and, on an accepted
// WhatsApp row, a `status_failed` change note that a dispatch on PostgreSQL acts on with
// ledger_op::RerouteAfterFailed; a status whose delivery is unknown or still `sending` stays
// pending for apply_pending).
//
// Batched for the receiver's group commit: a batch of requests costs a few round trips, not one
// per statement (PgConn's pipeline; every status of the batch in one INSERT … unnest). Applying
// reads the statuses' deliveries once, locked FOR UPDATE in delivery_id order, folds the
// statuses over them in memory in the order SQLite applies them one by one, and writes each
// changed delivery once.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "domain/status_event.hpp"
#include "store/pg.hpp"
#include "store/reports.hpp"
#include "store/retention.hpp"
#include "store/status_events.hpp"
#include "store/withdrawal.hpp"

namespace daybreak::store {

/// One verified request to keep (the fields of StatusEventStoreParams that differ per request,
/// and what its body parsed to). The pointers must outlive the call.
struct PgStatusItem {
  std::string_view signature;
  std::string_view body;                           ///< raw, byte for byte (kept as bytea)
  const std::optional<std::string>* malformed_error = nullptr;  ///< set: stored, not applied
  const std::vector<StatusUpdate>* updates = nullptr;
  const std::vector<StatusReject>* rejects = nullptr;  ///< the first kRejectsPerBodyMax kept
  int rejected_total = 0;
};

/// What storing one request did.
struct PgStatusStored {
  std::int64_t event_id = 0;
  bool duplicate = false;  ///< the same bytes were stored before (or earlier in the batch)
  int new_updates = 0;
  StatusApplySummary applied;
  bool apply_failed = false;  ///< stored, applying failed: left pending for apply_pending
};

class PgStatusStore {
 public:
  /// Connects to `url`, applying the ledger's migrations first when `migrate`.
  explicit PgStatusStore(const std::string& url, bool migrate = true);
  ~PgStatusStore();
  PgStatusStore(const PgStatusStore&) = delete;
  PgStatusStore& operator=(const PgStatusStore&) = delete;

  /// Stores `items` (events, statuses, rejects) and applies their statuses, in ONE transaction
  /// committed when this returns; applying runs under a savepoint and, when it fails, is rolled
  /// back alone (`apply_error` says why; the statuses stay pending). Throws StoreError (transient
  /// for what PostgreSQL calls retryable) when nothing of the batch could be stored.
  std::vector<PgStatusStored> store(const std::vector<PgStatusItem>& items, const std::string& source,
                                    const std::string& source_ref, Millis now, std::string* apply_error = nullptr);

  /// StatusApplyPending on PostgreSQL: at most `limit` pending statuses (kStatusPendingAll: all)
  /// from the front of the queue, and events left `received`. With `expire_before`, pending
  /// statuses received before it are expired first (applied_at set, outcome 'expired'), at most
  /// `limit` per call: on PostgreSQL the receiver does what `daybreak retention` does on SQLite.
  /// One transaction. `expired` (optional) receives how many were expired.
  StatusApplySummary apply_pending(Millis now, std::int64_t limit = kStatusPendingBatch,
                                   std::optional<Millis> expire_before = std::nullopt, std::int64_t* expired = nullptr);

  /// StatusCountAll on PostgreSQL.
  StatusCounts counts();
  PgConn& conn() { return *c_; }

  struct Row;  ///< a stored status waiting to be applied (pg_status.cpp)

 private:
  /// A statement sent with the writes (marking events processed).
  struct Tail {
    const char* name;
    const std::string* sql;
    std::vector<PgParam> params;
  };
  /// Applies the statuses `where` selects (over status_updates, with `params`), in that order
  /// or, with `per_event`, event by event in `event_order`; `requeue` sends unmatched ones to
  /// the back of the queue. `tail` goes out with the writes.
  StatusApplySummary apply_rows(const std::string& name, const std::string& where, const std::vector<PgParam>& params,
                                const std::vector<std::int64_t>& event_order, Millis now, bool requeue,
                                std::vector<StatusApplySummary>* per_event, const Tail& tail);
  std::unique_ptr<PgConn> c_;
};

/// WhatsApp holds in the PostgreSQL ledger in force at `at` (until > at), set at or after
/// `set_since` when given: WhatsAppHoldsActive on PostgreSQL, for dispatch.
std::unordered_map<std::string, Millis> pg_whatsapp_holds_active(PgConn& c, Millis at,
                                                                 std::optional<Millis> set_since = std::nullopt);

/// DeliveryTruthForRun on PostgreSQL (the same aggregates, store::DeliveryTruthAggregatesSql):
/// the status figures dispatch's live_success_low judges with alerts.success_measure = "delivered".
DeliveryTruth pg_delivery_truth_for_run(PgConn& c, std::int64_t run_id, Millis now);

/// HeldDeliveryGroups on PostgreSQL (the same statement): the content_held rule of a dispatch
/// whose ledger is there.
std::vector<HeldGroup> pg_held_delivery_groups(PgConn& c, const std::string& from_date);

/// The content_held reader of a dispatch on PostgreSQL (engine::HostMonitoring::held_groups), on
/// a connection of its own (opened on first use, again after a failure). The held deliveries are
/// the whole ledger's, not a dispatch's own runs', so every dispatch host would raise the same
/// alert in its own file: the reader returns them only while its session holds content_held's
/// rule lock (pg_try_lock_rule, tried on each call until taken, then kept with the connection),
/// and nullopt on the other hosts, which then leave the rule alone. When the holding host dies
/// or its dispatch exits, its session ends and the next host's call takes the lock and raises.
/// Copies share the connection and the lock.
class PgContentHeldReader {
 public:
  explicit PgContentHeldReader(std::string url);
  std::optional<std::vector<HeldGroup>> operator()(const std::string& from_date);
  /// True while this reader's session holds the lock (as of its last call).
  [[nodiscard]] bool holds_lock() const;

 private:
  struct State {
    std::string url;
    std::unique_ptr<PgConn> c;
    bool holds = false;
  };
  std::shared_ptr<State> s_;
};

/// StatusRejectList and StatusRejectCountSince on PostgreSQL (`daybreak status rejected`).
std::vector<StatusRejectRow> pg_status_reject_list(PgConn& c, Millis since, std::int64_t limit);
std::int64_t pg_status_reject_count_since(PgConn& c, Millis since);

// ---- retention (`daybreak retention` with [database] url; store/retention.hpp on SQLite) ----
// Each runs in its own short transaction (one batch), so the receiver's writes wait at most one.

/// StatusExpirePendingBatch on PostgreSQL: up to `batch` pending statuses received before
/// `cutoff` expired (applied_at = now, outcome 'expired'). Returns how many. apply_pending runs
/// the same statement.
std::int64_t pg_status_expire_pending_batch(PgConn& c, Millis cutoff, Millis now, std::int64_t batch);
/// StatusCountPendingOlderThan on PostgreSQL.
std::int64_t pg_status_count_pending_older_than(PgConn& c, Millis cutoff);
/// StatusPurgeBatch on PostgreSQL: up to `batch` status events received before `cutoff`, oldest
/// first, deleted with their statuses and rejected elements (children first), in one transaction.
StatusPurgeCounts pg_status_purge_batch(PgConn& c, Millis cutoff, std::int64_t batch);
/// StatusCountOlderThan on PostgreSQL.
StatusPurgeCounts pg_status_count_older_than(PgConn& c, Millis cutoff);
/// WhatsappHoldPurgeEndedBatch / WhatsappHoldCountEnded on PostgreSQL.
std::int64_t pg_whatsapp_hold_purge_ended_batch(PgConn& c, Millis now, std::int64_t batch);
std::int64_t pg_whatsapp_hold_count_ended(PgConn& c, Millis now);

/// `text` as PostgreSQL accepts it in a TEXT column: valid UTF-8 without NUL (an invalid byte
/// or NUL becomes '?'; a sequence cut at the end is dropped). Unchanged for what Meta sends.
std::string pg_text(std::string_view text);

}  // namespace daybreak::store
