#include "store/db.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include <sys/stat.h>

#include <unordered_map>

#include <sqlite3.h>

#include "domain/planner.hpp"
#include "store/migrations.hpp"

namespace daybreak::store {

std::int64_t busy_retry_sleep_us(int retry, int timeout_ms) noexcept {
  constexpr std::int64_t kStepUs = 100, kMaxUs = 1000, kRamp = kMaxUs / kStepUs;  // 10 retries up to 1 ms
  if (retry < 0 || timeout_ms <= 0) return 0;
  const std::int64_t n = retry;
  // What the retries before this one slept: 100 + 200 + ... while ramping, then 1 ms each.
  const std::int64_t slept = n <= kRamp ? kStepUs * n * (n + 1) / 2
                                        : kStepUs * kRamp * (kRamp + 1) / 2 + kMaxUs * (n - kRamp);
  if (slept >= std::int64_t{timeout_ms} * 1000) return 0;
  return std::min(kMaxUs, kStepUs * (n + 1));
}

namespace {
/// sqlite3_busy_handler: `arg` carries the connection's busy timeout in milliseconds.
int busy_wait(void* arg, int retry) {
  const auto us = busy_retry_sleep_us(retry, static_cast<int>(reinterpret_cast<std::intptr_t>(arg)));
  if (us == 0) return 0;
  std::this_thread::sleep_for(std::chrono::microseconds(us));
  return 1;
}

void order_key_sql(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (argc != 2 || sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
    sqlite3_result_null(ctx);
    return;
  }
  auto text = [](sqlite3_value* v) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(v));
    return std::string_view(p ? p : "", static_cast<std::size_t>(sqlite3_value_bytes(v)));
  };
  sqlite3_result_int64(ctx, delivery_order_key(text(argv[0]), text(argv[1])));
}
}  // namespace

Db::Db(const std::string& path, const OpenOptions& opts) : path_(path) {
  try {
    int flags = opts.read_only ? SQLite::OPEN_READONLY : (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    // New database files are created owner-only: the ledger holds phone numbers and emails.
    mode_t old = ::umask(077);
    // One connection per thread (db.hpp), so SQLite's per-call connection mutex only costs:
    // NOMUTEX drops it (measured: ~3% of planning a million deliveries went to lock/unlock).
    db_ = std::make_unique<SQLite::Database>(path, flags | SQLite::OPEN_NOMUTEX, opts.busy_timeout_ms);
    ::umask(old);
    // Replaces the busy timeout SQLiteCpp set (sqlite3_busy_timeout): the same total wait, in
    // short sleeps (busy_retry_sleep_us).
    sqlite3_busy_handler(db_->getHandle(), &busy_wait,
                         reinterpret_cast<void*>(static_cast<std::intptr_t>(std::max(0, opts.busy_timeout_ms))));
    if (!opts.read_only) {
      db_->exec("PRAGMA journal_mode=WAL");
      // NORMAL is durable across process crashes in WAL mode; only power loss can drop the
      // last commits, and the cost of FULL (an fsync per commit) would slow every batch.
      db_->exec("PRAGMA synchronous=NORMAL");
      // A long reader (an export, a backup) keeps the WAL from being reset, so it grows while
      // writers go on; after each checkpoint that can reset it, SQLite truncates it back to this.
      db_->exec("PRAGMA journal_size_limit=" + std::to_string(kJournalSizeLimitBytes));
    }
    db_->exec("PRAGMA foreign_keys=ON");
    db_->exec("PRAGMA temp_store=MEMORY");
    db_->exec("PRAGMA cache_size=-" + std::to_string(opts.cache_kib));
    // daybreak_order_key(advisor_id, date) for SQL: the deliveries.order_key rule (sql/007).
    db_->createFunction("daybreak_order_key", 2, true, nullptr, &order_key_sql, nullptr, nullptr, nullptr);
  } catch (const SQLite::Exception& e) {
    throw StoreError("cannot open database " + path + ": " + e.what(), sqlite_error_code(e));
  }
  if (!opts.read_only && opts.migrate) migrate();
}

int Db::schema_version() {
  return guarded("reading schema version", [&] {
    db_->exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))");
    SQLite::Statement q(*db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    q.executeStep();
    return q.getColumn(0).getInt();
  });
}

