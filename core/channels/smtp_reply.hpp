#pragma once
// What an SMTP server said, kept per attempt, and the TLS settings shared by every SMTP client
// of daybreak (the email senders' lanes and the alert sink). No I/O here except reading the
// environment in resolve_ca_file.
#include <cstddef>
#include <string>
#include <string_view>

namespace daybreak::channels {

/// The most of a server reply kept per attempt (delivery_attempts.error_detail).
inline constexpr std::size_t kMaxReplyBytes = 300;

/// A reply made safe to store: control characters become spaces, runs of spaces collapse, any
/// word containing "@" (an address, "<a@b>", "a@b.example") becomes "<address>", and the
/// result is cut to at most `max` bytes without splitting a UTF-8 character ("…" not added).
std::string bound_reply(std::string_view text, std::size_t max = kMaxReplyBytes);

/// Collects the server's replies from libcurl's debug callback (CURLINFO_HEADER_IN data is the
/// server's reply lines for SMTP). A reply is one or more lines "NNN-text" ended by "NNN text"
/// (RFC 5321 §4.2.1); last() is the latest complete reply, its lines joined by a space and bounded.
/// The answer to QUIT (221), which libcurl sends itself when it closes a session after a refusal,
/// is never "the latest reply": it explains nothing. Data may arrive in any pieces: a line is
/// taken once its LF has arrived.
class SmtpReplyCapture {
 public:
  void feed(std::string_view data);
  /// The latest complete reply, bounded (bound_reply); empty when none arrived yet.
  [[nodiscard]] const std::string& last() const { return last_; }
  /// The latest complete 4xx/5xx reply (the refusal a failed transaction ended on); empty when none.
  [[nodiscard]] const std::string& last_refusal() const { return refusal_; }
  /// The reply that explains a transaction ending with reply code `status` (CURLINFO_RESPONSE_CODE):
  /// the latest refusal when status is 4xx/5xx, else the latest reply.
  [[nodiscard]] const std::string& explaining(long status) const {
    return status >= 400 && !refusal_.empty() ? refusal_ : last_;
  }
  void clear();

 private:
  void line(std::string_view l);
  std::string partial_;  ///< bytes of a line whose LF has not arrived (bounded)
  std::string reply_;    ///< lines of the reply being read
  std::string last_;
  std::string refusal_;
};

/// The CA file to verify an SMTP relay with: `configured` when set, else $CURL_CA_BUNDLE, else
/// $SSL_CERT_FILE (the variables the curl and openssl tools read), else "" (libcurl's built-in
/// system store).
std::string resolve_ca_file(const std::string& configured);

}  // namespace daybreak::channels
