#pragma once
// The operator's changes on the PostgreSQL ledger ([database] url): the pause switches, cancel
// (a run or one delivery), the rows of a compliance pull, and the audit log (sql/postgresql/
// 003_audit_log.sql). Each function is the PostgreSQL twin of the SQLite one named beside it
// (store/overrides.hpp, store/withdrawal.hpp, store/audit.hpp): the same rows change to the same
// states, and every changed delivery is noted in delivery_changes, which a running dispatch on
// PostgreSQL polls (PgDispatchLedger, PollChanges) exactly as it does on SQLite. The callers
// (cli/op_actions.cpp) run a change and its audit row in one PgOperator::tx.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/advisors.hpp"
#include "store/audit.hpp"
#include "store/catalog.hpp"
#include "store/deliveries.hpp"
#include "store/overrides.hpp"
#include "store/pg.hpp"
#include "store/withdrawal.hpp"

namespace daybreak::store {

class PgOperator {
 public:
  /// Connects to `url` and applies the schema's pending migrations (pg_migrate: the audit log is
  /// migration 3), as dispatch does when it connects.
  explicit PgOperator(const std::string& url);
  ~PgOperator();
  PgOperator(const PgOperator&) = delete;
  PgOperator& operator=(const PgOperator&) = delete;

  /// Runs `fn` in one transaction: committed, or rolled back when `fn` throws or `dry_run`. A
  /// transient failure (a deadlock with a dispatch's batch, a lost connection) runs it again, up
  /// to five times in all, so `fn` must set its results afresh each time.
  void tx(bool dry_run, const std::function<void()>& fn);

  // ---- controls (ControlGet / ControlSet) ----
  std::optional<Control> control_get(const std::string& key);
  void control_set(const std::string& key, const std::string& value, Millis now, const std::string& by);

  // ---- audit (AuditAppend / AuditList) ----
  void audit_append(const AuditEntry& e);
  void audit_list(const AuditListParams& p, const std::function<void(const AuditRow&)>& fn);

  // ---- runs and deliveries ----
  /// The run's date and state, or nullopt when there is no such run.
  std::optional<Run> run_get(std::int64_t run_id);
  std::optional<DeliveryInfo> delivery_info_get(std::int64_t delivery_id);
  /// DeliveryCancel: planned/retry_wait/uncertain → cancelled, noted "cancel".
  bool delivery_cancel(std::int64_t delivery_id, Millis now);
  /// RunCancel: the run cancelled, every delivery not at the provider cancelled and noted.
  RunCancelResult run_cancel(std::int64_t run_id, Millis now);

  // ---- a compliance pull (store/withdrawal.hpp) ----
  ContentWithdrawResult content_withdraw(const std::string& content_id, const std::string& actor, Millis now);
  std::vector<std::int64_t> delivery_repoint_pending(const std::string& content_id, const std::string& from_date, Millis now);
  PulledResolution delivery_resolve_pulled(const std::string& content_id, const std::string& from_date,
                                           const std::string& emergency_language, Millis now);
  std::int64_t delivery_count_in_flight(const std::string& content_id, const std::string& from_date);

  // ---- a replacement (`daybreak content replace`: ContentInfoGet, AssignmentDatesForContent,
  // AssignmentReplaceContent) ----
  std::optional<ContentInfo> content_info_get(const std::string& content_id);
  std::vector<std::string> assignment_dates_for_content(const std::string& content_id, const std::string& from_date);
  std::int64_t assignment_replace_content(const std::string& from_content, const std::string& to_content,
                                          const std::string& from_date, Millis now);

