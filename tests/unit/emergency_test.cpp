// Pulled or expired content is never sent (domain/emergency.hpp): the substitution rule
// (advisor's language → delivery.emergency_language → held), the pull-time half
// (store::DeliveryResolvePulled through withdraw_content), the content_held alert, a resend of a
// held delivery, and the dispatcher's send-time guard against a fake transport that records
// every request.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "app/plan.hpp"
#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/clock.hpp"
#include "domain/emergency.hpp"
#include "engine/alerts.hpp"
#include "engine/dispatcher.hpp"
#include "store/assignments.hpp"
#include "store/overrides.hpp"
#include "store/withdrawal.hpp"

namespace daybreak {
namespace {

// ---- the rule, pure -------------------------------------------------------------------------

TEST(EmergencyRule, AdvisorLanguageFirstThenTheDefaultLanguageThenNone) {
  std::vector<EmergencyCandidate> c = {{"en", true}, {"hi", false}, {"hi", true}, {"ta", true}};
  auto hi = pick_emergency(c, "hi", "en", 7);
  ASSERT_TRUE(hi);
  EXPECT_EQ(hi->index, 2U);  // the usable hi item, not the unusable one, not en
  EXPECT_EQ(hi->language, "hi");

  c[2].usable = false;  // no usable hi item: the default language's
  auto fallback = pick_emergency(c, "hi", "en", 7);
  ASSERT_TRUE(fallback);
  EXPECT_EQ(fallback->index, 0U);
  EXPECT_EQ(fallback->language, "en");

  c[0].usable = false;  // neither: hold
  EXPECT_FALSE(pick_emergency(c, "hi", "en", 7));
  // A default language nobody has an item in does not borrow a third language.
  EXPECT_FALSE(pick_emergency(c, "hi", "mr", 7));
  // The advisor's language is the default: one lookup, no second chance.
  EXPECT_FALSE(pick_emergency({{"en", false}, {"hi", true}}, "en", "en", 1));
}

TEST(EmergencyRule, PickIsStablePerSeedAndSpreadOverThePool) {
  std::vector<EmergencyCandidate> c = {{"en", true}, {"en", true}, {"en", true}};
  std::set<std::size_t> seen;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    auto a = pick_emergency(c, "hi", "en", seed);
    auto b = pick_emergency(c, "hi", "en", seed);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->index, b->index);
    seen.insert(a->index);
  }
  EXPECT_EQ(seen.size(), 3U);
}

TEST(EmergencyRule, PullProblemsAndHeldReason) {
  EXPECT_FALSE(content_pull_problem("C", false, "", "", "2026-12-08"));
  EXPECT_FALSE(content_pull_problem("C", false, "2026-12-08", "2026-12-08", "2026-12-08"));  // bounds inclusive
  EXPECT_EQ(content_pull_problem("C", true, "", "", "2026-12-08").value_or(""), "content C withdrawn");
  EXPECT_EQ(content_pull_problem("C", false, "", "2026-12-07", "2026-12-08").value_or(""), "content C expired on 2026-12-07");
  EXPECT_EQ(content_pull_problem("C", false, "2026-12-09", "", "2026-12-08").value_or(""), "content C not valid until 2026-12-09");
  EXPECT_EQ(content_pull_problem("", false, "", "", "2026-12-08").value_or(""), "content missing");
  auto r = held_reason("content C withdrawn", "hi", "en");
  EXPECT_EQ(r, "held: content C withdrawn; no emergency item in hi or en");
  EXPECT_TRUE(is_held_error(r));
  EXPECT_EQ(held_reason("content C withdrawn", "en", "en"), "held: content C withdrawn; no emergency item in en");
  EXPECT_FALSE(is_held_error("131026 undeliverable"));
}

TEST(EmergencyRule, ConfigKeyDefaultsToEnglishAndIsValidated) {
  EXPECT_EQ(parse_config("", "").emergency_language, "en");
  EXPECT_EQ(parse_config("[delivery]\nemergency_language = \"hi\"\n", "t.toml").emergency_language, "hi");
  EXPECT_THROW(parse_config("[delivery]\nemergency_language = \"\"\n", "t.toml"), ConfigError);
  EXPECT_THROW(parse_config("[delivery]\nemergency_language = \"not a tag\"\n", "t.toml"), ConfigError);
}

// ---- the ledger: pull time, alert, resend ---------------------------------------------------

constexpr Millis kT0 = 1'764'300'000'000;  // 2025-11-28 08:50 IST
const std::string kDay = "2025-11-29";

