#include "app/schedule.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/errors.hpp"
#include "app/plan.hpp"
#include "app/publish.hpp"
#include "domain/schedule.hpp"
#include "domain/time.hpp"
#include "store/pg_ledger.hpp"
#include "store/schedule.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Millis must(const Result<Millis>& r) {
  if (!r) throw ConfigError(r.error().message);
  return *r;
}

/// "21:30 Asia/Kolkata = 16:00 UTC" style: an instant in the schedule's zone and the host's.
std::string both_zones(Millis t, const std::string& sched_tz, const std::string& host_tz) {
  std::string s = format_instant(t, sched_tz);
  if (host_tz != sched_tz) s += " (" + format_instant(t, host_tz) + " on this host)";
  return s;
}

/// The OnCalendar= values of `unit` after its drop-ins (an empty OnCalendar= resets the list).
std::vector<std::string> calendars_of(const std::vector<std::string>& dirs, const std::string& unit, std::string& unit_path) {
  std::vector<std::string> out;
  auto take = [&out](const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      auto p = line.find_first_not_of(" \t");
      if (p == std::string::npos || line.compare(p, 11, "OnCalendar=") != 0) continue;
      std::string v = line.substr(p + 11);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.pop_back();
      if (v.empty()) {
        out.clear();
      } else {
        out.push_back(v);
      }
    }
  };
  for (const auto& d : dirs) {
    fs::path p = fs::path(d) / unit;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      unit_path = p.string();
      take(read_file(p));
      break;
    }
  }
  if (unit_path.empty()) return out;
  // Drop-ins, in name order across the directories (systemd.unit(5)).
  std::vector<fs::path> dropins;
  for (const auto& d : dirs) {
    fs::path dd = fs::path(d) / (unit + ".d");
    std::error_code ec;
    if (!fs::is_directory(dd, ec)) continue;
    for (const auto& e : fs::directory_iterator(dd, ec)) {
      if (e.path().extension() == ".conf") dropins.push_back(e.path());
    }
  }
  std::sort(dropins.begin(), dropins.end(), [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  for (const auto& p : dropins) take(read_file(p));
  return out;
}

bool timer_enabled(const std::vector<std::string>& dirs, const std::string& unit) {
  for (const auto& d : dirs) {
    std::error_code ec;
    if (fs::exists(fs::path(d) / "timers.target.wants" / unit, ec)) return true;
  }
  return false;
}

/// The first instant (within the next year, sampled monthly) where a daily `minutes`:`seconds`
/// in `zone` differs from the schedule's `expected` minutes in `sched_tz` by a minute or more;
/// nullopt when they agree at every sample (DST changes of either zone included).
std::optional<std::pair<Millis, Millis>> first_disagreement(Millis now, int minutes, int seconds, const std::string& zone,
                                                           int expected, const std::string& sched_tz) {
  for (int k = 0; k <= 12; ++k) {
    Millis t = now + static_cast<Millis>(k) * 30 * 86'400'000LL;
    Millis want = must(next_daily_after(t, expected, sched_tz));
    // The installed instant nearest the expected one.
    Millis got = must(next_daily_after(want - 12 * 3'600'000LL, minutes, zone)) + seconds * 1000LL;
    if (std::llabs(got - want) >= 60'000) return std::make_pair(want, got);
  }
  return std::nullopt;
}

bool is_job_command(const std::string& job, const std::string& command) {
  if (job == "nightly") return command.find("daybreak-nightly") != std::string::npos;
  return command.find("-- dispatch") != std::string::npos || command.rfind("dispatch", 0) == 0;
}

}  // namespace

std::vector<ScheduledJob> scheduled_jobs(const Config& cfg) {
  return {{"nightly", cfg.schedule.nightly_minutes, "daybreak-nightly.timer"},
          {"dispatch", cfg.schedule.dispatch_minutes, "daybreak-dispatch.timer"}};
}

ScheduledJob scheduled_job(const Config& cfg, const std::string& name) {
  for (auto& j : scheduled_jobs(cfg)) {
    if (j.name == name) return j;
  }
  throw UsageError("unknown scheduled job \"" + name + "\" (known: nightly, dispatch)");
}

FireDecision fire_scheduled_job(store::Db& db, const Config& cfg, const std::string& job_name, Millis now) {
  const ScheduledJob job = scheduled_job(cfg, job_name);
  FireDecision d;
  d.last_fired_for = store::ScheduleLastFired(db, job.name);
  d.next_at = must(next_daily_after(now, job.minutes, cfg.schedule.timezone));
  auto due = daily_job_due(now, job.minutes, cfg.schedule.timezone, d.last_fired_for, cfg.schedule.catch_up_ms);
  if (!due) return d;
  d.fire = store::ScheduleTryFire(db, job.name, *due, now);
  if (d.fire) d.scheduled_for = due;
  return d;
}

std::string host_timezone() {
  if (const char* tz = std::getenv("TZ"); tz && *tz) {
    std::string z = tz;
    if (z[0] == ':') z.erase(0, 1);
    return z;
  }
  std::error_code ec;
  fs::path target = fs::read_symlink("/etc/localtime", ec);
  if (!ec) {
    std::string s = target.string();
    auto p = s.find("zoneinfo/");
    if (p != std::string::npos) return s.substr(p + 9);
  }
  std::ifstream tzfile("/etc/timezone");
  std::string z;
  if (tzfile && std::getline(tzfile, z) && !z.empty()) return z;
  return "UTC";
}

json inspect_installed_schedule(const Config& cfg, Millis now, const std::string& host_tz_in, std::vector<ScheduleRow>& rows) {
  const auto& sc = cfg.schedule;
  const std::string host_tz = is_known_timezone(host_tz_in) ? host_tz_in : "UTC";
  json jobs = json::array();
  // The crontabs once: /etc/cron.d files carry a user field, user crontabs do not.
  struct CronFile {
    std::string path;
    std::vector<CrontabEntry> entries;
    bool sets_cron_tz = false;
  };
  std::vector<CronFile> crons;
  for (const auto& p : sc.crontabs) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    std::string text = read_file(p);
    bool with_user = p.rfind("/etc/cron.d/", 0) == 0 || p == "/etc/crontab";
    crons.push_back({p, parse_crontab(text, with_user), text.find("CRON_TZ=") != std::string::npos});
  }
  for (const auto& job : scheduled_jobs(cfg)) {
    const Millis next = must(next_daily_after(now, job.minutes, sc.timezone));
    json sources = json::array();
    std::vector<std::string> problems, fine;
    // systemd
    std::string unit_path;
    auto cals = calendars_of(sc.systemd_dirs, job.timer, unit_path);
    bool enabled = !unit_path.empty() && timer_enabled(sc.systemd_dirs, job.timer);
    if (!unit_path.empty()) {
      json src = {{"kind", "systemd"}, {"unit", job.timer}, {"path", unit_path}, {"enabled", enabled}, {"calendars", cals}};
      if (enabled) {
        if (cals.empty()) problems.push_back(job.timer + " has no OnCalendar=");
        for (const auto& c : cals) {
          auto cal = parse_daily_calendar(c);
          if (!cal) {
            problems.push_back(job.timer + ": OnCalendar=" + c + ": " + cal.error().message);
            continue;
          }
          const std::string zone = cal->zone.empty() ? host_tz : cal->zone;
          if (auto bad = first_disagreement(now, cal->minutes, cal->seconds, zone, job.minutes, sc.timezone)) {
            problems.push_back(job.timer + ": OnCalendar=" + c + " fires at " + both_zones(bad->second, sc.timezone, host_tz) +
                               ", not at " + format_minutes(job.minutes) + " " + sc.timezone +
                               (cal->zone.empty() ? " (no zone in the calendar: the host's " + host_tz + " applies)" : ""));
          } else {
            fine.push_back(job.timer + " (OnCalendar=" + c + ")");
          }
        }
      }
      sources.push_back(src);
    }
    // cron
    for (const auto& cf : crons) {
      for (const auto& e : cf.entries) {
        if (!is_job_command(job.name, e.command)) continue;
        const bool guarded = e.command.find("daybreak-at") != std::string::npos;
        json src = {{"kind", "cron"}, {"path", cf.path}, {"command", e.command}, {"via_daybreak_at", guarded}};
        const std::string line = e.minute + " " + e.hour + " " + e.dom + " " + e.month + " " + e.dow + " " + e.command;
        if (guarded) {
          if (e.minute == "*" && e.hour == "*") {
            fine.push_back(cf.path + " (every minute through daybreak-at, decided from [schedule])");
          } else {
            problems.push_back(cf.path + ": \"" + line + "\" runs daybreak-at only at some minutes; it must run every minute (* * * * *)");
          }
        } else if (e.daily_minutes) {
          // Debian's cron reads the fields in the host's zone: it ignores CRON_TZ.
          if (auto bad = first_disagreement(now, *e.daily_minutes, 0, host_tz, job.minutes, sc.timezone)) {
            problems.push_back(cf.path + ": \"" + line + "\" fires at " + both_zones(bad->second, sc.timezone, host_tz) + ", not at " +
                               format_minutes(job.minutes) + " " + sc.timezone + " (cron reads it in the host's zone " + host_tz +
                               (cf.sets_cron_tz ? "; Debian's cron ignores CRON_TZ" : "") +
                               "); install the shipped crontab, whose entries go through daybreak-at");
          } else {
            fine.push_back(cf.path + " (" + line + ", the host's zone " + host_tz + ")");
          }
        } else {
          problems.push_back(cf.path + ": \"" + line + "\" is not a daily HH:MM entry nor guarded by daybreak-at");
        }
        sources.push_back(src);
      }
    }
    ScheduleRow row{"schedule:" + job.name, false, ""};
    const std::string want = format_minutes(job.minutes) + " " + sc.timezone + ", next " + both_zones(next, sc.timezone, host_tz);
    if (!problems.empty()) {
      std::string m;
      for (const auto& p : problems) m += (m.empty() ? "" : "; ") + p;
      row.message = m + " (wanted " + want + ")";
    } else if (fine.empty()) {
      row.message = "nothing installed starts it (no enabled " + job.timer + " in " + join_list(sc.systemd_dirs, ',') +
                    ", no entry in " + join_list(sc.crontabs, ',') + "): enable the systemd timers or install the crontab (README, Scheduling)";
    } else {
      row.ok = true;
      std::string m;
      for (const auto& f : fine) m += (m.empty() ? "" : ", ") + f;
      row.message = want + ": " + m + (fine.size() > 1 ? " (more than one starter: each starts it; a second nightly changes nothing and the run lease keeps dispatches apart, but keep one)" : "");
    }
    rows.push_back(row);
    jobs.push_back({{"job", job.name},
                    {"at", format_minutes(job.minutes)},
                    {"next", format_instant(next, sc.timezone)},
                    {"next_host", format_instant(next, host_tz)},
                    {"ok", row.ok},
                    {"message", row.message},
                    {"sources", sources}});
  }
  return {{"timezone", sc.timezone}, {"host_timezone", host_tz}, {"jobs", jobs}};
}

