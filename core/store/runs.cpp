#include "store/runs.hpp"

#include <algorithm>

namespace daybreak::store {
namespace {

const char* kRunColumns =
    "run_id, date, slot_at, window_start, window_end, deadline_at, state, planned_count, feasible, plan_report, "
    "owner, lease_until, heartbeat_at, progress, started_at, finished_at";

Run read_run(SQLite::Statement& q) {
  Run r;
  r.run_id = q.getColumn(0).getInt64();
  r.date = q.getColumn(1).getString();
  r.slot_at = q.getColumn(2).getInt64();
  r.window_start = q.getColumn(3).getInt64();
  r.window_end = q.getColumn(4).getInt64();
  r.deadline_at = q.getColumn(5).getInt64();
  r.state = q.getColumn(6).getString();
  r.planned_count = q.getColumn(7).getInt64();
  r.feasible = q.getColumn(8).getInt() != 0;
  r.plan_report = q.getColumn(9).getString();
  r.owner = column_opt<std::string>(q.getColumn(10));
  r.lease_until = column_opt<Millis>(q.getColumn(11));
  r.heartbeat_at = column_opt<Millis>(q.getColumn(12));
  r.progress = q.getColumn(13).getString();
  r.started_at = column_opt<Millis>(q.getColumn(14));
  r.finished_at = column_opt<Millis>(q.getColumn(15));
  return r;
}

std::vector<Run> read_all(SQLite::Statement& q) {
  std::vector<Run> out;
  while (q.executeStep()) out.push_back(read_run(q));
  return out;
}

}  // namespace

namespace {

/// Binds ?1..?8: date, slot, window start and end, deadline, planned count, feasible, plan report.
void bind_run(SQLite::Statement& q, const RunUpsertParams& p) {
  q.bind(1, p.date);
  q.bind(2, p.window.slot_at);
  q.bind(3, p.window.start);
  q.bind(4, p.window.end);
  q.bind(5, p.window.deadline);
  q.bind(6, p.planned_count);
  q.bind(7, p.feasible ? 1 : 0);
  q.bind(8, p.plan_report);
}

}  // namespace

std::int64_t RunUpsert(Db& db, const RunUpsertParams& p) {
  return guarded("RunUpsert", [&] {
    auto& q = db.stmt(
        "INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at, planned_count, feasible, plan_report) "
        "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(date, slot_at) DO UPDATE SET planned_count=excluded.planned_count, "
        "feasible=excluded.feasible, plan_report=excluded.plan_report, window_start=excluded.window_start, "
        "window_end=excluded.window_end, deadline_at=excluded.deadline_at RETURNING run_id");
    bind_run(q, p);
    q.executeStep();
    auto id = q.getColumn(0).getInt64();
    q.reset();
    return id;
  });
}

std::int64_t RunInsertUrgent(Db& db, RunUpsertParams& p) {
  return guarded("RunInsertUrgent", [&] {
    auto& q = db.stmt(
        "INSERT INTO runs(date, slot_at, window_start, window_end, deadline_at, planned_count, feasible, plan_report, kind) "
        "VALUES (?,?,?,?,?,?,?,?,'urgent') ON CONFLICT(date, slot_at) DO NOTHING RETURNING run_id");
    for (int tries = 0;; ++tries) {
      bind_run(q, p);
      const bool inserted = q.executeStep();
      const std::int64_t id = inserted ? q.getColumn(0).getInt64() : 0;
      q.reset();
      if (inserted) return id;
      if (tries >= 1000) throw StoreError("RunInsertUrgent: no free slot instant near " + std::to_string(p.window.slot_at));
      ++p.window.slot_at;
    }
  });
}

std::vector<ChannelBacklog> RunMorningBacklog(Db& db, Millis now, Millis drain_ms) {
  return guarded("RunMorningBacklog", [&] {
    auto& q = db.stmt(
        "SELECT d.channel, COUNT(*), MAX(d.planned_at), MIN(r.deadline_at) FROM runs r "
        "JOIN deliveries d ON d.run_id = r.run_id AND d.state IN ('planned','sending','uncertain','retry_wait') "
        "WHERE r.kind = 'morning' AND r.state IN ('planned','running') AND r.window_start <= ?1 "
        "AND r.deadline_at + ?2 >= ?1 GROUP BY d.channel ORDER BY d.channel");
    q.bind(1, now);
    q.bind(2, drain_ms);
    std::vector<ChannelBacklog> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getString(), q.getColumn(1).getInt64(), q.getColumn(2).getInt64(),
                     q.getColumn(3).getInt64()});
    }
    q.reset();
    return out;
  });
}

std::vector<std::int64_t> RunListAdoptableUrgent(Db& db, Millis from, Millis to, Millis now,
                                                 const std::vector<std::int64_t>& known) {
  return guarded("RunListAdoptableUrgent", [&] {
    auto& q = db.stmt(
        "SELECT run_id FROM runs WHERE kind = 'urgent' AND state IN ('planned','running') AND window_start <= ? "
        "AND deadline_at >= ? AND (owner IS NULL OR lease_until IS NULL OR lease_until <= ?) ORDER BY slot_at");
    q.bind(1, to);
    q.bind(2, from);
    q.bind(3, now);
    std::vector<std::int64_t> out;
    while (q.executeStep()) {
      const auto id = q.getColumn(0).getInt64();
      if (std::find(known.begin(), known.end(), id) == known.end()) out.push_back(id);
    }
    q.reset();
    return out;
  });
}

