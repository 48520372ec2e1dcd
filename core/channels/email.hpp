#pragma once
// Email channel: one RFC 5322 message per delivery, MIME multipart/alternative with a text and an
// HTML part, sent over SMTP by the transport (libcurl). The adapter only builds bytes and reads
// reply codes; it does no I/O and never reads the clock (the Date comes from Message::now).
#include <string>
#include <string_view>

#include "channels/channel.hpp"

namespace daybreak::channels {

/// Builds SMTP requests for one email sender ([[email.senders]]) and classifies SMTP replies:
/// 2xx accepted, 4xx retryable, 5xx permanent, 530/534/535/538 (authentication) credentials.
class EmailAdapter final : public Adapter {
 public:
  /// With `unsubscribe` enabled ([email] unsubscribe_url / unsubscribe_mailto), every message
  /// carries List-Unsubscribe (RFC 2369: the mailto: and https: URIs, each with the advisor's
  /// signed token, channels/signature.hpp) and, when there is a URL, List-Unsubscribe-Post:
  /// List-Unsubscribe=One-Click (RFC 8058 §3.1). The secret is read here, once.
  explicit EmailAdapter(const SenderConfig& sender, const UnsubscribeConfig& unsubscribe = {});
  [[nodiscard]] Request build(const Message& m) const override;
  [[nodiscard]] SendResult classify(const Response& r) const override;

 private:
  SenderConfig sender_;
  std::string password_;      ///< read from the configuration once, when the adapter is made
  std::string from_addr_;     ///< bare address of `from`, e.g. daybreak@example.com
  std::string from_header_;   ///< the From: value, display name encoded when needed
  std::string host_;          ///< right-hand side of Message-IDs: the domain of `from`
  UnsubscribeConfig unsubscribe_;
  std::string unsubscribe_secret_;  ///< read once; "" when unsubscribe is off
};

/// The List-Unsubscribe and List-Unsubscribe-Post header lines (each ending CRLF) for one
/// advisor, or "" when `cfg` is not enabled. Public so the exact bytes are unit-tested.
std::string list_unsubscribe_headers(const UnsubscribeConfig& cfg, std::string_view secret, std::string_view advisor_id);

/// Classifies a final SMTP reply code (RFC 5321 §4.2, RFC 4954 §6 for the AUTH codes).
FailureKind classify_smtp_reply(long code);

/// The whole classification of an SMTP transaction (EmailAdapter::classify): the reply code,
/// curl's account and the server's reply line (Response::reply) in error_detail, certificate
/// failures as credentials with certificate_failure set.
SendResult classify_smtp_response(const Response& r);

// Encoding helpers, public so their edge cases are unit-tested on their own.

/// Quoted-printable (RFC 2045 §6.7) of UTF-8 text: "\n", "\r\n" and "\r" become CRLF hard line
/// breaks, lines are soft-broken at 76 characters, "=" / non-ASCII / trailing white space / a
/// "." starting a line are encoded.
std::string quoted_printable(std::string_view text);

/// A header value safe to send: control characters (CR, LF, tabs...) become spaces; when the
/// result is not plain printable ASCII, or contains "=?", it becomes RFC 2047 "B" encoded-words
/// of at most 75 characters, folded onto continuation lines. `used` is how many characters of
/// the first line the header name already takes ("Subject: " = 9).
std::string encode_header_text(std::string_view text, std::size_t used);

/// A display name for From/To: a quoted string when ASCII, RFC 2047 encoded-words otherwise.
std::string encode_display_name(std::string_view name);

/// RFC 5322 §3.3 date in UTC, e.g. "Fri, 27 Nov 2026 00:30:00 +0000".
std::string rfc5322_date(Millis t);

/// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string html_escape(std::string_view s);

}  // namespace daybreak::channels
