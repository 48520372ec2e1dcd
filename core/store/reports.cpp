#include "store/reports.hpp"

namespace daybreak::store {
namespace {

std::optional<Millis> opt_millis(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

}  // namespace

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
        "possible_duplicate, source FROM deliveries WHERE run_id = ? ORDER BY state, delivery_id");
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