std::vector<engine::AlertCondition> plan_missing_conditions(store::Db& db, const Config& cfg, Millis now) {
  std::vector<engine::AlertCondition> out;
  const auto& sc = cfg.schedule;
  const std::string day = default_delivery_date(cfg, now);
  auto d = parse_date(day);
  if (!d) return out;
  const Millis deadline = must(slot_instant(add_days(*d, -1), sc.plan_deadline_minutes, sc.timezone));
  const Millis recheck = must(slot_instant(*d, sc.plan_recheck_minutes, sc.timezone));
  if (now < deadline) return out;
  std::string what = day + " has no delivery plan";
  std::string fix = "; run daybreak-nightly (or assign-fallback --date " + day + " and plan-deliveries --date " + day +
                    "); otherwise dispatch plans it itself at " + format_minutes(sc.dispatch_minutes) + " " + sc.timezone;
  if (cfg.database_url.empty()) {
    if (store::DayHasRuns(db, day)) return out;
  } else {
    // Dispatch sends what is in PostgreSQL: the day is planned when its runs are published there,
    // by this host or another (this host may plan nothing: a dispatch-only host's file has no
    // planning data). Asked on a connection of its own, once a minute from `alerts check`.
    std::int64_t published = 0;
    try {
      store::PgConn c(cfg.database_url);
      published = store::pg_runs_of_day(c, day);
    } catch (const std::exception& e) {
      throw PlanMissingUnknown("plan_missing not evaluated: the PostgreSQL ledger at " + store::pg_url_for_display(cfg.database_url) +
                               " did not answer whether " + day + " is published: " + e.what());
    }
    if (published > 0) return out;
    what = day + " has no delivery plan in the PostgreSQL ledger";
    if (store::DayHasRuns(db, day)) {
      what += " (planned in " + cfg.database_path + " but not published)";
      fix = "; run plan-deliveries --date " + day + " again to publish it; otherwise dispatch publishes it itself at " +
            format_minutes(sc.dispatch_minutes) + " " + sc.timezone;
    }
  }
  out.push_back({"plan_missing", "date:" + day,
                 what + " at " + format_instant(now, sc.timezone) + " (due by " + format_minutes(sc.plan_deadline_minutes) + " " +
                     sc.timezone + ")" + fix});
  if (now >= recheck) {
    out.push_back({"plan_missing", "date:" + day + "@" + format_minutes(sc.plan_recheck_minutes),
                   "still: " + what + " at " + format_instant(now, sc.timezone) + fix});
  }
  return out;
}

