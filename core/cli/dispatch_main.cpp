// dispatch: owns the due runs (a lease per run), sends every delivery at its planned time and
// keeps going until every delivery is final. See man/dispatch.1.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <cstdlib>
#include <csignal>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"
#include "app/report.hpp"
#include "app/schedule.hpp"
#include "cli/supervise.hpp"
#include "channels/transport.hpp"
#include "domain/time.hpp"
#include "engine/dispatcher.hpp"
#include "store/reports.hpp"
#include "store/overrides.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_reports.hpp"
#include "store/pg_status.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

engine::StopSource g_stop;

/// The HTTP transport [dispatch] transport names ("curl" or "epoll"; the config validated it).
std::unique_ptr<channels::Transport> make_transport(const Config& cfg) {
  if (cfg.dispatch.transport == "epoll") {
    channels::EpollTransportOptions o;
    o.workers = cfg.dispatch.workers;
    return channels::make_epoll_transport(o);
  }
  channels::CurlTransportOptions o;
  o.workers = cfg.dispatch.workers;
  return channels::make_curl_transport(o);
}
/// Set once dispatch starts taking leases: from then on the dispatcher answers signals itself.
std::atomic<bool> g_taking_leases{false};

extern "C" void on_stop_signal(int sig) {
  // First signal: stop claiming, finish what is in flight. Second: leave now. Before any lease
  // is taken there is nothing in flight: a second signal leaves at once (an open transaction
  // rolls back), a first one stops dispatch before it takes a lease.
  g_stop.request();
  if (g_stop.stage() >= 2 && !g_taking_leases.load()) ::_exit(128 + sig);
}

/// lag_us as the JSON summary gives it (man/dispatch.1): n, mean (0.1 µs), p50, p90, p99, p999
/// and max in whole microseconds.
nlohmann::json lag_us_json(const LagHistogram& h) {
  const LagUsSummary s = h.summary();
  return {{"n", s.n},     {"mean", std::round(s.mean * 10.0) / 10.0},
          {"p50", s.p50}, {"p90", s.p90},
          {"p99", s.p99}, {"p999", s.p999},
          {"max", s.max}};
}

/// The text summary's lag_us line.
std::string lag_us_line(const LagHistogram& h) {
  const LagUsSummary s = h.summary();
  if (s.n == 0) return "  lag to transport: no first requests sent\n";
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "  lag to transport (us): p50 %lld  p90 %lld  p99 %lld  p99.9 %lld  max %lld  mean %.1f  (n %llu)\n",
                static_cast<long long>(s.p50), static_cast<long long>(s.p90), static_cast<long long>(s.p99),
                static_cast<long long>(s.p999), static_cast<long long>(s.max), s.mean, static_cast<unsigned long long>(s.n));
  return buf;
}

/// The lag_us of run `id` in `summary` (empty when this dispatch did not have it).
LagHistogram run_lag_us(const engine::DispatchSummary& summary, std::int64_t id) {
  for (const auto& [run_id, h] : summary.lag_us_by_run) {
    if (run_id == id) return h;
  }
  return {};
}

/// The runs whose lease this dispatch took, and why the others were left.
struct LeasePass {
  std::vector<std::int64_t> owned;
  nlohmann::json skipped = nlohmann::json::array();
};

