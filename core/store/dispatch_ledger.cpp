#include "store/dispatch_ledger.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <unordered_set>

#include "domain/status_event.hpp"
#include "store/content.hpp"
#include "store/db.hpp"
#include "store/overrides.hpp"
#include "store/report_ledger.hpp"
#include "store/reports.hpp"
#include "store/status_events.hpp"

namespace daybreak::store {

namespace {
template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;
}  // namespace

std::optional<BatchFailure> DispatchLedger::apply_batch(const std::vector<const LedgerOp*>& ops,
                                                        std::vector<LedgerResult>& results) {
  results.assign(ops.size(), LedgerResult{});
  for (std::size_t i = 0; i < ops.size(); ++i) {
    try {
      results[i] = apply(*ops[i]);
    } catch (...) {
      return BatchFailure{i, std::current_exception()};
    }
  }
  return std::nullopt;
}

const char* op_name(const LedgerOp& op) noexcept {
  return std::visit(Overloaded{[](const ledger_op::Claim&) { return "claiming deliveries"; },
                               [](const ledger_op::Outcome&) { return "recording an outcome"; },
                               [](const ledger_op::Attempt&) { return "recording an attempt"; },
                               [](const ledger_op::Substitute&) { return "substituting emergency content"; },
                               [](const ledger_op::Release&) { return "releasing unsent deliveries"; },
                               [](const ledger_op::Heartbeat&) { return "heartbeat"; },
                               [](const ledger_op::PollChanges&) { return "polling operator changes"; },
                               [](const ledger_op::CloseRun&) { return "closing a run"; },
                               [](const ledger_op::ReleaseLease&) { return "releasing a lease"; },
                               [](const ledger_op::Local&) { return "monitoring and reports"; },
                               [](const ledger_op::RerouteAfterFailed&) {
                                 return "moving a delivery to its next channel after a failed status";
                               },
                               [](const ledger_op::AdoptUrgent&) { return "adopting urgent runs"; },
                               [](const ledger_op::StoreRunReport&) { return "storing a closed run's report"; }},
                    op);
}

SqliteDispatchLedger::SqliteDispatchLedger(const std::string& db_path, std::string owner, const SqliteLedgerOptions& opts)
    : owner_(std::move(owner)) {
  OpenOptions o;
  o.migrate = false;
  o.busy_timeout_ms = opts.busy_timeout_ms;
  o.cache_kib = opts.cache_kib;
  db_ = std::make_unique<Db>(db_path, o);
  db_->exec("PRAGMA wal_autocheckpoint=" + std::to_string(opts.wal_autocheckpoint_frames));
}

SqliteDispatchLedger::~SqliteDispatchLedger() = default;

std::optional<Run> SqliteDispatchLedger::load_run(std::int64_t run_id) {
  auto r = RunGet(*db_, run_id);
  if (r) r->kind = RunKindGet(*db_, run_id);  // dispatch's ledger is migrated (sql/014)
  return r;
}

CrashReconcile SqliteDispatchLedger::reconcile_crashed(std::int64_t run_id, Millis now) {
  CrashReconcile r;
  db_->write_tx([&] {
    r = {};
    r.uncertain = DeliveryMarkUncertain(*db_, run_id, owner_, now);
    if (r.uncertain == 0) return;
    // Status callbacks that arrived while those rows were `sending` were kept pending: the ones
    // naming a now-uncertain row settle it here, so it is never resent.
    r.reconciled = StatusApplyPending(*db_, now).reconciled;
    // Statuses already applied while the row was `sending` (they named it, but the row was not
    // ours to move then): the provider has the message; do not send it again.
    for (auto id : DeliveryListUncertain(*db_, run_id)) {
      auto m = StatusFindForDelivery(*db_, id);
      if (!m) continue;
      auto st = delivery_state_after_status(DeliveryState::uncertain, m->status);
      if (st && DeliverySettleUncertain(*db_, id, *st, m->provider_message_id, m->provider_at, now)) ++r.reconciled;
    }
  });
  return r;
}

std::vector<ContentRow> SqliteDispatchLedger::load_emergency_content() { return ContentListEmergency(*db_); }
std::vector<ContentRow> SqliteDispatchLedger::load_run_content(std::int64_t run_id) {
  return ContentListForRun(*db_, run_id);
}
void SqliteDispatchLedger::for_each_delivery(std::int64_t run_id, const std::function<void(DeliveryRow&&)>& fn) {
  DeliveryForEachInRun(*db_, run_id, fn);
}
std::int64_t SqliteDispatchLedger::change_mark() { return DeliveryChangeLastSeq(*db_); }

std::unordered_map<std::string, Millis> SqliteDispatchLedger::load_whatsapp_holds(Millis now) {
  return WhatsAppHoldsActive(*db_, now);
}

void SqliteDispatchLedger::begin() { db_->exec("BEGIN IMMEDIATE"); }
void SqliteDispatchLedger::commit() { db_->exec("COMMIT"); }
void SqliteDispatchLedger::rollback() noexcept {
  if (sqlite3_get_autocommit(db_->raw().getHandle()) != 0) return;
  try {
    db_->exec("ROLLBACK");
  } catch (...) {
    // A failed rollback leaves nothing to undo: SQLite rolled back already.
  }
}
bool SqliteDispatchLedger::in_transaction() { return sqlite3_get_autocommit(db_->raw().getHandle()) == 0; }
void SqliteDispatchLedger::savepoint() { db_->exec("SAVEPOINT daybreak_write_op"); }
void SqliteDispatchLedger::release_savepoint() { db_->exec("RELEASE daybreak_write_op"); }
void SqliteDispatchLedger::rollback_to_savepoint() {
  db_->exec("ROLLBACK TO daybreak_write_op");
  db_->exec("RELEASE daybreak_write_op");
}

LedgerResult SqliteDispatchLedger::apply(const LedgerOp& op) {
  return std::visit(
      Overloaded{
          [&](const ledger_op::Claim& o) -> LedgerResult { return claim(o); },
          [&](const ledger_op::Outcome& o) -> LedgerResult {
            outcome(o);
            return {};
          },
          [&](const ledger_op::Attempt& o) -> LedgerResult {
            AttemptInsert(*db_, o.attempt);
            return {};
          },
          [&](const ledger_op::Substitute& o) -> LedgerResult {
            DeliverySubstituteContent(*db_, o.delivery_id, o.content_id, "emergency",
                                      "emergency substitution: " + o.reason, o.now);
            return {};
          },
          [&](const ledger_op::Release& o) -> LedgerResult {
            release(o);
            return {};
          },
          [&](const ledger_op::Heartbeat& o) -> LedgerResult { return heartbeat(o); },
          [&](const ledger_op::PollChanges& o) -> LedgerResult { return poll_changes(o); },
          [&](const ledger_op::CloseRun& o) -> LedgerResult { return close_run(o); },
          [&](const ledger_op::ReleaseLease& o) -> LedgerResult {
            RunReleaseLease(*db_, o.run_id, owner_);
            return {};
          },
          [&](const ledger_op::Local& o) -> LedgerResult {
            if (o.fn) o.fn(*db_);
            return {};
          },
          [&](const ledger_op::RerouteAfterFailed& o) -> LedgerResult {
            DeliveryRerouteAfterFailedStatus(*db_, o.params, owner_);
            return {};
          },
          [&](const ledger_op::AdoptUrgent& o) -> LedgerResult { return adopt_urgent(o); },
          [&](const ledger_op::StoreRunReport& o) -> LedgerResult {
            store_run_report(o);
            return {};
          }},
      op);
}

void SqliteDispatchLedger::store_run_report(const ledger_op::StoreRunReport& op) {
  auto run = RunGet(*db_, op.run_id);
  if (!run || (run->state != "closed" && run->state != "cancelled") || run->finished_at != op.closed_at || !op.build) return;
  SqliteReportLedger ledger(*db_);
  const BuiltRunReport rep = op.build(ledger, *run, op.closed_at);
  SlaReportUpsert(*db_, run->run_id, run->date, op.closed_at, rep.sla_pct, rep.json);
}

AdoptedRuns SqliteDispatchLedger::adopt_urgent(const ledger_op::AdoptUrgent& op) {
  AdoptedRuns out;
  for (auto id : RunListAdoptableUrgent(*db_, op.from, op.to, op.now, op.known)) {
    if (!RunAcquireLease(*db_, id, owner_, op.now, op.lease_ms).acquired) continue;
    if (auto r = RunGet(*db_, id)) {
      r->kind = RunKindGet(*db_, id);
      out.runs.push_back(std::move(*r));
    }
  }
  return out;
}

std::vector<ClaimResult> SqliteDispatchLedger::claim(const ledger_op::Claim& op) {
  std::vector<ClaimResult> out;
  out.reserve(op.ids.size());
  const auto ok = DeliveryClaimMany(*db_, op.ids, owner_, op.claim_until, op.now);
  for (std::size_t i = 0; i < op.ids.size(); ++i) {
    ClaimResult c{op.ids[i], ok[i] != 0, std::nullopt};
    if (!c.ok) c.now_row = DeliveryGetState(*db_, op.ids[i]);
    out.push_back(std::move(c));
  }
  return out;
}

void SqliteDispatchLedger::outcome(const ledger_op::Outcome& op) {
  const auto& p = op.update;
  if (op.claim_first && !DeliveryClaim(*db_, p.delivery_id, owner_, op.claim_until, p.now)) return;
  DeliveryUpdate(*db_, p, owner_);
}

void SqliteDispatchLedger::release(const ledger_op::Release& op) {
  for (auto id : op.ids) DeliveryRelease(*db_, id, owner_, op.now);
}

namespace {
// One run's or one sender's pause (`pause.run.ID`, `pause.sender.ID`), switched on.
void read_scoped_pause(const std::string& key, Controls& out) {
  static const std::string run_prefix = "pause.run.", sender_prefix = "pause.sender.";
  if (key.rfind(run_prefix, 0) == 0) {
    try {
      out.paused_runs.push_back(std::stoll(key.substr(run_prefix.size())));
    } catch (const std::exception&) {
      // not a run id: written by nothing of ours; ignored
    }
  } else if (key.rfind(sender_prefix, 0) == 0 && key.size() > sender_prefix.size()) {
    out.paused_senders.push_back(key.substr(sender_prefix.size()));
  }
}
}  // namespace

void apply_control(const std::string& key, const std::string& value, Controls& out) {
  const bool on = value == "1";
  if (key == "pause") out.paused_all = on;
  for (Channel ch : {Channel::whatsapp, Channel::email, Channel::webhook}) {
    if (key == "pause." + std::string(to_string(ch))) out.paused_channel[static_cast<int>(ch)] = on;
  }
  if (on) read_scoped_pause(key, out);
}

HeartbeatResult SqliteDispatchLedger::heartbeat(const ledger_op::Heartbeat& op) {
  HeartbeatResult r;
  for (const auto& [run_id, json] : op.progress) {
    if (!RunHeartbeat(*db_, run_id, owner_, op.now, op.lease_ms, json)) r.lease_ok = false;
  }
  // Operator switches: `daybreak pause` writes these; they apply within a second.
  for (const auto& c : ControlList(*db_)) apply_control(c.key, c.value, r.controls);
  return r;
}

OperatorChanges SqliteDispatchLedger::poll_changes(const ledger_op::PollChanges& op) {
  OperatorChanges out;
  // Up to the mark read first: a change committed meanwhile waits for the next poll.
  out.mark = DeliveryChangeLastSeq(*db_);
  std::vector<std::int64_t> ids;
  for (auto run_id : op.run_ids) {
    for (const auto& c : DeliveryChangesSince(*db_, run_id, op.after_seq)) {
      if (c.seq <= out.mark) ids.push_back(c.delivery_id);
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::unordered_set<std::string> seen;
  for (auto id : ids) {
    auto row = DeliveryGet(*db_, id);
    if (!row) continue;
    if (seen.insert(row->content_id).second) {
      if (auto c = ContentGet(*db_, row->content_id)) out.content.push_back(std::move(*c));
    }
    out.rows.push_back(std::move(*row));
  }
  // A pull while dispatch runs: every withdrawn item, so its content guard sees it before the
  // next send even for rows the pull could not re-point (claimed, in flight, uncertain).
  out.withdrawn = ContentListWithdrawnIds(*db_);
  out.holds = WhatsAppHoldsActive(*db_, op.now, op.holds_since);
  return out;
}

CloseResult SqliteDispatchLedger::close_run(const ledger_op::CloseRun& op) {
  CloseResult r;
  r.closed = RunClose(*db_, op.run_id, owner_, op.now, op.progress);
  if (!r.closed) {
    // The ledger disagrees: a row of the run is not final (or another process owns it). Leave
    // the run open and let it go, so the next dispatch resumes it from the ledger.
    r.open_rows = RunCountNonFinal(*db_, op.run_id);
    RunReleaseLease(*db_, op.run_id, owner_);
  }
  return r;
}

LedgerFactory sqlite_ledger_factory(std::string db_path, std::string owner, SqliteLedgerOptions opts) {
  return [db_path = std::move(db_path), owner = std::move(owner), opts]() -> std::unique_ptr<DispatchLedger> {
    return std::make_unique<SqliteDispatchLedger>(db_path, owner, opts);
  };
}

}  // namespace daybreak::store
