// The operator console's access pieces (cli/op_serve.hpp): the tokens file is refused unless
// owner-only and well formed, a login matches name and token hash, --listen is loopback unless
// allowed, and form bodies decode.
#include "cli/op_serve.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "app/errors.hpp"
#include "config/config.hpp"

namespace daybreak::serve {
namespace {

std::string write_tokens(const std::string& text, mode_t mode) {
  auto dir = std::filesystem::temp_directory_path() / ("console_test." + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = (dir / "tokens").string();
  std::filesystem::remove(p);
  std::ofstream(p) << text;
  ::chmod(p.c_str(), mode);
  return p;
}

TEST(ConsoleTokens, Sha256MatchesKnownVector) {
  // FIPS 180-2 test vector for "abc".
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ConsoleTokens, LoadsOwnerOnlyFileAndChecksLogins) {
  const std::string p = write_tokens("# operators\nalice operator " + sha256_hex("s3cret") + "\nbob viewer " + sha256_hex("b0b") +
                                         "  # read only\n\n",
                                     0600);
  auto t = load_tokens(p);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].role, Role::operator_);
  EXPECT_EQ(t[1].role, Role::viewer);
  auto a = check_login(t, "alice", "s3cret");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, "alice");
  EXPECT_FALSE(check_login(t, "alice", "b0b"));   // bob's token under alice's name
  EXPECT_FALSE(check_login(t, "bob", "s3cret"));
  EXPECT_FALSE(check_login(t, "alice", ""));
  EXPECT_FALSE(check_login(t, "carol", "s3cret"));
}

TEST(ConsoleTokens, RefusesOpenModesAndBadLines) {
  const std::string good = "alice operator " + sha256_hex("x") + "\n";
  EXPECT_THROW(load_tokens(write_tokens(good, 0644)), ConfigError);
  EXPECT_THROW(load_tokens(write_tokens(good, 0660)), ConfigError);
  EXPECT_THROW(load_tokens(write_tokens("alice admin " + sha256_hex("x") + "\n", 0600)), ConfigError);
  EXPECT_THROW(load_tokens(write_tokens("alice operator plaintext-token\n", 0600)), ConfigError);
  EXPECT_THROW(load_tokens(write_tokens(good + good, 0600)), ConfigError);
  EXPECT_THROW(load_tokens(write_tokens("# nobody\n", 0600)), ConfigError);
  EXPECT_THROW(load_tokens("/nonexistent/console.tokens"), ConfigError);
}

TEST(ConsoleListen, LoopbackOnlyUnlessAllowed) {
  auto a = parse_listen("127.0.0.1:8090", false);
  EXPECT_TRUE(a.loopback);
  EXPECT_EQ(a.port, 8090);
  EXPECT_TRUE(parse_listen("[::1]:0", false).v6);
  EXPECT_EQ(parse_listen("localhost:1", false).host, "127.0.0.1");
  EXPECT_THROW(parse_listen("0.0.0.0:8090", false), UsageError);
  EXPECT_THROW(parse_listen("192.168.1.5:8090", false), UsageError);
  EXPECT_THROW(parse_listen("[::]:8090", false), UsageError);
  EXPECT_FALSE(parse_listen("0.0.0.0:8090", true).loopback);
  EXPECT_THROW(parse_listen("127.0.0.1", false), UsageError);
  EXPECT_THROW(parse_listen("127.0.0.1:70000", false), UsageError);
  EXPECT_THROW(parse_listen("example.org:80", true), UsageError);
}

TEST(ConsoleForm, DecodesUrlEncodedBodies) {
  auto f = parse_form("csrf=ab12&reason=fix+the+list%21&scope=all&empty=&reason=second");
  EXPECT_EQ(f["csrf"], "ab12");
  EXPECT_EQ(f["reason"], "fix the list!");
  EXPECT_EQ(f["scope"], "all");
  EXPECT_EQ(f["empty"], "");
  EXPECT_EQ(parse_form("a=%zz")["a"], "%zz");
  EXPECT_TRUE(parse_form("").empty());
}

TEST(ConsoleLogin, ThrottleRefusesAnAddressAfterTenFailuresForTheRestOfTheMinute) {
  LoginThrottle t(10, 60'000, 3);
  const std::int64_t t0 = 1'000'000;
  for (int i = 0; i < 9; ++i) t.failed("10.0.0.9", t0 + i);
  EXPECT_EQ(t.wait_ms("10.0.0.9", t0 + 10), 0) << "nine failures: still allowed";
  t.failed("10.0.0.9", t0 + 10);
  EXPECT_EQ(t.wait_ms("10.0.0.9", t0 + 10), 59'990) << "the tenth: refused until a minute after the first";
  EXPECT_EQ(t.wait_ms("127.0.0.1", t0 + 10), 0) << "another address is not affected";
  EXPECT_EQ(t.wait_ms("10.0.0.9", t0 + 60'000), 0) << "the minute has passed";
  t.failed("10.0.0.9", t0 + 60'001);
  EXPECT_EQ(t.wait_ms("10.0.0.9", t0 + 60'002), 0) << "a failure after the window starts a new count";
  // A success clears the address's count.
  for (int i = 0; i < 9; ++i) t.failed("10.0.0.8", t0);
  t.succeeded("10.0.0.8");
  t.failed("10.0.0.8", t0 + 1);
  EXPECT_EQ(t.wait_ms("10.0.0.8", t0 + 1), 0);
  // At most max_clients addresses are remembered: the stalest goes first.
  for (int i = 0; i < 10; ++i) t.failed("10.0.0.7", t0 + 2);
  t.failed("10.0.0.6", t0 + 3);  // 10.0.0.9 (first at t0 + 60,001) is not the stalest: 10.0.0.8 (t0 + 1) is
  EXPECT_GT(t.wait_ms("10.0.0.7", t0 + 4), 0);
}

}  // namespace
}  // namespace daybreak::serve
