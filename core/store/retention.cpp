#include "store/retention.hpp"

#include <stdexcept>

#include "domain/time.hpp"
#include "store/engagement.hpp"

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
    // Change notes first (their index is (run_id, seq), so deleted ones are never scanned again).
    // DELETE ... LIMIT needs a compile-time option Debian's SQLite may lack: delete by key instead.
    auto& ch = db.stmt("DELETE FROM delivery_changes WHERE seq IN (SELECT seq FROM delivery_changes WHERE run_id = ?1 LIMIT ?2)");
    ch.bind(1, run_id);
    ch.bind(2, batch);
    c.changes = ch.exec();
    if (c.changes >= batch) return c;
    // Then up to the rest of the budget in deliveries, each with its attempts (a bounded few).
    std::vector<std::int64_t> ids;
    auto& pick = db.stmt("SELECT delivery_id FROM deliveries WHERE run_id = ?1 LIMIT ?2");
    pick.bind(1, run_id);
    pick.bind(2, batch - c.changes);
    while (pick.executeStep()) ids.push_back(pick.getColumn(0).getInt64());
    pick.reset();
    for (auto id : ids) {
      auto& a = db.stmt("DELETE FROM delivery_attempts WHERE delivery_id = ?1");
      a.bind(1, id);
      c.attempts += a.exec();
      auto& d = db.stmt("DELETE FROM deliveries WHERE delivery_id = ?1");
      d.bind(1, id);
      c.deliveries += d.exec();
    }
    if (!ids.empty()) return c;
    // Nothing hangs off the run any more: its report and the run row go last.
    auto& r = db.stmt("DELETE FROM sla_reports WHERE run_id = ?1");
    r.bind(1, run_id);
    c.reports = r.exec();
    auto& run = db.stmt("DELETE FROM runs WHERE run_id = ?1");
    run.bind(1, run_id);
    c.runs = run.exec();
    return c;
  });
}

StatusPurgeCounts StatusPurgeBatch(Db& db, Millis cutoff, std::int64_t batch) {
  return guarded("StatusPurgeBatch", [&] {
    StatusPurgeCounts c;
    std::vector<std::int64_t> ids;
    auto& pick = db.stmt("SELECT event_id FROM status_events WHERE received_at < ?1 ORDER BY received_at LIMIT ?2");
    pick.bind(1, static_cast<std::int64_t>(cutoff));
    pick.bind(2, batch);
    while (pick.executeStep()) ids.push_back(pick.getColumn(0).getInt64());
    pick.reset();
    for (auto id : ids) {
      auto& u = db.stmt("DELETE FROM status_updates WHERE event_id = ?1");
      u.bind(1, id);
      c.updates += u.exec();
      auto& r = db.stmt("DELETE FROM status_rejects WHERE event_id = ?1");
      r.bind(1, id);
      r.exec();
      auto& e = db.stmt("DELETE FROM status_events WHERE event_id = ?1");
      e.bind(1, id);
      c.events += e.exec();
    }
    return c;
  });
}

StatusPurgeCounts StatusCountOlderThan(Db& db, Millis cutoff) {
  return guarded("StatusCountOlderThan", [&] {
    auto& q = db.stmt(
        "SELECT (SELECT COUNT(*) FROM status_events WHERE received_at < ?1), "
        "(SELECT COUNT(*) FROM status_updates WHERE event_id IN (SELECT event_id FROM status_events WHERE received_at < ?1))");
    q.bind(1, static_cast<std::int64_t>(cutoff));
    q.executeStep();
    StatusPurgeCounts c{q.getColumn(0).getInt64(), q.getColumn(1).getInt64()};
    q.reset();
    return c;
  });
}

std::int64_t StatusExpirePendingBatch(Db& db, Millis cutoff, Millis now, std::int64_t batch) {
  return guarded("StatusExpirePendingBatch", [&] {
    auto& q = db.stmt(
        "UPDATE status_updates SET applied_at = ?1, outcome = 'expired' WHERE update_id IN "
        "(SELECT update_id FROM status_updates WHERE applied_at IS NULL AND received_at < ?2 LIMIT ?3)");
    q.bind(1, static_cast<std::int64_t>(now));
    q.bind(2, static_cast<std::int64_t>(cutoff));
    q.bind(3, batch);
    return static_cast<std::int64_t>(q.exec());
  });
}

std::int64_t StatusCountPendingOlderThan(Db& db, Millis cutoff) {
  return guarded("StatusCountPendingOlderThan", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL AND received_at < ?1");
    q.bind(1, static_cast<std::int64_t>(cutoff));
    q.executeStep();
    const std::int64_t n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

std::int64_t WhatsappHoldPurgeEndedBatch(Db& db, Millis now, std::int64_t batch) {
  return guarded("WhatsappHoldPurgeEndedBatch", [&] {
    auto& q = db.stmt(
        "DELETE FROM whatsapp_holds WHERE advisor_id IN (SELECT advisor_id FROM whatsapp_holds WHERE until < ?1 LIMIT ?2)");
    q.bind(1, static_cast<std::int64_t>(now));
    q.bind(2, batch);
    return static_cast<std::int64_t>(q.exec());
  });
}

std::int64_t WhatsappHoldCountEnded(Db& db, Millis now) {
  return guarded("WhatsappHoldCountEnded", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM whatsapp_holds WHERE until < ?1");
    q.bind(1, static_cast<std::int64_t>(now));
    q.executeStep();
    const std::int64_t n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

std::vector<std::pair<std::string, std::int64_t>> AssignmentDaysBefore(Db& db, const std::string& cutoff_date) {
  return guarded("AssignmentDaysBefore", [&] {
    std::vector<std::pair<std::string, std::int64_t>> out;
    auto cutoff = parse_date(cutoff_date);
    if (!cutoff) throw std::invalid_argument("AssignmentDaysBefore: " + cutoff.error().message);
    auto& count = db.stmt("SELECT COUNT(*) FROM assignments WHERE date = ?1");
    for (auto& day : AssignmentDates(db, "", format_date(add_days(*cutoff, -1)))) {
      count.bind(1, day);
      count.executeStep();
      out.emplace_back(std::move(day), count.getColumn(0).getInt64());
      count.reset();
    }
    return out;
  });
}

std::int64_t AssignmentPurgeBatch(Db& db, const std::string& date, std::int64_t batch) {
  return guarded("AssignmentPurgeBatch", [&] {
    auto& q = db.stmt(
        "DELETE FROM assignments WHERE date = ?1 AND advisor_id IN "
        "(SELECT advisor_id FROM assignments WHERE date = ?1 ORDER BY advisor_id LIMIT ?2)");
    q.bind(1, date);
    q.bind(2, batch);
    return static_cast<std::int64_t>(q.exec());
  });
}

}  // namespace daybreak::store
