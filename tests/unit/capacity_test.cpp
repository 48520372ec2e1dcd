// Capacity planning (core/domain/capacity.cpp, `sla-report capacity`): the verdicts,
// worked out by hand from the planner's rule (a sender of R msg/s is planned at most
// floor(0.7 × R) sends a second over the 300 s send window).
#include "domain/capacity.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "app/report.hpp"
#include "config/config.hpp"

namespace daybreak {
namespace {

CapacityInput whatsapp(std::int64_t advisors, int senders, double mps) {
  CapacityInput in;
  in.demand.push_back({"whatsapp", "all", 0, advisors});
  for (int i = 0; i < senders; ++i) in.senders.push_back({"wa-" + std::to_string(i), "whatsapp", mps});
  return in;
}

TEST(CapacityTest, AMillionAdvisorsOnFourStandardSendersIsInfeasibleAndSaysHowManyFastSendersAreNeeded) {
  CapacityInput in = whatsapp(1'000'000, 4, 80);
  in.new_sender_mps = 1000;  // WhatsApp Cloud API's upgraded throughput tier
  CapacityReport r = plan_capacity(in);
  EXPECT_FALSE(r.feasible);
  ASSERT_EQ(r.channels.size(), 1u);
  const ChannelCapacity& c = r.channels[0];
  // 4 × floor(0.7 × 80) = 224 planned a second × 300 s = 67,200 fit; 932,800 do not.
  EXPECT_EQ(c.capacity_in_window, 67'200);
  EXPECT_EQ(c.shortfall, 932'800);
  // Needed: 1e6 / (300 s × 0.7) = 4,761.9 msg/s against 320.
  EXPECT_NEAR(c.required_mps, 4761.9, 0.05);
  EXPECT_DOUBLE_EQ(c.sender_mps, 320);
  // A 1,000 msg/s sender carries 700 × 300 = 210,000: five of them close 932,800.
  EXPECT_EQ(c.add_senders, 5);
  EXPECT_DOUBLE_EQ(c.add_sender_mps, 1000);
  EXPECT_NE(c.recommendation.find("does not fit"), std::string::npos) << c.recommendation;
  EXPECT_NE(c.recommendation.find("add 5 whatsapp senders of 1000 msg/s"), std::string::npos) << c.recommendation;
  // Sending everything at the full 320 msg/s would take 52 minutes, ten times the window.
  EXPECT_NEAR(c.drain_seconds, 3125, 1e-6);
  EXPECT_LT(c.retry_headroom, 0);
}

TEST(CapacityTest, TwoThousandAdvisorsOnOneStandardSenderFitWithItsUtilisation) {
  CapacityReport r = plan_capacity(whatsapp(2000, 1, 80));
  EXPECT_TRUE(r.feasible);
  const ChannelCapacity& c = r.channels.at(0);
  EXPECT_EQ(c.capacity_in_window, 16'800);  // 56 a second × 300 s
  EXPECT_EQ(c.shortfall, 0);
  EXPECT_EQ(c.add_senders, 0);
  // 2,000 of the 24,000 sends 80 msg/s allows in 300 s: 8.33% of the window.
  EXPECT_NEAR(c.window_utilisation_pct, 100.0 * 2000 / 24000, 1e-9);
  EXPECT_NEAR(c.cap_utilisation_pct, 100.0 * 2000 / 16800, 1e-9);
  EXPECT_NEAR(c.drain_seconds, 25, 1e-9);
  EXPECT_NEAR(c.retry_headroom, 11, 1e-9);  // 22,000 spare sends: 11 per delivery
  EXPECT_NE(c.recommendation.find("fits"), std::string::npos) << c.recommendation;
  EXPECT_NE(c.recommendation.find("window utilisation 8.33%"), std::string::npos) << c.recommendation;
}

TEST(CapacityTest, GrowthAndMovingTheLowestTiersToAChannelWithRoom) {
  CapacityInput in;
  in.senders = {{"wa-1", "whatsapp", 80}, {"smtp-1", "email", 200}};
  in.demand = {{"whatsapp", "platinum", 0, 5000},
               {"whatsapp", "gold", 1, 6000},
               {"whatsapp", "standard", 3, 4000},
               {"email", "gold", 1, 1000}};
  // 15,000 on WhatsApp fit under 16,800.
  EXPECT_TRUE(plan_capacity(in).feasible);
  // 20% more: 18,000 > 16,800, short 1,200; email has 42,000 − 1,200 spare: move standard (4,800).
  in.growth = 1.2;
  CapacityReport r = plan_capacity(in);
  EXPECT_FALSE(r.feasible);
  const ChannelCapacity* wa = nullptr;
  for (const auto& c : r.channels) if (c.channel == "whatsapp") wa = &c;
  ASSERT_NE(wa, nullptr);
  EXPECT_EQ(wa->deliveries, 18'000);
  EXPECT_EQ(wa->shortfall, 1'200);
  EXPECT_EQ(wa->add_senders, 1);
  EXPECT_EQ(wa->move_tiers, std::vector<std::string>{"standard"});
  EXPECT_EQ(wa->move_to, "email");
  EXPECT_EQ(wa->move_count, 4'800);
  EXPECT_NE(wa->recommendation.find("or move tier standard (4800 deliveries) to email"), std::string::npos) << wa->recommendation;
}

TEST(CapacityTest, DemandOnAChannelWithoutSendersIsAllShort) {
  CapacityInput in;
  in.demand = {{"email", "gold", 1, 10}};
  CapacityReport r = plan_capacity(in);
  EXPECT_FALSE(r.feasible);
  EXPECT_EQ(r.channels.at(0).shortfall, 10);
  EXPECT_EQ(r.channels.at(0).add_senders, 1);
}

TEST(CapacityTest, HypotheticalReportJson) {
  Config cfg;
  nlohmann::json j = build_capacity_hypothetical(1'000'000, 4, 80, "whatsapp", cfg, 1.0, 1000);
  EXPECT_EQ(j["feasible"], false);
  EXPECT_EQ(j["runs"][0]["channels"][0]["add_senders"], 5);
  EXPECT_DOUBLE_EQ(j["window_seconds"].get<double>(), 300);
  std::string text = format_capacity_text(j);
  EXPECT_NE(text.find("DOES NOT FIT"), std::string::npos) << text;
  EXPECT_NE(text.find("add 5 whatsapp senders of 1000 msg/s"), std::string::npos) << text;
  nlohmann::json ok = build_capacity_hypothetical(2000, 1, 80, "whatsapp", cfg, 1.0, 0);
  EXPECT_EQ(ok["feasible"], true);
  EXPECT_NEAR(ok["runs"][0]["channels"][0]["window_utilisation_pct"].get<double>(), 8.333, 0.001);
}


// send-now's capacity check, by hand: 500 urgent rows on two 80 msg/s senders (160 msg/s) take
// 3.125 s. The morning has 2,000 rows left, planned to go out by now + 20 s (at its 0.7 cap);
// at 160 msg/s they need 12.5 s, so after the urgent 3.125 s they end at now + 15.625 s: still
// inside the planned end, the delay is absorbed and the deadline (now + 60 s) holds.
TEST(UrgentCapacityTest, FiveHundredUrgentRowsBeforeAMorningWithRoomDelayRowsButNotItsEnd) {
  UrgentCapacityInput in;
  in.senders = {{"wa-1", "whatsapp", 80}, {"wa-2", "whatsapp", 80}, {"mail", "email", 10}};
  in.channel = "whatsapp";
  in.urgent = 500;
  in.morning_remaining = 2000;
  in.now = 1'000'000;
  in.morning_planned_end = in.now + 20'000;
  in.morning_deadline = in.now + 60'000;
  UrgentCapacity r = check_urgent_capacity(in);
  EXPECT_TRUE(r.feasible);
  EXPECT_DOUBLE_EQ(r.channel_mps, 160);
  EXPECT_DOUBLE_EQ(r.urgent_seconds, 3.125);
  EXPECT_DOUBLE_EQ(r.max_row_delay_seconds, 3.125);
  EXPECT_EQ(r.morning_finish_before, in.now + 20'000);
  EXPECT_EQ(r.morning_finish_after, in.now + 20'000);
  EXPECT_DOUBLE_EQ(r.morning_delay_seconds, 0);
  EXPECT_FALSE(r.morning_misses_deadline);
  EXPECT_NE(r.summary.find("500 urgent deliveries take 3.1 s at 160 msg/s"), std::string::npos) << r.summary;
}

// A morning already running at the full rate (its rows need 50 s, deadline in 52 s): 500 urgent
// rows at 80 msg/s (6.25 s) push its last send to 56.25 s, past the deadline: refuse without --yes.
TEST(UrgentCapacityTest, AnUrgentRunThatPushesAFullMorningPastItsDeadlineIsFlagged) {
  UrgentCapacityInput in;
  in.senders = {{"wa-1", "whatsapp", 80}};
  in.channel = "whatsapp";
  in.urgent = 500;
  in.morning_remaining = 4000;
  in.now = 0;
  in.morning_planned_end = 30'000;  // behind its plan: the backlog, not the plan, sets the end
  in.morning_deadline = 52'000;
  UrgentCapacity r = check_urgent_capacity(in);
  EXPECT_EQ(r.morning_finish_before, 50'000);
  EXPECT_EQ(r.morning_finish_after, 56'250);
  EXPECT_DOUBLE_EQ(r.morning_delay_seconds, 6.25);
  EXPECT_TRUE(r.morning_misses_deadline);
  EXPECT_NE(r.summary.find("4.2 s after its deadline"), std::string::npos) << r.summary;
}

TEST(UrgentCapacityTest, NoMorningRunningAndNoSenderForTheChannel) {
  UrgentCapacityInput in;
  in.senders = {{"wa-1", "whatsapp", 50}};
  in.channel = "whatsapp";
  in.urgent = 100;
  UrgentCapacity r = check_urgent_capacity(in);
  EXPECT_DOUBLE_EQ(r.urgent_seconds, 2);
  EXPECT_FALSE(r.morning_misses_deadline);
  EXPECT_DOUBLE_EQ(r.morning_delay_seconds, 0);
  in.channel = "email";
  r = check_urgent_capacity(in);
  EXPECT_FALSE(r.feasible);
}

}  // namespace
}  // namespace daybreak

// ---- WhatsApp messaging limits (unique recipients per moving 24 h, per business portfolio) ----

namespace daybreak {
namespace {

TEST(MessagingTier, NamesAndLimits) {
  EXPECT_EQ(messaging_tier_limit(*messaging_tier_from_string("250")), 250);
  EXPECT_EQ(messaging_tier_limit(*messaging_tier_from_string("2k")), 2'000);
  EXPECT_EQ(messaging_tier_limit(*messaging_tier_from_string("2000")), 2'000);
  EXPECT_EQ(messaging_tier_limit(*messaging_tier_from_string("10k")), 10'000);
  EXPECT_EQ(messaging_tier_limit(*messaging_tier_from_string("100K")), 100'000);
  EXPECT_FALSE(messaging_tier_limit(*messaging_tier_from_string("unlimited")));
  EXPECT_FALSE(messaging_tier_from_string("1k")) << "1,000 is no longer a tier";
  EXPECT_FALSE(messaging_tier_from_string(""));
  EXPECT_EQ(to_string(MessagingTier::t10k), "10k");
}

TEST(MessagingTier, APortfolioSharesTheHighestTierOfItsNumbers) {
  // Two numbers in one portfolio: 2K and 10K → the portfolio's limit is 10K, shared.
  std::vector<TierSender> s = {{"wa-1", "main", MessagingTier::t2k}, {"wa-2", "main", MessagingTier::t10k}};
  auto fits = check_messaging_tiers(s, {{"main", 10'000}});
  ASSERT_EQ(fits.size(), 1U);
  EXPECT_TRUE(fits[0].feasible);
  EXPECT_EQ(fits[0].limit, 10'000);
  EXPECT_EQ(fits[0].senders, (std::vector<std::string>{"wa-1", "wa-2"}));
  auto over = check_messaging_tiers(s, {{"main", 10'001}});
  EXPECT_FALSE(over[0].feasible);
  EXPECT_EQ(over[0].over, 1);
  EXPECT_NE(over[0].recommendation.find("over its 10k limit of 10000 by 1 advisors"), std::string::npos) << over[0].recommendation;
  EXPECT_NE(over[0].recommendation.find("wa-1, wa-2"), std::string::npos) << over[0].recommendation;
}

TEST(MessagingTier, PortfoliosAreCheckedApartAndUnlimitedNeverOverflows) {
  std::vector<TierSender> s = {{"wa-1", "retail", MessagingTier::t250},
                               {"wa-2", "private", MessagingTier::unlimited},
                               {"wa-3", "retail", std::nullopt}};
  auto r = check_messaging_tiers(s, {{"retail", 400}, {"private", 5'000'000}});
  ASSERT_EQ(r.size(), 2U);  // by name: private, retail
  EXPECT_EQ(r[0].portfolio, "private");
  EXPECT_TRUE(r[0].feasible);
  EXPECT_FALSE(r[0].limit);
  EXPECT_EQ(r[1].portfolio, "retail");
  EXPECT_FALSE(r[1].feasible);
  EXPECT_EQ(r[1].limit, 250);
  EXPECT_EQ(r[1].over, 150);
}

TEST(MessagingTier, NoTierConfiguredIsReportedUncheckedAndFits) {
  auto r = check_messaging_tiers({{"wa-1", "default", std::nullopt}}, {{"default", 1'000'000}});
  ASSERT_EQ(r.size(), 1U);
  EXPECT_FALSE(r[0].checked);
  EXPECT_TRUE(r[0].feasible);
  EXPECT_NE(r[0].recommendation.find("not checked"), std::string::npos);
}

TEST(MessagingTier, RecipientsOfAPortfolioWithoutASenderAreOver) {
  auto r = check_messaging_tiers({{"wa-1", "a", MessagingTier::t2k}}, {{"a", 10}, {"gone", 3}});
  ASSERT_EQ(r.size(), 2U);
  EXPECT_TRUE(r[0].feasible);
  EXPECT_FALSE(r[1].feasible);
  EXPECT_EQ(r[1].over, 3);
}

TEST(MessagingTier, SenderConfigReadsTierAndPortfolio) {
  auto cfg = parse_config(
      "[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmessaging_tier = \"10k\"\nportfolio = \"retail\"\n"
      "[[whatsapp.senders]]\nid = \"wa-2\"\nphone_number_id = \"2\"\ntoken = \"t\"\n",
      "t.toml");
  ASSERT_EQ(cfg.senders.size(), 2U);
  EXPECT_EQ(cfg.senders[0].messaging_tier, MessagingTier::t10k);
  EXPECT_EQ(cfg.senders[0].portfolio, "retail");
  EXPECT_FALSE(cfg.senders[1].messaging_tier);
  EXPECT_EQ(cfg.senders[1].portfolio, "default");
  EXPECT_THROW(parse_config("[[whatsapp.senders]]\nid = \"w\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmessaging_tier = \"1k\"\n", "t.toml"),
               ConfigError);
}

}  // namespace
}  // namespace daybreak

namespace daybreak {
namespace {

TEST(MessagingTier, HypotheticalCapacityChecksTheTier) {
  Config cfg;
  // 12,000 recipients on 2 numbers at 10k: the rate fits, the portfolio's limit does not.
  auto j = build_capacity_hypothetical(12'000, 2, 80, "whatsapp", cfg, 1.0, 0, "10k");
  EXPECT_EQ(j["runs"][0]["feasible"], true);
  EXPECT_EQ(j["feasible"], false);
  EXPECT_EQ(j["messaging_tiers"][0]["portfolios"][0]["over"], 2000);
  EXPECT_EQ(j["messaging_tiers"][0]["portfolios"][0]["limit"], 10'000);
  const std::string text = format_capacity_text(j);
  EXPECT_NE(text.find("by 2000 advisors"), std::string::npos) << text;
  // 100k fits; without a tier nothing is checked.
  EXPECT_EQ(build_capacity_hypothetical(12'000, 2, 80, "whatsapp", cfg, 1.0, 0, "100k")["feasible"], true);
  EXPECT_TRUE(build_capacity_hypothetical(12'000, 2, 80, "whatsapp", cfg, 1.0, 0)["messaging_tiers"].empty());
  // Growth counts: 9,000 x 1.2 = 10,800 over 10k by 800.
  EXPECT_EQ(build_capacity_hypothetical(9'000, 2, 80, "whatsapp", cfg, 1.2, 0, "10k")["messaging_tiers"][0]["portfolios"][0]["over"], 800);
}

}  // namespace
}  // namespace daybreak
