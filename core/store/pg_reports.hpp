#pragma once
// sla-report's reads from the PostgreSQL ledger ([database] url): the ReportLedger of
// store/report_ledger.hpp over libpq, so the report is the one app/report.hpp builds from SQLite.
// Read-only: one connection, one READ ONLY REPEATABLE READ transaction for the whole report
// (every query sees the same snapshot while dispatch commits; `sla-report --watch` takes a new
// one each frame with refresh()), never migrating the schema. A dispatch's writer builds the
// report of a run it closed through the same class on its own connection, inside its
// transaction (PgReportLedger(PgConn&)), and stores it with pg_run_report_upsert.
//
// The delivery statuses are there: daybreak-callbacks and `daybreak ingest` with the url apply
// the status callbacks to these deliveries (store/pg_status.hpp) by SQLite's rules, so the
// delivered/read/unknown/failed-after-accept figures are counted as on SQLite
// (keeps_status_callbacks() is true). The stored run reports are in `run_reports`
// (sql/postgresql/005, SQLite's sla_reports): one per run a dispatch on PostgreSQL closed.
// A run closed before that migration has none (its report is computed from the deliveries), and
// a ledger not yet migrated to 005 keeps none (keeps_stored_reports() is false: said, not
// zeroed). Run kinds are read there (sql/postgresql/006), as on SQLite.
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "store/monitoring.hpp"
#include "store/pg.hpp"
#include "store/report_ledger.hpp"

namespace daybreak::store {

// ---- the stored run reports (sql/postgresql/005 run_reports), on any connection ----
// Plain functions on a PgConn, each one statement, in the caller's transaction if any: for
// sla-report (through PgReportLedger), `daybreak export reports` and any other reader of the
// console's history.

/// True when the ledger has the run_reports table (migrated to sql/postgresql/005).
bool pg_keeps_run_reports(PgConn& c);
/// Stores the report of `run_id`, closed at `closed_at` (runs.finished_at), or replaces the row
/// of an earlier close: one row per run, as SlaReportUpsert on SQLite. `written_by` names the
/// dispatch that closed it.
void pg_run_report_upsert(PgConn& c, std::int64_t run_id, const std::string& date, Millis closed_at, Millis generated_at,
                          double sla_pct, const std::string& report_json, const std::string& written_by);
/// The stored report JSON text of a run, or nullopt when none was stored (SlaReportGet).
std::optional<std::string> pg_run_report_get(PgConn& c, std::int64_t run_id);
/// The stored headline of a run's report, or nullopt (SlaReportGetSummary).
std::optional<SlaReportSummary> pg_run_report_summary(PgConn& c, std::int64_t run_id);
/// (run id, SLA %) of the stored report of the most recently closed run (by slot) of the whole
/// ledger, whichever host closed it (SlaReportLatestClosed on SQLite): the metrics textfile's
/// daybreak_last_run_sla_ratio. Nullopt when no closed run has a report.
std::optional<std::pair<std::int64_t, double>> pg_run_report_latest_closed(PgConn& c);
/// The stored reports of delivery days in [from_date, to_date] ("YYYY-MM-DD") with their run's
/// slot, by date, then slot, then run id (SlaReportListBetween on SQLite; the same struct).
/// Empty on a ledger without run_reports.
std::vector<StoredReport> pg_run_reports_between(PgConn& c, const std::string& from_date, const std::string& to_date);

class PgReportLedger final : public ReportLedger {
 public:
  /// Connects to `url` and opens the read snapshot; throws StoreError when it cannot.
  explicit PgReportLedger(const std::string& url);
  /// Reads on `conn` as it is, in the caller's transaction (a dispatch's writer building the
  /// report of a run it closes); `conn` must outlive this object. refresh() is not for this one.
  explicit PgReportLedger(PgConn& conn);
  ~PgReportLedger() override;
  PgReportLedger(const PgReportLedger&) = delete;
  PgReportLedger& operator=(const PgReportLedger&) = delete;

  [[nodiscard]] const char* engine() const override { return "postgresql"; }
  /// True once the ledger is migrated to sql/postgresql/005 (run_reports exists).
  [[nodiscard]] bool keeps_stored_reports() const override { return keeps_reports_; }
  [[nodiscard]] bool keeps_status_callbacks() const override { return true; }
  std::optional<Run> run(std::int64_t run_id) override;
  std::vector<Run> runs_for_date(const std::string& date) override;
  std::vector<Run> runs_recent(int limit) override;
  std::string run_kind(std::int64_t run_id) override;
  std::vector<DeliveryOutcome> outcomes(std::int64_t run_id, std::map<std::string, std::int64_t>* by_source) override;
  std::vector<FailureReason> failure_reasons(std::int64_t run_id) override;
  std::int64_t attempt_count(std::int64_t run_id) override;
  ProviderFigures provider_figures(std::int64_t run_id) override;
  std::optional<SlaReportSummary> stored_summary(std::int64_t run_id) override;
  std::optional<std::string> stored_report(std::int64_t run_id) override;
  std::vector<std::tuple<std::int64_t, std::string, std::string>> run_ids_between(const std::string& from,
                                                                                   const std::string& to) override;
  /// The stored reports of [from, to], and every closed run of it without one counted from its
  /// deliveries now (`stored` false), by date, slot and run id.
  std::vector<RunHeadline> run_headlines_between(const std::string& from, const std::string& to) override;
  /// As store::DeliveryTruthByDate, with the same SQL aggregates (DeliveryTruthAggregatesSql).
  std::map<std::string, DeliveryTruth> truth_by_date(const std::string& from, const std::string& to, Millis now) override;
  std::vector<Run> runs_active(Millis from, Millis to) override;
  void each_delivery_brief(std::int64_t run_id, const std::function<void(const DeliveryBrief&)>& fn) override;
  void each_attempt_brief(std::int64_t run_id, const std::function<void(const AttemptBrief&)>& fn) override;
  /// pg_delivery_truth_for_run, in this snapshot.
  DeliveryTruth truth_for_run(std::int64_t run_id, Millis now) override;

  /// Ends the read snapshot and opens a new one (the live view reads one per frame, as its
  /// SQLite twin opens one read transaction per frame). A lost connection is reconnected.
  void refresh();
  /// The connection, in the current snapshot (the console's other reads of a frame use it).
  PgConn& conn() { return *c_; }

 private:
  std::unique_ptr<PgConn> owned_;  ///< null when reading on a borrowed connection
  PgConn* c_ = nullptr;
  bool keeps_reports_ = false;
};

}  // namespace daybreak::store
