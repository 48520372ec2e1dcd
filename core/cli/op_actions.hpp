#pragma once
// The operator's change actions that more than one front end performs: the command line
// (`daybreak pause|resume`, `cancel --delivery`, `dead replay|dismiss`) and the web console
// (`daybreak serve`). Each validates, then writes the change and its audit row in one
// transaction; the front ends differ only in who the actor is and how they print the result.
// Withdrawing content (app::withdraw_content) and acknowledging an alert
// (engine::acknowledge_alert) were shared already and take the actor the same way.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "store/audit.hpp"
#include "store/db.hpp"
#include "store/overrides.hpp"

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

}  // namespace daybreak::ops
