#pragma once
// Query module for the `engagement` table (sql/002_engagement.sql): the read counts the fallback
// ranker learns from, per (delivery day, content, advisor segment). Also the per-advisor history
// read the ranker needs from `assignments` (AssignmentListForAdvisorRange): it belongs in
// store/assignments.hpp and lives here only while that module is being changed by the import work.
#include <cstdint>
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

/// The advisor's assignments with from ≤ date ≤ to, oldest first (an index range scan on the
/// assignments primary key, so a per-advisor call stays cheap at a million advisors).
std::vector<HistoryRow> AssignmentListForAdvisorRange(Db& db, const std::string& advisor_id, const std::string& from,
                                                      const std::string& to);

}  // namespace daybreak::store
