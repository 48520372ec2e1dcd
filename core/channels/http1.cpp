#include "channels/http1.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <string>

namespace daybreak::channels::http1 {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y)); });
}

bool icontains(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool parse_url(std::string_view url, Url& out) {
  out = Url{};
  if (url.size() >= 7 && iequals(url.substr(0, 7), "http://")) {
    url.remove_prefix(7);
  } else if (url.size() >= 8 && iequals(url.substr(0, 8), "https://")) {
    url.remove_prefix(8);
    out.tls = true;
    out.port = 443;
  } else {
    return false;
  }
  const auto hash = url.find('#');
  if (hash != std::string_view::npos) url = url.substr(0, hash);
  const auto slash = url.find_first_of("/?");
  std::string_view authority = url.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (out.target.front() == '?') out.target.insert(0, "/");
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return false;
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return false;
  if (!port.empty()) {
    int p = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p <= 0 || p > 65535) return false;
    out.port = p;
  }
  const bool default_port = out.port == (out.tls ? 443 : 80);
  const bool v6 = out.host.find(':') != std::string::npos;
  out.host_header = v6 ? "[" + out.host + "]" : out.host;
  if (!default_port) out.host_header += ":" + std::to_string(out.port);
  return true;
}

std::string request_head(const Url& u, const std::vector<std::string>& headers, std::size_t body_size) {
  std::string h;
  h.reserve(256);
  h += "POST ";
  h += u.target;
  h += " HTTP/1.1\r\nHost: ";
  h += u.host_header;
  h += "\r\nAccept: */*\r\n";
  for (const auto& line : headers) {
    const auto colon = line.find(':');
    if (colon != std::string::npos && trim(std::string_view(line).substr(colon + 1)).empty()) continue;
    h += line;
    h += "\r\n";
  }
  h += "Content-Length: ";
  h += std::to_string(body_size);
  h += "\r\n\r\n";
  return h;
}

void ResponseParser::keep(const char* p, std::size_t n) {
  if (body_.size() < kMaxBody) body_.append(p, std::min(n, kMaxBody - body_.size()));
}

ResponseParser::Result ResponseParser::parse_head(std::string_view head) {
  // Status line: HTTP/1.x SSS reason
  auto eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[8] != ' ') {
    error_ = "malformed status line";
    return Result::error;
  }
  const bool http10 = status_line.substr(5, 3) == "1.0";
  long code = 0;
  const auto [ptr, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, code);
  if (ec != std::errc() || ptr != status_line.data() + 12 || code < 100) {
    error_ = "malformed status code";
    return Result::error;
  }
  status_ = code;
  keep_alive_ = !http10;
  bool chunked = false;
  bool have_length = false;
  unsigned long long length = 0;
  retry_after_.clear();
  std::size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    auto end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      const auto [p, e] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (e != std::errc() || p != value.data() + value.size()) {
        error_ = "malformed Content-Length";
        return Result::error;
      }
      have_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = icontains(value, "chunked");
    } else if (iequals(name, "connection")) {
      if (icontains(value, "close")) keep_alive_ = false;
      else if (icontains(value, "keep-alive")) keep_alive_ = true;
    } else if (iequals(name, "retry-after")) {
      retry_after_ = std::string(value);
    }
  }
  if (status_ < 200) {  // 100 Continue and friends: the real answer follows
    state_ = State::head;
    return Result::more;
  }
  if (status_ == 204 || status_ == 304) {
    state_ = State::done;
  } else if (chunked) {
    state_ = State::chunk_size;
  } else if (have_length) {
    remaining_ = length;
    state_ = length == 0 ? State::done : State::body_length;
  } else {
    state_ = State::body_close;
    keep_alive_ = false;
  }
  return state_ == State::done ? Result::done : Result::more;
}

ResponseParser::Result ResponseParser::feed(const char* data, std::size_t n, std::size_t& used) {
  used = 0;
  if (n > 0) any_bytes_ = true;
  while (used < n) {
    const char* p = data + used;
    const std::size_t avail = n - used;
    switch (state_) {
      case State::head: {
        const std::size_t before = line_.size();
        line_.append(p, avail);
        const auto at = line_.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
        if (at == std::string::npos) {
          used = n;
          if (line_.size() > kMaxHead) {
            error_ = "response head too large";
            return Result::error;
          }
          return Result::more;
        }
        const std::size_t head_len = at + 4;
        used += head_len - before;
        std::string head = std::move(line_);
        line_.clear();
        head.resize(head_len);
        const Result r = parse_head(head);
        if (r != Result::more) return r;
        break;
      }
      case State::body_length: {
        const std::size_t take = static_cast<std::size_t>(std::min<unsigned long long>(remaining_, avail));
        keep(p, take);
        used += take;
        remaining_ -= take;
        if (remaining_ == 0) {
          state_ = State::done;
          return Result::done;
        }
        break;
      }
      case State::chunk_size:
      case State::trailers:
      case State::chunk_crlf: {
        const auto* nl = static_cast<const char*>(std::memchr(p, '\n', avail));
        if (!nl) {
          line_.append(p, avail);
          used = n;
          if (line_.size() > 4096) {
            error_ = "malformed chunked encoding";
            return Result::error;
          }
          return Result::more;
        }
        line_.append(p, static_cast<std::size_t>(nl - p));
        used += static_cast<std::size_t>(nl - p) + 1;
        std::string_view line = trim(line_);
        if (state_ == State::chunk_crlf) {
          if (!line.empty()) {
            error_ = "malformed chunked encoding";
            return Result::error;
          }
          state_ = State::chunk_size;
        } else if (state_ == State::trailers) {
          if (line.empty()) {
            line_.clear();
            state_ = State::done;
            return Result::done;
          }
        } else {
          const auto semi = line.find(';');
          std::string_view hex = trim(line.substr(0, semi));
          unsigned long long size = 0;
          const auto [q, e] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
          if (hex.empty() || e != std::errc() || q != hex.data() + hex.size()) {
            error_ = "malformed chunk size";
            return Result::error;
          }
          remaining_ = size;
          state_ = size == 0 ? State::trailers : State::chunk_data;
        }
        line_.clear();
        break;
      }
      case State::chunk_data: {
        const std::size_t take = static_cast<std::size_t>(std::min<unsigned long long>(remaining_, avail));
        keep(p, take);
        used += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::chunk_crlf;
        break;
      }
      case State::body_close:
        keep(p, avail);
        used = n;
        return Result::more;
      case State::done:
        return Result::done;
    }
  }
  return state_ == State::done ? Result::done : Result::more;
}

ResponseParser::Result ResponseParser::eof() {
  if (state_ == State::body_close || state_ == State::done) {
    state_ = State::done;
    return Result::done;
  }
  error_ = state_ == State::head ? (any_bytes_ ? "connection closed in the response head" : "empty reply from server")
                                 : "connection closed before the response body ended";
  return Result::error;
}

Millis ResponseParser::retry_after_ms(Millis now_unix_ms) const {
  if (retry_after_.empty()) return 0;
  long long secs = 0;
  const auto [p, e] = std::from_chars(retry_after_.data(), retry_after_.data() + retry_after_.size(), secs);
  if (e == std::errc() && p == retry_after_.data() + retry_after_.size()) return secs > 0 ? secs * 1000 : 0;
  const time_t at = curl_getdate(retry_after_.c_str(), nullptr);  // an HTTP date, as curl parses it
  if (at < 0) return 0;
  const Millis delta = static_cast<Millis>(at) * 1000 - now_unix_ms;
  return delta > 0 ? delta : 0;
}

}  // namespace daybreak::channels::http1
