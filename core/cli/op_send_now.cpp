// `daybreak send-now --content ID --segment all|tier:T|language:L|list:FILE --reason R`: one item
// to a segment at once, as a run of kind urgent (app/send_now.hpp). The capacity verdict is
// printed before anything is written; without --yes the operator confirms on a terminal, and
// without a terminal the command refuses (exit 2). After the write, a running dispatch adopts the
// run within two seconds (engine/dispatcher.cpp, adopt_urgent); when no dispatch is running,
// send-now runs one watchdog tick (daybreak-watchdog, which starts `dispatch --supervise` under
// the dispatch job's lock) instead of waiting for the next minute's tick.
// With [database] url the run is planned on the SQLite file as above and published to the
// PostgreSQL ledger at once, under the day lock taken before the SQLite write (app/publish.hpp),
// with its kind (sql/postgresql/006): a dispatch running there, on any host, adopts it the same
// way, else the watchdog tick starts one.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "app/publish.hpp"
#include "app/send_now.hpp"
#include "cli/commands.hpp"
#include "cli/op_actions.hpp"
#include "cli/op_support.hpp"
#include "store/pg_ledger.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;

struct SendNowOptions {
  std::string content_id;
  std::string segment;
  int deadline_minutes = 15;
  bool yes = false;
  std::string reason;
  bool dry_run = false;
};

/// How long send-now waits for a running dispatch to take the run (its clock: three of the
/// dispatch's adoption polls) before starting one itself.
constexpr Millis kPickupWaitMs = 6000;

/// The installed watchdog: libexec/daybreak beside this binary's directory (the installed layout:
/// PREFIX/bin/daybreak, PREFIX/libexec/daybreak/daybreak-watchdog). A build tree has none.
std::optional<std::string> find_watchdog() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  const auto p = exe.parent_path().parent_path() / "libexec" / "daybreak" / "daybreak-watchdog";
  if (::access(p.c_str(), X_OK) != 0) return std::nullopt;
  return p.string();
}

/// Runs one watchdog tick (it starts dispatch in the background and returns at once); its exit code.
int run_watchdog(const std::string& path) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // its line goes with the verdict, not into --json's output
    ::execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// Asks on the terminal; true on y/yes.
bool confirm(const std::string& question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes" || answer == "YES";
}

/// Who sends urgent run `run_id`: a running dispatch adopts it (waited for up to kPickupWaitMs);
/// else one watchdog tick starts a dispatch. `state` reads the pickup state at an instant
/// (send_now_pickup_state on SQLite, send_now_pickup_state_pg on PostgreSQL). Sets `how`.
nlohmann::json pick_up(const Clock& clock, std::int64_t run_id, const std::function<nlohmann::json(Millis)>& state, std::string& how) {
  auto pickup = state(clock.now());
  if (pickup["dispatch_running"].get<bool>()) {
    const Millis until = clock.steady_ms() + kPickupWaitMs;
    while (pickup["run_owner"].is_null() && clock.steady_ms() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      pickup = state(clock.now());
    }
  }
  if (!pickup["run_owner"].is_null()) {
    pickup["action"] = "taken";
    how = "taken by the running dispatch " + pickup["run_owner"].get<std::string>();
  } else if (auto wd = find_watchdog()) {
    const int rc = run_watchdog(*wd);
    pickup["action"] = "watchdog";
    pickup["watchdog"] = *wd;
    pickup["watchdog_exit"] = rc;
    how = rc == 0 ? "no dispatch took it; started one through " + *wd + " (dispatch --supervise under daybreak-job)"
                  : "no dispatch took it and " + *wd + " exited " + std::to_string(rc) +
                        "; run: daybreak-job dispatch -- dispatch --supervise";
  } else {
    pickup["action"] = "none";
    how = "no dispatch is running and no daybreak-watchdog is installed here: run `dispatch --run " + std::to_string(run_id) +
          "` now (the watchdog timer or crontab line starts a dispatch within a minute where installed)";
  }
  return pickup;
}

/// send-now on PostgreSQL: the urgent run just written to the SQLite file goes to the ledger on
/// `pgc` (whose session holds the day lock, released once published); a dispatch running on
/// any host there adopts it as on SQLite, else one watchdog tick starts a dispatch here.
int publish_send_now(ops::OpEnv& env, store::PgConn& pgc, const SendNowPlan& plan, std::int64_t run_id, nlohmann::json out) {
  const auto& cfg = env.ctx.cfg;
  nlohmann::json pub;
  try {
    pub = publish_day_locked(pgc, cfg, plan.date, run_id);
    store::pg_unlock_day(pgc, plan.date);
  } catch (const std::exception& e) {
    throw PublishError("send-now: urgent run " + std::to_string(run_id) + " is written to " + cfg.database_path +
                       " but NOT published to the PostgreSQL ledger at " + store::pg_url_for_display(cfg.database_url) + ": " +
                       e.what() + "; no dispatch sends it from there: run send-now again once PostgreSQL answers");
  }
  const auto pg_run = published_run_id(pub, run_id).value_or(run_id);
  out["ledger"] = "postgresql";
  out["sqlite_run_id"] = run_id;
  out["run_id"] = pg_run;
  out["published"] = pub;
  // A dispatch running on any host sharing the ledger adopts it (sql/postgresql/006's kind), as on SQLite.
  std::string how;
  auto pickup = pick_up(*env.ctx.clock, pg_run, [&](Millis now) { return send_now_pickup_state_pg(pgc, pg_run, now); }, how);
  pickup["ledger"] = "postgresql";
  how = "published to PostgreSQL; " + how;
  pickup["message"] = how;
  out["pickup"] = pickup;
  std::ostringstream human;
  human << "urgent run " << pg_run << " written: " << out["deliveries"] << " deliveries of " << plan.content_id << ", deadline "
        << format_instant(plan.window.deadline, cfg.default_timezone) << "; " << how;
  ops::emit(env, out, human.str());
  return kExitOk;
}

