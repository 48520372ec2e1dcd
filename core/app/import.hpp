#pragma once
// `daybreak import advisors|content|assignments FILE`: read a CSV file, validate every row, and
// write all of it or nothing.
//
// How: the file is streamed once through the CSV parser and the validators, inside one write
// transaction. Rows are written while no problem has been seen; the first problem stops the
// writing (validation goes on, to name every bad row) and the transaction is rolled back at the
// end. To every other connection this is the same as "validate first, then write": nothing is
// visible before the commit. It reads and validates the file once instead of twice, which
// matters because validation (libphonenumber above all) is about half the cost of a
// 1,000,000-row import; for advisors and content, validation runs on a second thread while this
// one writes, so the halves overlap. A dry run validates without a transaction.
#include <nlohmann/json_fwd.hpp>

#include <cstddef>
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
