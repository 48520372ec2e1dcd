#pragma once
// What an SLA report reads from a ledger, behind one small interface so sla-report builds the
// same report (app/report.hpp) from the SQLite file or from the PostgreSQL ledger dispatch writes
// with `[database] url` (store/pg_reports.hpp). The SQLite implementation is the query module
// of store/reports.hpp and store/runs.hpp; PostgreSQL has its own SQL where the dialects differ.
//
// Not every ledger keeps everything: a PostgreSQL ledger not yet migrated to
// sql/postgresql/005 holds no stored run reports. keeps_stored_reports() says so, and so would
// keeps_status_callbacks() of a ledger no status callback reaches (both of today's ledgers keep
// them); the report then shows those figures as absent (null, with a note) instead of as zeros.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "domain/sla.hpp"
#include "store/db.hpp"
#include "store/monitoring.hpp"
#include "store/reports.hpp"
#include "store/runs.hpp"

namespace daybreak::store {

/// A reported run's headline, as `sla-report trend` counts it.
struct RunHeadline {
  std::int64_t run_id = 0;
  std::string date;
  std::int64_t eligible = 0;
  std::int64_t on_time = 0;
  double sla_pct = 100;
  /// False for a closed run with no stored report that a ledger counted now instead (PostgreSQL:
  /// runs closed before dispatch stored reports there); SQLite lists only stored ones.
  bool stored = true;
};

class ReportLedger {
 public:
  virtual ~ReportLedger() = default;
  /// "sqlite" or "postgresql": the report's `ledger` field.
  [[nodiscard]] virtual const char* engine() const = 0;
  /// False where the ledger keeps no stored reports (stored_summary() is then always nullopt).
  [[nodiscard]] virtual bool keeps_stored_reports() const = 0;
  /// False where no status callback reaches the ledger: delivered/read/unknown are not known.
  [[nodiscard]] virtual bool keeps_status_callbacks() const = 0;

  virtual std::optional<Run> run(std::int64_t run_id) = 0;
  /// The runs of delivery day `date`, in slot order.
  virtual std::vector<Run> runs_for_date(const std::string& date) = 0;
  /// The `limit` most recent runs, newest slot first.
  virtual std::vector<Run> runs_recent(int limit) = 0;
  /// "morning" or "urgent" (daybreak send-now).
  virtual std::string run_kind(std::int64_t run_id) = 0;
  /// As store::DeliveryOutcomesForRun.
  virtual std::vector<DeliveryOutcome> outcomes(std::int64_t run_id, std::map<std::string, std::int64_t>* by_source) = 0;
  /// As store::AttemptFailureReasonsForRun: most frequent first, then by code; the example is
  /// the most recent failure's.
  virtual std::vector<FailureReason> failure_reasons(std::int64_t run_id) = 0;
  /// As store::AttemptCountForRun.
  virtual std::int64_t attempt_count(std::int64_t run_id) = 0;
  /// As store::ProviderFiguresForRun.
  virtual ProviderFigures provider_figures(std::int64_t run_id) = 0;
  /// The stored report's headline, nullopt when none was stored (or none are kept).
  virtual std::optional<SlaReportSummary> stored_summary(std::int64_t run_id) = 0;
  /// The stored report's JSON text, nullopt when none was stored (or none are kept).
  virtual std::optional<std::string> stored_report(std::int64_t run_id) = 0;

  // ---- the trend ----
  /// (run id, date, state) of every run of the delivery days [from, to], by date then slot.
  virtual std::vector<std::tuple<std::int64_t, std::string, std::string>> run_ids_between(const std::string& from,
                                                                                           const std::string& to) = 0;
  /// The reported runs of [from, to], by date then slot: the stored reports (the figures as
  /// they were when each run closed). PostgreSQL adds every closed run without one, its figures
  /// counted from the ledger now (`stored` false); so does it for all of them on a ledger that
  /// keeps no reports.
  virtual std::vector<RunHeadline> run_headlines_between(const std::string& from, const std::string& to) = 0;
  /// As store::DeliveryTruthByDate; empty where statuses are not kept.
  virtual std::map<std::string, DeliveryTruth> truth_by_date(const std::string& from, const std::string& to, Millis now) = 0;

  // ---- the live view (sla-report --watch: engine::snapshot_from_ledger) ----
  /// As store::RunListActive: planned or running runs whose window opens by `to` and whose
  /// deadline is not before `from`, by slot.
  virtual std::vector<Run> runs_active(Millis from, Millis to) = 0;
  /// As store::DeliveryForEachInRun and store::AttemptForEachInRun (attempt order), streamed.
  virtual void each_delivery_brief(std::int64_t run_id, const std::function<void(const DeliveryBrief&)>& fn) = 0;
  virtual void each_attempt_brief(std::int64_t run_id, const std::function<void(const AttemptBrief&)>& fn) = 0;
  /// As store::DeliveryTruthForRun.
  virtual DeliveryTruth truth_for_run(std::int64_t run_id, Millis now) = 0;
};

/// The SQLite ledger through the store's own query functions. `db` is used as it is (no
/// transaction of its own: the caller's snapshot or write transaction applies).
class SqliteReportLedger final : public ReportLedger {
 public:
  explicit SqliteReportLedger(Db& db) : db_(db) {}
  [[nodiscard]] const char* engine() const override { return "sqlite"; }
  [[nodiscard]] bool keeps_stored_reports() const override { return true; }
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
  std::optional<std::string> stored_report(std::int64_t run_id) override { return SlaReportGet(db_, run_id); }
  std::vector<std::tuple<std::int64_t, std::string, std::string>> run_ids_between(const std::string& from,
                                                                                   const std::string& to) override;
  std::vector<RunHeadline> run_headlines_between(const std::string& from, const std::string& to) override;
  std::map<std::string, DeliveryTruth> truth_by_date(const std::string& from, const std::string& to, Millis now) override;
  std::vector<Run> runs_active(Millis from, Millis to) override { return RunListActive(db_, from, to); }
  void each_delivery_brief(std::int64_t run_id, const std::function<void(const DeliveryBrief&)>& fn) override {
    DeliveryForEachInRun(db_, run_id, fn);
  }
  void each_attempt_brief(std::int64_t run_id, const std::function<void(const AttemptBrief&)>& fn) override {
    AttemptForEachInRun(db_, run_id, fn);
  }
  DeliveryTruth truth_for_run(std::int64_t run_id, Millis now) override { return DeliveryTruthForRun(db_, run_id, now); }
  Db& db() { return db_; }

 private:
  Db& db_;
};

}  // namespace daybreak::store
