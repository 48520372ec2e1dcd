// The epoll transport: HTTP/1.1 POSTs over keep-alive connections, written by hand on epoll
// (channels/transport.hpp says why). Each worker thread owns an epoll set, an eventfd that a
// submit writes to wake it, its connection pools (one per host:port, at most
// max_host_connections open) and an ordered set of deadlines. Sockets are registered once,
// edge-triggered, for reading and writing: a request costs its writes and reads and no epoll_ctl.
// https:// runs on the same connections through OpenSSL (non-blocking; the peer verified against
// the CA store and the URL's host name); SMTP goes to an inner curl transport (created on first use).
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "channels/http1.hpp"
#include "channels/smtp_reply.hpp"
#include "channels/transport.hpp"

// Its own namespace: in a unity build this file shares a translation unit with curl_transport.cpp,
// whose anonymous namespace has a Worker too.
namespace daybreak::channels::epoll_detail {
namespace {

using Clock = std::chrono::steady_clock;

struct Conn;
struct Host;

/// One request, from submit to done.
struct Op {
  Request req;
  Transport::Done done;
  http1::Url url;
  std::string head;  ///< the request head; over TLS head and body together (one SSL_write)
  Clock::time_point started{};
  Clock::time_point deadline{};  ///< the whole request (timeout_ms); max() when 0
  Clock::time_point timer_at{};  ///< its key in Worker::timers_ (the deadline, or the connect deadline)
  Host* host = nullptr;
  Conn* conn = nullptr;
  std::size_t addr_index = 0;  ///< which of the host's addresses the current connect tries
  bool retried_stale = false;  ///< resent once after a reused connection died before answering
};

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;  ///< https:// only
  Host* host = nullptr;
  enum class State { connecting, handshaking, writing, reading, idle } state = State::connecting;
  Op* op = nullptr;
  std::size_t written = 0;  ///< bytes of the current request (head, then body) sent
  std::size_t served = 0;   ///< responses completed on it: > 0 means a reused connection
  http1::ResponseParser parser;
  bool dead = false;
};

/// A host's addresses as getaddrinfo gave them (empty with `error` when it failed).
struct Addresses {
  std::vector<sockaddr_storage> addrs;
  std::vector<socklen_t> addr_lens;
  std::string error;
};

Addresses lookup(const std::string& name, int port) {
  Addresses out;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(name.c_str(), service.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    out.error = "Could not resolve host: " + name;
    return out;
  }
  for (addrinfo* a = res; a; a = a->ai_next) {
    sockaddr_storage ss{};
    std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
    out.addrs.push_back(ss);
    out.addr_lens.push_back(a->ai_addrlen);
  }
  ::freeaddrinfo(res);
  return out;
}

struct Host {
  std::string name;
  int port = 80;
  bool tls = false;
  std::vector<sockaddr_storage> addrs;
  std::vector<socklen_t> addr_lens;
  Clock::time_point resolved_at{};
  /// A refresh of stale addresses running on a thread of its own: the loop keeps connecting to
  /// the addresses it has meanwhile, so a slow or failing resolver never stalls the sends.
  std::future<Addresses> refresh;
  std::vector<Conn*> idle;
  std::size_t open = 0;
  std::deque<Op*> waiting;  ///< for a connection slot (max_host_connections reached)
};

Millis since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

Millis unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// OpenSSL's newest queued error as text (the queue is cleared), else what SSL_get_error said.
std::string ssl_error_text(int ssl_error) {
  const unsigned long code = ERR_peek_last_error();
  if (code != 0) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    ERR_clear_error();
    return buf.data();
  }
  if (ssl_error == SSL_ERROR_SYSCALL) return errno != 0 ? std::strerror(errno) : "the connection closed";
  return "SSL error " + std::to_string(ssl_error);
}

