#pragma once
// Retry policy: exponential backoff with full jitter, and the decision a
// dispatcher takes after a failed send — retry on this channel, move to the advisor's next
// channel before the deadline, or give up into the dead-letter state. Pure: "now" and the
// random bits are passed in, so every rule is testable with a fake clock.
#include <cstdint>
#include <string>
#include <string_view>

#include "domain/types.hpp"

namespace daybreak {

/// Tuning of retries; the defaults fit a 5-minute deadline (six attempts with backoff capped
/// at 30 s take at most about 2.5 minutes of waiting).
struct RetryPolicy {
  Millis base_ms = 1000;          ///< ceiling of the first backoff
  Millis max_backoff_ms = 30000;  ///< no backoff ceiling exceeds this
  int max_attempts = 6;           ///< attempts per channel, the first one included
  Millis expected_latency_ms =
      2000;  ///< how long a send needs to land; a retry later than deadline − this is pointless
};

/// The backoff ceiling after the `attempt`-th failure (1 = after the first): min(max, base·2^(attempt−1)).
/// Attempts below 1 count as 1; the doubling saturates instead of overflowing.
Millis backoff_ceiling(const RetryPolicy& p, int attempt);

/// "Full jitter" backoff: uniform in [0, backoff_ceiling(attempt)], drawn from `random` (any
/// 64-bit value, e.g. mix64 of the delivery id and attempt), so retries of many deliveries
/// that failed together do not come back together.
Millis full_jitter_backoff(const RetryPolicy& p, int attempt, std::uint64_t random);

/// How a send failed, as the channel adapters classify it.
enum class FailureKind {
  retryable,            ///< transient provider or network error
  sender_rate_limited,  ///< the sender is over its provider rate (e.g. WhatsApp 130429)
  recipient_throttled,  ///< too many messages to this recipient (e.g. WhatsApp 131056)
  permanent,            ///< this channel can never deliver this message (bad number, opted out...)
  credentials,          ///< the sender's token or password is rejected: the sender is broken, not the message
  uncertain,            ///< the request may have reached the provider (timeout, crash)
  sender_blocked,       ///< the provider restricted the sender's number or account (WhatsApp 131048, 368):
                        ///< the sender is out for a long while; the message is fine elsewhere
};

/// What a provider error is about (docs/whatsapp-errors.md): one message, one advisor (the
/// recipient), the template/content, the sender's phone number, or the whole provider account.
enum class ErrorScope { message, advisor, template_, phone_number, account };
/// Stable lower-case name: message, advisor, template, phone_number, account.
std::string_view to_string(ErrorScope s);

/// Stable lower-case name of a failure kind, for attempt history, logs and metrics labels.
std::string_view to_string(FailureKind k);

/// What to do with a delivery after a failed attempt.
struct RetryDecision {
  /// retry: same channel at next_attempt_at; next_channel: move to the advisor's next channel
  /// now; dead: no channel left, to the dead-letter state.
  enum Action { retry, next_channel, dead } action = dead;
  Millis next_attempt_at = 0;  ///< when to act: the retry time, or `now`
  std::string reason;          ///< short text naming why, for the attempt history and logs
};

/// Stable lower-case name of a decision, for attempt history and logs.
std::string_view to_string(RetryDecision::Action a);

/// The retry rules:
///  - permanent: next channel if there is one, else dead, at once.
///  - credentials, sender_blocked: next channel if there is one, else retry after max_backoff_ms
///    (another sender of the channel may be healthy by then) while attempts remain, else dead.
///    (The dispatcher first moves a sender_blocked delivery to another healthy sender of the
///    same channel; this rule is what is left when there is none.)
///  - retryable, sender_rate_limited, recipient_throttled, uncertain: retry at
///    now + max(retry_after_hint, full-jitter backoff) while attempts_on_channel < max_attempts;
///    if that retry could not land by the deadline (retry time + expected latency > deadline)
///    and there is a next channel, move to it now instead. Attempts exhausted: next channel,
///    else dead. With no next channel a retry past the deadline still happens (late beats never).
/// `attempts_on_channel` counts the attempts made on this channel so far, the failed one included.
RetryDecision decide_after_failure(const RetryPolicy& p, FailureKind kind, int attempts_on_channel, Millis now,
                                   Millis deadline, bool has_next_channel, Millis retry_after_hint,
                                   std::uint64_t random);

}  // namespace daybreak