int run_send_now(const GlobalOptions& g, const SendNowOptions& o) {
  ops::require_reason(o.reason);
  std::vector<std::string> list_ids;
  if (o.segment.rfind("list:", 0) == 0) {
    const std::string file = o.segment.substr(5);
    std::ifstream in(file);
    if (!in) throw UsageError("--segment list:" + file + ": cannot read the file");
    std::stringstream ss;
    ss << in.rdbuf();
    list_ids = parse_advisor_list(ss.str());
  }
  SendNowRequest req;
  req.content_id = o.content_id;
  req.segment = parse_send_now_segment(o.segment, list_ids);
  req.deadline_minutes = o.deadline_minutes;
  req.reason = o.reason;
  const auto who = ops::cli_actor();
  req.actor = who.name;
  req.sudo_user = who.sudo_user;
  req.command = who.command;

  auto env = ops::open_env(g);
  auto& db = *env.db;
  const auto& tz = env.ctx.cfg.default_timezone;
  auto plan = prepare_send_now(db, env.ctx.cfg, req, env.now);
  const std::string verdict = format_send_now_verdict(plan.verdict, tz);
  nlohmann::json out = plan.report;
  out["command"] = "send-now";
  out["dry_run"] = o.dry_run;
  // The verdict goes to stderr with --json (stdout is the JSON), else to stdout.
  std::ostream& show = env.ctx.json ? std::cerr : std::cout;
  show << "send-now: content " << plan.content_id << " to " << plan.segment << ": " << plan.rows.size() << " of "
       << plan.eligible << " eligible advisors reachable";
  if (!plan.list_unknown.empty()) show << ", " << plan.list_unknown.size() << " listed ids not eligible today";
  show << "\n" << verdict;
  if (plan.verdict.refused) throw CheckFailed("send-now refused: " + plan.verdict.refusal);
  if (o.dry_run) {
    ops::emit(env, out, "dry run: nothing written");
    return kExitOk;
  }
  if (!o.yes) {
    if (!::isatty(STDIN_FILENO)) {
      throw UsageError("send-now: not confirmed: standard input is not a terminal; read the verdict above and run again with --yes");
    }
    if (!confirm("send " + std::to_string(plan.rows.size()) + " urgent deliveries now?")) {
      throw UsageError("send-now: not confirmed; nothing written");
    }
  }
  const Clock& clock = *env.ctx.clock;
  const auto& cfg = env.ctx.cfg;
  // On PostgreSQL: reach it and take the day lock before anything is written, so a ledger that
  // does not answer leaves nothing behind.
  std::unique_ptr<store::PgConn> pgc;
  if (!cfg.database_url.empty()) {
    try {
      pgc = std::make_unique<store::PgConn>(cfg.database_url);
      store::pg_migrate(*pgc);
      if (!store::pg_lock_day(*pgc, plan.date, kDayLockWaitMs)) throw PublishError("another host holds the day lock of " + plan.date);
    } catch (const std::exception& e) {
      throw PublishError("send-now: nothing written: the PostgreSQL ledger at " + store::pg_url_for_display(cfg.database_url) +
                         " cannot take the urgent run: " + e.what());
    }
  }
  const Millis write_at = clock.now();
  auto res = commit_send_now(db, cfg, plan, req, write_at);
  const auto run_id = res["run_id"].get<std::int64_t>();
  for (auto& [k, v] : res.items()) out[k] = v;
  if (pgc) return publish_send_now(env, *pgc, plan, run_id, std::move(out));

  std::string how;
  auto pickup = pick_up(clock, run_id, [&](Millis now) { return send_now_pickup_state(db, run_id, now); }, how);
  pickup["message"] = how;
  out["pickup"] = pickup;
  std::ostringstream human;
  human << "urgent run " << run_id << " written: " << res["deliveries"] << " deliveries of " << plan.content_id << ", deadline "
        << format_instant(plan.window.deadline, tz) << "; " << how;
  ops::emit(env, out, human.str());
  return kExitOk;
}

}  // namespace

void add_send_now_command(CLI::App& app, GlobalOptions& g, Action& action) {
  auto o = std::make_shared<SendNowOptions>();
  auto* sub = app.add_subcommand("send-now", "Send one content item to a segment of advisors now, as an urgent run");
  sub->fallthrough();
  sub->add_option("--content", o->content_id, "Content id (must be usable today: not withdrawn, valid today)")->required();
  sub->add_option("--segment", o->segment, "Who: all, tier:T, language:L or list:FILE (one advisor id per line)")->required();
  sub->add_option("--deadline-minutes", o->deadline_minutes, "The urgent run's deadline, minutes from now (default 15)")
      ->check(CLI::Range(1, 1440));
  sub->add_flag("--yes", o->yes, "Do not ask for confirmation (required when standard input is not a terminal)");
  ops::add_change_flags(sub, o->reason, o->dry_run);
  sub->callback([o, &g, &action] { action = [o, &g] { return run_send_now(g, *o); }; });
}

}  // namespace daybreak
