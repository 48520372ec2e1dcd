#pragma once
// The nightly jobs' own Prometheus textfiles (assign-fallback, plan-deliveries): each run, ok or
// failed, writes DIR/daybreak_job_<program>.prom into dispatch.metrics_dir with its exit code,
// times and counts (rendered by core/engine/metrics).
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "app/plan.hpp"
#include "engine/metrics.hpp"

namespace daybreak {

/// What a job's body reports for its textfile: the delivery day and its counts.
struct JobFigures {
  std::string date;
  std::vector<engine::JobGauge> gauges;
};

/// Runs `body` and, when `record` is true and dispatch.metrics_dir is set, writes the job's
/// textfile with the exit code the process will have: the body's return value, or exit_code_for
/// the error it throws (which is then rethrown for run_main to print). Start and end times come
/// from ctx.clock. A textfile that cannot be written is logged (warn) and changes no exit code.
int run_job_with_metrics(AppContext& ctx, const std::string& program, bool record,
                         const std::function<int(JobFigures&)>& body);

/// assign-fallback's counts from its report: daybreak_fallback_eligible_advisors,
/// daybreak_fallback_assigned_advisors{source}, daybreak_fallback_new_assignments,
/// daybreak_fallback_replaced_advisors, daybreak_fallback_missing_advisors (silent days).
std::vector<engine::JobGauge> fallback_job_gauges(const FallbackResult& result);

/// plan-deliveries' counts from its report: daybreak_plan_eligible_advisors,
/// daybreak_plan_planned_deliveries, daybreak_plan_inserted_deliveries,
/// daybreak_plan_unassigned_advisors, daybreak_plan_unreachable_advisors, daybreak_plan_runs,
/// daybreak_plan_feasible (1 or 0).
std::vector<engine::JobGauge> plan_job_gauges(const DayPlanResult& result);

}  // namespace daybreak
