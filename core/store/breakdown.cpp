#include "store/breakdown.hpp"

#include "domain/types.hpp"

namespace daybreak::store {
namespace {

std::string breakdown_sql_for(SqlDialect dialect, bool delivered_only) {
  const bool pg = dialect == SqlDialect::postgresql;
  const std::string run = pg ? "$1" : "?";
  if (delivered_only) {
    return "SELECT tier, channel, sender, COUNT(*) FROM deliveries WHERE run_id = " + run +
           " AND state IN ('delivered', 'read') GROUP BY tier, channel, sender";
  }
  // A count of the rows where `cond` holds: SQLite sums its 0/1 booleans, PostgreSQL filters.
  auto count = [&](const std::string& cond) { return pg ? "COUNT(*) FILTER (WHERE " + cond + ")" : "SUM(" + cond + ")"; };
  const std::string acc = "state IN (" + accepted_states_sql() + ")";
  // Channel and sender sort bytewise on both (SQLite's BINARY; COLLATE "C" on PostgreSQL).
  const std::string bytewise = pg ? " COLLATE \"C\"" : "";
  return "SELECT tier, channel, sender, MIN(tier_rank), " + count("state <> 'cancelled'") + ", " + count(acc) + ", " +
         count(acc + " AND accepted_at IS NOT NULL AND accepted_at <= deadline_at") + ", " +
         count("state IN ('delivered', 'read')") + ", " + count("state = 'dead'") + ", " +
         count("state IN (" + non_final_states_sql() + ")") + " FROM deliveries WHERE run_id = " + run +
         " GROUP BY tier, channel, sender ORDER BY 4, channel" + bytewise + ", sender" + bytewise;
}

std::vector<BreakdownRow> pg_rows(PgConn& c, const char* name, bool delivered_only, std::int64_t run_id) {
  auto r = c.run(name, BreakdownSql(SqlDialect::postgresql, delivered_only), {std::to_string(run_id)});
  std::vector<BreakdownRow> out;
  for (int i = 0; i < r.rows(); ++i) {
    BreakdownRow b;
    b.tier = r.str(i, 0);
    b.channel = r.str(i, 1);
    b.sender = r.str(i, 2);
    if (delivered_only) {
      b.delivered = r.i64(i, 3);
    } else {
      b.total = r.i64(i, 4);
      b.accepted = r.i64(i, 5);
      b.on_time = r.i64(i, 6);
      b.delivered = r.i64(i, 7);
      b.dead = r.i64(i, 8);
      b.pending = r.i64(i, 9);
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace

const std::string& BreakdownSql(SqlDialect dialect, bool delivered_only) {
  static const std::string sqlite = breakdown_sql_for(SqlDialect::sqlite, false);
  static const std::string sqlite_delivered = breakdown_sql_for(SqlDialect::sqlite, true);
  static const std::string postgresql = breakdown_sql_for(SqlDialect::postgresql, false);
  static const std::string postgresql_delivered = breakdown_sql_for(SqlDialect::postgresql, true);
  if (dialect == SqlDialect::postgresql) return delivered_only ? postgresql_delivered : postgresql;
  return delivered_only ? sqlite_delivered : sqlite;
}

std::vector<BreakdownRow> DeliveryBreakdown(Db& db, std::int64_t run_id) {
  return guarded("delivery breakdown", [&] {
    auto& q = db.stmt(BreakdownSql(SqlDialect::sqlite, false));
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
    auto& q = db.stmt(BreakdownSql(SqlDialect::sqlite, true));
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

std::vector<BreakdownRow> pg_delivery_breakdown(PgConn& c, std::int64_t run_id) {
  return pg_rows(c, "serve_delivery_breakdown", false, run_id);
}

std::vector<BreakdownRow> pg_delivered_breakdown(PgConn& c, std::int64_t run_id) {
  return pg_rows(c, "serve_delivered_breakdown", true, run_id);
}

}  // namespace daybreak::store
