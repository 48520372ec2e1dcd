#include "store/pg.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sqlite3.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <set>

#include "store/db.hpp"
#include "store/migrations.hpp"

namespace daybreak::store {
namespace {

/// SQLSTATE classes and codes a retry may get past (PostgreSQL's "Appendix A. PostgreSQL Error
/// Codes", https://www.postgresql.org/docs/15/errcodes-appendix.html): 08 connection exception,
/// 40 transaction rollback (40001 serialization_failure, 40P01 deadlock_detected), 53
/// insufficient resources, 58 system error (58030 io_error), 57P01..57P03 admin/crash shutdown
/// and cannot_connect_now, 57014 query_canceled, 55P03 lock_not_available. Also, as SQLite's
/// SQLITE_READONLY is (store/db.cpp), the states an operator or a failover fixes without the
/// write changing: 25006 read_only_sql_transaction (a primary demoted to a standby, or
/// default_transaction_read_only) and 42501 insufficient_privilege (a revoked grant). Dropping
/// such a write would lose a claim or an outcome the server will take once it is writable.
bool pg_state_transient(const char* state) {
  if (!state || std::strlen(state) != 5) return true;  // no SQLSTATE: the connection broke
  const std::string s(state);
  if (s.starts_with("08") || s.starts_with("40") || s.starts_with("53") || s.starts_with("58")) return true;
  return s == "57P01" || s == "57P02" || s == "57P03" || s == "57014" || s == "55P03" || s == "25006" || s == "42501";
}

}  // namespace

PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}
PgResult::~PgResult() {
  if (r_) PQclear(r_);
}
int PgResult::rows() const { return r_ ? PQntuples(r_) : 0; }
bool PgResult::null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string PgResult::str(int row, int col) const {
  return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
}
std::int64_t PgResult::i64(int row, int col) const {
  if (null(row, col)) return 0;
  return std::stoll(PQgetvalue(r_, row, col));
}
std::optional<std::int64_t> PgResult::opt_i64(int row, int col) const {
  if (null(row, col)) return std::nullopt;
  return std::stoll(PQgetvalue(r_, row, col));
}
std::optional<std::string> PgResult::opt_str(int row, int col) const {
  if (null(row, col)) return std::nullopt;
  return str(row, col);
}
std::int64_t PgResult::affected() const {
  const char* n = r_ ? PQcmdTuples(r_) : "";
  return (n && *n) ? std::stoll(n) : 0;
}

std::string pg_numbered_params(std::string sql) {
  for (std::size_t i = 0; (i = sql.find('?', i)) != std::string::npos;) sql[i] = '$';
  return sql;
}

int PgResult::cols() const { return r_ ? PQnfields(r_) : 0; }
std::string PgResult::name(int col) const { return PQfname(r_, col); }
// Type OIDs of the built-in types (PostgreSQL's src/include/catalog/pg_type.dat; fixed).
bool PgResult::is_integer(int col) const {
  const Oid t = PQftype(r_, col);
  return t == 20 || t == 21 || t == 23;  // int8, int2, int4
}
bool PgResult::is_float(int col) const {
  const Oid t = PQftype(r_, col);
  return t == 700 || t == 701 || t == 1700;  // float4, float8, numeric
}

std::string pg_connect_hint(const std::string& libpq_message) {
  // connect(2) failing with EPERM: nothing reached the network. On a daybreak host that is the
  // systemd units' IPAddressDeny=any (daybreak-callbacks, daybreak-console: loopback only) or a
  // local firewall rule, not the server.
  if (libpq_message.find("Operation not permitted") == std::string::npos) return "";
  return " (this host refused the connection itself, before it left: a systemd unit's IPAddressDeny or a local firewall "
         "rule; for daybreak-callbacks or daybreak-console allow the server's address with `systemctl edit UNIT`: "
         "[Service] IPAddressAllow=ADDRESS)";
}

PgConn::PgConn(std::string url) : url_(std::move(url)) { ensure_connected(); }
PgConn::~PgConn() {
  if (c_) PQfinish(c_);
}

void PgConn::ensure_connected() {
  if (c_ && PQstatus(c_) == CONNECTION_OK) return;
  if (c_) {
    PQfinish(c_);
    c_ = nullptr;
  }
  prepared_.clear();
  // Network defaults for a ledger on another host, before the URL so that its own parameters
  // win (libpq takes the last value of a repeated keyword; `dbname` expands the URL in place).
  // Without them a host that is gone holds a connect for ~2 min (SYN retries) and a statement
  // for ~15 min (TCP retransmissions) — no error, so no store_unwritable and no retry. With
  // them a connect fails after 5 s, an unanswered write after 15 s (tcp_user_timeout), and an
  // idle connection to a dead peer is found by keepalives within ~20 s.
  static const char* const kKeys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                      "keepalives_count", "tcp_user_timeout", "dbname", nullptr};
  const char* const values[] = {"5", "1", "10", "3", "3", "15000", url_.c_str(), nullptr};
  c_ = PQconnectdbParams(kKeys, values, /*expand_dbname=*/1);
  if (PQstatus(c_) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(c_);
    c_ = nullptr;
    // A server that is down or restarting may be back on the next try.
    throw StoreError("cannot connect to PostgreSQL: " + msg + pg_connect_hint(msg), SQLITE_CANTOPEN);
  }
  // Notices (e.g. "relation already exists, skipping") are not errors: keep them off stderr.
  PQsetNoticeProcessor(c_, [](void*, const char*) {}, nullptr);
}

