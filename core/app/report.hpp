#pragma once
// Run and date SLA reports (DESIGN.md §1 "SLA %", §2 step 7): built from the delivery ledger,
// stored in `sla_reports` when a run closes, and printed by sla-report as JSON or text.
// Every figure comes from domain/sla.hpp, so dispatch's live numbers and the report agree.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"
#include "store/runs.hpp"

namespace daybreak {

/// The SLA target of every run, in percent (DESIGN.md §1).
inline constexpr double kSlaTargetPct = 99.0;
/// Live success % below which a running run is at risk; the same threshold dispatch alerts on.
inline constexpr double kLiveAlertPct = 97.0;
/// Decided deliveries a live figure needs before it can call a run at risk: with fewer, one
/// early dead letter would read as a 0% morning.
inline constexpr std::size_t kLiveMinSample = 20;
/// How long after the deadline an unclosed run's SLA counts as decided: dispatch commits an
/// acceptance that arrived before the deadline within tens of milliseconds, so a minute is
/// ample, and a run whose dispatch died is still judged instead of staying "in progress" forever.
inline constexpr Millis kDecidedGraceMs = 60'000;
/// How many failure reasons a report lists: enough to see the pattern, short enough to read.
inline constexpr std::size_t kTopFailureReasons = 10;

/// The report of one run at `now`, computed from the ledger: one JSON object whose fields are
/// listed in man/sla-report.1 (run_id, date, slot_at, sla_pct, met, verdict, counts, lag
/// percentiles, by_tier/by_channel/by_sender, top_failure_reasons, attempts, …).
nlohmann::json build_run_report(store::Db& db, const store::Run& run, Millis now);

/// The report of every run of delivery day `date` at `now`: totals, percentiles and breakdowns
/// over all deliveries of the date (not averages of runs), plus a `runs` array with each run's
/// headline. `met` is true only when every run met the target, because the SLA is per run.
/// Throws CheckFailed when the date has no runs.
nlohmann::json build_date_report(store::Db& db, const std::string& date, Millis now);

/// Builds the run's report and stores it in `sla_reports` (replacing an earlier one). Dispatch
/// calls this right after RunClose, inside or outside its write transaction (it opens none);
/// the run row is re-read so a stale `run` cannot store a closed run as still running.
void store_run_report(store::Db& db, const store::Run& run, Millis now);

/// "met", "missed", "in_progress" or "at_risk" (see man/sla-report.1): the one judgement the
/// exit code and the text headline are taken from.
std::string run_verdict(bool decided, double sla_pct, double live_pct, std::size_t live_sample);

/// The sla-report exit code for a report (run or date): 1 when a verdict is missed or at_risk, else 0.
int report_exit_code(const nlohmann::json& report);

/// A compact human rendering of a run or date report, from its JSON so a stored report prints
/// exactly like a fresh one. Tiers are listed in `tier_order` (unknown tiers after, by name);
/// instants are shown in zone `tz` ("" for UTC).
std::string format_report_text(const nlohmann::json& report, const std::vector<std::string>& tier_order,
                               std::string_view tz);

}  // namespace daybreak
