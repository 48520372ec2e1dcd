#include "store/schedule.hpp"

namespace daybreak::store {

std::optional<Millis> ScheduleLastFired(Db& db, const std::string& job) {
  return guarded("reading schedule_fires", [&]() -> std::optional<Millis> {
    auto& q = db.stmt("SELECT scheduled_for FROM schedule_fires WHERE job = ?1");
    q.bind(1, job);
    std::optional<Millis> out;
    if (q.executeStep()) out = q.getColumn(0).getInt64();
    q.reset();
    return out;
  });
}

bool ScheduleTryFire(Db& db, const std::string& job, Millis scheduled_for, Millis now) {
  return guarded("recording a scheduled start", [&] {
    auto& q = db.stmt(
        "INSERT INTO schedule_fires (job, scheduled_for, fired_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (job) DO UPDATE SET scheduled_for = excluded.scheduled_for, fired_at = excluded.fired_at "
        "WHERE schedule_fires.scheduled_for < excluded.scheduled_for");
    q.bind(1, job);
    q.bind(2, static_cast<std::int64_t>(scheduled_for));
    q.bind(3, static_cast<std::int64_t>(now));
    int n = q.exec();
    q.reset();
    return n > 0;
  });
}

void DayPlanRecord(Db& db, const DayPlan& p) {
  guarded("recording the day's plan", [&] {
    auto& q = db.stmt(
        "INSERT INTO day_plans (date, planned_at, eligible, planned, unreachable, unassigned, planned_by) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (date) DO UPDATE SET planned_at = excluded.planned_at, "
        "eligible = excluded.eligible, planned = excluded.planned, unreachable = excluded.unreachable, "
        "unassigned = excluded.unassigned, planned_by = excluded.planned_by");
    q.bind(1, p.date);
    q.bind(2, static_cast<std::int64_t>(p.planned_at));
    q.bind(3, p.eligible);
    q.bind(4, p.planned);
    q.bind(5, p.unreachable);
    q.bind(6, p.unassigned);
    q.bind(7, p.planned_by);
    q.exec();
    q.reset();
  });
}

std::optional<DayPlan> DayPlanGet(Db& db, const std::string& date) {
  return guarded("reading day_plans", [&]() -> std::optional<DayPlan> {
    auto& q = db.stmt(
        "SELECT date, planned_at, eligible, planned, unreachable, unassigned, planned_by FROM day_plans WHERE date = ?1");
    q.bind(1, date);
    std::optional<DayPlan> out;
    if (q.executeStep()) {
      out = DayPlan{q.getColumn(0).getString(), q.getColumn(1).getInt64(), q.getColumn(2).getInt64(), q.getColumn(3).getInt64(),
                    q.getColumn(4).getInt64(),  q.getColumn(5).getInt64(), q.getColumn(6).getString()};
    }
    q.reset();
    return out;
  });
}

namespace {
std::int64_t count_with_date(Db& db, const char* what, const char* sql, const std::string& date) {
  return guarded(what, [&] {
    auto& q = db.stmt(sql);
    q.bind(1, date);
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}
}  // namespace

std::int64_t EligibleAdvisorCount(Db& db, const std::string& date) {
  // The eligibility rule of PlanCandidatesForDate (store/advisors.cpp): opted in, not paused on
  // the day, and an opted-in channel row that is in the advisor's own channel list.
  return count_with_date(db, "counting eligible advisors",
                         "SELECT COUNT(*) FROM advisors a WHERE a.opted_in = 1 "
                         "AND NOT ((a.paused_from IS NOT NULL OR a.paused_until IS NOT NULL) "
                         "AND COALESCE(a.paused_from, '') <= ?1 AND (a.paused_until IS NULL OR ?1 <= a.paused_until)) "
                         "AND EXISTS (SELECT 1 FROM advisor_channels c WHERE c.advisor_id = a.advisor_id AND c.opted_in = 1 "
                         "AND instr('|' || a.channels || '|', '|' || c.channel || '|') > 0)",
                         date);
}

std::int64_t DeliveryCountForDate(Db& db, const std::string& date) {
  return count_with_date(db, "counting the day's deliveries", "SELECT COUNT(*) FROM deliveries WHERE date = ?1 AND run_id NOT IN (SELECT run_id FROM runs WHERE kind = 'urgent')",
                          date);
}

bool DayHasRuns(Db& db, const std::string& date) {
  return count_with_date(db, "looking for the day's runs", "SELECT EXISTS (SELECT 1 FROM runs WHERE date = ?1 AND kind = 'morning')", date) != 0;
}

}  // namespace daybreak::store
