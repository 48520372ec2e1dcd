#include "cli/job_metrics.hpp"

#include <spdlog/spdlog.h>

#include <map>

namespace daybreak {
namespace {

engine::JobGauge gauge(const char* name, const char* help, double v) { return {name, help, {{{}, v}}}; }

}  // namespace

int run_job_with_metrics(AppContext& ctx, const std::string& program, bool record,
                         const std::function<int(JobFigures&)>& body) {
  engine::JobRunMetrics m;
  m.program = program;
  m.started_at = ctx.clock->now();
  JobFigures figures;
  auto write = [&](int code) {
    if (!record || ctx.cfg.dispatch.metrics_dir.empty()) return;
    m.finished_at = ctx.clock->now();
    m.exit_code = code;
    m.date = figures.date;
    m.figures = figures.gauges;
    try {
      engine::write_job_metrics_textfile(ctx.cfg.dispatch.metrics_dir, m);
    } catch (const std::exception& e) {
      ctx.log->warn("{}", e.what());  // the job's own outcome matters more than its metrics
    }
  };
  int code = 0;
  try {
    code = body(figures);
  } catch (...) {
    write(exit_code_for(std::current_exception()));
    throw;
  }
  write(code);
  return code;
}

std::vector<engine::JobGauge> fallback_job_gauges(const FallbackResult& r) {
  auto n = [](std::size_t v) { return static_cast<double>(v); };
  std::vector<engine::JobGauge> out;
  out.push_back(gauge("daybreak_fallback_eligible_advisors", "Advisors eligible for the delivery day.", n(r.eligible)));
  // Every assignment source, 0 when none, so the series exist every night.
  std::map<std::string, double> by_source = {{"editorial", 0}, {"advisor", 0}, {"override", 0}, {"fallback", 0}};
  for (const auto& [source, count] : r.by_source) by_source[source] = n(count);
  engine::JobGauge assigned{"daybreak_fallback_assigned_advisors",
                            "Eligible advisors with sendable content for the day after the run, by assignment source.", {}};
  for (const auto& [source, count] : by_source) assigned.samples.push_back({{{"source", source}}, count});
  out.push_back(std::move(assigned));
  out.push_back(gauge("daybreak_fallback_new_assignments", "Fallback assignments written by the run (new or replacing invalid content).",
                      n(r.fallback_assigned)));
  out.push_back(gauge("daybreak_fallback_replaced_advisors", "Assignments replaced because their content could not be sent.",
                      n(r.replaced)));
  out.push_back(gauge("daybreak_fallback_missing_advisors",
                      "Eligible advisors left without content for the day (silent days; must be 0).", n(r.missing.size())));
  return out;
}

std::vector<engine::JobGauge> plan_job_gauges(const DayPlanResult& r) {
  auto n = [](std::size_t v) { return static_cast<double>(v); };
  return {
      gauge("daybreak_plan_eligible_advisors", "Advisors eligible for the delivery day.", n(r.eligible)),
      gauge("daybreak_plan_planned_deliveries", "Deliveries in the day's plan (already written or new).", n(r.planned)),
      gauge("daybreak_plan_inserted_deliveries", "Deliveries newly written to the ledger by the run.", n(r.inserted)),
      gauge("daybreak_plan_unassigned_advisors", "Eligible advisors without an assignment (assign-fallback not run or failed).",
            n(r.unassigned)),
      gauge("daybreak_plan_unreachable_advisors", "Eligible advisors with no opted-in channel that has a configured sender.",
            n(r.unreachable)),
      gauge("daybreak_plan_runs", "Runs (send windows) in the day's plan.", n(r.runs)),
      gauge("daybreak_plan_feasible", "1 when every run of the plan fits its senders' capacity, else 0.", r.feasible ? 1.0 : 0.0),
  };
}

}  // namespace daybreak
