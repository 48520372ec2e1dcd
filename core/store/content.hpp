#pragma once
// Query module for the `content` table (STYLE.md item 9). Withdrawal (withdrawn_at/by) is an
// operator's compliance action and belongs to the override commands: an upsert never touches it,
// so re-importing a withdrawn item does not bring it back.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// What ContentUpsert writes.
struct ContentUpsertParams {
  Content content;        ///< validated (domain/validate.hpp); `withdrawn` is ignored
  Millis updated_at = 0;  ///< the caller's clock
};

/// Inserts the item or updates it in place; unchanged rows are not rewritten (updated_at stays),
/// withdrawn_at/by are kept. Call inside Db::write_tx.
void ContentUpsert(Db& db, const ContentUpsertParams& p);

/// The item (Content::withdrawn set when withdrawn_at is), or nullopt when there is none.
std::optional<Content> ContentGet(Db& db, const std::string& content_id);

/// The fallback pool for delivery day `date`: fallback_eligible, not withdrawn,
/// valid on `date` (valid_from ≤ date ≤ valid_until, an empty bound open). All languages: the
/// ranker matches each advisor's language. Ordered by content_id.
std::vector<Content> ContentListFallbackPool(Db& db, const std::string& date);

/// The emergency pool for `date`: marked emergency, not withdrawn, valid on `date`; by content_id.
std::vector<Content> ContentListEmergencyPool(Db& db, const std::string& date);

/// Every emergency item not withdrawn, whatever its validity dates (dispatch judges them per
/// delivery day); by content_id.
std::vector<Content> ContentListEmergency(Db& db);
/// Every item the deliveries of run `run_id` point at (withdrawn ones too); by content_id.
std::vector<Content> ContentListForRun(Db& db, std::int64_t run_id);
/// Ids of every withdrawn item.
std::vector<std::string> ContentListWithdrawnIds(Db& db);

/// The one reader of a content row: a statement selecting ContentColumnsSql() (its first 11
/// columns; a caller may select more after them) read into a Content.
Content ContentFromRow(SQLite::Statement& q);
/// "SELECT content_id, title, … withdrawn_at FROM content " (append WHERE …).
const char* ContentColumnsSql();

/// Number of stored content items.
std::int64_t ContentCount(Db& db);

}  // namespace daybreak::store
