#include "store/monitoring.hpp"

namespace daybreak::store {

void AttemptForEachInRun(Db& db, std::int64_t run_id, const std::function<void(const AttemptBrief&)>& fn) {
  guarded("AttemptForEachInRun", [&] {
    auto& q = db.stmt(
        "SELECT a.attempt_id, a.channel, a.sender, a.outcome, a.latency_ms, a.error_code FROM delivery_attempts a "
        "JOIN deliveries d ON d.delivery_id = a.delivery_id WHERE d.run_id = ? ORDER BY a.attempt_id");
    q.bind(1, run_id);
    while (q.executeStep()) {
      AttemptBrief a;
      a.attempt_id = q.getColumn(0).getInt64();
      a.channel = q.getColumn(1).getString();
      a.sender = q.getColumn(2).getString();
      a.outcome = q.getColumn(3).getString();
      a.latency_ms = column_opt<std::int64_t>(q.getColumn(4));
      if (!q.getColumn(5).isNull()) a.error_code = q.getColumn(5).getString();
      fn(a);
    }
  });
}

void DeliveryForEachInRun(Db& db, std::int64_t run_id, const std::function<void(const DeliveryBrief&)>& fn) {
  guarded("DeliveryForEachInRun", [&] {
    auto& q = db.stmt(
        "SELECT delivery_id, state, channel, tier, sender, planned_at, deadline_at, updated_at, "
        "COALESCE(first_sent_at, 0), COALESCE(accepted_at, 0) FROM deliveries WHERE run_id = ?");
    q.bind(1, run_id);
    while (q.executeStep()) {
      DeliveryBrief d;
      std::string state = q.getColumn(1).getString();
      auto s = delivery_state_from_string(state);
      if (!s) {
        std::string msg = "delivery " + std::to_string(q.getColumn(0).getInt64()) + ": unknown state \"" + state + "\"";
        q.reset();
        throw StoreError(msg);
      }
      d.state = *s;
      d.channel = q.getColumn(2).getString();
      d.tier = q.getColumn(3).getString();
      d.sender = q.getColumn(4).getString();
      d.planned_at = q.getColumn(5).getInt64();
      d.deadline_at = q.getColumn(6).getInt64();
      d.updated_at = q.getColumn(7).getInt64();
      d.first_sent_at = q.getColumn(8).getInt64();
      d.accepted_at = q.getColumn(9).getInt64();
      fn(d);
    }
  });
}

std::optional<std::pair<std::int64_t, double>> SlaReportLatestClosed(Db& db) {
  return guarded("SlaReportLatestClosed", [&]() -> std::optional<std::pair<std::int64_t, double>> {
    auto& q = db.stmt(
        "SELECT s.run_id, s.sla_pct FROM sla_reports s JOIN runs r ON r.run_id = s.run_id "
        "WHERE r.state = 'closed' ORDER BY r.slot_at DESC LIMIT 1");
    if (!q.executeStep()) return std::nullopt;
    auto out = std::make_pair(q.getColumn(0).getInt64(), q.getColumn(1).getDouble());
    q.reset();
    return out;
  });
}

std::vector<StoredReport> SlaReportListBetween(Db& db, const std::string& from_date, const std::string& to_date) {
  return guarded("SlaReportListBetween", [&] {
    auto& q = db.stmt(
        "SELECT s.run_id, s.date, r.slot_at, s.sla_pct, s.report FROM sla_reports s JOIN runs r ON r.run_id = s.run_id "
        "WHERE s.date >= ? AND s.date <= ? ORDER BY s.date, r.slot_at");
    q.bind(1, from_date);
    q.bind(2, to_date);
    std::vector<StoredReport> out;
    while (q.executeStep()) {
      StoredReport r;
      r.run_id = q.getColumn(0).getInt64();
      r.date = q.getColumn(1).getString();
      r.slot_at = q.getColumn(2).getInt64();
      r.sla_pct = q.getColumn(3).getDouble();
      r.report = q.getColumn(4).getString();
      out.push_back(std::move(r));
    }
    return out;
  });
}

std::vector<std::tuple<std::int64_t, std::string, std::string>> RunIdsBetween(Db& db, const std::string& from_date,
                                                                              const std::string& to_date) {
  return guarded("RunIdsBetween", [&] {
    auto& q = db.stmt("SELECT run_id, date, state FROM runs WHERE date >= ? AND date <= ? ORDER BY date, slot_at");
    q.bind(1, from_date);
    q.bind(2, to_date);
    std::vector<std::tuple<std::int64_t, std::string, std::string>> out;
    while (q.executeStep()) out.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString(), q.getColumn(2).getString());
    return out;
  });
}

