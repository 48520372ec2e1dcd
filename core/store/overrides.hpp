#pragma once
// The operator's changes to the ledger: the controls
// switches, cancel, resend, dead-letter replay and dismissal, one advisor's content change, a
// compliance replacement, advisor absences and per-channel opt-in. Each function changes rows
// only and notes every changed delivery in delivery_changes (store::DeliveryChangeNote), so a
// running dispatch reloads them; callers run it inside one Db::write_tx together with the audit
// row (store/audit.hpp), so a change and its record commit or roll back as one.
//
// Who wins against a running dispatch: DeliveryClaim only claims planned/retry_wait/uncertain rows
// and DeliveryUpdate only moves rows still `sending` under its owner, so a cancel committed before
// a claim always wins, and a cancel never overwrites a row whose request is at the provider
// (`sending` rows are refused here and reported instead).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"
#include "store/runs.hpp"

namespace daybreak::store {

// ---- controls ---------------------------------------------------------------------------

/// One operator switch: `pause` or `pause.<channel>`, "1" = on.
struct Control {
  std::string key;
  std::string value;
  Millis updated_at = 0;
  std::string updated_by;
};
/// The switch, or nullopt when it was never set.
std::optional<Control> ControlGet(Db& db, const std::string& key);
/// Every switch, by key.
std::vector<Control> ControlList(Db& db);
/// Sets a switch (insert or replace). Call inside Db::write_tx.
void ControlSet(Db& db, const std::string& key, const std::string& value, Millis now, const std::string& by);

// ---- one delivery, as the operator sees it -------------------------------------------------

/// A delivery row with the operator columns (no advisor join): what `show` prints and what the
/// audit log records as before/after.
struct DeliveryInfo {
  std::int64_t delivery_id = 0;
  std::int64_t run_id = 0;
  std::string advisor_id;
  std::string date;
  std::string content_id;
  std::string source;
  std::string tier;
  std::string state;
  std::string channel;
  std::string sender;
  Millis planned_at = 0;
  Millis deadline_at = 0;
  std::optional<Millis> next_attempt_at;
  int attempts = 0;
  std::optional<Millis> first_sent_at;
  std::optional<std::string> provider_message_id;
  std::optional<Millis> accepted_at;
  std::optional<std::string> last_error;
  bool possible_duplicate = false;
  std::optional<Millis> dismissed_at;
  std::optional<std::string> dismissed_by;
  std::optional<Millis> resent_at;
  Millis updated_at = 0;
};
/// The delivery, or nullopt when there is none.
std::optional<DeliveryInfo> DeliveryInfoGet(Db& db, std::int64_t delivery_id);
/// The delivery of `advisor_id` on `date` (the earliest slot when there are several), or nullopt.
std::optional<DeliveryInfo> DeliveryInfoForAdvisorDate(Db& db, const std::string& advisor_id, const std::string& date);
/// Every column list the functions below select, in DeliveryInfo order; reads one row of it.
DeliveryInfo DeliveryInfoRead(SQLite::Statement& q, int first_column = 0);
/// "d.delivery_id, d.run_id, …": the select list DeliveryInfoRead expects, for alias `d`.
const std::string& DeliveryInfoColumns();

// ---- cancel, resend, replay, dismiss ------------------------------------------------------

/// planned/retry_wait/uncertain → cancelled, noted "cancel". False when the row is in any other
/// state (final, or `sending`: the request may be at the provider). Call inside Db::write_tx.
bool DeliveryCancel(Db& db, std::int64_t delivery_id, Millis now);

/// What RunCancel did.
struct RunCancelResult {
  std::vector<std::int64_t> cancelled;  ///< delivery ids moved to cancelled
  std::int64_t in_flight = 0;           ///< rows left `sending` (their outcome is still recorded)
};
/// Marks the run cancelled (dispatch stops claiming for it) and cancels every delivery that has
/// not reached the provider, noting each. Call inside Db::write_tx.
RunCancelResult RunCancel(Db& db, std::int64_t run_id, Millis now);

/// Sends a delivery back to `planned`, due now: next_attempt_at = resent_at = now, the claim and
/// dismissal cleared. attempts, first_sent_at, last_error, possible_duplicate and the
/// delivery_attempts history are kept; so are deadline_at and an earlier accepted_at, so the
/// SLA neither forgets an on-time acceptance nor counts a late replay as on time (the new
/// send's provider_message_id replaces the old one). Only rows in one of `from_states` move.
/// Noted with `kind`. Call inside Db::write_tx.
bool DeliveryRequeue(Db& db, std::int64_t delivery_id, const std::vector<std::string>& from_states, const std::string& kind,
                     Millis now);

/// Reopens a closed run (state running, finished_at and lease cleared, reopened_at = now) so the
/// next dispatch takes it again; false when the run is not closed. Call inside Db::write_tx.
bool RunReopen(Db& db, std::int64_t run_id, Millis now);
/// Runs an operator reopened that still have work: state planned/running and reopened_at set.
/// dispatch adds these to the due runs it chooses.
std::vector<Run> RunListReopened(Db& db);

/// Marks a dead delivery dismissed (it stays dead). False when it is not dead or already
/// dismissed. Noted "dismiss". Call inside Db::write_tx.
bool DeadDismiss(Db& db, std::int64_t delivery_id, const std::string& by, Millis now);

/// Which dead letters a list or a bulk replay/dismiss means; empty fields do not filter.
struct DeadFilter {
  std::string date;        ///< delivery day
  std::optional<std::int64_t> run_id;
  std::string channel;     ///< the channel it died on
  std::string error_code;  ///< any attempt failed with this provider code (e.g. 131026); "held": last_error "held: …"
  std::optional<Millis> since;  ///< died (updated_at) at or after
  bool include_dismissed = false;
  std::int64_t limit = 0;  ///< <= 0: all
};
/// Calls `fn` for each matching dead delivery, oldest first, streaming.
void DeadList(Db& db, const DeadFilter& f, const std::function<void(const DeliveryInfo&)>& fn);
/// Number of dead deliveries not dismissed (status, metrics).
std::int64_t DeadCount(Db& db);

/// What DeliveryFollowAdvisorChannels did to an advisor's pending deliveries.
struct AdvisorFollowCounts {
  std::vector<std::int64_t> reloaded;   ///< their channel still reaches the advisor: noted, so a running dispatch takes new addresses
  std::vector<std::int64_t> moved;      ///< their channel no longer reaches the advisor: moved to the first one that does
  std::vector<std::int64_t> cancelled;  ///< no channel reaches the advisor any more: cancelled
};
/// Makes the advisor's pending deliveries (planned, retry_wait, uncertain; runs not closed) follow
/// its advisors and advisor_channels rows as they are now — after an opt-out, an unsubscribe or a
/// changed channel list: a delivery whose channel is still in the list and opted in (and the
/// advisor opted in) stays as it is; else it moves to the first channel of the list that is
/// (channel, channel_index, any sender of it), or is cancelled when none is left
/// (follow_channel_index). Each one is noted ("advisor", "cancel") for a running dispatch to
/// reload, so it is not sent on a channel the advisor left, and is sent to the new address. A delivery already
/// claimed (sending) or final is not touched. Call inside Db::write_tx.
AdvisorFollowCounts DeliveryFollowAdvisorChannels(Db& db, const std::string& advisor_id, Millis now);

// ---- content changes ---------------------------------------------------------------------

/// Points the pending (planned/retry_wait/uncertain) delivery of (advisor, date) at `content_id`
/// with source `override`, noted "content". Returns its id, or nullopt when no pending delivery
/// exists (none planned yet, or already sent). Call inside Db::write_tx.
std::optional<std::int64_t> DeliveryRepointAdvisor(Db& db, const std::string& advisor_id, const std::string& date,
                                                   const std::string& content_id, Millis now);

/// Re-points every assignment of `from_content` on days from `from_date` on at `to_content`
/// (source override, reason naming both). Returns how many changed. Call inside Db::write_tx.
std::int64_t AssignmentReplaceContent(Db& db, const std::string& from_content, const std::string& to_content,
                                      const std::string& from_date, Millis now);

// ---- advisors ----------------------------------------------------------------------------

/// Sets (or with both empty, clears) an advisor's absence. False when the advisor is unknown.
/// Call inside Db::write_tx.
bool AdvisorSetAbsence(Db& db, const std::string& advisor_id, const std::optional<std::string>& from,
                       const std::optional<std::string>& until, Millis now);
/// Cancels the advisor's pending deliveries on days in [from, until] (either bound open when
/// empty), noting each. Returns their ids. Call inside Db::write_tx.
std::vector<std::int64_t> DeliveryCancelForAdvisorDays(Db& db, const std::string& advisor_id, const std::string& from,
                                                       const std::string& until, Millis now);
/// Sets one channel row's opt-in; false when the advisor has no such channel row. A `sticky`
/// opt-out (an operator's `advisors opt-out`) marks unsubscribed_at like an unsubscribe, so an
/// import cannot opt the channel back in; opting in clears the mark.
bool AdvisorChannelSetOptIn(Db& db, const std::string& advisor_id, const std::string& channel, bool opted_in, Millis now,
                            bool sticky = true);
/// The advisor unsubscribed from `channel` (one-click List-Unsubscribe): opted out and marked
/// unsubscribed_at, so an import cannot opt it back in (sql/013). False when there is no such
/// row or it was already unsubscribed.
bool AdvisorChannelUnsubscribe(Db& db, const std::string& advisor_id, const std::string& channel, Millis now);

}  // namespace daybreak::store
