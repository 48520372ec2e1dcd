// `daybreak serve --listen 127.0.0.1:PORT --tokens FILE`: the operator console, a small web page
// over the same live figures, reports and change actions as `sla-report --watch`, `sla-report
// --html` and the operator commands. GNU libmicrohttpd (as daybreak-callbacks) serves it from
// one internal thread, so the one database connection is never shared between threads.
//
// Access: loopback only unless --allow-remote; a login with a per-operator token whose SHA-256
// is listed in an owner-only tokens file ("NAME ROLE SHA256HEX" per line, role viewer or
// operator); a session cookie (HttpOnly, SameSite=Strict) and a per-session CSRF token that
// every POST must carry in its form body; every action is POST only, needs role operator and a
// reason, and is audited with the operator's name. Every response carries a strict
// Content-Security-Policy (no inline script: the page's script is /static/console.js),
// frame-ancestors 'none' and X-Frame-Options DENY.
//
// With [database] url (the dispatch ledger on PostgreSQL) every figure is read there through the
// readers `sla-report --watch`, `sla-report` and `daybreak status` use (store::PgReportLedger,
// one read-only snapshot per frame, and store::pg_status_view), the firing alerts from this
// host's SQLite file, read-only, where a dispatch on PostgreSQL keeps them (and acknowledged
// there, as `daybreak alerts ack` on this host does); the actions the command line takes on
// PostgreSQL go through the same ops::*_pg functions (store::PgOperator, audited in PostgreSQL's
// audit_log), and the ones it cannot take there are listed in the live JSON's `unavailable`
// with the reason, shown so on the page, and refused (409).
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "app/plan.hpp"
#include "app/report.hpp"
#include "channels/email.hpp"
#include "app/send_now.hpp"
#include "cli/commands.hpp"
#include "cli/op_actions.hpp"
#include "cli/op_serve.hpp"
#include "cli/op_support.hpp"
#include "cli/report_watch.hpp"
#include "domain/time.hpp"
#include "engine/alerts.hpp"
#include "store/alerts.hpp"
#include "store/breakdown.hpp"
#include "store/overrides.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_operator.hpp"
#include "store/pg_reports.hpp"
#include "store/runs.hpp"

namespace daybreak {

namespace serve {

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) throw std::runtime_error("SHA-256 failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

std::vector<OperatorToken> load_tokens(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw ConfigError("--tokens " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw ConfigError("--tokens " + path + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw ConfigError("--tokens " + path + ": mode " + mode + " lets group or others read or write it; chmod 600 it");
  }
  std::ifstream in(path);
  if (!in) throw ConfigError("--tokens " + path + ": cannot be read");
  std::vector<OperatorToken> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream ls(line);
    OperatorToken t;
    std::string role, extra;
    if (!(ls >> t.name)) continue;
    const std::string where = "--tokens " + path + ":" + std::to_string(n) + ": ";
    if (!(ls >> role >> t.sha256_hex) || (ls >> extra)) throw ConfigError(where + "expected NAME ROLE SHA256HEX");
    if (role == "viewer") t.role = Role::viewer;
    else if (role == "operator") t.role = Role::operator_;
    else throw ConfigError(where + "role \"" + role + "\": expected viewer or operator");
    if (t.sha256_hex.size() != 64 || t.sha256_hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
      throw ConfigError(where + "expected the token's SHA-256 as 64 lower-case hex digits (sha256sum)");
    }
    for (const auto& o : out) {
      if (o.name == t.name) throw ConfigError(where + "operator \"" + t.name + "\" is listed twice");
    }
    out.push_back(std::move(t));
  }
  if (out.empty()) throw ConfigError("--tokens " + path + ": lists no operator");
  return out;
}

std::optional<OperatorToken> check_login(const std::vector<OperatorToken>& tokens, const std::string& name, const std::string& token) {
  const std::string h = sha256_hex(token);
  std::optional<OperatorToken> found;
  for (const auto& t : tokens) {
    // Compare every hash in constant time, whatever the name: the time says nothing.
    const bool same = CRYPTO_memcmp(t.sha256_hex.data(), h.data(), h.size()) == 0;
    if (same && t.name == name && !token.empty()) found = t;
  }
  return found;
}

ListenAddress parse_listen(const std::string& spec, bool allow_remote) {
  ListenAddress a;
  auto colon = spec.rfind(':');
  if (colon == std::string::npos) throw UsageError("--listen \"" + spec + "\": expected HOST:PORT, e.g. 127.0.0.1:8090");
  std::string host = spec.substr(0, colon);
  const std::string port = spec.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    throw UsageError("--listen \"" + spec + "\": port must be 0 to 65535");
  }
  a.port = static_cast<std::uint16_t>(std::stoi(port));
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    a.v6 = false;
    a.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    a.v6 = true;
    a.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    throw UsageError("--listen \"" + spec + "\": \"" + host + "\" is not an IP address");
  }
  a.host = host;
  if (!a.loopback && !allow_remote) {
    throw UsageError("--listen \"" + spec + "\": not a loopback address; the console is for this machine (put it behind an "
                     "HTTPS reverse proxy), or give --allow-remote to listen there anyway");
  }
  return a;
}

std::int64_t LoginThrottle::wait_ms(const std::string& client, std::int64_t now_ms) const {
  auto it = clients_.find(client);
  if (it == clients_.end() || it->second.count < max_failures_) return 0;
  return std::max<std::int64_t>(0, it->second.first_ms + window_ms_ - now_ms);
}

void LoginThrottle::failed(const std::string& client, std::int64_t now_ms) {
  auto it = clients_.find(client);
  if (it != clients_.end() && now_ms - it->second.first_ms >= window_ms_) {
    clients_.erase(it);
    it = clients_.end();
  }
  if (it == clients_.end()) {
    if (clients_.size() >= max_clients_) {
      auto stalest = std::min_element(clients_.begin(), clients_.end(),
                                      [](const auto& a, const auto& b) { return a.second.first_ms < b.second.first_ms; });
      clients_.erase(stalest);
    }
    it = clients_.emplace(client, Failures{now_ms, 0}).first;
  }
  ++it->second.count;
}