/// Takes each candidate run's lease through `acquire` (SQLite or PostgreSQL); a live owner keeps
/// its run and this dispatch sends nothing for it. A stop asked for before a lease takes none.
LeasePass take_leases(const AppContext& ctx, const std::vector<store::Run>& candidates, Millis now,
                      const std::function<store::LeaseResult(const store::Run&)>& acquire) {
  LeasePass pass;
  g_taking_leases.store(true);
  for (const auto& r : candidates) {
    if (g_stop.stage() > 0) {
      pass.skipped.push_back({{"run_id", r.run_id}, {"reason", "stop requested by a signal before its lease was taken"}});
      continue;
    }
    if (r.state == "closed" || r.state == "cancelled") {
      pass.skipped.push_back({{"run_id", r.run_id}, {"reason", "run is " + r.state}});
      continue;
    }
    const store::LeaseResult lease = acquire(r);
    if (!lease.acquired) {
      std::string hb = lease.previous_heartbeat ? std::to_string((now - *lease.previous_heartbeat) / 1000) + " s ago" : "never";
      ctx.log->warn("run {} ({}) is owned by {} (last heartbeat {}); not sending anything for it", r.run_id,
                    format_instant(r.slot_at, ctx.cfg.default_timezone), lease.previous_owner.value_or("?"), hb);
      pass.skipped.push_back({{"run_id", r.run_id}, {"reason", "owned by " + lease.previous_owner.value_or("?")}});
      continue;
    }
    if (lease.took_over) {
      ctx.log->warn("run {}: took over from {} whose lease expired", r.run_id, lease.previous_owner.value_or("?"));
    }
    pass.owned.push_back(r.run_id);
  }
  return pass;
}

/// The SLA figures of a run's stored report for dispatch's summary (sla_pct, eligible, on_time;
/// none when the text is not a report), and whether it missed the target.
bool add_report_figures(nlohmann::json& r, const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  r["sla_pct"] = j.value("sla_pct", 0.0);
  r["eligible"] = j.value("eligible", 0);
  r["on_time"] = j.value("on_time", 0);
  return j.value("sla_pct", 0.0) < kSlaTargetPct;
}

