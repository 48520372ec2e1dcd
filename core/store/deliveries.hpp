#pragma once
// Query module for `deliveries` (one row per advisor, day and slot; the unique key makes a
// double plan impossible) and `delivery_attempts` (append-only history of every request).
#include <map>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

struct DeliveryInsertParams {
  std::int64_t run_id = 0;
  std::string advisor_id;
  std::string date;
  Millis slot_at = 0;
  std::string content_id;
  std::string source;
  std::string tier;
  int tier_rank = 0;
  std::string channel;
  int channel_index = 0;
  std::string sender;
  Millis planned_at = 0;
  Millis deadline_at = 0;
  Millis now = 0;
};
/// DeliveryInsertParams with its strings by reference (DeliveryInserter::add_ref): nothing is
/// copied, so each string pointed at must stay alive and unchanged until its row is written.
struct DeliveryInsertRef {
  std::int64_t run_id = 0;
  const std::string* advisor_id = nullptr;
  const std::string* date = nullptr;
  const std::string* content_id = nullptr;
  const std::string* source = nullptr;
  const std::string* tier = nullptr;
  const std::string* channel = nullptr;
  const std::string* sender = nullptr;
  Millis slot_at = 0;
  int tier_rank = 0;
  int channel_index = 0;
  Millis planned_at = 0;
  Millis deadline_at = 0;
  Millis now = 0;
};
/// Inserts a planned delivery unless (advisor, date, slot) already has one; true when inserted.
bool DeliveryInsert(Db& db, const DeliveryInsertParams& p);
/// DeliveryInsert for many rows in a row (plan-deliveries): rows are queued and written
/// kBatch at a time through one held multi-row INSERT, so SQLite's per-statement work (cursor
/// open and close, halt, reset) is paid once per batch instead of once per row. Do not use `db`
/// for other statements while inserting.
class DeliveryInserter {
 public:
  static constexpr std::size_t kBatch = 64;
  explicit DeliveryInserter(Db& db);
  /// Queues a row (copied); writes a batch when kBatch are queued.
  void add(const DeliveryInsertParams& p);
  /// add() without copying: the row's strings are bound where they are, so each must outlive
  /// the batch the row falls in (the kBatch-th add from the last write, or finish()). For a
  /// million rows whose strings already live elsewhere (plan-deliveries).
  void add_ref(const DeliveryInsertRef& r);
  /// Writes what is still queued; returns how many rows were inserted in all (rows whose
  /// advisor, date and slot already had a delivery are skipped, not counted).
  std::size_t finish();

 private:
  void write_batch();
  Db& db_;
  SQLite::Statement& batch_;
  std::vector<DeliveryInsertParams> queued_;  ///< add()'s copies, by position in the batch
  std::vector<DeliveryInsertRef> refs_;       ///< the batch's rows, written from here
  std::size_t n_ = 0;
  std::size_t inserted_ = 0;
};

/// A delivery as dispatch loads it: the row plus what it needs to build the message.
/// The SELECT … FROM deliveries JOIN advisors that reads a DeliveryRow (columns in read order),
/// without its WHERE: plain SQL both ledgers run (store/deliveries.cpp, store/pg_ledger.cpp).
extern const char* const kDeliverySelectSql;

struct DeliveryRow {
  std::int64_t delivery_id = 0;
  std::int64_t run_id = 0;
  std::string advisor_id;
  std::string content_id;
  std::string source;
  std::string tier;
  int tier_rank = 0;
  DeliveryState state = DeliveryState::planned;
  std::string channel;
  int channel_index = 0;
  std::string sender;
  Millis planned_at = 0;
  Millis deadline_at = 0;
  std::optional<Millis> next_attempt_at;
  std::optional<std::string> claim_owner;
  std::optional<Millis> claim_until;
  int attempts = 0;
  std::optional<Millis> first_sent_at;
  std::optional<std::string> provider_message_id;
  std::optional<Millis> accepted_at;
  std::optional<std::string> last_error;
  bool possible_duplicate = false;
  // from advisors / advisor_channels
  std::string advisor_name;
  std::string language;
  std::string channels;  ///< preference list, 'whatsapp|email'
  std::string phone;     ///< whatsapp address when opted in, else empty
  std::string email;     ///< email address when opted in, else empty
  std::optional<Millis> resent_at;  ///< an operator's resend or replay (sql/005)
};
/// Every delivery of a run, in planned order.
std::vector<DeliveryRow> DeliveryListForRun(Db& db, std::int64_t run_id);
/// The same rows one at a time in no particular order, without holding them all (a 1M run's
/// rows would take ~1 GB).
void DeliveryForEachInRun(Db& db, std::int64_t run_id, const std::function<void(DeliveryRow&&)>& fn);
std::optional<DeliveryRow> DeliveryGet(Db& db, std::int64_t delivery_id);

