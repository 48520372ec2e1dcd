#pragma once
// The channel contract. An adapter turns a message into a transport-neutral
// request and classifies the transport's response; it never touches the database and does no
// I/O itself, so its exact requests and its classification are unit-tested without a network.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "domain/retry.hpp"
#include "domain/types.hpp"

namespace daybreak::channels {

/// What to send: one delivery's content, addressed for one channel.
struct Message {
  std::int64_t delivery_id = 0;
  int attempt = 1;
  std::string to;  ///< E.164 phone, email address, or webhook subject
  std::string advisor_id;
  std::string advisor_name;
  std::string language;          ///< the advisor's
  std::string content_language;  ///< the item's (its text is in it): picks the WhatsApp template; empty = `language`
  std::string content_id;
  std::string title;
  std::string body;
  std::string media_url;
  Millis now = 0;  ///< when the send is built, from the dispatcher's Clock: the email Date header and
                   ///< the webhook timestamp (0 = unknown: no Date header, timestamp 0)
};

/// A request for the transport: HTTP(S) or SMTP, built by an adapter.
struct Request {
  enum class Kind { http, smtp } kind = Kind::http;
  std::string url;
  std::vector<std::string> headers;  ///< "Name: value"
  std::string body;                  ///< HTTP body, or the whole RFC 5322 message for SMTP
  std::string mail_from;             ///< SMTP envelope sender
  std::vector<std::string> rcpt;     ///< SMTP envelope recipients
  std::string username;
  std::string password;
  bool starttls = false;  ///< SMTP on smtp://: require STARTTLS (CURLUSESSL_ALL); smtps:// is TLS anyway
  long connect_timeout_ms = 2000;
  long timeout_ms = 10000;
  /// SMTP: the sender whose own worker threads run it (channels/smtp_lane.hpp), never the shared
  /// HTTP loop; `concurrency` of them, each with its own connection. `ca_file`: PEM CA file that
  /// verifies the relay (empty: resolve_ca_file's fallbacks).
  std::string lane;
  int concurrency = 1;
  std::string ca_file;
  /// An id the adapter gave this message (the SMTP Message-ID, the webhook delivery id); the
  /// transport copies it into the Response so classify() can report it as the provider's id.
  std::string message_id;
};

/// What the transport saw.
struct Response {
  bool transport_ok = false;      ///< a complete response arrived
  int transport_code = 0;         ///< curl's code when !transport_ok
  std::string transport_error;
  bool request_may_have_arrived = false;  ///< the request left before the failure (→ uncertain)
  long status = 0;                ///< HTTP status or final SMTP reply code
  std::string body;
  Millis latency_ms = 0;
  Millis retry_after_ms = 0;  ///< HTTP Retry-After (seconds or a date, as curl parses it), 0 when none
  std::string message_id;     ///< copied from Request::message_id
  /// SMTP: the last reply the server sent in this session (its lines joined, control characters
  /// removed, addresses masked, at most kMaxReplyBytes: channels/smtp_reply.hpp); empty when none
  std::string reply;
};

/// Outcome of a send, classified.
struct SendResult {
  FailureKind kind = FailureKind::retryable;
  bool accepted = false;
  std::string provider_message_id;
  std::string error_code;    ///< provider's code, e.g. "131026", or "curl:28"
  std::string error_detail;  ///< provider's message (no addresses)
  Millis retry_after_ms = 0; ///< provider's hint, 0 when none
  ErrorScope scope = ErrorScope::message;  ///< what the error is about (WhatsApp: docs/whatsapp-errors.md)
  bool unknown_code = false;  ///< a provider code the adapter's error table does not know (cautious default taken)
  Millis pause_ms = 0;        ///< sender_blocked: how long the number (or the account) is paused
  std::string trace_id;       ///< the provider's trace id of an error answer (WhatsApp fbtrace_id)
  bool held_for_quality = false;  ///< accepted, with WhatsApp message_status held_for_quality_assessment
  /// The server's certificate could not be verified (or the CA file could not be read): the
  /// sender is misconfigured or someone is in the path; kind is credentials and the dispatcher
  /// opens the sender's breaker and raises certificate_failure instead of retrying per message.
  bool certificate_failure = false;
};

/// One channel's adapter, bound to one sender account.
class Adapter {
 public:
  virtual ~Adapter() = default;
  [[nodiscard]] virtual Request build(const Message& m) const = 0;
  [[nodiscard]] virtual SendResult classify(const Response& r) const = 0;
};

/// The adapter for a sender of the given channel; reads the sender's secret (token, password or
/// signing secret). Throws ConfigError when the channel is unsupported or the secret cannot be read.
std::unique_ptr<Adapter> make_adapter(const Config& cfg, const SenderConfig& sender);

/// libcurl codes that mean the peer's certificate (or our trust store) is the problem, not the
/// network or the message: retrying one message cannot help (curl's libcurl-errors(3):
/// CURLE_SSL_CERTPROBLEM 58, CURLE_PEER_FAILED_VERIFICATION 60, CURLE_SSL_CACERT_BADFILE 77,
/// CURLE_SSL_CRL_BADFILE 82, CURLE_SSL_ISSUER_ERROR 83, CURLE_SSL_PINNEDPUBKEYNOTMATCH 90,
/// CURLE_SSL_INVALIDCERTSTATUS 91).
bool is_certificate_failure(int curl_code);

/// Maps a curl failure to a SendResult (shared by every adapter). A certificate failure
/// (is_certificate_failure) is the sender's, not the message's: kind credentials with
/// certificate_failure set, on every channel.
SendResult classify_transport_failure(const Response& r);

}  // namespace daybreak::channels
