// daybreak-callbacks' command line and HTTP wiring: flags, routes → CallbackReceiver
// (core/app/callbacks.cpp), whose writer thread commits verified callbacks in batches and applies
// pending statuses, signals → a clean stop.
//
// A POST's body is verified and parsed on the event-loop thread that read it; the connection is
// then suspended (MHD_suspend_connection: the thread goes on serving others) and the request
// queued for the writer, which commits it with whatever else queued meanwhile in one
// transaction and only then resumes the connection, whose 200 is queued on that resumption. So
// no 200 leaves before its callback is committed, and no event-loop thread waits on the disk.
//
// HTTP is GNU libmicrohttpd (docs/architecture.md says why): its event loops hold a connection as
// a small buffer, not a thread, so slow clients cannot take the threads a signed POST needs; its
// access handler sees a request's headers before any of its body, so judge_request_head refuses
// what cannot be bounded (chunked, compressed, too long, no length) unread; and it never inflates
// a body. Two bounds it lacks are kept here: a request's headers must arrive within
// callbacks.header_timeout_seconds and the whole request within request_timeout_seconds, however
// slowly bytes keep trickling in (libmicrohttpd's own timeout only counts inactivity).
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <semaphore>
#include <string>
#include <thread>
#include <unordered_map>

#include <CLI/CLI.hpp>

#include "app/callbacks.hpp"
#include "cli/common.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_status.hpp"

namespace daybreak {
namespace {

using Steady = std::chrono::steady_clock;

/// At most this many maximum-size bodies are buffered at once, whatever the number of
/// connections: a request past it is answered 503 (the sender retries) before its body is read.
constexpr std::size_t kBufferedBodies = 16;
/// A one-click unsubscribe body is "List-Unsubscribe=One-Click" (RFC 8058), or a small
/// multipart form saying so: anything longer is refused (413) unread.
constexpr std::size_t kUnsubscribeBodyMax = 1024;
/// Parsing a body holds its JSON tree, about 15 times the body (a 2.5 MB body: about 38 MiB).
/// At most kLargeParses bodies over kLargeBody bytes are parsed at once, whatever the number of
/// event-loop threads; a thread with another waits (its other connections wait with it).
constexpr std::size_t kLargeBody = 256 * 1024;
constexpr std::ptrdiff_t kLargeParses = 2;
/// Every 4xx answer is logged with its reason, at most this many lines per 10 s; the next line
/// written says how many were left out (an attacker cannot flood the log).
constexpr int kRefusalLogBurst = 20;
constexpr Millis kRefusalLogWindowMs = 10'000;

/// A request URL or reason as one safe log line: control characters become '?', at most 200 bytes.
std::string loggable(std::string_view s) {
  std::string out;
  out.reserve(std::min<std::size_t>(s.size(), 200));
  for (char ch : s.substr(0, 200)) out += (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ? '?' : ch;
  if (s.size() > 200) out += "...";
  return out;
}

std::string html_escaped(std::string_view s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

struct Flags {
  std::string listen = "127.0.0.1:8089";
  std::string port_file;
  std::string spool_dir;
  long pending_interval_ms = 5000;  // statuses that named no known delivery wait at most this long after it appears
  int threads = 8;                  // event-loop threads; each serves many connections
};

/// Writes the port through a temporary file and rename(2), so a test polling for it never
/// reads half a number.
void write_port_file(const std::string& path, int port) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << '\n';
    if (!out.flush()) throw CheckFailed("cannot write " + tmp + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw CheckFailed("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
}

std::pair<std::string, int> split_listen(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) throw UsageError("--listen \"" + s + "\": expected HOST:PORT");
  int port = -1;
  try {
    std::size_t used = 0;
    port = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535) throw UsageError("--listen \"" + s + "\": port must be 0..65535");
  return {s.substr(0, colon), port};
}

/// A bound, listening, non-blocking TCP socket on host:port (SO_REUSEADDR only: never share the
/// port with a second receiver). Returns the fd and the bound port.
std::pair<int, int> listen_socket(const std::string& host, int port) {
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(h.empty() ? nullptr : h.c_str(), service.c_str(), &hints, &res); rc != 0) {
    throw CheckFailed("cannot bind " + host + ":" + service + ": " + ::gai_strerror(rc));
  }
  std::string err = "no address";
  int fd = -1;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      err = std::strerror(errno);
      continue;
    }
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) break;
    err = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) throw CheckFailed("cannot bind " + host + ":" + service + ": " + err);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  const int bound_port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return {fd, bound_port};
}