namespace {

/// The day the dead-man's switch looks after at `now` and its default slot's instant: from
/// max(`lookahead_ms`, schedule.deadman_lead_minutes) before the slot until its deadline plus
/// the drain; nullopt outside that time.
std::optional<std::pair<Date, Millis>> deadman_day(const Config& cfg, Millis now, Millis lookahead_ms) {
  auto today = local_date(now, cfg.default_timezone);
  auto slot = parse_slot(cfg.default_slot);
  if (!today || !slot) return std::nullopt;
  std::optional<Date> day;
  Millis slot_at = 0;
  // From schedule.deadman_lead_minutes (15) before the slot: the watchdog starts dispatch every
  // minute, so a day still unplanned at 05:45 is planned then, well before the window opens,
  // and the 05:59 dispatch finds it planned. A dispatch started later (the 05:59 job alone, or
  // a host back after an outage) still does it, until the deadline plus the drain.
  const Millis lead = std::max(lookahead_ms, cfg.schedule.deadman_lead_ms);
  for (int add = -1; add <= 1 && !day; ++add) {
    auto s = slot_instant(add_days(*today, add), *slot, cfg.default_timezone);
    if (!s) continue;
    if (now >= *s - lead && now <= *s + cfg.window.deadline_ms + cfg.dispatch.drain_after_deadline_ms) {
      day = add_days(*today, add);
      slot_at = *s;
    }
  }
  if (!day) return std::nullopt;
  return std::make_pair(*day, slot_at);
}

}  // namespace

