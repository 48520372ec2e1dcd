// The epoll transport (core/channels/epoll_transport.cpp) against servers on 127.0.0.1: a
// scripted raw-socket server (its answers byte for byte: chunked, Content-Length, a close in the
// middle, silence) and cpp-httplib for many concurrent requests, both also over TLS with
// certificates made here by the openssl command. Also its HTTP/1.1 parser
// (core/channels/http1.cpp) fed byte by byte.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "channels/http1.hpp"
#include "channels/channel.hpp"
#include "channels/transport.hpp"
#include "config/config.hpp"

namespace daybreak::channels {
namespace {

using namespace std::chrono_literals;

TEST(DispatchTransportConfig, EpollByDefaultCurlOnRequestAnythingElseRefused) {
  EXPECT_EQ(parse_config("", "t.toml").dispatch.transport, "epoll");
  EXPECT_EQ(parse_config("[dispatch]\ntransport = \"curl\"\n", "t.toml").dispatch.transport, "curl");
  // workers not in the file: one epoll loop, two libcurl threads; the file's value either way
  EXPECT_EQ(parse_config("", "t.toml").dispatch.workers, 1);
  EXPECT_EQ(parse_config("[dispatch]\ntransport = \"curl\"\n", "t.toml").dispatch.workers, 2);
  EXPECT_EQ(parse_config("[dispatch]\nworkers = 3\n", "t.toml").dispatch.workers, 3);
  EXPECT_EQ(parse_config("[dispatch]\ntransport = \"curl\"\nworkers = 1\n", "t.toml").dispatch.workers, 1);
  try {
    parse_config("[dispatch]\ntransport = \"libuv\"\n", "t.toml");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.toml:2: key \"dispatch.transport\" must be \"curl\" or \"epoll\""), std::string::npos) << e.what();
  }
}

// --- the parser ---------------------------------------------------------------------------------

http1::ResponseParser::Result feed_bytewise(http1::ResponseParser& p, const std::string& s) {
  auto r = http1::ResponseParser::Result::more;
  for (std::size_t i = 0; i < s.size() && r == http1::ResponseParser::Result::more; ++i) {
    std::size_t used = 0;
    r = p.feed(s.data() + i, 1, used);
    EXPECT_EQ(used, 1U);
  }
  return r;
}

TEST(Http1Parser, ContentLengthBodyByteByByte) {
  http1::ResponseParser p;
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
  EXPECT_EQ(feed_bytewise(p, resp), http1::ResponseParser::Result::done);
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(p.body(), "{\"ok\":true}");
  EXPECT_TRUE(p.keep_alive());
}

TEST(Http1Parser, ChunkedBodyWithExtensionsAndTrailers) {
  http1::ResponseParser p;
  const std::string resp =
      "HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n";
  EXPECT_EQ(feed_bytewise(p, resp), http1::ResponseParser::Result::done);
  EXPECT_EQ(p.status(), 429);
  EXPECT_EQ(p.body(), "hello world");
  EXPECT_EQ(p.retry_after_ms(0), 7000);
}

TEST(Http1Parser, WholeBufferLeavesWhatFollowsTheResponse) {
  http1::ResponseParser p;
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1";
  std::size_t used = 0;
  EXPECT_EQ(p.feed(resp.data(), resp.size(), used), http1::ResponseParser::Result::done);
  EXPECT_EQ(used, resp.size() - 8);
  EXPECT_EQ(p.body(), "ok");
}

TEST(Http1Parser, ContinueThenAnswerAndCloseDelimitedBody) {
  http1::ResponseParser p;
  const std::string resp = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 500 Oops\r\n\r\npartial body";
  std::size_t used = 0;
  EXPECT_EQ(p.feed(resp.data(), resp.size(), used), http1::ResponseParser::Result::more);
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.eof(), http1::ResponseParser::Result::done);
  EXPECT_EQ(p.status(), 500);
  EXPECT_EQ(p.body(), "partial body");
}

TEST(Http1Parser, ConnectionCloseAndErrors) {
  {
    http1::ResponseParser p;
    const std::string resp = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    std::size_t used = 0;
    EXPECT_EQ(p.feed(resp.data(), resp.size(), used), http1::ResponseParser::Result::done);
    EXPECT_FALSE(p.keep_alive());
  }
  {
    http1::ResponseParser p;
    const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
    std::size_t used = 0;
    EXPECT_EQ(p.feed(resp.data(), resp.size(), used), http1::ResponseParser::Result::more);
    EXPECT_EQ(p.eof(), http1::ResponseParser::Result::error);
    EXPECT_TRUE(p.in_body());
  }
  {
    http1::ResponseParser p;
    const std::string resp = "SMTP/1.1 200 OK\r\n\r\n";
    std::size_t used = 0;
    EXPECT_EQ(p.feed(resp.data(), resp.size(), used), http1::ResponseParser::Result::error);
  }
  {
    http1::ResponseParser p;
    const std::string resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    std::size_t used = 0;
    EXPECT_EQ(p.feed(resp.data(), resp.size(), used), http1::ResponseParser::Result::error);
  }
  {
    http1::ResponseParser p;
    EXPECT_EQ(p.eof(), http1::ResponseParser::Result::error);
    EXPECT_FALSE(p.started());
  }
}