std::string error_body(const std::string& message) { return nlohmann::json{{"error", message}}.dump(); }

/// One request's state between the access handler's calls (libmicrohttpd's con_cls).
struct Request {
  bool unsubscribe = false;  ///< POST /unsubscribe (one-click), not a status callback
  std::string body;
  std::size_t reserved = 0;  ///< bytes of the buffered-bodies budget this request holds
  bool queued = false;       ///< handed to the writer; the connection is suspended until it committed
  std::atomic<bool> done{false};
  IngestOutcome outcome;     ///< set by the writer before it resumes the connection
};

/// One connection's deadline: the current request's headers by header_timeout, all of it by
/// request_timeout, both counted from when the connection opened or its previous answer was queued.
struct Conn {
  Steady::time_point started;
  Steady::time_point deadline;
  int fd = -1;
  bool closing = false;
};

/// The HTTP front: libmicrohttpd's callbacks, the deadlines, and the refusal counters.
class Front {
 public:
  Front(CallbackReceiver& receiver, const CallbacksConfig& limits, std::shared_ptr<spdlog::logger> log)
      : receiver_(receiver), limits_(limits), log_(std::move(log)) {}

  static MHD_Result access(void* cls, MHD_Connection* c, const char* url, const char* method, const char* /*version*/,
                           const char* upload_data, std::size_t* upload_data_size, void** con_cls) {
    auto* self = static_cast<Front*>(cls);
    try {
      return self->handle(c, url, method, upload_data, upload_data_size, con_cls);
    } catch (const std::exception& e) {
      // Not stored: 500 makes Meta (and the simulator) retry the request later.
      self->log_->error("{} {}: {} (answered 500; the sender retries)", method, url, e.what());
      return reply(c, 500, error_body("internal error"), "application/json", true);
    }
  }

  static void completed(void* cls, MHD_Connection* c, void** con_cls, MHD_RequestTerminationCode /*toe*/) {
    auto* self = static_cast<Front*>(cls);
    if (auto* req = static_cast<Request*>(*con_cls)) {
      self->buffered_ -= req->reserved;
      delete req;
      *con_cls = nullptr;
    }
    // A kept-alive connection waits for its next request's headers, on the header clock.
    self->restart_clock(c);
  }

