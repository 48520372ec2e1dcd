// The status receiver's bounds: what judge_request_head refuses from a request's headers alone
// (before the body is read), and the [callbacks] configuration keys that set them.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "app/callbacks.hpp"
#include "config/config.hpp"

namespace daybreak {
namespace {

constexpr std::size_t kMiB = 1 << 20;
const std::optional<std::string_view> kNone;

TEST(CallbacksBounds, SignedCallbackWithContentLengthIsRead) {
  auto v = judge_request_head("POST", "2048", kNone, kNone, kMiB);
  EXPECT_EQ(v.http_status, 0);
  EXPECT_EQ(v.content_length, 2048u);
  EXPECT_EQ(judge_request_head("POST", " 1048576 ", kNone, "identity", kMiB).http_status, 0);  // exactly the limit
  EXPECT_EQ(judge_request_head("POST", "0", kNone, kNone, kMiB).http_status, 0);
  EXPECT_EQ(judge_request_head("GET", kNone, kNone, kNone, kMiB).http_status, 0);
  EXPECT_EQ(judge_request_head("HEAD", kNone, kNone, kNone, kMiB).http_status, 0);
}

TEST(CallbacksBounds, ContentLengthOverTheLimitIs413) {
  auto v = judge_request_head("POST", "1048577", kNone, kNone, kMiB);
  EXPECT_EQ(v.http_status, 413);
  EXPECT_NE(v.reason.find("callbacks.max_body_bytes"), std::string::npos) << v.reason;
  EXPECT_EQ(judge_request_head("POST", "2097152", kNone, kNone, kMiB).http_status, 413);
  EXPECT_EQ(judge_request_head("GET", "2097152", kNone, kNone, kMiB).http_status, 413);  // GET is held to it too
  EXPECT_EQ(judge_request_head("POST", "999999999999999999", kNone, kNone, kMiB).http_status, 413);
}

TEST(CallbacksBounds, MalformedContentLengthIs400) {
  for (const char* cl : {"", "-1", "12abc", "0x10", "1 2", "9999999999999999999999"}) {
    EXPECT_EQ(judge_request_head("POST", cl, kNone, kNone, kMiB).http_status, 400) << "Content-Length: " << cl;
  }
}

TEST(CallbacksBounds, PostWithoutContentLengthIs411) {
  EXPECT_EQ(judge_request_head("POST", kNone, kNone, kNone, kMiB).http_status, 411);
}

TEST(CallbacksBounds, AnyTransferEncodingIs411) {
  for (const char* te : {"chunked", "gzip, chunked", "identity", "CHUNKED"}) {
    auto v = judge_request_head("POST", kNone, te, kNone, kMiB);
    EXPECT_EQ(v.http_status, 411) << te;
    EXPECT_NE(v.reason.find("Transfer-Encoding"), std::string::npos);
  }
  // even with a Content-Length beside it (request smuggling) or on a GET
  EXPECT_EQ(judge_request_head("POST", "10", "chunked", kNone, kMiB).http_status, 411);
  EXPECT_EQ(judge_request_head("GET", kNone, "chunked", kNone, kMiB).http_status, 411);
}

TEST(CallbacksBounds, CompressedBodiesAre415) {
  for (const char* ce : {"gzip", "deflate", "br", "x-gzip", "GZIP", "identity, gzip"}) {
    auto v = judge_request_head("POST", "100", kNone, ce, kMiB);
    EXPECT_EQ(v.http_status, 415) << ce;
    EXPECT_NE(v.reason.find("Content-Encoding"), std::string::npos);
  }
  EXPECT_EQ(judge_request_head("POST", "100", kNone, "Identity", kMiB).http_status, 0);
  EXPECT_EQ(judge_request_head("POST", "100", kNone, "", kMiB).http_status, 0);
}

TEST(CallbacksBounds, OtherMethodsAre405) {
  for (const char* m : {"PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "post"}) {
    EXPECT_EQ(judge_request_head(m, "1", kNone, kNone, kMiB).http_status, 405) << m;
  }
}

TEST(CallbacksBounds, ConfigKeysAndDefaults) {
  auto d = parse_config("", "t.toml");
  EXPECT_EQ(d.callbacks.max_body_bytes, 3 * kMiB);  // Meta: "Webhooks payloads can be up to 3MB"
  EXPECT_EQ(d.callbacks.header_timeout_ms, 5000);
  EXPECT_EQ(d.callbacks.request_timeout_ms, 30000);
  EXPECT_EQ(d.callbacks.max_connections, 128);
  auto c = parse_config(
      "[callbacks]\nmax_body_bytes = 65536\nheader_timeout_seconds = 3\nrequest_timeout_seconds = 10\nmax_connections = 40\n",
      "t.toml");
  EXPECT_EQ(c.callbacks.max_body_bytes, 65536u);
  EXPECT_EQ(c.callbacks.header_timeout_ms, 3000);
  EXPECT_EQ(c.callbacks.request_timeout_ms, 10000);
  EXPECT_EQ(c.callbacks.max_connections, 40);
}

TEST(CallbacksBounds, UnsubscribeConfigIsCheckedAtLoad) {
  auto c = parse_config(
      "[email]\nunsubscribe_url = \"https://d.example.org/u?a={token}\"\nunsubscribe_mailto = \"u@d.example.org\"\n"
      "unsubscribe_secret_env = \"DAYBREAK_TEST_NO_SUCH_VARIABLE\"\n",
      "t.toml");
  EXPECT_TRUE(c.unsubscribe.enabled());
  EXPECT_EQ(c.unsubscribe.url_template, "https://d.example.org/u?a={token}");
  EXPECT_EQ(c.unsubscribe.mailto, "u@d.example.org");
  EXPECT_TRUE(c.unsubscribe.secret.configured());  // recorded, not read: dispatch and the receiver read it
  EXPECT_FALSE(parse_config("", "t.toml").unsubscribe.enabled());
  auto rejects = [](const std::string& toml, const std::string& needle) {
    try {
      parse_config(toml, "t.toml");
      ADD_FAILURE() << "accepted: " << toml;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string secret = "unsubscribe_secret_env = \"X\"\n";
  rejects("[email]\nunsubscribe_url = \"https://d.example.org/u\"\n" + secret, "must contain {token}");
  rejects("[email]\nunsubscribe_url = \"http://d.example.org/u?a={token}\"\n" + secret, "email.unsubscribe_url");
  rejects("[email]\nunsubscribe_url = \"ftp://d.example.org/{token}\"\n" + secret, "https://");
  rejects("[email]\nunsubscribe_url = \"https://d.example.org/u?a={token}\"\n", "need unsubscribe_secret");
  rejects("[email]\nunsubscribe_mailto = \"Unsub <u@d.example.org>\"\n" + secret, "bare address");
  // http:// to loopback (tests, the simulator) is allowed, as for every other URL.
  EXPECT_NO_THROW(parse_config("[email]\nunsubscribe_url = \"http://127.0.0.1:8089/unsubscribe?a={token}\"\n" + secret, "t.toml"));
}

TEST(CallbacksBounds, ConfigRejectsNonsense) {
  auto rejects = [](const std::string& toml, const std::string& needle) {
    try {
      parse_config(toml, "t.toml");
      ADD_FAILURE() << "accepted: " << toml;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  rejects("[callbacks]\nmax_body_bytes = 0\n", "callbacks.max_body_bytes");
  rejects("[callbacks]\nmax_body_bytes = 1073741824\n", "callbacks.max_body_bytes");
  rejects("[callbacks]\nheader_timeout_seconds = 0\n", "callbacks.header_timeout_seconds");
  rejects("[callbacks]\nmax_connections = 0\n", "callbacks.max_connections");
  rejects("[callbacks]\nheader_timeout_seconds = 10\nrequest_timeout_seconds = 5\n", "callbacks.request_timeout_seconds");
  rejects("[callbacks]\nmax_conections = 5\n", "max_conections");
}

}  // namespace
}  // namespace daybreak