TEST(Http1Parser, BodyIsCappedButReadToTheEnd) {
  http1::ResponseParser p;
  const std::size_t n = http1::ResponseParser::kMaxBody + 1000;
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(n) + "\r\n\r\n" + std::string(n, 'x');
  std::size_t used = 0;
  EXPECT_EQ(p.feed(resp.data(), resp.size(), used), http1::ResponseParser::Result::done);
  EXPECT_EQ(used, resp.size());
  EXPECT_EQ(p.body().size(), http1::ResponseParser::kMaxBody);
}

TEST(Http1Url, ParsesHostPortTargetAndHostHeader) {
  http1::Url u;
  ASSERT_TRUE(http1::parse_url("http://127.0.0.1:8080/v26.0/1/messages?x=1#frag", u));
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/v26.0/1/messages?x=1");
  EXPECT_EQ(u.host_header, "127.0.0.1:8080");
  ASSERT_TRUE(http1::parse_url("http://example.com", u));
  EXPECT_EQ(u.target, "/");
  EXPECT_EQ(u.host_header, "example.com");
  ASSERT_TRUE(http1::parse_url("http://[::1]:81/a", u));
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.host_header, "[::1]:81");
  ASSERT_TRUE(http1::parse_url("https://example.com/a", u));
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.port, 443);
  EXPECT_FALSE(http1::parse_url("ftp://example.com/", u));
  EXPECT_FALSE(http1::parse_url("http://:80/", u));
  EXPECT_FALSE(http1::parse_url("http://h:99999/", u));
  EXPECT_FALSE(http1::parse_url("http://user@h/", u));
}

TEST(Http1Url, RequestHeadDropsEmptyHeadersAndSetsLength) {
  http1::Url u;
  ASSERT_TRUE(http1::parse_url("http://h:81/p", u));
  const std::string head = http1::request_head(u, {"Content-Type: application/json", "Expect:"}, 42);
  EXPECT_EQ(head, "POST /p HTTP/1.1\r\nHost: h:81\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n");
}

// --- a scripted server --------------------------------------------------------------------------

/// What a scripted server received on one connection.
struct Received {
  std::string head;
  std::string body;
};

/// Reads one request (head and Content-Length body) through `read` (recv's contract); false at
/// EOF or error.
bool read_request_with(const std::function<ssize_t(char*, std::size_t)>& read, std::string& buf, Received& out) {
  while (true) {
    const auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      out.head = buf.substr(0, end + 4);
      std::size_t len = 0;
      const auto cl = out.head.find("Content-Length: ");
      if (cl != std::string::npos) len = std::stoul(out.head.substr(cl + 16));
      while (buf.size() < end + 4 + len) {
        char tmp[4096];
        const ssize_t n = read(tmp, sizeof tmp);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<std::size_t>(n));
      }
      out.body = buf.substr(end + 4, len);
      buf.erase(0, end + 4 + len);
      return true;
    }
    char tmp[4096];
    const ssize_t n = read(tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
}

bool read_request(int fd, std::string& buf, Received& out) {
  return read_request_with([fd](char* p, std::size_t n) { return ::recv(fd, p, n, 0); }, buf, out);
}

/// A TCP server on 127.0.0.1 whose every connection runs `handler(fd, connection_number)` on its
/// own thread. Counts connections.
class ScriptedServer {
 public:
  using Handler = std::function<void(int fd, int conn)>;
  explicit ScriptedServer(Handler h) : handler_(std::move(h)) {
    lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(lfd_, 512), 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    ::shutdown(lfd_, SHUT_RDWR);
    acceptor_.join();
    ::close(lfd_);
    std::lock_guard lk(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : conns_) t.join();
    for (int fd : fds_) ::close(fd);
  }
  [[nodiscard]] std::string url(const std::string& path = "/hook") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  [[nodiscard]] int connections() const { return accepted_.load(); }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{lfd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      const int n = ++accepted_;
      std::lock_guard lk(mu_);
      fds_.push_back(fd);
      conns_.emplace_back([this, fd, n] { handler_(fd, n); });
    }
  }
  Handler handler_;
  int lfd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> conns_;
};

