// daybreak-sim's event-loop HTTP server (cmd/daybreak-sim/http_server.cpp): the request parser on
// its own, then the server on 127.0.0.1 with raw sockets, so framing, pipelining order,
// held-back answers and closes are seen byte for byte.
#include "daybreak-sim/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace daybreak::sim::http {
namespace {

constexpr std::size_t kMax = 1 << 20;

TEST(SimHttpParse, CompleteRequestWithBody) {
  const std::string data =
      "POST /v21.0/123/messages?x=1&summary=0 HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\n"
      "Authorization: Bearer t\r\n\r\nhelloGET";
  ParseResult r = parse_request(data, kMax);
  ASSERT_EQ(r.state, ParseState::kComplete);
  EXPECT_EQ(r.consumed, data.size() - 3);
  EXPECT_EQ(r.request.method, "POST");
  EXPECT_EQ(r.request.path, "/v21.0/123/messages");
  EXPECT_EQ(r.request.query_param("summary").value_or("?"), "0");
  EXPECT_FALSE(r.request.query_param("nope").has_value());
  EXPECT_EQ(r.request.header("AUTHORIZATION"), "Bearer t");
  EXPECT_EQ(r.request.body, "hello");
  EXPECT_TRUE(r.request.keep_alive);
}

TEST(SimHttpParse, IncompleteUntilTheWholeBodyIsIn) {
  const std::string head = "POST /x HTTP/1.1\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n";
  EXPECT_EQ(parse_request(head.substr(0, 20), kMax).state, ParseState::kIncomplete);
  ParseResult r = parse_request(head + "12345", kMax);
  EXPECT_EQ(r.state, ParseState::kIncomplete);
  EXPECT_TRUE(r.expects_continue);
  r = parse_request(head + "1234567890", kMax);
  EXPECT_EQ(r.state, ParseState::kComplete);
  EXPECT_FALSE(r.expects_continue);
}

TEST(SimHttpParse, ConnectionSemantics) {
  EXPECT_FALSE(parse_request("GET / HTTP/1.0\r\n\r\n", kMax).request.keep_alive);
  EXPECT_TRUE(parse_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", kMax).request.keep_alive);
  EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", kMax).request.keep_alive);
}

TEST(SimHttpParse, RefusesWhatItCannotFrame) {
  EXPECT_EQ(parse_request("GARBAGE\r\n\r\n", kMax).state, ParseState::kBad);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nno colon\r\n\r\n", kMax).state, ParseState::kBad);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", kMax).state, ParseState::kBad);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", kMax).state, ParseState::kBad);
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", kMax).state,
            ParseState::kBad);
  EXPECT_EQ(parse_request("GET / HTTP/2.0\r\n\r\n", kMax).status, 505);
  ParseResult r = parse_request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", kMax);
  EXPECT_EQ(r.state, ParseState::kUnsupported);
  EXPECT_EQ(r.status, 501);
  r = parse_request("POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", kMax);
  EXPECT_EQ(r.state, ParseState::kTooLarge);
  EXPECT_EQ(r.status, 413);
  r = parse_request("GET /" + std::string(kMaxHeaderBytes + 10, 'a'), kMax);
  EXPECT_EQ(r.status, 431);
}

TEST(SimHttpResponse, FramesBodyAndClose) {
  Response r;
  r.status = 404;
  r.body = "{}";
  r.headers.emplace_back("X-A", "b");
  std::string out;
  append_response(out, r, /*close=*/true, "Fri, 27 Nov 2026 00:00:00 GMT");
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Date: Fri, 27 Nov 2026 00:00:00 GMT\r\nX-A: b\r\nConnection: close\r\n\r\n{}");
}

/// A server on 127.0.0.1 whose handler answers the path as the body; paths starting with
/// /slow are held back 50 ms, so a later fast request would overtake it if order were not kept.
class SimHttpServer : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(
        [this](const Request& req) {
          ++handled_;
          Response r;
          r.body = std::string(req.path) + ":" + std::string(req.body);
          if (req.path.substr(0, 5) == "/slow") r.delay = std::chrono::milliseconds(50);
          return r;
        },
        1024);
    std::string error;
    port_ = server_->bind("127.0.0.1", 0, error);
    ASSERT_GT(port_, 0) << error;
    thread_ = std::thread([this] { server_->run(2); });
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
  }

  int connect_client() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  }
  static void send_all(int fd, const std::string& s) {
    ASSERT_EQ(::send(fd, s.data(), s.size(), 0), static_cast<ssize_t>(s.size()));
  }
  /// Reads until the peer closes or `until` appears `times` times (5 s receive timeout).
  static std::string read_until(int fd, const std::string& until, int times) {
    std::string got;
    char buf[4096];
    for (;;) {
      int seen = 0;
      for (std::size_t p = got.find(until); p != std::string::npos; p = got.find(until, p + 1)) ++seen;
      if (!until.empty() && seen >= times) return got;
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return got;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }

  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<int> handled_{0};
  int port_ = 0;
};

TEST_F(SimHttpServer, PipelinedRequestsAreAnsweredInOrderEvenWhenTheFirstIsHeldBack) {
  int fd = connect_client();
  send_all(fd,
           "POST /slow HTTP/1.1\r\nContent-Length: 2\r\n\r\nabGET /fast HTTP/1.1\r\n\r\n"
           "GET /last HTTP/1.1\r\nConnection: close\r\n\r\n");
  std::string got = read_until(fd, "", 0);  // the last request closes the connection
  ::close(fd);
  std::size_t slow = got.find("/slow:ab"), fast = got.find("/fast:"), last = got.find("/last:");
  ASSERT_NE(slow, std::string::npos) << got;
  ASSERT_NE(fast, std::string::npos) << got;
  ASSERT_NE(last, std::string::npos) << got;
  EXPECT_LT(slow, fast);
  EXPECT_LT(fast, last);
  EXPECT_NE(got.find("Connection: close"), std::string::npos);
  EXPECT_EQ(handled_.load(), 3);
}

TEST_F(SimHttpServer, ExpectContinueGetsAnInterimAnswerBeforeTheBody) {
  int fd = connect_client();
  send_all(fd, "POST /a HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(read_until(fd, "\r\n\r\n", 1), "HTTP/1.1 100 Continue\r\n\r\n");
  send_all(fd, "xyz");
  std::string got = read_until(fd, "/a:xyz", 1);
  EXPECT_NE(got.find("HTTP/1.1 200 OK"), std::string::npos) << got;
  ::close(fd);
}

TEST_F(SimHttpServer, MalformedAndOversizedRequestsAreRefusedAndClosed) {
  int fd = connect_client();
  send_all(fd, "GARBAGE\r\n\r\n");
  std::string got = read_until(fd, "", 0);
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << got;
  fd = connect_client();
  send_all(fd, "POST /big HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
  got = read_until(fd, "", 0);
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u) << got;
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(SimHttpServer, AClientThatLeavesWhileItsAnswerIsHeldBackDoesNotStopTheServer) {
  int fd = connect_client();
  send_all(fd, "GET /slow HTTP/1.1\r\n\r\n");
  ::close(fd);  // gone before the 50 ms answer
  fd = connect_client();
  send_all(fd, "GET /after HTTP/1.1\r\n\r\n");
  EXPECT_NE(read_until(fd, "/after:", 1).find("/after:"), std::string::npos);
  ::close(fd);
}

}  // namespace
}  // namespace daybreak::sim::http
