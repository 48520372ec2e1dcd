#pragma once
// Query module for the `assignments` table (STYLE.md item 9): which content each advisor gets on
// delivery day D, and where that choice came from.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// What AssignmentUpsert writes.
struct AssignmentUpsertParams {
  Assignment assignment;  ///< an empty score_parts is stored as "{}"
  Millis created_at = 0;  ///< the caller's clock; set again whenever the assignment changes
  /// Leave an existing operator `override` in place (unless this one is an override too). Bulk
  /// imports set it, so re-running an import cannot silently undo a hand-made decision; the
  /// fallback pass leaves it off, since it only replaces assignments that can no longer be sent.
  bool keep_override = false;
};

/// Inserts the (advisor, date) assignment or replaces it (see keep_override). Unchanged rows are
/// not rewritten. Returns false when an existing override was kept instead. Call inside
/// Db::write_tx.
bool AssignmentUpsert(Db& db, const AssignmentUpsertParams& p);

/// AssignmentUpsert (keep_override off) for many rows in a row (assign-fallback): rows are
/// queued and written kBatch at a time through one held multi-row INSERT … ON CONFLICT DO
/// UPDATE, the same statement per row, so SQLite's per-statement work is paid once per batch.
/// Unchanged rows are not rewritten. The queued rows are referenced, not copied: each must
/// outlive the next finish(). Call inside Db::write_tx.
class AssignmentWriter {
 public:
  static constexpr std::size_t kBatch = 64;
  explicit AssignmentWriter(Db& db);
  /// Queues a row (by reference); writes a batch when kBatch are queued. keep_override is ignored.
  void add(const AssignmentUpsertParams& p);
  /// Writes what is still queued.
  void finish();

 private:
  void write_batch();
  Db& db_;
  SQLite::Statement& batch_;
  std::vector<const AssignmentUpsertParams*> queued_;
  std::vector<std::string> sources_;  ///< the bound source names (bindNoCopy needs them alive)
};

/// The assignment of `advisor_id` on `date`, or nullopt.
std::optional<Assignment> AssignmentGet(Db& db, const std::string& advisor_id, const std::string& date);

/// Every assignment for delivery day `date` ("YYYY-MM-DD"), ordered by advisor_id.
std::vector<Assignment> AssignmentListForDate(Db& db, const std::string& date);

/// AssignmentListForDate with advisor_id, date, content_id and source only (score, score_parts
/// and reason left empty): read from the date-led covering index (sql/008) alone, without a
/// lookup into the table's rows per assignment.
std::vector<Assignment> AssignmentKeysForDate(Db& db, const std::string& date);

/// Number of stored assignments (all dates).
std::int64_t AssignmentCount(Db& db);

}  // namespace daybreak::store