/// dispatch on the PostgreSQL ledger ([database] url): the same choice of runs, leases and
/// dispatcher, on PgDispatchLedger. Monitoring runs on this host (engine::HostMonitoring): the
/// live alert rules and their outbox in the host's SQLite file ([database] path, created and
/// migrated when missing), the metrics textfile, status figures read from PostgreSQL. The
/// dead-man's switch plans on this host's SQLite file and publishes (morning_deadman_pg);
/// content_held reads the held deliveries in PostgreSQL, on the one host holding its lock. An
/// urgent run published while this runs is adopted as on SQLite (the AdoptUrgent op). The report
/// of each run it closes is built by the same builder as on SQLite, from PostgreSQL in the
/// writer's transaction, and stored there (run_reports): its SLA % is in the summary and decides
/// the exit code, as on SQLite.
int dispatch_on_pg(AppContext& ctx, const std::vector<std::int64_t>& run_ids, const std::string& date, long lookahead_s) {
  const Clock& clock = *ctx.clock;
  std::string owner = engine::make_owner_id();
  // Hosts sharing one ledger tell themselves apart by host name; DAYBREAK_HOST_ID names the host
  // instead (two dispatch hosts on one machine, as the e2e test runs them).
  if (const char* host = std::getenv("DAYBREAK_HOST_ID"); host && *host) owner = host + owner.substr(owner.find(':'));
  store::PgDispatchLedger pg(ctx.cfg.database_url, owner, /*migrate=*/true);
  Millis now = clock.now();
  // 0. The dead-man's switch: a morning with no run in PostgreSQL is planned on this host's
  //    SQLite file and published, under the day lock (one host of two plans it).
  nlohmann::json deadman = {{"checked", false}};
  if (run_ids.empty()) {
    store::Db hostdb(ctx.cfg.database_path);
    deadman = morning_deadman_pg(hostdb, ctx.cfg, now, lookahead_s * 1000, *ctx.log);
    now = clock.now();
  }
  std::vector<store::Run> candidates;
  if (!run_ids.empty()) {
    for (auto id : run_ids) {
      auto r = pg.load_run(id);
      if (!r) throw UsageError("--run " + std::to_string(id) + ": no such run");
      candidates.push_back(*r);
    }
  } else {
    candidates = pg.list_dispatchable(now - ctx.cfg.dispatch.drain_after_deadline_ms, now + lookahead_s * 1000);
  }
  if (!date.empty()) std::erase_if(candidates, [&](const store::Run& r) { return r.date != date; });
  auto [owned, skipped] = take_leases(ctx, candidates, now, [&](const store::Run& r) {
    return pg.acquire_lease(r.run_id, now, ctx.cfg.dispatch.lease_ms);
  });
  nlohmann::json out = {{"ledger", "postgresql"}, {"owner", owner}, {"skipped", skipped}, {"deadman", deadman}};
  if (owned.empty()) {
    out["status"] = skipped.empty() ? "idle" : "skipped";
    out["runs"] = nlohmann::json::array();
    if (ctx.json) print_json(out);
    else std::cout << (skipped.empty() ? "nothing to dispatch: no run is due\n" : "nothing dispatched: every due run is owned elsewhere or finished\n");
    return kExitOk;
  }
  ctx.log->info("dispatching {} run(s) as {} on PostgreSQL", owned.size(), owner);
  auto transport = make_transport(ctx.cfg);
  engine::Dispatcher dispatcher(ctx.cfg, clock, *transport, store::pg_ledger_factory(ctx.cfg.database_url, owner),
                                engine::StopToken(g_stop), ctx.log);
  engine::HostMonitoring host;
  host.store_path = ctx.cfg.database_path;
  // Statuses land in PostgreSQL (pg_status): the delivered measure counts them there, on a
  // connection of the monitoring thread's own (opened on first use, again after a failure).
  host.status_figures = [url = ctx.cfg.database_url, conn = std::shared_ptr<store::PgConn>()](std::int64_t run_id,
                                                                                            Millis at) mutable {
    try {
      if (!conn) conn = std::make_shared<store::PgConn>(url);
      return store::pg_delivery_truth_for_run(*conn, run_id, at);
    } catch (...) {
      conn.reset();
      throw;
    }
  };
  // Held deliveries are in PostgreSQL too: content_held reads them there (its own connection).
  // They are the whole ledger's, not this dispatch's runs', so of the hosts sharing it only the
  // one holding content_held's PostgreSQL lock evaluates the rule (PgContentHeldReader), and its
  // alert is in that host's file alone; when that host dies its session ends and the next host's
  // monitoring takes the lock and raises it. A lock rather than "the host holding the day's
  // leases": held rows outlive their run (a closed run has no owner) and span days, and the
  // dispatch holding the morning run may exit while another host's keeps running.
  host.held_groups = store::PgContentHeldReader(ctx.cfg.database_url);
  // The textfile's last-run SLA: the ledger's last closed run's stored report, whichever host
  // closed it (the reports are stored in PostgreSQL, below), on a connection of its own.
  host.last_closed_report = [url = ctx.cfg.database_url, conn = std::shared_ptr<store::PgConn>()]() mutable {
    try {
      if (!conn) conn = std::make_shared<store::PgConn>(url);
      return store::pg_run_report_latest_closed(*conn);
    } catch (...) {
      conn.reset();
      throw;
    }
  };
  dispatcher.monitor_on_host(std::move(host));
  dispatcher.store_reports_in_ledger([](store::ReportLedger& ledger, const store::Run& run, Millis at) {
    const nlohmann::json report = build_run_report(ledger, run, at);
    return store::BuiltRunReport{report.at("sla_pct").get<double>(), report.dump()};
  });
  auto summary = dispatcher.run(owned);
  transport->shutdown();
  nlohmann::json runs_out = nlohmann::json::array();
  // The runs taken at start, then the urgent runs taken while dispatching (daybreak send-now), as on SQLite.
  std::vector<std::int64_t> reported = owned;
  reported.insert(reported.end(), summary.runs_adopted.begin(), summary.runs_adopted.end());
  bool sla_missed = false;
  for (auto id : reported) {
    auto run = pg.load_run(id);
    nlohmann::json r = {{"run_id", id},
                        {"state", run ? run->state : "?"},
                        {"kind", run ? run->kind : "?"},
                        {"lag_us", lag_us_json(run_lag_us(summary, id))}};
    // The stored report of a run this dispatch closed (one a run still open, or one another
    // host closed, has none of this dispatch's).
    if (run && (run->state == "closed" || run->state == "cancelled") &&
        std::find(summary.runs_closed.begin(), summary.runs_closed.end(), id) != summary.runs_closed.end()) {
      if (auto rep = store::pg_run_report_get(pg.conn(), id)) sla_missed = add_report_figures(r, *rep) || sla_missed;
    }
    runs_out.push_back(std::move(r));
  }
  out["status"] = summary.lost_lease ? "lost_lease" : summary.stopped_by_signal ? "stopped" : "done";
  out["runs"] = runs_out;
  out["deliveries"] = summary.deliveries;
  out["requests"] = summary.sent_requests;
  out["accepted"] = summary.accepted;
  out["accepted_on_time"] = summary.on_time;
  out["dead"] = summary.dead;
  out["uncertain_found"] = summary.uncertain_found;
  out["possible_duplicates"] = summary.possible_duplicates;
  out["reconciled"] = summary.reconciled;
  out["runs_left_open"] = summary.runs_left_open;
  out["runs_adopted"] = summary.runs_adopted;
  out["lag_us"] = lag_us_json(summary.lag_us);
  if (ctx.json) {
    print_json(out);
  } else {
    std::cout << "dispatch " << out["status"].get<std::string>() << " (PostgreSQL): " << summary.sent_requests << " requests, "
              << summary.accepted << " accepted (" << summary.on_time << " on time), " << summary.dead << " dead\n";
    std::cout << lag_us_line(summary.lag_us);
    const std::string action = deadman.value("action", "");
    if (action == "planned_and_published" || action == "published") {
      std::cout << "  dead-man's switch: " << deadman["date"].get<std::string>() << " had no run in PostgreSQL; "
                << (action == "published" ? "published the plan of this host's file" : "planned and published")
                << " (alert night_missed)\n";
    }
    for (const auto& r : runs_out) {
      std::cout << "  run " << r["run_id"] << (r["kind"] == "urgent" ? " (urgent)" : "") << ": " << r["state"].get<std::string>();
      if (r.contains("sla_pct")) std::cout << ", SLA " << r["sla_pct"].get<double>() << "%";
      std::cout << "\n";
    }
  }
  if (summary.lost_lease) return kExitCheckFailed;
  return sla_missed ? kExitCheckFailed : kExitOk;
}

}  // namespace

