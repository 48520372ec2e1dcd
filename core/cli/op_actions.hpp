#pragma once
// The operator's change actions that more than one front end performs: the command line
// (`daybreak pause|resume`, `cancel --delivery`, `dead replay|dismiss`) and the web console
// (`daybreak serve`). Each validates, then writes the change and its audit row in one
// transaction; the front ends differ only in who the actor is and how they print the result.
// Withdrawing content (app::withdraw_content) and acknowledging an alert
// (engine::acknowledge_alert) were shared already and take the actor the same way.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "domain/types.hpp"
#include "store/audit.hpp"
#include "store/db.hpp"
#include "store/overrides.hpp"
#include "store/pg_operator.hpp"

namespace daybreak::ops {

/// Who performs a change, as the audit log records it.
struct Actor {
  std::string name;       ///< audit_log.actor: the OS user (CLI) or the console operator's name
  std::string sudo_user;  ///< SUDO_USER for the CLI, empty for the console
  std::string command;    ///< the command line, or "daybreak serve: ACTION (web console, from ADDR)"
};
/// The CLI's actor: current OS user, SUDO_USER and the command line as typed.
Actor cli_actor();

/// An audit row for `target` by `who`.
store::AuditEntry audit_entry_as(const Actor& who, Millis now, const std::string& target, const std::string& reason,
                                 const nlohmann::json& before, const nlohmann::json& after);

/// Pauses (`pause` true) or resumes all sending (`channel` empty) or one channel (validated:
/// UsageError otherwise). Returns {"command","key","paused","was_paused","dry_run"}.
nlohmann::json set_pause(store::Db& db, const std::string& channel, bool pause, const std::string& reason, const Actor& who,
                         Millis now, bool dry_run);

/// What one pause or resume applies to: all sending (every field empty), one channel, one run
/// or one sender (at most one of them).
struct PauseTarget {
  std::string channel;
  std::int64_t run_id = 0;  ///< 0: not a run
  std::string sender;
};
/// The controls key of `t` (validated: UsageError for two scopes at once, an unknown channel, a
/// run that does not exist, a sender that is not in `known_senders`).
std::string pause_key(store::Db& db, const PauseTarget& t, const std::vector<std::string>& known_senders);
/// pause_key with the run's existence asked of `run_exists` (either ledger).
std::string pause_key(const PauseTarget& t, const std::vector<std::string>& known_senders,
                      const std::function<bool(std::int64_t)>& run_exists);
/// Pauses or resumes `t` (as set_pause; the key is pause, pause.CHANNEL, pause.run.ID or
/// pause.sender.ID). A running dispatch reads the switches with its heartbeat, once a second.
nlohmann::json set_pause_target(store::Db& db, const PauseTarget& t, const std::vector<std::string>& known_senders,
                                bool pause, const std::string& reason, const Actor& who, Millis now, bool dry_run);

/// Cancels one delivery not yet at the provider (planned, retry_wait or uncertain). UsageError
/// for an unknown, sending or final delivery; CheckFailed when dispatch claimed it meanwhile.
/// Returns {"command":"cancel","delivery_id","before","cancelled":1,"dry_run"}.
nlohmann::json cancel_delivery(store::Db& db, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                               const Actor& who, Millis now, bool dry_run);

/// Replays (`replay`) or dismisses dead letters given by ids (each checked first: all change or
/// none, UsageError listing the problems) or by `filter` (read inside the transaction). A replay
/// of a delivery of a closed run reopens the run. Returns {"command","count","delivery_ids",
/// "runs_reopened","dry_run"}.
nlohmann::json dead_change(store::Db& db, const std::string& tz, const std::vector<std::int64_t>& ids,
                           const std::optional<store::DeadFilter>& filter, bool replay, const std::string& reason,
                           const Actor& who, Millis now, bool dry_run);

/// `daybreak resend --delivery ID`: a final or dead delivery (accepted, delivered, read, dead,
/// cancelled) back to planned, due now (store::DeliveryRequeue, noted "resend"), its run reopened
/// when closed (store::RunReopen), audited. UsageError for an unknown delivery, one not final
/// yet, or one of a cancelled run; CheckFailed when it changed meanwhile. Returns
/// {"command":"resend","delivery_id","before","state":"planned","run_id","run_reopened","dry_run"}.
nlohmann::json resend_delivery(store::Db& db, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                               const Actor& who, Millis now, bool dry_run);

/// `daybreak content replace ID --with ID2`: the compliance pull with a chosen substitute, in one
/// transaction: ID withdrawn, every assignment of it from yesterday (in `tz`) on pointed at ID2
/// (source override), pending deliveries re-pointed (each noted for a running dispatch), those
/// whose assignment names another item given an emergency item or held, audited. UsageError for
/// an unknown item, ID2 withdrawn, in another language or not valid on a day ID is assigned.
/// Returns {"command":"content replace","content_id","with","already_withdrawn",
/// "assignments_replaced","deliveries_repointed","deliveries_in_flight","dry_run"}.
nlohmann::json replace_content(store::Db& db, const std::string& tz, const std::string& emergency_language, const std::string& content_id,
                               const std::string& with, const std::string& reason, const Actor& who, Millis now, bool dry_run);

// ---- the same actions on the PostgreSQL ledger ([database] url) ----
// Each validates as its SQLite twin above, writes the change, its delivery_changes notes and its
// audit row (audit_log, sql/postgresql/003) in one PostgreSQL transaction, and returns the same
// JSON. A running dispatch on PostgreSQL reads the switches with its heartbeat (once a second)
// and reloads the noted rows with its PollChanges, as on SQLite.

/// set_pause_target on PostgreSQL.
nlohmann::json set_pause_target_pg(store::PgOperator& pg, const PauseTarget& t, const std::vector<std::string>& known_senders,
                                   bool pause, const std::string& reason, const Actor& who, Millis now, bool dry_run);
/// cancel_delivery on PostgreSQL.
nlohmann::json cancel_delivery_pg(store::PgOperator& pg, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                                  const Actor& who, Millis now, bool dry_run);
/// `daybreak cancel --run ID`: the run cancelled and every delivery of it not at the provider
/// (store::RunCancel), audited. UsageError for an unknown or already cancelled run. Returns
/// {"command":"cancel","run_id","date","before","cancelled","in_flight","dry_run"}.
nlohmann::json cancel_run(store::Db& db, std::int64_t run_id, const std::string& reason, const Actor& who, Millis now, bool dry_run);

/// dead_change on PostgreSQL (`daybreak dead replay|dismiss`): a replay of a delivery of a closed
/// run reopens it there, and a dispatch on PostgreSQL takes reopened runs with open rows.
nlohmann::json dead_change_pg(store::PgOperator& pg, const std::string& tz, const std::vector<std::int64_t>& ids,
                              const std::optional<store::DeadFilter>& filter, bool replay, const std::string& reason,
                              const Actor& who, Millis now, bool dry_run);
/// resend_delivery on PostgreSQL: the row requeued and noted in delivery_changes (a running
/// dispatch there reloads it with its PollChanges and sends it), a closed run reopened for the
/// next dispatch on PostgreSQL.
nlohmann::json resend_delivery_pg(store::PgOperator& pg, const std::string& tz, std::int64_t delivery_id, const std::string& reason,
                                  const Actor& who, Millis now, bool dry_run);
/// replace_content on PostgreSQL. With deliveries of ID in flight (claimed by a dispatch) it then
/// waits, as withdraw_content_pg does, until every dispatch with a live lease has polled the
/// change (its content guard holds the claimed rows it has not sent), at most 10 s: the JSON adds
/// "dispatch_confirmed" (true, false when one did not show it in time, null when nothing was in
/// flight or on a dry run) and "ledger": "postgresql".
nlohmann::json replace_content_pg(store::PgOperator& pg, const std::string& tz, const std::string& emergency_language,
                                  const std::string& content_id, const std::string& with, const std::string& reason, const Actor& who,
                                  Millis now, bool dry_run);
/// After a change to deliveries a dispatch on PostgreSQL may have loaded: waits (at most 10 s)
/// until every dispatch holding a live lease at `now` shows three heartbeats after the commit. A
/// heartbeat is followed by a poll (PollChanges) in the same tick, so the second new one started
/// after the commit and the third commits after that poll: then it has reloaded the noted rows
/// (and its content guard has a withdrawal), and what it stops is not sent afterwards. True when
/// all did (or none holds a lease), false when one did not in time.
bool await_dispatch_polls(store::PgOperator& pg, Millis now);

/// For the planning changes that speak both ledgers with [database] url (`daybreak advisors
/// add|update|pause|resume|opt-in|opt-out`, `daybreak assign`): the PostgreSQL ledger, connected
/// and migrated before anything is written, so one that does not answer leaves nothing changed
/// (StoreError naming `command` and the ledger: exit 4). Null without url.
std::unique_ptr<store::PgOperator> connect_pg_first(const Config& cfg, const std::string& command);
/// One change to the SQLite file (`on_sqlite`, in its write transaction) and, with `pg`, the same
/// change to PostgreSQL (`on_pg`, in one PgOperator::tx inside it, so a PostgreSQL failure rolls
/// the file back too). With `dry_run` both roll back. A StoreError names `command` and says what
/// changed: nothing, or (the file's commit failing after PostgreSQL's, which a write transaction
/// holding the file's lock makes rare) PostgreSQL only, with the command that brings the file along.
void change_both(store::Db& db, store::PgOperator* pg, bool dry_run, const std::string& command, const std::function<void()>& on_sqlite,
                 const std::function<void()>& on_pg);

/// cancel_run on PostgreSQL.
nlohmann::json cancel_run_pg(store::PgOperator& pg, std::int64_t run_id, const std::string& reason, const Actor& who, Millis now,
                             bool dry_run);
/// `daybreak content withdraw` on PostgreSQL, in one transaction: the item withdrawn and audited
/// ("content withdraw"), its pending deliveries from yesterday on re-pointed at their advisor's
/// assignment when it names other content, else given an emergency item or held, and the counts
/// audited ("content withdraw: replace"). No fallback is ranked (the ranking reads the planning
/// data kept in the SQLite file): the report's assignments_replaced is 0 and `days` empty.
/// With deliveries of the item in flight it then waits (at most 10 s) until every dispatch with a
/// live lease has polled the change ("dispatch_confirmed": true; false when one did not show it
/// in time; null when nothing was in flight), so none of them is sent after it returns.
/// `from_date` is the first day considered (yesterday in the default zone). CheckFailed when the
/// item does not exist. Returns the same JSON as withdraw_content.
nlohmann::json withdraw_content_pg(store::PgOperator& pg, const std::string& emergency_language, const std::string& from_date,
                                   const std::string& content_id, const std::string& reason, const Actor& who, Millis now);

}  // namespace daybreak::ops