namespace {
/// What a failed result (or, without one, the connection) says, and whether a retry may pass.
std::pair<std::string, bool> pg_failure(pg_conn* c, const std::string& what, const pg_result* r) {
  std::string msg = r ? PQresultErrorMessage(r) : "";
  if (msg.empty() && c) msg = PQerrorMessage(c);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const bool transient = pg_state_transient(state) || !c || PQstatus(c) != CONNECTION_OK;
  return {"PostgreSQL: " + what + ": " + msg, transient};
}
}  // namespace

void PgConn::fail(const std::string& what, pg_result* r) {
  auto [msg, transient] = pg_failure(c_, what, r);
  if (r) PQclear(r);
  throw StoreError(msg, transient ? SQLITE_BUSY : 0);
}

PgResult PgConn::check(const std::string& what, pg_result* r) {
  if (!r) fail(what, nullptr);
  auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN) fail(what, r);
  return PgResult(r);
}

void PgConn::exec(const std::string& sql) {
  if (!c_) ensure_connected();
  check(sql.substr(0, 60), PQexec(c_, sql.c_str()));
}

namespace {
std::vector<const char*> param_ptrs(const std::vector<PgParam>& params) {
  std::vector<const char*> v;
  v.reserve(params.size());
  for (const auto& p : params) v.push_back(p ? p->c_str() : nullptr);
  return v;
}
}  // namespace

PgResult PgConn::run(const char* name, const std::string& sql, const std::vector<PgParam>& params) {
  if (!c_) ensure_connected();
  if (!prepared_.count(name)) {
    check(std::string("preparing ") + name, PQprepare(c_, name, sql.c_str(), static_cast<int>(params.size()), nullptr));
    prepared_.insert(name);
  }
  auto p = param_ptrs(params);
  return check(name, PQexecPrepared(c_, name, static_cast<int>(p.size()), p.data(), nullptr, nullptr, 0));
}

PgResult PgConn::query(const std::string& sql, const std::vector<PgParam>& params) {
  if (!c_) ensure_connected();
  auto p = param_ptrs(params);
  return check(sql.substr(0, 60), PQexecParams(c_, sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(), nullptr, nullptr, 0));
}