/// The client context every https:// connection of the transport is made from: TLS 1.2 or newer,
/// the peer's certificate verified against the CA file (or the system store) and its name checked
/// per connection. Made on the first https:// request, so a transport that never sees one never
/// reads the CA store.
class TlsContext {
 public:
  explicit TlsContext(std::string ca_file) : ca_file_(std::move(ca_file)) {}
  ~TlsContext() {
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  /// The context, or nullptr with why (set once: a CA file that cannot be read fails every request).
  SSL_CTX* get(std::string& why) {
    std::call_once(once_, [this] { init(); });
    why = error_;
    return ctx_;
  }

 private:
  void init() {
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) {
      error_ = "SSL_CTX_new: " + ssl_error_text(0);
      return;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    // Partial writes: SSL_write behaves as send(2) on a non-blocking socket. A peer closing
    // without close_notify ends a body as a plain EOF does (Connection: close answers).
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    const std::string ca = resolve_ca_file(ca_file_);
    const int ok = ca.empty() ? SSL_CTX_set_default_verify_paths(ctx) : SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr);
    if (ok != 1) {
      error_ = "error setting certificate file: " + (ca.empty() ? std::string("the system store") : ca) + ": " + ssl_error_text(0);
      SSL_CTX_free(ctx);
      return;
    }
    ctx_ = ctx;
  }
  const std::string ca_file_;
  std::once_flag once_;
  SSL_CTX* ctx_ = nullptr;
  std::string error_;
};

