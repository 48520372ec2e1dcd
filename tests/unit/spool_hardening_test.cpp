// The ledger's and the spool's edges: every writable connection bounds the WAL
// (PRAGMA journal_size_limit), and spool ingest refuses a symbolic link placed in the spool
// instead of following it to what it names (opened with O_NOFOLLOW), leaving the target untouched.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/callbacks.hpp"
#include "channels/signature.hpp"
#include "channels/status_parse.hpp"
#include "config/config.hpp"
#include "db_fixture.hpp"

namespace daybreak {
namespace {

namespace fs = std::filesystem;

constexpr Millis kT0Spool = 1'764'300'000'000;
constexpr const char* kSpoolSecret = "spool-hardening-secret";

class SpoolHardeningTest : public test_support::DbTest {
 protected:
  SpoolHardeningTest() : DbTest("spoolhard") {}
};

TEST_F(SpoolHardeningTest, EveryWritableConnectionBoundsTheWal) {
  EXPECT_EQ(scalar("PRAGMA journal_size_limit"), 64LL * 1024 * 1024);
  store::Db second(db_path());
  SQLite::Statement q(second.raw(), "PRAGMA journal_size_limit");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getInt64(), 64LL * 1024 * 1024);
}

TEST_F(SpoolHardeningTest, SymlinkInTheSpoolIsRefusedNotFollowed) {
  auto log = std::make_shared<spdlog::logger>("spool-hardening", std::make_shared<spdlog::sinks::null_sink_mt>());
  const fs::path spool = dir_ / "spool";
  fs::create_directories(spool);
  // A correctly signed request outside the spool, and a link to it inside: following the link
  // would store (and later move) a file the spool's writer never wrote.
  const std::string body =
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp",)"
      R"("metadata":{"display_phone_number":"1","phone_number_id":"1"},"statuses":[{"id":"wamid.LINK","status":"delivered",)"
      R"("timestamp":"1764300001","recipient_id":"919810012345"}]},"field":"messages"}]}]})";
  const fs::path outside = dir_ / "elsewhere.req";
  { std::ofstream(outside) << channels::format_spool_request("sha256=" + channels::hmac_sha256_hex(kSpoolSecret, body), body); }
  std::stringstream before;
  before << std::ifstream(outside).rdbuf();
  fs::create_symlink(outside, spool / "1764300000000-1-1.req");
  Config cfg;
  cfg.whatsapp.app_secret = kSpoolSecret;
  auto rep = ingest_spool(*db_, cfg, spool.string(), kT0Spool, *log);
  EXPECT_EQ(rep["stored"], 0) << rep.dump();
  ASSERT_EQ(rep["rejected"].size(), 1u) << rep.dump();
  EXPECT_NE(rep["rejected"][0]["reason"].get<std::string>().find("symbolic link"), std::string::npos) << rep.dump();
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM status_events"), 0);
  // The link went to rejected/ as a link; what it named is where it was, unchanged.
  EXPECT_TRUE(fs::is_symlink(spool / "rejected" / "1764300000000-1-1.req"));
  ASSERT_TRUE(fs::is_regular_file(outside));
  std::stringstream after;
  after << std::ifstream(outside).rdbuf();
  EXPECT_EQ(after.str(), before.str());
}

}  // namespace
}  // namespace daybreak
