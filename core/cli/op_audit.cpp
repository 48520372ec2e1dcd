// `daybreak audit [--since --until --actor --command --target --limit] [--json]`: the audit log,
// newest first (every change is recorded with actor, reason and before → after).
#include <iostream>

#include "cli/commands.hpp"
#include "cli/op_support.hpp"

namespace daybreak {
namespace {

struct AuditOptions {
  std::string since, until, actor, command, target;
  std::int64_t limit = 100;
};

int run_audit(const GlobalOptions& g, const AuditOptions& o) {
  auto env = ops::open_ledger_env(g);  // the PostgreSQL ledger's audit_log when [database] url is set
  const auto& tz = env.ctx.cfg.default_timezone;
  store::AuditListParams p;
  if (!o.since.empty()) p.since = ops::parse_time_arg("--since", o.since, tz);
  if (!o.until.empty()) p.until = ops::parse_time_arg("--until", o.until, tz);
  if (p.since && p.until && *p.until <= *p.since) throw UsageError("--until must be after --since");
  p.actor = o.actor;
  p.command = o.command;
  p.target = o.target;
  p.limit = o.limit;
  std::int64_t n = 0;
  auto each = [&](const store::AuditRow& r) {
    ++n;
    if (env.ctx.json) {
      print_json(ops::to_json(r, tz));  // NDJSON, one row per line
      return;
    }
    const auto& e = r.entry;
    std::cout << format_instant(e.at, tz) << "  " << e.actor << (e.sudo_user.empty() ? "" : " (sudo " + e.sudo_user + ")") << "  "
              << e.target << "\n    " << e.command << "\n    reason: " << e.reason << "\n";
    if (!e.before.empty()) std::cout << "    before: " << e.before << "\n";
    if (!e.after.empty()) std::cout << "    after:  " << e.after << "\n";
  };
  if (env.pg) {
    env.pg->audit_list(p, each);
  } else {
    store::AuditList(*env.db, p, each);
  }
  if (!env.ctx.json) std::cout << n << " audit row(s)\n";
  return kExitOk;
}

}  // namespace

void add_audit_command(CLI::App& app, GlobalOptions& g, Action& action) {
  auto o = std::make_shared<AuditOptions>();
  auto* sub = app.add_subcommand("audit", "The audit log of operator changes, newest first (NDJSON with --json)");
  sub->fallthrough();
  sub->add_option("--since", o->since, "At or after (YYYY-MM-DD or ISO-8601)");
  sub->add_option("--until", o->until, "Before (YYYY-MM-DD or ISO-8601)");
  sub->add_option("--actor", o->actor, "OS user or SUDO_USER");
  sub->add_option("--command", o->command, "Command line contains this text (e.g. \"dead replay\")");
  sub->add_option("--target", o->target, "Exactly this target (e.g. delivery:42, advisor:A1, run:3)");
  sub->add_option("--limit", o->limit, "At most this many rows (default 100; 0 = all)")->check(CLI::NonNegativeNumber);
  sub->callback([o, &g, &action] { action = [o, &g] { return run_audit(g, *o); }; });
}

}  // namespace daybreak
