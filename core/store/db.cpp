#include "store/db.hpp"

#include <set>

#include <sys/stat.h>

#include <unordered_map>

#include "store/migrations.hpp"

namespace daybreak::store {

Db::Db(const std::string& path, const OpenOptions& opts) : path_(path) {
  try {
    int flags = opts.read_only ? SQLite::OPEN_READONLY : (SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    // New database files are created owner-only: the ledger holds phone numbers and emails.
    mode_t old = ::umask(077);
    // One connection per thread (db.hpp), so SQLite's per-call connection mutex only costs:
    // NOMUTEX drops it (measured: ~3% of planning a million deliveries went to lock/unlock).
    db_ = std::make_unique<SQLite::Database>(path, flags | SQLite::OPEN_NOMUTEX, opts.busy_timeout_ms);
    ::umask(old);
    if (!opts.read_only) {
      db_->exec("PRAGMA journal_mode=WAL");
      // NORMAL is durable across process crashes in WAL mode; only power loss can drop the
      // last commits, and the cost of FULL (an fsync per commit) would slow every batch.
      db_->exec("PRAGMA synchronous=NORMAL");
    }
    db_->exec("PRAGMA foreign_keys=ON");
    db_->exec("PRAGMA temp_store=MEMORY");
    db_->exec("PRAGMA cache_size=-" + std::to_string(opts.cache_kib));
  } catch (const SQLite::Exception& e) {
    throw StoreError("cannot open database " + path + ": " + e.what());
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
  for (const auto& m : embedded_migrations()) {
    if (done.count(m.version)) continue;
    try {
      SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
      // Another process may have migrated while we waited for the write lock.
      SQLite::Statement check(*db_, "SELECT 1 FROM schema_migrations WHERE version = ?");
      check.bind(1, m.version);
      if (check.executeStep()) continue;
      db_->exec(std::string(m.sql));
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
    throw StoreError(std::string("database write failed: ") + e.what());
  }
}

SQLite::Statement& Db::stmt(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    try {
      it = cache_.emplace(sql, std::make_unique<SQLite::Statement>(*db_, sql)).first;
    } catch (const SQLite::Exception& e) {
      throw StoreError("preparing \"" + sql.substr(0, 60) + "\": " + e.what());
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

}  // namespace daybreak::store
