// Configuration refused at load or on read (config/secret.cpp, config/config.cpp,
// config/alerts_config.cpp), each case exit 3 through ConfigError: a *_file secret that group or
// others may read, an empty secret, and a credential-carrying request in clear (http://, or
// SMTP without TLS) to a host that is not loopback unless the section sets allow_insecure = true.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <utility>

#include "channels/channel.hpp"
#include "config/config.hpp"
#include "config/secret.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRefusalTokenVar = "DAYBREAK_UNIT_TEST_REFUSAL_TOKEN";
constexpr const char* kRefusalHookVar = "DAYBREAK_UNIT_TEST_REFUSAL_HOOK";

std::string refusal_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

struct ConfigRefusalTest : ::testing::Test {
  void SetUp() override {
    for (const char* v : {kRefusalTokenVar, kRefusalHookVar}) ::unsetenv(v);
  }
  void TearDown() override {
    for (const char* v : {kRefusalTokenVar, kRefusalHookVar}) ::unsetenv(v);
  }
  static std::string wa_sender_toml(const std::string& token_line) {
    return "[whatsapp]\ngraph_base = \"http://127.0.0.1:9\"\n[[whatsapp.senders]]\nid = \"wa-1\"\n"
           "phone_number_id = \"100000001\"\n" + token_line + "\n";
  }
};

