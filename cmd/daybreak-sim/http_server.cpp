// daybreak-sim's epoll HTTP/1.1 server (see http_server.hpp for why it exists).
// Message syntax per RFC 9112 (request line, field lines, Content-Length framing) and the
// 100-continue exchange per RFC 9110 §10.1.1.
#include "http_server.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <memory>
#include <queue>
#include <stdexcept>
#include <thread>
#include <unordered_map>

namespace daybreak::sim::http {
namespace {

using SteadyClock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// RFC 9110 §5.6.2 token characters (method and field names).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

/// A comma-separated header value contains `word` (case-insensitive), e.g. Connection: close.
bool list_contains(std::string_view value, std::string_view word) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    if (iequals(trim_ows(value.substr(0, comma)), word)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

ParseResult fail(ParseState state, int status) {
  ParseResult r;
  r.state = state;
  r.status = status;
  return r;
}

void set_nodelay(int fd) {
  int yes = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
}

}  // namespace

namespace detail {

/// IMF-fixdate of the current second, recomputed once a second per loop.
class DateCache {
 public:
  std::string_view get() {
    std::time_t now = std::time(nullptr);
    if (now != second_) {
      second_ = now;
      std::tm tm{};
      gmtime_r(&now, &tm);
      std::size_t n = std::strftime(buf_, sizeof buf_, "%a, %d %b %Y %H:%M:%S GMT", &tm);
      len_ = n;
    }
    return {buf_, len_};
  }

 private:
  std::time_t second_ = -1;
  char buf_[64] = {};
  std::size_t len_ = 0;
};

}  // namespace detail

std::string_view Request::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

bool Request::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const Header& h) { return iequals(h.name, name); });
}

std::optional<std::string_view> Request::query_param(std::string_view key) const {
  std::string_view q = query;
  while (!q.empty()) {
    std::size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

ParseResult parse_request(std::string_view data, std::size_t max_body) {
  // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
  std::size_t start = 0;
  while (start + 1 < data.size() && data[start] == '\r' && data[start + 1] == '\n') start += 2;
  std::size_t end = data.find("\r\n\r\n", start);
  if (end == std::string_view::npos) {
    if (data.size() - start > kMaxHeaderBytes) return fail(ParseState::kTooLarge, 431);
    return {};
  }
  if (end - start > kMaxHeaderBytes) return fail(ParseState::kTooLarge, 431);
  std::string_view head = data.substr(start, end - start);
  std::size_t header_len = end + 4;

  ParseResult r;
  Request& req = r.request;
  std::size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  head = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);

  // request-line = method SP request-target SP HTTP-version
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(ParseState::kBad, 400);
  }
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(req.method) || req.target.empty() || req.target.front() != '/') return fail(ParseState::kBad, 400);
  if (version == "HTTP/1.1") {
    req.keep_alive = true;
  } else if (version == "HTTP/1.0") {
    req.keep_alive = false;
  } else {
    return fail(ParseState::kBad, version.substr(0, 5) == "HTTP/" ? 505 : 400);
  }
  std::size_t qm = req.target.find('?');
  req.path = req.target.substr(0, qm);
  if (qm != std::string_view::npos) req.query = req.target.substr(qm + 1);

  std::optional<std::size_t> content_length;
  bool chunked = false;
  while (!head.empty()) {
    eol = head.find("\r\n");
    line = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
    std::size_t colon = line.find(':');
    // No colon, an empty or non-token name (which also refuses obs-fold continuation lines and
    // whitespace before the colon, RFC 9112 §5.1): malformed.
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return fail(ParseState::kBad, 400);
    Header h{line.substr(0, colon), trim_ows(line.substr(colon + 1))};
    if (iequals(h.name, "content-length")) {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(h.value.data(), h.value.data() + h.value.size(), n);
      if (ec != std::errc{} || p != h.value.data() + h.value.size() || h.value.empty()) {
        return fail(ParseState::kBad, 400);
      }
      if (content_length && *content_length != n) return fail(ParseState::kBad, 400);
      content_length = n;
    } else if (iequals(h.name, "transfer-encoding")) {
      chunked = true;
    } else if (iequals(h.name, "connection")) {
      if (list_contains(h.value, "close")) req.keep_alive = false;
      else if (list_contains(h.value, "keep-alive")) req.keep_alive = true;
    } else if (iequals(h.name, "expect")) {
      r.expects_continue = iequals(h.value, "100-continue");
    }
    req.headers.push_back(h);
  }
  if (chunked) return fail(ParseState::kUnsupported, 501);
  std::size_t body_len = content_length.value_or(0);
  if (body_len > max_body) return fail(ParseState::kTooLarge, 413);
  if (data.size() - header_len < body_len) {
    r.state = ParseState::kIncomplete;
    return r;
  }
  r.expects_continue = false;
  req.body = data.substr(header_len, body_len);
  r.consumed = header_len + body_len;
  r.state = ParseState::kComplete;
  return r;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