  static void connection(void* cls, MHD_Connection* c, void** /*socket_context*/, MHD_ConnectionNotificationCode code) {
    auto* self = static_cast<Front*>(cls);
    std::lock_guard lock(self->mu_);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
      const auto now = Steady::now();
      self->conns_[c] = Conn{now, now + self->header_timeout(), info ? info->connect_fd : -1, false};
    } else {
      // libmicrohttpd calls this before it closes the socket: under mu_, the sweeper never
      // touches an fd that was closed (and maybe reused).
      self->conns_.erase(c);
    }
  }

  static void mhd_log(void* cls, const char* fmt, va_list ap) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    auto* self = static_cast<Front*>(cls);
    std::uint64_t left_out = 0;
    if (!self->log_limit_.allow(self->now_ms(), left_out)) return;
    self->log_->info("http: {}{}", loggable(line),
                     left_out ? " (" + std::to_string(left_out) + " refusal line(s) left out before this one)" : "");
  }

  /// Closes (shutdown(2); libmicrohttpd then sees the end and frees it) every connection past its
  /// deadline. Runs every 100 ms in its own thread until `stop`.
  void sweep_until(const std::atomic<bool>& stop) {
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const auto now = Steady::now();
      std::lock_guard lock(mu_);
      for (auto& [c, conn] : conns_) {
        if (conn.closing || conn.fd < 0 || now < conn.deadline) continue;
        ::shutdown(conn.fd, SHUT_RDWR);
        conn.closing = true;
        ++timed_out_;
        log_->debug("closed a connection that did not send its request in time");
      }
    }
  }

  nlohmann::json stats() const {
    return {{"refused_length_required", refused_411_.load()}, {"refused_too_large", refused_413_.load()},
            {"refused_encoding", refused_415_.load()},        {"refused_method", refused_405_.load()},
            {"refused_bad_request", refused_400_.load()},     {"refused_busy", refused_503_.load()},
            {"refused_other_4xx", refused_other_.load()},     {"closed_slow", timed_out_.load()},
            {"refusal_log_lines_left_out", log_limit_.suppressed_total()}};
  }

 private:
  std::chrono::milliseconds header_timeout() const { return std::chrono::milliseconds(limits_.header_timeout_ms); }

  /// A new request starts: its headers are due header_timeout from now.
  void restart_clock(MHD_Connection* c) {
    std::lock_guard lock(mu_);
    if (auto it = conns_.find(c); it != conns_.end()) {
      it->second.started = Steady::now();
      it->second.deadline = it->second.started + header_timeout();
    }
  }
  /// The headers are in: the whole request is due request_timeout after it started.
  void headers_in(MHD_Connection* c) {
    std::lock_guard lock(mu_);
    if (auto it = conns_.find(c); it != conns_.end()) {
      it->second.deadline = it->second.started + std::chrono::milliseconds(limits_.request_timeout_ms);
    }
  }

  Millis now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now().time_since_epoch()).count();
  }

  /// One line for a 4xx (or 503) answer, with its reason, through the rate limiter.
  void log_refusal(const char* method, const char* url, unsigned status, const std::string& reason, const char* when) {
    std::uint64_t left_out = 0;
    if (!log_limit_.allow(now_ms(), left_out)) return;
    log_->warn("{} {} answered {}{}: {}{}", method, loggable(url), status, when, loggable(reason),
               left_out ? " (" + std::to_string(left_out) + " refusal line(s) left out before this one)" : "");
  }

  static std::optional<std::string_view> header(MHD_Connection* c, const char* name) {
    const char* v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    if (v == nullptr) return std::nullopt;
    return std::string_view(v);
  }
  static std::string arg(MHD_Connection* c, const char* name) {
    const char* v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return v ? v : "";
  }

  static MHD_Result reply(MHD_Connection* c, unsigned status, const std::string& body, const char* type, bool close) {
    MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (r == nullptr) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (close) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == 405) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
    if (status == 503) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    const MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
  }

  MHD_Result refuse(MHD_Connection* c, const char* method, const char* url, int status, const std::string& reason) {
    switch (status) {
      case 400: ++refused_400_; break;
      case 405: ++refused_405_; break;
      case 411: ++refused_411_; break;
      case 413: ++refused_413_; break;
      case 415: ++refused_415_; break;
      default: ++refused_503_; break;
    }
    log_refusal(method, url, static_cast<unsigned>(status), reason, " before reading its body");
    // Connection: close: the unread body (if any) is never read as a next request.
    return reply(c, static_cast<unsigned>(status), error_body(reason), "application/json", true);
  }

  MHD_Result handle(MHD_Connection* c, const char* url, const char* method, const char* upload_data,
                    std::size_t* upload_data_size, void** con_cls) {
    auto* req = static_cast<Request*>(*con_cls);
    if (req == nullptr) {
      // First call: the request line and headers are in, nothing of the body has been read.
      headers_in(c);
      auto verdict = judge_request_head(method, header(c, MHD_HTTP_HEADER_CONTENT_LENGTH),
                                        header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING),
                                        header(c, MHD_HTTP_HEADER_CONTENT_ENCODING), limits_.max_body_bytes);
      if (verdict.http_status != 0) return refuse(c, method, url, verdict.http_status, verdict.reason);
      const std::string_view m(method);
      const bool unsubscribe = std::string_view(url) == "/unsubscribe";
      if (m == "GET" || m == "HEAD") {
        if (std::string_view(url) == "/healthz") return reply(c, 200, "ok\n", "text/plain", false);
        if (unsubscribe) {
          // A person who opens the link (RFC 2369 https URI) gets a button that POSTs the
          // one-click body; a GET never unsubscribes (mail scanners follow links: RFC 8058 §4).
          const std::string action = "/unsubscribe?a=" + html_escaped(arg(c, "a"));
          return reply(c, 200,
                       "<!DOCTYPE html>\n<html><body><form method=\"post\" action=\"" + action +
                           "\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                           "<button type=\"submit\">Unsubscribe from these emails</button></form></body></html>\n",
                       "text/html; charset=utf-8", false);
        }
        auto r = receiver_.get(arg(c, "hub.mode"), arg(c, "hub.verify_token"), arg(c, "hub.challenge"));
        if (r.http_status >= 400) log_refusal(method, "(handshake)", static_cast<unsigned>(r.http_status), "verification handshake refused", "");
        return reply(c, static_cast<unsigned>(r.http_status), r.body, "text/plain", false);
      }
      if (unsubscribe && verdict.content_length > kUnsubscribeBodyMax) {
        return refuse(c, method, url, 413, "an unsubscribe body is at most " + std::to_string(kUnsubscribeBodyMax) + " bytes");
      }
      // POST: hold the declared length against the buffered-bodies budget, then read it.
      const std::size_t budget = kBufferedBodies * limits_.max_body_bytes;
      std::size_t held = buffered_.fetch_add(verdict.content_length) + verdict.content_length;
      if (held > budget) {
        buffered_ -= verdict.content_length;
        return refuse(c, method, url, 503, "too many request bodies in flight; retry");
      }
      req = new Request;
      req->unsubscribe = unsubscribe;
      req->reserved = verdict.content_length;
      req->body.reserve(verdict.content_length);
      *con_cls = req;
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      // libmicrohttpd frames the body by the Content-Length judged above: never more than that.
      req->body.append(upload_data, *upload_data_size);
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (req->queued) {
      // Resumed by the writer: the batch holding this request has committed (or failed).
      if (!req->done.load(std::memory_order_acquire)) return MHD_YES;
      if (req->outcome.http_status >= 400 && req->outcome.http_status < 500) {
        ++refused_other_;
        log_refusal(method, url, static_cast<unsigned>(req->outcome.http_status), req->outcome.reason, "");
      }
      return answer(c, req->outcome);
    }
    if (req->unsubscribe) {
      const std::string token = arg(c, "a");
      auto out = receiver_.unsubscribe(token, req->body);
      if (out.http_status != 200) {
        ++refused_other_;
        log_refusal(method, "/unsubscribe", static_cast<unsigned>(out.http_status), out.reason, "");
        return reply(c, static_cast<unsigned>(out.http_status), error_body(out.reason), "application/json", false);
      }
      return reply(c, 200, nlohmann::json{{"ok", true}, {"unsubscribed", out.changed}}.dump(), "application/json", false);
    }
    // The whole body is in: req->body is the raw body as received, the bytes the signature covers.
    const char* sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Hub-Signature-256");
    VerifiedCallback item;
    const bool large = req->body.size() > kLargeBody;
    if (large) large_parses_.acquire();
    std::optional<IngestOutcome> begun;
    try {
      begun = receiver_.begin(sig ? sig : "", std::move(req->body), item);
    } catch (...) {
      if (large) large_parses_.release();
      throw;
    }
    if (large) large_parses_.release();
    if (auto& out = begun) {
      if (out->http_status >= 400) {
        ++refused_other_;
        log_refusal(method, url, static_cast<unsigned>(out->http_status), out->reason, "");
      }
      return answer(c, *out);
    }
    // Suspended before it is queued, so the writer's resume can never come first.
    req->queued = true;
    MHD_suspend_connection(c);
    receiver_.submit(std::move(item), [req, c](const IngestOutcome& out) {
      req->outcome = out;
      req->done.store(true, std::memory_order_release);
      MHD_resume_connection(c);  // req may be gone once this returns
    });
    return MHD_YES;
  }

  MHD_Result answer(MHD_Connection* c, const IngestOutcome& out) {
    if (out.http_status == 200) {
      // {"duplicate":…,"event_id":…,"ok":true}, as nlohmann::json wrote it, without building one per request.
      std::string body = out.duplicate ? R"({"duplicate":true,"event_id":)" : R"({"duplicate":false,"event_id":)";
      body += std::to_string(out.event_id);
      body += R"(,"ok":true})";
      return reply(c, 200, body, "application/json", false);
    }
    return reply(c, static_cast<unsigned>(out.http_status), error_body(out.reason), "application/json", false);
  }

  CallbackReceiver& receiver_;
  const CallbacksConfig& limits_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mu_;
  std::unordered_map<MHD_Connection*, Conn> conns_;
  std::atomic<std::size_t> buffered_{0};
  std::atomic<std::uint64_t> refused_400_{0}, refused_405_{0}, refused_411_{0}, refused_413_{0}, refused_415_{0},
      refused_503_{0}, refused_other_{0}, timed_out_{0};
  LogRateLimiter log_limit_{kRefusalLogBurst, kRefusalLogWindowMs};
  std::counting_semaphore<kLargeParses> large_parses_{kLargeParses};
};

