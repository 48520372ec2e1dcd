#include "store/exports.hpp"

#include "store/pg_reports.hpp"

namespace daybreak::store {
namespace {

// deliveries has an index on date (sql/005) whose entries are in (date, delivery_id) order, and
// attempts have one on delivery_id (rowid = attempt_id): each ORDER BY below is the order those
// indexes already give, so SQLite streams rows without a sort (a sort would hold every row).
constexpr const char* kDeliveries =
    "SELECT delivery_id, run_id, advisor_id, date, slot_at, content_id, source, tier, state, channel, sender, planned_at, "
    "deadline_at, attempts, first_sent_at, accepted_at, delivered_at, read_at, provider_message_id, last_error, "
    "possible_duplicate, resent_at, dismissed_at, updated_at FROM deliveries WHERE date BETWEEN ?1 AND ?2 ORDER BY date, delivery_id";
constexpr const char* kAttempts =
    "SELECT a.attempt_id, a.delivery_id, d.run_id, d.date, a.attempt_no, a.channel, a.sender, a.started_at, a.finished_at, "
    "a.outcome, a.error_code, a.error_detail, a.provider_message_id, a.latency_ms FROM deliveries d "
    "JOIN delivery_attempts a ON a.delivery_id = d.delivery_id WHERE d.date BETWEEN ?1 AND ?2 ORDER BY d.date, d.delivery_id, a.attempt_id";
// The stored reports: SQLite's sla_reports, PostgreSQL's run_reports (sql/postgresql/005), the
// same columns.
std::string reports_sql(const char* table) {
  return std::string("SELECT s.run_id, s.date, r.slot_at, r.state, r.planned_count, s.generated_at, s.sla_pct, s.report FROM ") +
         table + " s JOIN runs r ON r.run_id = s.run_id WHERE s.date BETWEEN ?1 AND ?2 ORDER BY s.run_id";
}

void each(SQLite::Statement& q, const std::function<void(SQLite::Statement&)>& on_row) {
  while (q.executeStep()) on_row(q);
  q.reset();
}

}  // namespace

void ExportRows(Db& db, ExportKind kind, const std::string& from_date, const std::string& to_date,
                const std::function<void(SQLite::Statement&)>& on_row) {
  guarded("exporting rows", [&] {
    static const std::string reports = reports_sql("sla_reports");
    const std::string& sql = kind == ExportKind::deliveries ? std::string(kDeliveries)
                           : kind == ExportKind::attempts   ? std::string(kAttempts)
                                                            : reports;
    auto& q = db.stmt(sql);
    q.bind(1, from_date);
    q.bind(2, to_date);
    each(q, on_row);
    return 0;
  });
}

void ExportRowsPg(PgConn& c, ExportKind kind, const std::string& from_date, const std::string& to_date,
                  const std::function<void(const PgResult&)>& on_row) {
  static const std::string deliveries = pg_numbered_params(kDeliveries), attempts = pg_numbered_params(kAttempts),
                           reports = pg_numbered_params(reports_sql("run_reports"));
  if (kind == ExportKind::reports && !pg_keeps_run_reports(c)) return;  // before sql/postgresql/005: none stored
  c.each_row(kind == ExportKind::deliveries ? deliveries : kind == ExportKind::attempts ? attempts : reports,
             {from_date, to_date}, on_row);
}

const char* to_string(ArchiveTable t) {
  switch (t) {
    case ArchiveTable::runs: return "runs";
    case ArchiveTable::sla_reports: return "sla_reports";
    case ArchiveTable::deliveries: return "deliveries";
    case ArchiveTable::delivery_attempts: return "delivery_attempts";
    case ArchiveTable::delivery_changes: return "delivery_changes";
    case ArchiveTable::assignments: return "assignments";
  }
  return "?";
}

void ExportRunRows(Db& db, std::int64_t run_id, const std::function<void(ArchiveTable, SQLite::Statement&)>& on_row) {
  guarded("archiving a run", [&] {
    // No ORDER BY on the big tables: in index order SQLite streams, a sort would hold every row.
    const std::pair<ArchiveTable, const char*> parts[] = {
        {ArchiveTable::runs, "SELECT * FROM runs WHERE run_id = ?1"},
        {ArchiveTable::sla_reports, "SELECT * FROM sla_reports WHERE run_id = ?1"},
        {ArchiveTable::deliveries, "SELECT * FROM deliveries WHERE run_id = ?1"},
        {ArchiveTable::delivery_attempts,
         "SELECT a.* FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.delivery_id WHERE d.run_id = ?1"},
        {ArchiveTable::delivery_changes, "SELECT * FROM delivery_changes WHERE run_id = ?1 ORDER BY seq"},
    };
    for (const auto& [table, sql] : parts) {
      auto& q = db.stmt(sql);
      q.bind(1, run_id);
      while (q.executeStep()) on_row(table, q);
      q.reset();
    }
    return 0;
  });
}

void ExportAssignmentRows(Db& db, const std::string& date, const std::function<void(ArchiveTable, SQLite::Statement&)>& on_row) {
  guarded("archiving assignments", [&] {
    auto& q = db.stmt("SELECT * FROM assignments WHERE date = ?1");  // the key's order: (date, advisor_id)
    q.bind(1, date);
    try {
      while (q.executeStep()) on_row(ArchiveTable::assignments, q);
    } catch (...) {
      q.reset();
      throw;
    }
    q.reset();
    return 0;
  });
}

}  // namespace daybreak::store