std::optional<std::string> RunLiveDispatchOwner(Db& db, Millis now) {
  return guarded("RunLiveDispatchOwner", [&]() -> std::optional<std::string> {
    auto& q = db.stmt(
        "SELECT owner FROM runs WHERE owner IS NOT NULL AND lease_until > ? AND state IN ('planned','running') "
        "ORDER BY heartbeat_at DESC LIMIT 1");
    q.bind(1, now);
    std::optional<std::string> out;
    if (q.executeStep()) out = q.getColumn(0).getString();
    q.reset();
    return out;
  });
}

std::string RunKindGet(Db& db, std::int64_t run_id) {
  return guarded("RunKindGet", [&]() -> std::string {
    auto& q = db.stmt("SELECT kind FROM runs WHERE run_id = ?");
    q.bind(1, run_id);
    std::string kind = q.executeStep() ? q.getColumn(0).getString() : std::string("morning");
    q.reset();
    return kind;
  });
}

std::optional<Run> RunGet(Db& db, std::int64_t run_id) {
  return guarded("RunGet", [&]() -> std::optional<Run> {
    auto& q = db.stmt(std::string("SELECT ") + kRunColumns + " FROM runs WHERE run_id = ?");
    q.bind(1, run_id);
    if (!q.executeStep()) return std::nullopt;
    auto r = read_run(q);
    q.reset();
    return r;
  });
}

std::vector<Run> RunListForDate(Db& db, const std::string& date) {
  return guarded("RunListForDate", [&] {
    auto& q = db.stmt(std::string("SELECT ") + kRunColumns + " FROM runs WHERE date = ? ORDER BY slot_at");
    q.bind(1, date);
    return read_all(q);
  });
}

std::vector<Run> RunListActive(Db& db, Millis from, Millis to) {
  return guarded("RunListActive", [&] {
    auto& q = db.stmt(std::string("SELECT ") + kRunColumns +
                      " FROM runs WHERE state IN ('planned','running') AND window_start <= ? AND deadline_at >= ? "
                      "ORDER BY slot_at");
    q.bind(1, to);
    q.bind(2, from);
    return read_all(q);
  });
}

std::vector<Run> RunListRecent(Db& db, int limit) {
  return guarded("RunListRecent", [&] {
    auto& q = db.stmt(std::string("SELECT ") + kRunColumns + " FROM runs ORDER BY slot_at DESC LIMIT ?");
    q.bind(1, limit);
    return read_all(q);
  });
}

LeaseResult RunAcquireLease(Db& db, std::int64_t run_id, const std::string& owner, Millis now, Millis lease_ms) {
  return guarded("RunAcquireLease", [&] {
    LeaseResult res;
    auto cur = RunGet(db, run_id);
    if (!cur) return res;
    if (cur->owner && *cur->owner != owner && cur->lease_until && *cur->lease_until > now) {
      res.previous_owner = cur->owner;
      res.previous_heartbeat = cur->heartbeat_at;
      return res;  // a live owner holds it
    }
    res.took_over = cur->owner.has_value() && *cur->owner != owner;
    res.previous_owner = cur->owner;
    res.previous_heartbeat = cur->heartbeat_at;
    auto& q = db.stmt(
        "UPDATE runs SET owner = ?, lease_until = ?, heartbeat_at = ?, state = 'running', "
        "started_at = COALESCE(started_at, ?) WHERE run_id = ?");
    q.bind(1, owner);
    q.bind(2, now + lease_ms);
    q.bind(3, now);
    q.bind(4, now);
    q.bind(5, run_id);
    q.exec();
    res.acquired = true;
    return res;
  });
}

bool RunHeartbeat(Db& db, std::int64_t run_id, const std::string& owner, Millis now, Millis lease_ms,
                  const std::string& progress_json) {
  return guarded("RunHeartbeat", [&] {
    auto& q = db.stmt("UPDATE runs SET lease_until = ?, heartbeat_at = ?, progress = ? WHERE run_id = ? AND owner = ?");
    q.bind(1, now + lease_ms);
    q.bind(2, now);
    q.bind(3, progress_json);
    q.bind(4, run_id);
    q.bind(5, owner);
    return q.exec() == 1;
  });
}

void RunReleaseLease(Db& db, std::int64_t run_id, const std::string& owner) {
  guarded("RunReleaseLease", [&] {
    auto& q = db.stmt("UPDATE runs SET owner = NULL, lease_until = NULL WHERE run_id = ? AND owner = ?");
    q.bind(1, run_id);
    q.bind(2, owner);
    q.exec();
  });
}

bool RunClose(Db& db, std::int64_t run_id, const std::string& owner, Millis now, const std::string& progress_json) {
  return guarded("RunClose", [&] {
    // Never closed with a row that is not final: such a row would never be sent (a closed run
    // is not chosen again) and the report would count it as if it were over.
    auto& q = db.stmt(
        "UPDATE runs SET state = CASE WHEN state = 'cancelled' THEN 'cancelled' ELSE 'closed' END, finished_at = ?, progress = ?, owner = NULL, lease_until = NULL, "
        "heartbeat_at = ? WHERE run_id = ? AND (owner = ? OR owner IS NULL) AND NOT EXISTS "
        "(SELECT 1 FROM deliveries d WHERE d.run_id = ? AND d.state IN (" + non_final_states_sql() + "))");
    q.bind(1, now);
    q.bind(2, progress_json);
    q.bind(3, now);
    q.bind(4, run_id);
    q.bind(5, owner);
    q.bind(6, run_id);
    return q.exec() == 1;
  });
}

std::int64_t RunCountNonFinal(Db& db, std::int64_t run_id) {
  return guarded("RunCountNonFinal", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM deliveries WHERE run_id = ? AND state IN (" + non_final_states_sql() + ")");
    q.bind(1, run_id);
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

}  // namespace daybreak::store