class PullTest : public test_support::DbTest {
 protected:
  PullTest() : DbTest("pull") {}
  void add_advisor(const std::string& id, const std::string& lang) {
    Advisor a;
    a.advisor_id = id;
    a.name = "Advisor " + id;
    a.tier = "gold";
    a.phone = "+919810012345";
    a.timezone = "Asia/Kolkata";
    a.slot = "06:00";
    a.channels = {Channel::whatsapp};
    a.language = lang;
    a.topics = {"tax"};
    store::AdvisorUpsert(*db_, {a, kT0});
  }
  void add_content(const std::string& id, const std::string& lang, bool emergency, const std::string& until = "") {
    Content c;
    c.content_id = id;
    c.title = "Title " + id;
    c.body = "Body of " + id;
    c.language = lang;
    c.topics = {"tax"};
    c.valid_from = "2025-01-01";
    c.valid_until = until;
    c.emergency = emergency;
    store::ContentUpsert(*db_, {c, kT0});
  }
  /// `n` advisors of `lang` assigned `content` on kDay with a planned delivery each (run 1).
  void seed(int n, const std::string& lang, const std::string& content, int first = 0) {
    db_->write_tx([&] {
      db_->exec("INSERT OR IGNORE INTO runs (run_id, date, slot_at, window_start, window_end, deadline_at) VALUES (1, '" + kDay +
                "', 0, 0, 0, 0)");
      for (int i = first; i < first + n; ++i) {
        std::string id = "adv-" + lang + "-" + std::to_string(i);
        add_advisor(id, lang);
        store::AssignmentUpsertParams p;
        p.assignment = {id, kDay, content, Source::editorial, 0, "{}", "editorial import"};
        p.created_at = kT0;
        store::AssignmentUpsert(*db_, p);
        auto d = test_support::planned_delivery(1, id, kDay, 0, 0, kT0);
        d.content_id = content;
        ASSERT_TRUE(store::DeliveryInsert(*db_, d));
      }
    });
  }
  Config cfg_;
};

TEST_F(PullTest, NoReplacementInTheAdvisorsLanguageGetsTheDefaultLanguagesEmergencyItem) {
  add_content("pulled-hi", "hi", false);
  add_content("em-en", "en", true);
  add_content("em-hi-expired", "hi", true, "2025-11-28");  // an emergency item, but not valid on the day
  seed(20, "hi", "pulled-hi");
  auto rep = withdraw_content(*db_, cfg_, "pulled-hi", "regulator", "asha", "", kT0 + 10);
  EXPECT_EQ(rep["deliveries_emergency"], 20);
  EXPECT_EQ(rep["deliveries_held"], 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE content_id = 'pulled-hi'"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE content_id = 'em-en' AND source = 'emergency' AND state = 'planned'"), 20);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM assignments WHERE content_id = 'em-en' AND source = 'emergency'"), 20);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM delivery_changes WHERE kind = 'withdraw'"), 20);  // a running dispatch reloads them
}

TEST_F(PullTest, AnEmergencyItemInTheAdvisorsLanguageComesFirst) {
  add_content("pulled-hi", "hi", false);
  add_content("em-en", "en", true);
  add_content("em-hi", "hi", true);
  seed(5, "hi", "pulled-hi");
  withdraw_content(*db_, cfg_, "pulled-hi", "regulator", "asha", "", kT0 + 10);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE content_id = 'em-hi' AND source = 'emergency'"), 5);
}

