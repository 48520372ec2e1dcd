#pragma once
// The WhatsApp error policy: ONE table from a Cloud API error code (and subcode where it
// matters) to what the error is about (its scope) and what dispatch does about it (its
// action). Source of every code: Meta's "WhatsApp error codes" reference,
// https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes (the Cloud API
// support pages). The same table, readable, is docs/whatsapp-errors.md; a unit test holds the
// two together row by row.
#include <span>
#include <string_view>

#include "domain/retry.hpp"
#include "domain/types.hpp"

namespace daybreak::channels {

/// What dispatch does about an error.
enum class WhatsAppAction {
  retry,              ///< retry the message (backoff, or at least retry_after_ms), bounded by [retry] max_attempts
  rate_limit,         ///< pause this sender for retry_after_ms, then retry
  next_channel,       ///< this advisor cannot get this message on WhatsApp: the advisor's next channel now
  template_fallback,  ///< the template/content cannot go out: emergency content at once (no retry), else next channel
  pause_number,       ///< the phone number is restricted: open its breaker for [whatsapp] number_pause_seconds,
                      ///< send its traffic through the other healthy WhatsApp numbers, channel fallback only after
  stop_account,       ///< the account is restricted: stop every sender of the account for
                      ///< [whatsapp] account_pause_seconds and raise the critical whatsapp_account_blocked alert
  credentials,        ///< the token is rejected: pause the sender 30 s, next channel, credentials_failure alert
};
std::string_view to_string(WhatsAppAction a);

/// One row of the policy. `code_last` > `code` makes it a range (Meta's 200-299).
struct WhatsAppErrorRule {
  long code = 0;
  long code_last = 0;      ///< 0 = just `code`
  long subcode = -1;       ///< -1 = any subcode
  ErrorScope scope = ErrorScope::message;
  WhatsAppAction action = WhatsAppAction::retry;
  FailureKind kind = FailureKind::retryable;
  Millis retry_after_ms = 0;  ///< the least wait before the next attempt (retry, rate_limit)
  std::string_view title;     ///< Meta's title of the code
};

/// Every row, in the order of docs/whatsapp-errors.md.
std::span<const WhatsAppErrorRule> whatsapp_error_table();

/// The row for `code`/`subcode` (a row naming the subcode wins over one for any subcode), or
/// nullptr when the code is not in the table.
const WhatsAppErrorRule* find_whatsapp_error(long code, long subcode);

/// The rule for an unknown code: the cautious default (retryable, message scope, attempts
/// bounded by [retry] max_attempts). Dispatch logs it and counts it (unknown_error_codes).
const WhatsAppErrorRule& whatsapp_unknown_error_rule();

}  // namespace daybreak::channels