void append_response(std::string& out, const Response& r, bool close, std::string_view date) {
  char num[24];
  out += "HTTP/1.1 ";
  out.append(num, std::to_chars(num, num + sizeof num, r.status).ptr);
  out += ' ';
  out += reason_phrase(r.status);
  out += "\r\nContent-Type: ";
  out += r.content_type;
  out += "\r\nContent-Length: ";
  out.append(num, std::to_chars(num, num + sizeof num, r.body.size()).ptr);
  out += "\r\nDate: ";
  out += date;
  for (const auto& [name, value] : r.headers) {
    out += "\r\n";
    out += name;
    out += ": ";
    out += value;
  }
  if (close) out += "\r\nConnection: close";
  out += "\r\n\r\n";
  out += r.body;
}

/// One event loop: the connections it accepted, their buffers and the answers it holds back.
class Server::Loop {
 public:
  Loop(Server& server) : server_(server), epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (epoll_fd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    // EPOLLEXCLUSIVE: a new connection wakes one loop, not all of them.
    add(server_.listen_fd_, EPOLLIN | EPOLLEXCLUSIVE);
    add(server_.stop_fd_, EPOLLIN);
  }
  ~Loop() {
    for (auto& [fd, c] : conns_) ::close(fd);
    ::close(epoll_fd_);
  }

