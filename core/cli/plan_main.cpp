// assign-fallback and plan-deliveries: the 21:30 IST passes. See man/assign-fallback.1 and
// man/plan-deliveries.1. Each run but a dry run writes its own metrics textfile (cli/job_metrics.hpp).
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"
#include "cli/job_metrics.hpp"
#include "app/plan.hpp"
#include "app/publish.hpp"
#include "app/templates_check.hpp"
#include "channels/graph_api.hpp"
#include "domain/time.hpp"

namespace daybreak {

int assign_fallback_main(int argc, char** argv) {
  return run_main("assign-fallback", [&]() -> int {
    CLI::App app{"assign-fallback: give every eligible advisor without content for day D a fallback item"};
    GlobalOptions g;
    add_global_options(app, g);
    std::string date;
    bool dry_run = false;
    FallbackOptions fo;
    app.add_option("--date", date, "Delivery day YYYY-MM-DD (default: the day of the next slot)");
    app.add_flag("--dry-run", dry_run, "Report what would be assigned; change nothing");
    app.add_option("--no-repeat-days", fo.ranking.no_repeat_days, "Do not give an advisor the same fallback item again within this many days")
        ->check(CLI::Range(0, 365))
        ->capture_default_str();
    app.add_option("--engagement-days", fo.engagement_days, "Learn from the read receipts of this many days before D")
        ->check(CLI::Range(0, 3650))
        ->capture_default_str();
    app.add_option("--seed", fo.ranking.seed, "Seed of the ranker's Thompson samples (same seed, same choices)")->capture_default_str();
    app.add_flag("--list", fo.list, "List every eligible advisor's content, source and reason in the report");
    if (int rc = parse_cli(app, argc, argv); rc >= 0) return rc;
    auto ctx = make_context(g, "assign-fallback");
    return run_job_with_metrics(ctx, "assign-fallback", !dry_run, [&](JobFigures& figures) -> int {
      Millis now = ctx.clock->now();
      std::string day = resolve_date_option(date, ctx.cfg, now);
      figures.date = day;
      store::Db db(ctx.cfg.database_path);
      auto rep = assign_fallback(db, ctx.cfg, day, now, dry_run, fo);
      figures.gauges = fallback_job_gauges(rep);
      if (ctx.json) {
        print_json(rep.report);
      } else {
        std::cout << "assign-fallback " << day << ": " << rep.eligible << " eligible, " << rep.already_assigned
                  << " already assigned, " << rep.fallback_assigned << " fallback assigned";
        if (rep.replaced > 0) std::cout << " (" << rep.replaced << " replacing invalid content)";
        std::cout << "\n";
        if (fo.list) {
          for (const auto& l : rep.report["advisors"]) {
            std::cout << "  " << l["advisor_id"].get<std::string>() << ": " << l["content_id"].get<std::string>() << " ("
                      << l["source"].get<std::string>() << ") " << l["reason"].get<std::string>() << "\n";
          }
        }
        if (rep.missing.empty()) {
          std::cout << "zero silent days: every eligible advisor has content for " << day << "\n";
        } else {
          std::cout << "SILENT DAYS: " << rep.missing.size() << " advisor(s) have no content for " << day << ":\n";
          for (const auto& m : rep.missing) std::cout << "  " << m.advisor_id << ": " << m.reason << "\n";
        }
      }
      return rep.missing.empty() ? kExitOk : kExitCheckFailed;
    });
  });
}

int plan_deliveries_main(int argc, char** argv) {
  return run_main("plan-deliveries", [&]() -> int {
    CLI::App app{"plan-deliveries: turn day D's assignments into deliveries with capacity-aware send times"};
    GlobalOptions g;
    add_global_options(app, g);
    std::string date;
    bool dry_run = false;
    app.add_option("--date", date, "Delivery day YYYY-MM-DD (default: the day of the next slot)");
    app.add_flag("--dry-run", dry_run, "Plan and report; write nothing");
    if (int rc = parse_cli(app, argc, argv); rc >= 0) return rc;
    auto ctx = make_context(g, "plan-deliveries");
    return run_job_with_metrics(ctx, "plan-deliveries", !dry_run, [&](JobFigures& figures) -> int {
      Millis now = ctx.clock->now();
      std::string day = resolve_date_option(date, ctx.cfg, now);
      figures.date = day;
      if (ctx.cfg.senders.empty()) throw ConfigError(ctx.cfg.source + ": no senders configured ([[whatsapp.senders]], [[email.senders]])");
      store::Db db(ctx.cfg.database_path);
      auto rep = plan_deliveries(db, ctx.cfg, day, now, dry_run);
      figures.gauges = plan_job_gauges(rep);
      // The night before, not at 06:00: an item WhatsApp has no approved template for would be
      // answered 132001 for each of its advisors (app/templates_check.hpp).
      const auto no_template = missing_templates(db, ctx.cfg, day);
      rep.report["missing_templates"] = to_json(no_template);
      // The Graph API version the morning will call: warned from 60 days before Meta retires it,
      // an error (a failed nightly) after (channels/graph_api.hpp).
      bool api_version_expired = false;
      if (!ctx.cfg.senders_of(Channel::whatsapp).empty()) {
        if (auto today = local_date(now, ctx.cfg.default_timezone)) {
          const auto v = channels::check_graph_api_version(ctx.cfg.whatsapp.api_version, *today);
          using L = channels::GraphApiVersionCheck::Level;
          const char* level = v.level == L::ok ? "ok" : v.level == L::warn ? "warn" : v.level == L::expired ? "expired" : "unknown";
          rep.report["whatsapp_api_version"] = {{"version", ctx.cfg.whatsapp.api_version},
                                                {"level", level},
                                                {"available_until", v.end ? format_date(*v.end) : std::string()},
                                                {"days_left", v.days_left},
                                                {"message", v.message}};
          if (v.level == L::expired) {
            ctx.log->error("{}", v.message);
            api_version_expired = true;
          } else if (v.level != L::ok) {
            ctx.log->warn("{}", v.message);
          }
        }
      }
      // With [database] url the day goes on to the PostgreSQL ledger now, whatever the verdict
      // (dispatch on SQLite would send this plan too); the plan stays committed in SQLite when
      // that fails, and a re-run publishes what is missing (app/publish.hpp).
      std::string not_published;
      if (!ctx.cfg.database_url.empty() && !dry_run) {
        try {
          rep.report["published"] = publish_day(ctx.cfg, day);
          rep.report["ledger"] = "postgresql";
        } catch (const PublishError& e) {
          not_published = e.what();
          rep.report["ledger"] = "postgresql";
          rep.report["published"] = {{"ledger", "postgresql"}, {"status", "failed"}, {"date", day}, {"error", not_published}};
        }
      }
      if (ctx.json) {
        print_json(rep.report);
      } else {
        std::cout << "plan-deliveries " << day << ": " << rep.planned << " deliveries in " << rep.runs << " run(s), "
                  << rep.inserted << " newly written, " << (rep.feasible ? "feasible" : "INFEASIBLE") << "\n";
        for (const auto& r : rep.report["runs"]) {
          std::cout << "  run " << r.value("run_id", 0) << " slot " << r["slot_at"].get<std::string>() << ": " << r["planned"]
                    << " planned" << (r["feasible"].get<bool>() ? "" : ", shortfall " + r["shortfall"].dump()) << "\n";
          for (const auto& s : r["senders"]) {
            std::cout << "    " << s["sender"].get<std::string>() << ": " << s["assigned"] << " assigned, peak "
                      << s["peak_per_second"] << "/s of cap " << s["cap_per_second"] << "/s (" << s["mps"] << " msg/s)\n";
          }
          if (!r["recommendation"].get<std::string>().empty()) std::cout << "    recommendation: " << r["recommendation"].get<std::string>() << "\n";
        }
        if (rep.unassigned > 0) std::cout << "  " << rep.unassigned << " eligible advisor(s) have no assignment: run assign-fallback first\n";
        if (rep.unreachable > 0) std::cout << "  " << rep.unreachable << " advisor(s) cannot be reached on any configured channel\n";
        if (rep.report.value("whatsapp_held", 0) > 0) {
          std::cout << "  " << rep.report["whatsapp_held"] << " advisor(s) planned off WhatsApp: held for 24 h after a 131049 failed status\n";
        }
        for (const auto& p : rep.report["messaging_tiers"]["portfolios"]) {
          std::cout << "  messaging limit: " << p["recommendation"].get<std::string>() << "\n";
        }
        if (rep.report.contains("published") && not_published.empty()) {
          std::cout << "published " << day << " to the PostgreSQL ledger:";
          for (const auto& [t, n] : rep.report["published"]["inserted"].items()) std::cout << " " << t << " " << n;
          std::cout << " rows inserted (rows already there kept";
          std::string updated;
          const nlohmann::json changed = rep.report["published"].value("updated", nlohmann::json::object());
          for (const auto& [t, n] : changed.items()) {
            if (n.get<std::int64_t>() > 0) updated += " " + t + " " + std::to_string(n.get<std::int64_t>());
          }
          std::cout << (updated.empty() ? std::string() : "; brought up to date:" + updated) << ")\n";
        } else if (!not_published.empty()) {
          std::cout << "NOT PUBLISHED: " << not_published << "\n";
        }
      }
      for (const auto& p : rep.report["messaging_tiers"]["portfolios"]) {
        if (!p["feasible"].get<bool>()) ctx.log->error("{}: {}", day, p["recommendation"].get<std::string>());
      }
      for (const auto& l : rep.report["languages_without_emergency"]) {
        // Not a failed plan (exit code unchanged): a warning that a pull on the day would fall back
        // on another language's emergency item, or hold the deliveries unsent.
        ctx.log->warn("no emergency item valid on {} in language {} ({} eligible advisor(s)): {}", day, l["language"].get<std::string>(),
                      l["advisors"].get<std::int64_t>(),
                      l["covered_by"].is_null() ? std::string("a pull of their content would hold their deliveries, unsent")
                                                : "a pull of their content would send the " + l["covered_by"].get<std::string>() +
                                                      " emergency item");
      }
      for (const auto& m : no_template) ctx.log->error("{}: {}", day, describe(m));
      bool ok = rep.feasible && rep.unassigned == 0 && rep.unreachable == 0 && no_template.empty() && !api_version_expired;
      if (!rep.feasible) ctx.log->error("capacity shortfall for {}: see the plan report", day);
      if (!not_published.empty()) {
        ctx.log->error("{}", not_published);
        return kExitNotPublished;
      }
      return ok ? kExitOk : kExitCheckFailed;
    });
  });
}

}  // namespace daybreak
