#pragma once
// sla-report's reads from the PostgreSQL ledger ([database] url): the ReportLedger of
// store/report_ledger.hpp over libpq, so the report is the one app/report.hpp builds from SQLite.
// Read-only: one connection, one READ ONLY REPEATABLE READ transaction for the whole report
// (every query sees the same snapshot while dispatch commits; `sla-report --watch` takes a new
// one each frame with refresh()), never migrating the schema.
//
// The delivery statuses are there: daybreak-callbacks and `daybreak ingest` with the url apply
// the status callbacks to these deliveries (store/pg_status.hpp) by SQLite's rules, so the
// delivered/read/unknown/failed-after-accept figures are counted as on SQLite
// (keeps_status_callbacks() is true). What the PostgreSQL ledger does not hold is said, not
// zeroed: no stored run reports (keeps_stored_reports() is false). Run kinds are read there
// (sql/postgresql/006), as on SQLite.
#include <memory>
#include <string>

#include "store/pg.hpp"
#include "store/report_ledger.hpp"

namespace daybreak::store {

class PgReportLedger final : public ReportLedger {
 public:
  /// Connects to `url` and opens the read snapshot; throws StoreError when it cannot.
  explicit PgReportLedger(const std::string& url);
  ~PgReportLedger() override;
  PgReportLedger(const PgReportLedger&) = delete;
  PgReportLedger& operator=(const PgReportLedger&) = delete;

  [[nodiscard]] const char* engine() const override { return "postgresql"; }
  [[nodiscard]] bool keeps_stored_reports() const override { return false; }
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
  std::vector<std::tuple<std::int64_t, std::string, std::string>> run_ids_between(const std::string& from,
                                                                                   const std::string& to) override;
  /// Every closed run of [from, to], counted from its deliveries now (no reports are stored here).
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
  std::unique_ptr<PgConn> c_;
};

}  // namespace daybreak::store
