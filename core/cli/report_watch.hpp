#pragma once
// `sla-report --watch`: the live terminal view of running runs (a front end over the live
// figures dispatch writes and the report use case).
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>
#include <vector>

#include "config/config.hpp"
#include "domain/clock.hpp"
#include "store/db.hpp"
#include "store/report_ledger.hpp"
#include "store/reports.hpp"
#include "store/runs.hpp"

namespace daybreak {

/// What `sla-report --watch` watches.
struct WatchOptions {
  std::int64_t run_id = 0;  ///< one run; 0 = by date or the active runs
  std::string date;         ///< every run of a delivery day
  bool once = false;        ///< print one frame and exit (tests, scripts)
};
/// Live view of runs, refreshed in place once a second from runs.progress (its "live" figures
/// when dispatch writes them and they are fresh, else recomputed from the ledger). Exits when
/// every watched run is closed, on q, or on SIGINT. `--json`: one NDJSON frame per refresh.
int watch_runs(const std::string& db_path, const Config& cfg, const Clock& clock, bool json, const WatchOptions& o);
/// The same view of the PostgreSQL ledger at `url` ([database] url; read-only, never migrating).
int watch_runs_pg(const std::string& url, const Config& cfg, const Clock& clock, bool json, const WatchOptions& o);

/// The runs a watch shows: one run, a day's runs, or those running now (else the most recent
/// one). CheckFailed when there are none. The web console (`daybreak serve`) shows the same.
std::vector<store::Run> watch_pick_runs(store::Db& db, const WatchOptions& o, Millis now);
/// The same from either ledger's read interface.
std::vector<store::Run> watch_pick_runs(store::ReportLedger& ledger, const WatchOptions& o, Millis now);
/// One run's live figures (engine::run_live_json fields plus "state" and "source"): dispatch's
/// own from a fresh runs.progress when it writes them, else recomputed from the ledger.
/// `truth` gives a run's status-callback figures (default: counted now, store::DeliveryTruthForRun);
/// the console passes a cached one.
nlohmann::json watch_run_live(store::Db& db, const store::Run& run, const Config& cfg, Millis now,
                              const std::function<store::DeliveryTruth(std::int64_t)>& truth = {});
/// The same from either ledger's read interface (`truth` default: ledger.truth_for_run).
nlohmann::json watch_run_live(store::ReportLedger& ledger, const store::Run& run, const Config& cfg, Millis now,
                              const std::function<store::DeliveryTruth(std::int64_t)>& truth = {});

}  // namespace daybreak
