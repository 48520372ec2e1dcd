#pragma once
// The statements of a compliance pull (`daybreak content withdraw`): mark an item withdrawn,
// re-point pending deliveries at their advisor's new assignment. They touch `content` and
// `deliveries` (the audit row is store/audit.hpp's); they live together here until those tables' modules
// (store/content, store/deliveries, an audit module) can take them without colliding with work
// in progress on those files.
#include <cstdint>
#include <optional>
#include <map>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "store/audit.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// What ContentWithdraw found and did.
struct ContentWithdrawResult {
  bool found = false;               ///< the item exists
  bool newly_withdrawn = false;     ///< false when it was already withdrawn (kept as it was)
  std::optional<Millis> withdrawn_at;
  std::string withdrawn_by;
};

/// Marks the item withdrawn at `now` by `actor`, unless it already is (the first withdrawal's
/// time and actor are kept, so a repeated pull is harmless). Call inside Db::write_tx.
ContentWithdrawResult ContentWithdraw(Db& db, const std::string& content_id, const std::string& actor, Millis now);

/// Delivery days from `from_date` on ("YYYY-MM-DD") that have an assignment of the item.
std::vector<std::string> AssignmentDatesForContent(Db& db, const std::string& content_id, const std::string& from_date);

/// For deliveries of `content_id` on days from `from_date` on that are still pending (planned or
/// retry_wait: nothing has reached the provider), sets content_id and source to the advisor's
/// assignment for that day when it names other content. Returns the delivery ids changed. Call
/// inside Db::write_tx.
std::vector<std::int64_t> DeliveryRepointPending(Db& db, const std::string& content_id, const std::string& from_date, Millis now);

/// Deliveries of the item on days from `from_date` on in a state a replacement cannot help:
/// sending or uncertain (the request may be at the provider), counted for the operator.
std::int64_t DeliveryCountInFlight(Db& db, const std::string& content_id, const std::string& from_date);

/// What DeliveryResolvePulled did with the pending deliveries still on the pulled item.
struct PulledResolution {
  std::vector<std::int64_t> emergency;  ///< re-pointed at an emergency item (advisor's language, else the default)
  std::vector<std::int64_t> held;       ///< no emergency item either: held (state dead, "held: …")
  std::vector<std::string> held_languages;  ///< advisor languages of the held rows, distinct, sorted
};

/// The pull-time half of the content rule (domain/emergency.hpp): every delivery of `content_id`
/// on days from `from_date` on that is still pending (planned or retry_wait) after
/// DeliveryRepointPending gets an emergency item valid on its day, of the advisor's language,
/// else of `emergency_language` (delivery and assignment, source `emergency`), else is held:
/// state `dead`, last_error "held: content C withdrawn; no emergency item in hi or en". Each
/// change is noted for a running dispatch. Call inside Db::write_tx, after
/// DeliveryRepointPending, so no pending delivery points at the pulled item afterwards.
PulledResolution DeliveryResolvePulled(Db& db, const std::string& content_id, const std::string& from_date,
                                       const std::string& emergency_language, Millis now);

/// Held deliveries (state dead, last_error "held: …", not dismissed) on days from `from_date`
/// on, by content, advisor language and day: what the content_held alert reports.
struct HeldGroup {
  std::string content_id;
  std::string language;
  std::string date;
  std::int64_t count = 0;
};
std::vector<HeldGroup> HeldDeliveryGroups(Db& db, const std::string& from_date);
/// Its statement (portable SQL; ?1 is `from_date`), which the PostgreSQL ledger runs too
/// (store::pg_held_delivery_groups).
const char* HeldDeliveryGroupsSql();

/// A language eligible advisors use on a day, and the emergency items that would serve them.
struct LanguageCoverage {
  std::string language;
  std::int64_t advisors = 0;         ///< eligible on the day
  std::int64_t emergency_items = 0;  ///< emergency, not withdrawn, valid on the day, in this language
};
/// Every language of advisors eligible on `date` (opted in, an opted-in channel, not paused),
/// plus `emergency_language` (advisors 0 when nobody uses it), with its emergency items valid
/// that day. Read by daybreak doctor (one scan of advisors); plan-deliveries counts the advisors in
/// its own pass and calls EmergencyCoverageFromCounts.
std::vector<LanguageCoverage> EmergencyCoverage(Db& db, const std::string& date, const std::string& emergency_language);
/// EmergencyCoverage with the eligible advisors per language already counted by the caller (the
/// planner counts them in its own pass over the advisors): only the emergency items are read.
std::vector<LanguageCoverage> EmergencyCoverageFromCounts(Db& db, const std::string& date, const std::string& emergency_language,
                                                          const std::map<std::string, std::int64_t>& advisors_by_language);

// AuditEntry and AuditAppend moved to store/audit.hpp (included above for existing callers).


}  // namespace daybreak::store
