// The webhook adapter's exact signed request and its classification of HTTP answers (README
// "Channels", dispatch(1)).
#include "channels/webhook.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "channels/signature.hpp"
#include "config/config.hpp"

namespace daybreak::channels {
namespace {

struct WebhookTest : ::testing::Test {
  SenderConfig sender;
  Message msg;
  void SetUp() override {
    sender.id = "social-1";
    sender.channel = Channel::webhook;
    sender.endpoint = "https://hooks.example.com/daybreak/v1";
    sender.signing_secret = "whsec_test";
    sender.connect_timeout_ms = 1500;
    sender.request_timeout_ms = 8000;
    msg.delivery_id = 90210;
    msg.attempt = 3;
    msg.to = "adv-7";
    msg.advisor_id = "adv-7";
    msg.advisor_name = "Ravi";
    msg.language = "hi";
    msg.content_id = "c-hi-4";
    msg.title = "सुबह की खबर";
    msg.body = "Rates / yields — \"steady\"\nline two";
    msg.media_url = "https://cdn.example.com/a/b.jpg";
    msg.now = 1795825770250;  // 2026-11-28T00:29:30.250Z
  }
  static std::string header(const Request& r, const std::string& name) {
    for (const auto& h : r.headers) {
      if (h.rfind(name + ": ", 0) == 0) return h.substr(name.size() + 2);
    }
    return "";
  }
};

TEST_F(WebhookTest, BuildsExactSignedPost) {
  WebhookAdapter a(sender);
  Request r = a.build(msg);
  EXPECT_EQ(r.kind, Request::Kind::http);
  EXPECT_EQ(r.url, "https://hooks.example.com/daybreak/v1");
  EXPECT_EQ(r.connect_timeout_ms, 1500);
  EXPECT_EQ(r.timeout_ms, 8000);
  EXPECT_EQ(r.message_id, "90210");
  const std::string sig = "sha256=" + hmac_sha256_hex("whsec_test", "1795825770." + r.body);
  EXPECT_EQ(r.headers, (std::vector<std::string>{"Content-Type: application/json", "X-Daybreak-Timestamp: 1795825770",
                                                 "X-Daybreak-Signature: " + sig, "X-Daybreak-Delivery: 90210"}));
  EXPECT_EQ(nlohmann::json::parse(r.body), nlohmann::json::parse(R"({
    "delivery_id": 90210, "attempt": 3, "advisor_id": "adv-7", "content_id": "c-hi-4",
    "title": "सुबह की खबर", "body": "Rates / yields — \"steady\"\nline two",
    "media_url": "https://cdn.example.com/a/b.jpg", "language": "hi"})"));
  // The raw body carries UTF-8 as is (not \u escapes): what the receiver hashes is what we hashed.
  EXPECT_NE(r.body.find("सुबह"), std::string::npos);
  EXPECT_EQ(webhook_signature("whsec_test", 1795825770, r.body), sig);
}

TEST_F(WebhookTest, SignatureBindsBodyTimestampAndSecret) {
  WebhookAdapter a(sender);
  Request r = a.build(msg);
  const std::string sig = header(r, "X-Daybreak-Signature");
  ASSERT_EQ(sig.rfind("sha256=", 0), 0u);
  const std::string ts = header(r, "X-Daybreak-Timestamp");
  // What a receiver does: HMAC of "<timestamp>.<raw body>", constant-time compare.
  EXPECT_TRUE(constant_time_equal(sig, "sha256=" + hmac_sha256_hex("whsec_test", ts + "." + r.body)));
  EXPECT_FALSE(constant_time_equal(sig, "sha256=" + hmac_sha256_hex("whsec_test", "1795825771." + r.body)));
  EXPECT_FALSE(constant_time_equal(sig, "sha256=" + hmac_sha256_hex("other", ts + "." + r.body)));
  std::string tampered = r.body;
  tampered[tampered.find("adv-7")] = 'b';
  EXPECT_FALSE(constant_time_equal(sig, "sha256=" + hmac_sha256_hex("whsec_test", ts + "." + tampered)));
  // A later attempt is signed with its own time.
  msg.now += 61000;
  EXPECT_EQ(header(a.build(msg), "X-Daybreak-Timestamp"), "1795825831");
}

TEST_F(WebhookTest, NoMediaIsNull) {
  msg.media_url.clear();
  auto j = nlohmann::json::parse(WebhookAdapter(sender).build(msg).body);
  EXPECT_TRUE(j.at("media_url").is_null());
}

TEST_F(WebhookTest, ClassifiesByHttpStatus) {
  WebhookAdapter a(sender);
  auto answer = [&](long status, std::string body = "", Millis retry_after = 0) {
    Response r;
    r.transport_ok = true;
    r.status = status;
    r.body = std::move(body);
    r.retry_after_ms = retry_after;
    r.message_id = "90210";
    return a.classify(r);
  };
  auto ok = answer(202, R"({"id":"post_123"})");
  EXPECT_TRUE(ok.accepted);
  EXPECT_EQ(ok.provider_message_id, "post_123");
  EXPECT_EQ(answer(201, R"({"id":4455})").provider_message_id, "4455");
  EXPECT_EQ(answer(204).provider_message_id, "90210") << "no id in the answer: the delivery id";
  EXPECT_EQ(answer(200, "not json").provider_message_id, "90210");

  struct Row {
    long status;
    FailureKind kind;
  };
  const Row rows[] = {
      {429, FailureKind::sender_rate_limited}, {401, FailureKind::credentials}, {403, FailureKind::credentials},
      {408, FailureKind::retryable},           {500, FailureKind::retryable},   {502, FailureKind::retryable},
      {503, FailureKind::retryable},           {504, FailureKind::retryable},   {400, FailureKind::permanent},
      {404, FailureKind::permanent},           {410, FailureKind::permanent},   {413, FailureKind::permanent},
      {422, FailureKind::permanent},           {301, FailureKind::permanent},
  };
  for (const auto& row : rows) {
    auto res = answer(row.status);
    EXPECT_FALSE(res.accepted) << row.status;
    EXPECT_EQ(res.kind, row.kind) << row.status;
    EXPECT_EQ(res.error_code, "http:" + std::to_string(row.status));
  }
  EXPECT_EQ(answer(429, "", 7000).retry_after_ms, 7000) << "Retry-After honoured";
  EXPECT_EQ(answer(429).retry_after_ms, 1000) << "default back-off without Retry-After";
  EXPECT_EQ(answer(503, "", 30000).retry_after_ms, 30000);
  EXPECT_EQ(answer(422, R"({"error":"caption too long\nfor network"})").error_detail, "caption too long for network");
  EXPECT_EQ(answer(500, std::string(1000, 'x')).error_detail.size(), 200u);
}

TEST_F(WebhookTest, TransportFailures) {
  WebhookAdapter a(sender);
  Response refused;
  refused.transport_code = 7;
  EXPECT_EQ(a.classify(refused).kind, FailureKind::retryable);
  Response timeout;
  timeout.transport_code = 28;
  timeout.request_may_have_arrived = true;
  EXPECT_EQ(a.classify(timeout).kind, FailureKind::uncertain);
  Response untrusted;
  untrusted.transport_code = 60;  // the endpoint's certificate did not verify: the sender's failure
  EXPECT_EQ(a.classify(untrusted).kind, FailureKind::credentials);
  EXPECT_TRUE(a.classify(untrusted).certificate_failure);
}

TEST(WebhookConfig, EndpointAndSecretAreRequired) {
  auto error_of = [](const std::string& toml) -> std::string {
    try {
      parse_config(toml, "t.toml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("[[webhook.senders]]\nid = \"w\"\nendpoint = \"https://h.example.com/x\"\n")
                .find("webhook.senders[0].signing_secret"),
            std::string::npos);
  EXPECT_NE(error_of("[[webhook.senders]]\nid = \"w\"\nendpoint = \"ftp://h.example.com/x\"\nsigning_secret = \"k\"\n")
                .find("webhook.senders[0].endpoint"),
            std::string::npos);
  auto cfg = parse_config("[[webhook.senders]]\nid = \"w\"\nendpoint = \"http://127.0.0.1:9/x\"\nsigning_secret = \"k\"\n",
                          "t.toml");
  ASSERT_EQ(cfg.senders.size(), 1u);
  Request r = make_adapter(cfg, cfg.senders[0])->build(Message{});
  EXPECT_EQ(r.kind, Request::Kind::http);
  EXPECT_EQ(r.url, "http://127.0.0.1:9/x");
}

}  // namespace
}  // namespace daybreak::channels
