#pragma once
// The statements of a compliance pull (`daybreak content withdraw`): mark an item withdrawn,
// re-point pending deliveries at their advisor's new assignment. They touch `content` and
// `deliveries` (the audit row is store/audit.hpp's); they live together here until those tables' modules
// (store/content, store/deliveries, an audit module) can take them without colliding with work
// in progress on those files.
#include <cstdint>
#include <optional>
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

// AuditEntry and AuditAppend moved to store/audit.hpp (included above for existing callers).


}  // namespace daybreak::store
