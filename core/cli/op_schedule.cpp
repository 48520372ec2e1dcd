// `daybreak schedule show|fire JOB` (cron/daybreak-at, man daybreak(1) SCHEDULE).
//
// `fire` is the cron guard: Debian 12's cron ignores CRON_TZ, so daybreak's crontab runs
// `daybreak-at JOB -- CMD` every minute and this decides, in [schedule] timezone, whether JOB's
// time has come (or came while the host was down, within schedule.catch_up_minutes) and has not
// been started for yet. Exit 0: start it now (recorded, so no other tick starts it for the same
// instant); exit 1: not due; 3/4: configuration or database trouble, on stderr for cron's mail.
#include <iostream>

#include "cli/commands.hpp"
#include "app/plan.hpp"
#include "app/schedule.hpp"
#include "domain/schedule.hpp"
#include "domain/time.hpp"
#include "store/db.hpp"

namespace daybreak {

void add_schedule_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* sched = app.add_subcommand("schedule", "The daily schedule: what is installed and when it fires; the cron guard");
  sched->require_subcommand(1);
  sched->fallthrough();

  auto* show = sched->add_subcommand("show", "The configured schedule, the installed timers and crontabs, and the next instants");
  show->fallthrough();
  show->callback([&g, &action] {
    action = [&g] {
      auto ctx = make_context(g, "daybreak");
      const Millis now = ctx.clock->now();
      std::vector<ScheduleRow> rows;
      auto j = inspect_installed_schedule(ctx.cfg, now, host_timezone(), rows);
      bool ok = true;
      for (const auto& r : rows) ok = ok && r.ok;
      j["ok"] = ok;
      j["plan_deadline"] = format_minutes(ctx.cfg.schedule.plan_deadline_minutes);
      j["plan_recheck"] = format_minutes(ctx.cfg.schedule.plan_recheck_minutes);
      j["catch_up_minutes"] = ctx.cfg.schedule.catch_up_ms / 60'000;
      if (ctx.json) {
        print_json(j);
      } else {
        std::cout << "schedule in " << j["timezone"].get<std::string>() << " (this host: " << j["host_timezone"].get<std::string>()
                  << ")\n";
        for (const auto& job : j["jobs"]) {
          std::cout << "  " << job["job"].get<std::string>() << " at " << job["at"].get<std::string>() << ", next "
                    << job["next"].get<std::string>() << "\n    " << (job["ok"].get<bool>() ? "ok: " : "PROBLEM: ")
                    << job["message"].get<std::string>() << "\n";
        }
        std::cout << "  plan_missing alert after " << j["plan_deadline"].get<std::string>() << " on the day before, again at "
                  << j["plan_recheck"].get<std::string>() << "; a missed job catches up within " << j["catch_up_minutes"]
                  << " min\n";
      }
      return ok ? kExitOk : kExitCheckFailed;
    };
  });

  auto* day = sched->add_subcommand("next-day", "The delivery day the nightly job plans now (the day of the next default slot)");
  day->fallthrough();
  day->callback([&g, &action] {
    action = [&g] {
      auto ctx = make_context(g, "daybreak");
      const std::string d = default_delivery_date(ctx.cfg, ctx.clock->now());
      if (ctx.json) {
        print_json({{"date", d}});
      } else {
        std::cout << d << "\n";
      }
      return kExitOk;
    };
  });

  auto job = std::make_shared<std::string>();
  auto* fire = sched->add_subcommand("fire", "Cron guard: exit 0 (and record it) when JOB is due now, 1 when it is not");
  fire->fallthrough();
  fire->add_option("job", *job, "nightly or dispatch")->required();
  fire->callback([job, &g, &action] {
    action = [job, &g] {
      auto ctx = make_context(g, "daybreak");
      (void)scheduled_job(ctx.cfg, *job);  // a usage error before the database is opened
      store::Db db(ctx.cfg.database_path);
      const Millis now = ctx.clock->now();
      auto d = fire_scheduled_job(db, ctx.cfg, *job, now);
      if (ctx.json) {
        print_json({{"job", *job},
                    {"fire", d.fire},
                    {"scheduled_for", d.scheduled_for ? nlohmann::json(format_instant(*d.scheduled_for, ctx.cfg.schedule.timezone))
                                                      : nlohmann::json(nullptr)},
                    {"last_fired_for", d.last_fired_for ? nlohmann::json(format_instant(*d.last_fired_for, ctx.cfg.schedule.timezone))
                                                        : nlohmann::json(nullptr)},
                    {"next_at", format_instant(d.next_at, ctx.cfg.schedule.timezone)}});
      } else if (d.fire) {
        ctx.log->info("schedule: {} is due (scheduled for {}); starting it", *job,
                      format_instant(*d.scheduled_for, ctx.cfg.schedule.timezone));
      }
      return d.fire ? kExitOk : kExitCheckFailed;
    };
  });
}

}  // namespace daybreak
