#include "channels/channel.hpp"

#include <curl/curl.h>

#include "channels/email.hpp"
#include "channels/webhook.hpp"
#include "channels/whatsapp.hpp"

namespace daybreak::channels {

std::unique_ptr<Adapter> make_adapter(const Config& cfg, const SenderConfig& sender) {
  switch (sender.channel) {
    case Channel::whatsapp:
      return std::make_unique<WhatsAppAdapter>(cfg.whatsapp, sender);
    case Channel::email:
      return std::make_unique<EmailAdapter>(sender, cfg.unsubscribe);
    case Channel::webhook:
      return std::make_unique<WebhookAdapter>(sender);
  }
  throw ConfigError("sender \"" + sender.id + "\": channel " + std::string(to_string(sender.channel)) +
                    " is not supported by this build");
}

bool is_certificate_failure(int code) {
  switch (static_cast<CURLcode>(code)) {
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return true;
    default:
      return false;
  }
}

SendResult classify_transport_failure(const Response& r) {
  SendResult out;
  out.error_code = "curl:" + std::to_string(r.transport_code);
  out.error_detail = r.transport_error;
  // A failure after the request left (a timeout waiting for the answer, a reset mid-response)
  // may have been acted on by the provider: uncertain, reconciled before any resend.
  out.kind = r.request_may_have_arrived ? FailureKind::uncertain : FailureKind::retryable;
  // The server's certificate does not verify (or the CA file cannot be read): no request through
  // this sender can succeed until someone fixes the trust store, the certificate or the path
  // (an intercepting proxy). Nothing was sent (the handshake comes before the request), so the
  // delivery is not uncertain; the dispatcher pauses the sender with its breaker open.
  if (is_certificate_failure(r.transport_code)) {
    out.kind = FailureKind::credentials;
    out.certificate_failure = true;
  }
  return out;
}

}  // namespace daybreak::channels
