#pragma once
// Provider status callbacks: the record one status inside a WhatsApp webhook
// becomes, and the monotonic rule that folds any number of them, in any order and with any
// duplicates, into one delivery state. Pure: the JSON parsing is in channels/status_parse, the
// storage in store/status_events.
//
// Meta documents four message statuses (Status messages webhook reference,
// https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status/):
// sent, delivered, read, failed. Webhooks are not ordered and are retried, so the order and
// the count in which they arrive carry no meaning; only the set seen does.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/types.hpp"

namespace daybreak {

/// A message status as Meta names it.
enum class MessageStatus { sent, delivered, read, failed };

std::string_view to_string(MessageStatus s);
std::optional<MessageStatus> message_status_from_string(std::string_view s);

/// Progress rank: sent 1 < delivered 2 < read 3; failed 0 (it is not progress, see fold_statuses).
int status_rank(MessageStatus s);

/// One entry of `statuses[]` in a webhook, as stored in status_updates.
struct StatusUpdate {
  std::string provider_message_id;          ///< `id`, the wamid the send answered with
  MessageStatus status = MessageStatus::sent;
  Millis provider_at = 0;                   ///< `timestamp` (unix seconds) in ms
  std::string recipient_id;                 ///< `recipient_id` (a phone number: mask it in logs)
  std::optional<std::int64_t> delivery_id;  ///< `biz_opaque_callback_data` when it is one of our ids
  std::string phone_number_id;              ///< `metadata.phone_number_id` of the change
  std::optional<long> error_code;           ///< `errors[0].code` of a failed status
  std::string error_title;                  ///< `errors[0].title` (or `message` when no title)
  std::string error_details;                ///< `errors[0].error_data.details`
};

/// One element of a webhook that could not be read (a status with a timestamp in an
/// unexpected form, a change whose `value` is not an object...): rejected on its own, stored
/// with its reason, while the rest of the body is applied. Every text is bounded (kRejectTextMax).
struct StatusReject {
  std::string path;                 ///< where in the body, e.g. entry[0].changes[0].value.statuses[17]
  std::string provider_message_id;  ///< the status's `id` when it was a string, else ""
  std::string reason;               ///< what was wrong, naming the field
  std::string excerpt;              ///< the element as JSON, cut to kRejectTextMax bytes
};
/// The longest path, reason or excerpt kept for a rejected element (bytes; longer is cut).
inline constexpr std::size_t kRejectTextMax = 512;
/// At most this many rejected elements are kept per webhook body; the rest are only counted.
inline constexpr std::size_t kRejectsPerBodyMax = 100;

/// An account-level error Meta reports in a webhook's `value.errors` (no status attached):
/// Meta, "Errors messages webhooks reference"
/// (https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/errors):
/// `{"code": 130429, "title": "Rate limit hit", "message": ..., "error_data": {"details": ...}}`,
/// sent when "an app- or account-level problem prevents a request from being processed".
struct AccountError {
  std::string waba_id;          ///< entry[].id
  std::string phone_number_id;  ///< value.metadata.phone_number_id
  std::optional<long> code;
  std::string title;            ///< `title`, else `message`
  std::string details;          ///< error_data.details
};

/// What a set of statuses of one message says, whatever order they came in: the highest
/// progress seen, and whether `failed` was seen. A `failed` counts only when nothing at or above
/// `delivered` was seen (a message delivered to one device and failed on another reached the
/// advisor); a late lower status never lowers `best`.
struct StatusFold {
  std::optional<MessageStatus> best;  ///< highest of sent/delivered/read seen
  bool failed = false;                ///< a failed status was seen
  /// The one status the set amounts to: read, delivered, else failed when seen, else sent.
  [[nodiscard]] std::optional<MessageStatus> outcome() const;
};

/// Adds one status to a fold. Commutative, associative and idempotent: any permutation of any
/// multiset of statuses with the same members gives the same fold.
StatusFold fold_status(StatusFold f, MessageStatus s);
StatusFold fold_statuses(const std::vector<MessageStatus>& statuses);

/// The delivery state after a status event about it, or nullopt when the row must not move:
/// - accepted/delivered/read rise to the state of the status and never fall (sent maps to accepted);
/// - uncertain and retry_wait rows are the reconciliation: a sent/delivered/read status proves
///   the provider accepted one of their requests, so they become at least accepted;
/// - sending rows do not move: a live dispatch is about to write its own outcome (first_sent_at,
///   attempts, its accepted_at) guarded by `state = 'sending'`, and moving the row would drop it.
///   The caller keeps the status pending (status_waits_for); if that dispatch died, the next one
///   marks the row uncertain and the pending status then reconciles it;
/// - `failed` never moves a row by itself (the caller records the error);
/// - planned, dead and cancelled rows do not move (nothing was sent for planned; dead and
///   cancelled are operators' or dispatch's final word).
std::optional<DeliveryState> delivery_state_after_status(DeliveryState current, MessageStatus s);

/// True when a status about a row in `current` must wait (stay pending) rather than be applied:
/// the row is `sending`, owned by a dispatch that has not recorded its outcome yet.
constexpr bool status_waits_for(DeliveryState current) { return current == DeliveryState::sending; }

// ---- a `failed` status after acceptance ----------------------------------------------------
//
// Meta's WhatsApp Cloud API error codes reference
// (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/):
//   131049 "This message was not delivered to maintain healthy ecosystem engagement": the
//          per-user marketing message limit; another message to the same user soon meets it again.
//   131026 "Message undeliverable" (not on WhatsApp, old app version, terms not accepted, ...).
// Both come as a `failed` status after the send was accepted.

/// The per-user marketing limit error of a failed status.
inline constexpr long kWhatsAppMarketingLimitCode = 131049;
/// How long WhatsApp is held for an advisor after a 131049: 24 hours.
inline constexpr Millis kWhatsAppMarketingHoldMs = 24LL * 3600 * 1000;

/// The instant until which WhatsApp is held for the advisor after a failed status with
/// `error_code`, failed at `failed_at` (the provider's time; `now` when it gave none): 24 h
/// after it for 131049; nullopt for any other code (no hold).
std::optional<Millis> whatsapp_hold_until(std::optional<long> error_code, Millis failed_at, Millis now);

/// True when WhatsApp is held at `at` by a hold lasting until `until`.
constexpr bool whatsapp_held(std::optional<Millis> until, Millis at) { return until && at < *until; }

/// What dispatch does with a `failed` status about a delivery the provider had accepted.
enum class FailedAfterAccept {
  next_channel,  ///< accepted → retry_wait on the advisor's next channel, due now: a new attempt there
  record_only,   ///< stays accepted with last_error; counted as failed-after-accept in the SLA
};
struct FailedAfterAcceptDecision {
  FailedAfterAccept action = FailedAfterAccept::record_only;
  std::string reason;
};
/// The rule. A failed status moves the delivery to its next channel only when all hold:
/// - the row is still `accepted` (a delivered/read status already said it reached the advisor:
///   StatusFold ignores a failure then), on WhatsApp (the channel whose status failed);
/// - its run is still open in this dispatch (a failure arriving after the run closed is recorded
///   only: the run's report is written and nothing sends for it any more);
/// - the advisor has a next channel with a sender (never a second send on the same channel);
/// - that send can still land by the deadline: now + expected_latency_ms <= deadline.
FailedAfterAcceptDecision decide_after_failed_status(DeliveryState state, bool on_whatsapp, bool run_open,
                                                     bool has_next_channel, Millis now, Millis deadline,
                                                     Millis expected_latency_ms);

}  // namespace daybreak
