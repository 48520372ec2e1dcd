// sla-report (man/sla-report.1): the SLA report of a run or a delivery day, read from the
// ledger (or from sla_reports once a run is closed), and the list of recent runs. It only ever
// reads: the database is opened read-only, so it can run beside a live dispatch.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "app/report.hpp"
#include "domain/time.hpp"
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
std::optional<json> stored_report(store::Db& db, const store::Run& run, spdlog::logger& log) {
  if (run.state != "closed" && run.state != "cancelled") return std::nullopt;
  auto text = store::SlaReportGet(db, run.run_id);
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

json list_entry(store::Db& db, const store::Run& run) {
  auto summary = store::SlaReportGetSummary(db, run.run_id);
  return {{"run_id", run.run_id},
          {"date", run.date},
          {"slot_at", format_instant(run.slot_at)},
          {"slot_at_ms", run.slot_at},
          {"state", run.state},
          {"planned_count", run.planned_count},
          {"feasible", run.feasible},
          {"stored_report", summary.has_value()},
          {"sla_pct", summary ? json(summary->sla_pct) : json(nullptr)}};
}

int list_runs(store::Db& db, const AppContext& ctx, int limit) {
  auto runs = store::RunListRecent(db, limit);
  if (ctx.json) {
    for (const auto& run : runs) print_json(list_entry(db, run));
    return kExitOk;
  }
  if (runs.empty()) {
    std::cout << "no runs\n";
    return kExitOk;
  }
  std::printf("%6s  %-10s  %-25s  %-9s  %8s  %8s\n", "run", "date", "slot", "state", "planned", "SLA %");
  for (const auto& run : runs) {
    json e = list_entry(db, run);
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
    if (int rc = parse_cli(app, argc, argv); rc >= 0) return rc;

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
    auto db = open_ledger(ctx.cfg.database_path);
    // One read transaction: every query of the report sees the same snapshot, so counts,
    // attempts and failure reasons agree even while dispatch is committing.
    auto snapshot = store::guarded("starting a read transaction", [&] {
      return std::make_unique<SQLite::Transaction>(db->raw(), SQLite::TransactionBehavior::DEFERRED);
    });

    if (list->parsed()) return list_runs(*db, ctx, limit);

    json report;
    if (o_run->count() > 0) {
      auto run = store::RunGet(*db, run_id);
      if (!run) throw CheckFailed("run " + std::to_string(run_id) + " does not exist (see sla-report list)");
      if (auto stored = stored_report(*db, *run, *ctx.log)) {
        report = std::move(*stored);
        report["report_source"] = "stored";
      } else {
        report = build_run_report(*db, *run, now);
        report["report_source"] = "ledger";
      }
    } else {
      if (date.empty()) {
        auto recent = store::RunListRecent(*db, 1);
        if (recent.empty()) throw CheckFailed("no runs in " + ctx.cfg.database_path + " yet");
        date = recent.front().date;
      }
      report = build_date_report(*db, date, now);
      report["report_source"] = "ledger";
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
  });
}

}  // namespace daybreak