TEST_F(PullTest, NoEmergencyItemAtAllHoldsThePendingDeliveriesAndTheAlertNamesThem) {
  add_content("pulled-hi", "hi", false);
  add_content("em-en-withdrawn", "en", true);
  db_->exec("UPDATE content SET withdrawn_at = 1 WHERE content_id = 'em-en-withdrawn'");
  seed(12, "hi", "pulled-hi");
  db_->exec("UPDATE deliveries SET state = 'accepted' WHERE advisor_id = 'adv-hi-0'");  // already at the provider: left alone
  auto rep = withdraw_content(*db_, cfg_, "pulled-hi", "regulator", "asha", "", kT0 + 10);
  EXPECT_EQ(rep["deliveries_held"], 11);
  EXPECT_EQ(rep["held_languages"], nlohmann::json::array({"hi"}));
  // No pending delivery points at the pulled item any more.
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE content_id = 'pulled-hi' AND state IN ('planned', 'retry_wait')"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND last_error = "
                   "'held: content pulled-hi withdrawn; no emergency item in hi or en'"),
            11);
  auto groups = store::HeldDeliveryGroups(*db_, "2025-11-28");
  ASSERT_EQ(groups.size(), 1U);
  EXPECT_EQ(groups[0].content_id, "pulled-hi");
  EXPECT_EQ(groups[0].language, "hi");
  EXPECT_EQ(groups[0].count, 11);

  engine::AlertEngine eng(cfg_.alerts);
  auto changes = eng.evaluate_held(*db_, "2025-11-28", kT0 + 20);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].kind, engine::AlertChange::Kind::fired);
  EXPECT_EQ(changes[0].rule, "content_held");
  EXPECT_EQ(changes[0].subject, "content:pulled-hi");
  EXPECT_NE(changes[0].message.find("11 delivery(ies) held"), std::string::npos) << changes[0].message;
  EXPECT_NE(changes[0].message.find("hi: 11 on " + kDay), std::string::npos) << changes[0].message;
  EXPECT_TRUE(eng.evaluate_held(*db_, "2025-11-28", kT0 + 30).empty());  // fires once

  // The content is fixed (another item takes its place in the assignments); a replay of the held
  // deliveries carries it, and the alert resolves.
  add_content("fixed-hi", "hi", false);
  db_->exec("UPDATE assignments SET content_id = 'fixed-hi', source = 'override' WHERE content_id = 'pulled-hi'");
  store::DeadFilter f;
  f.error_code = "held";
  std::vector<std::int64_t> held;
  store::DeadList(*db_, f, [&](const store::DeliveryInfo& d) { held.push_back(d.delivery_id); });
  ASSERT_EQ(held.size(), 11U);
  db_->write_tx([&] {
    for (auto id : held) ASSERT_TRUE(store::DeliveryRequeue(*db_, id, {"dead"}, "replay", kT0 + 40));
  });
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'planned' AND content_id = 'fixed-hi' AND source = 'override'"), 11);
  auto resolved = eng.evaluate_held(*db_, "2025-11-28", kT0 + 50);
  ASSERT_EQ(resolved.size(), 1U);
  EXPECT_EQ(resolved[0].kind, engine::AlertChange::Kind::resolved);
}

TEST_F(PullTest, PlanReportAndCoverageNameLanguagesWithoutAnEmergencyItem) {
  add_content("c-hi", "hi", false);
  add_content("c-en", "en", false);
  add_content("em-en", "en", true);
  seed(3, "hi", "c-hi");
  seed(2, "en", "c-en", 100);
  auto missing = languages_without_emergency(*db_, cfg_, kDay);
  ASSERT_EQ(missing.size(), 1U) << missing.dump();
  EXPECT_EQ(missing[0]["language"], "hi");
  EXPECT_EQ(missing[0]["advisors"], 3);
  EXPECT_EQ(missing[0]["covered_by"], "en");
  db_->exec("UPDATE content SET valid_until = '2025-11-28' WHERE content_id = 'em-en'");  // expired by the day
  missing = languages_without_emergency(*db_, cfg_, kDay);
  ASSERT_EQ(missing.size(), 2U) << missing.dump();
  for (const auto& l : missing) EXPECT_TRUE(l["covered_by"].is_null()) << l.dump();
}

// plan-deliveries counts the advisors per language in its own pass (the SQL rule: opted in, an
// opted-in channel row, not paused, whether or not the channel is in the advisor's list); its
// report must say what the standalone check (daybreak doctor's) says.
TEST_F(PullTest, PlanReportsTheSameLanguagesAsTheStandaloneCheck) {
  add_content("c-hi", "hi", false);
  add_content("c-ta", "ta", false);
  add_content("c-en", "en", false);
  add_content("em-en", "en", true);
  seed(3, "hi", "c-hi");
  seed(2, "en", "c-en", 100);
  seed(2, "ta", "c-ta", 200);
  // adv-ta-200: its only opted-in channel is outside its list (counted, not planned); adv-ta-201
  // opted out and adv-hi-0 paused on the day (neither counted).
  db_->exec("UPDATE advisors SET channels = 'email' WHERE advisor_id = 'adv-ta-200'");
  db_->exec("UPDATE advisors SET opted_in = 0 WHERE advisor_id = 'adv-ta-201'");
  db_->exec("UPDATE advisors SET paused_from = '" + kDay + "', paused_until = '" + kDay + "' WHERE advisor_id = 'adv-hi-0'");
  cfg_.senders.push_back({});
  cfg_.senders.back().id = "wa-1";
  cfg_.senders.back().channel = Channel::whatsapp;
  cfg_.senders.back().mps = 80;
  const auto standalone = languages_without_emergency(*db_, cfg_, kDay);
  ASSERT_EQ(standalone.size(), 2U) << standalone.dump();
  EXPECT_EQ(standalone[0]["language"], "hi");
  EXPECT_EQ(standalone[0]["advisors"], 2);
  EXPECT_EQ(standalone[1]["language"], "ta");
  EXPECT_EQ(standalone[1]["advisors"], 1);
  auto dry = plan_deliveries(*db_, cfg_, kDay, kT0 + 5, true);
  EXPECT_EQ(dry.report["languages_without_emergency"], standalone);
  auto wet = plan_deliveries(*db_, cfg_, kDay, kT0 + 5, false);
  EXPECT_EQ(wet.report["languages_without_emergency"], standalone);
}

