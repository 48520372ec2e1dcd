// The email adapter's exact SMTP request (envelope, headers, MIME structure, encodings) and its
// classification of SMTP replies (4xx retryable, 5xx permanent).
#include "channels/email.hpp"
#include "channels/signature.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <sstream>

#include "config/config.hpp"

namespace daybreak::channels {
namespace {

// --- decoders, written independently of the encoders under test -----------------------------

std::string b64decode(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : s) {
    int v = val(c);
    if (v < 0) continue;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

/// Decodes a header value made of RFC 2047 B-words separated by folding white space.
std::string decode_words(const std::string& v) {
  std::string out;
  std::size_t pos = 0;
  while ((pos = v.find("=?UTF-8?B?", pos)) != std::string::npos) {
    auto end = v.find("?=", pos + 10);
    out += b64decode(v.substr(pos + 10, end - pos - 10));
    pos = end + 2;
  }
  return out;
}

std::string qp_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '=' && i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') {
      i += 2;  // soft line break
    } else if (s[i] == '=' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> crlf_lines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0, p;
  while ((p = s.find("\r\n", start)) != std::string::npos) {
    out.push_back(s.substr(start, p - start));
    start = p + 2;
  }
  out.push_back(s.substr(start));
  return out;
}

struct Part {
  std::string headers;
  std::string body;
};

/// Splits a multipart body on its boundary (RFC 2046 §5.1.1).
std::vector<Part> parts(const std::string& body, const std::string& boundary) {
  std::vector<Part> out;
  const std::string delim = "\r\n--" + boundary;
  std::string b = "\r\n" + body;
  std::size_t p = b.find(delim);
  while (p != std::string::npos) {
    std::size_t start = p + delim.size();
    if (b.compare(start, 2, "--") == 0) break;  // close delimiter
    start += 2;                                  // CRLF after the delimiter
    std::size_t next = b.find(delim, start);
    std::string whole = b.substr(start, next - start);
    auto sep = whole.find("\r\n\r\n");
    out.push_back({whole.substr(0, sep), whole.substr(sep + 4)});
    p = next;
  }
  return out;
}

struct EmailTest : ::testing::Test {
  SenderConfig sender;
  Message msg;
  void SetUp() override {
    sender.id = "mail-1";
    sender.channel = Channel::email;
    sender.url = "smtp://smtp.example.com:587";
    sender.username = "daybreak";
    sender.password = "s3cret";
    sender.from = "Daybreak <morning@daybreak.example.com>";
    sender.starttls = true;
    sender.connect_timeout_ms = 1500;
    sender.request_timeout_ms = 9000;
    msg.delivery_id = 4711;
    msg.attempt = 2;
    msg.to = "asha@advisors.example.com";
    msg.advisor_id = "adv-1";
    msg.advisor_name = "Asha";
    msg.language = "en";
    msg.content_id = "c-1";
    msg.title = "Morning brief";
    msg.body = "Markets are up.\nRates <unchanged> & steady.";
    msg.media_url = "https://cdn.example.com/card.jpg?a=1&b=2";
    msg.now = 1795825770250;  // 2026-11-28T00:29:30.250Z, a Saturday
  }
  static std::pair<std::string, std::string> split(const std::string& raw) {
    auto p = raw.find("\r\n\r\n");
    return {raw.substr(0, p), raw.substr(p + 4)};
  }
};

TEST_F(EmailTest, BuildsEnvelopeAndExactHeaders) {
  EmailAdapter a(sender);
  Request r = a.build(msg);
  EXPECT_EQ(r.kind, Request::Kind::smtp);
  EXPECT_EQ(r.url, "smtp://smtp.example.com:587");
  EXPECT_EQ(r.mail_from, "<morning@daybreak.example.com>");
  EXPECT_EQ(r.rcpt, (std::vector<std::string>{"<asha@advisors.example.com>"}));
  EXPECT_EQ(r.username, "daybreak");
  EXPECT_EQ(r.password, "s3cret");
  EXPECT_TRUE(r.starttls);
  EXPECT_EQ(r.connect_timeout_ms, 1500);
  EXPECT_EQ(r.timeout_ms, 9000);
  EXPECT_EQ(r.message_id, "<daybreak.4711@daybreak.example.com>");
  auto [headers, body] = split(r.body);
  EXPECT_EQ(headers,
            "Date: Sat, 28 Nov 2026 00:29:30 +0000\r\n"
            "From: \"Daybreak\" <morning@daybreak.example.com>\r\n"
            "To: \"Asha\" <asha@advisors.example.com>\r\n"
            "Subject: Morning brief\r\n"
            "Message-ID: <daybreak.4711@daybreak.example.com>\r\n"
            "X-Daybreak-Delivery: 4711\r\n"
            "Content-Language: en\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative; boundary=\"=_daybreak_4711.2\"");
  // Every line ends in CRLF: no bare LF anywhere (SMTP servers reject or mangle them).
  for (std::size_t i = 0; i < r.body.size(); ++i) {
    if (r.body[i] == '\n') {
      ASSERT_TRUE(i > 0 && r.body[i - 1] == '\r') << "bare LF at " << i;
    }
  }
}

TEST_F(EmailTest, MultipartAlternativeWithTextThenHtml) {
  EmailAdapter a(sender);
  auto [headers, body] = split(a.build(msg).body);
  auto ps = parts(body, "=_daybreak_4711.2");
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].headers, "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable");
  EXPECT_EQ(ps[1].headers, "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable");
  EXPECT_EQ(qp_decode(ps[0].body),
            "Hello Asha,\r\n\r\nMorning brief\r\n\r\nMarkets are up.\r\nRates <unchanged> & steady.\r\n\r\n"
            "https://cdn.example.com/card.jpg?a=1&b=2\r\n");
  std::string html = qp_decode(ps[1].body);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>\r\n<html lang=\"en\">\r\n", 0), 0u) << html;
  EXPECT_NE(html.find("<h1>Morning brief</h1>"), std::string::npos) << html;
  EXPECT_NE(html.find("Markets are up.<br>\r\nRates &lt;unchanged&gt; &amp; steady."), std::string::npos) << html;
  EXPECT_NE(html.find("<a href=\"https://cdn.example.com/card.jpg?a=1&amp;b=2\">"), std::string::npos) << html;
  EXPECT_EQ(html.find("<unchanged>"), std::string::npos) << "the body is escaped";
  // The message ends with the close delimiter.
  const std::string close = "\r\n--=_daybreak_4711.2--\r\n";
  ASSERT_GT(body.size(), close.size());
  EXPECT_EQ(body.substr(body.size() - close.size()), close);
}

