#include "domain/status_event.hpp"

#include <algorithm>

namespace daybreak {

std::string_view to_string(MessageStatus s) {
  switch (s) {
    case MessageStatus::sent: return "sent";
    case MessageStatus::delivered: return "delivered";
    case MessageStatus::read: return "read";
    case MessageStatus::failed: return "failed";
  }
  return "sent";
}

std::optional<MessageStatus> message_status_from_string(std::string_view s) {
  if (s == "sent") return MessageStatus::sent;
  if (s == "delivered") return MessageStatus::delivered;
  if (s == "read") return MessageStatus::read;
  if (s == "failed") return MessageStatus::failed;
  return std::nullopt;
}

int status_rank(MessageStatus s) {
  switch (s) {
    case MessageStatus::failed: return 0;
    case MessageStatus::sent: return 1;
    case MessageStatus::delivered: return 2;
    case MessageStatus::read: return 3;
  }
  return 0;
}

std::optional<MessageStatus> StatusFold::outcome() const {
  if (best && status_rank(*best) >= status_rank(MessageStatus::delivered)) return best;
  if (failed) return MessageStatus::failed;
  return best;
}

StatusFold fold_status(StatusFold f, MessageStatus s) {
  if (s == MessageStatus::failed) {
    f.failed = true;
  } else if (!f.best || status_rank(s) > status_rank(*f.best)) {
    f.best = s;
  }
  return f;
}

StatusFold fold_statuses(const std::vector<MessageStatus>& statuses) {
  StatusFold f;
  for (auto s : statuses) f = fold_status(f, s);
  return f;
}

namespace {

/// The accepted-family state a progress status stands for.
DeliveryState state_for(MessageStatus s) {
  switch (s) {
    case MessageStatus::read: return DeliveryState::read;
    case MessageStatus::delivered: return DeliveryState::delivered;
    default: return DeliveryState::accepted;
  }
}

int accepted_rank(DeliveryState s) {
  switch (s) {
    case DeliveryState::accepted: return 1;
    case DeliveryState::delivered: return 2;
    case DeliveryState::read: return 3;
    default: return 0;
  }
}

}  // namespace

std::optional<DeliveryState> delivery_state_after_status(DeliveryState current, MessageStatus s) {
  if (s == MessageStatus::failed) return std::nullopt;
  const DeliveryState target = state_for(s);
  switch (current) {
    case DeliveryState::accepted:
    case DeliveryState::delivered:
    case DeliveryState::read:
      if (accepted_rank(target) > accepted_rank(current)) return target;
      return std::nullopt;
    case DeliveryState::uncertain:
    case DeliveryState::retry_wait:
      return target;
    case DeliveryState::sending:
    case DeliveryState::planned:
    case DeliveryState::dead:
    case DeliveryState::cancelled:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<Millis> whatsapp_hold_until(std::optional<long> error_code, Millis failed_at, Millis now) {
  if (!error_code || *error_code != kWhatsAppMarketingLimitCode) return std::nullopt;
  return (failed_at > 0 ? failed_at : now) + kWhatsAppMarketingHoldMs;
}

FailedAfterAcceptDecision decide_after_failed_status(DeliveryState state, bool on_whatsapp, bool run_open,
                                                     bool has_next_channel, Millis now, Millis deadline,
                                                     Millis expected_latency_ms) {
  if (state != DeliveryState::accepted) return {FailedAfterAccept::record_only, "not accepted (delivered, read or moved)"};
  if (!on_whatsapp) return {FailedAfterAccept::record_only, "not on whatsapp"};
  if (!run_open) return {FailedAfterAccept::record_only, "run closed"};
  if (!has_next_channel) return {FailedAfterAccept::record_only, "no next channel"};
  if (now + expected_latency_ms > deadline) return {FailedAfterAccept::record_only, "deadline passed"};
  return {FailedAfterAccept::next_channel, "failed status after accept: next channel"};
}

}  // namespace daybreak
