#include "store/retention.hpp"

namespace daybreak::store {

std::vector<ExpiredRun> RunListExpired(Db& db, const std::string& cutoff_date, Millis now) {
  return guarded("RunListExpired", [&] {
    auto& q = db.stmt(
        "SELECT r.run_id, r.date, r.state, (SELECT COUNT(*) FROM deliveries d WHERE d.run_id = r.run_id) FROM runs r "
        "WHERE r.date < ?1 AND NOT (r.owner IS NOT NULL AND r.lease_until IS NOT NULL AND r.lease_until > ?2) "
        "ORDER BY r.date, r.slot_at");
    q.bind(1, cutoff_date);
    q.bind(2, static_cast<std::int64_t>(now));
    std::vector<ExpiredRun> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getString(), q.getColumn(3).getInt64()});
    }
    q.reset();
    return out;
  });
}

PurgeCounts RunPurgeBatch(Db& db, std::int64_t run_id, std::int64_t batch) {
  return guarded("RunPurgeBatch", [&] {
    PurgeCounts c;
    auto run = [&](const char* sql, std::int64_t limit) {
      auto& q = db.stmt(sql);
      q.bind(1, run_id);
      q.bind(2, limit);
      return static_cast<std::int64_t>(q.exec());
    };
    // DELETE … LIMIT needs a compile-time option Debian's SQLite may lack: delete by key instead.
    c.attempts = run(
        "DELETE FROM delivery_attempts WHERE attempt_id IN (SELECT a.attempt_id FROM deliveries d "
        "JOIN delivery_attempts a ON a.delivery_id = d.delivery_id WHERE d.run_id = ?1 LIMIT ?2)",
        batch);
    if (c.attempts >= batch) return c;
    c.changes = run("DELETE FROM delivery_changes WHERE seq IN (SELECT seq FROM delivery_changes WHERE run_id = ?1 LIMIT ?2)",
                    batch - c.attempts);
    if (c.total() >= batch) return c;
    // Only deliveries with no attempts left: the ones above went first, in this or earlier batches.
    c.deliveries = run(
        "DELETE FROM deliveries WHERE delivery_id IN (SELECT d.delivery_id FROM deliveries d WHERE d.run_id = ?1 "
        "AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = d.delivery_id) LIMIT ?2)",
        batch - c.total());
    if (c.total() >= batch) return c;
    auto& left = db.stmt("SELECT EXISTS (SELECT 1 FROM deliveries WHERE run_id = ?1)");
    left.bind(1, run_id);
    left.executeStep();
    bool more = left.getColumn(0).getInt() != 0;
    left.reset();
    if (more) return c;
    c.reports = run("DELETE FROM sla_reports WHERE run_id = ?1 AND ?2 > 0", 1);
    c.runs = run("DELETE FROM runs WHERE run_id = ?1 AND ?2 > 0", 1);
    return c;
  });
}

}  // namespace daybreak::store
