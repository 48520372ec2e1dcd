#include "store/withdrawal.hpp"
#include "domain/delivery_fsm.hpp"

#include <map>
#include <set>

#include "domain/emergency.hpp"
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
    auto& q = db.stmt(std::string(R"sql(
UPDATE deliveries SET
  content_id = (SELECT s.content_id FROM assignments s WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date),
  source = (SELECT s.source FROM assignments s WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date),
  updated_at = ?3
WHERE run_id IN (SELECT run_id FROM runs WHERE date >= ?2)
  AND content_id = ?1 AND state IN ()sql") + repointable_states_sql() + R"sql()
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

PulledResolution DeliveryResolvePulled(Db& db, const std::string& content_id, const std::string& from_date,
                                       const std::string& emergency_language, Millis now) {
  return guarded("resolving deliveries of pulled content", [&] {
    PulledResolution out;
    struct Pending {
      std::int64_t id;
      std::string date, language;
    };
    std::vector<Pending> pending;
    {
      auto& q = db.stmt(std::string(R"sql(
SELECT d.delivery_id, d.date, a.language FROM deliveries d JOIN advisors a ON a.advisor_id = d.advisor_id
WHERE d.run_id IN (SELECT run_id FROM runs WHERE date >= ?2) AND d.content_id = ?1 AND d.state IN ()sql") +
                        repointable_states_sql() + ") ORDER BY d.delivery_id");
      q.bind(1, content_id);
      q.bind(2, from_date);
      while (q.executeStep()) pending.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getString()});
      q.reset();
    }
    if (pending.empty()) return out;
    struct Item {
      std::string id, language, valid_from, valid_until;
    };
    std::vector<Item> pool;
    {
      auto& q = db.stmt(
          "SELECT content_id, language, valid_from, valid_until FROM content WHERE emergency = 1 AND withdrawn_at IS NULL "
          "AND content_id <> ?1 ORDER BY content_id");
      q.bind(1, content_id);
      while (q.executeStep()) {
        pool.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                        q.getColumn(3).getString()});
      }
      q.reset();
    }
    auto& hold = db.stmt(
        "UPDATE deliveries SET state = 'dead', last_error = ?2, claim_owner = NULL, next_attempt_at = NULL, updated_at = ?3 "
        "WHERE delivery_id = ?1 AND state IN (" + repointable_states_sql() + ")");
    std::set<std::string> held_languages;
    std::string why = "content " + content_id + " withdrawn";
    std::vector<EmergencyCandidate> candidates(pool.size());
    std::string candidates_date;
    for (const auto& p : pending) {
      if (p.date != candidates_date) {
        candidates_date = p.date;
        for (std::size_t i = 0; i < pool.size(); ++i) {
          candidates[i] = {pool[i].language,
                           !content_pull_problem(pool[i].id, false, pool[i].valid_from, pool[i].valid_until, p.date)};
        }
      }
      if (auto pick = pick_emergency(candidates, p.language, emergency_language, static_cast<std::uint64_t>(p.id))) {
        DeliverySubstituteContent(db, p.id, pool[pick->index].id, "emergency", "emergency substitution: " + why, now);
        out.emergency.push_back(p.id);
      } else {
        hold.reset();
        hold.bind(1, p.id);
        hold.bind(2, held_reason(why, p.language, emergency_language));
        hold.bind(3, static_cast<std::int64_t>(now));
        if (hold.exec() == 0) continue;
        out.held.push_back(p.id);
        held_languages.insert(p.language);
      }
      DeliveryChangeNote(db, p.id, "withdraw", now);
    }
    hold.reset();
    out.held_languages.assign(held_languages.begin(), held_languages.end());
    return out;
  });
}

// Through runs and the (run_id, state) index: only the day's dead rows are read.
const char* HeldDeliveryGroupsSql() {
  return R"sql(
SELECT d.content_id, a.language, d.date, COUNT(*) FROM deliveries d JOIN advisors a ON a.advisor_id = d.advisor_id
WHERE d.run_id IN (SELECT run_id FROM runs WHERE date >= ?1) AND d.state = 'dead'
  AND d.last_error LIKE 'held: %' AND d.dismissed_at IS NULL
GROUP BY d.content_id, a.language, d.date ORDER BY d.content_id, a.language, d.date)sql";
}

std::vector<HeldGroup> HeldDeliveryGroups(Db& db, const std::string& from_date) {
  return guarded("reading held deliveries", [&] {
    std::vector<HeldGroup> out;
    auto& q = db.stmt(HeldDeliveryGroupsSql());
    q.bind(1, from_date);
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(), q.getColumn(3).getInt64()});
    }
    q.reset();
    return out;
  });
}

std::vector<LanguageCoverage> EmergencyCoverage(Db& db, const std::string& date, const std::string& emergency_language) {
  return guarded("reading emergency coverage", [&] {
    std::map<std::string, std::int64_t> counts;
    auto& q = db.stmt(R"sql(
SELECT a.language, COUNT(*) FROM advisors a
WHERE a.opted_in = 1 AND EXISTS (SELECT 1 FROM advisor_channels c WHERE c.advisor_id = a.advisor_id AND c.opted_in = 1)
  AND NOT ((a.paused_from IS NOT NULL OR a.paused_until IS NOT NULL)
           AND COALESCE(a.paused_from, '') <= ?1 AND (a.paused_until IS NULL OR ?1 <= a.paused_until))
GROUP BY a.language)sql");
    q.bind(1, date);
    while (q.executeStep()) counts[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
    q.reset();
    return EmergencyCoverageFromCounts(db, date, emergency_language, counts);
  });
}

std::vector<LanguageCoverage> EmergencyCoverageFromCounts(Db& db, const std::string& date, const std::string& emergency_language,
                                                          const std::map<std::string, std::int64_t>& advisors_by_language) {
  return guarded("reading emergency coverage", [&] {
    std::map<std::string, LanguageCoverage> by;
    by[emergency_language].language = emergency_language;
    for (const auto& [language, n] : advisors_by_language) {
      auto& l = by[language];
      l.language = language;
      l.advisors = n;
    }
    auto& e = db.stmt("SELECT content_id, language, valid_from, valid_until FROM content WHERE emergency = 1 AND withdrawn_at IS NULL");
    while (e.executeStep()) {
      auto it = by.find(e.getColumn(1).getString());
      if (it == by.end()) continue;
      if (!content_pull_problem(e.getColumn(0).getString(), false, e.getColumn(2).getString(), e.getColumn(3).getString(), date)) {
        ++it->second.emergency_items;
      }
    }
    e.reset();
    std::vector<LanguageCoverage> out;
    for (auto& [k, v] : by) out.push_back(std::move(v));
    return out;
  });
}

std::int64_t DeliveryCountInFlight(Db& db, const std::string& content_id, const std::string& from_date) {
  return guarded("counting deliveries in flight", [&] {
    auto& q = db.stmt(
        "SELECT COUNT(*) FROM deliveries WHERE run_id IN (SELECT run_id FROM runs WHERE date >= ?2) AND content_id = ?1 "
        "AND state IN (" + in_flight_states_sql() + ")");
    q.bind(1, content_id);
    q.bind(2, from_date);
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

}  // namespace daybreak::store