void send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

/// A scripted server that answers every request on every connection with `answer` and keeps
/// each request it read, in order.
class RecordingServer {
 public:
  explicit RecordingServer(std::string answer)
      : answer_(std::move(answer)), server_([this](int fd, int) {
          std::string buf;
          Received r;
          while (read_request(fd, buf, r)) {
            {
              std::lock_guard lk(mu_);
              seen_.push_back(r);
            }
            send_all(fd, answer_);
          }
        }) {}
  [[nodiscard]] std::string url(const std::string& path = "/hook") const { return server_.url(path); }
  [[nodiscard]] int connections() const { return server_.connections(); }
  std::vector<Received> seen() {
    std::lock_guard lk(mu_);
    return seen_;
  }

 private:
  const std::string answer_;
  std::mutex mu_;
  std::vector<Received> seen_;
  ScriptedServer server_;  ///< last: its threads use the members above
};

/// Collects Responses; wait_for(n) blocks until n arrived (or 20 s).
class Collector {
 public:
  Transport::Done done() {
    return [this](Response r) {
      std::lock_guard lk(mu_);
      got_.push_back(std::move(r));
      cv_.notify_all();
    };
  }
  std::vector<Response> wait_for(std::size_t n, std::chrono::milliseconds limit = 20000ms) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, limit, [&] { return got_.size() >= n; });
    return got_;
  }
  std::size_t count() {
    std::lock_guard lk(mu_);
    return got_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Response> got_;
};

/// Submits one request, waits for its answer (at most 20 s), then shuts the transport down:
/// what arrived (one Response, or none when it timed out).
std::vector<Response> answer_then_stop(Transport& t, Request req) {
  Collector c;
  t.submit(std::move(req), c.done());
  auto got = c.wait_for(1);
  t.shutdown();
  return got;
}

Request post(const std::string& url, std::string body = "{\"n\":1}", long timeout_ms = 10000) {
  Request r;
  r.url = url;
  r.headers = {"Content-Type: application/json", "Authorization: Bearer t"};
  r.body = std::move(body);
  r.timeout_ms = timeout_ms;
  r.message_id = "m-1";
  return r;
}

std::unique_ptr<Transport> epoll(int workers = 1, long max_host = 0, const std::string& ca_file = "") {
  EpollTransportOptions o;
  o.workers = workers;
  o.max_host_connections = max_host;
  o.ca_file = ca_file;
  return make_epoll_transport(o);
}

TEST(EpollTransport, ReusesOneKeepAliveConnectionForRequestsInTurn) {
  RecordingServer server("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"id\":\"wamid\"}\n");
  auto t = epoll();
  for (int i = 0; i < 5; ++i) {
    Collector c;
    t->submit(post(server.url("/v1/messages?x=1"), "{\"i\":" + std::to_string(i) + "}"), c.done());
    auto got = c.wait_for(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_TRUE(got[0].transport_ok) << got[0].transport_error;
    EXPECT_EQ(got[0].status, 200);
    EXPECT_EQ(got[0].body, "{\"id\":\"wamid\"}\n");
    EXPECT_EQ(got[0].message_id, "m-1");
  }
  t->shutdown();
  EXPECT_EQ(server.connections(), 1);
  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 5U);
  EXPECT_EQ(seen[3].body, "{\"i\":3}");
  EXPECT_NE(seen[0].head.find("POST /v1/messages?x=1 HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(seen[0].head.find("Host: 127.0.0.1:"), std::string::npos);
  EXPECT_NE(seen[0].head.find("Authorization: Bearer t\r\n"), std::string::npos);
  EXPECT_NE(seen[0].head.find("Content-Length: 7\r\n"), std::string::npos);
}

TEST(EpollTransport, ChunkedAnswerWithRetryAfterAndALargeBody) {
  const std::string big(100000, 'b');
  ScriptedServer server([&](int fd, int) {
    std::string buf;
    Received r;
    if (!read_request(fd, buf, r)) return;
    std::string resp = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    // written in small pieces so the client parses across reads
    send_all(fd, resp);
    std::this_thread::sleep_for(5ms);
    send_all(fd, "4\r\nrate\r\n");
    std::this_thread::sleep_for(5ms);
    send_all(fd, "6\r\n limit\r\n0\r\n\r\n");
    if (!read_request(fd, buf, r)) return;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big);
  });
  auto t = epoll();
  Collector c1;
  t->submit(post(server.url()), c1.done());
  auto got = c1.wait_for(1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].transport_ok) << got[0].transport_error;
  EXPECT_EQ(got[0].status, 429);
  EXPECT_EQ(got[0].body, "rate limit");
  EXPECT_EQ(got[0].retry_after_ms, 3000);
  Collector c2;
  t->submit(post(server.url()), c2.done());
  got = c2.wait_for(1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].transport_ok) << got[0].transport_error;
  EXPECT_EQ(got[0].body.size(), 64U * 1024U);  // capped as the curl transport caps it
  t->shutdown();
  EXPECT_EQ(server.connections(), 1);
}