std::map<std::string, std::string> parse_form(const std::string& body) {
  std::map<std::string, std::string> out;
  auto decode = [](const std::string& s) {
    std::string r;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        r.push_back(' ');
      } else if (s[i] == '%' && i + 2 < s.size() + 0 && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        r.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else {
        r.push_back(s[i]);
      }
    }
    return r;
  };
  std::size_t start = 0;
  while (start <= body.size()) {
    auto end = body.find('&', start);
    if (end == std::string::npos) end = body.size();
    std::string pair = body.substr(start, end - start);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      std::string k = decode(pair.substr(0, eq));
      std::string v = eq == std::string::npos ? "" : decode(pair.substr(eq + 1));
      out.emplace(std::move(k), std::move(v));
    }
    start = end + 1;
  }
  return out;
}

}  // namespace serve

namespace {

using nlohmann::json;
using serve::Role;

constexpr std::size_t kServeMaxBody = 16 * 1024;
constexpr auto kServeSessionIdle = std::chrono::hours(12);
const char* const kServeCookie = "daybreak_session";
// No inline script or style anywhere on the console: its script and stylesheet are files of this
// server ('self'), the API is same-origin, and no page may frame it.
const char* const kConsoleCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'";
// The stored HTML report (render_html_report) has no script at all, and its styles are inline.
const char* const kReportCsp = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> b(bytes);
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

bool same_secret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}


struct Session {
  std::string name;
  Role role = Role::viewer;
  std::string csrf;
  std::chrono::steady_clock::time_point last_seen;
};

struct Response {
  unsigned status = 200;
  std::string body;
  std::string type = "application/json";
  std::string csp = kConsoleCsp;
  std::vector<std::pair<std::string, std::string>> headers;
};

Response json_response(unsigned status, const json& j) {
  Response r;
  r.status = status;
  r.body = j.dump();
  return r;
}
Response refuse(unsigned status, const std::string& why) { return json_response(status, {{"error", why}}); }
Response redirect(const std::string& to) {
  Response r;
  r.status = 303;
  r.type = "text/plain";
  r.body = "see " + to;
  r.headers.emplace_back("Location", to);
  return r;
}

struct Request {
  std::string method, url, body;
  bool too_big = false;
};

class Console {
 public:
  Console(AppContext ctx, std::vector<serve::OperatorToken> tokens)
      : ctx_(std::move(ctx)), tokens_(std::move(tokens)), pg_(!ctx_.cfg.database_url.empty()) {
    // On PostgreSQL the SQLite file is opened for writing only by an alert's acknowledgement
    // (it holds this host's alerts): the frames read them from it read-only (host_alerts), the
    // other actions go to PostgreSQL.
    if (!pg_) {
      db_ = std::make_unique<store::Db>(ctx_.cfg.database_path);
      frame_db_ = std::make_unique<store::Db>(ctx_.cfg.database_path);
    }
  }
  ~Console() { stop_frames(); }
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  Response handle(MHD_Connection* c, const Request& rq) {
    const std::string path = rq.url.substr(0, rq.url.find('?'));
    if (rq.method == "GET" || rq.method == "HEAD") {
      if (path == "/static/console.js") return asset(serve::console_js(), "text/javascript; charset=utf-8");
      if (path == "/static/console.css") return asset(serve::console_css(), "text/css; charset=utf-8");
      if (path == "/favicon.svg" || path == "/favicon.ico") return asset(serve::favicon_svg(), "image/svg+xml");
      if (path == "/login") return login_page("", 200);
    }
    if (rq.method == "POST" && path == "/login") return login(c, rq);
    if (rq.method != "GET" && rq.method != "HEAD" && rq.method != "POST") {
      Response r = refuse(405, "method not allowed");
      r.headers.emplace_back("Allow", "GET, HEAD, POST");
      return r;
    }
    auto session = current_session(c);
    if (!session) {
      if (rq.method == "GET" && (path == "/" || path == "/history" || path == "/report")) return redirect("/login");
      return refuse(403, "not logged in");
    }
    if (rq.method == "POST") return post(c, rq, path, *session);
    if (path.rfind("/api/action/", 0) == 0 || path == "/logout") {  // actions are POST only
      Response r = refuse(405, "actions are POST only");
      r.headers.emplace_back("Allow", "POST");
      return r;
    }
    if (path == "/") return console_page(*session);
    if (path == "/api/live") return guarded_json([&] { return live(); });
    if (path == "/api/history") return guarded_json([&] { return history(); });
    if (path == "/report") return report(c);
    return refuse(404, "no such page");
  }

 private:
  Response asset(std::string_view body, const char* type) {
    Response r;
    r.body = std::string(body);
    r.type = type;
    return r;
  }

