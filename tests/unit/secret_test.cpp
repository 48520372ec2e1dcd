// Secrets are read on use, not at load (config/secret.hpp): a configuration whose token
// variables are not set loads, so the commands that send nothing run; reading a secret that
// cannot be read fails with the key, the line and the variable or file named.
#include "config/secret.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>

#include "app/callbacks.hpp"
#include "channels/channel.hpp"
#include "config/config.hpp"
#include "domain/clock.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;

// Variable names no environment sets; each test unsets them first and restores nothing else.
constexpr const char* kTokenVar = "DAYBREAK_UNIT_TEST_WA_TOKEN_UNSET";
constexpr const char* kHookVar = "DAYBREAK_UNIT_TEST_HOOK_URL_UNSET";
constexpr const char* kAppVar = "DAYBREAK_UNIT_TEST_APP_SECRET_UNSET";
constexpr const char* kSignVar = "DAYBREAK_UNIT_TEST_SIGNING_UNSET";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

struct SecretTest : ::testing::Test {
  void SetUp() override {
    for (const char* v : {kTokenVar, kHookVar, kAppVar, kSignVar}) ::unsetenv(v);
  }
  void TearDown() override {
    for (const char* v : {kTokenVar, kHookVar, kAppVar, kSignVar}) ::unsetenv(v);
  }
  static std::string sender_toml(const std::string& token_line) {
    return "[whatsapp]\ngraph_base = \"http://127.0.0.1:9\"\n[[whatsapp.senders]]\nid = \"wa-1\"\n"
           "phone_number_id = \"100000001\"\n" + token_line + "\n";
  }
};

TEST_F(SecretTest, ConfigWithAnUnsetTokenVariableLoads) {
  Config cfg;
  ASSERT_NO_THROW(cfg = parse_config(sender_toml(std::string("token_env = \"") + kTokenVar + "\""), "t.toml"));
  ASSERT_EQ(cfg.senders.size(), 1u);
  const Secret& tok = cfg.senders[0].token;
  EXPECT_TRUE(tok.configured());
  EXPECT_EQ(tok.source(), Secret::Source::env);
  EXPECT_EQ(tok.reference(), kTokenVar);
  EXPECT_EQ(tok.describe(), std::string("environment variable ") + kTokenVar);
}

TEST_F(SecretTest, ReadingAnUnsetTokenNamesTheKeyLineAndVariable) {
  Config cfg = parse_config(sender_toml(std::string("token_env = \"") + kTokenVar + "\""), "t.toml");
  std::string e = error_of([&] { (void)cfg.senders[0].token.value(); });
  EXPECT_NE(e.find("t.toml:6"), std::string::npos) << e;
  EXPECT_NE(e.find("whatsapp.senders[0].token_env"), std::string::npos) << e;
  EXPECT_NE(e.find(std::string("environment variable ") + kTokenVar + ", which is not set"), std::string::npos) << e;
  // dispatch makes every adapter before it takes a lease: that is where it stops (exit 3).
  e = error_of([&] { (void)channels::make_adapter(cfg, cfg.senders[0]); });
  EXPECT_NE(e.find(kTokenVar), std::string::npos) << e;

  // Read on use: the variable set after loading is what the adapter gets.
  ::setenv(kTokenVar, "EAAB-from-env", 1);
  EXPECT_EQ(cfg.senders[0].token.value(), "EAAB-from-env");
  auto adapter = channels::make_adapter(cfg, cfg.senders[0]);
  bool bearer = false;
  for (const auto& h : adapter->build(channels::Message{}).headers) bearer |= h == "Authorization: Bearer EAAB-from-env";
  EXPECT_TRUE(bearer) << "the WhatsApp adapter sends the token read from the variable";
}

