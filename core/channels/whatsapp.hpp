#pragma once
// WhatsApp Cloud API adapter (Meta's documentation: "Send messages", "Error codes").
#include "channels/channel.hpp"

namespace daybreak::channels {

/// Sends template messages through POST {graph_base}/{version}/{phone_number_id}/messages.
class WhatsAppAdapter final : public Adapter {
 public:
  WhatsAppAdapter(const WhatsAppConfig& wa, const SenderConfig& sender);
  [[nodiscard]] Request build(const Message& m) const override;
  [[nodiscard]] SendResult classify(const Response& r) const override;

 private:
  WhatsAppConfig wa_;
  SenderConfig sender_;
  std::string url_;
  std::string auth_header_;
};

/// Classifies a WhatsApp error code; by error.code, never HTTP status.
FailureKind classify_whatsapp_error(long code, long subcode);

}  // namespace daybreak::channels