TEST_F(EmailTest, NonAsciiSubjectAndNamesAreRfc2047Encoded) {
  EmailAdapter a(sender);
  msg.title = "सुबह की खबर — बाज़ार आज ऊपर खुले, ब्याज दरें स्थिर रहीं";
  msg.advisor_name = "Aśha Rāo";
  auto [headers, body] = split(a.build(msg).body);
  auto lines = crlf_lines(headers);
  std::string subject, to;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_LE(lines[i].size(), 78u) << lines[i];
    auto take = [&](const std::string& name, std::string& out) {
      if (lines[i].rfind(name, 0) != 0) return;
      out = lines[i].substr(name.size());
      while (i + 1 < lines.size() && lines[i + 1].rfind(" ", 0) == 0) out += lines[++i];  // unfold
    };
    take("Subject: ", subject);
    take("To: ", to);
  }
  ASSERT_EQ(subject.rfind("=?UTF-8?B?", 0), 0u) << subject;
  EXPECT_EQ(decode_words(subject), msg.title);
  EXPECT_EQ(decode_words(to), "Aśha Rāo");
  EXPECT_NE(to.find(" <asha@advisors.example.com>"), std::string::npos) << to;
  // Each encoded word decodes on its own into whole UTF-8 characters (RFC 2047 §5).
  std::size_t pos = 0;
  while ((pos = subject.find("=?UTF-8?B?", pos)) != std::string::npos) {
    auto end = subject.find("?=", pos + 10);
    EXPECT_LE(end + 2 - pos, 75u);
    std::string chunk = b64decode(subject.substr(pos + 10, end - pos - 10));
    ASSERT_FALSE(chunk.empty());
    EXPECT_NE(static_cast<unsigned char>(chunk.front()) & 0xc0, 0x80) << "word starts mid-character";
    pos = end + 2;
  }
}

TEST_F(EmailTest, HeaderInjectionIsImpossible) {
  EmailAdapter a(sender);
  msg.title = "Hi\r\nBcc: victim@example.com";
  msg.advisor_name = "Eve\"\r\nCc: x@example.com";
  msg.to = "asha@advisors.example.com>\r\nBcc: y@example.com";
  Request r = a.build(msg);
  auto [headers, body] = split(r.body);
  for (const auto& line : crlf_lines(headers)) {
    EXPECT_NE(line.rfind("Bcc:", 0), 0u) << line;
    EXPECT_NE(line.rfind("Cc:", 0), 0u) << line;
  }
  EXPECT_NE(headers.find("Subject: Hi  Bcc: victim@example.com\r\n"), std::string::npos) << headers;
  EXPECT_NE(headers.find("To: \"Eve\\\"  Cc: x@example.com\" <"), std::string::npos) << headers;
  ASSERT_EQ(r.rcpt.size(), 1u);
  EXPECT_EQ(r.rcpt[0].find_first_of("\r\n "), std::string::npos) << r.rcpt[0];
}