int dispatch_main(int argc, char** argv) {
  // First, before anything is read or any lease taken: a SIGTERM from systemd or an operator
  // between taking a lease and installing the handlers would kill dispatch holding the lease.
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  return run_main("dispatch", [&]() -> int {
    CLI::App app{"dispatch: send every delivery of the due runs at its planned time"};
    GlobalOptions g;
    add_global_options(app, g);
    std::string date;
    std::vector<std::int64_t> run_ids;
    long lookahead_s = 120;
    app.add_option("--date", date, "Only runs of this delivery day (YYYY-MM-DD)");
    app.add_option("--run", run_ids, "Dispatch these run ids (repeatable) instead of the due ones");
    app.add_option("--lookahead", lookahead_s, "Take runs whose window opens within this many seconds (default 120)")
        ->check(CLI::Range(0L, 86400L));
    bool supervise = false;
    int max_restarts = 5;
    app.add_flag("--supervise", supervise, "Run dispatch as a child process and restart it at once if it crashes");
    app.add_option("--max-restarts", max_restarts, "With --supervise: restarts before giving up (default 5)")
        ->check(CLI::Range(0, 1000));
    if (int rc = parse_cli(app, argc, argv); rc >= 0) return rc;
    if (!date.empty()) {
      if (auto d = parse_date(date); !d) throw UsageError("--date: " + d.error().message);
    }
    if (supervise) return supervise_dispatch(argc, argv, g, max_restarts);

    auto ctx = make_context(g, "dispatch");
    const Clock& clock = *ctx.clock;
    // Refuse a configuration we cannot send with before taking any lease: with no senders every
    // delivery would go dead, and a sender without an adapter would fail after the lease is held.
    if (ctx.cfg.senders.empty()) {
      throw ConfigError((ctx.cfg.source.empty() ? std::string("built-in defaults") : ctx.cfg.source) +
                        ": no senders configured ([[whatsapp.senders]]); nothing can be sent");
    }
    // Each adapter reads its sender's secret, and the alert sinks theirs: a token variable that
    // is not set stops dispatch here (exit 3, naming the key and the variable).
    for (const auto& s : ctx.cfg.senders) (void)channels::make_adapter(ctx.cfg, s);
    check_alert_secrets(ctx.cfg.alerts);
    if (!ctx.cfg.database_url.empty()) return dispatch_on_pg(ctx, run_ids, date, lookahead_s);
    store::Db db(ctx.cfg.database_path);
    Millis now = clock.now();

    // 0. The dead-man's switch: around the morning's slot, a day whose eligible advisors are
    //    not all planned (the nightly job never ran, or failed) is assigned and planned here, in
    //    this process, before any run is chosen; night_missed tells the on-call chain.
    nlohmann::json deadman = {{"checked", false}};
    if (run_ids.empty()) {
      deadman = morning_deadman(db, ctx.cfg, now, lookahead_s * 1000, *ctx.log);
      now = clock.now();
    }

    // 1. Which runs: named ones, else those whose window is open or opens within the lookahead,
    //    or that are past it but still unfinished (a crashed dispatch's run resumes here).
    std::vector<store::Run> candidates;
    if (!run_ids.empty()) {
      for (auto id : run_ids) {
        auto r = store::RunGet(db, id);
        if (!r) throw UsageError("--run " + std::to_string(id) + ": no such run");
        candidates.push_back(*r);
      }
    } else {
      candidates = store::RunListActive(db, now - ctx.cfg.dispatch.drain_after_deadline_ms, now + lookahead_s * 1000);
      // Runs an operator reopened (a resend or dead-letter replay) long after their window.
      for (auto& r : store::RunListReopened(db)) {
        if (std::none_of(candidates.begin(), candidates.end(), [&](const store::Run& c) { return c.run_id == r.run_id; }))
          candidates.push_back(std::move(r));
      }
    }
    if (!date.empty()) {
      std::erase_if(candidates, [&](const store::Run& r) { return r.date != date; });
    }

    // 2. Take each run's lease; a live owner keeps its run and we send nothing for it. A stop
    //    asked for before this point takes none.
    std::string owner = engine::make_owner_id();
    auto [owned, skipped] = take_leases(ctx, candidates, now, [&](const store::Run& r) {
      store::LeaseResult lease;
      db.write_tx([&] { lease = store::RunAcquireLease(db, r.run_id, owner, now, ctx.cfg.dispatch.lease_ms); });
      return lease;
    });
    if (owned.empty()) {
      if (ctx.json) {
        print_json({{"status", skipped.empty() ? "idle" : "skipped"}, {"skipped", skipped}, {"runs", nlohmann::json::array()},
                    {"deadman", deadman}});
      } else {
        std::cout << (skipped.empty() ? "nothing to dispatch: no run is due\n" : "nothing dispatched: every due run is owned elsewhere or finished\n");
      }
      return kExitOk;
    }
    ctx.log->info("dispatching {} run(s) as {}", owned.size(), owner);

    auto transport = make_transport(ctx.cfg);
    engine::Dispatcher dispatcher(ctx.cfg, clock, *transport, store::sqlite_ledger_factory(ctx.cfg.database_path, owner),
                                  engine::StopToken(g_stop), ctx.log);
    auto summary = dispatcher.run(owned, [](store::Db& wdb, std::int64_t run_id, Millis at) {
      if (auto run = store::RunGet(wdb, run_id)) store_run_report(wdb, *run, at);
    });
    transport->shutdown();

    // 3. Summary: the stored report of every run we closed decides the exit code.
    nlohmann::json runs_out = nlohmann::json::array();
    bool sla_missed = false;
    // The runs taken at start, then the urgent runs taken while dispatching (daybreak send-now).
    std::vector<std::int64_t> reported = owned;
    reported.insert(reported.end(), summary.runs_adopted.begin(), summary.runs_adopted.end());
    for (auto id : reported) {
      auto run = store::RunGet(db, id);
      nlohmann::json r = {{"run_id", id},
                          {"state", run ? run->state : "?"},
                          {"kind", store::RunKindGet(db, id)},
                          {"lag_us", lag_us_json(run_lag_us(summary, id))}};
      if (auto rep = store::SlaReportGet(db, id)) sla_missed = add_report_figures(r, *rep) || sla_missed;
      runs_out.push_back(r);
    }
    nlohmann::json out = {{"status", summary.lost_lease ? "lost_lease" : summary.stopped_by_signal ? "stopped" : "done"},
                          {"runs", runs_out},
                          {"skipped", skipped},
                          {"deliveries", summary.deliveries},
                          {"requests", summary.sent_requests},
                          {"accepted", summary.accepted},
                          {"accepted_on_time", summary.on_time},
                          {"dead", summary.dead},
                          {"uncertain_found", summary.uncertain_found},
                          {"possible_duplicates", summary.possible_duplicates},
                          {"reconciled", summary.reconciled},
                          {"emergency_substitutions", summary.emergency_substitutions},
                          {"held", summary.held},
                          {"breaker_opened", summary.breaker_opened},
                          {"numbers_paused", summary.numbers_paused},
                          {"accounts_stopped", summary.accounts_stopped},
                          {"unknown_error_codes", summary.unknown_error_codes},
                          {"held_for_quality", summary.held_for_quality},
                          {"operator_changes", summary.operator_changes},
                          {"writes_dropped", summary.writes_dropped},
                          {"rerouted_after_failed", summary.rerouted_after_failed},
                          {"failed_after_accept", summary.failed_after_accept},
                          {"whatsapp_held", summary.whatsapp_held},
                          {"runs_left_open", summary.runs_left_open},
                          {"runs_adopted", summary.runs_adopted},
                          {"lag_us", lag_us_json(summary.lag_us)},
                          {"deadman", deadman}};
    if (ctx.json) {
      print_json(out);
    } else {
      std::cout << "dispatch " << out["status"].get<std::string>() << ": " << summary.sent_requests << " requests, "
                << summary.accepted << " accepted (" << summary.on_time << " on time), " << summary.dead << " dead";
      if (summary.uncertain_found) std::cout << ", " << summary.uncertain_found << " uncertain after a crash";
      if (summary.rerouted_after_failed) {
        std::cout << ", " << summary.rerouted_after_failed << " moved to the next channel after a failed WhatsApp status";
      }
      if (summary.whatsapp_held) std::cout << ", " << summary.whatsapp_held << " off WhatsApp (held after 131049)";
      std::cout << "\n" << lag_us_line(summary.lag_us);
      if (deadman.value("inserted", 0) > 0) {
        std::cout << "  dead-man's switch: " << deadman["date"].get<std::string>() << " was not planned; planned "
                  << deadman["inserted"] << " deliveries at start (alert night_missed)\n";
      }
      for (const auto& r : runs_out) {
        std::cout << "  run " << r["run_id"] << (r["kind"] == "urgent" ? " (urgent)" : "") << ": " << r["state"].get<std::string>();
        if (r.contains("sla_pct")) std::cout << ", SLA " << r["sla_pct"].get<double>() << "%";
        std::cout << "\n";
      }
    }
    if (summary.lost_lease) return kExitCheckFailed;
    return sla_missed ? kExitCheckFailed : kExitOk;
  });
}

}  // namespace daybreak
