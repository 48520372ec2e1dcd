// `daybreak backup --to FILE` and `daybreak restore --from FILE`: online copies of the one
// SQLite file, through SQLite's backup API (https://www.sqlite.org/backup.html), never `cp`
// (a copy taken while dispatch commits can tear between the database and its -wal file).
//
// backup: the copy is taken from one read snapshot, in steps of --pages-per-step pages with a
// short pause between them. In WAL mode a reader never blocks the writer, so a running dispatch
// goes on committing; holding the snapshot across the steps (rather than one read transaction
// per step) is what keeps those commits from restarting the copy from page 1 every step — a
// backup beside a busy writer would otherwise never finish. The copy is written to FILE.tmp,
// switched to a self-contained rollback-journal file, checked with PRAGMA integrity_check,
// fsync'd and renamed over FILE, so FILE is always either the old backup or a checked new one.
//
// The backup records when it was taken: a one-row table daybreak_backup(taken_at, source) written
// into the copy before it is checked (restore reads it, and drops it from the restored ledger).
//
// restore: refused while any run of the live database has an unexpired dispatch lease (or the
// cron wrapper's dispatch lock is held); the backup is checked first (integrity, a daybreak
// schema no newer than this build); the live database is itself backed up to
// DB.pre-restore before it is overwritten, in one backup step under SQLite's own lock.
//
// A backup holds deliveries that were not final when it was taken. A dispatch that ran after it
// may have sent them; restored as they were, the next dispatch would send them again and count
// nothing (domain/restore.hpp has the rule). restore refuses such a backup (exit 1) unless
// --force, and with --force marks those deliveries uncertain and possible duplicates
// (store::RestoreMarkUncertain), so dispatch waits for a status callback naming each before it
// resends it and counts every resend. Either way the status events the replaced database holds
// and the backup lacks are carried over and applied (app/restore.hpp), and the restore is
// recorded in the audit log.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <SQLiteCpp/Backup.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "cli/op_support.hpp"
#include "app/restore.hpp"
#include "domain/restore.hpp"
#include "domain/time.hpp"
#include "store/audit.hpp"
#include "store/db.hpp"
#include "store/migrations.hpp"
#include "store/restore.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;

struct BackupOptions {
  std::string to;
  // 1024 pages of 4 KiB = 4 MiB per step: a few milliseconds of I/O, then a pause, so the copy
  // shares the disk with dispatch's commits instead of saturating it.
  int pages_per_step = 1024;
  int pause_ms = 5;
};

struct RestoreOptions {
  std::string from;
  bool no_safety_copy = false;
  bool force = false;  ///< restore a backup whose unfinished deliveries may have been sent since
};

int latest_schema() {
  int latest = 0;
  for (const auto& m : store::embedded_migrations()) latest = std::max(latest, m.version);
  return latest;
}

/// What a checked database file holds: PRAGMA integrity_check's verdict and the daybreak schema.
struct FileCheck {
  bool ok = false;
  std::string problem;      ///< first integrity_check lines, or why the file is not a daybreak db
  int schema_version = 0;
  std::int64_t runs = 0;
  std::int64_t deliveries = 0;
  std::optional<Millis> taken_at;  ///< daybreak_backup.taken_at; none in backups of older builds
};

/// Opens `path` read-only and checks it; never writes to it.
FileCheck check_file(const std::string& path) {
  FileCheck c;
  try {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    SQLite::Statement ic(db, "PRAGMA integrity_check");
    std::string lines;
    int n = 0;
    while (ic.executeStep()) {
      std::string line = ic.getColumn(0).getString();
      if (line == "ok") continue;
      if (n++ < 5) lines += (lines.empty() ? "" : "; ") + line;
    }
    if (n > 0) {
      c.problem = "integrity_check failed: " + lines + (n > 5 ? " (and " + std::to_string(n - 5) + " more)" : "");
      return c;
    }
    if (!db.tableExists("schema_migrations") || !db.tableExists("runs") || !db.tableExists("deliveries")) {
      c.problem = "not a daybreak database (no schema_migrations/runs/deliveries table)";
      return c;
    }
    c.schema_version = db.execAndGet("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").getInt();
    c.runs = db.execAndGet("SELECT COUNT(*) FROM runs").getInt64();
    c.deliveries = db.execAndGet("SELECT COUNT(*) FROM deliveries").getInt64();
    if (db.tableExists("daybreak_backup")) {
      SQLite::Statement t(db, "SELECT taken_at FROM daybreak_backup");
      if (t.executeStep() && !t.getColumn(0).isNull()) c.taken_at = t.getColumn(0).getInt64();
    }
    c.ok = true;
  } catch (const SQLite::Exception& e) {
    c.problem = e.what();
  }
  return c;
}

