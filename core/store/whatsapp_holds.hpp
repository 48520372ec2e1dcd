#pragma once
// Query module for `whatsapp_holds` (sql/012): per-advisor WhatsApp holds set by a `failed`
// status with Meta's error 131049 (domain/status_event.hpp whatsapp_hold_until), read by
// plan-deliveries and dispatch to skip WhatsApp for the advisor while held; and the one write
// that moves an accepted delivery to its next channel after a failed status
// (docs/state_machine.md, `accepted` → `retry_wait`).
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

struct WhatsAppHold {
  std::string advisor_id;
  Millis until = 0;
  long error_code = 0;
  std::optional<std::int64_t> delivery_id;
  Millis set_at = 0;
};

/// Records (or extends: the later `until` wins) the advisor's hold. Call inside write_tx.
void WhatsAppHoldSet(Db& db, const WhatsAppHold& h);
/// Holds still in force at `at` (until > at), keyed by advisor id; with `set_since`, only those
/// written at or after it (dispatch's poll).
std::unordered_map<std::string, Millis> WhatsAppHoldsActive(Db& db, Millis at, std::optional<Millis> set_since = std::nullopt);
/// The advisor's hold, if any (expired or not).
std::optional<WhatsAppHold> WhatsAppHoldGet(Db& db, const std::string& advisor_id);

/// What dispatch writes when a failed status moves an accepted delivery to its next channel.
struct RerouteAfterFailedParams {
  std::int64_t delivery_id = 0;
  std::string channel;     ///< the next channel
  int channel_index = 0;
  std::string sender;      ///< its sender
  std::string last_error;  ///< "rerouted after status failed: <code> <title> → <channel>"
  Millis now = 0;
};
/// accepted → retry_wait on the next channel, due now, accepted_at cleared; only while the row
/// is still `accepted` on WhatsApp with a `status failed: ` error and its run is owned by
/// `owner`. The failed statuses of that message are marked `rerouted` (outcome), so a late
/// delivered/read of the same WhatsApp message no longer moves the row. True when it moved.
bool DeliveryRerouteAfterFailedStatus(Db& db, const RerouteAfterFailedParams& p, const std::string& owner);

/// True when a `failed` status of this WhatsApp message moved its delivery to another channel.
bool StatusMessageRerouted(Db& db, const std::string& provider_message_id);

}  // namespace daybreak::store