/// Claims a delivery for sending: planned/retry_wait/uncertain → sending, committed before the
/// request goes out, and only while `owner` still owns the delivery's run. False when the row
/// moved meanwhile (an operator cancelled it) or the run has another owner (this process lost
/// its lease).
bool DeliveryClaim(Db& db, std::int64_t delivery_id, const std::string& owner, Millis claim_until, Millis now);
/// DeliveryClaim for many rows at once, by the same rule: one flag per entry of `ids`, in order,
/// true where that row was claimed. Up to 64 rows per statement (the run's owner read once per
/// statement, not per row): a claim costs one B-tree walk, not a statement of its own. An id
/// listed twice is claimed by its first entry only, as two DeliveryClaim calls would.
std::vector<char> DeliveryClaimMany(Db& db, const std::vector<std::int64_t>& ids, const std::string& owner,
                                    Millis claim_until, Millis now);

/// A row's state and acceptance time, for a dispatch whose claim failed: it learns whether an
/// operator cancelled the row or a status callback settled it (reconciliation).
struct DeliveryStateRow {
  DeliveryState state = DeliveryState::planned;
  std::optional<Millis> accepted_at;
  std::optional<std::string> provider_message_id;
  std::optional<std::string> claim_owner;  ///< who holds it `sending`
};
std::optional<DeliveryStateRow> DeliveryGetState(Db& db, std::int64_t delivery_id);

/// Settles an `uncertain` row from the provider's word (a status callback named it): it becomes
/// `state` (accepted, delivered or read) with the provider's message id and time. False when the
/// row is no longer uncertain. Call inside Db::write_tx.
bool DeliverySettleUncertain(Db& db, std::int64_t delivery_id, DeliveryState state, const std::string& provider_message_id,
                             Millis accepted_at, Millis now);
/// Ids of a run's `uncertain` rows.
std::vector<std::int64_t> DeliveryListUncertain(Db& db, std::int64_t run_id);

/// Points a delivery and its advisor's assignment for the day at substitute content (emergency
/// substitution at send time: no advisor is skipped because their content failed). Call inside
/// Db::write_tx.
void DeliverySubstituteContent(Db& db, std::int64_t delivery_id, const std::string& content_id, const std::string& source,
                               const std::string& reason, Millis now);

/// The result of one attempt, applied to the row.
struct DeliveryUpdateParams {
  std::int64_t delivery_id = 0;
  DeliveryState state = DeliveryState::planned;
  std::string channel;
  int channel_index = 0;
  std::string sender;
  int attempts = 0;
  std::optional<Millis> next_attempt_at;
  std::optional<Millis> sent_at;  ///< when this attempt's request left (first_sent_at keeps the first)
  std::optional<std::string> provider_message_id;
  std::optional<Millis> accepted_at;
  std::optional<std::string> last_error;
  bool possible_duplicate = false;
  Millis now = 0;
};
/// Writes an outcome; only moves rows still `sending` under `owner` (an operator's cancel wins).
bool DeliveryUpdate(Db& db, const DeliveryUpdateParams& p, const std::string& owner);

/// Hands a row this owner claimed but did not send back (a graceful stop): `planned` again,
/// or `retry_wait` after an earlier attempt, due `now`; not uncertain. False when the row is not
/// `sending` under `owner`.
bool DeliveryRelease(Db& db, std::int64_t delivery_id, const std::string& owner, Millis now);

/// Rows still `sending` under another (dead) owner become `uncertain`; returns how many.
std::int64_t DeliveryMarkUncertain(Db& db, std::int64_t run_id, const std::string& live_owner, Millis now);

/// Counts per state for a run.
std::map<std::string, std::int64_t> DeliveryCountByState(Db& db, std::int64_t run_id);

/// One row of delivery_attempts.
struct AttemptInsertParams {
  std::int64_t delivery_id = 0;
  int attempt_no = 0;
  std::string channel;
  std::string sender;
  Millis started_at = 0;
  Millis finished_at = 0;
  std::string outcome;
  std::string error_code;
  std::string error_detail;
  std::string provider_message_id;
  Millis latency_ms = 0;
  std::string fbtrace_id;        ///< the provider's trace id of an error answer (WhatsApp `fbtrace_id`)
  bool held_for_quality = false; ///< accepted with message_status held_for_quality_assessment (WhatsApp)
  std::string error_scope;       ///< what the error is about (message, advisor, template, phone_number, account, unknown)
};
void AttemptInsert(Db& db, const AttemptInsertParams& p);

/// A delivery's attempt history, oldest first.
std::vector<AttemptInsertParams> AttemptListForDelivery(Db& db, std::int64_t delivery_id);

}  // namespace daybreak::store

namespace daybreak::store {

/// Tells a running dispatch that an operator changed a delivery (sql/006). Call inside the
/// same Db::write_tx as the change itself. `kind` names it: cancel, resend, content, withdraw, replay.
void DeliveryChangeNote(Db& db, std::int64_t delivery_id, const std::string& kind, Millis now);

struct DeliveryChange {
  std::int64_t seq = 0;
  std::int64_t delivery_id = 0;
  std::string kind;
};
/// Changes to deliveries of `run_id` after `after_seq`, oldest first.
std::vector<DeliveryChange> DeliveryChangesSince(Db& db, std::int64_t run_id, std::int64_t after_seq);
/// The highest change seq so far (0 when none): where a dispatch starts polling.
std::int64_t DeliveryChangeLastSeq(Db& db);

}  // namespace daybreak::store
