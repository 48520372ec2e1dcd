#pragma once
// The dispatch ledger port: every statement a dispatch runs against the ledger, as typed
// operations with typed results. The dispatcher and its batch writer speak only this interface;
// SqliteDispatchLedger implements it on store::Db (the query modules), and a second backend
// implements the same class.
//
// One ledger object is one connection of one dispatch process (`owner`, the name in leases and
// claims). The reads (`load_*`, `reconcile_crashed`) run when a dispatch starts, on a connection
// of their own; the writes (`apply`) run inside the writer's transaction, which the writer drives
// through begin/commit/rollback and the savepoint calls. An operation may run more than once (a
// batch retried after a transient failure, or replayed one operation at a time after a permanent
// one): each starts from scratch and returns its result afresh.
#include <array>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "domain/time.hpp"
#include "domain/types.hpp"
#include "store/deliveries.hpp"
#include "store/runs.hpp"
#include "store/whatsapp_holds.hpp"

namespace daybreak::store {

class Db;
class ReportLedger;

/// A closed run's report as a ledger stores it: the headline figure and the report's JSON text.
struct BuiltRunReport {
  double sla_pct = 0;
  std::string json;
};
/// Builds the report of `run` at `now` from `ledger` (app/report.hpp's build_run_report: the
/// store does not build reports, the dispatch hands it the builder).
using RunReportBuilder = std::function<BuiltRunReport(ReportLedger& ledger, const Run& run, Millis now)>;

/// The operations a dispatch writes, one struct each.
namespace ledger_op {

/// Claim rows for sending (planned / retry_wait / uncertain → sending), only while this owner
/// owns their run. Result: one ClaimResult per id, in order.
struct Claim {
  std::vector<std::int64_t> ids;
  Millis now = 0;
  Millis claim_until = 0;
};
/// An attempt's outcome written to its row (only a row `sending` under this owner moves). With
/// `claim_first`, the row is claimed in the same operation first (a row made final without a
/// send: given up or held while not claimed).
struct Outcome {
  DeliveryUpdateParams update;
  bool claim_first = false;
  Millis claim_until = 0;
};
/// One request's history row.
struct Attempt {
  AttemptInsertParams attempt;
};
/// Emergency content substituted at send time (the delivery and the advisor's assignment).
struct Substitute {
  std::int64_t delivery_id = 0;
  std::string content_id;
  std::string reason;
  Millis now = 0;
};
/// Claimed but unsent rows handed back (a graceful stop): planned again (or retry_wait after an
/// attempt), not uncertain.
struct Release {
  std::vector<std::int64_t> ids;
  Millis now = 0;
};
/// Lease renewal and progress of the open runs, and the operator's pause switches read back.
/// Result: HeartbeatResult.
struct Heartbeat {
  std::vector<std::pair<std::int64_t, std::string>> progress;  ///< (run id, progress JSON)
  Millis now = 0;
  Millis lease_ms = 0;
};
/// Operator changes to deliveries of `run_ids` after `after_seq` (sql/006). Result: OperatorChanges.
struct PollChanges {
  std::vector<std::int64_t> run_ids;
  std::int64_t after_seq = 0;
  Millis now = 0;          ///< WhatsApp holds still in force at this instant...
  Millis holds_since = 0;  ///< ...and written at or after this one are returned too
};
/// A `failed` status moved an accepted delivery to its next channel (accepted → retry_wait,
/// store::DeliveryRerouteAfterFailedStatus): only while the row is still accepted on WhatsApp
/// and this owner holds its run.
struct RerouteAfterFailed {
  RerouteAfterFailedParams params;
};
/// Closes a run, only when every delivery is final and this owner (or nobody) holds it.
/// Result: CloseResult (when it did not close, the lease is released for the next dispatch).
struct CloseRun {
  std::int64_t run_id = 0;
  Millis now = 0;
  std::string progress;
};
/// Gives a run's lease up, leaving it resumable.
struct ReleaseLease {
  std::int64_t run_id = 0;
};
/// Urgent runs (kind urgent: `daybreak send-now`) created while this dispatch runs: each one
/// whose window overlaps [from, to], that is not in `known` and whose lease is free or expired
/// is leased to this owner (as a dispatch's start leases its runs). Result: AdoptedRuns.
struct AdoptUrgent {
  std::vector<std::int64_t> known;
  Millis from = 0;
  Millis to = 0;
  Millis now = 0;
  Millis lease_ms = 0;
};
/// Stores the report of a run this dispatch closed, in the ledger, keyed by run id (one row per
/// run; a later close of a reopened run replaces it): only when the run is closed (or
/// cancelled) at `closed_at`, the instant of this dispatch's CloseRun, so a dispatch that did
/// not close the run, or whose close a later one replaced, stores nothing. The report is built
/// by `build` from the ledger's own connection, inside the writer's transaction. PostgreSQL:
/// run_reports (sql/postgresql/005); SQLite: sla_reports (that dispatch stores its reports with
/// a Local hook instead, the same rows).
struct StoreRunReport {
  std::int64_t run_id = 0;
  Millis closed_at = 0;
  RunReportBuilder build;
};
/// This host's own bookkeeping that shares the writer's transaction without being a ledger
/// statement of the dispatch: alert rules and their outbox, the metrics textfile, a closed run's
/// report. Not part of the port: SqliteDispatchLedger hands them its connection; for a ledger
/// on another database the dispatcher runs its monitoring against this host's SQLite file on a
/// thread of its own instead (engine::HostMonitoring) and sends it none.
struct Local {
  std::function<void(Db&)> fn;
};

}  // namespace ledger_op

using LedgerOp = std::variant<ledger_op::Claim, ledger_op::Outcome, ledger_op::Attempt, ledger_op::Substitute,
                              ledger_op::Release, ledger_op::Heartbeat,
                              ledger_op::PollChanges, ledger_op::CloseRun, ledger_op::ReleaseLease, ledger_op::Local,
                              ledger_op::RerouteAfterFailed, ledger_op::AdoptUrgent, ledger_op::StoreRunReport>;

/// What an operation does, for logs ("claiming deliveries", "recording an outcome", ...).
const char* op_name(const LedgerOp& op) noexcept;

struct ClaimResult {
  std::int64_t delivery_id = 0;
  bool ok = false;
  std::optional<DeliveryStateRow> now_row;  ///< the row as it is, when the claim failed
};
/// The operator's pause switches (`daybreak pause`).
struct Controls {
  bool paused_all = false;
  std::array<bool, 3> paused_channel{};  ///< indexed by Channel
  std::vector<std::int64_t> paused_runs;    ///< `daybreak pause --run ID` (controls key pause.run.ID)
  std::vector<std::string> paused_senders;  ///< `daybreak pause --sender ID` (controls key pause.sender.ID)
};
/// Folds one controls row into `out`: `pause`, `pause.CHANNEL`, and when switched on
/// `pause.run.ID` and `pause.sender.ID`. Both ledgers' heartbeats read the switches through it.
void apply_control(const std::string& key, const std::string& value, Controls& out);
struct HeartbeatResult {
  bool lease_ok = true;  ///< false when another process owns one of the runs now
  Controls controls;
};
/// A content item as dispatch needs it (the domain's Content: the one reader of a content row).
using ContentRow = Content;
struct OperatorChanges {
  std::int64_t mark = 0;                     ///< the change seq read up to
  std::vector<DeliveryRow> rows;             ///< changed rows, as they are now
  std::vector<ContentRow> content;           ///< the items those rows point at
  std::vector<std::string> withdrawn;        ///< every withdrawn content id
  std::unordered_map<std::string, Millis> holds;  ///< WhatsApp holds (advisor → until) set since the last poll
};
struct CloseResult {
  bool closed = false;
  std::int64_t open_rows = 0;  ///< rows not final, when it did not close
};
/// The urgent runs an AdoptUrgent leased to this owner, in slot order.
struct AdoptedRuns {
  std::vector<Run> runs;
};
using LedgerResult =
    std::variant<std::monostate, std::vector<ClaimResult>, HeartbeatResult, OperatorChanges, CloseResult, AdoptedRuns>;

/// The operation of a batch that threw (DispatchLedger::apply_batch), and what it threw.
struct BatchFailure {
  std::size_t index = 0;
  std::exception_ptr error;
};

/// What a dispatch found when it loaded a run another process was sending.
struct CrashReconcile {
  std::int64_t uncertain = 0;   ///< rows a dead owner left `sending`: now uncertain
  std::int64_t reconciled = 0;  ///< of them, settled by the provider's status callbacks
};

class DispatchLedger {
 public:
  virtual ~DispatchLedger() = default;
  [[nodiscard]] virtual const std::string& owner() const = 0;

