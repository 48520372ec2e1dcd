// The WhatsApp adapter's exact requests and its classification of Meta's answers.
#include "channels/whatsapp.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

namespace daybreak::channels {
namespace {

struct WhatsAppTest : ::testing::Test {
  WhatsAppConfig wa;
  SenderConfig sender;
  Message msg;
  void SetUp() override {
    wa.graph_base = "http://127.0.0.1:8080";
    wa.api_version = "v21.0";
    wa.template_name = "daily_content";
    wa.connect_timeout_ms = 1500;
    wa.request_timeout_ms = 9000;
    sender.id = "wa-1";
    sender.phone_number_id = "106540352242922";
    sender.token = "EAAB-secret";
    msg.delivery_id = 4711;
    msg.to = "+919812345678";
    msg.advisor_name = "Asha";
    msg.language = "hi";
    msg.title = "Morning brief";
    msg.body = "Markets — गुरुवार / today";
  }
};

TEST_F(WhatsAppTest, BuildsTemplateRequestWithTextHeader) {
  WhatsAppAdapter a(wa, sender);
  Request r = a.build(msg);
  EXPECT_EQ(r.url, "http://127.0.0.1:8080/v21.0/106540352242922/messages");
  EXPECT_EQ(r.headers, (std::vector<std::string>{"Authorization: Bearer EAAB-secret", "Content-Type: application/json"}));
  EXPECT_EQ(r.connect_timeout_ms, 1500);
  EXPECT_EQ(r.timeout_ms, 9000);
  auto j = nlohmann::json::parse(r.body);
  auto expected = nlohmann::json::parse(R"({
    "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+919812345678", "type": "template",
    "biz_opaque_callback_data": "4711",
    "template": {"name": "daily_content", "language": {"code": "hi"}, "components": [
      {"type": "header", "parameters": [{"type": "text", "text": "Morning brief"}]},
      {"type": "body", "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "Morning brief"},
                                      {"type": "text", "text": "Markets — गुरुवार / today"}]}]}})");
  EXPECT_EQ(j, expected);
}

TEST_F(WhatsAppTest, BodyEscapesEveryStringTheWayAJsonParserReadsItBack) {
  // The body is written without a JSON tree (performance); whatever an advisor's name or a
  // content item holds must still come back byte for byte.
  WhatsAppAdapter a(wa, sender);
  msg.advisor_name = "O\"Brien \\ \"Ravi\"";
  msg.title = std::string("tab\there\nline\r") + '\x01' + '\x1f' + "end";
  msg.body = "नमस्ते — ₹ 1,000 / 😀 </script>";
  msg.language = "en\"_US";
  auto j = nlohmann::json::parse(a.build(msg).body);
  const auto& body = j["template"]["components"][1]["parameters"];
  EXPECT_EQ(body[0]["text"], msg.advisor_name);
  EXPECT_EQ(body[1]["text"], msg.title);
  EXPECT_EQ(body[2]["text"], msg.body);
  EXPECT_EQ(j["template"]["components"][0]["parameters"][0]["text"], msg.title);
  EXPECT_EQ(j["template"]["language"]["code"], msg.language);
  EXPECT_EQ(j["to"], msg.to);
}

TEST_F(WhatsAppTest, ImageAndDocumentHeadersFollowTheMediaUrl) {
  WhatsAppAdapter a(wa, sender);
  msg.media_url = "https://cdn.example.com/card.JPG?v=2";
  auto img = nlohmann::json::parse(a.build(msg).body)["template"]["components"][0];
  EXPECT_EQ(img, nlohmann::json::parse(
                     R"({"type":"header","parameters":[{"type":"image","image":{"link":"https://cdn.example.com/card.JPG?v=2"}}]})"));
  msg.media_url = "https://cdn.example.com/note.pdf";
  auto doc = nlohmann::json::parse(a.build(msg).body)["template"]["components"][0];
  EXPECT_EQ(doc, nlohmann::json::parse(R"({"type":"header","parameters":[{"type":"document","document":
      {"link":"https://cdn.example.com/note.pdf","filename":"Morning brief.pdf"}}]})"));
}

TEST_F(WhatsAppTest, ParsesSuccess) {
  WhatsAppAdapter a(wa, sender);
  Response r;
  r.transport_ok = true;
  r.status = 200;
  r.body = R"({"messaging_product":"whatsapp","contacts":[{"input":"+919812345678","wa_id":"919812345678"}],
              "messages":[{"id":"wamid.HBgLOTE5ODEyMzQ1Njc4FQIAERgSQUFBQkJCQ0NDRERERUVFRkZGAA==","message_status":"accepted"}]})";
  auto res = a.classify(r);
  EXPECT_TRUE(res.accepted);
  EXPECT_EQ(res.provider_message_id, "wamid.HBgLOTE5ODEyMzQ1Njc4FQIAERgSQUFBQkJCQ0NDRERERUVFRkZGAA==");
}