TEST(EpollTransport, ServerClosingMidResponseFailsAsMayHaveArrived) {
  ScriptedServer server([&](int fd, int) {
    std::string buf;
    Received r;
    if (!read_request(fd, buf, r)) return;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial");
    ::shutdown(fd, SHUT_RDWR);
  });
  auto t = epoll();
  Collector c;
  t->submit(post(server.url()), c.done());
  auto got = c.wait_for(1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_FALSE(got[0].transport_ok);
  EXPECT_EQ(got[0].transport_code, CURLE_PARTIAL_FILE);
  EXPECT_TRUE(got[0].request_may_have_arrived);
  EXPECT_EQ(classify_transport_failure(got[0]).kind, FailureKind::uncertain);
}

TEST(EpollTransport, EmptyReplyOnAFreshConnectionIsNotRetried) {
  ScriptedServer server([&](int fd, int) {
    std::string buf;
    Received r;
    read_request(fd, buf, r);
    ::shutdown(fd, SHUT_RDWR);
  });
  auto t = epoll();
  Collector c;
  t->submit(post(server.url()), c.done());
  auto got = c.wait_for(1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].transport_code, CURLE_GOT_NOTHING);
  EXPECT_TRUE(got[0].request_may_have_arrived);
  t->shutdown();
  EXPECT_EQ(server.connections(), 1);
}

TEST(EpollTransport, ReusedConnectionDyingBeforeAnAnswerIsRetriedOnceOnAFreshOne) {
  // Connection 1 answers one request, reads the next and closes without a byte (a server's
  // keep-alive timeout racing the request, as curl meets it): that request is sent again on a
  // fresh connection, which answers.
  ScriptedServer server([&](int fd, int conn) {
    std::string buf;
    Received r;
    while (read_request(fd, buf, r)) {
      if (conn == 1 && r.body == "{\"n\":2}") {
        ::shutdown(fd, SHUT_RDWR);
        return;
      }
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  auto t = epoll();
  for (int i = 1; i <= 3; ++i) {
    Collector c;
    t->submit(post(server.url(), "{\"n\":" + std::to_string(i) + "}"), c.done());
    auto got = c.wait_for(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_TRUE(got[0].transport_ok) << i << ": " << got[0].transport_error;
  }
  t->shutdown();
  EXPECT_EQ(server.connections(), 2);
}

TEST(EpollTransport, ServerThatNeverAnswersTimesOut) {
  ScriptedServer server([&](int fd, int) {
    std::string buf;
    Received r;
    read_request(fd, buf, r);
    char tmp[16];
    while (::recv(fd, tmp, sizeof tmp, 0) > 0) {
    }
  });
  auto t = epoll();
  Collector c;
  const auto t0 = std::chrono::steady_clock::now();
  t->submit(post(server.url(), "{}", 300), c.done());
  auto got = c.wait_for(1);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].transport_code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_TRUE(got[0].request_may_have_arrived);
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(classify_transport_failure(got[0]).error_code, "curl:28");
}

TEST(EpollTransport, ConnectionRefusedNeverArrived) {
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::close(fd);  // bound, never listened: nothing answers on it now
  }
  auto t = epoll();
  Collector c;
  t->submit(post("http://127.0.0.1:" + std::to_string(port) + "/x"), c.done());
  auto got = c.wait_for(1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].transport_code, CURLE_COULDNT_CONNECT);
  EXPECT_FALSE(got[0].request_may_have_arrived);
  EXPECT_NE(got[0].transport_error.find("Connection refused"), std::string::npos) << got[0].transport_error;
  EXPECT_EQ(classify_transport_failure(got[0]).kind, FailureKind::retryable);
}

TEST(EpollTransport, MalformedUrlFailsWithoutSending) {
  auto t = epoll();
  Collector c;
  t->submit(post("http://:0/x"), c.done());
  auto got = c.wait_for(1);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].transport_code, CURLE_URL_MALFORMAT);
  EXPECT_FALSE(got[0].request_may_have_arrived);
}

