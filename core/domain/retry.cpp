#include "domain/retry.hpp"

#include <algorithm>

namespace daybreak {

Millis backoff_ceiling(const RetryPolicy& p, int attempt) {
  const Millis cap = std::max<Millis>(0, p.max_backoff_ms);
  Millis c = std::max<Millis>(0, p.base_ms);
  for (int i = 1; i < attempt && c > 0 && c < cap; ++i)
    c = c > cap / 2 ? cap : c * 2;  // saturates at the cap: no overflow
  return std::min(c, cap);
}

Millis full_jitter_backoff(const RetryPolicy& p, int attempt, std::uint64_t random) {
  const Millis ceiling = backoff_ceiling(p, attempt);
  // The top 53 bits as a fraction in [0, 1): unbiased enough, and no 128-bit arithmetic.
  const double fraction = static_cast<double>(random >> 11) * 0x1.0p-53;
  const auto v = static_cast<Millis>(fraction * static_cast<double>(ceiling + 1));
  return std::min(v, ceiling);
}

std::string_view to_string(FailureKind k) {
  switch (k) {
    case FailureKind::retryable:
      return "retryable";
    case FailureKind::sender_rate_limited:
      return "sender_rate_limited";
    case FailureKind::recipient_throttled:
      return "recipient_throttled";
    case FailureKind::permanent:
      return "permanent";
    case FailureKind::credentials:
      return "credentials";
    case FailureKind::uncertain:
      return "uncertain";
    case FailureKind::sender_blocked:
      return "sender_blocked";
  }
  return "?";
}

std::string_view to_string(ErrorScope s) {
  switch (s) {
    case ErrorScope::message: return "message";
    case ErrorScope::advisor: return "advisor";
    case ErrorScope::template_: return "template";
    case ErrorScope::phone_number: return "phone_number";
    case ErrorScope::account: return "account";
  }
  return "?";
}

std::string_view to_string(RetryDecision::Action a) {
  switch (a) {
    case RetryDecision::retry:
      return "retry";
    case RetryDecision::next_channel:
      return "next_channel";
    case RetryDecision::dead:
      return "dead";
  }
  return "?";
}

RetryDecision decide_after_failure(const RetryPolicy& p, FailureKind kind, int attempts_on_channel, Millis now,
                                   Millis deadline, bool has_next_channel, Millis retry_after_hint,
                                   std::uint64_t random) {
  const std::string what(to_string(kind));
  auto give_up = [&](const std::string& why) {
    return has_next_channel ? RetryDecision{RetryDecision::next_channel, now, why + ": next channel"}
                            : RetryDecision{RetryDecision::dead, now, why + ": no channel left"};
  };

  if (kind == FailureKind::permanent) return give_up("permanent failure");

  const bool exhausted = attempts_on_channel >= p.max_attempts;
  if (kind == FailureKind::credentials || kind == FailureKind::sender_blocked) {
    // The sender is broken, not the message: another channel now, or wait long enough for the
    // sender pool to route around the broken sender (its breaker opens).
    const std::string why = kind == FailureKind::credentials ? "credentials rejected" : "sender blocked by the provider";
    if (has_next_channel) return give_up(why);
    if (exhausted) return give_up(why + " on every attempt");
    return RetryDecision{RetryDecision::retry, now + std::max(p.max_backoff_ms, retry_after_hint),
                         why + ": retry after the longest backoff"};
  }

  if (exhausted) {
    return give_up(what + " failure, " + std::to_string(attempts_on_channel) + " attempts exhausted");
  }
  const Millis delay = std::max(retry_after_hint, full_jitter_backoff(p, attempts_on_channel, random));
  const Millis at = now + delay;
  if (has_next_channel && at + p.expected_latency_ms > deadline) {
    // Move while the next channel still has a chance to land before the deadline.
    return RetryDecision{RetryDecision::next_channel, now,
                         what + " failure: a retry could not land before the deadline: next channel"};
  }
  std::string reason = what + " failure: retry " + std::to_string(attempts_on_channel + 1) + " of " +
                       std::to_string(p.max_attempts) + " in " + std::to_string(delay) + " ms";
  if (at + p.expected_latency_ms > deadline) reason += " (late, no other channel)";
  return RetryDecision{RetryDecision::retry, at, std::move(reason)};
}

}  // namespace daybreak