  static std::string client_address(MHD_Connection* c) {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (const auto* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS); info && info->client_addr) {
      const sockaddr* sa = info->client_addr;
      if (sa->sa_family == AF_INET) ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
      if (sa->sa_family == AF_INET6) ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
    }
    return buf[0] != 0 ? std::string(buf) : std::string("?");
  }

  static std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

  Response login_page(const std::string& error, unsigned status) {
    Response r;
    r.status = status;
    r.type = "text/html; charset=utf-8";
    std::string page(serve::login_html());
    const std::string err = error.empty() ? "" : "<p class='error' role='alert'>" + channels::html_escape(error) + "</p>";
    page.replace(page.find("{{ERROR}}"), 9, err);
    r.body = page;
    return r;
  }

  Response login(MHD_Connection* c, const Request& rq) {
    auto form = serve::parse_form(rq.body);
    const std::string client = client_address(c);
    const auto now = steady_ms();
    {
      std::lock_guard lock(mu_);
      if (auto wait = throttle_.wait_ms(client, now); wait > 0) {
        ctx_.log->warn("console: login from {} refused: too many failed logins (retry in {} s)", client, (wait + 999) / 1000);
        Response r = login_page("Too many failed logins from this address; try again in a minute.", 429);
        r.headers.emplace_back("Retry-After", std::to_string((wait + 999) / 1000));
        return r;
      }
    }
    auto tok = serve::check_login(tokens_, form["name"], form["token"]);
    if (!tok) {
      {
        std::lock_guard lock(mu_);
        throttle_.failed(client, now);
      }
      ctx_.log->warn("console: failed login for \"{}\" from {}", form["name"], client);
      return login_page("Wrong name or token.", 403);
    }
    {
      std::lock_guard lock(mu_);
      throttle_.succeeded(client);
    }
    Session s;
    s.name = tok->name;
    s.role = tok->role;
    s.csrf = random_hex(32);
    s.last_seen = std::chrono::steady_clock::now();
    const std::string id = random_hex(32);
    {
      std::lock_guard lock(mu_);
      // Sessions idle past their limit are dropped here too, so the map does not grow with logins.
      std::erase_if(sessions_, [&](const auto& kv) { return s.last_seen - kv.second.last_seen > kServeSessionIdle; });
      sessions_[id] = s;
    }
    ctx_.log->info("console: {} logged in ({})", s.name, s.role == Role::operator_ ? "operator" : "viewer");
    Response r = redirect("/");
    r.headers.emplace_back("Set-Cookie", std::string(kServeCookie) + "=" + id + "; Path=/; HttpOnly; SameSite=Strict");
    return r;
  }

  std::optional<Session> current_session(MHD_Connection* c) {
    const char* v = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, kServeCookie);
    if (v == nullptr) return std::nullopt;
    std::lock_guard lock(mu_);
    auto it = sessions_.find(v);
    if (it == sessions_.end()) return std::nullopt;
    const auto now = std::chrono::steady_clock::now();
    if (now - it->second.last_seen > kServeSessionIdle) {
      sessions_.erase(it);
      return std::nullopt;
    }
    it->second.last_seen = now;
    return it->second;
  }

  Response console_page(const Session& s) {
    Response r;
    r.type = "text/html; charset=utf-8";
    std::string page(serve::console_html());
    auto put = [&](const std::string& key, const std::string& value) {
      for (auto p = page.find(key); p != std::string::npos; p = page.find(key, p + value.size())) page.replace(p, key.size(), value);
    };
    put("{{CSRF}}", channels::html_escape(s.csrf));
    put("{{USER}}", channels::html_escape(s.name));
    put("{{ROLE}}", s.role == Role::operator_ ? "operator" : "viewer");
    r.body = page;
    return r;
  }

  template <typename Fn>
  Response guarded_json(Fn&& fn) {
    try {
      return json_response(200, fn());
    } catch (const std::exception& e) {
      ctx_.log->error("console: {}", e.what());
      return refuse(500, e.what());
    }
  }

  // Several tabs polling twice a second share one frame: it is rebuilt at most every 400 ms.
  /// The latest live frame. Frames are built on their own thread (frame_loop) with their own
  /// connection, so a request never waits for one: a frame costs a pass over the run's
  /// figures, which at 100,000 deliveries took longer than the page may wait (scripts/bench w).
  json live() {
    std::unique_lock lock(frame_mu_);
    // Only the first request after the start waits, for the first frame.
    frame_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return frame_ != nullptr; });
    if (!frame_) {
      throw store::StoreError(frame_error_.empty() ? std::string("the first live frame is not ready yet")
                                                   : "the ledger cannot be read: " + frame_error_);
    }
    if (frame_error_.empty()) return *frame_;
    // The ledger could not be read since this frame: say so, never pass old figures as live.
    json out = *frame_;
    out["stale"] = {{"error", frame_error_}, {"since_ms", frame_error_since_}};
    return out;
  }

  /// Builds a frame every 400 ms, or at once after an action (frame_stale), and the history
  /// every 30 s on SQLite, 5 minutes on PostgreSQL, and after an action or when a run it shows
  /// closes, until stop_frames. On PostgreSQL the trend counts 30 days of deliveries in the
  /// server dispatch writes to (its own per-run headlines and the delivery truth by date), so
  /// it is not repeated every 30 s beside a morning's dispatch; it changes when a run closes.
  void frame_loop() {
    // The frames are an observer's work: on a host that also runs dispatch, this thread yields
    // the CPU to it — at least nice 10 even with --nice 0 (the whole console is at 10 by default).
    const auto tid = static_cast<id_t>(::gettid());
    errno = 0;
    if (const int current = ::getpriority(PRIO_PROCESS, tid); errno == 0 && current < 10 && ::setpriority(PRIO_PROCESS, tid, 10) != 0)
      ctx_.log->debug("console: could not lower the frame thread's priority: {}", std::strerror(errno));
    std::chrono::steady_clock::time_point history_at{};
    bool history_due = true;  // the first pass, and after an action
    const auto history_every = pg_ ? std::chrono::seconds(300) : std::chrono::seconds(30);
    std::set<std::int64_t> closed_runs;  // the runs the last frame showed closed
    while (true) {
      std::shared_ptr<const json> f, h;
      std::string error;
      try {
        f = std::make_shared<const json>(build_live());
      } catch (const std::exception& e) {
        ctx_.log->warn("console: live frame: {}", e.what());
        error = e.what();
      }
      if (f) {
        std::set<std::int64_t> closed;
        for (const auto& r : (*f)["runs"]) {
          if (r.value("closed", false)) closed.insert(r.value("run_id", std::int64_t{0}));
        }
        if (closed != closed_runs) history_due = true;
        closed_runs = std::move(closed);
      }
      if (const auto t = std::chrono::steady_clock::now(); history_due || t - history_at >= history_every) {
        try {
          h = std::make_shared<const json>(build_history());
          history_at = t;
          history_due = false;
        } catch (const std::exception& e) {
          ctx_.log->warn("console: history: {}", e.what());
        }
      }
      std::unique_lock lock(frame_mu_);
      if (f) frame_ = std::move(f);
      if (h) history_ = std::move(h);
      if (error.empty()) {
        frame_error_.clear();
      } else if (frame_error_.empty()) {
        frame_error_ = error;
        frame_error_since_ = ctx_.clock->now();
      }
      frame_cv_.notify_all();
      frame_cv_.wait_for(lock, std::chrono::milliseconds(400), [&] { return frame_stale_ || stopping_frames_; });
      if (stopping_frames_) return;
      if (frame_stale_) history_due = true;
      frame_stale_ = false;
    }
  }

 public:
  /// Starts the frame thread and waits (up to 10 s) for its first frame, so the console
  /// listens with a frame to serve and no first request waits for one.
  void start_frames() {
    frame_thread_ = std::thread([this] { frame_loop(); });
    std::unique_lock lock(frame_mu_);
    frame_cv_.wait_for(lock, std::chrono::seconds(10), [&] { return frame_ != nullptr && history_ != nullptr; });
  }
  void stop_frames() {
    {
      std::lock_guard lock(frame_mu_);
      stopping_frames_ = true;
    }
    frame_cv_.notify_all();
    if (frame_thread_.joinable()) frame_thread_.join();
  }

 private:
  /// The status-callback figures of a run (one aggregate over its deliveries), at most every
  /// 5 s per run: they move with callbacks, not with every send. Frame thread only.
  store::DeliveryTruth truth(store::ReportLedger& ledger, std::int64_t run_id, Millis now) {
    auto& c = truth_cache_[run_id];
    const auto t = std::chrono::steady_clock::now();
    if (!c.second || t - c.first >= std::chrono::seconds(5)) c = {t, ledger.truth_for_run(run_id, now)};
    return *c.second;
  }

  /// The breakdown's statements on the frame's ledger (store/breakdown.hpp: the same on both).
  std::vector<store::BreakdownRow> read_breakdown(std::int64_t run_id, bool delivered_only) {
    if (pg_) {
      return delivered_only ? store::pg_delivered_breakdown(frame_pg_->conn(), run_id)
                            : store::pg_delivery_breakdown(frame_pg_->conn(), run_id);
    }
    return delivered_only ? store::DeliveredBreakdown(*frame_db_, run_id) : store::DeliveryBreakdown(*frame_db_, run_id);
  }

  // The by tier/channel/sender rows. While a dispatch runs the run, it publishes them in its
  // progress row every second, from memory (engine::breakdown_json), all but "delivered": status
  // callbacks reach the ledger, not dispatch, so that column is counted here from the delivered
  // and read rows alone, at most every 5 s (as the headline delivery truth). Without a fresh
  // progress row (a finished run, a dispatch gone) every column is read from the ledger: like
  // dispatch's own snapshot, every second up to 250,000 deliveries, then one more second per
  // 250,000, and kept in between.
  json breakdown(std::int64_t run_id, std::size_t total, const json& published) {
    const auto t = std::chrono::steady_clock::now();
    if (published.is_array()) {
      auto& d = delivered_cache_[run_id];
      if (!d.second || t - d.first >= std::chrono::seconds(5)) d = {t, read_breakdown(run_id, true)};
      json rows = published;
      for (auto& row : rows) {
        std::int64_t n = 0;
        for (const auto& b : *d.second) {
          if (b.tier == row.value("tier", "") && b.channel == row.value("channel", "") && b.sender == row.value("sender", "")) n = b.delivered;
        }
        row["delivered"] = n;
      }
      // The ledger's order: tier rank, then channel and sender.
      auto rank = [&](const json& row) {
        const auto& tiers = ctx_.cfg.tiers;
        return static_cast<std::size_t>(std::find(tiers.begin(), tiers.end(), row.value("tier", "")) - tiers.begin());
      };
      std::stable_sort(rows.begin(), rows.end(), [&](const json& a, const json& b) {
        return std::make_tuple(rank(a), a.value("channel", ""), a.value("sender", "")) <
               std::make_tuple(rank(b), b.value("channel", ""), b.value("sender", ""));
      });
      return rows;
    }
    auto& c = breakdown_cache_[run_id];
    const auto every = std::chrono::milliseconds(1000 * static_cast<long>(1 + total / 250001));
    if (!c.second.is_null() && t - c.first < every) return c.second;
    json rows = json::array();
    for (const auto& b : read_breakdown(run_id, false)) {
      rows.push_back({{"tier", b.tier}, {"channel", b.channel}, {"sender", b.sender}, {"total", b.total}, {"accepted", b.accepted},
                      {"on_time", b.on_time}, {"delivered", b.delivered}, {"dead", b.dead}, {"pending", b.pending}});
    }
    c = {t, rows};
    return rows;
  }

  /// The frame thread's PostgreSQL ledger in a new read snapshot (connected on first use and
  /// again after a failure: a server that is down fails the frame, the next one retries).
  store::PgReportLedger& frame_pg() {
    if (frame_pg_) {
      try {
        frame_pg_->refresh();
        return *frame_pg_;
      } catch (const std::exception&) {
        frame_pg_.reset();
        throw;
      }
    }
    frame_pg_ = std::make_unique<store::PgReportLedger>(ctx_.cfg.database_url);
    return *frame_pg_;
  }

  static json alerts_json(const std::vector<store::Alert>& firing) {
    json alerts = json::array();
    for (const auto& a : firing) {
      alerts.push_back({{"alert_id", a.alert_id}, {"rule", a.rule}, {"subject", a.subject}, {"level", a.level}, {"message", a.message},
                        {"fired_at_ms", a.fired_at}, {"acknowledged_by", a.acknowledged_by ? json(*a.acknowledged_by) : json(nullptr)}});
    }
    return alerts;
  }

  /// On PostgreSQL: the firing alerts of this host's SQLite file, read-only, where a dispatch on
  /// PostgreSQL keeps the alerts it raised (as `daybreak status` counts them); null with the
  /// reason when there is no such file or it has no alerts yet. Frame thread only.
  void host_alerts(json& out) {
    const std::string& path = ctx_.cfg.database_path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      host_db_.reset();
      out["alerts"] = nullptr;
      out["alerts_note"] = "unknown: no SQLite file on this host (" + path + "), where a dispatch on PostgreSQL keeps its alerts";
      return;
    }
    try {
      if (!host_db_) {
        store::OpenOptions ro;
        ro.read_only = true;
        ro.migrate = false;
        host_db_ = std::make_unique<store::Db>(path, ro);
      }
      out["alerts"] = alerts_json(store::AlertListFiring(*host_db_));
      out["alerts_note"] = "from this host's SQLite file (" + path + "), where a dispatch on PostgreSQL keeps its alerts";
    } catch (const std::exception& e) {
      host_db_.reset();
      out["alerts"] = nullptr;
      out["alerts_note"] = "unknown: this host's SQLite file (" + path + ") has no alerts to read: " + e.what();
    }
  }

  /// The runs, switches, dead letters and next day of one frame, from either ledger's readers.
  void fill_live(json& out, store::ReportLedger& ledger, const std::vector<store::Control>& controls, std::int64_t dead,
                 const std::vector<store::Run>& next_day_runs, const std::string& next_day, Millis now) {
    const auto& cfg = ctx_.cfg;
    std::vector<store::Run> runs;
    try {
      runs = watch_pick_runs(ledger, WatchOptions{}, now);
    } catch (const CheckFailed&) {  // no runs yet
    }
    for (const auto& run : runs) {
      json l = watch_run_live(ledger, run, cfg, now, [&](std::int64_t id) { return truth(ledger, id, now); });
      l["state"] = run.state;
      l["owner"] = run.owner ? json(*run.owner) : json(nullptr);
      l["lease_live"] = run.owner && run.lease_until && *run.lease_until > now;
      l["heartbeat_age_ms"] = run.heartbeat_at ? json(now - *run.heartbeat_at) : json(nullptr);
      json progress = json::parse(run.progress, nullptr, false);
      const bool fresh = progress.is_object() && progress.contains("at") && progress["at"].is_number() &&
                         std::llabs(now - progress["at"].get<Millis>()) <= 5000 && run.state == "running";
      l["breakers"] = fresh && progress.contains("breakers") ? progress["breakers"] : json::array();
      l["writer_backlog"] = fresh ? progress.value("writer_backlog", json(0)) : json(0);
      const json published = fresh && progress.contains("live") && progress["live"].is_object()
                                 ? progress["live"].value("breakdown", json())
                                 : json();
      l["breakdown"] = breakdown(run.run_id, l.value("total", std::size_t{0}), published);
      out["runs"].push_back(std::move(l));
    }
    json paused = json::object();
    for (const auto& c : controls) {
      if (c.key.rfind("pause", 0) == 0 && c.value == "1") paused[c.key] = {{"since_ms", c.updated_at}, {"by", c.updated_by}};
    }
    out["paused"] = paused;
    out["dead_letters"] = dead;
    // Before the window: the next delivery day's plan (runs, counts, capacity verdict).
    json plan = {{"date", next_day}, {"runs", json::array()}};
    for (const auto& r : next_day_runs) {
      json rep = json::parse(r.plan_report, nullptr, false);
      plan["runs"].push_back({{"run_id", r.run_id}, {"slot_at_ms", r.slot_at}, {"window_start_ms", r.window_start},
                              {"window_end_ms", r.window_end}, {"deadline_at_ms", r.deadline_at}, {"state", r.state},
                              {"planned_count", r.planned_count}, {"feasible", r.feasible},
                              {"plan_report", rep.is_discarded() ? json::object() : rep}});
    }
    out["plan"] = plan;
  }

  json build_live() {
    const Millis now = ctx_.clock->now();
    const auto& cfg = ctx_.cfg;
    json out = {{"now_ms", now},
                {"tz", cfg.default_timezone},
                {"ledger", pg_ ? "postgresql" : "sqlite"},
                {"sla_target_pct", kSlaTargetPct},
                {"alert_pct", cfg.alerts.live_success_pct},
                {"runs", json::array()},
                {"unavailable", unavailable_actions()},
                {"notes", action_notes()}};
    const std::string next_day = default_delivery_date(cfg, now);
    if (pg_) {
      // One read-only snapshot of the PostgreSQL ledger per frame: sla-report --watch's reader
      // for the runs, daybreak status's for the switches, dead letters and next day.
      auto& ledger = frame_pg();
      auto v = store::pg_status_view(ledger.conn(), now - cfg.dispatch.drain_after_deadline_ms, now, next_day);
      fill_live(out, ledger, v.controls, v.dead, v.next_day_runs, next_day, now);
      host_alerts(out);
      return out;
    }
    store::guarded("reading live figures", [&] {
      SQLite::Transaction tx(frame_db_->raw(), SQLite::TransactionBehavior::DEFERRED);  // one snapshot per frame
      store::SqliteReportLedger ledger(*frame_db_);
      fill_live(out, ledger, store::ControlList(*frame_db_), store::DeadCount(*frame_db_), store::RunListForDate(*frame_db_, next_day),
                next_day, now);
      out["alerts"] = alerts_json(store::AlertListFiring(*frame_db_));
    });
    return out;
  }

  /// The actions the console cannot take on this ledger, with the reason (empty on SQLite).
  /// The page shows them so and act() refuses them (409): never done differently than asked.
  json unavailable_actions() const {
    json u = json::object();
    if (!pg_) return u;
    const std::string send_now =
        "on PostgreSQL send-now plans the urgent run on this host's SQLite file and publishes it under the day lock: "
        "use `daybreak send-now` on this host";
    u["send-now"] = send_now;
    u["send-now-check"] = send_now;
    return u;
  }
  /// How an available action differs on this ledger (empty on SQLite).
  json action_notes() const {
    json n = json::object();
    if (!pg_) return n;
    n["ack"] = "in this host's SQLite file (" + ctx_.cfg.database_path +
               "), where a dispatch on PostgreSQL keeps the alerts it raised (as `daybreak alerts ack` on this host)";
    n["cancel"] = "on PostgreSQL by delivery id only (as `daybreak cancel --delivery ID`); advisor and date are not looked up there";
    n["withdraw"] = "on PostgreSQL no fallback is ranked: pending deliveries get an emergency item or are held; withdraw it in "
                    "the SQLite file too before the next night is planned";
    return n;
  }

  /// The last 30 days' trend, as the frame thread last built it (every 30 s): a trend reads
  /// every day's report and took about half a second beside a 100,000-delivery dispatch, too
  /// long to keep the one request thread from the other pages.
  json history() {
    std::unique_lock lock(frame_mu_);
    frame_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return history_ != nullptr; });
    if (!history_) throw store::StoreError("the history is not ready yet");
    return *history_;
  }

  json build_history() {
    const Millis now = ctx_.clock->now();
    auto d = local_date(now, ctx_.cfg.default_timezone);
    const std::string to = d ? format_date(*d) : format_instant(now).substr(0, 10);
    // On PostgreSQL: what sla-report trend shows with the url, in a snapshot of its own.
    if (pg_) return build_trend(frame_pg(), to, 30);
    return build_trend(*frame_db_, to, 30);
  }

  Response report(MHD_Connection* c) {
    const char* d = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "date");
    auto date = parse_date(d ? d : "");
    if (!date) return refuse(400, "report: ?date=YYYY-MM-DD");
    try {
      const Millis now = ctx_.clock->now();
      std::string html;
      auto render = [&](store::ReportLedger& ledger) {
        json rep = build_date_report(ledger, format_date(*date), now);
        std::vector<std::int64_t> ids;
        for (const auto& r : rep["runs"]) ids.push_back(r.value("run_id", std::int64_t{0}));
        html = render_html_report(ledger, rep, ids, build_trend(ledger, format_date(*date), 30), ctx_.cfg.default_timezone);
      };
      if (pg_) {
        // sla-report --html's reader: its own connection and snapshot (this is the request thread).
        store::PgReportLedger ledger(ctx_.cfg.database_url);
        render(ledger);
      } else {
        store::guarded("building the report", [&] {
          SQLite::Transaction tx(db_->raw(), SQLite::TransactionBehavior::DEFERRED);
          store::SqliteReportLedger ledger(*db_);
          render(ledger);
        });
      }
      Response r;
      r.type = "text/html; charset=utf-8";
      r.csp = kReportCsp;
      r.body = std::move(html);
      return r;
    } catch (const CheckFailed& e) {
      return refuse(404, e.what());
    }
  }

  Response post(MHD_Connection* c, const Request& rq, const std::string& path, const Session& s) {
    if (rq.too_big) return refuse(413, "request body over 16 KiB");
    // A browser names the page a POST comes from: it must be this console.
    const char* origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char* host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (origin != nullptr && (host == nullptr || std::string(origin) != "http://" + std::string(host)) &&
        (host == nullptr || std::string(origin) != "https://" + std::string(host))) {
      return refuse(403, "cross-origin request refused");
    }
    auto form = serve::parse_form(rq.body);
    if (!same_secret(form["csrf"], s.csrf)) return refuse(403, "missing or wrong CSRF token; reload the page");
    if (path == "/logout") {
      const char* v = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, kServeCookie);
      std::lock_guard lock(mu_);
      if (v) sessions_.erase(v);
      Response r = redirect("/login");
      r.headers.emplace_back("Set-Cookie", std::string(kServeCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
      return r;
    }
    const std::string prefix = "/api/action/";
    if (path.rfind(prefix, 0) != 0) return refuse(404, "no such action");
    if (s.role != Role::operator_) return refuse(403, "operator " + s.name + " has role viewer: read only");
    const std::string action = path.substr(prefix.size());
    const std::string reason = form["reason"];
    ops::Actor who{s.name, "", "daybreak serve: " + action + " (web console, from " + client_address(c) + ")"};
    if (const json u = unavailable_actions(); u.contains(action)) {
      return refuse(409, action + ": not available while the ledger is on PostgreSQL: " + u[action].get<std::string>());
    }
    try {
      json out = act(action, form, reason, who);
      {
        std::lock_guard lock(frame_mu_);  // the next frame, built now, shows the change
        frame_stale_ = true;
      }
      frame_cv_.notify_all();
      ctx_.log->info("console: {} did {}: {}", s.name, action, out.dump());
      return json_response(200, out);
    } catch (const UsageError& e) {
      return refuse(400, e.what());
    } catch (const std::invalid_argument& e) {
      return refuse(400, e.what());
    } catch (const CheckFailed& e) {
      return refuse(409, e.what());
    } catch (const std::exception& e) {
      ctx_.log->error("console: {} by {}: {}", action, s.name, e.what());
      return refuse(500, e.what());
    }
  }

  static std::int64_t id_arg(const std::map<std::string, std::string>& form, const std::string& key) {
    auto it = form.find(key);
    if (it == form.end() || it->second.empty() || it->second.size() > 18 || it->second.find_first_not_of("0123456789") != std::string::npos) {
      throw UsageError(key + ": expected a positive number");
    }
    return std::stoll(it->second);
  }

  json act(const std::string& action, std::map<std::string, std::string>& form, const std::string& reason, const ops::Actor& who) {
    ops::require_reason(reason);
    const Millis now = ctx_.clock->now();
    const auto& tz = ctx_.cfg.default_timezone;
    if (action == "pause" || action == "resume") {
      // scope: all, a channel, run (with run_id) or sender (with sender_id): the CLI's flags.
      std::string scope = form["scope"];
      ops::PauseTarget t;
      if (scope == "run") {
        t.run_id = id_arg(form, "run_id");
      } else if (scope == "sender") {
        t.sender = form["sender_id"];
        if (t.sender.empty()) throw UsageError("sender_id: required");
      } else if (scope != "all") {
        t.channel = scope;
      }
      std::vector<std::string> known;
      for (const auto& sc : ctx_.cfg.senders) known.push_back(sc.id);
      if (pg_) return ops::set_pause_target_pg(op_pg(), t, known, action == "pause", reason, who, now, false);
      return ops::set_pause_target(*db_, t, known, action == "pause", reason, who, now, false);
    }
    if (action == "withdraw") {
      if (form["content_id"].empty()) throw UsageError("content_id: required");
      if (pg_) {
        // As `daybreak content withdraw` with the url: the pending deliveries from yesterday on.
        auto today = local_date(now, tz);
        if (!today) throw ConfigError(today.error().message);
        return ops::withdraw_content_pg(op_pg(), ctx_.cfg.emergency_language, format_date(add_days(*today, -1)), form["content_id"],
                                        reason, who, now);
      }
      return withdraw_content(*db_, ctx_.cfg, form["content_id"], reason, who.name, "", now);
    }
    if (action == "ack") {
      const std::int64_t alert_id = id_arg(form, "alert_id");
      if (pg_) {
        // A dispatch on PostgreSQL keeps its alerts in this host's SQLite file (the frames read
        // them there): acknowledged in it, as `daybreak alerts ack` on this host does, on a
        // connection of the action's own. A missing file is not created.
        const std::string& path = ctx_.cfg.database_path;
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
          throw UsageError("alert_id: no SQLite file on this host (" + path +
                           "), where a dispatch on PostgreSQL keeps its alerts: no alert to acknowledge");
        }
        store::Db host(path);
        auto c = engine::acknowledge_alert(host, ctx_.cfg.alerts, alert_id, who.name, "", reason, now);
        return {{"command", "alerts ack"}, {"alert_id", c.alert_id}, {"rule", c.rule}, {"subject", c.subject}, {"ledger", "postgresql"}};
      }
      auto c = engine::acknowledge_alert(*db_, ctx_.cfg.alerts, alert_id, who.name, "", reason, now);
      return {{"command", "alerts ack"}, {"alert_id", c.alert_id}, {"rule", c.rule}, {"subject", c.subject}};
    }
    if (action == "replay") {
      std::vector<std::int64_t> ids;
      std::optional<store::DeadFilter> filter;
      if (!form["run_id"].empty()) {
        filter = store::DeadFilter{};
        filter->run_id = id_arg(form, "run_id");
      } else {
        std::istringstream in(form["delivery_ids"]);
        std::string tok;
        while (std::getline(in, tok, ',')) {
          tok.erase(0, tok.find_first_not_of(' '));
          tok.erase(tok.find_last_not_of(' ') + 1);
          if (!tok.empty()) ids.push_back(id_arg({{"delivery_ids", tok}}, "delivery_ids"));
        }
      }
      if (pg_) return ops::dead_change_pg(op_pg(), tz, ids, filter, true, reason, who, now, false);
      return ops::dead_change(*db_, tz, ids, filter, true, reason, who, now, false);
    }
    if (action == "cancel") {
      std::int64_t id = 0;
      if (!form["delivery_id"].empty()) {
        id = id_arg(form, "delivery_id");
      } else if (pg_) {
        throw UsageError("delivery_id: required while the ledger is on PostgreSQL (" + action_notes()["cancel"].get<std::string>() + ")");
      } else {
        const std::string date = ops::parse_date_arg("date", form["date"]);
        auto d = store::DeliveryInfoForAdvisorDate(*db_, form["advisor_id"], date);
        if (!d) throw UsageError("advisor \"" + form["advisor_id"] + "\" has no delivery on " + date);
        id = d->delivery_id;
      }
      if (pg_) return ops::cancel_delivery_pg(op_pg(), tz, id, reason, who, now, false);
      return ops::cancel_delivery(*db_, tz, id, reason, who, now, false);
    }
    if (action == "send-now-check" || action == "send-now") {
      // Two steps, as on the command line: the check plans and judges (nothing written) and the
      // page shows its verdict; only the second POST, with confirm=yes, writes the urgent run.
      SendNowRequest req;
      req.content_id = form["content_id"];
      if (req.content_id.empty()) throw UsageError("content_id: required");
      std::vector<std::string> ids;
      for (auto& c : form["advisor_ids"]) {
        if (c == ',' || c == ' ' || c == '\r') c = '\n';
      }
      ids = parse_advisor_list(form["advisor_ids"]);
      const std::string segment = !ids.empty() ? "list:console" : form["segment"].empty() ? "all" : form["segment"];
      if (ids.empty() && segment.rfind("list:", 0) == 0) {
        throw UsageError("segment list:FILE is for the command line; paste the advisor ids into advisor_ids");
      }
      req.segment = parse_send_now_segment(segment, ids);
      if (!form["deadline_minutes"].empty()) {
        const auto m = id_arg(form, "deadline_minutes");
        if (m < 1 || m > 1440) throw UsageError("deadline_minutes: expected 1 to 1440");
        req.deadline_minutes = static_cast<int>(m);
      }
      req.reason = reason;
      req.actor = who.name;
      req.sudo_user = who.sudo_user;
      req.command = who.command;
      auto plan = prepare_send_now(*db_, ctx_.cfg, req, now);
      json out = plan.report;
      out["command"] = action == "send-now" ? "send-now" : "send-now check";
      out["verdict_text"] = format_send_now_verdict(plan.verdict, tz);
      if (action == "send-now-check") return out;
      if (form["confirm"] != "yes") throw UsageError("confirm: send-now writes only after its capacity verdict was shown (confirm=yes)");
      auto res = commit_send_now(*db_, ctx_.cfg, plan, req, now);
      for (auto& [k, v] : res.items()) out[k] = v;
      auto pickup = send_now_pickup_state(*db_, res["run_id"].get<std::int64_t>(), now);
      if (!pickup["dispatch_running"].get<bool>()) {
        pickup["message"] = "no dispatch is running: the watchdog starts one within a minute, or run `dispatch --run " +
                            std::to_string(res["run_id"].get<std::int64_t>()) + "` now";
      } else {
        pickup["message"] = "a running dispatch takes it within two seconds";
      }
      out["pickup"] = pickup;
      return out;
    }
    throw UsageError("unknown action \"" + action + "\"");
  }

  /// The request thread's PostgreSQL connection for the actions (connected, and the schema's
  /// pending migrations applied, on the first action, as `daybreak pause` does with the url).
  store::PgOperator& op_pg() {
    if (!op_pg_) op_pg_ = std::make_unique<store::PgOperator>(ctx_.cfg.database_url);
    op_pg_->conn().ensure_connected();  // a connection lost since the last action is opened again
    return *op_pg_;
  }

  AppContext ctx_;
  std::vector<serve::OperatorToken> tokens_;
  const bool pg_;                       ///< [database] url: the ledger is on PostgreSQL
  std::unique_ptr<store::Db> db_;       ///< the SQLite ledger (null on PostgreSQL)
  std::unique_ptr<store::PgOperator> op_pg_;  ///< the actions on PostgreSQL (request thread)
  std::mutex mu_;
  std::map<std::string, Session> sessions_;
  serve::LoginThrottle throttle_;  ///< failed logins per client address (under mu_)
  std::unique_ptr<store::Db> frame_db_;  ///< the frame thread's own connection (SQLite)
  std::unique_ptr<store::PgReportLedger> frame_pg_;  ///< the frame thread's own connection (PostgreSQL)
  std::unique_ptr<store::Db> host_db_;  ///< this host's SQLite file, read-only, for its alerts (PostgreSQL)
  std::string frame_error_;             ///< why the latest frames failed (under frame_mu_; empty: fresh)
  Millis frame_error_since_ = 0;
  std::mutex frame_mu_;
  std::condition_variable frame_cv_;
  std::shared_ptr<const json> frame_;  ///< the latest live frame (under frame_mu_)
  std::shared_ptr<const json> history_;  ///< the latest 30-day trend (under frame_mu_)
  bool frame_stale_ = false;           ///< an action changed something: build the next frame now
  bool stopping_frames_ = false;
  std::thread frame_thread_;
  // Frame thread only:
  std::map<std::int64_t, std::pair<std::chrono::steady_clock::time_point, json>> breakdown_cache_;
  std::map<std::int64_t, std::pair<std::chrono::steady_clock::time_point, std::optional<std::vector<store::BreakdownRow>>>>
      delivered_cache_;
  std::map<std::int64_t, std::pair<std::chrono::steady_clock::time_point, std::optional<store::DeliveryTruth>>> truth_cache_;
};