bool is_ip_literal(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

class Worker {
 public:
  Worker(long max_host_connections, Millis shutdown_grace_ms, TlsContext& tls)
      : max_host_(max_host_connections > 0 ? static_cast<std::size_t>(max_host_connections) : 0),
        shutdown_grace_(std::chrono::milliseconds(shutdown_grace_ms)),
        tls_(tls) {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || wake_ < 0) throw std::runtime_error("transport: epoll/eventfd: " + std::string(std::strerror(errno)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the eventfd; every other entry is a Conn
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev);
    thread_ = std::thread([this] { loop(); });
  }
  ~Worker() {
    stop();
    ::close(wake_);
    ::close(ep_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// False after stop(): op is left with the caller, who completes it.
  bool submit(std::unique_ptr<Op>& op) {
    bool was_empty = false;
    {
      std::lock_guard lk(mu_);
      if (closed_) return false;
      was_empty = inbox_.empty();
      inbox_.push_back(std::move(op));
    }
    if (was_empty) wake();  // the loop drains the whole inbox per wake-up
    return true;
  }
  void stop() {
    if (stopping_.exchange(true)) return;
    wake();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
  }

  // --- timers -------------------------------------------------------------------------------
  void arm(Op* op, Clock::time_point at) {
    timers_.erase({op->timer_at, op});
    op->timer_at = at;
    timers_.insert({at, op});
  }
  void disarm(Op* op) { timers_.erase({op->timer_at, op}); }

  // --- completion ---------------------------------------------------------------------------
  /// Completes op with a transport failure (curl's code, so classify_transport_failure and the
  /// ledger's error codes read the same as with the curl transport).
  void fail(Op* op, CURLcode code, std::string message, bool may_have_arrived) {
    disarm(op);
    std::unique_ptr<Op> owned(op);
    Response r;
    r.latency_ms = since(op->started);
    r.transport_code = static_cast<int>(code);
    r.transport_error = std::move(message);
    r.request_may_have_arrived = may_have_arrived;
    r.message_id = std::move(op->req.message_id);
    auto done = std::move(op->done);
    owned.reset();
    done(std::move(r));
  }

  void succeed(Op* op, http1::ResponseParser& p) {
    disarm(op);
    std::unique_ptr<Op> owned(op);
    Response r;
    r.latency_ms = since(op->started);
    r.transport_ok = true;
    r.status = p.status();
    r.body = std::move(p.body());
    r.retry_after_ms = p.retry_after_ms(unix_now_ms());
    r.message_id = std::move(op->req.message_id);
    auto done = std::move(op->done);
    owned.reset();
    done(std::move(r));
  }

  // --- connections --------------------------------------------------------------------------
  void close_conn(Conn* c) {
    if (c->dead) return;
    c->dead = true;
    if (c->ssl != nullptr) {
      SSL_free(c->ssl);  // no close_notify: the socket closes now either way
      c->ssl = nullptr;
    }
    ::close(c->fd);  // also leaves the epoll set
    Host* h = c->host;
    --h->open;
    if (c->state == Conn::State::idle) h->idle.erase(std::remove(h->idle.begin(), h->idle.end(), c), h->idle.end());
    c->op = nullptr;
    graveyard_.push_back(c);  // freed after this batch of events (a later event may name it)
  }

  /// The host's addresses for a new connection. The first lookup of a host blocks this loop (its
  /// requests cannot go anywhere before it); after that, addresses older than a minute are
  /// refreshed on a thread of their own while connections go on to the ones known, and a failed
  /// refresh keeps them (the last good answer) until the next one.
  bool resolve(Host* h, std::string& err) {
    const auto now = Clock::now();
    if (h->refresh.valid() && h->refresh.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      Addresses a = h->refresh.get();
      if (a.error.empty()) {
        h->addrs = std::move(a.addrs);
        h->addr_lens = std::move(a.addr_lens);
      }
      h->resolved_at = now;
    }
    if (h->addrs.empty()) {
      Addresses a = lookup(h->name, h->port);
      if (!a.error.empty()) {
        err = std::move(a.error);
        return false;
      }
      h->addrs = std::move(a.addrs);
      h->addr_lens = std::move(a.addr_lens);
      h->resolved_at = now;
      return true;
    }
    if (now - h->resolved_at >= std::chrono::seconds(60) && !h->refresh.valid()) {
      try {
        h->refresh = std::async(std::launch::async, lookup, h->name, h->port);
      } catch (const std::system_error&) {
        h->resolved_at = now;  // no thread to be had: keep the addresses, try again in a minute
      }
    }
    return true;
  }

  /// Opens a connection for op to the host's address op->addr_index (non-blocking connect).
  void open_conn(Host* h, Op* op) {
    std::string err;
    if (!resolve(h, err)) {
      fail(op, CURLE_COULDNT_RESOLVE_HOST, err, false);
      return;
    }
    while (op->addr_index < h->addrs.size()) {
      const auto& addr = h->addrs[op->addr_index];
      const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        fail(op, CURLE_COULDNT_CONNECT, std::string("socket: ") + std::strerror(errno), false);
        return;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), h->addr_lens[op->addr_index]);
      if (rc != 0 && errno != EINPROGRESS) {
        const int e = errno;
        ::close(fd);
        if (++op->addr_index < h->addrs.size()) continue;
        fail(op, CURLE_COULDNT_CONNECT, connect_message(h, e), false);
        return;
      }
      auto* c = new Conn;
      c->fd = fd;
      c->host = h;
      c->state = Conn::State::connecting;
      c->op = op;
      op->conn = c;
      ++h->open;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = c;
      ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);  // ready already (a loopback connect): reported at once
      const auto connect_deadline = Clock::now() + std::chrono::milliseconds(op->req.connect_timeout_ms > 0 ? op->req.connect_timeout_ms : 300000);
      arm(op, std::min(op->deadline, connect_deadline));
      return;
    }
    fail(op, CURLE_COULDNT_CONNECT, "Failed to connect to " + h->name + " port " + std::to_string(h->port), false);
  }

  static std::string connect_message(const Host* h, int e) {
    return "Failed to connect to " + h->name + " port " + std::to_string(h->port) + ": " + std::strerror(e);
  }

  /// Hands op to an idle connection, a new one, or the host's queue.
  void place(Op* op) {
    Host* h = op->host;
    if (!h->idle.empty()) {
      Conn* c = h->idle.back();
      h->idle.pop_back();
      assign(c, op);
    } else if (max_host_ == 0 || h->open < max_host_) {
      op->addr_index = 0;
      open_conn(h, op);
    } else {
      h->waiting.push_back(op);
    }
  }

  /// After a connection closed or went idle: what waits for the host gets a connection.
  void pump(Host* h) {
    while (!h->waiting.empty() && (!h->idle.empty() || max_host_ == 0 || h->open < max_host_)) {
      Op* op = h->waiting.front();
      h->waiting.pop_front();
      place(op);
    }
  }

  void assign(Conn* c, Op* op) {
    c->op = op;
    op->conn = c;
    c->state = Conn::State::writing;
    c->written = 0;
    c->parser = http1::ResponseParser{};
    write_some(c);
  }

  /// A connection died under its request: resent once on another connection when it was a
  /// reused one and nothing of an answer came (the server closed an idle keep-alive connection
  /// as we wrote on it, as curl retries), else the request fails.
  void conn_failed(Conn* c, CURLcode code, const std::string& message) {
    Op* op = c->op;
    Host* h = c->host;
    const bool reused = c->served > 0;
    const bool answered = c->parser.started();
    const bool sent = c->written > 0;
    close_conn(c);
    if (op) {
      op->conn = nullptr;
      if (reused && !answered && !op->retried_stale && !stopping_) {
        op->retried_stale = true;
        place(op);
      } else {
        fail(op, code, message, sent);
      }
    }
    pump(h);
  }

  void write_some(Conn* c) {
    Op* op = c->op;
    if (c->ssl != nullptr) {
      while (c->written < op->head.size()) {
        ERR_clear_error();
        // Retried after WANT_* with the same pointer and length, as OpenSSL requires.
        const int w = SSL_write(c->ssl, op->head.data() + c->written, static_cast<int>(op->head.size() - c->written));
        if (w > 0) {
          c->written += static_cast<std::size_t>(w);
          continue;
        }
        const int e = SSL_get_error(c->ssl, w);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return;  // the next edge resumes it
        conn_failed(c, CURLE_SEND_ERROR, "Send failure: " + ssl_error_text(e));
        return;
      }
      c->state = Conn::State::reading;
      return;
    }
    const std::size_t total = op->head.size() + op->req.body.size();
    while (c->written < total) {
      std::array<iovec, 2> iov{};
      int n = 0;
      if (c->written < op->head.size()) {
        iov[n].iov_base = op->head.data() + c->written;
        iov[n++].iov_len = op->head.size() - c->written;
        if (!op->req.body.empty()) {
          iov[n].iov_base = op->req.body.data();
          iov[n++].iov_len = op->req.body.size();
        }
      } else {
        const std::size_t off = c->written - op->head.size();
        iov[n].iov_base = op->req.body.data() + off;
        iov[n++].iov_len = op->req.body.size() - off;
      }
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = static_cast<std::size_t>(n);
      const ssize_t w = ::sendmsg(c->fd, &msg, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // EPOLLOUT's edge resumes it
        if (errno == EINTR) continue;
        conn_failed(c, CURLE_SEND_ERROR, std::string("Send failure: ") + std::strerror(errno));
        return;
      }
      c->written += static_cast<std::size_t>(w);
    }
    c->state = Conn::State::reading;
  }

  void read_some(Conn* c) {
    std::array<char, 16384> buf{};
    while (!c->dead) {
      ssize_t n = 0;
      if (c->ssl != nullptr) {
        ERR_clear_error();
        const int r = SSL_read(c->ssl, buf.data(), static_cast<int>(buf.size()));
        if (r > 0) {
          n = r;
        } else {
          const int e = SSL_get_error(c->ssl, r);
          // Nothing for the application (a partial record, or TLS 1.3's session tickets on an
          // idle connection): wait for the next edge.
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
          if (e != SSL_ERROR_ZERO_RETURN) {  // a clean close (or an EOF, see TlsContext) reads as 0
            if (!c->op) {
              close_conn(c);
              return;
            }
            conn_failed(c, CURLE_RECV_ERROR, "Recv failure: " + ssl_error_text(e));
            return;
          }
        }
      } else {
        n = ::recv(c->fd, buf.data(), buf.size(), 0);
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        if (!c->op) {
          close_conn(c);
          return;
        }
        conn_failed(c, CURLE_RECV_ERROR, std::string("Recv failure: ") + std::strerror(errno));
        return;
      }
      if (!c->op || c->state == Conn::State::connecting) {
        close_conn(c);  // an idle connection closed by the server, or spoke out of turn
        return;
      }
      if (n == 0) {
        if (c->parser.eof() == http1::ResponseParser::Result::done) {
          finish(c, false);
        } else {
          const CURLcode code = !c->parser.started() ? CURLE_GOT_NOTHING : c->parser.in_body() ? CURLE_PARTIAL_FILE : CURLE_RECV_ERROR;
          conn_failed(c, code, c->parser.error());
        }
        return;
      }
      std::size_t used = 0;
      const auto r = c->parser.feed(buf.data(), static_cast<std::size_t>(n), used);
      if (r == http1::ResponseParser::Result::error) {
        conn_failed(c, CURLE_WEIRD_SERVER_REPLY, c->parser.error());
        return;
      }
      if (r == http1::ResponseParser::Result::done) {
        // Bytes after the answer (nothing was asked for them): the connection is not reused.
        finish(c, used == static_cast<std::size_t>(n) && c->state == Conn::State::reading);
        return;
      }
    }
  }

  /// A whole answer arrived on c: its request succeeds; c goes back to the pool or closes.
  void finish(Conn* c, bool reusable) {
    Op* op = c->op;
    Host* h = c->host;
    c->op = nullptr;
    op->conn = nullptr;
    http1::ResponseParser parser = std::move(c->parser);
    if (reusable && parser.keep_alive() && !stopping_) {
      ++c->served;
      c->state = Conn::State::idle;
      c->parser = http1::ResponseParser{};
      h->idle.push_back(c);
    } else {
      close_conn(c);
    }
    pump(h);
    succeed(op, parser);
  }

  /// The TCP connection is up: plain http:// starts writing; https:// starts its handshake, which
  /// the connect deadline still bounds (as curl's connect timeout covers TLS).
  void connected(Conn* c) {
    if (!c->host->tls) {
      arm(c->op, c->op->deadline);  // connected: the connect timeout is over
      c->state = Conn::State::writing;
      write_some(c);
      return;
    }
    std::string why;
    SSL_CTX* ctx = tls_.get(why);
    if (ctx == nullptr) {
      conn_failed(c, CURLE_SSL_CACERT_BADFILE, why);
      return;
    }
    ERR_clear_error();
    c->ssl = SSL_new(ctx);
    if (c->ssl == nullptr || SSL_set_fd(c->ssl, c->fd) != 1) {
      conn_failed(c, CURLE_SSL_CONNECT_ERROR, "SSL_new: " + ssl_error_text(0));
      return;
    }
    const std::string& name = c->host->name;
    if (is_ip_literal(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name.c_str());  // no SNI for an address
    } else {
      // SSL_set_tlsext_host_name, without the macro's C cast.
      SSL_ctrl(c->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str()));
      SSL_set1_host(c->ssl, name.c_str());
    }
    SSL_set_connect_state(c->ssl);
    c->state = Conn::State::handshaking;
    handshake(c);
  }

  void handshake(Conn* c) {
    ERR_clear_error();
    const int rc = SSL_connect(c->ssl);
    if (rc == 1) {
      arm(c->op, c->op->deadline);
      c->state = Conn::State::writing;
      write_some(c);
      return;
    }
    const int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
    const long verify = SSL_get_verify_result(c->ssl);
    if (verify != X509_V_OK) {
      ERR_clear_error();
      conn_failed(c, CURLE_PEER_FAILED_VERIFICATION, std::string("SSL certificate problem: ") + X509_verify_cert_error_string(verify));
    } else {
      conn_failed(c, CURLE_SSL_CONNECT_ERROR, "TLS connect error: " + ssl_error_text(e));
    }
  }

  void on_event(Conn* c, std::uint32_t events) {
    if (c->dead) return;
    if (c->state == Conn::State::connecting) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        Op* op = c->op;
        Host* h = c->host;
        c->op = nullptr;
        close_conn(c);
        op->conn = nullptr;
        if (++op->addr_index < h->addrs.size()) {
          open_conn(h, op);
        } else {
          fail(op, CURLE_COULDNT_CONNECT, connect_message(h, err), false);
        }
        pump(h);
        return;
      }
      connected(c);
      if (c->dead || c->state == Conn::State::handshaking) return;
    } else if (c->state == Conn::State::handshaking) {
      handshake(c);
      if (c->dead || c->state == Conn::State::handshaking) return;
    } else if (c->state == Conn::State::writing && (c->ssl != nullptr || (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))) {
      write_some(c);
      if (c->dead) return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_some(c);
  }

  Host* host_for(const http1::Url& u) {
    std::string key = u.tls ? "https:" : "http:";
    key += u.host;
    key += ':';
    key += std::to_string(u.port);
    auto it = hosts_.find(key);
    if (it == hosts_.end()) {
      auto h = std::make_unique<Host>();
      h->name = u.host;
      h->port = u.port;
      h->tls = u.tls;
      it = hosts_.emplace(std::move(key), std::move(h)).first;
    }
    return it->second.get();
  }

  void start(std::unique_ptr<Op> owned) {
    Op* op = owned.release();
    op->started = Clock::now();
    op->deadline = op->req.timeout_ms > 0 ? op->started + std::chrono::milliseconds(op->req.timeout_ms) : Clock::time_point::max();
    op->timer_at = op->deadline;
    timers_.insert({op->timer_at, op});
    if (!http1::parse_url(op->req.url, op->url)) {
      fail(op, CURLE_URL_MALFORMAT, "URL rejected: not an http:// or https:// URL", false);
      return;
    }
    op->head = http1::request_head(op->url, op->req.headers, op->req.body.size());
    if (op->url.tls) op->head += op->req.body;
    op->host = host_for(op->url);
    place(op);
  }

  /// Deadlines that passed: the request fails with curl's timeout code.
  void expire(Clock::time_point now) {
    while (!timers_.empty() && timers_.begin()->first <= now) {
      Op* op = timers_.begin()->second;
      Host* h = op->host;
      if (Conn* c = op->conn) {
        const bool connecting = c->state == Conn::State::connecting || c->state == Conn::State::handshaking;
        const bool sent = c->written > 0;
        c->op = nullptr;
        op->conn = nullptr;
        close_conn(c);
        fail(op, CURLE_OPERATION_TIMEDOUT,
             (connecting ? "Connection timed out after " : "Operation timed out after ") + std::to_string(since(op->started)) + " milliseconds",
             sent);
      } else {
        if (h) h->waiting.erase(std::remove(h->waiting.begin(), h->waiting.end(), op), h->waiting.end());
        fail(op, CURLE_OPERATION_TIMEDOUT, "Operation timed out after " + std::to_string(since(op->started)) + " milliseconds", false);
      }
      if (h) pump(h);
    }
  }

  void loop() {
    // OpenSSL writes with write(2), not send(2) with MSG_NOSIGNAL: a peer that closed would raise
    // SIGPIPE, whose default kills the process. Blocked on this thread, a write fails with EPIPE
    // instead (and the connection fails as any send failure does).
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::array<epoll_event, 128> evs{};
    Clock::time_point abort_after{};
    while (true) {
      std::deque<std::unique_ptr<Op>> fresh;
      {
        std::lock_guard lk(mu_);
        fresh.swap(inbox_);
        if (stopping_) closed_ = true;
      }
      for (auto& op : fresh) start(std::move(op));
      if (stopping_) {
        // As the curl transport: what is in flight may finish for 15 s, then fails.
        if (timers_.empty()) break;
        const auto now = Clock::now();
        if (abort_after == Clock::time_point{}) abort_after = now + shutdown_grace_;
        if (now >= abort_after) {
          while (!timers_.empty()) {
            Op* op = timers_.begin()->second;
            bool sent = false;
            if (Conn* c = op->conn) {
              sent = c->written > 0;
              c->op = nullptr;
              op->conn = nullptr;
              close_conn(c);
            } else if (op->host) {
              op->host->waiting.erase(std::remove(op->host->waiting.begin(), op->host->waiting.end(), op), op->host->waiting.end());
            }
            fail(op, CURLE_ABORTED_BY_CALLBACK, "the transport stopped", sent);
          }
          break;
        }
      }
      int wait_ms = 100;
      if (!timers_.empty()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(timers_.begin()->first - Clock::now()).count() + 1;
        wait_ms = static_cast<int>(std::clamp<long long>(left, 0, 100));
      }
      const int n = ::epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), wait_ms);
      for (int i = 0; i < n; ++i) {
        if (evs[static_cast<std::size_t>(i)].data.ptr == nullptr) {
          std::uint64_t v = 0;
          [[maybe_unused]] auto r = ::read(wake_, &v, sizeof v);
          continue;
        }
        on_event(static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr), evs[static_cast<std::size_t>(i)].events);
      }
      if (!timers_.empty()) expire(Clock::now());
      for (Conn* c : graveyard_) delete c;
      graveyard_.clear();
    }
    // Stopped: close every connection that is left (idle ones; nothing is in flight).
    for (auto& [key, h] : hosts_) {
      for (Conn* c : std::vector<Conn*>(h->idle)) close_conn(c);
    }
    for (Conn* c : graveyard_) delete c;
    graveyard_.clear();
  }

  const std::size_t max_host_;
  const Clock::duration shutdown_grace_;
  TlsContext& tls_;
  int ep_ = -1;
  int wake_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::deque<std::unique_ptr<Op>> inbox_;
  bool closed_ = false;  ///< under mu_: the loop took its last inbox
  std::atomic<bool> stopping_{false};
  // Loop thread only:
  std::set<std::pair<Clock::time_point, Op*>> timers_;  ///< every live request, by its deadline
  std::unordered_map<std::string, std::unique_ptr<Host>> hosts_;
  std::vector<Conn*> graveyard_;
};

