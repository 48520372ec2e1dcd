#include "domain/content_check.hpp"

#include <cctype>

namespace daybreak {
namespace {

std::optional<std::string> param_problem(std::string_view field, std::string_view text, std::size_t max_chars) {
  std::string f(field);
  if (text.empty()) return f + " is empty";
  if (!is_valid_utf8(text)) return f + " is not valid UTF-8";
  if (std::size_t n = utf8_length(text); n > max_chars) {
    return f + " is " + std::to_string(n) + " characters, over the WhatsApp limit of " + std::to_string(max_chars);
  }
  std::size_t spaces = 0;
  for (char ch : text) {
    if (ch == '\n' || ch == '\r' || ch == '\t') return f + " contains a newline or tab (not allowed in a template parameter)";
    spaces = ch == ' ' ? spaces + 1 : 0;
    if (spaces > 4) return f + " contains more than four consecutive spaces (not allowed in a template parameter)";
  }
  return std::nullopt;
}

}  // namespace

bool is_http_url(std::string_view url) {
  std::string_view rest;
  if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else if (url.substr(0, 8) == "https://") {
    rest = url.substr(8);
  } else {
    return false;
  }
  for (unsigned char ch : url) {
    if (ch <= 0x20 || ch == 0x7f) return false;
  }
  std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) return false;  // credentials in a media URL: refuse
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
      if (port.empty()) return false;
    }
  } else {
    if (std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty() || host.front() == '.' || host.front() == '-' || host.back() == '-') return false;
    for (unsigned char ch : host) {
      if (!std::isalnum(ch) && ch != '.' && ch != '-') return false;
    }
  }
  if (port.size() > 5) return false;
  for (unsigned char ch : port) {
    if (!std::isdigit(ch)) return false;
  }
  return true;
}

std::optional<std::string> content_send_problem(const Content& c, const std::string& date) {
  if (c.withdrawn) return "content withdrawn";
  if (!c.valid_from.empty() && date < c.valid_from) return "content not valid until " + c.valid_from;
  if (!c.valid_until.empty() && date > c.valid_until) return "content expired on " + c.valid_until;
  // The title is the header only when there is no media; with media it is still a body parameter.
  if (auto p = param_problem("title", c.title, c.media_url.empty() ? kMaxTitleChars : kMaxSendBodyChars)) return p;
  if (auto p = param_problem("body", c.body, kMaxSendBodyChars)) return p;
  if (!c.media_url.empty() && !is_http_url(c.media_url)) return "media_url \"" + c.media_url + "\" is not a well-formed http(s) URL";
  return std::nullopt;
}

}  // namespace daybreak