TEST_F(EmailTest, NoDateWithoutATimeAndEveryAttemptKeepsTheDeliverysMessageId) {
  EmailAdapter a(sender);
  msg.now = 0;
  Request first = a.build(msg);
  EXPECT_EQ(first.body.find("Date:"), std::string::npos);
  msg.attempt = 3;
  Request again = a.build(msg);
  EXPECT_EQ(again.message_id, first.message_id);
  EXPECT_EQ(again.message_id, "<daybreak.4711@daybreak.example.com>");
  EXPECT_NE(again.body.find("Message-ID: <daybreak.4711@daybreak.example.com>\r\n"), std::string::npos);
  EXPECT_NE(again.body.find("X-Daybreak-Delivery: 4711\r\n"), std::string::npos);
}

TEST_F(EmailTest, TlsFollowsTheUrlAndTheStarttlsKey) {
  sender.starttls = false;
  EXPECT_FALSE(EmailAdapter(sender).build(msg).starttls);
  sender.starttls = true;
  sender.url = "smtps://smtp.example.com:465";  // TLS from the first byte: no STARTTLS
  EXPECT_FALSE(EmailAdapter(sender).build(msg).starttls);
  sender.from = "bare@example.org";
  Request r = EmailAdapter(sender).build(msg);
  EXPECT_EQ(r.mail_from, "<bare@example.org>");
  EXPECT_NE(r.body.find("From: <bare@example.org>\r\n"), std::string::npos);
  EXPECT_EQ(r.message_id, "<daybreak.4711@example.org>");
}

