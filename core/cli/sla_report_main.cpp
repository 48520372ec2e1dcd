// sla-report (man/sla-report.1): the SLA report of a run or a delivery day, read from the
// ledger (or from sla_reports once a run is closed), and the list of recent runs. It only ever
// reads: the database is opened read-only, so it can run beside a live dispatch. With
// `[database] url` the report, `list`, `trend` and `--html` read the PostgreSQL ledger dispatch
// writes (store/pg_reports.hpp) through the same report builder, its stored reports included.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "app/report.hpp"
#include "cli/report_watch.hpp"
#include "domain/time.hpp"
#include "store/pg.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_reports.hpp"
#include "store/report_ledger.hpp"
#include "store/reports.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

using nlohmann::json;

// Read-only and never migrating: a report must not change the ledger, and a missing file must
// be reported as missing instead of being created empty.
std::unique_ptr<store::Db> open_ledger(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      throw store::StoreError("database file " + path + " does not exist (set --database or database.path)");
    }
    throw store::StoreError("cannot access database file " + path + ": " + std::strerror(errno));
  }
  store::OpenOptions opts;
  opts.read_only = true;
  opts.migrate = false;
  return std::make_unique<store::Db>(path, opts);
}

// The stored report of a closed run, or nullopt when there is none worth printing (never
// stored, unreadable, or stored before the run was closed).
std::optional<json> stored_report(store::ReportLedger& ledger, const store::Run& run, spdlog::logger& log) {
  if (run.state != "closed" && run.state != "cancelled") return std::nullopt;
  auto text = ledger.stored_report(run.run_id);
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    log.warn("run {}: stored report is not valid JSON; recomputing from the ledger", run.run_id);
    return std::nullopt;
  }
  if (!j.value("closed", false)) {
    log.warn("run {}: stored report was written before the run closed; recomputing from the ledger", run.run_id);
    return std::nullopt;
  }
  return j;
}

// A report is stored when its run closes, but status callbacks (read receipts above all) keep
// arriving afterwards: the delivery-truth figures of a stored report are recounted from the
// ledger (one aggregate query), the rest is printed as stored. The by_* groups keep the
// figures they were stored with.
void refresh_status_figures(store::ReportLedger& ledger, const store::Run& run, json& report, Millis now) {
  const store::DeliveryTruth c = ledger.truth_for_run(run.run_id, now);
  const auto of = [&](std::int64_t n, double none) {
    return c.eligible ? 100.0 * static_cast<double>(n) / static_cast<double>(c.eligible) : none;
  };
  report["delivered_on_time"] = c.delivered_on_time;
  report["delivered"] = c.delivered;
  report["read"] = c.read;
  report["unknown"] = c.unknown;
  report["failed_after_accept"] = c.failed_after_accept;
  report["delivered_sla_pct"] = of(c.delivered_on_time, 100.0);
  report["read_pct"] = of(c.read, 0.0);
  report["unknown_pct"] = of(c.unknown, 0.0);
  report["failed_after_accept_pct"] = of(c.failed_after_accept, 0.0);
  report["status_figures_source"] = "ledger";
}

// A ledger without stored reports (PostgreSQL before sql/postgresql/005) lists stored_report as
// null, not false.
json list_entry(store::ReportLedger& ledger, const store::Run& run) {
  auto summary = ledger.stored_summary(run.run_id);
  return {{"run_id", run.run_id},
          {"date", run.date},
          {"slot_at", format_instant(run.slot_at)},
          {"slot_at_ms", run.slot_at},
          {"state", run.state},
          {"run_kind", ledger.run_kind(run.run_id)},
          {"planned_count", run.planned_count},
          {"feasible", run.feasible},
          {"stored_report", ledger.keeps_stored_reports() ? json(summary.has_value()) : json(nullptr)},
          {"sla_pct", summary ? json(summary->sla_pct) : json(nullptr)},
          {"ledger", ledger.engine()}};
}

