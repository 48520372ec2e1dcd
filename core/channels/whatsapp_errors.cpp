#include "channels/whatsapp_errors.hpp"

#include <array>

namespace daybreak::channels {
namespace {

using A = WhatsAppAction;
using K = FailureKind;
using S = ErrorScope;

// Meta's "WhatsApp error codes" reference (Cloud API support pages):
// https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
// Each row below is one code of that page; its title is Meta's. Scope and action are daybreak's
// reading of Meta's description and recommended handling (docs/whatsapp-errors.md says why).
constexpr std::array kWhatsAppErrorRows{
    // --- Authorization errors (Meta: "Authorization errors") ---
    WhatsAppErrorRule{0, 0, -1, S::account, A::credentials, K::credentials, 0, "AuthException"},
    WhatsAppErrorRule{3, 0, -1, S::account, A::credentials, K::credentials, 0, "API Method"},
    WhatsAppErrorRule{10, 0, -1, S::account, A::credentials, K::credentials, 0, "Permission Denied"},
    WhatsAppErrorRule{190, 0, -1, S::account, A::credentials, K::credentials, 0, "Access token has expired"},
    WhatsAppErrorRule{200, 299, -1, S::account, A::credentials, K::credentials, 0, "API Permission"},
    // --- Throttling errors (Meta: "Throttling errors") ---
    WhatsAppErrorRule{4, 0, -1, S::account, A::rate_limit, K::sender_rate_limited, 1000, "API Too Many Calls"},
    WhatsAppErrorRule{80007, 0, -1, S::account, A::rate_limit, K::sender_rate_limited, 1000, "Rate limit issues"},
    WhatsAppErrorRule{130429, 0, -1, S::phone_number, A::rate_limit, K::sender_rate_limited, 1000, "Rate limit hit"},
    // Spam rate limit: the number sends more than Meta lets it (unwanted messages); not a
    // second's wait: the number is out until Meta lifts it.
    WhatsAppErrorRule{131048, 0, -1, S::phone_number, A::pause_number, K::sender_blocked, 0, "Spam rate limit hit"},
    // Pair rate limit: about one message every 6 s from one business number to one user.
    WhatsAppErrorRule{131056, 0, -1, S::advisor, A::retry, K::recipient_throttled, 6000,
                      "(Business Account, Consumer Account) pair rate limit hit"},
    // --- Integrity errors (Meta: "Integrity errors") ---
    WhatsAppErrorRule{368, 0, -1, S::account, A::stop_account, K::sender_blocked, 0,
                      "Temporarily blocked for policies violations"},
    WhatsAppErrorRule{130497, 0, -1, S::advisor, A::next_channel, K::permanent, 0,
                      "Business account is restricted from messaging users in this country"},
    WhatsAppErrorRule{131031, 0, -1, S::account, A::stop_account, K::sender_blocked, 0, "Account has been locked"},
    // --- Other errors (Meta: "Other errors") ---
    WhatsAppErrorRule{1, 0, -1, S::message, A::retry, K::retryable, 0, "API Unknown"},
    WhatsAppErrorRule{2, 0, -1, S::message, A::retry, K::retryable, 0, "API Service"},
    WhatsAppErrorRule{33, 0, -1, S::phone_number, A::pause_number, K::sender_blocked, 0, "Parameter value is not valid"},
    WhatsAppErrorRule{100, 0, -1, S::message, A::next_channel, K::permanent, 0, "Invalid parameter"},
    WhatsAppErrorRule{130472, 0, -1, S::advisor, A::next_channel, K::permanent, 0, "User's number is part of an experiment"},
    WhatsAppErrorRule{131000, 0, -1, S::message, A::retry, K::retryable, 0, "Something went wrong"},
    WhatsAppErrorRule{131005, 0, -1, S::account, A::credentials, K::credentials, 0, "Access denied"},
    WhatsAppErrorRule{131008, 0, -1, S::message, A::next_channel, K::permanent, 0, "Required parameter is missing"},
    WhatsAppErrorRule{131009, 0, -1, S::message, A::next_channel, K::permanent, 0, "Parameter value is not valid"},
    WhatsAppErrorRule{131016, 0, -1, S::message, A::retry, K::retryable, 0, "Service unavailable"},
    WhatsAppErrorRule{131021, 0, -1, S::advisor, A::next_channel, K::permanent, 0, "Recipient cannot be sender"},
    WhatsAppErrorRule{131026, 0, -1, S::advisor, A::next_channel, K::permanent, 0, "Message Undeliverable"},
    WhatsAppErrorRule{131037, 0, -1, S::phone_number, A::pause_number, K::sender_blocked, 0,
                      "WhatsApp provided number needs display name approval before message can be sent"},
    WhatsAppErrorRule{131042, 0, -1, S::account, A::stop_account, K::sender_blocked, 0, "Business eligibility payment issue"},
    WhatsAppErrorRule{131045, 0, -1, S::phone_number, A::pause_number, K::sender_blocked, 0, "Incorrect certificate"},
    WhatsAppErrorRule{131047, 0, -1, S::advisor, A::next_channel, K::permanent, 0, "Re-engagement message"},
    WhatsAppErrorRule{131049, 0, -1, S::advisor, A::next_channel, K::permanent, 0,
                      "Meta chose not to deliver (per-user marketing limit)"},
    WhatsAppErrorRule{131050, 0, -1, S::advisor, A::next_channel, K::permanent, 0,
                      "Unable to deliver the message: the user stopped marketing messages"},
    WhatsAppErrorRule{131051, 0, -1, S::message, A::next_channel, K::permanent, 0, "Unsupported message type"},
    // The content's media cannot be uploaded: the content cannot go out as it is.
    WhatsAppErrorRule{131053, 0, -1, S::template_, A::template_fallback, K::permanent, 0, "Media upload error"},
    WhatsAppErrorRule{131057, 0, -1, S::account, A::retry, K::retryable, 0, "Account in maintenance mode"},
    WhatsAppErrorRule{132000, 0, -1, S::template_, A::template_fallback, K::permanent, 0,
                      "Template Param Count Mismatch"},
    WhatsAppErrorRule{132001, 0, -1, S::template_, A::template_fallback, K::permanent, 0, "Template does not exist"},
    WhatsAppErrorRule{132005, 0, -1, S::template_, A::template_fallback, K::permanent, 0, "Template Hydrated Text Too Long"},
    WhatsAppErrorRule{132007, 0, -1, S::template_, A::template_fallback, K::permanent, 0,
                      "Template Format Character Policy Violated"},
    WhatsAppErrorRule{132012, 0, -1, S::template_, A::template_fallback, K::permanent, 0,
                      "Template Parameter Format Mismatch"},
    WhatsAppErrorRule{132015, 0, -1, S::template_, A::template_fallback, K::permanent, 0, "Template is Paused"},
    WhatsAppErrorRule{132016, 0, -1, S::template_, A::template_fallback, K::permanent, 0, "Template is Disabled"},
    WhatsAppErrorRule{132068, 0, -1, S::template_, A::template_fallback, K::permanent, 0, "Flow is in blocked state"},
    WhatsAppErrorRule{132069, 0, -1, S::template_, A::template_fallback, K::permanent, 0, "Flow is in throttled state"},
    WhatsAppErrorRule{133000, 0, -1, S::phone_number, A::pause_number, K::sender_blocked, 0, "Incomplete Deregistration"},
    WhatsAppErrorRule{133004, 0, -1, S::message, A::retry, K::retryable, 0, "Server Temporarily Unavailable"},
    WhatsAppErrorRule{133006, 0, -1, S::phone_number, A::pause_number, K::sender_blocked, 0,
                      "Phone number re-verification needed"},
    WhatsAppErrorRule{133010, 0, -1, S::phone_number, A::pause_number, K::sender_blocked, 0,
                      "Phone number Not Registered"},
};

constexpr WhatsAppErrorRule kUnknownWhatsAppError{-1, 0, -1, S::message, A::retry, K::retryable, 0, "unknown code"};

}  // namespace

std::string_view to_string(WhatsAppAction a) {
  switch (a) {
    case A::retry: return "retry";
    case A::rate_limit: return "rate_limit";
    case A::next_channel: return "next_channel";
    case A::template_fallback: return "template_fallback";
    case A::pause_number: return "pause_number";
    case A::stop_account: return "stop_account";
    case A::credentials: return "credentials";
  }
  return "?";
}

std::span<const WhatsAppErrorRule> whatsapp_error_table() { return kWhatsAppErrorRows; }

const WhatsAppErrorRule* find_whatsapp_error(long code, long subcode) {
  const WhatsAppErrorRule* any = nullptr;
  for (const auto& r : kWhatsAppErrorRows) {
    const bool in = r.code_last > r.code ? code >= r.code && code <= r.code_last : code == r.code;
    if (!in) continue;
    if (r.subcode >= 0 && r.subcode == subcode) return &r;
    if (r.subcode < 0 && !any) any = &r;
  }
  return any;
}

const WhatsAppErrorRule& whatsapp_unknown_error_rule() { return kUnknownWhatsAppError; }

}  // namespace daybreak::channels
