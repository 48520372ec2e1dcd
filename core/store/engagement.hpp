#pragma once
// Query module for the `engagement` table (sql/002_engagement.sql): the read counts the fallback
// ranker learns from, per (delivery day, content, advisor segment). Also the per-advisor history
// read the ranker needs from `assignments` (AssignmentListForAdvisorRange): it belongs in
// store/assignments.hpp and lives here only while that module is being changed by the import work.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "domain/ranking.hpp"
#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// What EngagementRebuild did.
struct EngagementRebuildResult {
  std::int64_t rows_written = 0;  ///< rows inserted or changed
  std::int64_t rows_deleted = 0;  ///< rows whose deliveries no longer exist
};

/// Recomputes the engagement rows of delivery days from..to (inclusive, "YYYY-MM-DD") from
/// deliveries (exposure: delivered_at or read_at set; read: read_at set), the segment of each
/// delivery being advisor_segment() of the advisor as stored now. Rows that would not change are
/// not rewritten, so a second run writes nothing. Call inside Db::write_tx.
EngagementRebuildResult EngagementRebuild(Db& db, const std::string& from, const std::string& to, Millis now);

/// Adds counts to one (date, content, segment) row: for simulations and for a status-callback
/// ingest that keeps the table current between rebuilds. Call inside Db::write_tx.
void EngagementAdd(Db& db, const std::string& date, const std::string& content_id, const std::string& segment,
                   std::int64_t exposures, std::int64_t reads, Millis now);

/// Sums per (content, segment) over delivery days from..to (inclusive): the ranker's evidence.
EngagementTable EngagementTotals(Db& db, const std::string& from, const std::string& to);

/// One past assignment of an advisor.
struct HistoryRow {
  std::string date;
  std::string content_id;
};

/// The advisor's assignments with from ≤ date ≤ to, oldest first: one search of the
/// assignments primary key (date, advisor_id) per stored date of the range (sql/015), so a
/// per-advisor call stays cheap at a million advisors.
/// The distinct dates of assignments with from <= date <= to, oldest first, each found by one
/// search of the date-led key (sql/015).
std::vector<std::string> AssignmentDates(Db& db, const std::string& from, const std::string& to);

std::vector<HistoryRow> AssignmentListForAdvisorRange(Db& db, const std::string& advisor_id, const std::string& from,
                                                      const std::string& to);

/// AssignmentListForAdvisorRange for many advisors asked in ascending advisor_id order (as
/// AdvisorListEligible returns them): one cursor per stored date in from..to over the date-led
/// covering index (sql/008), each advanced beside the advisors, instead of one primary-key seek
/// per advisor. The table's pages carry every column (score_parts, reason); the index holds
/// (date, advisor_id, content_id, source) only, read front to back once.
/// An advisor asked out of order is answered by AssignmentListForAdvisorRange. Rows are
/// identical to AssignmentListForAdvisorRange's (oldest first). Reads only: while it lives, do
/// not write to assignments on this connection.
class AssignmentHistoryReader {
 public:
  /// Empty `from` or from > to: every answer is empty.
  AssignmentHistoryReader(Db& db, const std::string& from, const std::string& to);
  ~AssignmentHistoryReader();
  AssignmentHistoryReader(const AssignmentHistoryReader&) = delete;
  AssignmentHistoryReader& operator=(const AssignmentHistoryReader&) = delete;
  /// The advisor's rows with from ≤ date ≤ to, oldest first, into `out` (cleared first).
  void read(const std::string& advisor_id, std::vector<HistoryRow>& out);

 private:
  struct Cursor;
  Db& db_;
  std::string from_, to_;
  std::vector<std::unique_ptr<Cursor>> cursors_;  ///< one per date, oldest first
  std::string previous_;
  bool started_ = false;
};

}  // namespace daybreak::store