int serve(const Flags& flags, AppContext& ctx) {
  auto& log = ctx.log;
  auto [host, port] = split_listen(flags.listen);
  if (!flags.spool_dir.empty() && !std::filesystem::is_directory(flags.spool_dir)) {
    throw UsageError("--spool-dir \"" + flags.spool_dir + "\": not a directory");
  }
  // Both secrets are read here, before anything is opened: one that is configured but cannot be
  // read (its variable unset, its file unreadable) stops the receiver with exit 3, naming it.
  const bool has_app_secret = !ctx.cfg.whatsapp.app_secret.value().empty();
  const bool has_verify_token = !ctx.cfg.whatsapp.verify_token.value().empty();
  if (!has_app_secret) {
    log->warn("whatsapp.app_secret is not set: every callback POST will be rejected with 401");
  }
  if (!has_verify_token) {
    log->warn("whatsapp.verify_token is not set: the GET verification handshake will be refused (403)");
  }

  // Block SIGINT/SIGTERM in every thread (libmicrohttpd's threads inherit the mask) and take them
  // in one thread with sigwait, where stopping the server is safe.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Spool mode never opens the database: the web front may run where the database is not.
  // With [database] url the statuses go to the PostgreSQL ledger (its schema migrated here, as
  // dispatch does); the SQLite file, when present, still serves one-click unsubscribes and keeps
  // account-error alerts, and is never created for them.
  std::unique_ptr<store::Db> db;
  std::unique_ptr<store::PgStatusStore> pg;
  const bool on_pg = flags.spool_dir.empty() && !ctx.cfg.database_url.empty();
  if (on_pg) {
    pg = std::make_unique<store::PgStatusStore>(ctx.cfg.database_url, /*migrate=*/true);
    std::error_code ec;
    if (std::filesystem::exists(ctx.cfg.database_path, ec)) {
      db = std::make_unique<store::Db>(ctx.cfg.database_path);
    } else {
      log->warn("no SQLite file at {}: one-click unsubscribes are answered 503 and account errors only logged",
                ctx.cfg.database_path);
    }
  } else if (flags.spool_dir.empty()) {
    db = std::make_unique<store::Db>(ctx.cfg.database_path);
  }
  store::Db* dbp = db.get();
  const bool database_mode = dbp != nullptr || on_pg;
  CallbackReceiver receiver(dbp, ctx.cfg, *ctx.clock, log, flags.spool_dir, std::move(pg));
  if (database_mode) receiver.apply_pending();  // events a crash left unapplied, statuses whose delivery appeared

  const CallbacksConfig& limits = ctx.cfg.callbacks;
  auto [listen_fd, bound_port] = listen_socket(host, port);
  port = bound_port;
  // Each event-loop thread gets an equal share of max_connections: never more threads than connections.
  const int threads = std::max(1, std::min(flags.threads, limits.max_connections));
  Front front(receiver, limits, log);
  // ITC: quiesce at stop, and the writer's MHD_resume_connection wakes the connection's event loop.
  unsigned int mhd_flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  MHD_Daemon* daemon = MHD_start_daemon(
      mhd_flags, 0, nullptr, nullptr, &Front::access, &front,                                          //
      MHD_OPTION_EXTERNAL_LOGGER, &Front::mhd_log, &front,  // first: it applies to the options after it
      MHD_OPTION_LISTEN_SOCKET, listen_fd,                                                               //
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned int>(limits.max_connections),                    //
      MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned int>((limits.request_timeout_ms + 999) / 1000),  //
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<std::size_t>(32 * 1024),                           //
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned int>(threads > 1 ? threads : 0),  // 0: no pool, one loop
      MHD_OPTION_NOTIFY_COMPLETED, &Front::completed, &front,                                            //
      MHD_OPTION_NOTIFY_CONNECTION, &Front::connection, &front,                                          //
      MHD_OPTION_END);
  if (daemon == nullptr) {
    ::close(listen_fd);
    throw CheckFailed("listening on " + host + ":" + std::to_string(port) + " failed (libmicrohttpd did not start)");
  }
  std::atomic<bool> stop_sweeping{false};
  std::thread sweeper([&] { front.sweep_until(stop_sweeping); });
  if (!flags.port_file.empty()) write_port_file(flags.port_file, port);

  // The writer: commits queued callbacks in batches, applies pending statuses every interval.
  receiver.start(std::chrono::milliseconds(flags.pending_interval_ms));

  log->info("listening on {}:{} ({} mode{}{}; max_body_bytes {}, header_timeout {} s, request_timeout {} s, "
            "max_connections {}, {} thread(s))",
            host, port, flags.spool_dir.empty() ? "database" : "spool",
            !flags.spool_dir.empty() ? ", spool " + flags.spool_dir
            : on_pg ? ", PostgreSQL ledger " + store::pg_url_for_display(ctx.cfg.database_url)
                    : ", database " + ctx.cfg.database_path,
            !has_app_secret ? ", NO APP SECRET: rejecting every POST" : "", limits.max_body_bytes,
            limits.header_timeout_ms / 1000, limits.request_timeout_ms / 1000, limits.max_connections, threads);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log->info("{}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  // Quiesce first (stop accepting; the listen socket is handed back, so it is closed once, here).
  const MHD_socket quiesced = MHD_quiesce_daemon(daemon);
  // Then the writer: what is queued is committed and answered (its connections resumed; one
  // submitted from here on is answered 503 and its sender retries), so no connection is left
  // suspended when the daemon stops.
  receiver.stop();
  // Joins the event-loop threads: a request whose handler is running finishes first; the others
  // are closed and their senders retry.
  MHD_stop_daemon(daemon);
  if (quiesced != MHD_INVALID_SOCKET) ::close(quiesced);
  stop_sweeping = true;
  sweeper.join();
  if (database_mode) receiver.apply_pending();
  auto stats = receiver.stats();
  stats.update(front.stats());
  log->info("stopped: {}", stats.dump());
  if (ctx.json) print_json(stats);
  return kExitOk;
}

}  // namespace