TEST_F(SecretTest, TokenFileIsReadOnUse) {
  const fs::path dir = fs::temp_directory_path() / ("daybreak-secret-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "wa1.token";
  Config cfg = parse_config(sender_toml("token_file = \"" + file.string() + "\""), "t.toml");  // no file yet: loads
  std::string e = error_of([&] { (void)cfg.senders[0].token.value(); });
  EXPECT_NE(e.find("whatsapp.senders[0].token_file"), std::string::npos) << e;
  EXPECT_NE(e.find("cannot read " + file.string()), std::string::npos) << e;
  { std::ofstream(file) << "EAAB-from-file\nsecond line ignored\n"; }
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  EXPECT_EQ(cfg.senders[0].token.value(), "EAAB-from-file");
  fs::remove_all(dir);
}

TEST_F(SecretTest, InlineAndAbsentSecrets) {
  Config cfg = parse_config(sender_toml("token = \"inline-token\""), "");
  EXPECT_EQ(cfg.senders[0].token.source(), Secret::Source::inline_value);
  EXPECT_EQ(cfg.senders[0].token.value(), "inline-token");
  EXPECT_EQ(cfg.senders[0].token.describe(), "inline") << "describe never shows the value";
  Config none = parse_config(sender_toml(""), "");
  EXPECT_FALSE(none.senders[0].token.configured());
  EXPECT_EQ(none.senders[0].token.value(), "");
  EXPECT_FALSE(Secret("").configured());
}

TEST_F(SecretTest, WebhookSigningSecretFromAnUnsetVariableLoadsAndStopsTheAdapter) {
  Config cfg = parse_config(std::string("[[webhook.senders]]\nid = \"w\"\nendpoint = \"https://h.example.com/x\"\n"
                                        "signing_secret_env = \"") + kSignVar + "\"\n",
                            "t.toml");
  EXPECT_TRUE(cfg.senders[0].signing_secret.configured()) << "a signing secret from a variable counts as configured";
  std::string e = error_of([&] { (void)channels::make_adapter(cfg, cfg.senders[0]); });
  EXPECT_NE(e.find("webhook.senders[0].signing_secret_env"), std::string::npos) << e;
  EXPECT_NE(e.find(kSignVar), std::string::npos) << e;
}

TEST_F(SecretTest, ReceiverReadsTheAppSecretWhenMade) {
  Config cfg = parse_config(std::string("[whatsapp]\napp_secret_env = \"") + kAppVar + "\"\n", "t.toml");
  EXPECT_TRUE(cfg.whatsapp.app_secret.configured());
  SystemClock clock;
  auto log = std::make_shared<spdlog::logger>("secret-test", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::string e = error_of([&] { CallbackReceiver r(nullptr, cfg, clock, log, "/nonexistent-spool"); });
  EXPECT_NE(e.find("whatsapp.app_secret_env"), std::string::npos) << e;
  EXPECT_NE(e.find(kAppVar), std::string::npos) << e;
  ::setenv(kAppVar, "app-secret", 1);
  EXPECT_NO_THROW(CallbackReceiver(nullptr, cfg, clock, log, "/nonexistent-spool"));
}

TEST_F(SecretTest, AlertWebhookFromAnUnsetVariableIsCheckedOnlyBySenders) {
  const std::string toml = std::string("[alerts]\nchain = [\"oncall\"]\n[alerts.levels.oncall]\nwebhook_env = \"") + kHookVar + "\"\n";
  Config cfg;
  ASSERT_NO_THROW(cfg = parse_config(toml, "t.toml"));
  ASSERT_EQ(cfg.alerts.chain.size(), 1u);
  ASSERT_EQ(cfg.alerts.chain[0].webhooks.size(), 1u);
  std::string e = error_of([&] { check_alert_secrets(cfg.alerts); });
  EXPECT_NE(e.find("alerts.levels.oncall.webhook_env"), std::string::npos) << e;
  EXPECT_NE(e.find(kHookVar), std::string::npos) << e;
  ::setenv(kHookVar, "ftp://hooks.example.com/x", 1);
  e = error_of([&] { check_alert_secrets(cfg.alerts); });
  EXPECT_NE(e.find("must start with https://"), std::string::npos) << e;
  EXPECT_EQ(e.find("ftp://"), std::string::npos) << "the URL is a credential and is not echoed: " << e;
  ::setenv(kHookVar, "https://hooks.example.com/services/T/B/X", 1);
  EXPECT_NO_THROW(check_alert_secrets(cfg.alerts));
  EXPECT_EQ(cfg.alerts.chain[0].webhooks[0].value(), "https://hooks.example.com/services/T/B/X");
}

}  // namespace
}  // namespace daybreak