struct ServeOptions {
  std::string listen = "127.0.0.1:8090";
  bool allow_remote = false;
  std::string tokens = "/etc/daybreak/console.tokens";
  std::string port_file;
  int nice = 10;  ///< added to the inherited nice value before any thread starts (0: unchanged)
};

MHD_Result send_response(MHD_Connection* c, const Response& res) {
  MHD_Response* r = MHD_create_response_from_buffer(res.body.size(), const_cast<char*>(res.body.data()), MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res.type.c_str());
  MHD_add_response_header(r, "Content-Security-Policy", res.csp.c_str());
  MHD_add_response_header(r, "X-Frame-Options", "DENY");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
  MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  for (const auto& [k, v] : res.headers) MHD_add_response_header(r, k.c_str(), v.c_str());
  const MHD_Result ok = MHD_queue_response(c, res.status, r);
  MHD_destroy_response(r);
  return ok;
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char* /*version*/,
                      const char* upload_data, size_t* upload_data_size, void** con_cls) {
  auto* console = static_cast<Console*>(cls);
  if (*con_cls == nullptr) {
    auto* rq = new Request;
    rq->method = method;
    rq->url = url;
    *con_cls = rq;
    return MHD_YES;
  }
  auto* rq = static_cast<Request*>(*con_cls);
  if (*upload_data_size > 0) {
    if (rq->body.size() + *upload_data_size > kServeMaxBody) rq->too_big = true;
    else rq->body.append(upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  Response res;
  try {
    res = console->handle(c, *rq);
  } catch (const std::exception& e) {
    res = refuse(500, e.what());
  }
  return send_response(c, res);
}

void on_completed(void* /*cls*/, MHD_Connection* /*c*/, void** con_cls, MHD_RequestTerminationCode /*toe*/) {
  delete static_cast<Request*>(*con_cls);
  *con_cls = nullptr;
}

void on_mhd_log(void* cls, const char* fm, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fm, ap);
  static_cast<spdlog::logger*>(cls)->warn("console http: {}", buf);
}

int run_serve(const GlobalOptions& g, const ServeOptions& o) {
  auto addr = serve::parse_listen(o.listen, o.allow_remote);
  // The console watches the morning; it must not slow it. On a host that also runs dispatch,
  // its CPU (the page's reads, every 5 s the ledger's delivered column) competed with
  // dispatch's scheduler and raised the sends' lag p99 by a sixth (docs/performance.md, scenario
  // w); a lower priority lets dispatch's threads run first. The nice value is per thread on
  // Linux and inherited by the threads a thread creates, so it is set here, before the server's
  // and the frames' threads start.
  std::string nice_error;
  if (o.nice != 0) {
    errno = 0;
    const int current = ::getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && ::setpriority(PRIO_PROCESS, 0, std::min(19, current + o.nice)) != 0) nice_error = std::strerror(errno);
  }
  auto ctx = make_context(g, "daybreak");
  auto tokens = serve::load_tokens(o.tokens);
  auto log = ctx.log;
  if (!nice_error.empty()) log->warn("console: cannot lower its priority by {}: {}", o.nice, nice_error);
  Console console(std::move(ctx), std::move(tokens));

  // SIGINT/SIGTERM are taken by sigwait below: blocked before the server's thread starts, so it inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  sockaddr_in sa4{};
  sockaddr_in6 sa6{};
  const sockaddr* sa = nullptr;
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (addr.v6) {
    sa6.sin6_family = AF_INET6;
    sa6.sin6_port = htons(addr.port);
    ::inet_pton(AF_INET6, addr.host.c_str(), &sa6.sin6_addr);
    sa = reinterpret_cast<const sockaddr*>(&sa6);
    flags |= MHD_USE_IPv6;
  } else {
    sa4.sin_family = AF_INET;
    sa4.sin_port = htons(addr.port);
    ::inet_pton(AF_INET, addr.host.c_str(), &sa4.sin_addr);
    sa = reinterpret_cast<const sockaddr*>(&sa4);
  }
  console.start_frames();
  MHD_Daemon* daemon = MHD_start_daemon(flags, addr.port, nullptr, nullptr, &on_request, &console,
                                        MHD_OPTION_EXTERNAL_LOGGER, &on_mhd_log, log.get(),
                                        MHD_OPTION_SOCK_ADDR, sa,
                                        MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr,
                                        MHD_OPTION_CONNECTION_LIMIT, 64U,
                                        MHD_OPTION_CONNECTION_TIMEOUT, 30U,
                                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(64 * 1024),
                                        MHD_OPTION_END);
  if (daemon == nullptr) {
    console.stop_frames();
    throw CheckFailed("cannot listen on " + o.listen + " (address in use, or not this machine's)");
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
  const unsigned port = info ? info->port : addr.port;
  if (!o.port_file.empty()) {
    std::string tmp = o.port_file + ".tmp";
    { std::ofstream(tmp) << port << "\n"; }
    std::rename(tmp.c_str(), o.port_file.c_str());
  }
  log->info("console listening on http://{}:{}/ (loopback {})", addr.v6 ? "[" + addr.host + "]" : addr.host, port,
            addr.loopback ? "yes" : "NO");
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log->info("console stopping (signal {})", sig);
  MHD_stop_daemon(daemon);
  console.stop_frames();
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, GlobalOptions& g, Action& action) {
  auto o = std::make_shared<ServeOptions>();
  auto* sub = app.add_subcommand("serve", "The operator console: a live web page with the run's figures, history and audited actions");
  sub->fallthrough();
  sub->add_option("--listen", o->listen, "HOST:PORT to listen on (default 127.0.0.1:8090; loopback only unless --allow-remote)");
  sub->add_flag("--allow-remote", o->allow_remote, "Allow a --listen address that is not loopback");
  sub->add_option("--tokens", o->tokens, "Operators' tokens file: NAME ROLE SHA256HEX per line, mode 0600 (default /etc/daybreak/console.tokens)");
  sub->add_option("--port-file", o->port_file, "Write the port listened on to this file (with --listen HOST:0)");
  sub->add_option("--nice", o->nice, "Lower the console's CPU priority by N (0 to 19, default 10) so dispatch's threads run first")
      ->check(CLI::Range(0, 19));
  sub->callback([o, &g, &action] { action = [o, &g] { return run_serve(g, *o); }; });
}

}  // namespace daybreak