  void run() {
    std::vector<epoll_event> events(256);
    for (;;) {
      int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms());
      if (n < 0 && errno != EINTR) throw std::runtime_error(std::string("epoll_wait: ") + std::strerror(errno));
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<std::size_t>(i)].data.fd;
        const std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
        if (fd == server_.stop_fd_) return;
        if (fd == server_.listen_fd_) {
          accept_all();
          continue;
        }
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        Conn& c = *it->second;
        if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          if (!on_readable(c)) continue;  // closed
        }
        if (ev & EPOLLOUT) on_writable(c);
      }
      fire_timers();
      if (accept_paused_ && SteadyClock::now() >= accept_resume_) {
        accept_paused_ = false;
        mod(server_.listen_fd_, EPOLLIN | EPOLLEXCLUSIVE);
      }
    }
  }

 private:
  struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;         ///< --tls-cert: the connection's TLS session
    bool handshaking = false;   ///< TLS: SSL_accept has not finished
    std::uint64_t id = 0;       ///< distinguishes a reused fd in the timer queue
    std::string in;
    std::string out;
    std::size_t out_off = 0;
    std::uint32_t events = 0;   ///< what epoll currently watches
    bool waiting = false;       ///< an answer is held back on the timer queue
    bool close_after = false;   ///< close once `out` is written
    bool sent_continue = false; ///< 100 Continue sent for the request being read
    Response pending;
    bool pending_close = false;
  };
  struct Timer {
    SteadyClock::time_point due;
    int fd;
    std::uint64_t id;
    bool operator>(const Timer& o) const { return due > o.due; }
  };

  /// The input a connection may hold unprocessed before the loop stops reading from it.
  [[nodiscard]] std::size_t input_limit() const { return server_.max_body_ + kMaxHeaderBytes + 4096; }

  void add(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw std::runtime_error(std::string("epoll_ctl add: ") + std::strerror(errno));
    }
  }
  void mod(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }

  int timeout_ms() {
    int ms = -1;
    if (!timers_.empty()) {
      auto wait = timers_.top().due - SteadyClock::now();
      // Round up: waking a millisecond early would only spin once more.
      ms = wait.count() <= 0 ? 0 : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    }
    if (accept_paused_) ms = ms < 0 ? 100 : std::min(ms, 100);
    return ms;
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(server_.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: stop accepting for 100 ms instead of spinning on the listener.
          accept_paused_ = true;
          accept_resume_ = SteadyClock::now() + std::chrono::milliseconds(100);
          mod(server_.listen_fd_, 0);
        }
        return;  // EAGAIN: another loop took it, or the queue is empty
      }
      set_nodelay(fd);  // small JSON answers: Nagle plus delayed ACK would add ~40 ms each
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      c->id = ++next_id_;
      c->events = EPOLLIN;
      if (server_.tls_ != nullptr) {
        c->ssl = SSL_new(server_.tls_);
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
        c->handshaking = true;
      }
      add(fd, EPOLLIN);
      conns_.emplace(fd, std::move(c));
    }
  }

  void close_conn(Conn& c) {
    if (c.ssl != nullptr) SSL_free(c.ssl);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    conns_.erase(c.fd);  // destroys c
  }

  /// recv(2) on the socket or through its TLS session, with recv's answer: bytes, 0 at the
  /// end, -1 with errno EAGAIN when nothing is there yet (TLS: nor a whole record).
  static ssize_t read_some(Conn& c, char* buf, std::size_t n) {
    if (c.ssl == nullptr) return ::recv(c.fd, buf, n, 0);
    ERR_clear_error();
    const int r = SSL_read(c.ssl, buf, static_cast<int>(n));
    if (r > 0) return r;
    const int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    errno = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? EAGAIN : EIO;
    return -1;
  }
  /// send(2) likewise (TLS with partial writes and a buffer that may move between retries).
  static ssize_t write_some(Conn& c, const char* buf, std::size_t n) {
    if (c.ssl == nullptr) return ::send(c.fd, buf, n, MSG_NOSIGNAL);
    ERR_clear_error();
    const int w = SSL_write(c.ssl, buf, static_cast<int>(n));
    if (w > 0) return w;
    const int e = SSL_get_error(c.ssl, w);
    errno = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? EAGAIN : EIO;
    return -1;
  }
  /// Advances a TLS handshake. Returns false if the connection was closed (a failed handshake).
  bool handshake(Conn& c) {
    ERR_clear_error();
    const int r = SSL_accept(c.ssl);
    if (r == 1) {
      c.handshaking = false;
      return true;
    }
    const int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      const std::uint32_t want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
      if (want != c.events) {
        c.events = want;
        mod(c.fd, want);
      }
      return true;
    }
    close_conn(c);
    return false;
  }

  /// Sets epoll's interest to what the connection needs now.
  void update_events(Conn& c) {
    std::uint32_t want = 0;
    if (c.in.size() < input_limit() && !c.close_after) want |= EPOLLIN;
    if (c.out_off < c.out.size()) want |= EPOLLOUT;
    if (want != c.events) {
      c.events = want;
      mod(c.fd, want);
    }
  }

  /// Reads what is there. Returns false if the connection was closed.
  bool on_readable(Conn& c) {
    if (c.handshaking) {
      if (!handshake(c)) return false;
      if (c.handshaking) return true;
      update_events(c);
    }
    char buf[64 * 1024];
    for (;;) {
      ssize_t n = read_some(c, buf, sizeof buf);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        if (c.in.size() >= input_limit()) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      // EOF or error. A held-back answer has nobody to go to; the message stays accepted.
      close_conn(c);
      return false;
    }
    if (!c.waiting && c.out_off == c.out.size()) return process(c);
    update_events(c);
    return true;
  }

  void on_writable(Conn& c) {
    if (c.handshaking) {
      if (!handshake(c) || c.handshaking) return;
      update_events(c);
      return;
    }
    if (!flush(c)) return;
    if (c.out_off < c.out.size()) return;
    if (c.close_after) {
      close_conn(c);
      return;
    }
    if (!c.waiting) process(c);
  }

  /// Writes as much of `out` as the socket takes. Returns false if the connection was closed.
  bool flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = write_some(c, c.out.data() + c.out_off, c.out.size() - c.out_off);
      if (n > 0) {
        c.out_off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close_conn(c);
      return false;
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    }
    update_events(c);
    return true;
  }

  /// Queues an answer on `out` and writes it. Returns false if the connection was closed.
  bool answer(Conn& c, const Response& r, bool close) {
    append_response(c.out, r, close, date_.get());
    if (close) c.close_after = true;
    if (!flush(c)) return false;
    if (c.close_after && c.out.empty()) {
      close_conn(c);
      return false;
    }
    return true;
  }

  /// Handles every complete request in `in`, in order, until one is held back or the socket
  /// backs up. Returns false if the connection was closed.
  bool process(Conn& c) {
    while (!c.waiting && c.out.empty() && !c.close_after) {
      ParseResult p = parse_request(c.in, server_.max_body_);
      if (p.state == ParseState::kIncomplete) {
        if (p.expects_continue && !c.sent_continue) {
          c.sent_continue = true;
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
          if (!flush(c)) return false;
        }
        update_events(c);
        return true;
      }
      if (p.state != ParseState::kComplete) {
        Response r;
        r.status = p.status;
        r.body = R"({"error":{"message":")" + std::string(reason_phrase(p.status)) +
                 R"(","type":"OAuthException","code":100}})";
        c.in.clear();
        return answer(c, r, /*close=*/true);
      }
      c.sent_continue = false;
      Response r;
      try {
        r = server_.handler_(p.request);
      } catch (const std::exception&) {
        r = Response{};
        r.status = 500;
        r.body = R"({"error":{"message":"An unknown error occurred","type":"OAuthException","code":1}})";
      }
      const bool close = !p.request.keep_alive;
      c.in.erase(0, p.consumed);  // the request's views die here
      if (r.delay.count() > 0) {
        timers_.push(Timer{SteadyClock::now() + r.delay, c.fd, c.id});
        c.waiting = true;
        c.pending = std::move(r);
        c.pending_close = close;
        update_events(c);
        return true;
      }
      if (!answer(c, r, close)) return false;
    }
    return true;
  }

  void fire_timers() {
    const auto now = SteadyClock::now();
    while (!timers_.empty() && timers_.top().due <= now) {
      Timer t = timers_.top();
      timers_.pop();
      auto it = conns_.find(t.fd);
      if (it == conns_.end() || it->second->id != t.id || !it->second->waiting) continue;
      Conn& c = *it->second;
      c.waiting = false;
      Response r = std::move(c.pending);
      if (!answer(c, r, c.pending_close)) continue;
      if (c.out.empty()) process(c);  // pipelined requests behind it
    }
  }

  Server& server_;
  int epoll_fd_;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::uint64_t next_id_ = 0;
  detail::DateCache date_;
  bool accept_paused_ = false;
  SteadyClock::time_point accept_resume_{};
};