  // ---- loading (a dispatch's start) ----
  virtual std::optional<Run> load_run(std::int64_t run_id) = 0;
  /// Rows a dead owner left `sending` become uncertain; those the provider's statuses already
  /// name are settled from them (never resent). One transaction.
  virtual CrashReconcile reconcile_crashed(std::int64_t run_id, Millis now) = 0;
  /// Every emergency item not withdrawn, and every item the run's deliveries point at.
  virtual std::vector<ContentRow> load_emergency_content() = 0;
  virtual std::vector<ContentRow> load_run_content(std::int64_t run_id) = 0;
  /// The run's deliveries one at a time (a 1M run is not held twice).
  virtual void for_each_delivery(std::int64_t run_id, const std::function<void(DeliveryRow&&)>& fn) = 0;
  /// The newest operator-change seq: polling starts after it.
  virtual std::int64_t change_mark() = 0;
  /// WhatsApp holds in force at `now` (advisor id → until, sql/012); none by default.
  virtual std::unordered_map<std::string, Millis> load_whatsapp_holds(Millis now) {
    (void)now;
    return {};
  }

  // ---- writing (inside the writer's transaction) ----
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  /// True while a transaction begun here is still open (a failure may have ended it).
  [[nodiscard]] virtual bool in_transaction() = 0;
  virtual void savepoint() = 0;
  virtual void release_savepoint() = 0;
  virtual void rollback_to_savepoint() = 0;
  /// Runs one operation; throws StoreError (store::is_transient_error tells whether a retry may pass).
  virtual LedgerResult apply(const LedgerOp& op) = 0;
  /// Runs `ops` in order, as apply() would one after another, with results[i] for ops[i]
  /// (`results` is resized). Stops at the first operation that throws and returns it: those
  /// before it ran, none after it did, and the transaction may be unusable (the writer rolls it
  /// back and replays the batch one operation per savepoint). The default calls apply() for
  /// each; PgDispatchLedger sends a batch's statements in one pipeline (one round trip).
  virtual std::optional<BatchFailure> apply_batch(const std::vector<const LedgerOp*>& ops, std::vector<LedgerResult>& results);
};

/// Opens a ledger connection: the writer calls it on its own thread.
using LedgerFactory = std::function<std::unique_ptr<DispatchLedger>()>;

/// How SqliteDispatchLedger opens its connection.
struct SqliteLedgerOptions {
  int busy_timeout_ms = 1000;  ///< short for the writer: on a lock it keeps the batch and retries
  /// Updates walk the table and its indexes in send order (ids follow planned order, message ids
  /// are sequential): a few hot pages at a time. 4 MiB, not more: at 1M a fuller cache was the
  /// largest growth of dispatch's resident memory while sending.
  int cache_kib = 4096;
  /// PRAGMA wal_autocheckpoint: the writer copies the WAL into the file after a commit that leaves
  /// this many frames or more in it. SQLite's 1,000 made dispatch's writer, beside
  /// daybreak-callbacks, checkpoint the receiver's frames after nearly every commit (the receiver
  /// lets the WAL reach 6,144 frames before it starts it over: app::CallbackReceiver::
  /// kWalRestartFrames): 22% of dispatch's CPU and its system time doubled. 8,192 (32 MiB) stays
  /// out of the receiver's way; alone, dispatch checkpoints every 32 MiB of WAL instead of every
  /// 4 MiB, which measured the same CPU and lag (docs/performance-notes.md, "Two writers").
  int wal_autocheckpoint_frames = 8192;
};

/// The port on the SQLite ledger (store::Db and the query modules).
class SqliteDispatchLedger final : public DispatchLedger {
 public:
  SqliteDispatchLedger(const std::string& db_path, std::string owner, const SqliteLedgerOptions& opts = {});
  ~SqliteDispatchLedger() override;
  [[nodiscard]] const std::string& owner() const override { return owner_; }

