#include "channels/email.hpp"

#include "channels/signature.hpp"
#include "channels/smtp_reply.hpp"

#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <vector>

namespace daybreak::channels {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

std::string base64(std::string_view in) {
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += {kB64[(v >> 18) & 63], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], kB64[v & 63]};
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {kB64[(v >> 18) & 63], kB64[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {kB64[(v >> 18) & 63], kB64[(v >> 12) & 63], kB64[(v >> 6) & 63], '='};
  }
  return out;
}

/// Control characters (a CR/LF would start a new header: injection) become spaces.
std::string without_controls(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  return out;
}

bool printable_ascii(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) return false;
  }
  return true;
}

/// Length of the UTF-8 sequence a lead byte starts (1 for a stray byte, so nothing is lost).
std::size_t utf8_len(unsigned char lead) {
  if (lead >= 0xf0 && lead < 0xf8) return 4;
  if (lead >= 0xe0) return lead < 0xf0 ? 3 : 1;
  if (lead >= 0xc0) return 2;
  return 1;
}

/// RFC 2047 "B" encoded-words, never splitting a UTF-8 character (§5: each word must decode
/// on its own). 39 bytes → 52 base64 characters → a 64-character word, so even the first word
/// after "Subject: " stays within the 78-character line RFC 5322 recommends.
std::string encoded_words(std::string_view s) {
  constexpr std::size_t kChunk = 39;
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t end = i;
    while (end < s.size()) {
      std::size_t n = std::min(utf8_len(static_cast<unsigned char>(s[end])), s.size() - end);
      if (end + n - i > kChunk && end > i) break;
      end += n;
    }
    if (!out.empty()) out += "\r\n ";  // folding white space between words is not displayed
    out += "=?UTF-8?B?" + base64(s.substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

/// The bare address inside "Name <addr>" (or the whole value), without characters that could
/// break out of an address: controls, spaces, angle brackets.
std::string bare_address(std::string_view v) {
  auto lt = v.find('<');
  auto gt = v.rfind('>');
  if (lt != std::string_view::npos && gt != std::string_view::npos && gt > lt) v = v.substr(lt + 1, gt - lt - 1);
  std::string out;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '<' || c == '>') continue;
    out += c;
  }
  return out;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

std::string mailbox(std::string_view display, const std::string& addr) {
  std::string name = encode_display_name(display);
  return name.empty() ? "<" + addr + ">" : name + " <" + addr + ">";
}

std::string text_part(const Message& m) {
  std::string t;
  if (!m.advisor_name.empty()) t += "Hello " + m.advisor_name + ",\n\n";
  t += m.title + "\n\n" + m.body + "\n";
  if (!m.media_url.empty()) t += "\n" + m.media_url + "\n";
  return t;
}

std::string html_part(const Message& m) {
  std::string body = html_escape(m.body);
  std::string with_breaks;
  for (char c : body) {
    if (c == '\r') continue;
    if (c == '\n') with_breaks += "<br>\n";
    else with_breaks += c;
  }
  std::string h = "<!DOCTYPE html>\n<html" + (m.language.empty() ? std::string() : " lang=\"" + html_escape(m.language) + "\"") +
                  ">\n<head><meta charset=\"utf-8\"><title>" + html_escape(m.title) + "</title></head>\n<body>\n";
  if (!m.advisor_name.empty()) h += "<p>Hello " + html_escape(m.advisor_name) + ",</p>\n";
  h += "<h1>" + html_escape(m.title) + "</h1>\n<p>" + with_breaks + "</p>\n";
  if (!m.media_url.empty()) {
    std::string u = html_escape(m.media_url);
    // Only web links become links: anything else (javascript:, data:) is shown, never followed.
    if (m.media_url.rfind("https://", 0) == 0 || m.media_url.rfind("http://", 0) == 0) {
      h += "<p><a href=\"" + u + "\">" + u + "</a></p>\n";
    } else {
      h += "<p>" + u + "</p>\n";
    }
  }
  h += "</body>\n</html>\n";
  return h;
}

}  // namespace

