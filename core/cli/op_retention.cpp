// `daybreak retention purge|archive [--older-than N] [--batch 5000] [--archive-dir DIR]`: deletes
// runs of delivery days more than N days before today (default zone; N from [retention] runs_days
// when not given, 0 there keeping every run) with their deliveries, attempts, change notes and
// report. The nightly job runs `retention purge` after its pre-flight check. Deletion goes in bounded batches, each its own short transaction, so a
// running dispatch's writer waits at most one batch. `archive` first writes each run to
// DIR/run-<id>-<date>.ndjson (one {"table":…, "row":{…}} per line, fsync'd) and deletes only
// after the file is complete. Runs a live dispatch holds are skipped. Assignments of days before
// the same cutoff (but at least 31 days back, the ranker's history) go too, a day at a time,
// archived first to DIR/assignments-<date>.ndjson by `archive`. Both also expire pending
// statuses older than [retention] status_pending_expiry_hours and delete status callbacks
// (raw bodies and their statuses) older than [retention] status_days, in the same batches, and
// WhatsApp holds that have ended. With [database] url the status tables of the PostgreSQL
// ledger (where the receiver keeps callbacks then) go by the same settings, in the same batches,
// audited there ("statuses_postgresql" in the JSON); the runs there are not purged.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/op_support.hpp"
#include "domain/time.hpp"
#include "store/audit.hpp"
#include "store/exports.hpp"
#include "store/pg_operator.hpp"
#include "store/pg_status.hpp"
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

using ArchiveRowFn = std::function<void(store::ArchiveTable, SQLite::Statement&)>;

