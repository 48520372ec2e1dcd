// One-click unsubscribe (RFC 8058) against the ledger: a valid token opts the advisor's email
// channel out with an audit row, for good (an advisors.csv import cannot opt it back in, only
// `advisors opt-in` can); a forged token, a wrong body or no secret changes nothing.
#include "app/unsubscribe.hpp"

#include <gtest/gtest.h>

#include "channels/signature.hpp"
#include "db_fixture.hpp"
#include "store/advisors.hpp"
#include "store/deliveries.hpp"
#include "store/overrides.hpp"

namespace daybreak {
namespace {

constexpr Millis kT0Unsub = 1'795'800'000'000;
constexpr const char* kUnsubSecret = "unsub-secret-unit";

class UnsubscribeTest : public test_support::DbTest {
 protected:
  UnsubscribeTest() : DbTest("unsubscribe") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    db_->write_tx([&] { store::AdvisorUpsert(*db_, {advisor(), kT0Unsub}); });
  }
  static Advisor advisor() {
    Advisor a;
    a.advisor_id = "ADV-7";
    a.name = "Asha";
    a.tier = "gold";
    a.phone = "+919810012345";
    a.email = "asha@advisors.example.com";
    a.timezone = "Asia/Kolkata";
    a.slot = "06:00";
    a.channels = {Channel::email, Channel::whatsapp};
    a.language = "en";
    return a;
  }
  /// The same advisor through the import's bulk path (staged, pruned, applied), opted in.
  void import_again(Millis at) {
    store::AdvisorStageReset(*db_);
    db_->exec("BEGIN");
    store::AdvisorStage(*db_, advisor());
    db_->exec("COMMIT");
    store::AdvisorStagePruneUnchanged(*db_);
    db_->write_tx([&] { store::AdvisorApplyStaged(*db_, at); });
  }
  std::int64_t email_opted_in() {
    return scalar("SELECT opted_in FROM advisor_channels WHERE advisor_id = 'ADV-7' AND channel = 'email'");
  }
};

TEST_F(UnsubscribeTest, ValidTokenOptsTheEmailChannelOutWithAnAuditRow) {
  const std::string token = channels::unsubscribe_token(kUnsubSecret, "ADV-7");
  auto out = one_click_unsubscribe(*db_, kUnsubSecret, token, "List-Unsubscribe=One-Click", kT0Unsub + 1'000);
  EXPECT_EQ(out.http_status, 200) << out.reason;
  EXPECT_TRUE(out.changed);
  EXPECT_EQ(out.advisor_id, "ADV-7");
  EXPECT_EQ(email_opted_in(), 0);
  EXPECT_EQ(scalar("SELECT opted_in FROM advisor_channels WHERE advisor_id = 'ADV-7' AND channel = 'whatsapp'"), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'daybreak-callbacks' AND target = 'advisor:ADV-7' "
                   "AND after LIKE '%\"opted_in\":false%'"),
            1);
  // A second click: 200, nothing changes, no second audit row.
  auto again = one_click_unsubscribe(*db_, kUnsubSecret, token, "List-Unsubscribe=One-Click", kT0Unsub + 2'000);
  EXPECT_EQ(again.http_status, 200);
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_log"), 1);
}

TEST_F(UnsubscribeTest, TheAdvisorsPendingEmailMovesToItsNextChannelNotedForARunningDispatch) {
  // Planned for the morning on email (the advisor's first channel); the click comes before it is sent.
  std::int64_t run = 0;
  db_->write_tx([&] {
    run = test_support::add_content_and_run(*db_, kT0Unsub);
    auto p = test_support::planned_delivery(run, "ADV-7", "2026-11-28", kT0Unsub, kT0Unsub, kT0Unsub);
    p.channel = "email";
    p.channel_index = 0;
    p.sender = "mail-1";
    ASSERT_TRUE(store::DeliveryInsert(*db_, p));
  });
  const std::string token = channels::unsubscribe_token(kUnsubSecret, "ADV-7");
  ASSERT_EQ(one_click_unsubscribe(*db_, kUnsubSecret, token, "List-Unsubscribe=One-Click", kT0Unsub - 60'000).http_status, 200);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE advisor_id = 'ADV-7' AND channel = 'whatsapp' AND channel_index = 1 "
                   "AND sender = '' AND state = 'planned'"),
            1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM delivery_changes c JOIN deliveries d USING (delivery_id) "
                   "WHERE d.advisor_id = 'ADV-7' AND c.kind = 'advisor'"),
            1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_log WHERE after LIKE '%\"deliveries_moved\":[%'"), 1);
}

TEST_F(UnsubscribeTest, AnImportCannotOptAnUnsubscribedChannelBackInButOptInCan) {
  const std::string token = channels::unsubscribe_token(kUnsubSecret, "ADV-7");
  ASSERT_EQ(one_click_unsubscribe(*db_, kUnsubSecret, token, "List-Unsubscribe=One-Click", kT0Unsub).http_status, 200);
  // The same advisor imported again (opted_in = yes in the file), one row and the bulk path.
  db_->write_tx([&] { store::AdvisorUpsert(*db_, {advisor(), kT0Unsub + 10}); });
  EXPECT_EQ(email_opted_in(), 0);
  import_again(kT0Unsub + 20);
  EXPECT_EQ(email_opted_in(), 0);
  // The operator opts the channel back in: that clears the unsubscribe.
  db_->write_tx([&] { store::AdvisorChannelSetOptIn(*db_, "ADV-7", "email", true, kT0Unsub + 30); });
  EXPECT_EQ(email_opted_in(), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM advisor_channels WHERE unsubscribed_at IS NOT NULL"), 0);
}

TEST_F(UnsubscribeTest, AnOperatorsOptOutSurvivesAnImportButNotAnOptIn) {
  // `daybreak advisors opt-out ADV-7 --channel whatsapp`: the nightly import of the CRM's file
  // (opted_in = yes) must not send to that channel again tomorrow.
  auto whatsapp_opted_in = [&] {
    return scalar("SELECT opted_in FROM advisor_channels WHERE advisor_id = 'ADV-7' AND channel = 'whatsapp'");
  };
  db_->write_tx([&] { EXPECT_TRUE(store::AdvisorChannelSetOptIn(*db_, "ADV-7", "whatsapp", false, kT0Unsub)); });
  db_->write_tx([&] { store::AdvisorUpsert(*db_, {advisor(), kT0Unsub + 10}); });
  EXPECT_EQ(whatsapp_opted_in(), 0);
  import_again(kT0Unsub + 20);
  EXPECT_EQ(whatsapp_opted_in(), 0);
  EXPECT_EQ(email_opted_in(), 1) << "the other channel follows the file";
  // A non-sticky opt-out (what `advisors update` re-applies) does follow the next import.
  db_->write_tx([&] { store::AdvisorChannelSetOptIn(*db_, "ADV-7", "email", false, kT0Unsub + 25, false); });
  db_->write_tx([&] { store::AdvisorUpsert(*db_, {advisor(), kT0Unsub + 26}); });
  EXPECT_EQ(email_opted_in(), 1);
  db_->write_tx([&] { store::AdvisorChannelSetOptIn(*db_, "ADV-7", "whatsapp", true, kT0Unsub + 30); });
  db_->write_tx([&] { store::AdvisorUpsert(*db_, {advisor(), kT0Unsub + 40}); });
  EXPECT_EQ(whatsapp_opted_in(), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM advisor_channels WHERE unsubscribed_at IS NOT NULL"), 0);
}

TEST_F(UnsubscribeTest, ForgedTokenWrongBodyOrNoSecretChangeNothing) {
  const std::string good = channels::unsubscribe_token(kUnsubSecret, "ADV-7");
  struct Case {
    std::string secret, token, body;
    int status;
  };
  const Case cases[] = {
      {kUnsubSecret, channels::unsubscribe_token("guessed-secret", "ADV-7"), "List-Unsubscribe=One-Click", 403},
      {kUnsubSecret, "u1.QURWLTc.00000000000000000000000000000000", "List-Unsubscribe=One-Click", 403},
      {kUnsubSecret, "", "List-Unsubscribe=One-Click", 403},
      {kUnsubSecret, good, "", 400},
      {kUnsubSecret, good, "List-Unsubscribe=Yes", 400},
      {"", good, "List-Unsubscribe=One-Click", 404},
  };
  for (const auto& c : cases) {
    auto out = one_click_unsubscribe(*db_, c.secret, c.token, c.body, kT0Unsub);
    EXPECT_EQ(out.http_status, c.status) << c.token << " / " << c.body << ": " << out.reason;
    EXPECT_FALSE(out.reason.empty());
  }
  EXPECT_EQ(email_opted_in(), 1);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_log"), 0);
}

TEST(UnsubscribeBodyTest, UrlencodedAndMultipartOneClickBodies) {
  EXPECT_TRUE(is_one_click_body("List-Unsubscribe=One-Click"));
  EXPECT_TRUE(is_one_click_body("List-Unsubscribe=One-Click\r\n"));
  EXPECT_TRUE(is_one_click_body("x=1&List-Unsubscribe=One-Click"));
  EXPECT_TRUE(is_one_click_body("--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n"));
  EXPECT_FALSE(is_one_click_body(""));
  EXPECT_FALSE(is_one_click_body("List-Unsubscribe=One-ClickX"));
  EXPECT_FALSE(is_one_click_body("XList-Unsubscribe=One-Click"));
}

}  // namespace
}  // namespace daybreak
