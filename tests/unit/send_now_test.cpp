// Tests for core/app/send_now.cpp (daybreak send-now): the segment, the list file, the selection
// of eligible advisors on a real SQLite file, the content rule, the capacity verdict (refusal and
// its printed numbers) and the write (urgent run, deliveries, audit row).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "app/errors.hpp"
#include "app/send_now.hpp"
#include "db_fixture.hpp"
#include "store/audit.hpp"
#include "store/content.hpp"
#include "store/runs.hpp"
#include "store/schedule.hpp"

namespace daybreak {
namespace {

constexpr Millis kNowSendNow = 1'795'838'400'000;  // 2026-11-28T04:00:00Z, 09:30 IST

TEST(SendNowSegment, ParsesAndMatches) {
  auto all = parse_send_now_segment("all");
  EXPECT_EQ(all.describe(), "all");
  EXPECT_TRUE(all.matches("A1", "gold", "en"));
  auto tier = parse_send_now_segment("tier:gold");
  EXPECT_TRUE(tier.matches("A1", "gold", "hi"));
  EXPECT_FALSE(tier.matches("A1", "silver", "hi"));
  auto lang = parse_send_now_segment("language:hi");
  EXPECT_TRUE(lang.matches("A1", "gold", "hi"));
  EXPECT_FALSE(lang.matches("A1", "gold", "en"));
  auto list = parse_send_now_segment("list:ids.txt", {"A1", "A3"});
  EXPECT_EQ(list.describe(), "list:ids.txt");
  EXPECT_TRUE(list.matches("A3", "x", "y"));
  EXPECT_FALSE(list.matches("A2", "gold", "en"));
  EXPECT_THROW(parse_send_now_segment("tier:"), UsageError);
  EXPECT_THROW(parse_send_now_segment("region:south"), UsageError);
  EXPECT_THROW(parse_send_now_segment("gold"), UsageError);
  EXPECT_THROW(parse_send_now_segment("list:empty.txt", {}), UsageError);
}

TEST(SendNowSegment, ListFileSkipsHeaderCommentsAndBlankLines) {
  EXPECT_EQ(parse_advisor_list("advisor_id,name\r\nA1,Asha\r\n\n# a comment\n  A2 \nA3"),
            (std::vector<std::string>{"A1", "A2", "A3"}));
  EXPECT_EQ(parse_advisor_list("A9\n"), (std::vector<std::string>{"A9"}));
  EXPECT_TRUE(parse_advisor_list("").empty());
}

TEST(SendNowVerdict, MorningDelayIsPrintedWithItsNumbers) {
  UrgentCapacityInput in;
  in.senders = {{"wa-1", "whatsapp", 80}, {"wa-2", "whatsapp", 20}};
  in.channel = "whatsapp";
  in.urgent = 500;  // 5 s at 100 msg/s
  in.morning_remaining = 1000;
  in.now = kNowSendNow;
  in.morning_planned_end = kNowSendNow + 8'000;
  in.morning_deadline = kNowSendNow + 60'000;
  auto v = judge_send_now({in}, kNowSendNow, kNowSendNow + 15 * 60'000);
  EXPECT_FALSE(v.refused);
  EXPECT_TRUE(v.urgent_on_time);
  EXPECT_EQ(v.urgent_finish, kNowSendNow + 5'000);
  EXPECT_TRUE(v.morning_disturbed);
  // Before: max(+8 s, +10 s drain) = +10 s; after: +5 s + 10 s = +15 s.
  EXPECT_DOUBLE_EQ(v.morning_delay_seconds, 5.0);
  EXPECT_FALSE(v.morning_misses_deadline);
  const auto text = format_send_now_verdict(v, "UTC");
  EXPECT_NE(text.find("urgent run: 500 deliveries"), std::string::npos) << text;
  EXPECT_NE(text.find("(+5.0 s)"), std::string::npos) << text;
  EXPECT_NE(text.find("morning on whatsapp: 1000 unsent"), std::string::npos) << text;
  EXPECT_NE(text.find("(+5.0 s)"), std::string::npos) << text;
  EXPECT_EQ(text.find("REFUSED"), std::string::npos) << text;
  EXPECT_EQ(send_now_verdict_json(v)["channels"][0]["morning_delay_seconds"], 5.0);
}

TEST(SendNowVerdict, RefusedWhenTheUrgentRunCannotMeetItsDeadline) {
  UrgentCapacityInput in;
  in.senders = {{"wa-1", "whatsapp", 10}};
  in.channel = "whatsapp";
  in.urgent = 1200;  // 120 s at 10 msg/s against a 1-minute deadline
  in.now = kNowSendNow;
  auto v = judge_send_now({in}, kNowSendNow, kNowSendNow + 60'000);
  EXPECT_TRUE(v.refused);
  EXPECT_FALSE(v.urgent_on_time);
  EXPECT_FALSE(v.morning_disturbed);
  EXPECT_NE(v.refusal.find("60.0 s after its deadline"), std::string::npos) << v.refusal;
  EXPECT_NE(v.refusal.find("--deadline-minutes to at least 2"), std::string::npos) << v.refusal;
  EXPECT_NE(format_send_now_verdict(v, "UTC").find("REFUSED: "), std::string::npos);
  // A channel with no sender is refused too.
  in.channel = "email";
  in.urgent = 1;
  auto none = judge_send_now({in}, kNowSendNow, kNowSendNow + 60'000);
  EXPECT_TRUE(none.refused);
  EXPECT_NE(none.refusal.find("no sender"), std::string::npos) << none.refusal;
}

class SendNowTest : public test_support::DbTest {
 protected:
  SendNowTest() : DbTest("send-now") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    SenderConfig s;
    s.id = "wa-1";
    s.channel = Channel::whatsapp;
    s.mps = 80;
    cfg_.senders = {s};
    add_content("U1", "", "");
    add_advisor("A1", "gold", "en");
    add_advisor("A2", "gold", "hi");
    add_advisor("A3", "silver", "hi");
    add_advisor("A4", "gold", "en", /*opted_in=*/false);
    add_advisor("A5", "gold", "en", true, /*paused=*/true);
    add_advisor("A6", "gold", "en", true, false, /*email_only=*/true);  // no email sender configured
  }
  void add_advisor(const std::string& id, const std::string& tier, const std::string& lang, bool opted_in = true,
                   bool paused = false, bool email_only = false) {
    Advisor a;
    a.advisor_id = id;
    a.name = id;
    a.tier = tier;
    a.phone = email_only ? "" : "+919810012345";
    a.email = email_only ? id + "@example.com" : "";
    a.timezone = "Asia/Kolkata";
    a.slot = "06:00";
    a.channels = {email_only ? Channel::email : Channel::whatsapp};
    a.opted_in = opted_in;
    a.language = lang;
    store::AdvisorUpsert(*db_, {a, kNowSendNow});
    if (paused) db_->exec("UPDATE advisors SET paused_from='2026-11-27', paused_until='2026-11-30' WHERE advisor_id='" + id + "'");
  }
  void add_content(const std::string& id, const std::string& from, const std::string& until) {
    Content c;
    c.content_id = id;
    c.title = "Urgent " + id;
    c.body = "Body";
    c.language = "en";
    c.valid_from = from;
    c.valid_until = until;
    store::ContentUpsert(*db_, {c, kNowSendNow});
  }
  SendNowRequest request(const std::string& segment, const std::vector<std::string>& ids = {}) {
    SendNowRequest r;
    r.content_id = "U1";
    r.segment = parse_send_now_segment(segment, ids);
    r.reason = "market halt";
    r.actor = "asha";
    r.command = "daybreak send-now";
    return r;
  }
  static std::set<std::string> advisors(const SendNowPlan& p) {
    std::set<std::string> out;
    for (const auto& r : p.rows) out.insert(r.advisor_id);
    return out;
  }
  Config cfg_;
};

TEST_F(SendNowTest, SelectsTheEligibleReachableAdvisorsOfTheSegment) {
  auto all = prepare_send_now(*db_, cfg_, request("all"), kNowSendNow);
  EXPECT_EQ(all.date, "2026-11-28");
  // A4 opted out, A5 paused: not eligible; A6 eligible but no email sender: unreachable.
  EXPECT_EQ(advisors(all), (std::set<std::string>{"A1", "A2", "A3"}));
  EXPECT_EQ(all.eligible, 4U);
  EXPECT_EQ(all.unreachable, 1U);
  for (const auto& r : all.rows) {
    EXPECT_EQ(r.channel, "whatsapp");
    EXPECT_EQ(r.sender, "wa-1");
    EXPECT_GE(r.planned_at, kNowSendNow);
    EXPECT_LE(r.planned_at, all.window.deadline);
  }
  EXPECT_EQ(all.window.deadline, kNowSendNow + 15 * 60'000);
  EXPECT_EQ(advisors(prepare_send_now(*db_, cfg_, request("tier:gold"), kNowSendNow)), (std::set<std::string>{"A1", "A2"}));
  EXPECT_EQ(advisors(prepare_send_now(*db_, cfg_, request("language:hi"), kNowSendNow)), (std::set<std::string>{"A2", "A3"}));
  auto list = prepare_send_now(*db_, cfg_, request("list:f", {"A3", "A4", "ZZ"}), kNowSendNow);
  EXPECT_EQ(advisors(list), (std::set<std::string>{"A3"}));
  EXPECT_EQ(list.list_unknown, (std::vector<std::string>{"A4", "ZZ"}));
  EXPECT_FALSE(list.verdict.morning_disturbed);  // no morning run is sending
  EXPECT_THROW(prepare_send_now(*db_, cfg_, request("tier:platinum"), kNowSendNow), CheckFailed);
}

TEST_F(SendNowTest, TheItemMustBeUsableToday) {
  auto req = request("all");
  req.content_id = "NOPE";
  EXPECT_THROW(prepare_send_now(*db_, cfg_, req, kNowSendNow), CheckFailed);
  add_content("OLD", "2026-01-01", "2026-11-27");
  req.content_id = "OLD";
  try {
    prepare_send_now(*db_, cfg_, req, kNowSendNow);
    FAIL() << "expired content accepted";
  } catch (const CheckFailed& e) {
    EXPECT_NE(std::string(e.what()).find("expired"), std::string::npos) << e.what();
  }
  db_->exec("UPDATE content SET withdrawn_at = 1, withdrawn_by = 'x' WHERE content_id = 'U1'");
  EXPECT_THROW(prepare_send_now(*db_, cfg_, request("all"), kNowSendNow), CheckFailed);
}

TEST_F(SendNowTest, CommitWritesAnUrgentRunItsDeliveriesAndTheAuditRow) {
  auto req = request("tier:gold");
  auto plan = prepare_send_now(*db_, cfg_, req, kNowSendNow);
  auto res = commit_send_now(*db_, cfg_, plan, req, kNowSendNow);
  const auto run_id = res["run_id"].get<std::int64_t>();
  EXPECT_EQ(res["deliveries"], 2);
  EXPECT_EQ(store::RunKindGet(*db_, run_id), "urgent");
  auto run = store::RunGet(*db_, run_id);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->slot_at, kNowSendNow);
  EXPECT_EQ(run->deadline_at, kNowSendNow + 15 * 60'000);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE run_id = " + std::to_string(run_id) +
                   " AND content_id = 'U1' AND source = 'urgent' AND state = 'planned'"),
            2);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'asha' AND reason = 'market halt' AND target = 'run:" +
                   std::to_string(run_id) + "'"),
            1);
  // A second send-now at the same instant gets the next free slot instant, not a clash.
  auto again = prepare_send_now(*db_, cfg_, req, kNowSendNow);
  auto res2 = commit_send_now(*db_, cfg_, again, req, kNowSendNow);
  EXPECT_NE(res2["run_id"], res["run_id"]);
  EXPECT_EQ(store::RunGet(*db_, res2["run_id"].get<std::int64_t>())->slot_at, kNowSendNow + 1);
  // A refused verdict is never written.
  auto refused = prepare_send_now(*db_, cfg_, req, kNowSendNow);
  refused.verdict.refused = true;
  refused.verdict.refusal = "test";
  EXPECT_THROW(commit_send_now(*db_, cfg_, refused, req, kNowSendNow), CheckFailed);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM runs WHERE kind = 'urgent'"), 2);
  // Urgent runs are not the day's plan: the dead-man's switch and plan_missing still see none.
  EXPECT_EQ(store::DeliveryCountForDate(*db_, "2026-11-28"), 0);
  EXPECT_FALSE(store::DayHasRuns(*db_, "2026-11-28"));
}

TEST_F(SendNowTest, TheVerdictCountsTheMorningRunSendingOnTheSameChannel) {
  // A morning run whose window is open now, with two rows still planned on WhatsApp.
  store::RunUpsertParams rp;
  rp.date = "2026-11-28";
  rp.window = window_for(kNowSendNow - 10'000, WindowPolicy{});
  const auto morning = store::RunUpsert(*db_, rp);
  add_content("C1", "", "");
  for (const char* id : {"A1", "A2"}) {
    store::DeliveryInsert(*db_, test_support::planned_delivery(morning, id, "2026-11-28", rp.window.slot_at,
                                                               kNowSendNow + 2'000, kNowSendNow));
  }
  auto plan = prepare_send_now(*db_, cfg_, request("all"), kNowSendNow);
  ASSERT_EQ(plan.verdict.channels.size(), 1U);
  EXPECT_EQ(plan.verdict.channels[0].morning_remaining, 2);
  EXPECT_EQ(plan.verdict.channels[0].morning_deadline, rp.window.deadline);
  EXPECT_EQ(plan.verdict.channels[0].urgent, 3);
}

}  // namespace
}  // namespace daybreak