std::string quoted_printable(std::string_view text) {
  std::string out;
  std::size_t col = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      out += "\r\n";
      col = 0;
      continue;
    }
    auto u = static_cast<unsigned char>(c);
    bool last = i + 1 == text.size() || text[i + 1] == '\r' || text[i + 1] == '\n';
    std::string tok;
    if ((c == ' ' || c == '\t') && !last) {
      tok = c;  // white space is literal except at the end of a line, where transports strip it
    } else if (u >= 33 && u <= 126 && c != '=') {
      tok = c;
    } else {
      tok = {'=', kHex[u >> 4], kHex[u & 15]};
    }
    // A non-final token must leave room for the soft break's "=" within 76 characters.
    if (col + tok.size() > (last ? 76u : 75u)) {
      out += "=\r\n";
      col = 0;
    }
    // A "." opening a line is encoded: SMTP gives a lone "." line meaning, and not every relay
    // dot-stuffs correctly.
    if (col == 0 && tok == ".") tok = "=2E";
    out += tok;
    col += tok.size();
  }
  return out;
}

std::string encode_header_text(std::string_view text, std::size_t used) {
  std::string clean = without_controls(text);
  if (printable_ascii(clean) && clean.find("=?") == std::string::npos && used + clean.size() <= 78) return clean;
  return encoded_words(clean);
}

std::string encode_display_name(std::string_view name) {
  std::string clean = trim(without_controls(name));
  if (clean.empty()) return "";
  if (printable_ascii(clean) && clean.find("=?") == std::string::npos) {
    std::string q = "\"";
    for (char c : clean) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  }
  return encoded_words(clean);
}