// List-Unsubscribe (RFC 2369) with the mailto: and https: URIs, each carrying the advisor's
// signed token, and List-Unsubscribe-Post for one-click (RFC 8058 §3.1); none when off.
TEST_F(EmailTest, ListUnsubscribeHeadersCarryTheAdvisorsSignedToken) {
  UnsubscribeConfig u;
  u.url_template = "https://daybreak.example.com/unsubscribe?a={token}";
  u.mailto = "unsubscribe@daybreak.example.com";
  u.secret = "unsub-secret";
  const std::string token = unsubscribe_token("unsub-secret", "adv-1");
  auto [headers, body] = split(EmailAdapter(sender, u).build(msg).body);
  EXPECT_NE(headers.find("X-Daybreak-Delivery: 4711\r\n"
                         "List-Unsubscribe: <mailto:unsubscribe@daybreak.example.com?subject=unsubscribe%20" + token + ">,\r\n"
                         " <https://daybreak.example.com/unsubscribe?a=" + token + ">\r\n"
                         "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            std::string::npos)
      << headers;
  EXPECT_EQ(verify_unsubscribe_token("unsub-secret", token), std::optional<std::string>("adv-1"));
  // mailto only: no List-Unsubscribe-Post (one-click needs an HTTPS URI).
  u.url_template.clear();
  EXPECT_EQ(list_unsubscribe_headers(u, "unsub-secret", "adv-1"),
            "List-Unsubscribe: <mailto:unsubscribe@daybreak.example.com?subject=unsubscribe%20" + token + ">\r\n");
  // Off: no header at all.
  EXPECT_EQ(EmailAdapter(sender).build(msg).body.find("List-Unsubscribe"), std::string::npos);
}

TEST(EmailEncoding, QuotedPrintableEdgeCases) {
  EXPECT_EQ(quoted_printable("a=b"), "a=3Db");
  EXPECT_EQ(quoted_printable("end \nnext\t"), "end=20\r\nnext=09");
  EXPECT_EQ(quoted_printable(".\n.x"), "=2E\r\n=2Ex");
  EXPECT_EQ(quoted_printable("é"), "=C3=A9");
  std::string long_line(200, 'x');
  std::string qp = quoted_printable(long_line);
  for (const auto& l : crlf_lines(qp)) EXPECT_LE(l.size(), 76u);
  EXPECT_EQ(qp_decode(qp), long_line);
}

TEST(EmailEncoding, HeaderTextAndDate) {
  EXPECT_EQ(encode_header_text("Plain title", 9), "Plain title");
  EXPECT_EQ(encode_header_text("=?x?", 9), "=?UTF-8?B?PT94Pw==?=");  // looks encoded: encode it
  EXPECT_EQ(encode_header_text("", 9), "");
  EXPECT_EQ(encode_display_name("O\"Brien"), "\"O\\\"Brien\"");
  EXPECT_EQ(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(951782400000), "Tue, 29 Feb 2000 00:00:00 +0000");
  EXPECT_EQ(html_escape("<a href='x'>\"&"), "&lt;a href=&#39;x&#39;&gt;&quot;&amp;");
}

RC_GTEST_PROP(EmailProps, QuotedPrintableRoundTripsWithShortLines, ()) {
  auto s = *rc::gen::container<std::string>(rc::gen::elementOf(std::string("ab .=\t\n\xc3\xa9xyz")));
  std::string qp = quoted_printable(s);
  for (const auto& l : crlf_lines(qp)) {
    RC_ASSERT(l.size() <= 76u);
    RC_ASSERT(l.empty() || (l.back() != ' ' && l.back() != '\t'));
    RC_ASSERT(l.rfind('.', 0) != 0);
  }
  std::string normalised;
  for (char c : s) normalised += c == '\n' ? std::string("\r\n") : std::string(1, c);
  RC_ASSERT(qp_decode(qp) == normalised);
  RC_ASSERT(qp.find("=_") == std::string::npos);  // the boundary prefix never occurs in a part
}

TEST(EmailClassify, RepliesFollowRfc5321) {
  EmailAdapter a([] {
    SenderConfig s;
    s.channel = Channel::email;
    s.url = "smtp://127.0.0.1:2525";
    s.from = "d@example.com";
    return s;
  }());
  Response ok;
  ok.transport_ok = true;
  ok.status = 250;
  ok.message_id = "<daybreak.1.1@example.com>";
  auto res = a.classify(ok);
  EXPECT_TRUE(res.accepted);
  EXPECT_EQ(res.provider_message_id, "<daybreak.1.1@example.com>");

  struct Row {
    long code;
    FailureKind kind;
  };
  const Row rows[] = {
      {421, FailureKind::retryable},   {450, FailureKind::retryable},   {451, FailureKind::retryable},
      {452, FailureKind::retryable},   {454, FailureKind::retryable},   {530, FailureKind::credentials},
      {534, FailureKind::credentials}, {535, FailureKind::credentials}, {538, FailureKind::credentials},
      {550, FailureKind::permanent},   {551, FailureKind::permanent},   {552, FailureKind::permanent},
      {553, FailureKind::permanent},   {554, FailureKind::permanent},
  };
  for (const auto& row : rows) {
    Response r;
    r.transport_ok = true;  // the transport reports an SMTP rejection as a complete answer
    r.status = row.code;
    r.transport_code = 55;
    r.transport_error = "RCPT failed: " + std::to_string(row.code);
    auto c = a.classify(r);
    EXPECT_FALSE(c.accepted) << row.code;
    EXPECT_EQ(c.kind, row.kind) << row.code;
    EXPECT_EQ(c.error_code, "smtp:" + std::to_string(row.code));
    EXPECT_EQ(c.error_detail, "RCPT failed: " + std::to_string(row.code));
  }

  Response refused;
  refused.transport_code = 7;  // couldn't connect
  EXPECT_EQ(a.classify(refused).kind, FailureKind::retryable);
  EXPECT_EQ(a.classify(refused).error_code, "curl:7");
  Response lost;
  lost.transport_code = 28;  // timed out waiting for the reply to the final "."
  lost.request_may_have_arrived = true;
  EXPECT_EQ(a.classify(lost).kind, FailureKind::uncertain);
  Response no_tls;
  no_tls.transport_code = 64;  // CURLE_USE_SSL_FAILED: STARTTLS required, not offered
  EXPECT_EQ(a.classify(no_tls).kind, FailureKind::credentials);
}

TEST(EmailConfig, SenderKeys) {
  auto cfg = parse_config(R"(
[[email.senders]]
id = "mail-1"
url = "smtp://127.0.0.1:2525"
from = "Daybreak <d@example.com>"
starttls = false
request_timeout_ms = 4000
[[email.senders]]
id = "mail-2"
url = "smtp://smtp.example.com:587"
from = "d@example.com"
)", "t.toml");
  ASSERT_EQ(cfg.senders.size(), 2u);
  EXPECT_FALSE(cfg.senders[0].starttls);
  EXPECT_EQ(cfg.senders[0].request_timeout_ms, 4000);
  EXPECT_TRUE(cfg.senders[1].starttls) << "STARTTLS is required unless switched off";
  auto adapter = make_adapter(cfg, cfg.senders[1]);
  EXPECT_EQ(adapter->build(Message{}).kind, Request::Kind::smtp);
  try {
    parse_config("[[email.senders]]\nid = \"m\"\nurl = \"http://x\"\nfrom = \"d@example.com\"\n", "t.toml");
    FAIL() << "an http:// url for an email sender was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("email.senders[0].url"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace daybreak::channels