int list_runs(store::ReportLedger& ledger, const AppContext& ctx, int limit) {
  auto runs = ledger.runs_recent(limit);
  if (ctx.json) {
    for (const auto& run : runs) print_json(list_entry(ledger, run));
    return kExitOk;
  }
  if (runs.empty()) {
    std::cout << "no runs\n";
    return kExitOk;
  }
  std::printf("%6s  %-10s  %-25s  %-9s  %8s  %8s\n", "run", "date", "slot", "state", "planned", "SLA %");
  for (const auto& run : runs) {
    json e = list_entry(ledger, run);
    std::string sla = "-";  // only closed runs have a stored figure; listing never recomputes a run
    if (e["sla_pct"].is_number()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", e["sla_pct"].get<double>());
      sla = buf;
    }
    std::printf("%6lld  %-10s  %-25s  %-9s  %8lld  %8s\n", static_cast<long long>(run.run_id), run.date.c_str(),
                format_instant(run.slot_at, ctx.cfg.default_timezone).c_str(), run.state.c_str(),
                static_cast<long long>(run.planned_count), sla.c_str());
  }
  std::fflush(stdout);
  return kExitOk;
}

std::string today(const AppContext& ctx, Millis now) {
  auto d = local_date(now, ctx.cfg.default_timezone);
  return d ? format_date(*d) : format_instant(now).substr(0, 10);
}

int trend_main(store::ReportLedger& ledger, const AppContext& ctx, const std::string& to, int days, Millis now) {
  if (!to.empty()) {
    if (auto d = parse_date(to); !d) throw UsageError("--to: " + d.error().message);
  }
  json t = build_trend(ledger, to.empty() ? today(ctx, now) : to, days);
  if (ctx.json) print_json(t); else std::cout << format_trend_text(t) << std::flush;
  return kExitOk;
}

// `list`, or the report of a run (--run), a day (--date) or the latest day, from either ledger
// (a closed run's stored report is printed from it). `where` names the ledger in messages.
int report_main(store::ReportLedger& ledger, const AppContext& ctx, bool list, int limit, std::int64_t run_id,
                std::string date, const std::string& html_path, Millis now, const std::string& where) {
  if (list) return list_runs(ledger, ctx, limit);
  json report;
  if (run_id > 0) {
    auto run = ledger.run(run_id);
    if (!run) throw CheckFailed("run " + std::to_string(run_id) + " does not exist (see sla-report list)");
    std::optional<json> stored = stored_report(ledger, *run, *ctx.log);
    if (stored) {
      report = std::move(*stored);
      report["report_source"] = "stored";
      refresh_status_figures(ledger, *run, report, now);
    } else {
      report = build_run_report(ledger, *run, now);
      report["report_source"] = "ledger";
      // A closed run with no stored report where the ledger keeps them: on PostgreSQL a run
      // closed before dispatch stored reports there (where none are kept, the report's notes
      // already say so).
      if (ledger.keeps_stored_reports() && (run->state == "closed" || run->state == "cancelled")) {
        if (!report.contains("notes")) report["notes"] = json::array();
        report["notes"].push_back("no report was stored when this run closed: every figure is computed from the " +
                                  std::string(ledger.engine()) + " ledger's deliveries and attempts now");
      }
    }
  } else {
    if (date.empty()) {
      auto recent = ledger.runs_recent(1);
      if (recent.empty()) throw CheckFailed("no runs in " + where + " yet");
      date = recent.front().date;
    }
    report = build_date_report(ledger, date, now);
    report["report_source"] = "ledger";
  }

  if (!html_path.empty()) {
    std::vector<std::int64_t> ids;
    if (report.contains("runs")) {
      for (const auto& r : report["runs"]) ids.push_back(r.value("run_id", std::int64_t{0}));
    } else {
      ids.push_back(report.value("run_id", std::int64_t{0}));
    }
    json t = build_trend(ledger, report.value("date", today(ctx, now)), 30);
    std::string html = render_html_report(ledger, report, ids, t, ctx.cfg.default_timezone);
    std::string tmp = html_path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << html;
      out.close();
      if (!out) throw CheckFailed("--html: cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), html_path.c_str()) != 0) {
      throw CheckFailed("--html: cannot rename " + tmp + " to " + html_path + ": " + std::strerror(errno));
    }
    ctx.log->info("wrote the HTML report to {}", html_path);
  }
  if (ctx.json) {
    print_json(report);
  } else {
    std::cout << format_report_text(report, ctx.cfg.tiers, ctx.cfg.default_timezone) << std::flush;
  }
  int rc = report_exit_code(report);
  if (rc != kExitOk) {
    ctx.log->warn("{}: SLA {} ({:.2f}% against {:.0f}%)", report.value("kind", std::string()) == "date"
                      ? "delivery day " + report.value("date", std::string())
                      : "run " + std::to_string(report.value("run_id", std::int64_t{0})),
                  report.value("verdict", std::string()), report.value("sla_pct", 0.0), kSlaTargetPct);
  }
  return rc;
}

}  // namespace