std::pair<std::int64_t, std::vector<std::string>> AdvisorListSilent(Db& db, const std::string& date, int sample) {
  return guarded("AdvisorListSilent", [&] {
    // The eligibility rule of AdvisorListEligible: opted in, not paused on D, one opted-in channel.
    auto& q = db.stmt(
        "SELECT a.advisor_id FROM advisors a WHERE a.opted_in = 1 "
        "AND NOT ((a.paused_from IS NOT NULL OR a.paused_until IS NOT NULL) "
        "         AND (a.paused_from IS NULL OR a.paused_from <= ?1) AND (a.paused_until IS NULL OR ?1 <= a.paused_until)) "
        "AND EXISTS (SELECT 1 FROM advisor_channels c WHERE c.advisor_id = a.advisor_id AND c.opted_in = 1) "
        "AND NOT EXISTS (SELECT 1 FROM assignments s INDEXED BY assignments_day WHERE s.advisor_id = a.advisor_id AND s.date = ?1) "
        "ORDER BY a.advisor_id");
    q.bind(1, date);
    std::pair<std::int64_t, std::vector<std::string>> out{0, {}};
    while (q.executeStep()) {
      if (static_cast<int>(out.second.size()) < sample) out.second.push_back(q.getColumn(0).getString());
      ++out.first;
    }
    return out;
  });
}

std::map<std::tuple<std::string, int, std::string>, std::int64_t> DeliveryCountByChannelTier(Db& db, std::int64_t run_id) {
  return guarded("DeliveryCountByChannelTier", [&] {
    auto& q = db.stmt(
        "SELECT channel, tier_rank, tier, COUNT(*) FROM deliveries WHERE run_id = ? AND state <> 'cancelled' "
        "GROUP BY channel, tier_rank, tier");
    q.bind(1, run_id);
    std::map<std::tuple<std::string, int, std::string>, std::int64_t> out;
    while (q.executeStep()) {
      out[{q.getColumn(0).getString(), q.getColumn(1).getInt(), q.getColumn(2).getString()}] = q.getColumn(3).getInt64();
    }
    return out;
  });
}

void DeliveryWhatsAppRecipients(Db& db, const std::string& date, bool of_date, const std::string& from_date,
                                const std::string& to_date, Millis since,
                                const std::function<void(const std::string&, const std::string&)>& fn) {
  guarded("DeliveryWhatsAppRecipients", [&] {
    if (of_date) {
      auto& q = db.stmt("SELECT sender, advisor_id FROM deliveries WHERE date = ? AND channel = 'whatsapp' AND state <> 'cancelled'");
      q.bind(1, date);
      while (q.executeStep()) fn(q.getColumn(0).getString(), q.getColumn(1).getString());
      return;
    }
    auto& q = db.stmt(
        "SELECT sender, advisor_id FROM deliveries WHERE date BETWEEN ?1 AND ?2 AND date <> ?3 AND channel = 'whatsapp' "
        "AND accepted_at >= ?4");
    q.bind(1, from_date);
    q.bind(2, to_date);
    q.bind(3, date);
    q.bind(4, since);
    while (q.executeStep()) fn(q.getColumn(0).getString(), q.getColumn(1).getString());
  });
}

std::map<std::pair<std::string, std::string>, std::int64_t> AdvisorCountByChannelTier(Db& db) {
  return guarded("AdvisorCountByChannelTier", [&] {
    // The first entry of the preference list, e.g. 'whatsapp' of 'whatsapp|email'.
    auto& q = db.stmt(
        "SELECT CASE WHEN instr(channels, '|') > 0 THEN substr(channels, 1, instr(channels, '|') - 1) ELSE channels END, "
        "tier, COUNT(*) FROM advisors WHERE opted_in = 1 GROUP BY 1, 2");
    std::map<std::pair<std::string, std::string>, std::int64_t> out;
    while (q.executeStep()) out[{q.getColumn(0).getString(), q.getColumn(1).getString()}] = q.getColumn(2).getInt64();
    return out;
  });
}

}  // namespace daybreak::store
