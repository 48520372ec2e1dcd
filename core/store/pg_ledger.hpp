#pragma once
// The dispatch ledger on PostgreSQL ([database] url): PgDispatchLedger implements the port of
// store/dispatch_ledger.hpp with libpq, and the few reads and the lease take-over `dispatch`
// needs before its dispatcher starts. docs/architecture.md "The PostgreSQL ledger".
//
// The lease unit is the run, as on SQLite: runs.owner / lease_until / heartbeat_at. Taking a
// lease locks the run's row with SELECT … FOR UPDATE SKIP LOCKED (another host taking the same
// row at that moment is skipped, not waited for) and succeeds when the lease is free, expired or
// already ours. Every claim locks the claiming owner's run rows FOR SHARE in the claim's own
// statement, so a take-over waits for (or is skipped by) an open claim and a claim that commits
// always commits under a lease its owner held at that moment.
#include <memory>
#include <optional>
#include <string>

#include "store/dispatch_ledger.hpp"
#include "store/overrides.hpp"
#include "store/pg.hpp"

namespace daybreak::store {

struct PgOpPlan;

class PgDispatchLedger final : public DispatchLedger {
 public:
  /// Connects to `url` (applying the schema's migrations first when `migrate`).
  PgDispatchLedger(const std::string& url, std::string owner, bool migrate = false);
  ~PgDispatchLedger() override;
  [[nodiscard]] const std::string& owner() const override { return owner_; }

  std::optional<Run> load_run(std::int64_t run_id) override;
  CrashReconcile reconcile_crashed(std::int64_t run_id, Millis now) override;
  std::vector<ContentRow> load_emergency_content() override;
  std::vector<ContentRow> load_run_content(std::int64_t run_id) override;
  void for_each_delivery(std::int64_t run_id, const std::function<void(DeliveryRow&&)>& fn) override;
  std::int64_t change_mark() override;
  /// WhatsApp holds set by 131049 statuses (sql/postgresql/004; defined in pg_status.cpp).
  std::unordered_map<std::string, Millis> load_whatsapp_holds(Millis now) override;

  void begin() override;
  void commit() override;
  void rollback() noexcept override;
  bool in_transaction() override;
  void savepoint() override;
  void release_savepoint() override;
  void rollback_to_savepoint() override;
  /// ledger_op::Local is not run here: a dispatch on PostgreSQL runs its monitoring against this
  /// host's SQLite file on a thread of its own (engine::HostMonitoring), never in this ledger's
  /// transaction, so none reaches it; one that did would be skipped (it never fails a batch).
  LedgerResult apply(const LedgerOp& op) override;
  /// A batch's statements go out in one pipeline (libpq pipeline mode) and their answers come
  /// back together: one round trip for the batch instead of one per statement. An operation
  /// whose statements read before they write (PollChanges, StoreRunReport) runs on its own
  /// between pipelines.
  std::optional<BatchFailure> apply_batch(const std::vector<const LedgerOp*>& ops, std::vector<LedgerResult>& results) override;

  // ---- what dispatch reads and takes before its dispatcher starts ----
  /// Runs not closed or cancelled whose window overlaps [from, to], and reopened runs with rows
  /// not final (RunListActive + RunListReopened on SQLite).
  std::vector<Run> list_dispatchable(Millis from, Millis to);
  /// Takes a run's lease when free, expired or ours (one transaction; FOR UPDATE SKIP LOCKED).
  LeaseResult acquire_lease(std::int64_t run_id, Millis now, Millis lease_ms);
  /// Deliveries of a run per state (tests and the e2e's checks use psql instead).
  std::int64_t count_non_final(std::int64_t run_id);
  PgConn& conn() { return *c_; }

