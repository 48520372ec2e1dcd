#pragma once
// Query module for `audit_log` (every operator change is audited): who (OS user and
// SUDO_USER), when, which command, why, on what, and the target's state before and after, as
// JSON. Rows are appended in the same write transaction as the change they describe, so the log
// never shows a change that did not happen nor misses one that did.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// One audit_log row (who, what, when, before → after).
struct AuditEntry {
  Millis at = 0;
  std::string actor;
  std::string sudo_user;  ///< empty when not under sudo
  std::string command;
  std::string reason;
  std::string target;
  std::string before;  ///< JSON text; empty = NULL
  std::string after;   ///< JSON text; empty = NULL
};
/// Appends an audit row. Call inside Db::write_tx, together with the change it records.
void AuditAppend(Db& db, const AuditEntry& e);

/// A stored audit row with its id.
struct AuditRow {
  std::int64_t audit_id = 0;
  AuditEntry entry;
};

/// Which rows AuditList returns; every filter is optional and they combine with AND.
struct AuditListParams {
  std::optional<Millis> since;  ///< at >= since
  std::optional<Millis> until;  ///< at < until
  std::string actor;            ///< actor or sudo_user equals this
  std::string command;          ///< command contains this text ("cancel", "dead replay")
  std::string target;           ///< target equals this ("delivery:42", "advisor:A1")
  std::int64_t limit = 100;     ///< newest rows first; <= 0 = no limit
};
/// Calls `fn` for each matching row, newest first, without holding them all in memory.
void AuditList(Db& db, const AuditListParams& p, const std::function<void(const AuditRow&)>& fn);

}  // namespace daybreak::store
