#include "store/engagement.hpp"

#include <map>
#include <string_view>
#include <tuple>


namespace daybreak::store {
namespace {

constexpr const char* kUpsertEngagement = R"sql(
INSERT INTO engagement (date, content_id, segment, exposures, reads, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (date, content_id, segment) DO UPDATE SET
  exposures = excluded.exposures, reads = excluded.reads, updated_at = excluded.updated_at
WHERE exposures IS NOT excluded.exposures OR reads IS NOT excluded.reads
)sql";

}  // namespace

EngagementRebuildResult EngagementRebuild(Db& db, const std::string& from, const std::string& to, Millis now) {
  return guarded("rebuilding engagement", [&] {
    using Key = std::tuple<std::string, std::string, std::string>;
    std::map<Key, EngagementCounts> agg;
    {
      SQLite::Statement q(db.raw(), R"sql(
SELECT d.date, d.content_id, a.topics,
       (d.delivered_at IS NOT NULL OR d.read_at IS NOT NULL), (d.read_at IS NOT NULL)
FROM deliveries d JOIN advisors a ON a.advisor_id = d.advisor_id
WHERE d.run_id IN (SELECT run_id FROM runs WHERE date BETWEEN ?1 AND ?2)
  AND (d.delivered_at IS NOT NULL OR d.read_at IS NOT NULL))sql");
      // Through runs: deliveries has no date index, but its (run_id, state) index serves run_id.
      q.bind(1, from);
      q.bind(2, to);
      Advisor a;
      while (q.executeStep()) {
        a.topics = split_list(q.getColumn(2).getString(), ';');
        auto& c = agg[{q.getColumn(0).getString(), q.getColumn(1).getString(), advisor_segment(a)}];
        c.exposures += q.getColumn(3).getInt();
        c.reads += q.getColumn(4).getInt();
      }
    }
    EngagementRebuildResult r;
    std::vector<Key> stale;
    {
      SQLite::Statement q(db.raw(), "SELECT date, content_id, segment FROM engagement WHERE date BETWEEN ?1 AND ?2");
      q.bind(1, from);
      q.bind(2, to);
      while (q.executeStep()) {
        Key k{q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString()};
        if (!agg.count(k)) stale.push_back(std::move(k));
      }
    }
    for (const auto& k : stale) {
      auto& d = db.stmt("DELETE FROM engagement WHERE date = ?1 AND content_id = ?2 AND segment = ?3");
      d.bind(1, std::get<0>(k));
      d.bind(2, std::get<1>(k));
      d.bind(3, std::get<2>(k));
      r.rows_deleted += d.exec();
    }
    for (const auto& [k, c] : agg) {
      auto& q = db.stmt(kUpsertEngagement);
      q.bind(1, std::get<0>(k));
      q.bind(2, std::get<1>(k));
      q.bind(3, std::get<2>(k));
      q.bind(4, static_cast<std::int64_t>(c.exposures));
      q.bind(5, static_cast<std::int64_t>(c.reads));
      q.bind(6, static_cast<std::int64_t>(now));
      r.rows_written += q.exec();
    }
    return r;
  });
}

void EngagementAdd(Db& db, const std::string& date, const std::string& content_id, const std::string& segment,
                   std::int64_t exposures, std::int64_t reads, Millis now) {
  guarded("recording engagement", [&] {
    auto& q = db.stmt(R"sql(
INSERT INTO engagement (date, content_id, segment, exposures, reads, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (date, content_id, segment) DO UPDATE SET
  exposures = exposures + excluded.exposures, reads = reads + excluded.reads, updated_at = excluded.updated_at)sql");
    q.bind(1, date);
    q.bind(2, content_id);
    q.bind(3, segment);
    q.bind(4, static_cast<std::int64_t>(exposures));
    q.bind(5, static_cast<std::int64_t>(reads));
    q.bind(6, static_cast<std::int64_t>(now));
    q.exec();
  });
}

EngagementTable EngagementTotals(Db& db, const std::string& from, const std::string& to) {
  return guarded("reading engagement", [&] {
    EngagementTable out;
    auto& q = db.stmt(
        "SELECT content_id, segment, SUM(exposures), SUM(reads) FROM engagement WHERE date BETWEEN ?1 AND ?2 "
        "GROUP BY content_id, segment");
    q.bind(1, from);
    q.bind(2, to);
    while (q.executeStep()) {
      out[{q.getColumn(0).getString(), q.getColumn(1).getString()}] = {q.getColumn(2).getInt64(), q.getColumn(3).getInt64()};
    }
    q.reset();
    return out;
  });
}

std::vector<std::string> AssignmentDates(Db& db, const std::string& from, const std::string& to) {
  std::vector<std::string> dates;
  auto& first = db.stmt("SELECT MIN(date) FROM assignments WHERE date >= ?1 AND date <= ?2");
  auto& next = db.stmt("SELECT MIN(date) FROM assignments WHERE date > ?1 AND date <= ?2");
  first.bind(1, from);
  first.bind(2, to);
  if (first.executeStep() && !first.getColumn(0).isNull()) dates.push_back(first.getColumn(0).getString());
  first.reset();
  while (!dates.empty()) {
    next.bind(1, dates.back());
    next.bind(2, to);
    const bool more = next.executeStep() && !next.getColumn(0).isNull();
    if (more) dates.push_back(next.getColumn(0).getString());
    next.reset();
    if (!more) break;
  }
  return dates;
}

std::vector<HistoryRow> AssignmentListForAdvisorRange(Db& db, const std::string& advisor_id, const std::string& from,
                                                      const std::string& to) {
  return guarded("reading assignment history", [&] {
    std::vector<HistoryRow> out;
    // The key is (date, advisor_id) (sql/015): one search per stored date of the range, not a
    // read of every advisor's rows of those days.
    auto& q = db.stmt("SELECT content_id FROM assignments WHERE date = ?1 AND advisor_id = ?2");
    for (auto& date : AssignmentDates(db, from, to)) {
      q.bind(1, date);
      q.bind(2, advisor_id);
      if (q.executeStep()) out.push_back({std::move(date), q.getColumn(0).getString()});
      q.reset();
    }
    return out;
  });
}

struct AssignmentHistoryReader::Cursor {
  std::string date;
  SQLite::Statement q;
  bool done = false;
  Cursor(Db& db, std::string d)
      : date(std::move(d)),
        // INDEXED BY: the date-led covering index, read in advisor order; the table's rows,
        // though keyed by (date, advisor_id) too (sql/015), carry score_parts and reason.
        q(db.raw(), "SELECT advisor_id, content_id FROM assignments INDEXED BY assignments_day WHERE date = ?1 ORDER BY advisor_id") {
    q.bind(1, date);
    step();
  }
  void step() { done = !q.executeStep(); }
  std::string_view id() {
    const SQLite::Column c = q.getColumn(0);
    const char* p = c.getText();
    return {p, static_cast<std::size_t>(c.getBytes())};
  }
};

AssignmentHistoryReader::AssignmentHistoryReader(Db& db, const std::string& from, const std::string& to)
    : db_(db), from_(from), to_(to) {
  if (from.empty() || to < from) return;
  guarded("reading assignment history", [&] {
    for (auto& d : AssignmentDates(db, from, to)) cursors_.push_back(std::make_unique<Cursor>(db, std::move(d)));
  });
}

AssignmentHistoryReader::~AssignmentHistoryReader() = default;

void AssignmentHistoryReader::read(const std::string& advisor_id, std::vector<HistoryRow>& out) {
  out.clear();
  if (cursors_.empty()) return;
  if (started_ && advisor_id <= previous_) {
    // Out of order (or asked twice): the cursors have moved past it.
    out = AssignmentListForAdvisorRange(db_, advisor_id, from_, to_);
    return;
  }
  started_ = true;
  previous_ = advisor_id;
  const std::string_view want(advisor_id);
  guarded("reading assignment history", [&] {
    for (auto& c : cursors_) {
      // std::string_view compares bytes as unsigned char, as SQLite's BINARY collation does.
      while (!c->done && c->id() < want) c->step();
      if (!c->done && c->id() == want) out.push_back({c->date, c->q.getColumn(1).getString()});
    }
  });
}

}  // namespace daybreak::store
