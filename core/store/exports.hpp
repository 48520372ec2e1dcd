#pragma once
// Streams for the analytics platform and the archive (`daybreak export`, `daybreak retention
// archive`): one SELECT each, handed to the caller row by row, so memory stays constant however
// many rows there are. In WAL mode a long read does not block the dispatch writer.
#include <cstdint>
#include <functional>
#include <string>

#include "store/db.hpp"
#include "store/pg.hpp"

namespace daybreak::store {

/// What `daybreak export` can stream.
enum class ExportKind { deliveries, attempts, reports };

/// Calls `on_row` with the statement positioned on each row of `kind` for delivery days in
/// [from_date, to_date] ("YYYY-MM-DD", inclusive), by day then delivery id (reports: by run id). Column names
/// come from the statement (getColumnName), so CSV headers and NDJSON keys follow the query.
void ExportRows(Db& db, ExportKind kind, const std::string& from_date, const std::string& to_date,
                const std::function<void(SQLite::Statement&)>& on_row);

/// ExportRows on the PostgreSQL ledger ([database] url): the same SELECT (same columns, names
/// and order), each row handed over as it arrives (single-row mode); the reports are those of
/// run_reports (sql/postgresql/005: none on a ledger not migrated that far).
void ExportRowsPg(PgConn& c, ExportKind kind, const std::string& from_date, const std::string& to_date,
                  const std::function<void(const PgResult&)>& on_row);

/// Which table ExportRunRows is reading.
enum class ArchiveTable { runs, sla_reports, deliveries, delivery_attempts, delivery_changes, assignments };
/// The table's name as written in an archive line.
const char* to_string(ArchiveTable t);
/// Streams every row of one run and its children (the run row, its SLA report, deliveries,
/// attempts, change notes) for `retention archive`.
void ExportRunRows(Db& db, std::int64_t run_id, const std::function<void(ArchiveTable, SQLite::Statement&)>& on_row);
/// Streams one day's assignments (every column, advisor order) for `retention archive`.
void ExportAssignmentRows(Db& db, const std::string& date, const std::function<void(ArchiveTable, SQLite::Statement&)>& on_row);

}  // namespace daybreak::store
