#pragma once
// `daybreak import advisors|content|assignments FILE`: read a CSV file, validate every row, and
// write all of it or nothing.
//
// How: two phases, so that an import run during a live dispatch does not stall its sends (the
// dispatcher's one writer thread commits claims and outcomes every few tens of milliseconds).
//  1. The input is streamed once through the CSV parser and the validators with no lock on the
//     ledger (assignments look advisors and content up in short autocommit reads, which in WAL
//     mode neither block nor pin the writer). While the file is clean, valid rows are kept:
//     advisors in TEMP tables of this connection (store::AdvisorStage; memory, not the ledger),
//     content and assignments in memory. However slow the input (standard input from a pipe) or
//     large the file, nothing is locked. Advisors already stored exactly as in the file are then
//     dropped from the staging (one short read), so a re-import writes only what changed.
//  2. Only a clean file is written: one BEGIN IMMEDIATE transaction -- advisors with one INSERT ...
//     SELECT per table from the staging, content and assignments through the prepared upserts --
//     plus the audit row. Nothing is visible before the commit and everything after it.
//     Assignments re-check inside it that every content item they name is still as validation
//     saw it (not withdrawn, same validity); the advisors and content they name are also guarded
//     by foreign keys, so a change between the phases rejects the file or fails the write whole.
// The write lock is held only for phase 2, measured and reported (ImportReport::write_lock_ms):
// on the 2-core test machine 0.5-1.1 s for 100,000 new advisors, 5.4 s for 1,000,000 new ones,
// milliseconds for an unchanged re-import (docs/performance.md, "Imports during a dispatch").
// A dry run stops after phase 1.
#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "domain/validate.hpp"
#include "store/db.hpp"

namespace daybreak {

/// What to import and how.
struct ImportOptions {
  ImportKind kind = ImportKind::advisors;  ///< what the file holds
  std::string path;                   ///< the file; "-" reads standard input
  bool dry_run = false;               ///< validate and report; write nothing
  Source source = Source::editorial;  ///< assignments only: editorial or advisor
  /// Problems kept for the report; all are counted. 100 is more than anyone reads, yet a file
  /// that is wrong on every one of a million rows cannot fill memory with messages. 0 = keep all.
  std::size_t max_problems = 100;
  std::string actor;      ///< for the audit row: who ran it
  std::string sudo_user;  ///< for the audit row: SUDO_USER, empty when none
  std::string reason;     ///< for the audit row: why (optional)
  /// Runs after the input is validated and before the write transaction begins: tests change the
  /// database there, as another process could. Empty in the product.
  std::function<void()> after_validation;
};

/// The outcome of an import.
struct ImportReport {
  ImportKind kind = ImportKind::advisors;  ///< what the file held
  std::string file;               ///< name used in messages
  bool dry_run = false;           ///< validated only
  std::size_t rows = 0;           ///< data rows read (header and blank lines excluded)
  std::size_t imported = 0;       ///< rows written; 0 for dry runs and rejected files
  std::size_t kept_overrides = 0; ///< assignments not replaced because an operator override stands
  std::size_t problem_count = 0;  ///< every problem found
  std::vector<Problem> problems;  ///< the first ImportOptions::max_problems of them, in file order
  std::string sha256;             ///< hex digest of the bytes read, recorded in the audit row
  double write_lock_ms = 0;       ///< how long the write transaction held the lock; 0 when none was taken

  /// True when the file had no problem at all.
  [[nodiscard]] bool ok() const { return problem_count == 0; }
};

/// Runs an import. `db` may be null only for a dry run against no database (assignment rows then
/// name unknown advisors and content). `now` stamps updated_at/created_at and the audit row.
/// Throws UsageError when the file cannot be read and store::StoreError when the database fails;
/// a bad file is not an exception but a report with problems.
ImportReport run_import(store::Db* db, const ImportRules& rules, const ImportOptions& opts, Millis now);

/// The operator-facing text: one line when the file was imported (or is valid, for a dry run),
/// otherwise a summary line followed by one line per problem and "… and N more".
std::string format_import_report(const ImportReport& r);

/// `{"ok":true,"kind":"advisors","file":…,"rows":N,"imported":N,…}` or, when rejected,
/// `{"ok":false,…,"error_count":M,"errors":[{"line":17,"field":"phone","message":"…"}]}`.
nlohmann::json import_report_json(const ImportReport& r);

}  // namespace daybreak