int sla_report_main(int argc, char** argv) {
  return run_main("sla-report", [&]() -> int {
    CLI::App app{"sla-report: the SLA report of a run or a delivery day (on time within 5 minutes, target 99%)"};
    GlobalOptions g;
    add_global_options(app, g);
    std::string date;
    std::int64_t run_id = 0;
    auto* o_date = app.add_option("--date", date, "Delivery day YYYY-MM-DD: every run (slot instant) of that day");
    auto* o_run = app.add_option("--run", run_id, "One run by id (see `sla-report list`)");
    o_date->excludes(o_run);
    int limit = 20;
    CLI::App* list = app.add_subcommand("list", "List recent runs, newest first (NDJSON with --json)");
    list->add_option("--limit", limit, "How many runs (default 20)")->check(CLI::Range(1, 100000));
    list->fallthrough();  // `sla-report list --json` reaches the global --json

    // Monitoring views.
    bool watch = false, once = false;
    std::string html_path;
    app.add_flag("--watch", watch, "Live view of the running runs (or --run/--date), refreshed each second; q quits");
    app.add_flag("--once", once, "With --watch: print one frame and exit");
    app.add_option("--html", html_path, "Also write the report as one self-contained HTML page with charts to FILE");
    int trend_days = 30;
    CLI::App* trend = app.add_subcommand("trend", "SLA per delivery day over the last --days days, from stored run reports");
    trend->add_option("--days", trend_days, "30 or 90 (any 1..366)")->check(CLI::Range(1, 366));
    std::string trend_to;
    trend->add_option("--to", trend_to, "Last day of the period (default: today in delivery.timezone)");
    trend->fallthrough();
    double growth = 1.0, new_mps = 0, hyp_mps = 80;
    std::int64_t hyp_advisors = 0;
    int hyp_senders = 0;
    std::string hyp_channel = "whatsapp";
    CLI::App* capacity = app.add_subcommand("capacity", "Capacity of the next planned runs against the senders, with recommendations");
    capacity->add_option("--growth", growth, "Demand multiplier, e.g. 1.5 for 50% more advisors (default 1)")->check(CLI::Range(0.01, 1000.0));
    capacity->add_option("--new-sender-mps", new_mps, "Rate of a recommended new sender (default: the channel's largest, else 80)")
        ->check(CLI::Range(0.001, 1e6));
    auto* o_adv = capacity->add_option("--advisors", hyp_advisors, "Hypothetical: this many deliveries in one run")->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000'000}));
    auto* o_snd = capacity->add_option("--senders", hyp_senders, "Hypothetical: this many senders")->check(CLI::Range(0, 100000));
    capacity->add_option("--mps", hyp_mps, "Hypothetical: rate of each sender, msg/s (default 80)")->check(CLI::Range(0.001, 1e6));
    capacity->add_option("--channel", hyp_channel, "Hypothetical: channel (default whatsapp)")->check(CLI::IsMember({"whatsapp", "email", "webhook"}));
    std::string hyp_tier;
    capacity->add_option("--messaging-tier", hyp_tier,
                         "Hypothetical: Meta's messaging limit of the senders' portfolio (250, 2k, 10k, 100k, unlimited)")
        ->check(CLI::IsMember({"250", "2k", "10k", "100k", "unlimited"}));
    capacity->fallthrough();
    if (int rc = parse_cli(app, argc, argv); rc >= 0) return rc;
    if (once && !watch) throw UsageError("--once goes with --watch");
    if (watch && (!html_path.empty() || list->parsed() || trend->parsed() || capacity->parsed())) {
      throw UsageError("--watch takes only --run or --date");
    }
    if ((o_adv->count() > 0) != (o_snd->count() > 0)) throw UsageError("capacity: --advisors and --senders go together");

    if (list->parsed() && (o_date->count() > 0 || o_run->count() > 0)) {
      throw UsageError("list takes no --date or --run");
    }
    if (o_run->count() > 0 && run_id <= 0) {
      throw UsageError("--run: expected a run id (a positive number), got " + std::to_string(run_id));
    }
    if (o_date->count() > 0) {
      if (auto d = parse_date(date); !d) throw UsageError("--date: " + d.error().message);
    }

    AppContext ctx = make_context(g, "sla-report");
    const Millis now = ctx.clock->now();
    if (capacity->parsed() && o_adv->count() > 0) {
      json cap = build_capacity_hypothetical(hyp_advisors, hyp_senders, hyp_mps, hyp_channel, ctx.cfg, growth, new_mps, hyp_tier);
      if (ctx.json) print_json(cap); else std::cout << format_capacity_text(cap) << std::flush;
      return cap["feasible"].get<bool>() ? kExitOk : kExitCheckFailed;
    }
    if (!ctx.cfg.database_url.empty()) {
      // The PostgreSQL ledger: the report, list, trend, --html and --watch. `capacity` reads the
      // plan, which is made on SQLite and stays there.
      const std::string where = store::pg_url_for_display(ctx.cfg.database_url);
      if (watch) {
        WatchOptions wo;
        wo.run_id = o_run->count() > 0 ? run_id : 0;
        wo.date = date;
        wo.once = once;
        return watch_runs_pg(ctx.cfg.database_url, ctx.cfg, *ctx.clock, ctx.json, wo);
      }
      if (!capacity->parsed()) {
        store::PgReportLedger pg(ctx.cfg.database_url);
        if (trend->parsed()) return trend_main(pg, ctx, trend_to, trend_days, now);
        return report_main(pg, ctx, list->parsed(), limit, o_run->count() > 0 ? run_id : 0, date, html_path, now,
                           "the PostgreSQL ledger " + where);
      }
    }
    auto db = open_ledger(ctx.cfg.database_path);
    if (watch) {
      db.reset();
      WatchOptions wo;
      wo.run_id = o_run->count() > 0 ? run_id : 0;
      wo.date = date;
      wo.once = once;
      return watch_runs(ctx.cfg.database_path, ctx.cfg, *ctx.clock, ctx.json, wo);
    }
    // One read transaction: every query of the report sees the same snapshot, so counts,
    // attempts and failure reasons agree even while dispatch is committing.
    auto snapshot = store::guarded("starting a read transaction", [&] {
      return std::make_unique<SQLite::Transaction>(db->raw(), SQLite::TransactionBehavior::DEFERRED);
    });

    store::SqliteReportLedger sqlite(*db);
    if (trend->parsed()) return trend_main(sqlite, ctx, trend_to, trend_days, now);
    if (capacity->parsed()) {
      json cap = build_capacity_report(*db, ctx.cfg, now, growth, new_mps);
      if (ctx.json) print_json(cap); else std::cout << format_capacity_text(cap) << std::flush;
      return cap["feasible"].get<bool>() ? kExitOk : kExitCheckFailed;
    }
    return report_main(sqlite, ctx, list->parsed(), limit, o_run->count() > 0 ? run_id : 0, date, html_path, now,
                       ctx.cfg.database_path);
  });
}

}  // namespace daybreak
