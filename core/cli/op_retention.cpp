// `daybreak retention purge|archive [--older-than N] [--batch 5000] [--archive-dir DIR]`: deletes
// runs of delivery days more than N days before today (default zone; N from [retention] runs_days
// when not given, 0 there keeping every run) with their deliveries, attempts, change notes and
// report. The nightly job runs `retention purge` after its pre-flight check. Deletion goes in bounded batches, each its own short transaction, so a
// running dispatch's writer waits at most one batch. `archive` first writes each run to
// DIR/run-<id>-<date>.ndjson (one {"table":…, "row":{…}} per line, fsync'd) and deletes only
// after the file is complete. Runs a live dispatch holds are skipped. Both also expire pending
// statuses older than [retention] status_pending_expiry_hours and delete status callbacks
// (raw bodies and their statuses) older than [retention] status_days, in the same batches, and
// WhatsApp holds that have ended.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/op_support.hpp"
#include "domain/time.hpp"
#include "store/audit.hpp"
#include "store/exports.hpp"
#include "store/retention.hpp"

namespace daybreak {
namespace {

struct RetentionOptions {
  int older_than = -1;
  std::int64_t batch = 5000;
  std::string archive_dir;
  std::string reason = "retention";
  bool dry_run = false;
};

/// Writes one run as NDJSON to `path` (via a temporary name, fsync'd, then renamed), streaming.
std::int64_t archive_run(store::Db& db, std::int64_t run_id, const std::filesystem::path& path) {
  auto tmp = path;
  tmp += ".part";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) throw UsageError("--archive-dir: cannot write " + tmp.string());
  std::int64_t lines = 0;
  std::string line;
  try {
    store::ExportRunRows(db, run_id, [&](store::ArchiveTable t, SQLite::Statement& q) {
      nlohmann::json row = nlohmann::json::object();
      for (int i = 0; i < q.getColumnCount(); ++i) {
        auto c = q.getColumn(i);
        if (c.isNull()) row[q.getColumnName(i)] = nullptr;
        else if (c.isInteger()) row[q.getColumnName(i)] = c.getInt64();
        else if (c.isFloat()) row[q.getColumnName(i)] = c.getDouble();
        else row[q.getColumnName(i)] = c.getString();
      }
      line = nlohmann::json{{"table", store::to_string(t)}, {"row", std::move(row)}}.dump();
      line.push_back('\n');
      if (std::fwrite(line.data(), 1, line.size(), f) != line.size()) throw UsageError("--archive-dir: write failed for " + tmp.string());
      ++lines;
    });
  } catch (...) {
    std::fclose(f);
    std::filesystem::remove(tmp);
    throw;
  }
  bool ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) throw UsageError("--archive-dir: cannot complete " + tmp.string());
  std::filesystem::rename(tmp, path);
  return lines;
}