std::string rfc5322_date(Millis t) {
  using namespace std::chrono;
  sys_time<milliseconds> tp{milliseconds{t}};
  auto midnight = floor<days>(tp);
  year_month_day ymd{midnight};
  hh_mm_ss hms{floor<seconds>(tp - midnight)};
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d +0000", kDays[weekday{midnight}.c_encoding()],
                static_cast<unsigned>(ymd.day()), kMonths[static_cast<unsigned>(ymd.month()) - 1],
                static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string list_unsubscribe_headers(const UnsubscribeConfig& cfg, std::string_view secret, std::string_view advisor_id) {
  if (!cfg.enabled()) return "";
  const std::string token = unsubscribe_token(secret, advisor_id);
  std::vector<std::string> uris;
  // RFC 2369 §3.2: a list of angle-bracketed URIs, most preferred first; mailto: first, as
  // RFC 2369 shows it; the subject carries the token (it is URL-safe as it is).
  if (!cfg.mailto.empty()) uris.push_back("<mailto:" + without_controls(cfg.mailto) + "?subject=unsubscribe%20" + token + ">");
  if (!cfg.url_template.empty()) {
    std::string url = without_controls(cfg.url_template);
    for (auto p = url.find("{token}"); p != std::string::npos; p = url.find("{token}", p + token.size())) url.replace(p, 7, token);
    uris.push_back("<" + url + ">");
  }
  std::string h = "List-Unsubscribe: ";
  for (std::size_t i = 0; i < uris.size(); ++i) h += (i ? ",\r\n " : "") + uris[i];  // one URI per (folded) line
  h += "\r\n";
  // RFC 8058 §3.1: the one-click POST needs an HTTPS URI in List-Unsubscribe.
  if (!cfg.url_template.empty()) h += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
  return h;
}

EmailAdapter::EmailAdapter(const SenderConfig& sender, const UnsubscribeConfig& unsubscribe)
    : sender_(sender), password_(sender.password.value()), unsubscribe_(unsubscribe) {
  if (unsubscribe_.enabled()) unsubscribe_secret_ = unsubscribe_.secret.value();
  from_addr_ = bare_address(sender.from);
  auto lt = sender.from.find('<');
  std::string display = lt == std::string::npos ? "" : trim(std::string_view(sender.from).substr(0, lt));
  if (display.size() >= 2 && display.front() == '"' && display.back() == '"') display = display.substr(1, display.size() - 2);
  from_header_ = mailbox(display, from_addr_);
  auto at = from_addr_.rfind('@');
  host_ = at == std::string::npos || at + 1 == from_addr_.size() ? "daybreak.invalid" : from_addr_.substr(at + 1);
}

Request EmailAdapter::build(const Message& m) const {
  const std::string to = bare_address(m.to);
  const std::string id = std::to_string(m.delivery_id) + "." + std::to_string(m.attempt);
  // The boundary starts with "=_": that pair can never occur in quoted-printable text, where
  // "=" is always followed by two hex digits or a line break, so no part can contain it.
  const std::string boundary = "=_daybreak_" + id;
  // One Message-ID per delivery, the same on every attempt: a resend after a timeout or a crash
  // (the first copy may have been taken) is the same message to the receiving side, which can
  // drop the duplicate by it (RFC 5322 3.6.4: the identifier names one message).
  const std::string message_id = "<daybreak." + std::to_string(m.delivery_id) + "@" + host_ + ">";

  std::string msg;
  if (m.now != 0) msg += "Date: " + rfc5322_date(m.now) + "\r\n";
  msg += "From: " + from_header_ + "\r\n";
  msg += "To: " + mailbox(m.advisor_name, to) + "\r\n";
  msg += "Subject: " + encode_header_text(m.title, 9) + "\r\n";
  msg += "Message-ID: " + message_id + "\r\n";
  msg += "X-Daybreak-Delivery: " + std::to_string(m.delivery_id) + "\r\n";
  msg += list_unsubscribe_headers(unsubscribe_, unsubscribe_secret_, m.advisor_id);
  if (!m.language.empty() && printable_ascii(m.language)) msg += "Content-Language: " + m.language + "\r\n";
  msg += "MIME-Version: 1.0\r\n";
  msg += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n";
  msg += "\r\n";
  msg += "--" + boundary + "\r\n";
  msg += "Content-Type: text/plain; charset=UTF-8\r\n";
  msg += "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
  msg += quoted_printable(text_part(m)) + "\r\n";
  msg += "--" + boundary + "\r\n";
  msg += "Content-Type: text/html; charset=UTF-8\r\n";
  msg += "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
  msg += quoted_printable(html_part(m)) + "\r\n";
  msg += "--" + boundary + "--\r\n";

  Request r;
  r.kind = Request::Kind::smtp;
  r.url = sender_.url;
  r.mail_from = "<" + from_addr_ + ">";
  r.rcpt = {"<" + to + ">"};
  r.body = std::move(msg);
  r.username = sender_.username;
  r.password = password_;
  r.starttls = sender_.starttls && sender_.url.rfind("smtp://", 0) == 0;
  r.connect_timeout_ms = sender_.connect_timeout_ms;
  r.timeout_ms = sender_.request_timeout_ms;
  r.message_id = message_id;
  r.lane = sender_.id;
  r.concurrency = sender_.concurrency;
  r.ca_file = sender_.ca_file;
  return r;
}

FailureKind classify_smtp_reply(long code) {
  switch (code) {
    case 530:  // Authentication required (RFC 4954 §6)
    case 534:  // Authentication mechanism is too weak
    case 535:  // Authentication credentials invalid
    case 538:  // Encryption required for requested authentication mechanism
      return FailureKind::credentials;
    default:
      break;
  }
  // RFC 5321 §4.2.1: 4yz transient negative completion (try again), 5yz permanent.
  if (code >= 500 && code < 600) return FailureKind::permanent;
  return FailureKind::retryable;
}

SendResult EmailAdapter::classify(const Response& r) const {
  return classify_smtp_response(r);
}

namespace {
/// curl's account and the server's own reply: "RCPT failed: 550; reply: 550 5.1.1 <address> …".
std::string with_reply(std::string detail, const std::string& reply) {
  if (reply.empty()) return detail;
  return detail.empty() ? "reply: " + reply : detail + "; reply: " + reply;
}
}  // namespace

SendResult classify_smtp_response(const Response& r) {
  if (!r.transport_ok) {
    SendResult out = classify_transport_failure(r);
    out.error_detail = with_reply(std::move(out.error_detail), r.reply);
    // STARTTLS is required but the server does not offer it: the sender is misconfigured (or
    // someone strips STARTTLS); retrying the message cannot help, pausing the sender does.
    if (r.transport_code == CURLE_USE_SSL_FAILED) out.kind = FailureKind::credentials;
    return out;
  }
  SendResult out;
  if (r.status >= 200 && r.status < 300) {
    out.accepted = true;
    out.provider_message_id = r.message_id;
    // The relay's answer to the final "." (often its queue id): kept with the attempt so the
    // message can be found in the relay's logs.
    out.error_detail = with_reply("", r.reply);
    return out;
  }
  out.kind = classify_smtp_reply(r.status);
  out.error_code = "smtp:" + std::to_string(r.status);
  // curl's account names the command that was refused ("RCPT failed: 550"), the reply the
  // server's reason ("5.7.26 … unauthenticated"); addresses in it are masked (bound_reply).
  out.error_detail = with_reply(r.transport_error, r.reply);
  return out;
}

}  // namespace daybreak::channels
