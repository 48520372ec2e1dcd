#include "channels/smtp_reply.hpp"

#include <curl/curl.h>

#include <cctype>
#include <cstdlib>

namespace daybreak::channels {
namespace {

constexpr std::size_t kMaxPartialLine = 4096;  ///< a line longer than this is cut (RFC 5321 allows 512)

bool reply_code_at(std::string_view l) {
  return l.size() >= 3 && std::isdigit(static_cast<unsigned char>(l[0])) && std::isdigit(static_cast<unsigned char>(l[1])) &&
         std::isdigit(static_cast<unsigned char>(l[2]));
}

}  // namespace

std::string bound_reply(std::string_view text, std::size_t max) {
  // Words, with controls as separators.
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (static_cast<unsigned char>(text[i]) <= 0x20 || text[i] == 0x7f)) ++i;
    std::size_t b = i;
    while (i < text.size() && !(static_cast<unsigned char>(text[i]) <= 0x20 || text[i] == 0x7f)) ++i;
    if (b == i) break;
    std::string_view w = text.substr(b, i - b);
    if (!out.empty()) out += ' ';
    if (w.find('@') != std::string_view::npos) {
      out += "<address>";
    } else {
      out += w;
    }
  }
  if (out.size() <= max) return out;
  std::size_t cut = max;
  // Back off continuation bytes (10xxxxxx) so the cut falls before a character, never inside.
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  out.resize(cut);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void SmtpReplyCapture::feed(std::string_view data) {
  for (char c : data) {
    if (c == '\n') {
      line(partial_);
      partial_.clear();
    } else if (partial_.size() < kMaxPartialLine) {
      partial_ += c;
    }
  }
}

void SmtpReplyCapture::line(std::string_view l) {
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  if (!reply_code_at(l)) return;  // not a reply line (curl only passes replies here; be strict)
  const bool more = l.size() > 3 && l[3] == '-';
  if (!reply_.empty()) reply_ += ' ';
  if (reply_.size() < 2 * kMaxReplyBytes) {
    // Continuation lines repeat the code: keep it once ("250-a", "250 b" → "250 a b").
    reply_ += reply_.empty() ? std::string(l.substr(0, 3)) + (l.size() > 4 ? " " + std::string(l.substr(4)) : "")
                             : std::string(l.size() > 4 ? l.substr(4) : std::string_view());
  }
  if (more) return;
  if (reply_.compare(0, 3, "221") != 0) {
    last_ = bound_reply(reply_);
    if (reply_[0] == '4' || reply_[0] == '5') refusal_ = last_;
  }
  reply_.clear();
}

void SmtpReplyCapture::clear() {
  partial_.clear();
  reply_.clear();
  last_.clear();
  refusal_.clear();
}

std::string resolve_ca_file(const std::string& configured) {
  if (!configured.empty()) return configured;
  for (const char* var : {"CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') return v;
  }
  return "";
}

}  // namespace daybreak::channels
