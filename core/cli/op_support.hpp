#pragma once
// What the operator's change commands share: opening the database with the injected
// clock, the --reason and --dry-run rules, the audit row (OS user, SUDO_USER, command line, reason,
// before → after) written in the same transaction as the change, argument parsing with errors
// that name the flag, and JSON for the rows they print.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "cli/common.hpp"
#include "store/audit.hpp"
#include "store/catalog.hpp"
#include "store/db.hpp"
#include "store/overrides.hpp"
#include "store/pg_operator.hpp"

namespace daybreak::ops {

/// An operator command's world: configuration, clock, logger and one database connection.
struct OpEnv {
  AppContext ctx;
  std::unique_ptr<store::Db> db;             ///< the SQLite file (null when open_ledger_env chose PostgreSQL)
  std::unique_ptr<store::PgOperator> pg;     ///< the PostgreSQL ledger (open_ledger_env with [database] url)
  Millis now = 0;  ///< read once from the injected clock: one command, one instant
};
/// Loads the context and opens (and migrates) the database.
OpEnv open_env(const GlobalOptions& g);
/// For the commands that speak PostgreSQL (pause, resume, cancel, content withdraw, audit): the
/// PostgreSQL ledger when [database] url is set (env.pg; env.db stays null), else the SQLite file.
OpEnv open_ledger_env(const GlobalOptions& g);


/// Adds --reason (required) and --dry-run to a change subcommand.
void add_change_flags(CLI::App* sub, std::string& reason, bool& dry_run);
/// Throws UsageError unless the reason says something.
void require_reason(const std::string& reason);

/// The command line as the operator typed it (argv joined, arguments with blanks quoted).
std::string command_line();

/// An audit row for `target` stamped with the current OS user, SUDO_USER and command line.
store::AuditEntry audit_entry(Millis now, const std::string& target, const std::string& reason, const nlohmann::json& before,
                              const nlohmann::json& after);

/// Thrown inside a change transaction to roll a dry run back after it did (and counted) everything.
struct DryRunRollback {};
/// Runs `fn` in one write transaction; with dry_run the transaction is rolled back at the end,
/// so a dry run reports exactly what the change would do and changes nothing.
template <typename Fn>
void change_tx(store::Db& db, bool dry_run, Fn&& fn) {
  try {
    db.write_tx([&] {
      fn();
      if (dry_run) throw DryRunRollback{};
    });
  } catch (const DryRunRollback&) {
  }
}

/// "YYYY-MM-DD" or UsageError naming the flag: `--date "2026-02-30": …`.
std::string parse_date_arg(const std::string& flag, const std::string& value);

/// Lowers this process's CPU priority (nice 10) for bulk work (exports, retention): on a box
/// where dispatch and its providers use most of the CPU, a full export run at the same priority
/// raised dispatch's lag p99 from milliseconds to seconds (docs/performance.md, scenario e).
void yield_cpu_to_dispatch();
/// An instant from "YYYY-MM-DD" (midnight in `tz`) or ISO-8601 ("2026-11-28T06:00:00+05:30"); UsageError otherwise.
Millis parse_time_arg(const std::string& flag, const std::string& value, const std::string& tz);
/// A channel name or UsageError naming the flag.
std::string parse_channel_arg(const std::string& flag, const std::string& value);

/// An instant as ISO-8601 in the configured default zone, "-" for none.
std::string show_time(const std::optional<Millis>& t, const std::string& tz);

/// A delivery as JSON (instants as ms and ISO text).
nlohmann::json to_json(const store::DeliveryInfo& d, const std::string& tz);
/// A content item as JSON (`content list|show`, the audit row of `content replace`): its fields,
/// the withdrawal as ISO text in `tz`, and the body when `with_body`.
nlohmann::json to_json(const store::ContentInfo& i, const std::string& tz, bool with_body = false);
/// One audit row as JSON (before/after parsed back into objects).
nlohmann::json to_json(const store::AuditRow& r, const std::string& tz);

/// Prints `j` as JSON when --json was given, else `human` (a line or more).
void emit(const OpEnv& env, const nlohmann::json& j, const std::string& human);

}  // namespace daybreak::ops
