#pragma once
// A thin libpq connection for the PostgreSQL ledger: named prepared statements (prepared once
// per connection), text parameters, and failures as StoreError. A failure PostgreSQL calls
// retryable (a lost connection, a serialization failure or deadlock, a lock not available, the
// server shutting down or out of resources) carries SQLITE_BUSY as its code so
// store::is_transient_error tells the batch writer to keep the batch and retry, as it does for a
// busy SQLite file; every other failure is permanent.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

struct pg_conn;
struct pg_result;

namespace daybreak::store {

/// One parameter: nullopt is SQL NULL.
using PgParam = std::optional<std::string>;

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(pg_result* r) : r_(r) {}
  PgResult(PgResult&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  PgResult& operator=(PgResult&& o) noexcept;
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ~PgResult();
  [[nodiscard]] int rows() const;
  [[nodiscard]] bool null(int row, int col) const;
  [[nodiscard]] std::string str(int row, int col) const;
  [[nodiscard]] std::int64_t i64(int row, int col) const;
  [[nodiscard]] std::optional<std::int64_t> opt_i64(int row, int col) const;
  [[nodiscard]] std::optional<std::string> opt_str(int row, int col) const;
  /// Rows an UPDATE/INSERT/DELETE touched.
  [[nodiscard]] std::int64_t affected() const;
  /// Columns of the result, and one's name as the statement gives it.
  [[nodiscard]] int cols() const;
  [[nodiscard]] std::string name(int col) const;
  /// The column's type is an integer (smallint, integer, bigint) or a floating-point one (real,
  /// double precision, numeric): how exports tell numbers from text, as SQLite's value types do.
  [[nodiscard]] bool is_integer(int col) const;
  [[nodiscard]] bool is_float(int col) const;

 private:
  pg_result* r_ = nullptr;
};

/// One statement's answer in a pipeline (PgConn::pipeline_sync): its result, or why it failed.
struct PgPiped {
  PgResult result;
  bool ok = false;
  bool transient = false;  ///< the failure may pass on a retry (as store::is_transient_error)
  std::string error;       ///< "PostgreSQL: <statement>: <message>", when not ok
};

class PgConn {
 public:
  /// Connects to `url` (a postgresql:// URI); throws StoreError when it cannot.
  explicit PgConn(std::string url);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  /// Runs one or more statements without parameters.
  void exec(const std::string& sql);
  /// Runs `sql` as the prepared statement `name` (prepared on first use on this connection).
  PgResult run(const char* name, const std::string& sql, const std::vector<PgParam>& params);
  /// Runs `sql` with parameters, unprepared (one-off statements).
  PgResult query(const std::string& sql, const std::vector<PgParam>& params = {});
  /// True while a transaction is open on the connection (or failed and not yet rolled back).
  [[nodiscard]] bool in_transaction() const;
  /// Reconnects when the connection was lost (outside a transaction); prepared statements are
  /// prepared again on their next use.
  void ensure_connected();
  /// Runs `sql` and calls `fn` with each row as it arrives (single-row mode: a million rows are
  /// never held at once). `fn` reads row 0 of the result it is given.
  void each_row(const std::string& sql, const std::vector<PgParam>& params, const std::function<void(const PgResult&)>& fn);
  /// COPY … FROM STDIN: `data` in COPY's text format.
  void copy_in(const std::string& copy_sql, const std::string& data);
  [[nodiscard]] pg_conn* raw() { return c_; }

  // ---- pipeline mode (libpq 14 and later) ----
  /// Queues `sql` as the prepared statement `name` (prepared in the same pipeline on first use)
  /// without waiting for its answer; the connection enters pipeline mode at the first call.
  void pipeline_send(const char* name, const std::string& sql, const std::vector<PgParam>& params);
  /// Sends what was queued with one sync, reads every answer in order (writing and reading
  /// together on a non-blocking socket, so a long pipeline cannot fill both directions and wait
  /// on itself) and leaves pipeline mode: one round trip for the lot. A statement that fails
  /// aborts the ones queued after it (their answer says so); the transaction is then failed, as
  /// after any failed statement. A lost connection throws StoreError (transient) and drops it.
  std::vector<PgPiped> pipeline_sync();

 private:
  [[noreturn]] void fail(const std::string& what, pg_result* r);
  /// The connection broke in the middle of a pipeline: dropped (the next use reconnects).
  [[noreturn]] void pipeline_lost(const std::string& what);
  PgResult check(const std::string& what, pg_result* r);
  std::string url_;
  pg_conn* c_ = nullptr;
  std::unordered_set<std::string> prepared_;
  struct PipeEntry {
    std::string name;
    bool prepare = false;  ///< the statement's PREPARE, not a statement of the caller's
  };
  std::vector<PipeEntry> pipe_;
  bool pipe_broken_ = false;
};

/// Runs `fn` in one transaction on `c`: BEGIN, then COMMIT, or ROLLBACK when `fn` throws (the
/// exception goes on).
template <class Fn>
void pg_transaction(PgConn& c, Fn&& fn) {
  c.ensure_connected();
  c.exec("BEGIN");
  try {
    fn();
    c.exec("COMMIT");
  } catch (...) {
    try {
      c.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

/// `sql` with SQLite's numbered parameters (?1, ?2, …) spelled as PostgreSQL's ($1, $2, …): the
/// store's portable statements run on both ledgers. `sql` must hold no other '?'.
std::string pg_numbered_params(std::string sql);
/// What to add to libpq's connect error `libpq_message`: when connect(2) was refused on this host
/// (EPERM: a systemd unit's IPAddressDeny, a firewall rule), where to allow the address; else "".
std::string pg_connect_hint(const std::string& libpq_message);

/// Quotes a value for COPY's text format (backslash, tab, newline, carriage return escaped).
void pg_copy_field(std::string& out, std::string_view v);
/// Applies the PostgreSQL ledger's migrations (sql/postgresql/) not yet applied, each in its own
/// transaction, recorded in schema_version; an advisory lock keeps two connecting hosts from
/// applying the same one twice. Returns the schema version.
int pg_migrate(PgConn& c);

}  // namespace daybreak::store