/// A per-test directory with a secret file of the given mode and content.
struct SecretFileOnDisk {
  fs::path dir;
  fs::path file;
  SecretFileOnDisk(const std::string& content, fs::perms mode) {
    dir = fs::temp_directory_path() / ("daybreak-secretfile-" + std::to_string(::getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
    file = dir / "secret";
    { std::ofstream(file) << content; }
    fs::permissions(file, mode, fs::perm_options::replace);
  }
  ~SecretFileOnDisk() { fs::remove_all(dir); }
};

constexpr fs::perms kOwnerRw = fs::perms::owner_read | fs::perms::owner_write;

TEST_F(ConfigRefusalTest, SecretFileReadableByGroupOrOthersIsRefusedNamingFileAndMode) {
  for (auto [mode, text] : {std::pair{kOwnerRw | fs::perms::group_read, "0640"},
                            std::pair{kOwnerRw | fs::perms::group_read | fs::perms::others_read, "0644"},
                            std::pair{kOwnerRw | fs::perms::others_write, "0602"}}) {
    SecretFileOnDisk f("EAAB-token\n", mode);
    // At load, when the file is there (nothing is read) …
    std::string e = refusal_of([&] { (void)parse_config(wa_sender_toml("token_file = \"" + f.file.string() + "\""), "t.toml"); });
    EXPECT_NE(e.find("whatsapp.senders[0].token_file"), std::string::npos) << e;
    EXPECT_NE(e.find(f.file.string()), std::string::npos) << e;
    EXPECT_NE(e.find(std::string("mode ") + text), std::string::npos) << e;
    EXPECT_EQ(e.find("EAAB-token"), std::string::npos) << "never the value: " << e;
    // … and on read, when it was opened up after the load.
    fs::permissions(f.file, kOwnerRw, fs::perm_options::replace);
    Config cfg = parse_config(wa_sender_toml("token_file = \"" + f.file.string() + "\""), "t.toml");
    fs::permissions(f.file, mode, fs::perm_options::replace);
    e = refusal_of([&] { (void)cfg.senders[0].token.value(); });
    EXPECT_NE(e.find(std::string("mode ") + text), std::string::npos) << e;
    fs::permissions(f.file, kOwnerRw, fs::perm_options::replace);
    EXPECT_EQ(cfg.senders[0].token.value(), "EAAB-token");
  }
  // Every *_file key goes through the same check (alerts use their own reader).
  SecretFileOnDisk f("hunter2\n", kOwnerRw | fs::perms::others_read);
  std::string e = refusal_of([&] {
    (void)parse_config("[alerts]\nsmtp_url = \"smtps://smtp.example.com:465\"\nsmtp_username = \"u\"\nsmtp_password_file = \"" +
                           f.file.string() + "\"\n", "t.toml");
  });
  EXPECT_NE(e.find("alerts.smtp_password_file"), std::string::npos) << e;
  EXPECT_NE(e.find("mode 0604"), std::string::npos) << e;
}

TEST_F(ConfigRefusalTest, EmptySecretIsRefused) {
  ::setenv(kRefusalTokenVar, "", 1);
  Config cfg = parse_config(wa_sender_toml(std::string("token_env = \"") + kRefusalTokenVar + "\""), "t.toml");
  std::string e = refusal_of([&] { (void)cfg.senders[0].token.value(); });
  EXPECT_NE(e.find(kRefusalTokenVar), std::string::npos) << e;
  EXPECT_NE(e.find("empty"), std::string::npos) << e;
  e = refusal_of([&] { (void)channels::make_adapter(cfg, cfg.senders[0]); });
  EXPECT_NE(e.find("empty"), std::string::npos) << "an adapter is not made with an empty token: " << e;

  for (const char* content : {"", "\n", "\nEAAB-on-the-second-line\n"}) {
    SecretFileOnDisk f(content, kOwnerRw);
    Config c = parse_config(wa_sender_toml("token_file = \"" + f.file.string() + "\""), "t.toml");
    e = refusal_of([&] { (void)c.senders[0].token.value(); });
    EXPECT_NE(e.find(f.file.string()), std::string::npos) << e;
    EXPECT_NE(e.find("empty"), std::string::npos) << e;
  }
  e = refusal_of([&] { (void)parse_config(wa_sender_toml("token_env = \"\""), "t.toml"); });
  EXPECT_NE(e.find("whatsapp.senders[0].token_env"), std::string::npos) << e;
  e = refusal_of([&] { (void)parse_config(wa_sender_toml("token_file = \"\""), "t.toml"); });
  EXPECT_NE(e.find("whatsapp.senders[0].token_file"), std::string::npos) << e;
}

/// The error of loading `toml`, or "no error".
std::string refusal_loading(const std::string& toml) {
  return refusal_of([&] { (void)parse_config(toml, "t.toml"); });
}

TEST_F(ConfigRefusalTest, CredentialsInClearToANonLoopbackHostAreRefusedUnlessAllowed) {
  const std::string wa = "[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\n";
  // WhatsApp: every sender's token goes to graph_base.
  std::string e = refusal_loading("[whatsapp]\ngraph_base = \"http://graph.example.com\"\n" + wa);
  EXPECT_NE(e.find("whatsapp.graph_base"), std::string::npos) << e;
  EXPECT_NE(e.find("allow_insecure = true"), std::string::npos) << e;
  EXPECT_EQ(refusal_loading("[whatsapp]\ngraph_base = \"http://graph.example.com\"\nallow_insecure = true\n" + wa), "no error");
  EXPECT_EQ(refusal_loading("[whatsapp]\ngraph_base = \"http://127.0.0.1:9\"\n" + wa), "no error") << "the simulator in tests";
  EXPECT_EQ(refusal_loading("[whatsapp]\ngraph_base = \"https://graph.example.com\"\n" + wa), "no error");
  for (const char* u : {"http://127.0.0.1", "http://localhost:8080/x", "http://LOCALHOST", "http://[::1]:9/v",
                        "http://user:pw@127.0.0.1:9/", "http://127.1.2.3/"}) {
    EXPECT_EQ(refusal_loading("[whatsapp]\ngraph_base = \"" + std::string(u) + "\"\n" + wa), "no error") << u << " is loopback";
  }
  for (const char* u : {"http://127.example.com/", "http://127.0.0.1.evil.example/", "http://localhost.evil.example",
                        "http://10.0.0.1:9", "http://[::2]/", "http://x@example.com/@127.0.0.1"}) {
    EXPECT_NE(refusal_loading("[whatsapp]\ngraph_base = \"" + std::string(u) + "\"\n" + wa), "no error") << u << " is not loopback";
  }
  // A webhook sender's signed payloads.
  const std::string hook = "[[webhook.senders]]\nid = \"w\"\nsigning_secret = \"k\"\n";
  e = refusal_loading(hook + "endpoint = \"http://hooks.example.com/in?token=s3cr3t\"\n");
  EXPECT_NE(e.find("webhook.senders[0].endpoint"), std::string::npos) << e;
  EXPECT_EQ(e.find("s3cr3t"), std::string::npos) << "the URL is not echoed: " << e;
  EXPECT_EQ(refusal_loading(hook + "endpoint = \"http://hooks.example.com/in\"\nallow_insecure = true\n"), "no error");
  EXPECT_EQ(refusal_loading(hook + "endpoint = \"http://127.0.0.1:8080/in\"\n"), "no error");
  // An email sender without STARTTLS.
  const std::string mail = "[[email.senders]]\nid = \"m\"\nfrom = \"d@example.com\"\npassword = \"p\"\n";
  e = refusal_loading(mail + "url = \"smtp://smtp.example.com:587\"\nstarttls = false\n");
  EXPECT_NE(e.find("email.senders[0].url"), std::string::npos) << e;
  EXPECT_EQ(refusal_loading(mail + "url = \"smtp://smtp.example.com:587\"\n"), "no error") << "STARTTLS is the default";
  EXPECT_EQ(refusal_loading(mail + "url = \"smtp://smtp.example.com:587\"\nstarttls = false\nallow_insecure = true\n"), "no error");
  EXPECT_EQ(refusal_loading(mail + "url = \"smtp://127.0.0.1:2525\"\nstarttls = false\n"), "no error");
  // Alert SMTP without TLS, and alert webhooks over http://.
  const std::string smtp = "[alerts]\nsmtp_url = \"smtp://smtp.example.com:587\"\nsmtp_from = \"a@example.com\"\n";
  e = refusal_loading(smtp);
  EXPECT_NE(e.find("alerts.smtp_url"), std::string::npos) << e;
  EXPECT_EQ(refusal_loading(smtp + "smtp_starttls = true\n"), "no error");
  EXPECT_EQ(refusal_loading(smtp + "allow_insecure = true\n"), "no error");
  EXPECT_EQ(refusal_loading("[alerts]\nsmtp_url = \"smtps://smtp.example.com:465\"\n"), "no error");
  EXPECT_EQ(refusal_loading("[alerts]\nsmtp_url = \"smtp://127.0.0.1:2525\"\n"), "no error");
  const std::string chain = "[alerts]\nchain = [\"oncall\"]\n";
  e = refusal_loading(chain + "[alerts.levels.oncall]\nwebhooks = [\"http://hooks.example.com/services/T/B/X\"]\n");
  EXPECT_NE(e.find("alerts.levels.oncall.webhooks"), std::string::npos) << e;
  EXPECT_EQ(e.find("services/T/B/X"), std::string::npos) << "the URL is a credential and is not echoed: " << e;
  EXPECT_EQ(refusal_loading("[alerts]\nallow_insecure = true\nchain = [\"oncall\"]\n[alerts.levels.oncall]\n"
                       "webhooks = [\"http://hooks.example.com/x\"]\n"),
            "no error");
  // One from a variable is checked when a command sends.
  Config cfg = parse_config(chain + "[alerts.levels.oncall]\nwebhook_env = \"" + kRefusalHookVar + "\"\n", "t.toml");
  ::setenv(kRefusalHookVar, "http://hooks.example.com/services/T/B/X", 1);
  e = refusal_of([&] { check_alert_secrets(cfg.alerts); });
  EXPECT_NE(e.find("not loopback"), std::string::npos) << e;
  EXPECT_EQ(e.find("services/T/B/X"), std::string::npos) << e;
  ::setenv(kRefusalHookVar, "http://127.0.0.1:9/hook", 1);
  EXPECT_NO_THROW(check_alert_secrets(cfg.alerts));
}

}  // namespace
}  // namespace daybreak
