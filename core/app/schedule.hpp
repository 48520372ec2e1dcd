#pragma once
// The schedule as deployed (core/domain/schedule.hpp has the pure rules): which daily jobs
// there are, the cron guard's decision (`daybreak schedule fire JOB`), what is installed on this
// host (systemd timers, crontabs) and whether it fires at the configured time, the plan_missing
// conditions, and dispatch's dead-man's switch.
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "engine/alerts.hpp"
#include "store/db.hpp"

namespace spdlog {
class logger;
}

namespace daybreak {

/// A daily job of the schedule.
struct ScheduledJob {
  std::string name;     ///< nightly | dispatch
  int minutes = 0;      ///< local time in schedule.timezone
  std::string timer;    ///< its systemd timer unit
};
std::vector<ScheduledJob> scheduled_jobs(const Config& cfg);
/// The job called `name`; throws UsageError naming the known ones.
ScheduledJob scheduled_job(const Config& cfg, const std::string& name);

/// What the cron guard decided at `now`.
struct FireDecision {
  bool fire = false;
  std::optional<Millis> scheduled_for;  ///< the instant it fires for (when fire)
  std::optional<Millis> last_fired_for;
  Millis next_at = 0;                   ///< the next scheduled instant after now
};
/// Fires `job` when it is due (daily_job_due) and no other tick recorded it first.
FireDecision fire_scheduled_job(store::Db& db, const Config& cfg, const std::string& job, Millis now);

/// The host's time zone as cron and systemd see it: $TZ, else /etc/localtime's zone, else UTC.
std::string host_timezone();

/// One row of the installed-schedule check (doctor prints them).
struct ScheduleRow {
  std::string name;
  bool ok = false;
  std::string message;
};
/// Inspects the installed systemd timers and crontabs (paths from schedule.systemd_dirs and
/// schedule.crontabs) and says, per job, whether what is installed fires at the configured
/// time in the configured zone on this host. `host_tz` is the zone cron and systemd use.
/// Returns a JSON description (for status) and fills `rows`.
nlohmann::json inspect_installed_schedule(const Config& cfg, Millis now, const std::string& host_tz,
                                          std::vector<ScheduleRow>& rows);

/// The plan_missing rule could not be judged: the PostgreSQL ledger did not answer (what).
struct PlanMissingUnknown : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// The plan_missing conditions at `now`: the next delivery day has no run after
/// schedule.plan_deadline on the day before (subject date:D), and again after
/// schedule.plan_recheck on the day itself (subject date:D@HH:MM). With [database] url the runs
/// dispatch sends are in the PostgreSQL ledger, so that is where the day's (morning) runs are
/// looked for (store::pg_runs_of_day): a day another host planned and published is not missing,
/// even on a host whose SQLite file has no planning data (a dispatch-only host), and a day this
/// host planned but never published is. Throws PlanMissingUnknown when PostgreSQL cannot be
/// asked (the caller leaves the rule's alerts as they are); it is not asked before the deadline.
std::vector<engine::AlertCondition> plan_missing_conditions(store::Db& db, const Config& cfg, Millis now);

/// Dispatch's dead-man's switch. From max(`lookahead_ms`, schedule.deadman_lead_minutes) before
/// the default slot until its deadline plus the drain and eligible advisors of that
/// day have no delivery, it assigns fallback content and plans the missing advisors itself,
/// raises night_missed, and returns what it did ({"checked", "date", "eligible", "planned_before",
/// "missing", "assigned", "inserted", "ms", ...}); {"checked": false} outside that time.
nlohmann::json morning_deadman(store::Db& db, const Config& cfg, Millis now, Millis lookahead_ms, spdlog::logger& log);

/// The dead-man's switch of a dispatch on PostgreSQL ([database] url), in the same time as
/// morning_deadman. Under the day lock (store::pg_lock_day): when the day has a run in the
/// PostgreSQL ledger it does nothing ("action": "none": another host, or the night, published
/// it); else, when this host's SQLite file `db` has planning data for the day, it runs
/// morning_deadman on it (assigns and plans what is missing, night_missed) and publishes the day
/// (app/publish.hpp) before the lock is released, so of two hosts exactly one plans and the
/// other finds the runs. A day already planned in the file but never published (the night's
/// publish failed) is published without planning again, and night_missed is raised for it too.
/// "action": none | lock_busy | no_planning_data | published | planned_and_published.
nlohmann::json morning_deadman_pg(store::Db& db, const Config& cfg, Millis now, Millis lookahead_ms, spdlog::logger& log);

}  // namespace daybreak
