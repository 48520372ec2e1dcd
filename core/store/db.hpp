#pragma once
// The one SQLite database: opened in WAL mode with a busy timeout and foreign keys, migrated
// from the embedded sql/ files. Every query module takes a Db&.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace daybreak::store {

/// A database failure (open, migrate, a query): mapped to exit code 4 by the mains.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  /// `code`: SQLite's (extended) result code behind the failure.
  StoreError(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  /// SQLite's (extended) result code behind the failure; 0 when it was not SQLite's.
  [[nodiscard]] int code() const noexcept { return code_; }

 private:
  int code_ = 0;
};

/// SQLite's result code behind `e` (a SQLite::Exception, or a StoreError wrapping one): the
/// extended code when known. 0 when `e` is not a SQLite failure.
int sqlite_error_code(const std::exception& e) noexcept;

/// True when the same write may succeed if tried again later: the database is busy or locked,
/// full, read-only, out of memory, an I/O error... False for a failure that repeats on every
/// attempt: a constraint, a type mismatch, misuse, a corrupt file, or any exception that is
/// not SQLite's (a bug or a refusal in the caller's own code).
bool is_transient_error(const std::exception& e) noexcept;

/// PRAGMA journal_size_limit on every writable connection: the WAL is truncated back to 64 MiB
/// after a checkpoint resets it, however far a long reader let it grow.
inline constexpr std::int64_t kJournalSizeLimitBytes = 64LL * 1024 * 1024;

/// How a connection waits for another connection's write lock (SQLITE_BUSY): the sleep before
/// retry number `retry` (0 = the first), in microseconds, or 0 once the sleeps before it add up
/// to `timeout_ms` (the statement then fails busy). 100 µs, 200 µs, ... up to 1 ms, then 1 ms
/// each: a transaction holds the lock for a few milliseconds, so a waiter tries again about as
/// soon as it is free. SQLite's own busy timeout sleeps 1, 2, 5, 10 ... 100 ms in turn, so a
/// writer that lost the race to another process's commit sat out 8 ms after three tries and
/// up to 100 ms a try while the lock was free (dispatch beside daybreak-callbacks spent 8.5-10.4 s
/// of a 100,000-message morning asleep on it: docs/performance-notes.md, "Two writers").
std::int64_t busy_retry_sleep_us(int retry, int timeout_ms) noexcept;

struct OpenOptions {
  bool read_only = false;
  bool migrate = true;        ///< apply pending migrations on open (read-only never migrates)
  int busy_timeout_ms = 5000; ///< how long a statement waits on another writer's lock (busy_retry_sleep_us)
  int cache_kib = 65536;      ///< SQLite page cache: 64 MiB fits the hot tables of a 1M plan
};

/// An open connection. Not thread-safe: one per thread.
class Db {
 public:
  Db(const std::string& path, const OpenOptions& opts = {});
  SQLite::Database& raw() { return *db_; }
  const std::string& path() const { return path_; }

  /// The schema version recorded in schema_migrations (0 for a new file).
  int schema_version();
  /// Applies every embedded migration newer than the schema version, each in its own
  /// transaction that also records the version. Returns how many were applied.
  int migrate();

  /// Runs fn inside BEGIN IMMEDIATE … COMMIT; rolls back on exception and rethrows.
  void write_tx(const std::function<void()>& fn);

  /// A cached prepared statement for `sql` (reset and cleared of bindings before return).
  SQLite::Statement& stmt(const std::string& sql);

  /// Executes a statement with no result.
  void exec(const std::string& sql);

 private:
  std::string path_;
  std::unique_ptr<SQLite::Database> db_;
  std::unordered_map<std::string, std::unique_ptr<SQLite::Statement>> cache_;
};

/// A nullable column read as an optional (TEXT as std::string, INTEGER as T).
template <typename T>
std::optional<T> column_opt(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  if constexpr (std::is_same_v<T, std::string>) {
    return c.getString();
  } else {
    return static_cast<T>(c.getInt64());
  }
}

/// Binds an optional: NULL when empty.
template <typename T>
void bind_opt(SQLite::Statement& q, int i, const std::optional<T>& v) {
  if (v) {
    q.bind(i, *v);
  } else {
    q.bind(i);
  }
}

/// A read-only connection to `db`'s file for a thread that reads beside `db`'s open write
/// transaction, or null when `db` is not a file in WAL mode (in a rollback journal the writer
/// could not spill or commit while another connection reads). Opened while `db` holds the write
/// lock, its first read transaction sees the last commit, which no other connection can follow
/// until `db`'s: the rows `db` itself would read, without its own uncommitted writes. Close it
/// before `db` commits, or it holds the checkpoint back.
std::unique_ptr<Db> reader_beside(Db& db);

/// Wraps SQLite exceptions from fn into StoreError naming `what`.
template <typename Fn>
auto guarded(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const SQLite::Exception& e) {
    throw StoreError(std::string(what) + ": " + e.what(), sqlite_error_code(e));
  }
}

}  // namespace daybreak::store
