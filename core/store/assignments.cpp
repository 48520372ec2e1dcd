#include "store/assignments.hpp"

namespace daybreak::store {
namespace {

constexpr const char* kUpsertAssignment = R"sql(
INSERT INTO assignments (advisor_id, date, content_id, source, score, score_parts, reason, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (advisor_id, date) DO UPDATE SET
  content_id = excluded.content_id, source = excluded.source, score = excluded.score,
  score_parts = excluded.score_parts, reason = excluded.reason, created_at = excluded.created_at
WHERE (?9 = 0 OR assignments.source <> 'override' OR excluded.source = 'override')
  AND (content_id IS NOT excluded.content_id OR source IS NOT excluded.source OR score IS NOT excluded.score
       OR score_parts IS NOT excluded.score_parts OR reason IS NOT excluded.reason)
)sql";

// The batch form of kUpsertAssignment with keep_override off: the same columns, conflict target,
// update and "only when something changed" condition.
std::string upsert_batch_sql(std::size_t rows) {
  std::string sql = "INSERT INTO assignments (advisor_id, date, content_id, source, score, score_parts, reason, created_at) VALUES ";
  for (std::size_t i = 0; i < rows; ++i) sql += i ? ",(?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?)";
  return sql + R"sql(
ON CONFLICT (advisor_id, date) DO UPDATE SET
  content_id = excluded.content_id, source = excluded.source, score = excluded.score,
  score_parts = excluded.score_parts, reason = excluded.reason, created_at = excluded.created_at
WHERE content_id IS NOT excluded.content_id OR source IS NOT excluded.source OR score IS NOT excluded.score
   OR score_parts IS NOT excluded.score_parts OR reason IS NOT excluded.reason)sql";
}

constexpr const char* kAssignmentColumns =
    "SELECT advisor_id, date, content_id, source, score, score_parts, reason FROM assignments ";

Assignment read_assignment(SQLite::Statement& q) {
  Assignment s;
  s.advisor_id = q.getColumn(0).getString();
  s.date = q.getColumn(1).getString();
  s.content_id = q.getColumn(2).getString();
  // The CHECK constraint admits only known sources; editorial is a safe reading otherwise.
  s.source = source_from_string(q.getColumn(3).getString()).value_or(Source::editorial);
  s.score = q.getColumn(4).getDouble();
  s.score_parts = q.getColumn(5).getString();
  s.reason = q.getColumn(6).getString();
  return s;
}

}  // namespace

bool AssignmentUpsert(Db& db, const AssignmentUpsertParams& p) {
  return guarded("storing assignment", [&] {
    const Assignment& s = p.assignment;
    const std::string source(to_string(s.source));
    const std::string parts = s.score_parts.empty() ? std::string("{}") : s.score_parts;
    auto& q = db.stmt(kUpsertAssignment);
    q.bindNoCopy(1, s.advisor_id);
    q.bindNoCopy(2, s.date);
    q.bindNoCopy(3, s.content_id);
    q.bindNoCopy(4, source);
    q.bind(5, s.score);
    q.bindNoCopy(6, parts);
    q.bindNoCopy(7, s.reason);
    q.bind(8, static_cast<std::int64_t>(p.created_at));
    q.bind(9, p.keep_override ? 1 : 0);
    if (q.exec() > 0 || !p.keep_override || s.source == Source::override_) return true;
    // Nothing written: either the row already says exactly this, or an override was kept.
    auto& c = db.stmt("SELECT source FROM assignments WHERE advisor_id = ?1 AND date = ?2");
    c.bind(1, s.advisor_id);
    c.bind(2, s.date);
    bool kept_override = c.executeStep() && c.getColumn(0).getString() == "override";
    c.reset();
    return !kept_override;
  });
}

AssignmentWriter::AssignmentWriter(Db& db)
    : db_(db), batch_(guarded("AssignmentWriter", [&]() -> SQLite::Statement& { return db.stmt(upsert_batch_sql(kBatch)); })) {
  queued_.reserve(kBatch);
  sources_.resize(kBatch);
}

void AssignmentWriter::add(const AssignmentUpsertParams& p) {
  queued_.push_back(&p);
  if (queued_.size() == kBatch) write_batch();
}

void AssignmentWriter::write_batch() {
  guarded("storing assignments", [&] {
    static const std::string kEmptyParts = "{}";
    int i = 1;
    for (std::size_t row = 0; row < queued_.size(); ++row) {
      const AssignmentUpsertParams* p = queued_[row];
      const Assignment& s = p->assignment;
      batch_.bindNoCopy(i++, s.advisor_id);
      batch_.bindNoCopy(i++, s.date);
      batch_.bindNoCopy(i++, s.content_id);
      std::string& source = sources_[row];
      source = to_string(s.source);  // short: kept in the string itself, no allocation
      batch_.bindNoCopy(i++, source);
      batch_.bind(i++, s.score);
      batch_.bindNoCopy(i++, s.score_parts.empty() ? kEmptyParts : s.score_parts);
      batch_.bindNoCopy(i++, s.reason);
      batch_.bind(i++, static_cast<std::int64_t>(p->created_at));
    }
    batch_.exec();
    batch_.reset();
  });
  queued_.clear();
}

void AssignmentWriter::finish() {
  // The tail (fewer than kBatch rows) goes row by row through the single-row statement.
  for (const AssignmentUpsertParams* p : queued_) {
    AssignmentUpsertParams one = *p;
    one.keep_override = false;
    AssignmentUpsert(db_, one);
  }
  queued_.clear();
}

std::optional<Assignment> AssignmentGet(Db& db, const std::string& advisor_id, const std::string& date) {
  return guarded("reading assignment", [&]() -> std::optional<Assignment> {
    auto& q = db.stmt(std::string(kAssignmentColumns) + "WHERE advisor_id = ?1 AND date = ?2");
    q.bind(1, advisor_id);
    q.bind(2, date);
    if (!q.executeStep()) return std::nullopt;
    Assignment s = read_assignment(q);
    q.reset();  // end the statement's read so it does not pin a WAL snapshot
    return s;
  });
}

std::vector<Assignment> AssignmentListForDate(Db& db, const std::string& date) {
  return guarded("listing assignments", [&] {
    std::vector<Assignment> out;
    auto& q = db.stmt(std::string(kAssignmentColumns) + "WHERE date = ?1 ORDER BY advisor_id");
    q.bind(1, date);
    while (q.executeStep()) out.push_back(read_assignment(q));
    return out;
  });
}

std::vector<Assignment> AssignmentKeysForDate(Db& db, const std::string& date) {
  return guarded("listing assignments", [&] {
    std::vector<Assignment> out;
    auto& q = db.stmt(
        "SELECT advisor_id, content_id, source FROM assignments INDEXED BY assignments_day WHERE date = ?1 ORDER BY advisor_id");
    q.bind(1, date);
    while (q.executeStep()) {
      Assignment s;
      s.advisor_id = q.getColumn(0).getText();
      s.date = date;
      s.content_id = q.getColumn(1).getText();
      // As read_assignment: the CHECK constraint admits only known sources.
      s.source = source_from_string(q.getColumn(2).getText()).value_or(Source::editorial);
      out.push_back(std::move(s));
    }
    return out;
  });
}

std::int64_t AssignmentCount(Db& db) {
  return guarded("counting assignments", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM assignments");
    q.executeStep();
    std::int64_t n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

}  // namespace daybreak::store
