#include "store/withdrawal.hpp"

#include "store/deliveries.hpp"

namespace daybreak::store {

ContentWithdrawResult ContentWithdraw(Db& db, const std::string& content_id, const std::string& actor, Millis now) {
  return guarded("withdrawing content", [&] {
    ContentWithdrawResult r;
    auto& q = db.stmt("SELECT withdrawn_at, withdrawn_by FROM content WHERE content_id = ?1");
    q.bind(1, content_id);
    if (q.executeStep()) {
      r.found = true;
      if (!q.getColumn(0).isNull()) {
        r.withdrawn_at = q.getColumn(0).getInt64();
        r.withdrawn_by = q.getColumn(1).getString();
      }
    }
    q.reset();
    if (!r.found || r.withdrawn_at) return r;
    auto& u = db.stmt("UPDATE content SET withdrawn_at = ?2, withdrawn_by = ?3 WHERE content_id = ?1 AND withdrawn_at IS NULL");
    u.bind(1, content_id);
    u.bind(2, static_cast<std::int64_t>(now));
    u.bind(3, actor);
    r.newly_withdrawn = u.exec() > 0;
    r.withdrawn_at = now;
    r.withdrawn_by = actor;
    return r;
  });
}

std::vector<std::string> AssignmentDatesForContent(Db& db, const std::string& content_id, const std::string& from_date) {
  return guarded("reading assignment dates", [&] {
    std::vector<std::string> out;
    auto& q = db.stmt("SELECT DISTINCT date FROM assignments WHERE content_id = ?1 AND date >= ?2 ORDER BY date");
    q.bind(1, content_id);
    q.bind(2, from_date);
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    q.reset();
    return out;
  });
}

std::vector<std::int64_t> DeliveryRepointPending(Db& db, const std::string& content_id, const std::string& from_date, Millis now) {
  return guarded("re-pointing deliveries", [&] {
    std::vector<std::int64_t> ids;
    // Through runs: deliveries has no date index, but its (run_id, state) index serves run_id.
    auto& q = db.stmt(R"sql(
UPDATE deliveries SET
  content_id = (SELECT s.content_id FROM assignments s WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date),
  source = (SELECT s.source FROM assignments s WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date),
  updated_at = ?3
WHERE run_id IN (SELECT run_id FROM runs WHERE date >= ?2)
  AND content_id = ?1 AND state IN ('planned', 'retry_wait')
  AND EXISTS (SELECT 1 FROM assignments s WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date
              AND s.content_id <> ?1)
RETURNING delivery_id)sql");
    q.bind(1, content_id);
    q.bind(2, from_date);
    q.bind(3, static_cast<std::int64_t>(now));
    while (q.executeStep()) ids.push_back(q.getColumn(0).getInt64());
    q.reset();
    // A running dispatch holds these rows in memory: tell it to reload them.
    for (auto id : ids) DeliveryChangeNote(db, id, "withdraw", now);
    return ids;
  });
}

std::int64_t DeliveryCountInFlight(Db& db, const std::string& content_id, const std::string& from_date) {
  return guarded("counting deliveries in flight", [&] {
    auto& q = db.stmt(
        "SELECT COUNT(*) FROM deliveries WHERE run_id IN (SELECT run_id FROM runs WHERE date >= ?2) AND content_id = ?1 "
        "AND state IN ('sending', 'uncertain')");
    q.bind(1, content_id);
    q.bind(2, from_date);
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

}  // namespace daybreak::store