TEST(EpollTransport, ShutdownCompletesEveryRequestInFlightOnce) {
  // The server reads and never answers; shutdown lets them run for its grace, then fails each
  // one, once, as aborted and possibly arrived (their bytes left). Some wait for a connection
  // slot (max 4 per host) and never left: they fail as not arrived.
  ScriptedServer server([&](int fd, int) {
    char tmp[4096];
    while (::recv(fd, tmp, sizeof tmp, 0) > 0) {
    }
  });
  EpollTransportOptions o;
  o.workers = 2;
  o.max_host_connections = 4;
  o.shutdown_grace_ms = 200;
  auto t = make_epoll_transport(o);
  std::mutex mu;
  std::map<int, int> calls;
  int arrived = 0;
  constexpr int kN = 40;
  for (int i = 0; i < kN; ++i) {
    Request r = post(server.url(), "{}", 30000);
    r.message_id = std::to_string(i);
    t->submit(std::move(r), [&](Response resp) {
      std::lock_guard lk(mu);
      ++calls[std::stoi(resp.message_id)];
      EXPECT_FALSE(resp.transport_ok);
      EXPECT_EQ(resp.transport_code, CURLE_ABORTED_BY_CALLBACK);
      if (resp.request_may_have_arrived) ++arrived;
    });
  }
  std::this_thread::sleep_for(200ms);
  const auto t0 = std::chrono::steady_clock::now();
  t->shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  {
    std::lock_guard lk(mu);
    ASSERT_EQ(calls.size(), static_cast<std::size_t>(kN));
    for (const auto& [id, n] : calls) EXPECT_EQ(n, 1) << id;
    EXPECT_EQ(arrived, 8);  // 2 workers x 4 connections
  }
  // After shutdown a submit is answered at once, as aborted.
  Collector c;
  t->submit(post(server.url()), c.done());
  auto got = c.wait_for(1, 1000ms);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].transport_code, CURLE_ABORTED_BY_CALLBACK);
}