/// Writes the rows `stream` produces as NDJSON to `path` (via a temporary name, fsync'd, then
/// renamed), streaming: one run with its children, or one day's assignments.
std::int64_t archive_rows(const std::function<void(const ArchiveRowFn&)>& stream, const std::filesystem::path& path) {
  auto tmp = path;
  tmp += ".part";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) throw UsageError("--archive-dir: cannot write " + tmp.string());
  std::int64_t lines = 0;
  std::string line;
  try {
    stream([&](store::ArchiveTable t, SQLite::Statement& q) {
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

/// One ledger's status tables, as the retention loop below works on them: each batch function
/// runs one short transaction of its own.
struct StatusTables {
  std::function<std::int64_t(std::int64_t)> expire;                   ///< pending statuses expired
  std::function<store::StatusPurgeCounts(std::int64_t)> purge;        ///< old events deleted
  std::function<std::int64_t(std::int64_t)> purge_holds;              ///< ended WhatsApp holds deleted
  std::function<std::int64_t()> count_pending;                        ///< --dry-run: what expire would do
  std::function<store::StatusPurgeCounts()> count_events;
  std::function<std::int64_t()> count_holds;
  std::function<void(const store::AuditEntry&)> audit;
};
/// What the retention did (or, on a dry run, would do) to one ledger's status tables.
struct StatusRetention {
  std::int64_t expired = 0;
  std::int64_t holds = 0;
  store::StatusPurgeCounts purged;
};

StatusRetention purge_status_tables(const StatusTables& t, const RetentionOptions& o, const RetentionConfig& rc, Millis now,
                                    Millis status_cutoff, std::int64_t& batches) {
  StatusRetention r;
  if (o.dry_run) {
    r.expired = t.count_pending();
    r.purged = t.count_events();
    r.holds = t.count_holds();
    return r;
  }
  while (true) {
    const std::int64_t n = t.expire(o.batch);
    ++batches;
    r.expired += n;
    if (n < o.batch) break;
  }
  while (true) {
    const auto step = t.purge(o.batch);
    ++batches;
    r.purged.events += step.events;
    r.purged.updates += step.updates;
    if (step.events < o.batch) break;
  }
  // WhatsApp holds that have ended (131049's 24 h) change nothing and name advisors.
  while (true) {
    const std::int64_t n = t.purge_holds(o.batch);
    ++batches;
    r.holds += n;
    if (n < o.batch) break;
  }
  if (r.expired > 0 || r.purged.events > 0) {
    t.audit(ops::audit_entry(now, "status_events", o.reason, {{"status_days", rc.status_days}, {"received_before", format_instant(status_cutoff)}},
                             {{"deleted_events", r.purged.events}, {"deleted_updates", r.purged.updates}, {"expired_pending", r.expired}}));
  }
  return r;
}

nlohmann::json status_json(const StatusRetention& r, const RetentionConfig& rc, Millis status_cutoff, Millis expiry_cutoff) {
  return {{"status_days", rc.status_days},
          {"received_before", format_instant(status_cutoff)},
          {"pending_expiry_hours", rc.status_pending_expiry_ms / 3'600'000},
          {"pending_received_before", format_instant(expiry_cutoff)},
          {"expired_pending", r.expired},
          {"deleted_events", r.purged.events},
          {"deleted_updates", r.purged.updates},
          {"deleted_ended_whatsapp_holds", r.holds}};
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
      item["archive_lines"] = archive_rows([&](const ArchiveRowFn& fn) { store::ExportRunRows(db, r.run_id, fn); }, path);
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
  // Assignments (the nights' plan input: content, source, score and its parts per advisor and
  // day) go by the same cutoff, a day at a time in the same bounded batches, but never inside the
  // ranker's history window: assign-fallback reads the days before the night it ranks
  // (--no-repeat-days, 14 by default; the diversity week, 7), so kAssignmentHistoryDays are kept
  // whatever --older-than says. Without this a million advisors add a million rows a night for
  // ever. `archive` writes each day to DIR/assignments-<date>.ndjson first.
  constexpr int kAssignmentHistoryDays = 31;
  std::string assignment_cutoff;
  if (older_than > 0) assignment_cutoff = format_date(add_days(*today, -std::max(older_than, kAssignmentHistoryDays)));
  nlohmann::json assignment_days = nlohmann::json::array();
  std::int64_t assignments_deleted = 0;
  if (!assignment_cutoff.empty()) {
    for (const auto& [day, rows] : store::AssignmentDaysBefore(db, assignment_cutoff)) {
      nlohmann::json item = {{"date", day}, {"assignments", rows}};
      if (o.dry_run) {
        assignment_days.push_back(item);
        continue;
      }
      if (archive) {
        auto path = dir / ("assignments-" + day + ".ndjson");
        item["archive"] = path.string();
        item["archive_lines"] = archive_rows([&, d = day](const ArchiveRowFn& fn) { store::ExportAssignmentRows(db, d, fn); }, path);
      }
      std::int64_t deleted = 0;
      while (true) {
        std::int64_t n = 0;
        db.write_tx([&] { n = store::AssignmentPurgeBatch(db, day, o.batch); });
        ++batches;
        deleted += n;
        if (n < o.batch) break;
      }
      db.write_tx([&] {
        store::AuditAppend(db, ops::audit_entry(env.now, "assignments:" + day, o.reason, item, {{"deleted", deleted}}));
      });
      assignments_deleted += deleted;
      item["deleted"] = deleted;
      assignment_days.push_back(item);
    }
  }
  // The status tables by age ([retention]): pending statuses that never matched a delivery are
  // expired first, then raw callback bodies (phone numbers) and their statuses are deleted, in
  // the same bounded batches; on the SQLite file, and with [database] url on PostgreSQL too,
  // where the receiver keeps them then.
  const auto& rc = env.ctx.cfg.retention;
  const Millis status_cutoff = env.now - static_cast<Millis>(rc.status_days) * 86'400'000LL;
  const Millis expiry_cutoff = env.now - rc.status_pending_expiry_ms;
  StatusTables sqlite_tables;
  sqlite_tables.expire = [&](std::int64_t n) {
    std::int64_t k = 0;
    db.write_tx([&] { k = store::StatusExpirePendingBatch(db, expiry_cutoff, env.now, n); });
    return k;
  };
  sqlite_tables.purge = [&](std::int64_t n) {
    store::StatusPurgeCounts k;
    db.write_tx([&] { k = store::StatusPurgeBatch(db, status_cutoff, n); });
    return k;
  };
  sqlite_tables.purge_holds = [&](std::int64_t n) {
    std::int64_t k = 0;
    db.write_tx([&] { k = store::WhatsappHoldPurgeEndedBatch(db, env.now, n); });
    return k;
  };
  sqlite_tables.count_pending = [&] { return store::StatusCountPendingOlderThan(db, expiry_cutoff); };
  sqlite_tables.count_events = [&] { return store::StatusCountOlderThan(db, status_cutoff); };
  sqlite_tables.count_holds = [&] { return store::WhatsappHoldCountEnded(db, env.now); };
  sqlite_tables.audit = [&](const store::AuditEntry& e) { db.write_tx([&] { store::AuditAppend(db, e); }); };
  auto sqlite_status = purge_status_tables(sqlite_tables, o, rc, env.now, status_cutoff, batches);
  const auto& expired = sqlite_status.expired;
  const auto& holds = sqlite_status.holds;
  const auto& status_total = sqlite_status.purged;
  nlohmann::json statuses = status_json(sqlite_status, rc, status_cutoff, expiry_cutoff);
  std::optional<StatusRetention> pg_status;
  if (!env.ctx.cfg.database_url.empty()) {
    store::PgOperator pg(env.ctx.cfg.database_url);  // connects and migrates, as every PostgreSQL command
    auto& c = pg.conn();
    StatusTables t;
    t.expire = [&](std::int64_t n) { return store::pg_status_expire_pending_batch(c, expiry_cutoff, env.now, n); };
    t.purge = [&](std::int64_t n) { return store::pg_status_purge_batch(c, status_cutoff, n); };
    t.purge_holds = [&](std::int64_t n) { return store::pg_whatsapp_hold_purge_ended_batch(c, env.now, n); };
    t.count_pending = [&] { return store::pg_status_count_pending_older_than(c, expiry_cutoff); };
    t.count_events = [&] { return store::pg_status_count_older_than(c, status_cutoff); };
    t.count_holds = [&] { return store::pg_whatsapp_hold_count_ended(c, env.now); };
    t.audit = [&](const store::AuditEntry& e) { pg.audit_append(e); };
    pg_status = purge_status_tables(t, o, rc, env.now, status_cutoff, batches);
  }
  nlohmann::json out = {{"command", archive ? "retention archive" : "retention purge"},
                        {"cutoff_date", cutoff.empty() ? nlohmann::json(nullptr) : nlohmann::json(cutoff)},
                        {"dry_run", o.dry_run},
                        {"runs", done},
                        {"assignment_cutoff_date", assignment_cutoff.empty() ? nlohmann::json(nullptr) : nlohmann::json(assignment_cutoff)},
                        {"assignment_days", assignment_days},
                        {"batches", batches},
                        {"deleted", {{"runs", total.runs}, {"deliveries", total.deliveries}, {"attempts", total.attempts},
                                     {"changes", total.changes}, {"reports", total.reports}, {"assignments", assignments_deleted}}},
                        {"statuses", statuses},
                        {"statuses_postgresql", pg_status ? status_json(*pg_status, rc, status_cutoff, expiry_cutoff) : nlohmann::json(nullptr)}};
  std::string human = cutoff.empty() ? std::string("runs kept ([retention] runs_days = 0)")
                                     : std::string(o.dry_run ? "dry run: would delete " : archive ? "archived and deleted " : "deleted ") +
                                           std::to_string(runs.size()) + " run(s) of days before " + cutoff;
  if (!o.dry_run && !cutoff.empty()) {
    human += " (" + std::to_string(total.deliveries) + " deliveries, " + std::to_string(total.attempts) + " attempts, in " +
             std::to_string(batches) + " batch(es))";
  }
  if (!assignment_cutoff.empty()) {
    std::int64_t rows = 0;
    for (const auto& d : assignment_days) rows += o.dry_run ? d["assignments"].get<std::int64_t>() : d["deleted"].get<std::int64_t>();
    human += std::string(o.dry_run ? "; would delete " : "; deleted ") + std::to_string(rows) + " assignment(s) of " +
             std::to_string(assignment_days.size()) + " day(s) before " + assignment_cutoff;
  }
  human += std::string(o.dry_run ? "; would expire " : "; expired ") + std::to_string(expired) + " pending status(es) older than " +
           std::to_string(rc.status_pending_expiry_ms / 3'600'000) + " h and " + (o.dry_run ? "would delete " : "deleted ") +
           std::to_string(status_total.events) + " status event(s) (" + std::to_string(status_total.updates) +
           " status(es)) older than " + std::to_string(rc.status_days) + " days; " + (o.dry_run ? "would delete " : "deleted ") +
           std::to_string(holds) + " ended WhatsApp hold(s)";
  if (pg_status) {
    human += std::string("; on PostgreSQL ") + (o.dry_run ? "would expire " : "expired ") + std::to_string(pg_status->expired) +
             " pending status(es), " + (o.dry_run ? "would delete " : "deleted ") + std::to_string(pg_status->purged.events) +
             " status event(s) (" + std::to_string(pg_status->purged.updates) + " status(es)) and " + std::to_string(pg_status->holds) +
             " ended WhatsApp hold(s)";
  }
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