class EpollTransport final : public Transport {
 public:
  explicit EpollTransport(const EpollTransportOptions& o)
      : opts_(o), tls_(o.ca_file), proxy_http_(proxy_set({"http_proxy"})), proxy_https_(proxy_set({"https_proxy", "HTTPS_PROXY"})) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });  // curl_getdate, the SMTP path
    for (int i = 0; i < std::max(1, o.workers); ++i) {
      workers_.push_back(std::make_unique<Worker>(o.max_host_connections, o.shutdown_grace_ms, tls_));
    }
  }
  ~EpollTransport() override { shutdown(); }
  void submit(Request req, Done done) override {
    if (req.kind == Request::Kind::smtp || !is_http(req.url) || proxied(req.url)) {
      curl().submit(std::move(req), std::move(done));
      return;
    }
    auto op = std::make_unique<Op>();
    op->req = std::move(req);
    op->done = std::move(done);
    auto& w = workers_[next_++ % workers_.size()];
    if (!w->submit(op)) {  // after shutdown: aborted, as a transfer the curl transport stopped
      auto d = std::move(op->done);
      d(never_sent_response(std::move(op->req.message_id), "the transport stopped"));
    }
  }
  void shutdown() override {
    for (auto& w : workers_) w->stop();
    std::lock_guard lk(curl_mu_);
    if (curl_) curl_->shutdown();
  }

 private:
  /// A proxy the environment names as libcurl reads it (http_proxy in lower case only, as curl;
  /// https_proxy or HTTPS_PROXY; all_proxy or ALL_PROXY for either): requests of that scheme go
  /// through the curl transport, which speaks to the proxy and honours no_proxy.
  static bool proxy_set(std::initializer_list<const char*> vars) {
    for (const char* v : vars) {
      if (const char* s = std::getenv(v); s != nullptr && *s != '\0') return true;
    }
    for (const char* v : {"all_proxy", "ALL_PROXY"}) {
      if (const char* s = std::getenv(v); s != nullptr && *s != '\0') return true;
    }
    return false;
  }
  [[nodiscard]] bool proxied(const std::string& url) const {
    return (url.size() > 5 && (url[4] == 's' || url[4] == 'S')) ? proxy_https_ : proxy_http_;
  }
  /// http:// or https:// (any case): this transport's own; anything else goes to curl.
  static bool is_http(const std::string& url) {
    auto starts = [&](std::string_view p) {
      if (url.size() < p.size()) return false;
      for (std::size_t i = 0; i < p.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(url[i])) != p[i]) return false;
      }
      return true;
    };
    return starts("http://") || starts("https://");
  }
  Transport& curl() {
    std::lock_guard lk(curl_mu_);
    if (!curl_) {
      CurlTransportOptions c;
      c.workers = opts_.workers;
      c.max_host_connections = opts_.max_host_connections;
      c.ca_file = opts_.ca_file;  // a proxied https:// request is verified as this transport's own are
      curl_ = make_curl_transport(c);
    }
    return *curl_;
  }

  EpollTransportOptions opts_;
  TlsContext tls_;  ///< before workers_: they hold a reference to it
  const bool proxy_http_, proxy_https_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<std::size_t> next_{0};
  std::mutex curl_mu_;
  std::unique_ptr<Transport> curl_;
};

}  // namespace

std::unique_ptr<Transport> make(const EpollTransportOptions& opts) { return std::make_unique<EpollTransport>(opts); }

}  // namespace daybreak::channels::epoll_detail

namespace daybreak::channels {

std::unique_ptr<Transport> make_epoll_transport(const EpollTransportOptions& opts) { return epoll_detail::make(opts); }

}  // namespace daybreak::channels