TEST(EpollTransport, MaxHostConnectionsQueuesTheRest) {
  std::atomic<int> open{0}, peak{0};
  ScriptedServer server([&](int fd, int) {
    const int now = ++open;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::string buf;
    Received r;
    while (read_request(fd, buf, r)) {
      std::this_thread::sleep_for(5ms);
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    --open;
  });
  auto t = epoll(1, 3);
  Collector c;
  for (int i = 0; i < 30; ++i) t->submit(post(server.url()), c.done());
  auto got = c.wait_for(30);
  ASSERT_EQ(got.size(), 30U);
  for (const auto& r : got) EXPECT_TRUE(r.transport_ok) << r.transport_error;
  t->shutdown();
  EXPECT_LE(server.connections(), 3);
  EXPECT_LE(peak.load(), 3);
}

/// Posts n numbered bodies to `url` at once through t, then shuts t down: every answer must be a
/// 200 echoing its own request's body, and the server's handler must have counted n (`hits`).
void expect_echoes(Transport& t, const std::string& url, int n, const std::atomic<int>& hits) {
  std::mutex mu;
  std::vector<std::string> bodies(static_cast<std::size_t>(n));
  std::atomic<int> ok{0}, calls{0};
  std::promise<void> all;
  for (int i = 0; i < n; ++i) {
    t.submit(post(url, "{\"i\":" + std::to_string(i) + "}"), [&, i](Response resp) {
      if (resp.transport_ok && resp.status == 200) ++ok;
      else ADD_FAILURE() << i << ": " << resp.transport_code << " " << resp.transport_error;
      {
        std::lock_guard lk(mu);
        bodies[static_cast<std::size_t>(i)] = resp.body;
      }
      if (++calls == n) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(60s), std::future_status::ready);
  t.shutdown();
  EXPECT_EQ(ok.load(), n);
  EXPECT_EQ(hits.load(), n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(bodies[static_cast<std::size_t>(i)], "{\"i\":" + std::to_string(i) + "}");
}

TEST(EpollTransport, ManyConcurrentRequestsAgainstCppHttplib) {
  httplib::Server srv;
  std::atomic<int> hits{0};
  srv.Post("/echo", [&](const httplib::Request& req, httplib::Response& res) {
    ++hits;
    if (req.body.size() % 2 == 0) {
      res.set_content(req.body, "application/json");
    } else {
      const std::string body = req.body;
      res.set_chunked_content_provider("application/json", [body](std::size_t, httplib::DataSink& sink) {
        sink.write(body.data(), body.size());
        sink.done();
        return true;
      });
    }
  });
  // cpp-httplib holds a pool thread per keep-alive connection: 2 workers x 8 connections fit.
  srv.new_task_queue = [] { return new httplib::ThreadPool(24); };
  const int port = srv.bind_to_any_port("127.0.0.1");
  std::thread th([&] { srv.listen_after_bind(); });
  while (!srv.is_running()) std::this_thread::sleep_for(1ms);
  expect_echoes(*epoll(2, 8), "http://127.0.0.1:" + std::to_string(port) + "/echo", 2000, hits);
  srv.stop();
  th.join();
}

// --- https:// ------------------------------------------------------------------------------

/// A self-signed certificate and its key, made by the openssl command in a directory of its own:
/// `san` is the certificate's subjectAltName ("IP:127.0.0.1", "DNS:other.example").
struct Certificate {
  std::filesystem::path dir, pem, key;
  explicit Certificate(const std::string& san) {
    char tmpl[] = "/tmp/daybreak-tls-XXXXXX";
    dir = ::mkdtemp(tmpl);
    pem = dir / "cert.pem";
    key = dir / "key.pem";
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=daybreak-test"
                            " -addext subjectAltName=" + san + " -keyout " + key.string() + " -out " + pem.string() + " 2>/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  ~Certificate() { std::filesystem::remove_all(dir); }
  Certificate(const Certificate&) = delete;
  Certificate& operator=(const Certificate&) = delete;
};

/// The server side of the scripted TLS tests: one context, and a blocking session per connection.
class TlsServer {
 public:
  explicit TlsServer(const Certificate& cert) : ctx_(SSL_CTX_new(TLS_server_method())) {
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx_, cert.pem.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, cert.key.c_str(), SSL_FILETYPE_PEM), 1);
  }
  ~TlsServer() { SSL_CTX_free(ctx_); }
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;
  /// Accepts TLS on fd and runs fn(ssl); nothing when the handshake fails. The socket is left to
  /// the ScriptedServer, so a return without SSL_shutdown is an EOF without close_notify.
  void serve(int fd, const std::function<void(SSL*)>& fn) {
    sigset_t pipe;  // OpenSSL writes with write(2): a client gone away must not raise SIGPIPE here
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) fn(ssl);
    SSL_free(ssl);
    ::shutdown(fd, SHUT_RDWR);
  }

 private:
  SSL_CTX* ctx_;
};

bool tls_read_request(SSL* ssl, std::string& buf, Received& out) {
  return read_request_with([ssl](char* p, std::size_t n) { return static_cast<ssize_t>(SSL_read(ssl, p, static_cast<int>(n))); }, buf, out);
}
void tls_send_all(SSL* ssl, const std::string& s) { EXPECT_EQ(SSL_write(ssl, s.data(), static_cast<int>(s.size())), static_cast<int>(s.size())); }

std::unique_ptr<Transport> epoll_tls(const std::string& ca_file, int workers = 1, long max_host = 0) {
  return epoll(workers, max_host, ca_file);
}

std::string https_url(const std::string& http_url) { return "https://" + http_url.substr(7); }

/// Unsets the CA variables resolve_ca_file reads, for one test, so the system store decides.
class NoCaEnvironment {
 public:
  NoCaEnvironment() {
    for (const char* v : {"CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
      if (const char* was = std::getenv(v)) saved_.emplace_back(v, was);
      ::unsetenv(v);
    }
  }
  ~NoCaEnvironment() {
    for (const auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  NoCaEnvironment(const NoCaEnvironment&) = delete;
  NoCaEnvironment& operator=(const NoCaEnvironment&) = delete;

 private:
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST(EpollTransportTls, KeepAliveOverTlsAndAStaleConnectionRetriedOnAFreshOne) {
  Certificate cert("IP:127.0.0.1");
  TlsServer tls(cert);
  std::mutex mu;
  std::vector<Received> seen;
  ScriptedServer server([&](int fd, int conn) {
    tls.serve(fd, [&](SSL* ssl) {
      std::string buf;
      Received r;
      int served = 0;
      while (tls_read_request(ssl, buf, r)) {
        {
          std::lock_guard lk(mu);
          seen.push_back(r);
        }
        // The first connection answers two requests, then closes under the third unanswered.
        if (conn == 1 && ++served == 3) return;
        tls_send_all(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"id\":\"wamid\"}\n");
      }
    });
  });
  auto t = epoll_tls(cert.pem.string());
  for (int i = 0; i < 4; ++i) {
    Collector c;
    t->submit(post(https_url(server.url("/v1/messages")), "{\"i\":" + std::to_string(i) + "}"), c.done());
    auto got = c.wait_for(1);
    ASSERT_EQ(got.size(), 1U);
    EXPECT_TRUE(got[0].transport_ok) << i << ": " << got[0].transport_code << " " << got[0].transport_error;
    EXPECT_EQ(got[0].status, 200);
    EXPECT_EQ(got[0].body, "{\"id\":\"wamid\"}\n");
  }
  t->shutdown();
  EXPECT_EQ(server.connections(), 2);  // two requests on the first, the third resent on the second
  std::lock_guard lk(mu);
  ASSERT_EQ(seen.size(), 5U);
  EXPECT_EQ(seen[2].body, "{\"i\":2}");
  EXPECT_EQ(seen[3].body, "{\"i\":2}");
  EXPECT_NE(seen[0].head.find("POST /v1/messages HTTP/1.1\r\n"), std::string::npos);
  EXPECT_NE(seen[0].head.find("Content-Length: 7\r\n"), std::string::npos);
}

TEST(EpollTransportTls, CloseDelimitedBodyEndsAtAnEofWithoutCloseNotify) {
  Certificate cert("IP:127.0.0.1");
  TlsServer tls(cert);
  ScriptedServer server([&](int fd, int) {
    tls.serve(fd, [&](SSL* ssl) {
      std::string buf;
      Received r;
      if (tls_read_request(ssl, buf, r)) tls_send_all(ssl, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"id\":\"to-eof\"}");
    });  // returns without SSL_shutdown
  });
  auto t = epoll_tls(cert.pem.string());
  auto got = answer_then_stop(*t, post(https_url(server.url())));
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].transport_ok) << got[0].transport_code << " " << got[0].transport_error;
  EXPECT_EQ(got[0].body, "{\"id\":\"to-eof\"}");
}

TEST(EpollTransportTls, AServerGoneWhileALargeBodyIsWrittenFailsTheRequestNotTheProcess) {
  // OpenSSL writes with write(2): without SIGPIPE blocked on the transport's thread, the write
  // after the server's close would kill this process instead of failing the request.
  Certificate cert("IP:127.0.0.1");
  TlsServer tls(cert);
  ScriptedServer server([&](int fd, int) { tls.serve(fd, [](SSL*) {}); });  // handshake, then close
  auto t = epoll_tls(cert.pem.string());
  auto got = answer_then_stop(*t, post(https_url(server.url()), std::string(8 << 20, 'x')));
  ASSERT_EQ(got.size(), 1U);
  EXPECT_FALSE(got[0].transport_ok);
  EXPECT_TRUE(got[0].request_may_have_arrived);  // bytes of it left
}

TEST(EpollTransportTls, UnknownIssuerIsACertificateFailureAndNothingIsSent) {
  Certificate cert("IP:127.0.0.1");
  TlsServer tls(cert);
  std::atomic<int> requests{0};
  ScriptedServer server([&](int fd, int) {
    tls.serve(fd, [&](SSL* ssl) {
      std::string buf;
      Received r;
      while (tls_read_request(ssl, buf, r)) ++requests;
    });
  });
  NoCaEnvironment env;  // the system store: it does not know this certificate
  auto t = epoll_tls("");
  auto got = answer_then_stop(*t, post(https_url(server.url())));
  ASSERT_EQ(got.size(), 1U);
  EXPECT_FALSE(got[0].transport_ok);
  EXPECT_EQ(got[0].transport_code, CURLE_PEER_FAILED_VERIFICATION) << got[0].transport_error;
  EXPECT_NE(got[0].transport_error.find("SSL certificate problem"), std::string::npos) << got[0].transport_error;
  EXPECT_FALSE(got[0].request_may_have_arrived);
  EXPECT_TRUE(is_certificate_failure(got[0].transport_code));  // as the curl transport's code 60
  EXPECT_EQ(classify_transport_failure(got[0]).error_code, "curl:60");
  EXPECT_EQ(requests.load(), 0);
}

TEST(EpollTransportTls, ANameTheCertificateDoesNotCoverFailsVerification) {
  Certificate cert("DNS:other.example");
  TlsServer tls(cert);
  ScriptedServer server([&](int fd, int) { tls.serve(fd, [](SSL*) {}); });
  auto t = epoll_tls(cert.pem.string());  // the issuer is trusted; the name is not the URL's
  auto got = answer_then_stop(*t, post(https_url(server.url())));
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].transport_code, CURLE_PEER_FAILED_VERIFICATION) << got[0].transport_error;
  EXPECT_TRUE(is_certificate_failure(got[0].transport_code));
}

TEST(EpollTransportTls, APlainHttpServerFailsTheHandshakeAndAnUnreadableCaFileFailsAtOnce) {
  ScriptedServer server([&](int fd, int) {
    std::array<char, 4096> tmp{};
    if (::recv(fd, tmp.data(), tmp.size(), 0) > 0) send_all(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  });
  Certificate cert("IP:127.0.0.1");
  auto t = epoll_tls(cert.pem.string());
  auto got = answer_then_stop(*t, post(https_url(server.url())));
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].transport_code, CURLE_SSL_CONNECT_ERROR) << got[0].transport_error;
  EXPECT_FALSE(got[0].request_may_have_arrived);

  auto bad = epoll_tls((cert.dir / "missing.pem").string());
  auto got2 = answer_then_stop(*bad, post(https_url(server.url())));
  ASSERT_EQ(got2.size(), 1U);
  EXPECT_EQ(got2[0].transport_code, CURLE_SSL_CACERT_BADFILE) << got2[0].transport_error;
  EXPECT_NE(got2[0].transport_error.find("missing.pem"), std::string::npos) << got2[0].transport_error;
  EXPECT_TRUE(is_certificate_failure(got2[0].transport_code));
}

TEST(EpollTransportTls, ManyConcurrentRequestsAgainstCppHttplibOverTls) {
  Certificate cert("IP:127.0.0.1");
  httplib::SSLServer srv(cert.pem.c_str(), cert.key.c_str());
  ASSERT_TRUE(srv.is_valid());
  std::atomic<int> hits{0};
  srv.Post("/echo", [&](const httplib::Request& req, httplib::Response& res) {
    ++hits;
    res.set_content(req.body, "application/json");
  });
  srv.new_task_queue = [] { return new httplib::ThreadPool(24); };
  const int port = srv.bind_to_any_port("127.0.0.1");
  std::thread th([&] { srv.listen_after_bind(); });
  while (!srv.is_running()) std::this_thread::sleep_for(1ms);
  expect_echoes(*epoll_tls(cert.pem.string(), 2, 8), "https://127.0.0.1:" + std::to_string(port) + "/echo", 1000, hits);
  srv.stop();
  th.join();
}

TEST(EpollTransport, ASchemeWithAProxyInTheEnvironmentGoesThroughCurl) {
  // The "proxy" is a scripted server: a request that went through libcurl's proxy support
  // arrives in absolute form; one on the epoll transport's own connections would have gone to
  // the URL's host (which does not resolve) instead.
  RecordingServer proxy("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
  ::setenv("http_proxy", proxy.url("").c_str(), 1);
  ::unsetenv("no_proxy");
  ::unsetenv("NO_PROXY");
  auto t = epoll();
  auto got = answer_then_stop(*t, post("http://provider.invalid/v1/messages"));
  ::unsetenv("http_proxy");  // libcurl reads it per transfer
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].transport_ok) << got[0].transport_code << " " << got[0].transport_error;
  const auto seen = proxy.seen();
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].head.rfind("POST http://provider.invalid/v1/messages HTTP/1.1\r\n", 0), 0U) << seen[0].head;
}

