#pragma once
// Query module for `sla_reports` (one stored report per closed run) and the ledger reads a
// report is computed from: delivery outcomes, failure reasons and attempt counts of a run.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "domain/sla.hpp"
#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// Every delivery of a run as the SLA math sees it, in one query over `deliveries` (ordered by
/// state, then id: the index order, so a 1M-row run needs no sort). When `count_by_source` is
/// given it also receives the deliveries per assignment source (editorial, advisor, fallback,
/// emergency, override) from the same pass, so a report shows how much of the morning ran on
/// fallback or emergency content without reading the table twice. Throws StoreError on a state
/// the schema does not know rather than counting it as something else.
std::vector<DeliveryOutcome> DeliveryOutcomesForRun(Db& db, std::int64_t run_id,
                                                    std::map<std::string, std::int64_t>* count_by_source = nullptr);

/// Delivery truth from status callbacks, counted in SQL over `deliveries` with the rules of
/// domain/sla.hpp (delivered_on_time(), status_read(), status_unknown(), failed_after_accept()),
/// so a live snapshot, a trend or a stored report can show them without loading every row.
struct DeliveryTruth {
  std::int64_t eligible = 0;             ///< not cancelled
  std::int64_t on_time = 0;              ///< accepted at or before the deadline (the headline's numerator)
  std::int64_t delivered_on_time = 0;
  std::int64_t delivered = 0;            ///< a delivered or read status at any time (or the row says so)
  std::int64_t read = 0;
  std::int64_t unknown = 0;
  std::int64_t failed_after_accept = 0;
  std::int64_t delivered_decided = 0;    ///< settled (delivered/read/failed status, dead) or past the deadline at `now`
  std::int64_t delivered_decided_on_time = 0;  ///< of those, delivered on time
};

/// The SQL dialect a shared query is written in: the SQLite file or the PostgreSQL ledger.
enum class SqlDialect { sqlite, postgresql };

/// The DeliveryTruth figures as aggregates over `deliveries`, nine columns in this order:
/// eligible, on_time, delivered_on_time, read, delivered, unknown, failed_after_accept,
/// delivered_decided, delivered_decided_on_time; with `now` as the first parameter (?1 on
/// SQLite, $1 on PostgreSQL). One text of the rules for both ledgers: DeliveryTruthForRun and
/// DeliveryTruthByDate here, PgReportLedger::truth_by_date (store/pg_reports.hpp) there.
const std::string& DeliveryTruthAggregatesSql(SqlDialect dialect);
/// The DeliveryTruth of one row of those nine columns: `col(i)` reads column i of them (0 for
/// NULL), whichever ledger's result it comes from.
DeliveryTruth DeliveryTruthFromColumns(const std::function<std::int64_t(int)>& col);

/// The status counts of one run at `now` (one aggregate query).
DeliveryTruth DeliveryTruthForRun(Db& db, std::int64_t run_id, Millis now);

/// The status counts of every delivery day in [from, to] ("YYYY-MM-DD") that has deliveries,
/// by date (one aggregate query over the date index).
std::map<std::string, DeliveryTruth> DeliveryTruthByDate(Db& db, const std::string& from, const std::string& to, Millis now);

/// One reason requests of a run failed, grouped from `delivery_attempts`.
struct FailureReason {
  std::string error_code;  ///< the provider's code, or the outcome when no code was recorded
  std::string outcome;     ///< outcome of the most recent attempt with this code (retryable, permanent, …)
  std::int64_t count = 0;  ///< attempts that failed with this code
  std::string example;     ///< error_detail of the most recent such attempt ("" when none)
};

/// Every failure reason of a run's attempts (outcome other than `accepted`), most frequent
/// first and then by code, so the order is stable; callers cut the list to their top N.
std::vector<FailureReason> AttemptFailureReasonsForRun(Db& db, std::int64_t run_id);

/// How many requests dispatch made for a run (every row of `delivery_attempts`).
std::int64_t AttemptCountForRun(Db& db, std::int64_t run_id);

/// What the provider said beyond accept/refuse, for a run's attempts (docs/whatsapp-errors.md).
struct ProviderFigures {
  std::int64_t held_for_quality = 0;     ///< deliveries with an accepted attempt held for quality assessment
  std::int64_t unknown_error_codes = 0;  ///< failed attempts whose code the error table does not know
  std::map<std::string, std::int64_t> unknown_codes;  ///< those codes → attempts
  std::int64_t number_blocked = 0;       ///< failed attempts of scope phone_number
  std::int64_t account_blocked = 0;      ///< failed attempts of scope account
};
/// All zero on a ledger from before migration 011 (sla-report never migrates).
ProviderFigures ProviderFiguresForRun(Db& db, std::int64_t run_id);

/// Stores (or replaces) the report of a run: a re-closed or re-reported run keeps one row.
void SlaReportUpsert(Db& db, std::int64_t run_id, const std::string& date, Millis generated_at, double sla_pct,
                     const std::string& report_json);

/// The stored report JSON text of a run, or nullopt when none was stored.
std::optional<std::string> SlaReportGet(Db& db, std::int64_t run_id);

/// The headline of a stored report, for listings that must not parse every report.
struct SlaReportSummary {
  std::int64_t run_id = 0;
  std::string date;
  Millis generated_at = 0;
  double sla_pct = 0;
};

/// The stored headline of a run's report, or nullopt when none was stored.
std::optional<SlaReportSummary> SlaReportGetSummary(Db& db, std::int64_t run_id);

}  // namespace daybreak::store
