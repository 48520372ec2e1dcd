#include "store/report_ledger.hpp"

#include <nlohmann/json.hpp>

#include "store/monitoring.hpp"

namespace daybreak::store {

std::optional<Run> SqliteReportLedger::run(std::int64_t run_id) { return RunGet(db_, run_id); }

std::vector<Run> SqliteReportLedger::runs_for_date(const std::string& date) { return RunListForDate(db_, date); }

std::vector<Run> SqliteReportLedger::runs_recent(int limit) { return RunListRecent(db_, limit); }

std::string SqliteReportLedger::run_kind(std::int64_t run_id) {
  // A ledger not migrated to sql/014 has no kinds: every run was a morning run.
  try {
    return RunKindGet(db_, run_id);
  } catch (const StoreError&) {
    return "morning";
  }
}

std::vector<DeliveryOutcome> SqliteReportLedger::outcomes(std::int64_t run_id, std::map<std::string, std::int64_t>* by_source) {
  return DeliveryOutcomesForRun(db_, run_id, by_source);
}

std::vector<FailureReason> SqliteReportLedger::failure_reasons(std::int64_t run_id) {
  return AttemptFailureReasonsForRun(db_, run_id);
}

std::int64_t SqliteReportLedger::attempt_count(std::int64_t run_id) { return AttemptCountForRun(db_, run_id); }

ProviderFigures SqliteReportLedger::provider_figures(std::int64_t run_id) { return ProviderFiguresForRun(db_, run_id); }

std::optional<SlaReportSummary> SqliteReportLedger::stored_summary(std::int64_t run_id) {
  return SlaReportGetSummary(db_, run_id);
}

std::vector<std::tuple<std::int64_t, std::string, std::string>> SqliteReportLedger::run_ids_between(const std::string& from,
                                                                                                     const std::string& to) {
  return RunIdsBetween(db_, from, to);
}

std::vector<RunHeadline> SqliteReportLedger::run_headlines_between(const std::string& from, const std::string& to) {
  std::vector<RunHeadline> out;
  for (const auto& r : SlaReportListBetween(db_, from, to)) {
    // An unreadable stored report still counts as a reported run, with no deliveries.
    const nlohmann::json rep = nlohmann::json::parse(r.report, nullptr, false);
    RunHeadline h;
    h.run_id = r.run_id;
    h.date = r.date;
    h.eligible = rep.is_object() ? rep.value("eligible", std::int64_t{0}) : 0;
    h.on_time = rep.is_object() ? rep.value("on_time", std::int64_t{0}) : 0;
    h.sla_pct = r.sla_pct;
    out.push_back(std::move(h));
  }
  return out;
}

std::map<std::string, DeliveryTruth> SqliteReportLedger::truth_by_date(const std::string& from, const std::string& to, Millis now) {
  return DeliveryTruthByDate(db_, from, to, now);
}

}  // namespace daybreak::store