json morning_deadman(store::Db& db, const Config& cfg, Millis now, Millis lookahead_ms, spdlog::logger& log) {
  const auto found = deadman_day(cfg, now, lookahead_ms);
  if (!found) return {{"checked", false}};
  const Millis slot_at = found->second;
  const std::string date = format_date(found->first);
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t eligible = store::EligibleAdvisorCount(db, date);
  const std::int64_t planned = store::DeliveryCountForDate(db, date);
  const auto plan = store::DayPlanGet(db, date);
  const std::int64_t unreachable = plan ? plan->unreachable : 0;
  const std::int64_t missing = eligible - planned - unreachable;
  json out = {{"checked", true}, {"date", date}, {"eligible", eligible}, {"planned_before", planned}, {"missing", std::max<std::int64_t>(missing, 0)}};
  if (missing <= 0) return out;

  log.warn("dead-man's switch: {} of {} eligible advisors have no delivery for {} ({}); assigning and planning them now",
           missing, eligible, date, planned == 0 ? "nothing is planned: the nightly job did not run" : "the day is partly planned");
  const auto assigned = assign_fallback(db, cfg, date, now, false);
  const auto planned_now = plan_deliveries(db, cfg, date, now, false, "dispatch");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto inserted = static_cast<std::int64_t>(planned_now.inserted);
  const auto fallback = static_cast<std::int64_t>(assigned.fallback_assigned);
  out["assigned"] = fallback;
  out["inserted"] = inserted;
  out["silent_days"] = assigned.missing.size();
  out["unreachable"] = planned_now.unreachable;
  out["feasible"] = planned_now.feasible;
  out["ms"] = ms;
  log.warn("dead-man's switch: {} fallback assignments, {} deliveries planned for {} in {:.0f} ms", fallback, inserted, date, ms);
  if (inserted > 0 || fallback > 0) {
    const auto& sc = cfg.schedule;
    std::string msg = date + ": " + std::to_string(missing) + " of " + std::to_string(eligible) +
                      " eligible advisors had no delivery when dispatch started at " + format_instant(now, sc.timezone) + " (" +
                      (planned == 0 ? "nothing was planned: the " + format_minutes(sc.nightly_minutes) + " nightly job did not run or failed"
                                    : std::to_string(planned) + " deliveries were planned") +
                      "); dispatch assigned fallback content to " + std::to_string(fallback) + " and planned " + std::to_string(inserted) +
                      " deliveries itself in " + std::to_string(static_cast<long long>(ms)) + " ms, slot " +
                      format_instant(slot_at, cfg.default_timezone) + "; find out why the nightly job did not plan " + date;
    engine::AlertEngine eng(cfg.alerts);
    auto c = eng.raise_event(db, {"night_missed", "date:" + date, msg}, now);
    out["alert_id"] = c.alert_id;
  }
  return out;
}

