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

/// The assignment of `advisor_id` on `date`, or nullopt.
std::optional<Assignment> AssignmentGet(Db& db, const std::string& advisor_id, const std::string& date);

/// Every assignment for delivery day `date` ("YYYY-MM-DD"), ordered by advisor_id.
std::vector<Assignment> AssignmentListForDate(Db& db, const std::string& date);

/// Number of stored assignments (all dates).
std::int64_t AssignmentCount(Db& db);

}  // namespace daybreak::store
