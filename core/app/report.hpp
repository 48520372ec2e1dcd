#pragma once
// Run and date SLA reports: built from the delivery ledger,
// stored in `sla_reports` when a run closes, and printed by sla-report as JSON or text.
// Every figure comes from domain/sla.hpp, so dispatch's live numbers and the report agree.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "domain/clock.hpp"
#include "domain/types.hpp"
#include "store/db.hpp"
#include "store/report_ledger.hpp"
#include "store/runs.hpp"

namespace daybreak {

/// The SLA target of every run, in percent.
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

/// A run's kind (sql/014): "morning", or "urgent" for a run daybreak send-now wrote; "morning" on
/// a ledger not migrated that far (sla-report reads older copies read-only).
std::string run_kind_of(store::Db& db, std::int64_t run_id);

/// The report of one run at `now`, computed from the ledger: one JSON object whose fields are
/// listed in man/sla-report.1 (run_id, date, slot_at, sla_pct, met, verdict, counts, lag
/// percentiles, by_tier/by_channel/by_sender, top_failure_reasons, attempts, …).
nlohmann::json build_run_report(store::Db& db, const store::Run& run, Millis now);
/// The same from any ledger (store/report_ledger.hpp): the SQLite file or, with `[database] url`,
/// the PostgreSQL ledger. Every report carries `ledger` ("sqlite" or "postgresql"); what the
/// ledger does not hold is null and explained in `notes` (man/sla-report.1).
nlohmann::json build_run_report(store::ReportLedger& ledger, const store::Run& run, Millis now);

/// The report of every run of delivery day `date` at `now`: totals, percentiles and breakdowns
/// over all deliveries of the date (not averages of runs), plus a `runs` array with each run's
/// headline. `met` is true only when every run met the target, because the SLA is per run.
/// Throws CheckFailed when the date has no runs.
nlohmann::json build_date_report(store::Db& db, const std::string& date, Millis now);
nlohmann::json build_date_report(store::ReportLedger& ledger, const std::string& date, Millis now);

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


// ---- Monitoring views: trend, capacity, HTML ----

/// The SLA trend of the `days` delivery days ending at `to_date` (both "YYYY-MM-DD"), from the
/// stored reports of closed runs: one entry per day (runs, reported runs, eligible, on time,
/// SLA % over the day's deliveries, met = every reported run met the target, the worst run's
/// SLA %) and a summary (days with runs, days met/missed, runs without a stored report, overall
/// and mean daily SLA %, the worst day). Days without runs are listed with runs = 0.
nlohmann::json build_trend(store::Db& db, const std::string& to_date, int days);
/// The same from any ledger. On PostgreSQL a closed run without a stored report (closed before
/// reports were stored there, or every run where the ledger keeps none) counts as reported, its
/// figures counted from the ledger now, and a note says how many; where no statuses are kept
/// the days carry no delivered/read figures and the summary's are null. `ledger` and `notes` as
/// in a report.
nlohmann::json build_trend(store::ReportLedger& ledger, const std::string& to_date, int days);
/// A text table of a trend, one line per day with runs, and the summary.
std::string format_trend_text(const nlohmann::json& trend);

/// Capacity of the next runs (not closed, window ending within the next two days) from their
/// planned deliveries, or, when nothing is planned, of every opted-in advisor on their first
/// channel as one run; `growth` multiplies the demand, `new_sender_mps` is the rate of a
/// recommended new sender (0: the channel's largest). Senders and window from `cfg`.
nlohmann::json build_capacity_report(store::Db& db, const Config& cfg, Millis now, double growth, double new_sender_mps);
/// Capacity of a hypothetical run: `advisors` deliveries on `channel` over `senders` senders of
/// `mps` msg/s each, in cfg's send window and utilisation. With `messaging_tier` (WhatsApp), the
/// senders form one business portfolio at that tier and every delivery is a unique recipient:
/// the messaging-limit rule (domain/capacity.hpp) is checked too.
nlohmann::json build_capacity_hypothetical(std::int64_t advisors, int senders, double mps, const std::string& channel,
                                           const Config& cfg, double growth, double new_sender_mps,
                                           const std::string& messaging_tier = "");
/// Text rendering of a capacity report; the exit code of `sla-report capacity` is 1 when any
/// run does not fit (the JSON's "feasible").
std::string format_capacity_text(const nlohmann::json& cap);

/// One self-contained HTML page (inline CSS and SVG, no scripts, no network) for a run or date
/// `report`: accepted over time against the plan curve and the deadline (per run in `run_ids`),
/// the dispatch lag distribution, outcomes by tier/channel/sender, top failure reasons, and the
/// SLA trend (`trend`, from build_trend). Instants are shown in zone `tz`.
std::string render_html_report(store::Db& db, const nlohmann::json& report, const std::vector<std::int64_t>& run_ids,
                               const nlohmann::json& trend, std::string_view tz);
/// The same from any ledger.
std::string render_html_report(store::ReportLedger& ledger, const nlohmann::json& report,
                               const std::vector<std::int64_t>& run_ids, const nlohmann::json& trend, std::string_view tz);

}  // namespace daybreak
