#include "channels/webhook.hpp"

#include <nlohmann/json.hpp>

#include "channels/signature.hpp"

namespace daybreak::channels {
namespace {

/// Unix seconds of a millisecond instant, rounding down also before 1970.
long long unix_seconds(Millis ms) { return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); }

/// A short, single-line excerpt of a receiver's answer for the attempt history.
std::string excerpt(const std::string& body) {
  constexpr std::size_t kMax = 200;  // enough to name the problem; the ledger is not a log store
  std::string out;
  for (char c : body.substr(0, kMax)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  return out;
}

}  // namespace

WebhookAdapter::WebhookAdapter(const SenderConfig& sender) : sender_(sender), signing_secret_(sender.signing_secret.value()) {}

std::string webhook_signature(const std::string& secret, long long timestamp, const std::string& body) {
  return "sha256=" + hmac_sha256_hex(secret, std::to_string(timestamp) + "." + body);
}

Request WebhookAdapter::build(const Message& m) const {
  nlohmann::json payload = {
      {"delivery_id", m.delivery_id},
      {"attempt", m.attempt},
      {"advisor_id", m.advisor_id},
      {"content_id", m.content_id},
      {"title", m.title},
      {"body", m.body},
      {"media_url", m.media_url.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.media_url)},
      {"language", m.language},
  };
  Request r;
  r.kind = Request::Kind::http;
  r.url = sender_.endpoint;
  // Invalid UTF-8 is replaced rather than thrown: one bad content byte must not stop a send.
  r.body = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  long long ts = unix_seconds(m.now);
  r.headers = {
      "Content-Type: application/json",
      "X-Daybreak-Timestamp: " + std::to_string(ts),
      "X-Daybreak-Signature: " + webhook_signature(signing_secret_, ts, r.body),
      // The same on every attempt: a receiver can drop a resend it already has (a retry after
      // a timeout may repeat a request that did arrive).
      "X-Daybreak-Delivery: " + std::to_string(m.delivery_id),
  };
  r.connect_timeout_ms = sender_.connect_timeout_ms;
  r.timeout_ms = sender_.request_timeout_ms;
  r.message_id = std::to_string(m.delivery_id);
  return r;
}

FailureKind classify_webhook_status(long status) {
  if (status == 429) return FailureKind::sender_rate_limited;
  if (status == 401 || status == 403) return FailureKind::credentials;  // the secret or the endpoint's key is wrong
  if (status == 408 || (status >= 500 && status < 600)) return FailureKind::retryable;
  return FailureKind::permanent;  // other 4xx (and 1xx/3xx: redirects are not followed for a signed POST)
}

SendResult WebhookAdapter::classify(const Response& r) const {
  if (!r.transport_ok) return classify_transport_failure(r);
  SendResult out;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  bool obj = !j.is_discarded() && j.is_object();
  if (r.status >= 200 && r.status < 300) {
    out.accepted = true;
    out.provider_message_id = r.message_id;
    if (obj) {
      if (auto id = j.find("id"); id != j.end()) {
        if (id->is_string() && !id->get<std::string>().empty()) out.provider_message_id = id->get<std::string>();
        if (id->is_number_integer()) out.provider_message_id = std::to_string(id->get<long long>());
      }
    }
    return out;
  }
  out.kind = classify_webhook_status(r.status);
  out.error_code = "http:" + std::to_string(r.status);
  out.error_detail = excerpt(r.body);
  if (obj) {
    for (const char* key : {"error", "message"}) {
      if (auto e = j.find(key); e != j.end() && e->is_string()) {
        out.error_detail = excerpt(e->get<std::string>());
        break;
      }
    }
  }
  if (out.kind == FailureKind::sender_rate_limited) {
    // Retry-After when the receiver gave one, else a second (as for WhatsApp's rate limits).
    out.retry_after_ms = r.retry_after_ms > 0 ? r.retry_after_ms : 1000;
  } else if (out.kind == FailureKind::retryable) {
    out.retry_after_ms = r.retry_after_ms;  // 503 + Retry-After: the receiver knows when it is back
  }
  return out;
}

}  // namespace daybreak::channels