/// fsync a file or directory; the backup must be on disk before it replaces the previous one.
void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw store::StoreError("cannot open " + path + " to sync it: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw store::StoreError("fsync " + path + ": " + std::strerror(err));
}

void remove_with_sidecars(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

/// Copies the open database `src` into a new file at `dest_path` from one read snapshot, in
/// steps. Returns the number of steps. The destination ends in rollback-journal mode, one file.
int copy_online(SQLite::Database& src, const std::string& dest_path, int pages_per_step, int pause_ms, int& pages) {
  mode_t old = ::umask(077);  // the copy holds phone numbers and emails, like the database
  SQLite::Database dest(dest_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  ::umask(old);
  // One snapshot for the whole copy (see the top of this file). BEGIN is deferred: the SELECT
  // takes the read lock, which in WAL mode leaves the writer free.
  src.exec("BEGIN");
  try {
    (void)src.execAndGet("SELECT COUNT(*) FROM sqlite_master").getInt();
    SQLite::Backup b(dest, src);
    int steps = 0;
    for (;;) {
      int rc = b.executeStep(pages_per_step);
      ++steps;
      if (rc == SQLITE_DONE) break;
      // OK: more to copy; BUSY/LOCKED: the destination is momentarily locked, try again.
      if (pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
    pages = b.getTotalPageCount();
    src.exec("COMMIT");
    dest.exec("PRAGMA journal_mode=DELETE");
    return steps;
  } catch (...) {
    try {
      src.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

int backup(const GlobalOptions& g, const BackupOptions& o) {
  auto ctx = make_context(g, "daybreak");
  const std::string& db_path = ctx.cfg.database_path;
  if (o.to.empty()) throw UsageError("--to: must not be empty");
  std::error_code ec;
  if (!fs::exists(db_path, ec)) throw store::StoreError("database " + db_path + " does not exist: nothing to back up");
  if (fs::exists(o.to, ec) && fs::equivalent(o.to, db_path, ec)) throw UsageError("--to " + o.to + " is the database itself");
  fs::path to_dir = fs::absolute(o.to).parent_path();
  if (!fs::is_directory(to_dir, ec)) throw UsageError("--to " + o.to + ": directory " + to_dir.string() + " does not exist");

  const std::string tmp = o.to + ".tmp";
  remove_with_sidecars(tmp);
  int pages = 0;
  int steps = 0;
  store::OpenOptions oo;
  oo.migrate = false;  // a backup copies what is there; it never changes the schema
  store::Db src(db_path, oo);
  // The snapshot is taken right after this instant (copy_online's first read).
  const Millis taken_at = ctx.clock->now();
  try {
    steps = copy_online(src.raw(), tmp, o.pages_per_step, o.pause_ms, pages);
    SQLite::Database dest(tmp, SQLite::OPEN_READWRITE);
    dest.exec("DROP TABLE IF EXISTS daybreak_backup");
    dest.exec("CREATE TABLE daybreak_backup (taken_at INTEGER NOT NULL, source TEXT NOT NULL)");
    SQLite::Statement ins(dest, "INSERT INTO daybreak_backup (taken_at, source) VALUES (?, ?)");
    ins.bind(1, static_cast<std::int64_t>(taken_at));
    ins.bind(2, db_path);
    ins.exec();
  } catch (const SQLite::Exception& e) {
    remove_with_sidecars(tmp);
    throw store::StoreError("backup of " + db_path + " to " + tmp + " failed: " + e.what());
  }
  FileCheck c = check_file(tmp);
  if (!c.ok) {
    // Keep the bad copy for a post-mortem, beside the target, and fail: exit 1.
    throw CheckFailed("backup copy " + tmp + " is not usable: " + c.problem + " (" + o.to + " was left unchanged)");
  }
  fsync_path(tmp);
  if (::rename(tmp.c_str(), o.to.c_str()) != 0) {
    throw store::StoreError("cannot rename " + tmp + " to " + o.to + ": " + std::strerror(errno));
  }
  fsync_path(to_dir.string());
  auto bytes = static_cast<std::int64_t>(fs::file_size(o.to, ec));
  ctx.log->info("backup of {} written to {}: {} pages in {} step(s), integrity ok, schema version {}", db_path, o.to, pages, steps,
                c.schema_version);
  if (ctx.json) {
    print_json({{"database", db_path}, {"backup", o.to}, {"bytes", bytes}, {"pages", pages}, {"steps", steps},
                {"integrity", "ok"}, {"schema_version", c.schema_version}, {"runs", c.runs}, {"deliveries", c.deliveries},
                {"taken_at", format_instant(taken_at, ctx.cfg.default_timezone)}});
  } else {
    std::cout << "backup: " << db_path << " -> " << o.to << " (" << bytes << " bytes, " << pages << " pages in " << steps
              << " step(s)); integrity_check ok; schema version " << c.schema_version << "; " << c.runs << " run(s), "
              << c.deliveries << " deliveries; taken at " << format_instant(taken_at, ctx.cfg.default_timezone) << "\n";
  }
  return kExitOk;
}

/// Holds the wrapper's dispatch lock (in each lock directory that exists) for the life of a
/// restore, so the watchdog cannot start a dispatch on a half-restored database. The directory is
/// $DAYBREAK_LOCK_DIR, else both the cron default /run/lock/daybreak and the systemd units'
/// /run/daybreak (RuntimeDirectory=). Returns the descriptors held (none: no lock directory).
std::vector<int> take_dispatch_lock() {
  const char* env = std::getenv("DAYBREAK_LOCK_DIR");
  const std::vector<std::string> dirs =
      env && *env ? std::vector<std::string>{env} : std::vector<std::string>{"/run/lock/daybreak", "/run/daybreak"};
  std::vector<int> fds;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::string path = dir + "/dispatch.lock";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) continue;  // not ours to create (another user's directory): the lease check still guards
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      for (int f : fds) ::close(f);
      throw CheckFailed("a dispatch job is running (" + path + " is locked): stop it (or wait for the run to close) before restoring");
    }
    fds.push_back(fd);
  }
  return fds;
}

int restore(const GlobalOptions& g, const RestoreOptions& o) {
  auto ctx = make_context(g, "daybreak");
  const std::string& db_path = ctx.cfg.database_path;
  std::error_code ec;
  if (!fs::is_regular_file(o.from, ec)) throw UsageError("--from " + o.from + ": no such file");
  if (fs::exists(db_path, ec) && fs::equivalent(o.from, db_path, ec)) throw UsageError("--from " + o.from + " is the database itself");

  // 1. The backup: whole, a daybreak database, a schema this build can run (older is fine: the
  //    next command that opens the database migrates it).
  FileCheck c = check_file(o.from);
  if (!c.ok) throw CheckFailed("refusing to restore " + o.from + ": " + c.problem);
  const int latest = latest_schema();
  if (c.schema_version > latest) {
    throw CheckFailed("refusing to restore " + o.from + ": its schema version " + std::to_string(c.schema_version) +
                      " is newer than this build's " + std::to_string(latest) + " (install the matching daybreak first)");
  }
  // 2. Nobody is sending from the live database.
  struct Unlock {
    std::vector<int> fds;
    ~Unlock() {
      for (int fd : fds) ::close(fd);
    }
  } unlock{take_dispatch_lock()};
  const bool existed = fs::exists(db_path, ec);
  store::OpenOptions oo;
  oo.migrate = false;
  store::Db live(db_path, oo);
  if (existed && live.raw().tableExists("runs")) {
    SQLite::Statement q(live.raw(), "SELECT run_id, date, owner, lease_until FROM runs WHERE owner IS NOT NULL AND lease_until > ? ORDER BY run_id");
    q.bind(1, static_cast<std::int64_t>(ctx.clock->now()));
    std::string held;
    while (q.executeStep()) {
      held += (held.empty() ? "" : "; ") + std::string("run ") + q.getColumn(0).getString() + " (" + q.getColumn(1).getString() +
              ") leased by " + q.getColumn(2).getString();
    }
    if (!held.empty()) {
      throw CheckFailed("refusing to restore over " + db_path + ": a dispatch holds a live lease: " + held +
                        "; stop it (SIGTERM) or wait for the run to close, then retry");
    }
  }

  // 3. Deliveries of the backup that a dispatch since it may have sent: refused without --force.
  const std::string tz = ctx.cfg.default_timezone;
  const std::string taken = c.taken_at ? format_instant(*c.taken_at, tz) : "an unknown time (a backup of an older build)";
  const Millis restore_at = ctx.clock->now();
  const Millis lead = ctx.cfg.dispatch.claim_lead_ms;
  std::vector<store::RestoreRunAtRisk> at_risk;
  {
    SQLite::Database bk(o.from, SQLite::OPEN_READONLY);
    at_risk = store::RestoreRunsAtRisk(bk, restore_at, lead);
  }
  std::int64_t risky = 0;
  std::string runs_text;
  for (const auto& r : at_risk) {
    risky += r.at_risk;
    runs_text += (runs_text.empty() ? "" : ", ") + std::string("run ") + std::to_string(r.run_id) + " (" + r.date + " " +
                 format_instant(r.slot_at, tz).substr(11, 5) + ", " + r.state + ": " + std::to_string(r.at_risk) +
                 " not final, " + std::to_string(r.in_flight) + " of them mid-send)";
  }
  if (risky > 0 && !o.force) {
    throw CheckFailed("refusing to restore " + o.from + " (taken at " + taken + "): it holds unfinished " + runs_text +
                      "; a dispatch since the backup may have sent these " + std::to_string(risky) +
                      " deliveries and the next one would send them again uncounted; --force restores it and marks them "
                      "uncertain possible duplicates (dispatch waits dispatch.uncertain_grace_seconds for a status callback "
                      "naming each, then resends and counts it)");
  }

  // 4. A safety copy of what is about to be overwritten, then the restore in one step under
  //    SQLite's exclusive lock: readers see the old database or the new one, never a mix.
  std::string safety;
  int pages = 0;
  try {
    if (existed && !o.no_safety_copy) {
      safety = db_path + ".pre-restore";
      remove_with_sidecars(safety);
      (void)copy_online(live.raw(), safety, -1, 0, pages);
      fsync_path(safety);
    }
    SQLite::Database src(o.from, SQLite::OPEN_READONLY);
    SQLite::Backup b(live.raw(), src);
    int rc = SQLITE_OK;
    for (int tries = 0; tries < 200; ++tries) {  // BUSY: a reader is mid-query; 200 × 50 ms = 10 s
      rc = b.executeStep(-1);
      if (rc == SQLITE_DONE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (rc != SQLITE_DONE) throw store::StoreError("restore into " + db_path + ": the database stayed locked for 10 s; retry");
    pages = b.getTotalPageCount();
  } catch (const SQLite::Exception& e) {
    throw store::StoreError("restore of " + o.from + " into " + db_path + " failed: " + e.what());
  }
  live.raw().exec("PRAGMA journal_mode=WAL");
  FileCheck after = check_file(db_path);
  if (!after.ok) throw store::StoreError("restored database " + db_path + " fails its check: " + after.problem);

  // 5. The deliveries that may have been sent since the backup: uncertain possible duplicates.
  //    The backup's record of its time goes (it describes the file, not the ledger).
  std::int64_t marked = 0;
  live.write_tx([&] {
    live.raw().exec("DROP TABLE IF EXISTS daybreak_backup");
    if (risky > 0) marked = store::RestoreMarkUncertain(live, restore_at, lead, ctx.clock->now());
  });
  // 6. Status events the replaced database received that the backup lacks: carried over from the
  //    safety copy (it holds exactly what was replaced) and applied, settling the uncertain rows
  //    they name. From ten minutes before the newest event of the backup on: earlier ones are in it.
  CarriedStatuses carried;
  std::string carry_problem;
  if (safety.empty()) {
    carry_problem = existed ? "no safety copy (--no-safety-copy): status events received after the backup were not carried over"
                            : "";
  } else {
    try {
      Millis since = 0;
      if (live.raw().tableExists("status_events")) {
        since = std::max<Millis>(0, live.raw().execAndGet("SELECT COALESCE(MAX(received_at), 0) FROM status_events").getInt64() - 600'000);
      }
      carried = carry_status_events(live, safety, since, ctx.clock->now());
    } catch (const std::exception& e) {
      carry_problem = std::string("status events of the replaced database were not carried over: ") + e.what();
      ctx.log->warn("{}", carry_problem);
    }
  }
  nlohmann::json runs_json = nlohmann::json::array();
  for (const auto& r : at_risk) {
    runs_json.push_back({{"run_id", r.run_id}, {"date", r.date}, {"slot", format_instant(r.slot_at, tz)}, {"state", r.state},
                         {"not_final", r.at_risk}, {"mid_send", r.in_flight}});
  }
  nlohmann::json carried_json = {{"events", carried.events}, {"statuses", carried.updates}, {"settled", carried.applied.reconciled},
                                 {"applied", carried.applied.applied}};
  if (!carry_problem.empty()) carried_json["problem"] = carry_problem;
  const nlohmann::json audit_after = {{"restored_from", o.from},
                                      {"backup_taken_at", c.taken_at ? nlohmann::json(format_instant(*c.taken_at, tz)) : nlohmann::json()},
                                      {"forced", o.force},
                                      {"unfinished_runs", runs_json},
                                      {"marked_uncertain", marked},
                                      {"status_events_carried", carried_json},
                                      {"previous_copy", safety}};
  live.write_tx([&] {
    store::AuditAppend(live, ops::audit_entry(ctx.clock->now(), "database:" + db_path,
                                              o.force ? "restore --force" : "restore", nullptr, audit_after));
  });
  ctx.log->info("restored {} from {}: {} pages, schema version {}{}", db_path, o.from, pages, after.schema_version,
                safety.empty() ? "" : "; the previous database is in " + safety);
  const int pending = latest - after.schema_version;
  if (ctx.json) {
    print_json({{"database", db_path}, {"restored_from", o.from}, {"pages", pages}, {"integrity", "ok"},
                {"schema_version", after.schema_version}, {"migrations_pending", pending}, {"runs", after.runs},
                {"deliveries", after.deliveries}, {"previous_copy", safety},
                {"backup_taken_at", audit_after["backup_taken_at"]}, {"unfinished_runs", runs_json}, {"marked_uncertain", marked},
                {"status_events_carried", carried_json}});
  } else {
    std::cout << "restore: " << o.from << " -> " << db_path << " (" << pages << " pages); integrity_check ok; schema version "
              << after.schema_version;
    if (pending > 0) std::cout << " (" << pending << " migration(s) will run when the next command opens it)";
    std::cout << "; " << after.runs << " run(s), " << after.deliveries << " deliveries\n";
    if (!safety.empty()) std::cout << "restore: the database it replaced is kept in " << safety << "\n";
    std::cout << "restore: the backup was taken at " << taken << "\n";
    if (marked > 0) {
      std::cout << "restore: --force: " << marked << " deliveries of " << runs_text
                << " may have been sent after the backup: marked uncertain and possible duplicates (the next dispatch waits "
                   "dispatch.uncertain_grace_seconds for a status callback naming each, then resends it and counts it)\n";
    }
    std::cout << "restore: " << carried.events << " status event(s) the backup lacked carried over from the replaced database ("
              << carried.updates << " statuses; " << carried.applied.reconciled << " uncertain deliveries settled)\n";
    if (!carry_problem.empty()) std::cout << "restore: " << carry_problem << "\n";
    std::cout << "restore: status callbacks still on their way, or spooled by the receiver (daybreak-callbacks --spool-dir DIR), "
                 "are applied by the receiver or by `daybreak ingest --spool DIR`; run it before the next dispatch\n";
  }
  return kExitOk;
}

}  // namespace

void add_backup_commands(CLI::App& app, GlobalOptions& g, Action& action) {
  auto bo = std::make_shared<BackupOptions>();
  auto* b = app.add_subcommand("backup", "Online copy of the database (SQLite backup API), checked with integrity_check");
  b->add_option("--to", bo->to, "Backup file to write (replaced atomically once the copy is checked)")->required();
  b->add_option("--pages-per-step", bo->pages_per_step, "Pages copied per step (default 1024)")->check(CLI::Range(1, 1 << 20));
  b->add_option("--step-pause-ms", bo->pause_ms, "Pause between steps, to leave the disk to dispatch (default 5)")
      ->check(CLI::Range(0, 10000));
  b->fallthrough();  // global flags may follow: `daybreak backup --to F --json`
  b->callback([bo, &g, &action] { action = [bo, &g] { return backup(g, *bo); }; });

  auto ro = std::make_shared<RestoreOptions>();
  auto* r = app.add_subcommand("restore", "Replace the database with a backup; refused while a dispatch holds a live lease");
  r->add_option("--from", ro->from, "Backup file written by `daybreak backup`")->required();
  r->add_flag("--no-safety-copy", ro->no_safety_copy, "Do not keep the replaced database as DB.pre-restore");
  r->add_flag("--force", ro->force,
              "Restore a backup with unfinished runs: their deliveries become uncertain possible duplicates");
  r->fallthrough();
  r->callback([ro, &g, &action] { action = [ro, &g] { return restore(g, *ro); }; });
}

}  // namespace daybreak