// ---- the dispatcher's send-time guard -------------------------------------------------------

/// Answers every request at once with a WhatsApp acceptance and keeps its body.
class RecordingTransport final : public channels::Transport {
 public:
  void submit(channels::Request req, Done done) override {
    {
      std::lock_guard lk(mu_);
      bodies_.push_back(req.body);
    }
    done(test_support::whatsapp_accepted(++n_));
  }
  void shutdown() override {}
  std::vector<std::string> bodies() {
    std::lock_guard lk(mu_);
    return bodies_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> bodies_;
  int n_ = 0;
};

class GuardTest : public PullTest {
 protected:
  /// Dispatches run 1 (slot and deadline around kT0, every delivery due now) to the end.
  engine::DispatchSummary dispatch(RecordingTransport& t) {
    test_support::set_run_window(*db_, 1, kT0);
    db_->exec("UPDATE deliveries SET slot_at = " + std::to_string(kT0) + ", planned_at = " + std::to_string(kT0) +
              ", deadline_at = " + std::to_string(kT0 + 300'000));
    Config cfg = parse_config("[database]\npath = \"" + db_path() +
                                  "\"\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 50\n",
                              "");
    const std::string owner = "guard-test";
    EXPECT_TRUE(store::RunAcquireLease(*db_, 1, owner, kT0, cfg.dispatch.lease_ms).acquired);
    // GUARD_TEST_LOG=1 shows dispatch's log on stderr.
    ManualClock clock(kT0);
    return test_support::run_dispatch_ticking(cfg, clock, t, owner, {1}, "GUARD_TEST_LOG");
  }
};

TEST_F(GuardTest, ExpiredContentIsNeverSentTheDefaultLanguagesEmergencyItemIs) {
  add_content("expired-hi", "hi", false, "2025-11-28");  // expired the day before the delivery day
  add_content("em-en", "en", true);
  seed(6, "hi", "expired-hi");
  RecordingTransport t;
  auto s = dispatch(t);
  auto bodies = t.bodies();
  ASSERT_EQ(bodies.size(), 6U);
  for (const auto& b : bodies) {
    EXPECT_EQ(b.find("Title expired-hi"), std::string::npos) << b;
    EXPECT_NE(b.find("Title em-en"), std::string::npos) << b;
  }
  EXPECT_EQ(s.emergency_substitutions, 6);
  EXPECT_EQ(s.held, 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'accepted' AND content_id = 'em-en' AND source = 'emergency'"), 6);
}

TEST_F(GuardTest, WithdrawnContentWithoutAnyEmergencyItemIsHeldAndTheRunCloses) {
  add_content("pulled-hi", "hi", false);
  add_content("ok-hi", "hi", false);
  seed(4, "hi", "pulled-hi");
  seed(3, "hi", "ok-hi", 100);
  // Withdrawn behind the pull path's back (as a pull while dispatch runs looks to its loaded
  // rows): only the guard stands between these rows and the provider.
  db_->exec("UPDATE content SET withdrawn_at = 1 WHERE content_id = 'pulled-hi'");
  RecordingTransport t;
  auto s = dispatch(t);
  auto bodies = t.bodies();
  EXPECT_EQ(bodies.size(), 3U);
  for (const auto& b : bodies) EXPECT_EQ(b.find("pulled-hi"), std::string::npos) << b;
  EXPECT_EQ(s.held, 4);
  ASSERT_EQ(s.runs_closed.size(), 1U);  // every row final
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND content_id = 'pulled-hi' AND attempts = 0 AND "
                   "last_error = 'held: content pulled-hi withdrawn; no emergency item in hi or en'"),
            4);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d USING (delivery_id) WHERE d.content_id = 'pulled-hi'"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM alerts WHERE rule = 'content_held' AND subject = 'content:pulled-hi'"), 1);
}

}  // namespace
}  // namespace daybreak
