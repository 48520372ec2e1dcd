#include "store/reports.hpp"

namespace daybreak::store {
namespace {

std::optional<Millis> opt_millis(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

// The columns of DeliveryTruth as SQL aggregates over `deliveries` in `dialect` (see
// DeliveryTruthAggregatesSql); the rules are those of domain/sla.hpp. The first parameter is
// `now`. A read implies delivered, so the delivered time is the earlier of delivered_at and read_at.
std::string status_aggregates_for(SqlDialect dialect) {
  const bool pg = dialect == SqlDialect::postgresql;
  const std::string now = pg ? "$1" : "?1";
  // A count of the rows where `cond` holds: SQLite sums its 0/1 booleans, PostgreSQL filters.
  auto count = [&](const std::string& cond) { return pg ? "COUNT(*) FILTER (WHERE " + cond + ")" : "SUM(" + cond + ")"; };
  const std::string acc = "state IN (" + accepted_states_sql() + ")";
  // Decided on the delivered measure: anything but a still-unknown `accepted` row, once final;
  // or past its deadline.
  const std::string decided = "(state <> 'cancelled' AND state NOT IN (" + non_final_states_sql() +
                              ") AND NOT (state = 'accepted' AND delivered_at IS NULL AND read_at IS NULL "
                              "AND COALESCE(last_error, '') NOT LIKE 'status failed: %') "
                              "OR (state <> 'cancelled' AND deadline_at < " + now + "))";
  // The earlier of delivered_at and read_at, whichever is set: SQLite's scalar MIN is NULL when
  // either is, PostgreSQL's LEAST ignores NULLs.
  const std::string delivered_on_time =
      std::string(pg ? "LEAST(delivered_at, read_at)" : "COALESCE(MIN(delivered_at, read_at), delivered_at, read_at)") +
      " <= deadline_at";
  return count("state <> 'cancelled'") + ", " +
         count(acc + " AND accepted_at IS NOT NULL AND accepted_at <= deadline_at") + ", " +
         count(acc + " AND " + delivered_on_time) + ", " +
         count("state = 'read' OR (state IN ('accepted','delivered') AND read_at IS NOT NULL)") + ", " +
         count("state IN ('delivered','read') OR (state = 'accepted' AND (delivered_at IS NOT NULL OR read_at IS NOT NULL))") + ", " +
         count("state = 'accepted' AND delivered_at IS NULL AND read_at IS NULL "
               "    AND COALESCE(last_error, '') NOT LIKE 'status failed: %'") + ", " +
         count("state = 'accepted' AND delivered_at IS NULL AND read_at IS NULL "
               "    AND COALESCE(last_error, '') LIKE 'status failed: %'") + ", " +
         count(decided) + ", " +
         count(decided + " AND " + acc + " AND " + delivered_on_time);
}

const std::string& status_aggregates() { return DeliveryTruthAggregatesSql(SqlDialect::sqlite); }

DeliveryTruth delivery_truth_from(SQLite::Statement& q, int first) {
  return DeliveryTruthFromColumns(
      [&](int i) { return q.getColumn(first + i).isNull() ? std::int64_t{0} : q.getColumn(first + i).getInt64(); });
}

}  // namespace

DeliveryTruth DeliveryTruthFromColumns(const std::function<std::int64_t(int)>& col) {
  DeliveryTruth c;
  c.eligible = col(0);
  c.on_time = col(1);
  c.delivered_on_time = col(2);
  c.read = col(3);
  c.delivered = col(4);
  c.unknown = col(5);
  c.failed_after_accept = col(6);
  c.delivered_decided = col(7);
  c.delivered_decided_on_time = col(8);
  return c;
}

const std::string& DeliveryTruthAggregatesSql(SqlDialect dialect) {
  static const std::string sqlite = status_aggregates_for(SqlDialect::sqlite);
  static const std::string postgresql = status_aggregates_for(SqlDialect::postgresql);
  return dialect == SqlDialect::postgresql ? postgresql : sqlite;
}

DeliveryTruth DeliveryTruthForRun(Db& db, std::int64_t run_id, Millis now) {
  return guarded("DeliveryTruthForRun", [&] {
    auto& q = db.stmt("SELECT " + status_aggregates() + " FROM deliveries WHERE run_id = ?2");
    q.bind(1, now);
    q.bind(2, run_id);
    q.executeStep();
    DeliveryTruth c = delivery_truth_from(q, 0);
    q.reset();
    return c;
  });
}

std::map<std::string, DeliveryTruth> DeliveryTruthByDate(Db& db, const std::string& from, const std::string& to, Millis now) {
  return guarded("DeliveryTruthByDate", [&] {
    auto& q = db.stmt("SELECT date, " + status_aggregates() +
                      " FROM deliveries WHERE date BETWEEN ?2 AND ?3 GROUP BY date");
    q.bind(1, now);
    q.bind(2, from);
    q.bind(3, to);
    std::map<std::string, DeliveryTruth> out;
    while (q.executeStep()) out.emplace(q.getColumn(0).getString(), delivery_truth_from(q, 1));
    return out;
  });
}

std::vector<DeliveryOutcome> DeliveryOutcomesForRun(Db& db, std::int64_t run_id,
                                                    std::map<std::string, std::int64_t>* count_by_source) {
  return guarded("DeliveryOutcomesForRun", [&] {
    // Sized first (a covering-index count): growing a vector of a million outcomes would copy
    // it some twenty times and briefly hold twice the memory.
    auto& n = db.stmt("SELECT COUNT(*) FROM deliveries WHERE run_id = ?");
    n.bind(1, run_id);
    n.executeStep();
    std::vector<DeliveryOutcome> out;
    out.reserve(static_cast<std::size_t>(n.getColumn(0).getInt64()));
    n.reset();

    auto& q = db.stmt(
        "SELECT delivery_id, state, tier, channel, sender, planned_at, deadline_at, first_sent_at, accepted_at, "
        "possible_duplicate, source, delivered_at, read_at, last_error LIKE 'status failed: %' "
        "FROM deliveries WHERE run_id = ? ORDER BY state, delivery_id");
    q.bind(1, run_id);
    while (q.executeStep()) {
      DeliveryOutcome o;
      const char* state = q.getColumn(1).getText();
      auto s = delivery_state_from_string(state);
      if (!s) {
        std::string msg = "delivery " + std::to_string(q.getColumn(0).getInt64()) + ": unknown state \"" + state + "\"";
        q.reset();
        throw StoreError(msg);
      }
      o.state = *s;
      o.tier = q.getColumn(2).getText();
      o.channel = q.getColumn(3).getText();
      o.sender = q.getColumn(4).getText();
      o.planned_at = q.getColumn(5).getInt64();
      o.deadline_at = q.getColumn(6).getInt64();
      o.first_sent_at = opt_millis(q.getColumn(7));
      o.accepted_at = opt_millis(q.getColumn(8));
      o.possible_duplicate = q.getColumn(9).getInt() != 0;
      if (count_by_source) ++(*count_by_source)[q.getColumn(10).getText()];
      o.delivered_at = opt_millis(q.getColumn(11));
      o.read_at = opt_millis(q.getColumn(12));
      o.status_failed = q.getColumn(13).getInt() != 0;  // NULL last_error: 0
      out.push_back(std::move(o));
    }
    return out;
  });
}

std::vector<FailureReason> AttemptFailureReasonsForRun(Db& db, std::int64_t run_id) {
  return guarded("AttemptFailureReasonsForRun", [&] {
    // SQLite takes the bare columns (outcome, error_detail) from the row that gave MAX(attempt_id),
    // so the example is the most recent failure with that code, not an arbitrary one.
    auto& q = db.stmt(
        "SELECT COALESCE(NULLIF(a.error_code, ''), a.outcome) AS code, COUNT(*) AS n, a.outcome, "
        "COALESCE(a.error_detail, ''), MAX(a.attempt_id) "
        "FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id "
        "WHERE d.run_id = ? AND a.outcome <> 'accepted' GROUP BY code ORDER BY n DESC, code");
    q.bind(1, run_id);
    std::vector<FailureReason> out;
    while (q.executeStep()) {
      FailureReason r;
      r.error_code = q.getColumn(0).getString();
      r.count = q.getColumn(1).getInt64();
      r.outcome = q.getColumn(2).getString();
      r.example = q.getColumn(3).getString();
      out.push_back(std::move(r));
    }
    return out;
  });
}

ProviderFigures ProviderFiguresForRun(Db& db, std::int64_t run_id) {
  return guarded("ProviderFiguresForRun", [&] {
    ProviderFigures f;
    // sla-report reads ledgers without migrating them: one from before 011 has no such columns.
    if (db.raw().execAndGet("SELECT COUNT(*) FROM pragma_table_info('delivery_attempts') WHERE name = 'error_scope'")
            .getInt64() == 0)
      return f;
    auto& q = db.stmt(
        "SELECT COUNT(DISTINCT CASE WHEN a.held_for_quality = 1 THEN a.delivery_id END), "
        "SUM(a.error_scope = 'phone_number'), SUM(a.error_scope = 'account') "
        "FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id WHERE d.run_id = ?");
    q.bind(1, run_id);
    if (q.executeStep()) {
      f.held_for_quality = q.getColumn(0).getInt64();
      f.number_blocked = q.getColumn(1).isNull() ? 0 : q.getColumn(1).getInt64();
      f.account_blocked = q.getColumn(2).isNull() ? 0 : q.getColumn(2).getInt64();
    }
    q.reset();
    auto& u = db.stmt(
        "SELECT COALESCE(a.error_code, '?'), COUNT(*) FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id "
        "WHERE d.run_id = ? AND a.error_scope = 'unknown' GROUP BY 1 ORDER BY 1");
    u.bind(1, run_id);
    while (u.executeStep()) {
      const auto n = u.getColumn(1).getInt64();
      f.unknown_codes[u.getColumn(0).getString()] += n;
      f.unknown_error_codes += n;
    }
    u.reset();
    return f;
  });
}

std::int64_t AttemptCountForRun(Db& db, std::int64_t run_id) {
  return guarded("AttemptCountForRun", [&] {
    auto& q = db.stmt(
        "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id "
        "WHERE d.run_id = ?");
    q.bind(1, run_id);
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

void SlaReportUpsert(Db& db, std::int64_t run_id, const std::string& date, Millis generated_at, double sla_pct,
                     const std::string& report_json) {
  guarded("SlaReportUpsert", [&] {
    auto& q = db.stmt(
        "INSERT INTO sla_reports(run_id, date, generated_at, sla_pct, report) VALUES (?,?,?,?,?) "
        "ON CONFLICT(run_id) DO UPDATE SET date = excluded.date, generated_at = excluded.generated_at, "
        "sla_pct = excluded.sla_pct, report = excluded.report");
    q.bind(1, run_id);
    q.bind(2, date);
    q.bind(3, generated_at);
    q.bind(4, sla_pct);
    q.bind(5, report_json);
    q.exec();
  });
}

std::optional<std::string> SlaReportGet(Db& db, std::int64_t run_id) {
  return guarded("SlaReportGet", [&]() -> std::optional<std::string> {
    auto& q = db.stmt("SELECT report FROM sla_reports WHERE run_id = ?");
    q.bind(1, run_id);
    if (!q.executeStep()) return std::nullopt;
    std::string text = q.getColumn(0).getString();
    q.reset();
    return text;
  });
}

std::optional<SlaReportSummary> SlaReportGetSummary(Db& db, std::int64_t run_id) {
  return guarded("SlaReportGetSummary", [&]() -> std::optional<SlaReportSummary> {
    auto& q = db.stmt("SELECT run_id, date, generated_at, sla_pct FROM sla_reports WHERE run_id = ?");
    q.bind(1, run_id);
    if (!q.executeStep()) return std::nullopt;
    SlaReportSummary s;
    s.run_id = q.getColumn(0).getInt64();
    s.date = q.getColumn(1).getString();
    s.generated_at = q.getColumn(2).getInt64();
    s.sla_pct = q.getColumn(3).getDouble();
    q.reset();
    return s;
  });
}

}  // namespace daybreak::store
