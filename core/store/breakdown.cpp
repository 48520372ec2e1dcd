#include "store/breakdown.hpp"

#include "domain/types.hpp"

namespace daybreak::store {

std::vector<BreakdownRow> DeliveryBreakdown(Db& db, std::int64_t run_id) {
  return guarded("delivery breakdown", [&] {
    auto& q = db.stmt(
        "SELECT tier, channel, sender, MIN(tier_rank),"
        " SUM(state <> 'cancelled'),"
        " SUM(state IN (" + accepted_states_sql() + ")),"
        " SUM(state IN (" + accepted_states_sql() + ") AND accepted_at IS NOT NULL AND accepted_at <= deadline_at),"
        " SUM(state IN ('delivered', 'read')),"
        " SUM(state = 'dead'),"
        " SUM(state IN (" + non_final_states_sql() + "))"
        " FROM deliveries WHERE run_id = ? GROUP BY tier, channel, sender ORDER BY 4, 2, 3");
    q.bind(1, run_id);
    std::vector<BreakdownRow> out;
    while (q.executeStep()) {
      BreakdownRow r;
      r.tier = q.getColumn(0).getString();
      r.channel = q.getColumn(1).getString();
      r.sender = q.getColumn(2).getString();
      r.total = q.getColumn(4).getInt64();
      r.accepted = q.getColumn(5).getInt64();
      r.on_time = q.getColumn(6).getInt64();
      r.delivered = q.getColumn(7).getInt64();
      r.dead = q.getColumn(8).getInt64();
      r.pending = q.getColumn(9).getInt64();
      out.push_back(std::move(r));
    }
    q.reset();
    return out;
  });
}

std::vector<BreakdownRow> DeliveredBreakdown(Db& db, std::int64_t run_id) {
  return guarded("delivered breakdown", [&] {
    auto& q = db.stmt(
        "SELECT tier, channel, sender, COUNT(*) FROM deliveries WHERE run_id = ? AND state IN ('delivered', 'read')"
        " GROUP BY tier, channel, sender");
    q.bind(1, run_id);
    std::vector<BreakdownRow> out;
    while (q.executeStep()) {
      BreakdownRow r;
      r.tier = q.getColumn(0).getString();
      r.channel = q.getColumn(1).getString();
      r.sender = q.getColumn(2).getString();
      r.delivered = q.getColumn(3).getInt64();
      out.push_back(std::move(r));
    }
    q.reset();
    return out;
  });
}

}  // namespace daybreak::store
