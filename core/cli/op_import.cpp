// `daybreak import advisors|content|assignments FILE`: wires the flags and calls run_import
// (core/app/import.cpp), which holds the logic. See man/daybreak.1, IMPORT.
#include <spdlog/logger.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "app/import.hpp"
#include "store/db.hpp"

namespace daybreak {
namespace {

struct ImportFlags {
  std::string kind;
  std::string file;
  bool dry_run = false;
  std::string source = "editorial";
  std::size_t max_errors = 100;
  std::string reason;
};

int run_import_command(const GlobalOptions& g, const ImportFlags& f, const CLI::App& cmd) {
  AppContext ctx = make_context(g, "daybreak");
  ImportOptions opts;
  opts.kind = *import_kind_from_string(f.kind);  // CLI11 already checked the word
  opts.path = f.file;
  opts.dry_run = f.dry_run;
  opts.max_problems = f.max_errors;
  opts.reason = f.reason;
  opts.actor = current_actor();
  opts.sudo_user = current_sudo_user();
  if (cmd.count("--source") > 0 && opts.kind != ImportKind::assignments) {
    throw UsageError("--source applies to assignments only");
  }
  opts.source = *source_from_string(f.source);

  ImportRules rules;
  rules.tiers = ctx.cfg.tiers;
  rules.default_timezone = ctx.cfg.default_timezone;
  rules.default_slot = ctx.cfg.default_slot;

  // A dry run must not create a database as a side effect; without one, assignment rows simply
  // name unknown advisors and content, which is the truth for an empty ledger.
  std::unique_ptr<store::Db> db;
  std::error_code ec;
  if (!f.dry_run || std::filesystem::exists(ctx.cfg.database_path, ec)) {
    store::OpenOptions oo;
    oo.migrate = !f.dry_run;
    db = std::make_unique<store::Db>(ctx.cfg.database_path, oo);
  }

  // Elapsed time is for the operator's information only; a monotonic clock, not the wall clock.
  auto started = std::chrono::steady_clock::now();
  ImportReport r = run_import(db.get(), rules, opts, ctx.clock->now());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // The log line is for cron logs and timing; a rejected file's problems are the command's
  // output (stderr in text mode, stdout in JSON mode), so they are not logged a second time.
  if (r.ok() && r.dry_run) {
    ctx.log->info("import {}: {} rows from {} validated (dry run) in {:.1f} s", f.kind, r.rows, r.file, seconds);
  } else if (r.ok()) {
    ctx.log->info("import {}: {} rows from {} imported in {:.1f} s, written in {:.0f} ms (write lock held)", f.kind,
                  r.rows, r.file, seconds, r.write_lock_ms);
  } else if (g.json) {
    ctx.log->warn("import {}: {} rejected: {} problem(s) in {} rows", f.kind, r.file, r.problem_count, r.rows);
  }
  if (g.json) {
    auto j = import_report_json(r);
    j["seconds"] = static_cast<double>(static_cast<long long>(seconds * 1000)) / 1000.0;
    j["write_lock_ms"] = static_cast<double>(static_cast<long long>(r.write_lock_ms * 10)) / 10.0;
    print_json(j);
    return r.ok() ? kExitOk : kExitCheckFailed;
  }
  if (!r.ok()) throw CheckFailed(format_import_report(r));
  std::cout << format_import_report(r) << "\n";
  return kExitOk;
}

}  // namespace

void add_import_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* cmd = app.add_subcommand("import", "Validate a CSV file and import all of it, or nothing");
  cmd->footer(
      "Every row is checked (E.164 phones, IANA time zones, HH:MM slots, known tiers and channels,\n"
      "duplicate ids); a file with any problem is rejected whole, naming every bad row and field.\n"
      "Exit status: 0 imported (or valid, with --dry-run), 1 rejected, 2 usage, 3 configuration, 4 database.");
  // Global flags may follow the subcommand too: `daybreak import advisors a.csv --json`.
  cmd->fallthrough();
  auto f = std::make_shared<ImportFlags>();
  cmd->add_option("kind", f->kind, "What the file holds: advisors, content or assignments")
      ->required()
      ->check(CLI::IsMember({"advisors", "content", "assignments"}));
  cmd->add_option("file", f->file, "CSV file with the documented header; - reads standard input")->required();
  cmd->add_flag("--dry-run", f->dry_run, "Validate and report, write nothing");
  cmd->add_option("--source", f->source, "Assignments only: editorial (default) or advisor")
      ->check(CLI::IsMember({"editorial", "advisor"}));
  cmd->add_option("--max-errors", f->max_errors, "Problems to list (all are counted); 0 lists all")->default_val(100);
  cmd->add_option("--reason", f->reason, "Why, for the audit log");
  cmd->callback([&g, &action, f, cmd] { action = [&g, f, cmd] { return run_import_command(g, *f, *cmd); }; });
}

}  // namespace daybreak