json morning_deadman_pg(store::Db& db, const Config& cfg, Millis now, Millis lookahead_ms, spdlog::logger& log) {
  const auto found = deadman_day(cfg, now, lookahead_ms);
  if (!found) return {{"checked", false}, {"ledger", "postgresql"}};
  const std::string date = format_date(found->first);
  json out = {{"checked", true}, {"ledger", "postgresql"}, {"date", date}};
  store::PgConn c(cfg.database_url);
  if (!store::pg_lock_day(c, date, kDayLockWaitMs)) {
    log.warn("dead-man's switch: another host held the PostgreSQL day lock of {} for {} s; the next pass looks again", date,
             kDayLockWaitMs / 1000);
    out["action"] = "lock_busy";
    return out;
  }
  // Under the day lock: a host that planned and published the day before this one took the lock
  // is seen here, and the switch does nothing. The lock goes with the connection on a throw.
  const std::int64_t runs = store::pg_runs_of_day(c, date);
  out["runs_in_ledger"] = runs;
  if (runs > 0) {
    out["action"] = "none";
    store::pg_unlock_day(c, date);
    return out;
  }
  const std::int64_t eligible = store::EligibleAdvisorCount(db, date);
  out["eligible"] = eligible;
  if (eligible == 0) {
    log.error("dead-man's switch: {} has no run in the PostgreSQL ledger and this host's file {} has no planning data for it "
              "(no eligible advisor); another host with the planning data must plan it",
              date, cfg.database_path);
    out["action"] = "no_planning_data";
    store::pg_unlock_day(c, date);
    return out;
  }
  const std::int64_t planned_before = store::DeliveryCountForDate(db, date);
  // On the SQLite file, exactly as a dispatch there: what is missing is assigned and planned,
  // and night_missed raised when it planned anything.
  json sw = morning_deadman(db, cfg, now, lookahead_ms, log);
  out["sqlite"] = sw;
  const bool planned_here = sw.value("inserted", std::int64_t{0}) > 0 || sw.value("assigned", std::int64_t{0}) > 0;
  json pub = publish_day_locked(c, cfg, date);
  store::pg_unlock_day(c, date);
  out["published"] = pub;
  out["action"] = planned_here ? "planned_and_published" : "published";
  const std::int64_t deliveries = pub["inserted"].value("deliveries", std::int64_t{0});
  log.warn("dead-man's switch: {} had no run in the PostgreSQL ledger; {} {} deliveries from {}", date,
           planned_here ? "planned and published" : "published (already planned there)", deliveries, cfg.database_path);
  out["inserted"] = sw.value("inserted", std::int64_t{0});
  if (!planned_here) {
    // Planned at night but not published: the night's publish failed and nobody re-ran it.
    const auto& sc = cfg.schedule;
    std::string msg = date + ": nothing was in the PostgreSQL ledger when dispatch started at " + format_instant(now, sc.timezone) +
                      ", though " + std::to_string(planned_before) + " deliveries were planned in " + cfg.database_path +
                      " (the nightly plan-deliveries did not publish them); dispatch published " + std::to_string(deliveries) +
                      " deliveries itself; find out why plan-deliveries could not reach PostgreSQL";
    engine::AlertEngine eng(cfg.alerts);
    auto a = eng.raise_event(db, {"night_missed", "date:" + date, msg}, now);
    out["alert_id"] = a.alert_id;
  } else if (sw.contains("alert_id")) {
    out["alert_id"] = sw["alert_id"];
  }
  return out;
}

}  // namespace daybreak
