// The SMTP session side: the server's reply kept per attempt (joined, masked, bounded), the
// classification of certificate failures (the sender pauses, nothing is retried per message),
// the email sender's concurrency and ca_file keys, and the alert emails' headers.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>
#include <regex>
#include <set>

#include "channels/email.hpp"
#include "channels/smtp_reply.hpp"
#include "config/config.hpp"
#include "domain/breaker.hpp"
#include "engine/alerts.hpp"
#include "engine/live.hpp"

namespace daybreak {
namespace {

using channels::SmtpReplyCapture;

TEST(SmtpReply, LastCompleteReplyJoinedAcrossPieces) {
  SmtpReplyCapture c;
  c.feed("220 sink.test ESMTP\r\n");
  EXPECT_EQ(c.last(), "220 sink.test ESMTP");
  // A multi-line reply arrives in arbitrary pieces; it counts once its last line is whole.
  c.feed("250-sink.test\r\n250-SIZE 33554432\r");
  EXPECT_EQ(c.last(), "220 sink.test ESMTP") << "an unfinished reply is not the latest one";
  c.feed("\n250 HELP\r");
  EXPECT_EQ(c.last(), "220 sink.test ESMTP");
  c.feed("\n");
  EXPECT_EQ(c.last(), "250 sink.test SIZE 33554432 HELP");
  c.feed("550-5.1.1 The email account that you tried to reach does not exist.\r\n"
         "550 5.1.1 <bob@example.com> no such user - gsmtp\r\n");
  EXPECT_EQ(c.last(), "550 5.1.1 The email account that you tried to reach does not exist. 5.1.1 <address> no such user - gsmtp");
  c.feed("not a reply line\r\n");
  EXPECT_EQ(c.last().substr(0, 3), "550") << "a line without a code is ignored";
  // libcurl closes a refused session itself with QUIT: its 221 explains nothing.
  c.feed("221 2.0.0 Bye\r\n");
  EXPECT_EQ(c.last().substr(0, 3), "550");
  EXPECT_EQ(c.explaining(550), c.last());
  // After a refusal, a later success (a new transaction) is the latest reply; the refusal stays
  // what explains a transaction that ended on a 4xx/5xx code.
  c.feed("250 2.0.0 OK\r\n");
  EXPECT_EQ(c.last(), "250 2.0.0 OK");
  EXPECT_EQ(c.explaining(250), "250 2.0.0 OK");
  EXPECT_EQ(c.explaining(550).substr(0, 9), "550 5.1.1");
  EXPECT_EQ(c.explaining(0), "250 2.0.0 OK") << "a timeout: the last thing the server said";
  c.clear();
  EXPECT_EQ(c.last(), "");
}

TEST(SmtpReply, BoundedMaskedAndClean) {
  EXPECT_EQ(channels::bound_reply("550 5.7.26 Unauthenticated email from x.example is not accepted"),
            "550 5.7.26 Unauthenticated email from x.example is not accepted");
  EXPECT_EQ(channels::bound_reply("550 5.1.1 bob@example.com: no such user"), "550 5.1.1 <address> no such user")
      << "an address (with what sticks to it) is masked";
  EXPECT_EQ(channels::bound_reply("451\t4.3.0\x01 try\x7f later  "), "451 4.3.0 try later");
  const std::string long_reply = "554 " + std::string(1000, 'x');
  EXPECT_EQ(channels::bound_reply(long_reply).size(), channels::kMaxReplyBytes);
  // A cut never splits a UTF-8 character: "é" is 2 bytes, placed to straddle byte 300.
  std::string accented = "550 " + std::string(295, 'a') + "\xc3\xa9\xc3\xa9";
  auto b = channels::bound_reply(accented);
  EXPECT_EQ(b.size(), 299u) << "the 2-byte character at 299..300 is dropped whole";
  EXPECT_EQ(b.back(), 'a');
}

RC_GTEST_PROP(SmtpReply, AnyInputStaysWithinBoundAndHasNoControls, (const std::string& text)) {
  SmtpReplyCapture c;
  c.feed("554 " + text + "\r\n");
  RC_ASSERT(c.last().size() <= channels::kMaxReplyBytes);
  for (char ch : c.last()) RC_ASSERT(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f);
  RC_ASSERT(c.last().find('@') == std::string::npos);
}

channels::EmailAdapter adapter() {
  SenderConfig s;
  s.id = "mail-1";
  s.channel = Channel::email;
  s.url = "smtps://relay.example.com:465";
  s.from = "d@example.com";
  s.concurrency = 6;
  s.ca_file = "/etc/daybreak/relay-ca.pem";
  return channels::EmailAdapter(s);
}

TEST(SmtpClassify, ReplyLineGoesWithTheAttempt) {
  auto a = adapter();
  channels::Response r;
  r.transport_ok = true;
  r.status = 550;
  r.transport_error = "MAIL failed: 550";
  r.reply = "550 5.7.26 This mail is unauthenticated";
  auto c = a.classify(r);
  EXPECT_EQ(c.kind, FailureKind::permanent);
  EXPECT_EQ(c.error_code, "smtp:550");
  EXPECT_EQ(c.error_detail, "MAIL failed: 550; reply: 550 5.7.26 This mail is unauthenticated");

  channels::Response ok;
  ok.transport_ok = true;
  ok.status = 250;
  ok.reply = "250 2.0.0 Ok: queued as 4F2A1";
  auto accepted = a.classify(ok);
  EXPECT_TRUE(accepted.accepted);
  EXPECT_EQ(accepted.error_detail, "reply: 250 2.0.0 Ok: queued as 4F2A1") << "the relay's queue id is kept";

  channels::Response lost;
  lost.transport_code = CURLE_OPERATION_TIMEDOUT;
  lost.transport_error = "Operation timed out after 10000 milliseconds";
  lost.request_may_have_arrived = true;
  lost.reply = "354 End data with <CR><LF>.<CR><LF>";
  auto l = a.classify(lost);
  EXPECT_EQ(l.kind, FailureKind::uncertain);
  EXPECT_FALSE(l.certificate_failure);
  EXPECT_EQ(l.error_detail, "Operation timed out after 10000 milliseconds; reply: 354 End data with <CR><LF>.<CR><LF>");
}

TEST(SmtpClassify, CertificateFailuresPauseTheSenderNotTheMessage) {
  auto a = adapter();
  for (CURLcode code : {CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
                        CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS,
                        CURLE_SSL_CRL_BADFILE}) {
    channels::Response r;
    r.transport_code = code;
    r.transport_error = curl_easy_strerror(code);
    auto c = a.classify(r);
    EXPECT_TRUE(c.certificate_failure) << code;
    EXPECT_EQ(c.kind, FailureKind::credentials) << code;
    EXPECT_EQ(c.error_code, "curl:" + std::to_string(static_cast<int>(code)));
  }
  // Not certificate problems: the network, a TLS handshake that failed for other reasons.
  for (CURLcode code : {CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SSL_CONNECT_ERROR, CURLE_RECV_ERROR}) {
    channels::Response r;
    r.transport_code = code;
    auto c = a.classify(r);
    EXPECT_FALSE(c.certificate_failure) << code;
    EXPECT_EQ(c.kind, FailureKind::retryable) << code;
  }
}

TEST(SmtpClassify, RequestCarriesLaneConcurrencyAndCaFile) {
  auto r = adapter().build(channels::Message{});
  EXPECT_EQ(r.lane, "mail-1");
  EXPECT_EQ(r.concurrency, 6);
  EXPECT_EQ(r.ca_file, "/etc/daybreak/relay-ca.pem");
}

TEST(SmtpClassify, CaFileFallsBackToTheEnvironment) {
  const char* saved_bundle = std::getenv("CURL_CA_BUNDLE");
  const char* saved_cert = std::getenv("SSL_CERT_FILE");
  std::string b = saved_bundle ? saved_bundle : "", c = saved_cert ? saved_cert : "";
  ::unsetenv("CURL_CA_BUNDLE");
  ::setenv("SSL_CERT_FILE", "/tmp/ssl-cert.pem", 1);
  EXPECT_EQ(channels::resolve_ca_file(""), "/tmp/ssl-cert.pem");
  ::setenv("CURL_CA_BUNDLE", "/tmp/curl-bundle.pem", 1);
  EXPECT_EQ(channels::resolve_ca_file(""), "/tmp/curl-bundle.pem") << "CURL_CA_BUNDLE first, as the curl tool";
  EXPECT_EQ(channels::resolve_ca_file("/etc/x.pem"), "/etc/x.pem") << "the configured file wins";
  ::unsetenv("CURL_CA_BUNDLE");
  ::unsetenv("SSL_CERT_FILE");
  EXPECT_EQ(channels::resolve_ca_file(""), "");
  if (saved_bundle) ::setenv("CURL_CA_BUNDLE", b.c_str(), 1);
  if (saved_cert) ::setenv("SSL_CERT_FILE", c.c_str(), 1);
}

TEST(SmtpConfig, ConcurrencyAndCaFile) {
  auto cfg = parse_config(R"(
[[email.senders]]
id = "mail-1"
url = "smtp://127.0.0.1:2525"
from = "d@example.com"
starttls = false
[[email.senders]]
id = "mail-2"
url = "smtps://relay.example.com:465"
from = "d@example.com"
concurrency = 8
ca_file = "/dev/null"
[alerts]
smtp_url = "smtps://relay.example.com:465"
smtp_from = "alerts@example.com"
smtp_ca_file = "/dev/null"
)", "t.toml");
  EXPECT_EQ(cfg.senders[0].concurrency, 4) << "the documented default";
  EXPECT_EQ(cfg.senders[0].ca_file, "");
  EXPECT_EQ(cfg.senders[1].concurrency, 8);
  EXPECT_EQ(cfg.senders[1].ca_file, "/dev/null");
  EXPECT_EQ(cfg.alerts.smtp_ca_file, "/dev/null");
  auto refused = [](const std::string& toml, const std::string& needle) {
    try {
      parse_config(toml, "t.toml");
      ADD_FAILURE() << "accepted: " << toml;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string mail = "[[email.senders]]\nid = \"m\"\nurl = \"smtps://r.example.com\"\nfrom = \"d@example.com\"\n";
  refused(mail + "concurrency = 0\n", "email.senders[0].concurrency");
  refused(mail + "concurrency = 65\n", "email.senders[0].concurrency");
  refused(mail + "ca_file = \"/nonexistent/ca.pem\"\n", "cannot read /nonexistent/ca.pem");
  refused("[[whatsapp.senders]]\nid = \"w\"\nphone_number_id = \"1\"\ntoken = \"t\"\nconcurrency = 2\n",
          "for email senders only");
  refused("[alerts]\nsmtp_url = \"smtps://r.example.com\"\nsmtp_from = \"a@example.com\"\nsmtp_ca_file = \"/nonexistent/ca.pem\"\n",
          "alerts.smtp_ca_file");
}

TEST(SmtpBreaker, ForceOpenOpensAtOnceAndProbesLater) {
  BreakerPolicy p;
  Breaker b(p);
  b.record(true, 0);  // one failure: far below min_requests
  EXPECT_EQ(b.state(0), BreakerState::closed);
  b.force_open(100);
  EXPECT_EQ(b.state(100), BreakerState::open);
  EXPECT_EQ(b.opened_count(), 1);
  EXPECT_FALSE(b.usable(100 + p.open_ms - 1));
  EXPECT_TRUE(b.usable(100 + p.open_ms)) << "half-open after the usual cool-down";
  b.force_open(200);
  EXPECT_EQ(b.opened_count(), 1) << "already open: not counted twice";
}

TEST(SmtpAlert, CertificateFailureIsItsOwnAlert) {
  engine::AlertEngine eng(AlertsConfig{});
  engine::LiveSnapshot snap;
  snap.at = 1000;
  engine::SenderLive s;
  s.id = "mail-1";
  s.channel = "email";
  s.mps = 10;
  s.breaker = BreakerState::open;
  s.credentials_failed = true;  // the dispatcher sets both: the sender can send nothing
  s.certificate_failed = true;
  snap.senders.push_back(s);
  std::set<std::string> rules;
  std::string message;
  for (const auto& c : eng.live_conditions(snap, 1000)) {
    EXPECT_EQ(c.subject, "sender:mail-1");
    rules.insert(c.rule);
    if (c.rule == "certificate_failure") message = c.message;
  }
  EXPECT_EQ(rules, (std::set<std::string>{"breaker_open", "certificate_failure"}))
      << "not also credentials_failure: renewing a token would not help";
  EXPECT_NE(message.find("ca_file"), std::string::npos) << message;
}

TEST(AlertEmail, DateMessageIdAndHeaders) {
  const Millis now = 1'796'602'800'000;  // 2026-12-07T00:20:00Z
  const std::string id = engine::alert_message_id(42, "alerts@ops.example.com", now);
  EXPECT_EQ(id, "<daybreak-alert.42@ops.example.com>");
  EXPECT_EQ(engine::alert_message_id(42, "alerts@ops.example.com", now + 60'000), id) << "the same on every retry";
  std::set<std::string> direct;
  for (int i = 0; i < 50; ++i) direct.insert(engine::alert_message_id(0, "alerts@ops.example.com", now));
  EXPECT_EQ(direct.size(), 50u) << "alerts without a row get distinct ids";
  EXPECT_EQ(engine::alert_message_id(7, "no-domain", now), "<daybreak-alert.7@daybreak.invalid>");

  const std::string msg = engine::alert_email_message("alerts@ops.example.com", "oncall@ops.example.com",
                                                      "[daybreak] fired #42 breaker_open sender:mail-1 — ₹", "line 1\nline 2",
                                                      now, id);
  const auto head_end = msg.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  const std::string head = msg.substr(0, head_end + 2);
  EXPECT_NE(head.find("Date: Mon, 07 Dec 2026 00:20:00 +0000\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Message-ID: <daybreak-alert.42@ops.example.com>\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("From: <alerts@ops.example.com>\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("To: <oncall@ops.example.com>\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Subject: =?UTF-8?B?"), std::string::npos) << "a non-ASCII subject is RFC 2047 encoded: " << head;
  EXPECT_NE(head.find("MIME-Version: 1.0\r\n"), std::string::npos);
  EXPECT_EQ(msg.substr(head_end + 4), "line 1\r\nline 2");
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\n') {
      EXPECT_EQ(head[i - 1], '\r') << "bare LF in the header at " << i;
    }
    EXPECT_LT(static_cast<unsigned char>(head[i]), 0x80) << "8-bit byte in the header at " << i;
  }
}

}  // namespace
}  // namespace daybreak