int Db::migrate() {
  schema_version();  // creates schema_migrations when missing
  // Each version on its own, not "everything above the highest": a migration numbered below one
  // already applied (work merged in another order) must still run.
  std::set<int> done = guarded("reading applied migrations", [&] {
    std::set<int> v;
    SQLite::Statement q(*db_, "SELECT version FROM schema_migrations");
    while (q.executeStep()) v.insert(q.getColumn(0).getInt());
    return v;
  });
  int applied = 0;
  // Foreign keys are off while migrations run, as SQLite's table-rebuild procedure requires
  // (dropping a referenced table would otherwise cascade its implicit DELETE); each migration
  // checks them itself before committing. The pragma only changes outside a transaction.
  bool fk_off = false;
  struct RestoreFk {
    SQLite::Database& db;
    bool& off;
    ~RestoreFk() {
      if (off) db.exec("PRAGMA foreign_keys=ON");
    }
  } restore{*db_, fk_off};
  for (const auto& m : embedded_migrations()) {
    if (done.count(m.version)) continue;
    if (!fk_off) {
      db_->exec("PRAGMA foreign_keys=OFF");
      fk_off = true;
    }
    try {
      SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
      // Another process may have migrated while we waited for the write lock.
      SQLite::Statement check(*db_, "SELECT 1 FROM schema_migrations WHERE version = ?");
      check.bind(1, m.version);
      if (check.executeStep()) continue;
      db_->exec(std::string(m.sql));
      SQLite::Statement fk(*db_, "PRAGMA foreign_key_check");
      if (fk.executeStep()) {
        throw StoreError("migration " + std::string(m.name) + " failed: it leaves a row of " + fk.getColumn(0).getString() +
                         " pointing at a missing row of " + fk.getColumn(2).getString());
      }
      SQLite::Statement ins(*db_, "INSERT INTO schema_migrations(version, name) VALUES (?, ?)");
      ins.bind(1, m.version);
      ins.bind(2, std::string(m.name));
      ins.exec();
      tx.commit();
      ++applied;
    } catch (const SQLite::Exception& e) {
      throw StoreError("migration " + std::string(m.name) + " failed: " + e.what());
    }
  }
  return applied;
}

void Db::write_tx(const std::function<void()>& fn) {
  try {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    fn();
    tx.commit();
  } catch (const SQLite::Exception& e) {
    throw StoreError(std::string("database write failed: ") + e.what(), sqlite_error_code(e));
  }
}

SQLite::Statement& Db::stmt(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    try {
      it = cache_.emplace(sql, std::make_unique<SQLite::Statement>(*db_, sql)).first;
    } catch (const SQLite::Exception& e) {
      throw StoreError("preparing \"" + sql.substr(0, 60) + "\": " + e.what(), sqlite_error_code(e));
    }
  }
  // tryReset: reset() rethrows the statement's previous error, so one failed execution would
  // poison every later reuse of the cached statement.
  it->second->tryReset();
  it->second->clearBindings();
  return *it->second;
}

void Db::exec(const std::string& sql) {
  guarded("executing statement", [&] { db_->exec(sql); });
}

int sqlite_error_code(const std::exception& e) noexcept {
  if (const auto* se = dynamic_cast<const SQLite::Exception*>(&e)) {
    // The extended code is -1 when the exception was made without a connection.
    if (se->getExtendedErrorCode() > 0) return se->getExtendedErrorCode();
    return std::max(0, se->getErrorCode());
  }
  if (const auto* st = dynamic_cast<const StoreError*>(&e)) return st->code();
  return 0;
}

bool is_transient_error(const std::exception& e) noexcept {
  switch (sqlite_error_code(e) & 0xff) {  // the primary code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:  // the file or its directory became read-only: an operator can fix it
    case SQLITE_INTERRUPT:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_SCHEMA:
      return true;
    default:
      return false;
  }
}

std::unique_ptr<Db> reader_beside(Db& db) {
  const std::string& path = db.path();
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return nullptr;
  auto& q = db.stmt("PRAGMA journal_mode");
  const bool wal = q.executeStep() && q.getColumn(0).getString() == "wal";
  q.reset();
  if (!wal) return nullptr;
  OpenOptions ro;
  ro.read_only = true;
  ro.migrate = false;
  return std::make_unique<Db>(path, ro);
}

}  // namespace daybreak::store
