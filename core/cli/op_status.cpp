// `daybreak status [--json]`: what an operator needs at a glance: who owns which run and
// whether its lease is live, each active run's live progress (runs.progress, rewritten every
// second by dispatch), the pause switches, dead letters and firing alerts, the next cron steps
// (computed from the injected clock, so DAYBREAK_CLOCK shows them for a simulated night), and
// whether the next delivery day is planned and feasible. With [database] url the runs, switches
// and dead letters come from PostgreSQL and the alerts from this host's SQLite file, where a
// dispatch on PostgreSQL keeps the alerts it raised (null when that file does not exist).
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/op_support.hpp"
#include "app/plan.hpp"
#include "app/schedule.hpp"
#include "domain/schedule.hpp"
#include "domain/time.hpp"
#include "store/overrides.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_status.hpp"
#include "store/runs.hpp"
#include "store/status_events.hpp"

namespace daybreak {
namespace {

/// The next instant after `now` at local `minutes` in the schedule's zone ([schedule]).
Millis next_local(Millis now, int minutes, const std::string& zone) {
  auto t = next_daily_after(now, minutes, zone);
  if (!t) throw ConfigError(t.error().message);
  return *t;
}

nlohmann::json run_json(const store::Run& r, Millis now, const std::string& tz) {
  nlohmann::json j = {{"run_id", r.run_id},
                      {"date", r.date},
                      {"slot_at", format_instant(r.slot_at, tz)},
                      {"state", r.state},
                      {"planned_count", r.planned_count},
                      {"feasible", r.feasible},
                      {"owner", r.owner ? nlohmann::json(*r.owner) : nlohmann::json(nullptr)},
                      {"lease_live", r.owner && r.lease_until && *r.lease_until > now},
                      {"heartbeat_at", r.heartbeat_at ? nlohmann::json(format_instant(*r.heartbeat_at, tz)) : nlohmann::json(nullptr)},
                      {"heartbeat_age_ms", r.heartbeat_at ? nlohmann::json(now - *r.heartbeat_at) : nlohmann::json(nullptr)}};
  auto p = nlohmann::json::parse(r.progress, nullptr, false);
  j["progress"] = p.is_discarded() ? nlohmann::json::object() : p;
  return j;
}

std::int64_t count(store::Db& db, const std::string& sql) {
  return store::guarded("status count", [&] {
    auto& q = db.stmt(sql);
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

/// What status reads from the ledger: the SQLite file, or the PostgreSQL ledger when
/// [database] url is set (the alerts then from this host's SQLite file: read_host_alerts).
struct StatusData {
  std::string ledger;
  std::vector<store::Run> active;
  std::vector<store::Control> controls;
  std::int64_t dead = 0;
  std::optional<std::int64_t> firing, unacked;
  std::vector<store::Run> next_day_runs;
};

StatusData read_sqlite_status(store::Db& db, Millis from, Millis now, const std::string& next_day) {
  StatusData d;
  d.ledger = "sqlite";
  // Runs in progress: running, or with an open or recent window (a run whose dispatch died shows here).
  d.active = store::RunListActive(db, from, now);
  for (const auto& r : store::RunListRecent(db, 20)) {
    if (r.state != "running") continue;
    bool listed = false;
    for (const auto& a : d.active) listed = listed || a.run_id == r.run_id;
    if (!listed) d.active.push_back(r);
  }
  d.controls = store::ControlList(db);
  d.dead = store::DeadCount(db);
  d.firing = count(db, "SELECT COUNT(*) FROM alerts WHERE state = 'firing'");
  d.unacked = count(db, "SELECT COUNT(*) FROM alerts WHERE state = 'firing' AND acknowledged_at IS NULL");
  d.next_day_runs = store::RunListForDate(db, next_day);
  return d;
}

/// Alerts of a dispatch on PostgreSQL live on its host's SQLite file ([database] path;
/// engine::HostStore writes them there): counted from that file, read-only, when it exists and
/// has them; nullopt when there is no file (or it has no alerts table yet).
void read_host_alerts(const std::string& path, StatusData& d) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  try {
    store::OpenOptions ro;
    ro.read_only = true;
    ro.migrate = false;
    store::Db db(path, ro);
    d.firing = count(db, "SELECT COUNT(*) FROM alerts WHERE state = 'firing'");
    d.unacked = count(db, "SELECT COUNT(*) FROM alerts WHERE state = 'firing' AND acknowledged_at IS NULL");
  } catch (const store::StoreError&) {
    d.firing.reset();  // not a ledger file yet (no alerts table): nothing known
    d.unacked.reset();
  }
}

int run_status(const GlobalOptions& g) {
  AppContext ctx = make_context(g, "daybreak");
  const auto& cfg = ctx.cfg;
  const auto& tz = cfg.default_timezone;
  const Millis now = ctx.clock->now();
  std::string next_day = default_delivery_date(cfg, now);
  const Millis from = now - cfg.dispatch.drain_after_deadline_ms;
  StatusData data;
  if (!cfg.database_url.empty()) {
    // dispatch's ledger is on PostgreSQL: runs, leases, progress, switches and dead letters are
    // read there (read-only); the alerts a dispatch on this host raised, on this host's file.
    auto v = store::pg_status_view(cfg.database_url, from, now, next_day);
    data.ledger = "postgresql";
    data.active = std::move(v.active);
    data.controls = std::move(v.controls);
    data.dead = v.dead;
    data.next_day_runs = std::move(v.next_day_runs);
    read_host_alerts(cfg.database_path, data);
  } else {
    auto env = ops::open_env(g);
    data = read_sqlite_status(*env.db, from, now, next_day);
  }

  nlohmann::json active = nlohmann::json::array();
  std::vector<std::string> owners;
  for (const auto& r : data.active) active.push_back(run_json(r, now, tz));
  for (const auto& a : active) {
    if (a["lease_live"].get<bool>()) owners.push_back(a["owner"].get<std::string>());
  }

  nlohmann::json paused = nlohmann::json::object();
  for (const auto& c : data.controls) {
    if (c.key.rfind("pause", 0) == 0 && c.value == "1") {
      paused[c.key] = {{"since", format_instant(c.updated_at, tz)}, {"by", c.updated_by}};
    }
  }

  const std::int64_t dead = data.dead;
  auto opt_json = [](const std::optional<std::int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };

  // The scheduled steps, from [schedule]; whether what is installed fires then is `schedule`.
  const std::string& zone = cfg.schedule.timezone;
  Millis nightly = next_local(now, cfg.schedule.nightly_minutes, zone);
  Millis dispatch = next_local(now, cfg.schedule.dispatch_minutes, zone);
  std::string nightly_day = default_delivery_date(cfg, nightly);
  nlohmann::json next_steps = nlohmann::json::array(
      {{{"step", "assign-fallback + plan-deliveries"}, {"at", format_instant(nightly, zone)}, {"for_date", nightly_day},
        {"in_s", (nightly - now) / 1000}},
       {{"step", "dispatch"}, {"at", format_instant(dispatch, zone)}, {"in_s", (dispatch - now) / 1000}}});
  std::vector<ScheduleRow> schedule_rows;
  nlohmann::json installed = inspect_installed_schedule(cfg, now, host_timezone(), schedule_rows);

  nlohmann::json next_runs = nlohmann::json::array();
  bool planned = false, feasible = true;
  for (const auto& r : data.next_day_runs) {
    planned = true;
    feasible = feasible && r.feasible;
    auto rep = nlohmann::json::parse(r.plan_report, nullptr, false);
    next_runs.push_back({{"run_id", r.run_id}, {"slot_at", format_instant(r.slot_at, tz)}, {"state", r.state},
                         {"planned_count", r.planned_count}, {"feasible", r.feasible},
                         {"plan_report", rep.is_discarded() ? nlohmann::json::object() : rep}});
  }

  nlohmann::json out = {{"now", format_instant(now, tz)},
                        {"ledger", data.ledger},
                        {"dispatch_owners", owners},
                        {"dispatch_running", !owners.empty()},
                        {"runs", active},
                        {"paused", paused},
                        {"dead_letters", dead},
                        {"alerts_firing", opt_json(data.firing)},
                        {"alerts_unacknowledged", opt_json(data.unacked)},
                        {"next_steps", next_steps},
                        {"schedule", installed},
                        {"next_day", {{"date", next_day}, {"planned", planned}, {"feasible", planned && feasible}, {"runs", next_runs}}}};
  if (ctx.json) {
    print_json(out);
    return kExitOk;
  }
  std::ostringstream s;
  s << "now " << out["now"].get<std::string>() << "\n";
  if (data.ledger == "postgresql") s << "ledger: PostgreSQL ([database] url)\n";
  s << "dispatch: " << (owners.empty() ? std::string("not running") : "running as " + join_list(owners, ',')) << "\n";
  for (const auto& r : active) {
    const auto& p = r["progress"];
    s << "  run " << r["run_id"] << " " << r["date"].get<std::string>() << " " << r["state"].get<std::string>() << ", owner "
      << (r["owner"].is_null() ? std::string("none") : r["owner"].get<std::string>())
      << (r["lease_live"].get<bool>() ? " (lease live" : " (no live lease");
    if (!r["heartbeat_age_ms"].is_null()) s << ", heartbeat " << r["heartbeat_age_ms"].get<std::int64_t>() / 1000 << " s ago";
    s << ")";
    if (p.contains("live") && p["live"].is_object() && p["live"].value("run_kind", std::string()) == "urgent") s << " urgent";
    if (p.contains("accepted")) s << ": " << p["accepted"] << "/" << r["planned_count"] << " accepted";
    if (p.contains("live_success_pct")) s << ", live success " << p["live_success_pct"] << "%";
    if (p.contains("backlog")) s << ", backlog " << p["backlog"];
    if (p.contains("breakers")) s << ", breakers " << p["breakers"].dump();
    s << "\n";
  }
  s << "paused: " << (paused.empty() ? std::string("nothing") : "");
  bool first = true;
  for (const auto& [k, v] : paused.items()) {
    s << (first ? "" : ", ") << k << " (by " << v["by"].get<std::string>() << " at " << v["since"].get<std::string>() << ")";
    first = false;
  }
  s << "\ndead letters: " << dead << "\n";
  if (data.firing) {
    s << "alerts firing: " << *data.firing << " (" << data.unacked.value_or(0) << " unacknowledged)"
      << (data.ledger == "postgresql" ? " on this host's file" : "") << "\n";
  } else {
    s << "alerts: unknown, no SQLite file with alerts on this host (" << cfg.database_path
      << "; a dispatch on PostgreSQL keeps its alerts there)\n";
  }
  for (const auto& st : next_steps) s << "next: " << st["step"].get<std::string>() << " at " << st["at"].get<std::string>() << "\n";
  for (const auto& r : schedule_rows) s << (r.ok ? "  " : "  PROBLEM ") << r.name << ": " << r.message << "\n";
  s << "next delivery day " << next_day << ": "
    << (!planned ? std::string("NOT PLANNED") : feasible ? std::string("planned, feasible") : std::string("planned, INFEASIBLE"));
  for (const auto& r : next_runs) s << "\n  run " << r["run_id"] << " " << r["slot_at"].get<std::string>() << ": " << r["planned_count"] << " deliveries";
  std::cout << s.str() << "\n";
  return kExitOk;
}

// `daybreak status rejected [--since T] [--limit N]`: statuses (or changes, entries) of status
// webhooks that daybreak-callbacks could not read and rejected one by one, with their reasons,
// while the rest of each body was applied.
struct RejectedOptions {
  std::string since;
  std::int64_t limit = 50;
};

int run_rejected(const GlobalOptions& g, const RejectedOptions& o) {
  AppContext ctx = make_context(g, "daybreak");
  const auto& tz = ctx.cfg.default_timezone;
  std::vector<store::StatusRejectRow> rows;
  std::int64_t total = 0;
  Millis since = 0;
  const bool on_pg = !ctx.cfg.database_url.empty();
  if (on_pg) {
    // daybreak-callbacks with [database] url keeps the rejected elements in PostgreSQL.
    const Millis now = ctx.clock->now();
    since = o.since.empty() ? now - 7 * 86'400'000LL : ops::parse_time_arg("--since", o.since, tz);
    store::PgConn c(ctx.cfg.database_url);
    rows = store::pg_status_reject_list(c, since, o.limit);
    total = store::pg_status_reject_count_since(c, since);
  } else {
    auto env = ops::open_env(g);
    since = o.since.empty() ? env.now - 7 * 86'400'000LL : ops::parse_time_arg("--since", o.since, tz);
    rows = store::StatusRejectList(*env.db, since, o.limit);
    total = store::StatusRejectCountSince(*env.db, since);
  }
  if (ctx.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : rows) {
      list.push_back({{"reject_id", r.reject_id},
                      {"event_id", r.event_id},
                      {"received_at", format_instant(r.received_at, tz)},
                      {"path", r.reject.path},
                      {"provider_message_id", r.reject.provider_message_id},
                      {"reason", r.reject.reason},
                      {"excerpt", r.reject.excerpt}});
    }
    nlohmann::json j = {{"since", format_instant(since, tz)}, {"total", total}, {"shown", rows.size()}, {"rejected", list}};
    if (on_pg) j["ledger"] = "postgresql";
    print_json(j);
    return kExitOk;
  }
  std::cout << total << " status element(s) rejected since " << format_instant(since, tz) << " (the rest of their webhooks was applied)";
  if (static_cast<std::int64_t>(rows.size()) < total) std::cout << "; " << rows.size() << " shown";
  std::cout << "\n";
  for (const auto& r : rows) {
    std::cout << "  event " << r.event_id << "  " << format_instant(r.received_at, tz) << "  "
              << (r.reject.provider_message_id.empty() ? std::string("(no id)") : r.reject.provider_message_id) << "\n    "
              << r.reject.reason << "\n    " << r.reject.excerpt << "\n";
  }
  return kExitOk;
}

}  // namespace

void add_status_command(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* sub = app.add_subcommand("status", "What is running now, what is next, and whether the next day is planned and feasible");
  sub->fallthrough();
  auto o = std::make_shared<RejectedOptions>();
  auto* rej = sub->add_subcommand("rejected", "Status-webhook elements daybreak-callbacks rejected one by one, with their reasons");
  rej->fallthrough();
  rej->add_option("--since", o->since, "Received at or after (YYYY-MM-DD or ISO-8601; default: 7 days ago)");
  rej->add_option("--limit", o->limit, "At most this many, newest first")->check(CLI::PositiveNumber)->capture_default_str();
  rej->callback([o, &g, &action] { action = [o, &g] { return run_rejected(g, *o); }; });
  sub->callback([rej, &g, &action] {
    if (rej->parsed()) return;  // `status rejected`: its own action stands
    action = [&g] { return run_status(g); };
  });
}

}  // namespace daybreak