TEST_F(WhatsAppTest, ParsesErrorBodyByCodeNotHttpStatus) {
  WhatsAppAdapter a(wa, sender);
  Response r;
  r.transport_ok = true;
  r.status = 200;  // the status is deliberately misleading: only error.code counts
  r.body = R"({"error":{"message":"(#131026) Message Undeliverable","type":"OAuthException","code":131026,
              "error_data":{"messaging_product":"whatsapp","details":"Unable to deliver message"},"fbtrace_id":"Az8"}})";
  auto res = a.classify(r);
  EXPECT_FALSE(res.accepted);
  EXPECT_EQ(res.kind, FailureKind::permanent);
  EXPECT_EQ(res.error_code, "131026");
  EXPECT_EQ(res.error_detail, "(#131026) Message Undeliverable: Unable to deliver message");
}

TEST_F(WhatsAppTest, TransportFailuresAreRetryableOrUncertain) {
  WhatsAppAdapter a(wa, sender);
  Response refused;
  refused.transport_code = 7;  // couldn't connect: the request never left
  EXPECT_EQ(a.classify(refused).kind, FailureKind::retryable);
  Response timeout;
  timeout.transport_code = 28;  // timed out after sending: the provider may have it
  timeout.request_may_have_arrived = true;
  EXPECT_EQ(a.classify(timeout).kind, FailureKind::uncertain);
  Response garbage;
  garbage.transport_ok = true;
  garbage.status = 200;
  garbage.body = "<html>proxy</html>";
  EXPECT_EQ(a.classify(garbage).kind, FailureKind::uncertain);
  garbage.status = 502;
  EXPECT_EQ(a.classify(garbage).kind, FailureKind::retryable);
}

TEST_F(WhatsAppTest, CertificateFailuresPauseTheSenderNotTheMessage) {
  // The Graph API host's certificate does not verify (a stale CA bundle, a proxy that
  // intercepts TLS): every message would fail the same way, so the answer is the sender's
  // (credentials, certificate_failure), as an email relay's is; nothing left, nothing uncertain.
  WhatsAppAdapter a(wa, sender);
  for (int code : {60, 77, 58, 83, 90, 91, 82}) {
    Response r;
    r.transport_code = code;
    r.transport_error = "SSL certificate problem: unable to get local issuer certificate";
    auto c = a.classify(r);
    EXPECT_TRUE(c.certificate_failure) << code;
    EXPECT_EQ(c.kind, FailureKind::credentials) << code;
    EXPECT_EQ(c.error_code, "curl:" + std::to_string(code));
  }
  // A handshake that failed otherwise (35), the network (7, 56): the message's bad luck.
  for (int code : {35, 7, 56}) {
    Response r;
    r.transport_code = code;
    auto c = a.classify(r);
    EXPECT_FALSE(c.certificate_failure) << code;
    EXPECT_EQ(c.kind, FailureKind::retryable) << code;
  }
}

// The accepted answer is read without a document (a SAX pass); whether a body is accepted, and
// its message id and held flag, must be what nlohmann's document says, the rule before it:
// top-level object, "messages" a non-empty array, its first element an object with a string
// "id" (duplicate keys: the last one counts), "message_status" "held_for_quality_assessment".
struct DomAccepted {
  bool accepted = false;
  std::string id;
  bool held = false;
};
DomAccepted dom_accepted(const std::string& body) {
  DomAccepted out;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return out;
  auto msgs = j.find("messages");
  if (msgs == j.end() || !msgs->is_array() || msgs->empty()) return out;
  const auto& m0 = (*msgs)[0];
  if (!m0.is_object() || !m0.contains("id") || !m0["id"].is_string()) return out;
  out.accepted = true;
  out.id = m0["id"].get<std::string>();
  auto st = m0.find("message_status");
  out.held = st != m0.end() && st->is_string() && st->get<std::string>() == "held_for_quality_assessment";
  return out;
}

/// The adapter's reading of `body` as a 200 answer.
SendResult classify_200(const WhatsAppAdapter& a, const std::string& body) {
  Response r;
  r.transport_ok = true;
  r.status = 200;
  r.body = body;
  return a.classify(r);
}

void expect_as_dom(const WhatsAppAdapter& a, const std::string& body) {
  const auto got = classify_200(a, body);
  const auto want = dom_accepted(body);
  EXPECT_EQ(got.accepted, want.accepted) << body;
  if (want.accepted) {
    EXPECT_EQ(got.provider_message_id, want.id) << body;
    EXPECT_EQ(got.held_for_quality, want.held) << body;
  }
}