  // ---- advisors (`daybreak advisors add|update|pause|resume|opt-in|opt-out` with url: the
  // SQLite file changes through AdvisorUpsert, AdvisorSetAbsence, AdvisorChannelSetOptIn and
  // DeliveryCancelForAdvisorDays, and PostgreSQL follows with these) ----
  /// The advisor exactly as `row` (read back from the SQLite file after its change) has it: the
  /// advisors row inserted or every column set (absence and updated_at included), its channel
  /// rows replaced by row.channels.
  void advisor_put(const AdvisorRow& row);
  /// DeliveryCancelForAdvisorDays: the advisor's pending deliveries on days in [from, until]
  /// (either bound open when empty) cancelled and noted "cancel". Their ids, ascending.
  std::vector<std::int64_t> delivery_cancel_for_advisor_days(const std::string& advisor_id, const std::string& from,
                                                             const std::string& until, Millis now);
  /// What advisor_follow did to the advisor's pending deliveries.
  struct AdvisorFollow {
    std::vector<std::int64_t> reloaded;   ///< their channel still reaches the advisor: noted "advisor"
    std::vector<std::int64_t> moved;      ///< their channel does not: moved to the first one that does, noted "advisor"
    std::vector<std::int64_t> cancelled;  ///< no channel reaches the advisor any more: cancelled, noted "cancel"
  };
  /// The advisor's pending deliveries (planned, retry_wait, uncertain; every open run) made to
  /// follow its advisors and advisor_channels rows as they are now in PostgreSQL: a delivery
  /// whose channel is still in the advisor's list and opted in (and the advisor opted in) stays
  /// on it; else it moves to the first channel of the list that is (channel, channel_index, any
  /// sender of it), or is cancelled when there is none. Every one is noted in delivery_changes,
  /// so a running dispatch reloads it with the addresses and opt-ins as they are now.
  AdvisorFollow advisor_follow(const std::string& advisor_id, Millis now);

  // ---- `daybreak assign` with url (the SQLite file changes through AssignmentUpsert and
  // DeliveryRepointAdvisor, PostgreSQL follows with these) ----
  /// The advisor's delivery of `date` (DeliveryInfoForAdvisorDate), or nullopt.
  std::optional<DeliveryInfo> delivery_info_for_advisor_date(const std::string& advisor_id, const std::string& date);
  /// True when the advisor has a row in PostgreSQL.
  bool advisor_exists(const std::string& advisor_id);
  /// Adds the item (as the SQLite file has it) when PostgreSQL has no row of it; a row there is
  /// left as it is. True when it added one.
  bool content_add_missing(const ContentInfo& item);
  /// AssignmentUpsert of an operator's override (source override, score 0).
  void assignment_override(const Assignment& a, Millis created_at);
  /// DeliveryRepointAdvisor: the pending delivery of (advisor, date) pointed at `content_id`
  /// (source override), noted "content". Its id, or nullopt when none is pending.
  std::optional<std::int64_t> delivery_repoint_advisor(const std::string& advisor_id, const std::string& date,
                                                       const std::string& content_id, Millis now);

  /// The heartbeat instants of the runs whose lease is live at `now` (run id → heartbeat_at):
  /// each heartbeat of a dispatch on PostgreSQL is followed by its PollChanges, so three new
  /// values of a run's heartbeat after a change committed mean its dispatch has read the change.
  std::vector<std::pair<std::int64_t, std::int64_t>> live_heartbeats(Millis now);

  // ---- dead letters (DeadList, AttemptListForDelivery, DeliveryRequeue, RunReopen, DeadDismiss) ----
  void dead_list(const DeadFilter& f, const std::function<void(const DeliveryInfo&)>& fn);
  std::vector<AttemptInsertParams> attempts_for(std::int64_t delivery_id);
  /// DeliveryRequeue for a row now in `from_state`: back to planned, due now, noted `kind`.
  bool delivery_requeue(std::int64_t delivery_id, const std::string& from_state, const std::string& kind, Millis now);
  bool run_reopen(std::int64_t run_id, Millis now);
  bool dead_dismiss(std::int64_t delivery_id, const std::string& by, Millis now);

  PgConn& conn() { return *c_; }

 private:
  /// DeliveryChangeNote: a row in delivery_changes for a running dispatch to reload.
  void change_note(std::int64_t delivery_id, const std::string& kind, Millis now);
  std::unique_ptr<PgConn> c_;
};

}  // namespace daybreak::store
