#pragma once
// Query module for `schedule_fires` and `day_plans` (sql/009_schedule.sql), and the two counts
// the dead-man's switch and the plan_missing rule compare: eligible advisors of a day and the
// deliveries planned for it.
#include <cstdint>
#include <optional>
#include <string>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// The scheduled instant `job` was last fired for, if ever.
std::optional<Millis> ScheduleLastFired(Db& db, const std::string& job);
/// Records that `job` starts for `scheduled_for`, unless it already started for that instant or
/// a later one. True when this call recorded it (the caller runs the job); false when another
/// tick got there first. Atomic on its own (one statement).
bool ScheduleTryFire(Db& db, const std::string& job, Millis scheduled_for, Millis now);

/// One day's plan summary, as plan-deliveries last wrote it.
struct DayPlan {
  std::string date;
  Millis planned_at = 0;
  std::int64_t eligible = 0;
  std::int64_t planned = 0;
  std::int64_t unreachable = 0;
  std::int64_t unassigned = 0;
  std::string planned_by;
};
void DayPlanRecord(Db& db, const DayPlan& p);
std::optional<DayPlan> DayPlanGet(Db& db, const std::string& date);

/// Advisors eligible on `date` (opted in, an opted-in channel of their own list, not paused):
/// the advisors plan-deliveries considers.
std::int64_t EligibleAdvisorCount(Db& db, const std::string& date);
/// Deliveries planned for `date` by the day's plan, in any state (an urgent run's, written by
/// daybreak send-now, are not the day's plan and are not counted).
std::int64_t DeliveryCountForDate(Db& db, const std::string& date);
/// Whether any morning run (the day's plan; not an urgent run) exists for `date`.
bool DayHasRuns(Db& db, const std::string& date);

}  // namespace daybreak::store