Server::Server(Handler handler, std::size_t max_body) : handler_(std::move(handler)), max_body_(max_body) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

Server::~Server() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  ::close(stop_fd_);
  if (tls_ != nullptr) SSL_CTX_free(tls_);
}

bool Server::enable_tls(const std::string& cert_file, const std::string& key_file, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr || SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    std::array<char, 256> buf{};
    ERR_error_string_n(ERR_get_error(), buf.data(), buf.size());
    error = "cannot use " + cert_file + " and " + key_file + ": " + buf.data();
    if (ctx != nullptr) SSL_CTX_free(ctx);
    return false;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (tls_ != nullptr) SSL_CTX_free(tls_);
  tls_ = ctx;
  return true;
}

int Server::bind(const std::string& host, int port, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return -1;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  int last_errno = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    // SO_REUSEADDR only: SO_REUSEPORT would let a second simulator bind the same port and
    // silently take half the requests (and half the counts).
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      last_errno = errno;
      ::close(fd);
      continue;
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    listen_fd_ = fd;
    return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  error = "cannot bind " + host + ":" + service + ": " + std::strerror(last_errno);
  return -1;
}

void Server::run(int loops) {
  // A connection is a descriptor: let the process use as many as its hard limit allows.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::vector<std::unique_ptr<Loop>> all;
  for (int i = 0; i < std::max(loops, 1); ++i) all.push_back(std::make_unique<Loop>(*this));
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < all.size(); ++i) threads.emplace_back([l = all[i].get()] { l->run(); });
  all[0]->run();
  for (auto& t : threads) t.join();
}

void Server::stop() {
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof one);
}

}  // namespace daybreak::sim::http
