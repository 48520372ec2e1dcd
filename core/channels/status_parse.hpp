#pragma once
// Parsing of WhatsApp status webhooks and of spooled raw callback requests.
// Pure functions over text: no I/O, no clock. The payload is Meta's "Status messages webhook"
// (https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status/):
//
//   {"object":"whatsapp_business_account","entry":[{"id":"<WABA id>","changes":[{"field":"messages",
//    "value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":..,"phone_number_id":..},
//    "statuses":[{"id":"wamid..","status":"sent|delivered|read|failed","timestamp":"<unix seconds>",
//    "recipient_id":"<wa id>","biz_opaque_callback_data":"<our delivery id>",
//    "errors":[{"code":131026,"title":..,"message":..,"error_data":{"details":..}}],
//    "conversation":{..},"pricing":{..}}]}}]}]}
#include <string>
#include <string_view>
#include <vector>

#include "domain/result.hpp"
#include "domain/status_event.hpp"

namespace daybreak::channels {

/// The statuses of one webhook body, plus what was deliberately skipped.
struct ParsedStatusWebhook {
  std::vector<StatusUpdate> updates;
  int ignored = 0;  ///< statuses Meta may add that daybreak does not track (e.g. "played"), and non-"messages" changes
  /// Elements that could not be read, each on its own (the first kRejectsPerBodyMax of them).
  std::vector<StatusReject> rejected;
  int rejected_total = 0;  ///< all of them, including those past kRejectsPerBodyMax
  /// `value.errors` of "messages" changes: account-level errors (the first kRejectsPerBodyMax).
  std::vector<AccountError> account_errors;
};

/// Parses a webhook body. Inbound-message changes without `statuses` parse to no updates. Each
/// status, change and entry is read on its own: one that cannot be read is a StatusReject whose
/// reason names the field, e.g. `entry[0].changes[0].value.statuses[1].timestamp: expected unix
/// seconds, got "abc"`, and the others are still returned (Meta batches up to 1,000 statuses in
/// one POST and retries the same bytes, so one bad status must not cost the rest). Only a body
/// that is not JSON, not a whatsapp_business_account object or has no `entry` array is an Error.
Result<ParsedStatusWebhook> parse_status_webhook(std::string_view body);

/// One spooled callback request. The spool file format (docs: man/daybreak.1, "ingest"):
///
///   X-Hub-Signature-256: sha256=<hex>\n     header lines, "Name: value", CRLF or LF; names are
///   Other-Header: ignored\n                 case-insensitive; other headers are ignored
///   \n                                      one empty line
///   <raw body, byte for byte, to the end of the file>
///
/// The body is what was signed, so it is kept exactly: no trailing newline is added or removed.
struct SpoolRequest {
  std::string signature;  ///< the X-Hub-Signature-256 value, empty when the header is absent
  std::string body;
};

/// Splits a spool file's content; an Error when there is no empty line ending the headers or a
/// header line has no colon.
Result<SpoolRequest> parse_spool_request(std::string_view text);

/// Renders a request in the spool format (the receiver's --spool-dir mode writes these).
std::string format_spool_request(std::string_view signature, std::string_view body);

}  // namespace daybreak::channels