  std::optional<Run> load_run(std::int64_t run_id) override;
  CrashReconcile reconcile_crashed(std::int64_t run_id, Millis now) override;
  std::vector<ContentRow> load_emergency_content() override;
  std::vector<ContentRow> load_run_content(std::int64_t run_id) override;
  void for_each_delivery(std::int64_t run_id, const std::function<void(DeliveryRow&&)>& fn) override;
  std::int64_t change_mark() override;
  std::unordered_map<std::string, Millis> load_whatsapp_holds(Millis now) override;

  void begin() override;
  void commit() override;
  void rollback() noexcept override;
  bool in_transaction() override;
  void savepoint() override;
  void release_savepoint() override;
  void rollback_to_savepoint() override;
  LedgerResult apply(const LedgerOp& op) override;

 private:
  std::vector<ClaimResult> claim(const ledger_op::Claim& op);
  void outcome(const ledger_op::Outcome& op);
  void release(const ledger_op::Release& op);
  HeartbeatResult heartbeat(const ledger_op::Heartbeat& op);
  OperatorChanges poll_changes(const ledger_op::PollChanges& op);
  CloseResult close_run(const ledger_op::CloseRun& op);
  AdoptedRuns adopt_urgent(const ledger_op::AdoptUrgent& op);
  void store_run_report(const ledger_op::StoreRunReport& op);
  std::string owner_;
  std::unique_ptr<Db> db_;
};

/// A factory of SqliteDispatchLedger connections to `db_path` for `owner`.
LedgerFactory sqlite_ledger_factory(std::string db_path, std::string owner, SqliteLedgerOptions opts = {});

}  // namespace daybreak::store