int callbacks_main(int argc, char** argv) {
  return run_main("daybreak-callbacks", [&]() -> int {
    CLI::App app{
        "daybreak-callbacks: receives WhatsApp status callbacks. GET answers Meta's verification handshake\n"
        "(hub.mode, hub.verify_token, hub.challenge); POST verifies X-Hub-Signature-256 over the raw body with\n"
        "whatsapp.app_secret (401 when missing or wrong, or when no secret is configured), stores the raw event\n"
        "durably, answers 200, and applies its statuses to the delivery ledger, each on its own (one that cannot be\n"
        "read is stored with its reason: `daybreak status rejected`). Any path; GET /healthz; POST /unsubscribe?a=TOKEN\n"
        "(RFC 8058 one-click unsubscribe from an email's List-Unsubscribe link, [email] unsubscribe_secret).\n"
        "Refused before the body is read: chunked or compressed bodies, a POST without Content-Length or over\n"
        "callbacks.max_body_bytes; connections slower than callbacks.header_timeout_seconds are closed."};
    GlobalOptions g;
    add_global_options(app, g);
    Flags flags;
    app.add_option("--listen", flags.listen, "HOST:PORT to listen on; port 0 picks a free one")->capture_default_str();
    app.add_option("--port-file", flags.port_file, "Write the bound port to this file (atomically) once bound");
    app.add_option("--spool-dir", flags.spool_dir,
                   "Write each verified request to this directory (for `daybreak ingest --spool`) instead of the database");
    app.add_option("--pending-interval-ms", flags.pending_interval_ms,
                   "How often statuses that matched no delivery yet are retried")
        ->check(CLI::Range(10L, 3'600'000L))
        ->capture_default_str();
    app.add_option("--threads", flags.threads,
                   "Event-loop threads; each serves many connections (callbacks.max_connections bounds them all)")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    if (int rc = parse_cli(app, argc, argv); rc >= 0) return rc;
    auto ctx = make_context(g, "daybreak-callbacks");
    return serve(flags, ctx);
  });
}

}  // namespace daybreak
