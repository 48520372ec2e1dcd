#include "store/whatsapp_holds.hpp"

#include <limits>

namespace daybreak::store {

void WhatsAppHoldSet(Db& db, const WhatsAppHold& h) {
  guarded("WhatsAppHoldSet", [&] {
    auto& q = db.stmt(
        "INSERT INTO whatsapp_holds (advisor_id, until, error_code, delivery_id, set_at) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT(advisor_id) DO UPDATE SET until = MAX(until, excluded.until), error_code = excluded.error_code, "
        "delivery_id = excluded.delivery_id, set_at = excluded.set_at");
    q.bind(1, h.advisor_id);
    q.bind(2, h.until);
    q.bind(3, static_cast<std::int64_t>(h.error_code));
    bind_opt(q, 4, h.delivery_id);
    q.bind(5, h.set_at);
    q.exec();
  });
}

std::unordered_map<std::string, Millis> WhatsAppHoldsActive(Db& db, Millis at, std::optional<Millis> set_since) {
  return guarded("WhatsAppHoldsActive", [&] {
    auto& q = db.stmt("SELECT advisor_id, until FROM whatsapp_holds WHERE until > ?1 AND set_at >= ?2");
    q.bind(1, at);
    q.bind(2, set_since.value_or(std::numeric_limits<std::int64_t>::min()));
    std::unordered_map<std::string, Millis> out;
    while (q.executeStep()) out[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
    return out;
  });
}

std::optional<WhatsAppHold> WhatsAppHoldGet(Db& db, const std::string& advisor_id) {
  return guarded("WhatsAppHoldGet", [&]() -> std::optional<WhatsAppHold> {
    auto& q = db.stmt("SELECT advisor_id, until, error_code, delivery_id, set_at FROM whatsapp_holds WHERE advisor_id = ?");
    q.bind(1, advisor_id);
    if (!q.executeStep()) return std::nullopt;
    WhatsAppHold h;
    h.advisor_id = q.getColumn(0).getString();
    h.until = q.getColumn(1).getInt64();
    h.error_code = static_cast<long>(q.getColumn(2).getInt64());
    h.delivery_id = column_opt<std::int64_t>(q.getColumn(3));
    h.set_at = q.getColumn(4).getInt64();
    q.reset();
    return h;
  });
}

bool DeliveryRerouteAfterFailedStatus(Db& db, const RerouteAfterFailedParams& p, const std::string& owner) {
  return guarded("DeliveryRerouteAfterFailedStatus", [&] {
    auto& q = db.stmt(
        "UPDATE deliveries SET state = 'retry_wait', channel = ?1, channel_index = ?2, sender = ?3, "
        "next_attempt_at = ?4, accepted_at = NULL, last_error = ?5, claim_owner = NULL, updated_at = ?4 "
        "WHERE delivery_id = ?6 AND state = 'accepted' AND channel = 'whatsapp' "
        "AND last_error LIKE 'status failed: %' "
        "AND EXISTS (SELECT 1 FROM runs r WHERE r.run_id = deliveries.run_id AND r.owner = ?7 AND r.state = 'running')");
    q.bind(1, p.channel);
    q.bind(2, p.channel_index);
    q.bind(3, p.sender);
    q.bind(4, p.now);
    q.bind(5, p.last_error);
    q.bind(6, p.delivery_id);
    q.bind(7, owner);
    if (q.exec() != 1) return false;
    auto& m = db.stmt(
        "UPDATE status_updates SET outcome = 'rerouted' WHERE status = 'failed' AND applied_at IS NOT NULL "
        "AND (matched_delivery_id = ?1 OR delivery_id = ?1)");
    m.bind(1, p.delivery_id);
    m.exec();
    return true;
  });
}

bool StatusMessageRerouted(Db& db, const std::string& provider_message_id) {
  return guarded("StatusMessageRerouted", [&] {
    auto& q = db.stmt("SELECT 1 FROM status_updates WHERE provider_message_id = ? AND status = 'failed' AND outcome = 'rerouted' LIMIT 1");
    q.bind(1, provider_message_id);
    const bool found = q.executeStep();
    q.reset();
    return found;
  });
}

}  // namespace daybreak::store