TEST(CurlTransport, SubmitAfterShutdownIsAnsweredAtOnceAsAbortedHttpAndSmtp) {
  // The Transport contract: `done` exactly once per request, even for one submitted after
  // shutdown (the worker threads are gone by then; before, such a request waited for ever).
  ScriptedServer server([&](int fd, int) {
    std::string buf;
    Received r;
    while (read_request(fd, buf, r)) send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
  });
  CurlTransportOptions o;
  o.workers = 2;
  auto t = make_curl_transport(o);
  Collector before;
  t->submit(post(server.url()), before.done());
  auto first = before.wait_for(1);
  ASSERT_EQ(first.size(), 1U);
  EXPECT_TRUE(first[0].transport_ok);
  t->shutdown();
  Collector after;
  for (int i = 0; i < 4; ++i) t->submit(post(server.url()), after.done());  // both workers' turns
  Request mail;
  mail.kind = Request::Kind::smtp;
  mail.url = "smtp://127.0.0.1:9";
  mail.lane = "mail-late";  // a lane that never existed: it must not start after shutdown
  mail.concurrency = 1;
  mail.message_id = "mail-1";
  t->submit(std::move(mail), after.done());
  auto got = after.wait_for(5, 1000ms);
  ASSERT_EQ(got.size(), 5U);
  for (const auto& r : got) {
    EXPECT_FALSE(r.transport_ok);
    EXPECT_EQ(r.transport_code, CURLE_ABORTED_BY_CALLBACK);
    EXPECT_FALSE(r.request_may_have_arrived);
  }
  EXPECT_EQ(got.back().message_id, "mail-1");
  EXPECT_EQ(server.connections(), 1);
}

}  // namespace
}  // namespace daybreak::channels