int run_retention(const GlobalOptions& g, const RetentionOptions& o, bool archive) {
  if (o.older_than != -1 && o.older_than < 1) throw UsageError("--older-than: give a number of days, at least 1");
  if (o.batch < 1 || o.batch > 1000000) throw UsageError("--batch: between 1 and 1000000");
  if (archive && o.archive_dir.empty()) throw UsageError("retention archive: --archive-dir is required");
  if (!archive && !o.archive_dir.empty()) throw UsageError("retention purge: --archive-dir belongs to retention archive");
  ops::require_reason(o.reason);
  ops::yield_cpu_to_dispatch();
  auto env = ops::open_env(g);
  auto& db = *env.db;
  std::filesystem::path dir(o.archive_dir);
  if (archive) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) throw UsageError("--archive-dir \"" + o.archive_dir + "\": not a directory");
  }
  auto today = local_date(env.now, env.ctx.cfg.default_timezone);
  if (!today) throw ConfigError(today.error().message);
  // No --older-than: [retention] runs_days, where 0 keeps every run (the status tables still go by age).
  const int older_than = o.older_than != -1 ? o.older_than : env.ctx.cfg.retention.runs_days;
  std::string cutoff = older_than > 0 ? format_date(add_days(*today, -older_than)) : std::string();
  std::vector<store::ExpiredRun> runs;
  if (older_than > 0) runs = store::RunListExpired(db, cutoff, env.now);

  nlohmann::json done = nlohmann::json::array();
  store::PurgeCounts total;
  std::int64_t batches = 0;
  for (const auto& r : runs) {
    nlohmann::json item = {{"run_id", r.run_id}, {"date", r.date}, {"state", r.state}, {"deliveries", r.deliveries}};
    if (o.dry_run) {
      done.push_back(item);
      continue;
    }
    if (archive) {
      auto path = dir / ("run-" + std::to_string(r.run_id) + "-" + r.date + ".ndjson");
      item["archive"] = path.string();
      item["archive_lines"] = archive_run(db, r.run_id, path);
    }
    store::PurgeCounts counts;
    // One short transaction per batch: the dispatch writer's BEGIN IMMEDIATE waits at most one.
    while (true) {
      store::PurgeCounts step;
      db.write_tx([&] { step = store::RunPurgeBatch(db, r.run_id, o.batch); });
      ++batches;
      counts += step;
      if (step.runs > 0 || step.total() == 0) break;
    }
    db.write_tx([&] {
      store::AuditAppend(db, ops::audit_entry(env.now, "run:" + std::to_string(r.run_id), o.reason, item,
                                              {{"deleted", true}, {"deliveries", counts.deliveries}, {"attempts", counts.attempts},
                                               {"changes", counts.changes}, {"reports", counts.reports}}));
    });
    total += counts;
    item["deleted_deliveries"] = counts.deliveries;
    item["deleted_attempts"] = counts.attempts;
    done.push_back(item);
  }
  // The status tables by age ([retention]): pending statuses that never matched a delivery are
  // expired first, then raw callback bodies (phone numbers) and their statuses are deleted, in
  // the same bounded batches.
  const auto& rc = env.ctx.cfg.retention;
  const Millis status_cutoff = env.now - static_cast<Millis>(rc.status_days) * 86'400'000LL;
  const Millis expiry_cutoff = env.now - rc.status_pending_expiry_ms;
  std::int64_t expired = 0;
  std::int64_t holds = 0;
  store::StatusPurgeCounts status_total;
  if (o.dry_run) {
    expired = store::StatusCountPendingOlderThan(db, expiry_cutoff);
    status_total = store::StatusCountOlderThan(db, status_cutoff);
    holds = store::WhatsappHoldCountEnded(db, env.now);
  } else {
    while (true) {
      std::int64_t n = 0;
      db.write_tx([&] { n = store::StatusExpirePendingBatch(db, expiry_cutoff, env.now, o.batch); });
      ++batches;
      expired += n;
      if (n < o.batch) break;
    }
    while (true) {
      store::StatusPurgeCounts step;
      db.write_tx([&] { step = store::StatusPurgeBatch(db, status_cutoff, o.batch); });
      ++batches;
      status_total.events += step.events;
      status_total.updates += step.updates;
      if (step.events < o.batch) break;
    }
    // WhatsApp holds that have ended (131049's 24 h) change nothing and name advisors.
    while (true) {
      std::int64_t n = 0;
      db.write_tx([&] { n = store::WhatsappHoldPurgeEndedBatch(db, env.now, o.batch); });
      ++batches;
      holds += n;
      if (n < o.batch) break;
    }
    if (expired > 0 || status_total.events > 0) {
      db.write_tx([&] {
        store::AuditAppend(db, ops::audit_entry(env.now, "status_events", o.reason,
                                                {{"status_days", rc.status_days}, {"received_before", format_instant(status_cutoff)}},
                                                {{"deleted_events", status_total.events}, {"deleted_updates", status_total.updates},
                                                 {"expired_pending", expired}}));
      });
    }
  }
  nlohmann::json statuses = {{"status_days", rc.status_days},
                             {"received_before", format_instant(status_cutoff)},
                             {"pending_expiry_hours", rc.status_pending_expiry_ms / 3'600'000},
                             {"pending_received_before", format_instant(expiry_cutoff)},
                             {"expired_pending", expired},
                             {"deleted_events", status_total.events},
                             {"deleted_updates", status_total.updates},
                             {"deleted_ended_whatsapp_holds", holds}};
  nlohmann::json out = {{"command", archive ? "retention archive" : "retention purge"},
                        {"cutoff_date", cutoff.empty() ? nlohmann::json(nullptr) : nlohmann::json(cutoff)},
                        {"dry_run", o.dry_run},
                        {"runs", done},
                        {"batches", batches},
                        {"deleted", {{"runs", total.runs}, {"deliveries", total.deliveries}, {"attempts", total.attempts},
                                     {"changes", total.changes}, {"reports", total.reports}}},
                        {"statuses", statuses}};
  std::string human = cutoff.empty() ? std::string("runs kept ([retention] runs_days = 0)")
                                     : std::string(o.dry_run ? "dry run: would delete " : archive ? "archived and deleted " : "deleted ") +
                                           std::to_string(runs.size()) + " run(s) of days before " + cutoff;
  if (!o.dry_run && !cutoff.empty()) {
    human += " (" + std::to_string(total.deliveries) + " deliveries, " + std::to_string(total.attempts) + " attempts, in " +
             std::to_string(batches) + " batch(es))";
  }
  human += std::string(o.dry_run ? "; would expire " : "; expired ") + std::to_string(expired) + " pending status(es) older than " +
           std::to_string(rc.status_pending_expiry_ms / 3'600'000) + " h and " + (o.dry_run ? "would delete " : "deleted ") +
           std::to_string(status_total.events) + " status event(s) (" + std::to_string(status_total.updates) +
           " status(es)) older than " + std::to_string(rc.status_days) + " days; " + (o.dry_run ? "would delete " : "deleted ") +
           std::to_string(holds) + " ended WhatsApp hold(s)";
  ops::emit(env, out, human);
  return kExitOk;
}

}  // namespace

void add_retention_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto* ret = app.add_subcommand("retention", "Delete (or archive, then delete) runs older than N days, in short batches");
  ret->require_subcommand(1);
  ret->fallthrough();
  for (bool archive : {false, true}) {
    auto o = std::make_shared<RetentionOptions>();
    auto* sub = ret->add_subcommand(archive ? "archive" : "purge",
                                    archive ? "Write each old run to NDJSON in --archive-dir, then delete it"
                                            : "Delete runs older than --older-than (or [retention] runs_days) days with their deliveries and attempts");
    sub->fallthrough();
    sub->add_option("--older-than", o->older_than, "Days: runs of delivery days before today minus N (default [retention] runs_days)");
    sub->add_option("--batch", o->batch, "Rows per transaction (default 5000)");
    sub->add_option("--archive-dir", o->archive_dir, archive ? "Directory for the NDJSON files (required)" : "Only with archive");
    sub->add_option("--reason", o->reason, "Why (recorded in the audit log; default \"retention\", as cron runs it)");
    sub->add_flag("--dry-run", o->dry_run, "List the runs that would go; change nothing");
    sub->callback([o, archive, &g, &action] { action = [o, archive, &g] { return run_retention(g, *o, archive); }; });
  }
}

}  // namespace daybreak
