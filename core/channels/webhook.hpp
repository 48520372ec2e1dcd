#pragma once
// Webhook / social channel: an HTTPS POST of a signed JSON payload to an integration's endpoint
// (a social-publishing bridge, a CRM). The receiver checks the signature and the timestamp:
//
//   X-Daybreak-Timestamp: <unix seconds>
//   X-Daybreak-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" under the signing secret>
//
// Signing the timestamp with the body lets a receiver refuse replays older than a few minutes.
#include <string>

#include "channels/channel.hpp"

namespace daybreak::channels {

/// Builds signed POSTs for one webhook sender ([[webhook.senders]]) and classifies HTTP answers:
/// 2xx accepted, 429 sender rate-limited (Retry-After honoured), 408/5xx retryable, 401/403
/// credentials, any other status permanent.
class WebhookAdapter final : public Adapter {
 public:
  explicit WebhookAdapter(const SenderConfig& sender);
  [[nodiscard]] Request build(const Message& m) const override;
  [[nodiscard]] SendResult classify(const Response& r) const override;

 private:
  SenderConfig sender_;
  std::string signing_secret_;  ///< read from the configuration once, when the adapter is made
};

/// The X-Daybreak-Signature value for a body sent at `timestamp` (unix seconds): "sha256=<hex>".
std::string webhook_signature(const std::string& secret, long long timestamp, const std::string& body);

/// Classifies an HTTP status from a webhook receiver (see WebhookAdapter).
FailureKind classify_webhook_status(long status);

}  // namespace daybreak::channels