 private:
  /// The statements of a write operation and how their answers make its result; false for one
  /// that must read before it writes (PollChanges), which apply() runs on its own.
  bool plan(const LedgerOp& op, PgOpPlan& out);
  static std::vector<ClaimResult> claim_results(const std::vector<std::int64_t>& ids, const PgResult& claimed,
                                                const PgResult& state);
  static HeartbeatResult heartbeat_result(std::vector<PgResult>& r);
  OperatorChanges poll_changes(const ledger_op::PollChanges& op);
  /// ledger_op::StoreRunReport: built on this connection (PgReportLedger) in the writer's
  /// transaction and stored in run_reports (sql/postgresql/005).
  void store_run_report(const ledger_op::StoreRunReport& op);
  std::vector<ContentRow> content_query(const char* name, const std::string& where, const std::vector<PgParam>& params);
  std::string owner_;
  std::unique_ptr<PgConn> c_;
};

/// The `runs` columns a Run is read from, and row `i` of a result selecting them as a Run (for
/// the ledger's other readers: status, sla-report).
extern const char* const kPgRunColumns;
Run pg_read_run(const PgResult& r, int i);

/// A factory of PgDispatchLedger connections to `url` for `owner`.
LedgerFactory pg_ledger_factory(std::string url, std::string owner);

/// What part of the SQLite ledger a copy takes.
struct LedgerCopyScope {
  std::string date;                    ///< the delivery day ("" = every day)
  std::optional<std::int64_t> run_id;  ///< only this run (its SQLite id) of `date`; nullopt = every run of it
  bool controls = true;                ///< copy the pause switches (migrate-ledger; a publish leaves PostgreSQL's alone)
};
/// What a copy did, per table.
struct LedgerCopyCounts {
  std::vector<std::pair<std::string, std::int64_t>> tables;  ///< (table, rows inserted)
  /// (table, rows changed) of the planning tables a copy keeps current: advisors and content
  /// updated, advisor_channels updated or deleted.
  std::vector<std::pair<std::string, std::int64_t>> updated;
  /// (SQLite run id, PostgreSQL run id) of every run in scope, inserted or already there.
  std::vector<std::pair<std::int64_t, std::int64_t>> runs;
  std::int64_t renumbered = 0;  ///< rows inserted under a new id: theirs was another row's in PostgreSQL
};
/// Copies the rows of `scope` from the SQLite ledger at `sqlite_path` into the PostgreSQL ledger
/// on `dst` (already migrated), in one transaction on `dst` and one read transaction on SQLite:
/// advisors, their channels, content (and controls when scope.controls) whole; assignments, runs,
/// deliveries, attempts and operator changes of the day, and the stored reports of the closed
/// runs it inserts (sla_reports → run_reports, "run_reports" in `tables`). The planning data is brought up to date:
/// an advisor or content row already in PostgreSQL takes the copy's values when they differ and
/// the copy's updated_at is not older (the newest change wins; a withdrawal there is kept: a
/// publish never undoes one), and such an advisor's channel rows become the copy's (one it no
/// longer has is deleted). Every other row already in PostgreSQL is
/// left as it is: the same key for the id-less tables, the same natural key for the others (a run's
/// date and slot, a delivery's day, order key, advisor and slot, an attempt's delivery and
/// number) whatever the id it has there, and the children follow that id. Ids are kept, except
/// one already taken in PostgreSQL by another row (a second host's planning file counts from its
/// own ids), which gets a new one. So a copy run twice copies nothing twice, and copies of the
/// same day from two planning files never make a second run of a slot or a second delivery of an
/// advisor's slot.
LedgerCopyCounts copy_ledger_to_pg(PgConn& dst, const std::string& sqlite_path, const LedgerCopyScope& scope);
/// `daybreak migrate-ledger`: connects to `url`, migrates it, and copies `date` (every day when
/// empty) with controls (copy_ledger_to_pg).
LedgerCopyCounts migrate_ledger_to_pg(const std::string& sqlite_path, const std::string& url, const std::string& date);

/// The day lock: a session-level advisory lock on `c` keyed on the delivery day, held by whoever
/// publishes or plans that day into PostgreSQL (plan-deliveries, send-now, the dead-man's switch
/// of a dispatch on PostgreSQL), so two hosts never do it at once. Waits up to `wait_ms`; false
/// when another session still holds it then. The session's TCP keepalives are shortened so a
/// host that dies holding it loses it within seconds.
bool pg_lock_day(PgConn& c, const std::string& date, Millis wait_ms);
void pg_unlock_day(PgConn& c, const std::string& date);
/// The rule lock: a session-level advisory lock on `c` keyed on an alert rule's name, taken
/// without waiting; true when this session holds it (now or already). A rule evaluated from the
/// whole ledger rather than from a dispatch's own runs (content_held) is evaluated only by the
/// session holding it, so two dispatch hosts never raise the same alert each in its own file.
/// It goes with the session (the process's exit, a lost connection; keepalives as the day
/// lock's, so a host that dies loses it within seconds) and the next host's try takes it.
bool pg_try_lock_rule(PgConn& c, const std::string& rule);
/// The day's planned runs in PostgreSQL (any state): runs of `date` of kind morning, not the
/// urgent ones `daybreak send-now` published (sql/postgresql/006), as store::DayHasRuns counts
/// them on SQLite: what the dead-man's switch and the plan_missing rule look for.
std::int64_t pg_runs_of_day(PgConn& c, const std::string& date);

/// RunLiveDispatchOwner on PostgreSQL: the owner of the most recently beaten live lease on a run
/// not closed (a dispatch is running there, on some host), if any.
std::optional<std::string> pg_live_dispatch_owner(PgConn& c, Millis now);
/// The owner of run `run_id` while its lease is live at `now` (send-now: taken yet?).
std::optional<std::string> pg_run_live_owner(PgConn& c, std::int64_t run_id, Millis now);

/// What `daybreak status` shows of the PostgreSQL ledger (read-only; one connection).
struct PgStatusView {
  std::vector<Run> active;         ///< runs planned or running whose window overlaps [from, now], and every running run
  std::vector<Control> controls;   ///< every switch, by key
  std::int64_t dead = 0;           ///< dead deliveries not dismissed
  std::vector<Run> next_day_runs;  ///< the runs of `next_day`
};
PgStatusView pg_status_view(const std::string& url, Millis from, Millis now, const std::string& next_day);
/// The same on an open connection, in its transaction (the console reads it in each frame's snapshot).
PgStatusView pg_status_view(PgConn& c, Millis from, Millis now, const std::string& next_day);

/// One row of `daybreak doctor` about the PostgreSQL ledger.
struct PgLedgerCheck {
  std::string name;
  bool ok = false;
  std::string message;
};
/// What `daybreak doctor` reports about the ledger at `url`, changing nothing (no migration):
/// ledger_postgres (it connects; the server's version, the database and the user),
/// ledger_schema (the migration level against this build's sql/postgresql/) and ledger_tables
/// (every table of sql/postgresql/ exists, answers a read, and grants the writes its writers
/// make: INSERT, and UPDATE where rows are changed; audit_log and status_rejects are only
/// appended to).
std::vector<PgLedgerCheck> check_pg_ledger(const std::string& url);
/// `url` with its password (if any) replaced by "***", for messages.
std::string pg_url_for_display(const std::string& url);

}  // namespace daybreak::store