TEST_F(WhatsAppTest, AcceptedAnswersReadAsTheDocumentReadsThem) {
  WhatsAppAdapter a(wa, sender);
  for (const char* body : {
           R"({"messages":[{"id":"w1","message_status":"held_for_quality_assessment"}]})",
           R"({"messages":[{"id":"w1","message_status":"accepted"}]})",
           R"({"messages":[{"message_status":"held_for_quality_assessment","id":"w1"}],"error":{"code":131026}})",
           R"({"messages":[{"id":"w1"}],"messages":5})",
           R"({"messages":5,"messages":[{"id":"w2"}]})",
           R"({"messages":[{"id":"w1"}],"messages":[]})",
           R"({"messages":[{"id":"a","id":{"x":"y"}}]})",
           R"({"messages":[{"id":{"x":"y"},"id":"b"}]})",
           R"({"messages":[{"id":5}]})",
           R"({"messages":[{"x":{"id":"deep"}}]})",
           R"({"messages":["w1",{"id":"w2"}]})",
           R"({"messages":[{"id":"w1","list":[1,{"id":"no"}]},{"id":"second"}]})",
           R"({"messages":[{"id":"w1","message_status":["held_for_quality_assessment"]}]})",
           R"({"other":[{"id":"x"}],"messages":[{"id":"w1"}]})",
           R"({"messages":[{"id":"w1"}],"other":[{"id":"x"}]})",
           R"([{"messages":[{"id":"w1"}]}])",
           R"({"x":{"messages":[{"id":"w1"}]}})",
           R"({"messages":[{"id":"w1"}]} trailing)",
           R"({"messages":[{"id":"wé"1"}]})",
           R"({"messages":[{"id":"w1")",
           "",
       }) {
    expect_as_dom(a, body);
  }
}

RC_GTEST_FIXTURE_PROP(WhatsAppTest, RandomAnswersReadAsTheDocumentReadsThem, ()) {
  // Random JSON over the keys that matter, nested up to four levels.
  const auto key = rc::gen::element<std::string>("messages", "id", "message_status", "error", "x");
  const auto leaf = rc::gen::oneOf(
      rc::gen::map(rc::gen::element<std::string>("w1", "held_for_quality_assessment", "accepted", ""),
                   [](std::string v) { return nlohmann::json(v); }),
      rc::gen::map(rc::gen::inRange(0, 3), [](int v) { return nlohmann::json(v); }),
      rc::gen::just(nlohmann::json(nullptr)));
  std::function<nlohmann::json(int)> value = [&](int depth) -> nlohmann::json {
    const int kind = depth >= 4 ? 0 : *rc::gen::inRange(0, 3);
    if (kind == 0) return *leaf;
    const int n = *rc::gen::inRange(0, 4);
    if (kind == 1) {
      auto arr = nlohmann::json::array();
      for (int i = 0; i < n; ++i) arr.push_back(value(depth + 1));
      return arr;
    }
    // Objects as text pieces, so duplicate keys survive into the body.
    std::string text = "{";
    for (int i = 0; i < n; ++i) {
      if (i) text += ',';
      text += nlohmann::json(*key).dump() + ":" + value(depth + 1).dump();
    }
    return nlohmann::json::parse(text + "}");  // (duplicates collapse here; the outer text keeps them)
  };
  // The top level written by hand, with duplicate keys kept.
  std::string body = "{";
  const int n = *rc::gen::inRange(0, 4);
  for (int i = 0; i < n; ++i) {
    if (i) body += ',';
    body += nlohmann::json(*key).dump() + ":" + value(1).dump();
  }
  body += "}";
  const auto got = classify_200(WhatsAppAdapter(wa, sender), body);
  const auto want = dom_accepted(body);
  RC_ASSERT(got.accepted == want.accepted);
  if (want.accepted) {
    RC_ASSERT(got.provider_message_id == want.id);
    RC_ASSERT(got.held_for_quality == want.held);
  }
}

// Codes of the WhatsApp error policy (docs/whatsapp-errors.md), classified as it says; every
// row is checked in whatsapp_errors_test.cpp.
TEST(WhatsAppErrorCodes, FollowTheDesignTable) {
  struct Row {
    long code;
    FailureKind kind;
  };
  const Row rows[] = {
      {130429, FailureKind::sender_rate_limited}, {4, FailureKind::sender_rate_limited},
      {80007, FailureKind::sender_rate_limited},  {131056, FailureKind::recipient_throttled},
      {131000, FailureKind::retryable},           {131016, FailureKind::retryable},
      {131057, FailureKind::retryable},           {131026, FailureKind::permanent},
      {131047, FailureKind::permanent},           {131049, FailureKind::permanent},
      {131048, FailureKind::sender_blocked},      {130472, FailureKind::permanent},
      {132000, FailureKind::permanent},           {132001, FailureKind::permanent},
      {132012, FailureKind::permanent},           {131005, FailureKind::credentials},
      {131008, FailureKind::permanent},           {131009, FailureKind::permanent},
      {131031, FailureKind::sender_blocked},      {368, FailureKind::sender_blocked},
      {190, FailureKind::credentials},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(classify_whatsapp_error(r.code, 0), r.kind) << "code " << r.code;
  }
}

}  // namespace
}  // namespace daybreak::channels