bool PgConn::in_transaction() const {
  if (!c_) return false;
  auto s = PQtransactionStatus(c_);
  return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

void PgConn::each_row(const std::string& sql, const std::vector<PgParam>& params,
                      const std::function<void(const PgResult&)>& fn) {
  if (!c_) ensure_connected();
  auto p = param_ptrs(params);
  if (PQsendQueryParams(c_, sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(), nullptr, nullptr, 0) != 1) {
    fail(sql.substr(0, 60), nullptr);
  }
  PQsetSingleRowMode(c_);
  std::exception_ptr err;
  while (pg_result* r = PQgetResult(c_)) {
    auto st = PQresultStatus(r);
    if (st == PGRES_SINGLE_TUPLE) {
      PgResult row(r);
      if (!err) {
        try {
          fn(row);
        } catch (...) {
          err = std::current_exception();  // drain the rest so the connection stays usable
        }
      }
    } else if (st == PGRES_TUPLES_OK) {
      PQclear(r);
    } else {
      while (pg_result* extra = PQgetResult(c_)) PQclear(extra);
      fail(sql.substr(0, 60), r);
    }
  }
  if (err) std::rethrow_exception(err);
}

void PgConn::copy_in(const std::string& copy_sql, const std::string& data) {
  if (!c_) ensure_connected();
  pg_result* r = PQexec(c_, copy_sql.c_str());
  if (!r || PQresultStatus(r) != PGRES_COPY_IN) fail(copy_sql, r);
  PQclear(r);
  if (PQputCopyData(c_, data.data(), static_cast<int>(data.size())) != 1 || PQputCopyEnd(c_, nullptr) != 1) {
    fail(copy_sql, nullptr);
  }
  check(copy_sql, PQgetResult(c_));
  while (pg_result* extra = PQgetResult(c_)) PQclear(extra);
}

void PgConn::pipeline_send(const char* name, const std::string& sql, const std::vector<PgParam>& params) {
  if (!c_) ensure_connected();
  if (pipe_broken_) return;  // reported by pipeline_sync
  if (PQpipelineStatus(c_) == PQ_PIPELINE_OFF) {
    // Non-blocking: queued statements are buffered by libpq, and pipeline_sync writes them
    // while it reads the answers.
    if (PQenterPipelineMode(c_) != 1 || PQsetnonblocking(c_, 1) != 0) {
      pipe_broken_ = true;
      return;
    }
  }
  if (!prepared_.count(name)) {
    if (PQsendPrepare(c_, name, sql.c_str(), static_cast<int>(params.size()), nullptr) != 1) {
      pipe_broken_ = true;
      return;
    }
    prepared_.insert(name);  // taken back by pipeline_sync when the PREPARE did not succeed
    pipe_.push_back({name, true});
  }
  auto p = param_ptrs(params);
  if (PQsendQueryPrepared(c_, name, static_cast<int>(p.size()), p.data(), nullptr, nullptr, 0) != 1) {
    pipe_broken_ = true;
    return;
  }
  pipe_.push_back({name, false});
}

void PgConn::pipeline_lost(const std::string& what) {
  std::string msg = c_ ? PQerrorMessage(c_) : "";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (c_) PQfinish(c_);  // its state is unknown: the next use connects afresh
  c_ = nullptr;
  prepared_.clear();
  pipe_.clear();
  pipe_broken_ = false;
  throw StoreError("PostgreSQL: " + what + ": " + msg, SQLITE_BUSY);
}

std::vector<PgPiped> PgConn::pipeline_sync() {
  std::vector<PgPiped> out;
  if (pipe_.empty() && !pipe_broken_) return out;
  if (pipe_broken_ || !c_ || PQpipelineSync(c_) != 1) pipeline_lost("sending a pipeline");
  std::vector<PgPiped> answers(pipe_.size());
  std::size_t cur = 0;   // the entry whose answer comes next
  bool got = false;      // cur has had its result (its terminating null comes next)
  bool synced = false;
  while (!synced) {
    const int flushed = PQflush(c_);
    if (flushed < 0) pipeline_lost("sending a pipeline");
    while (!synced && !PQisBusy(c_)) {
      pg_result* r = PQgetResult(c_);
      if (!r) {
        if (!got) break;  // nothing more to read yet
        ++cur;
        got = false;
        continue;
      }
      const auto st = PQresultStatus(r);
      if (st == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        synced = true;
        break;
      }
      got = true;
      if (cur >= answers.size()) {
        PQclear(r);
        continue;
      }
      auto& a = answers[cur];
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        a.ok = true;
        a.result = PgResult(r);
      } else if (st == PGRES_PIPELINE_ABORTED) {
        a.error = "PostgreSQL: " + pipe_[cur].name + ": not run, a statement before it in the batch failed";
        PQclear(r);
      } else {
        auto [msg, transient] = pg_failure(c_, pipe_[cur].name, r);
        a.error = std::move(msg);
        a.transient = transient;
        PQclear(r);
      }
    }
    if (synced) break;
    pollfd pfd{PQsocket(c_), static_cast<short>(POLLIN | (flushed == 1 ? POLLOUT : 0)), 0};
    if (pfd.fd < 0) pipeline_lost("reading a pipeline");
    if (::poll(&pfd, 1, -1) < 0 && errno != EINTR) pipeline_lost("waiting on a pipeline");
    if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) && PQconsumeInput(c_) != 1) pipeline_lost("reading a pipeline");
  }
  if (PQexitPipelineMode(c_) != 1 || PQsetnonblocking(c_, 0) != 0) pipeline_lost("leaving pipeline mode");
  out.reserve(pipe_.size());
  for (std::size_t i = 0; i < pipe_.size(); ++i) {
    if (pipe_[i].prepare) {
      if (!answers[i].ok) prepared_.erase(pipe_[i].name);
      continue;
    }
    out.push_back(std::move(answers[i]));
  }
  pipe_.clear();
  return out;
}

void pg_copy_field(std::string& out, std::string_view v) {
  for (char ch : v) {
    switch (ch) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += ch;
    }
  }
}

int pg_migrate(PgConn& c) {
  // One migrating host at a time (a session-level advisory lock, released below or with the
  // connection): the second waits and then finds the versions applied.
  c.exec("SELECT pg_advisory_lock(7243001)");
  try {
    c.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
           "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    std::set<int> done;
    auto r = c.query("SELECT version FROM schema_migrations");
    for (int i = 0; i < r.rows(); ++i) done.insert(static_cast<int>(r.i64(i, 0)));
    for (const auto& m : embedded_pg_migrations()) {
      if (done.count(m.version)) continue;
      pg_transaction(c, [&] {
        c.exec(std::string(m.sql));
        c.query("INSERT INTO schema_migrations(version, name) VALUES ($1, $2)", {std::to_string(m.version), std::string(m.name)});
      });
    }
    auto v = c.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    const int version = static_cast<int>(v.i64(0, 0));
    c.exec("SELECT pg_advisory_unlock(7243001)");
    return version;
  } catch (...) {
    try {
      c.exec("SELECT pg_advisory_unlock(7243001)");
    } catch (...) {
    }
    throw;
  }
}

}  // namespace daybreak::store
