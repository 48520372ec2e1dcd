// Alert rules, escalation and sinks (core/engine/alerts.cpp, core/store/alerts.cpp) over a real
// SQLite ledger, on a ManualClock: a failure storm in the middle of a run drops live success
// below 97%, the alert fires within a minute of scenario time, escalates when nobody
// acknowledges it, stops escalating once acknowledged, and resolves when success recovers. The
// Slack-compatible webhook bodies are captured by a cpp-httplib server on 127.0.0.1.
#include "engine/alerts.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "db_fixture.hpp"
#include "config/config.hpp"
#include "domain/clock.hpp"
#include "engine/live.hpp"
#include "store/alerts.hpp"
#include "store/runs.hpp"

namespace daybreak::engine {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr Millis kSlot = 1795825800000;  // 2026-11-28T00:30:00Z = 06:00 IST
const std::string kDate = "2026-11-28";

// A local Slack-compatible webhook: records (path, body) of every POST.
class WebhookSink {
 public:
  WebhookSink() {
    server_.Post(R"(/hook/(\w+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard g(mu_);
      posts_.emplace_back(req.path, req.body);
      res.set_content("ok", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~WebhookSink() {
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& level) const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook/" + level; }
  std::vector<std::pair<std::string, std::string>> take() {
    std::lock_guard g(mu_);
    auto out = std::move(posts_);
    posts_.clear();
    return out;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> posts_;
};

class AlertsTest : public test_support::DbTest {
 protected:
  AlertsTest() : DbTest("alerts", "ledger.db") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    db_path_ = db_path();
    db_->exec("INSERT INTO content(content_id, title, body, language, updated_at) VALUES ('c1','t','b','en',0)");

    SenderConfig s;
    s.id = "wa-1";
    s.phone_number_id = "1";
    s.mps = 80;
    cfg_.senders.push_back(s);
    cfg_.alerts.escalate_after_ms = 60'000;           // 1 minute, so the scenario stays short
    cfg_.alerts.disabled_rules = {"dead_letter_growth"};  // the storm is about live success here
    for (const char* level : {"oncall", "backup", "manager"}) {
      AlertLevel l;
      l.name = level;
      l.webhooks = {sink_.url(level)};
      cfg_.alerts.chain.push_back(l);
    }
  }
  // One run of `n` deliveries planned every `step_ms` from the start of the window.
  std::int64_t make_run(int n, Millis step_ms) {
    store::RunUpsertParams p;
    p.date = kDate;
    p.window = window_for(kSlot, WindowPolicy{});
    p.planned_count = n;
    std::int64_t run = store::RunUpsert(*db_, p);
    db_->exec("UPDATE runs SET state = 'running' WHERE run_id = " + std::to_string(run));
    db_->write_tx([&] {
      for (int i = 0; i < n; ++i) {
        std::string a = "A" + std::to_string(i);
        db_->exec("INSERT INTO advisors(advisor_id, name, tier, timezone, slot, channels, opted_in, language, updated_at) "
                  "VALUES ('" + a + "', 'n', 'gold', 'Asia/Kolkata', '06:00', 'whatsapp', 1, 'en', 0)");
        Millis planned = p.window.start + i * step_ms;
        db_->exec("INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, channel, "
                  "sender, planned_at, deadline_at, updated_at, order_key) VALUES (" + std::to_string(run) + ", '" + a + "', '" + kDate +
                  "', " + std::to_string(kSlot) + ", 'c1', 'editorial', 'gold', 1, 'whatsapp', 'wa-1', " +
                  std::to_string(planned) + ", " + std::to_string(p.window.deadline) + ", 0, daybreak_order_key('" + a + "', '" + kDate + "'))");
      }
    });
    return run;
  }

  // What "dispatch" did by `now`: every delivery planned at least a second ago is final:
  // dead when planned inside the storm, else accepted on time 300 ms after its planned time.
  void settle(Millis now, Millis storm_from, Millis storm_to) {
    const std::string n = std::to_string(now), f = std::to_string(storm_from), t = std::to_string(storm_to);
    db_->exec("UPDATE deliveries SET state = 'dead', first_sent_at = planned_at + 5, updated_at = " + n +
              ", last_error = '131000' WHERE state = 'planned' AND planned_at <= " + n + " - 1000 AND planned_at >= " + f +
              " AND planned_at < " + t);
    db_->exec("UPDATE deliveries SET state = 'accepted', first_sent_at = planned_at + 5, accepted_at = planned_at + 300, "
              "updated_at = " + n + " WHERE state = 'planned' AND planned_at <= " + n + " - 1000");
  }

  // One second of dispatch's monitoring: snapshot, evaluate, send.
  std::vector<AlertChange> tick(AlertEngine& eng, std::int64_t run, Millis now) {
    LiveSnapshot snap = snapshot_from_ledger(*db_, {run}, cfg_, now);
    auto changes = eng.evaluate(*db_, snap, now);
    auto http = make_curl_alert_sink(cfg_.alerts);
    deliver_notifications(*db_, cfg_.alerts, *http, now);
    return changes;
  }

  static bool has(const std::vector<AlertChange>& c, AlertChange::Kind k, const std::string& rule) {
    return std::any_of(c.begin(), c.end(), [&](const AlertChange& x) { return x.kind == k && x.rule == rule; });
  }

  std::string db_path_;
  WebhookSink sink_;
  Config cfg_;
};

TEST_F(AlertsTest, FailureStormFiresEscalatesStopsOnAckAndResolves) {
  const Window w = window_for(kSlot, WindowPolicy{});
  const std::int64_t run = make_run(1200, 250);  // 4 a second over the whole 300 s window
  const Millis storm_from = w.start + 60'000, storm_to = storm_from + 8'000;  // 32 deliveries fail
  ManualClock clock(w.start);
  AlertEngine eng(cfg_.alerts);

  std::optional<Millis> fired_at, escalated_at, resolved_at;
  std::int64_t alert_id = 0;
  bool acked = false;
  std::vector<std::pair<std::string, std::string>> posts;
  for (int s = 0; s < 400 && !resolved_at; ++s) {
    clock.advance(1000);
    const Millis now = clock.now();
    settle(now, storm_from, storm_to);
    auto changes = tick(eng, run, now);
    for (const auto& c : changes) {
      ASSERT_EQ(c.rule, "live_success_low") << "unexpected alert: " << c.message;
      if (c.kind == AlertChange::Kind::fired) {
        fired_at = now;
        alert_id = c.alert_id;
      }
      if (c.kind == AlertChange::Kind::escalated) {
        EXPECT_FALSE(acked) << "escalated after the acknowledgement";
        if (!escalated_at) escalated_at = now;
      }
      if (c.kind == AlertChange::Kind::resolved) resolved_at = now;
    }
    for (auto& p : sink_.take()) posts.push_back(std::move(p));
    // The operator acknowledges 20 s after the first escalation.
    if (escalated_at && !acked && now >= *escalated_at + 20'000) {
      acknowledge_alert(*db_, cfg_.alerts, alert_id, "asha", "", "looking at the provider status page", now);
      acked = true;
      auto http = make_curl_alert_sink(cfg_.alerts);
      deliver_notifications(*db_, cfg_.alerts, *http, now);
      for (auto& p : sink_.take()) posts.push_back(std::move(p));
    }
  }

  // Fired within 60 s of the storm's start (scenario time), once.
  ASSERT_TRUE(fired_at.has_value());
  EXPECT_LE(*fired_at - storm_from, 60'000);
  EXPECT_GT(*fired_at, storm_from);
  // Escalated to the next level after the configured minute, not before.
  ASSERT_TRUE(escalated_at.has_value());
  EXPECT_GE(*escalated_at - *fired_at, 60'000);
  EXPECT_LT(*escalated_at - *fired_at, 62'000);
  // Acknowledged: it stayed at level 1 although it fired more than two minutes before it resolved.
  ASSERT_TRUE(resolved_at.has_value()) << "live success never recovered";
  EXPECT_GT(*resolved_at - *fired_at, 2 * 60'000);
  auto a = store::AlertGet(*db_, alert_id);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->state, "resolved");
  EXPECT_EQ(a->level, 1);
  EXPECT_EQ(a->acknowledged_by, "asha");
  EXPECT_EQ(store::AlertListFiring(*db_).size(), 0u);
  // Recovery: resolved once on time reached 97% of the decided ones again (32 dead → 1035 on time).
  LiveSnapshot at_resolve = snapshot_from_ledger(*db_, {run}, cfg_, *resolved_at);
  EXPECT_GE(at_resolve.runs[0].live_success_pct, 97.0);
  EXPECT_EQ(at_resolve.runs[0].dead, 32u);

  // The bodies, in order: fired → oncall; escalated → backup; acknowledged → oncall, backup;
  // resolved → oncall, backup. Nothing reached the manager.
  std::vector<std::string> paths;
  for (const auto& [path, body] : posts) paths.push_back(path);
  EXPECT_EQ(paths, (std::vector<std::string>{"/hook/oncall", "/hook/backup", "/hook/oncall", "/hook/backup", "/hook/oncall",
                                             "/hook/backup"}));
  ASSERT_EQ(posts.size(), 6u);
  std::vector<json> bodies;
  for (const auto& p : posts) bodies.push_back(json::parse(p.second));
  const std::string id = "#" + std::to_string(alert_id);
  const std::string subject = "run:" + std::to_string(run);
  EXPECT_EQ(bodies[0]["text"].get<std::string>().rfind("[daybreak] FIRING " + id + " live_success_low " + subject, 0), 0u)
      << bodies[0]["text"];
  EXPECT_NE(bodies[0]["text"].get<std::string>().find("is below 97.00%"), std::string::npos) << bodies[0]["text"];
  ASSERT_TRUE(bodies[0]["attachments"].is_array());
  EXPECT_EQ(bodies[0]["attachments"][0]["fields"][0]["value"], "live_success_low");
  EXPECT_EQ(bodies[0]["attachments"][0]["fields"][2]["value"], "0 (oncall)");
  EXPECT_NE(bodies[1]["text"].get<std::string>().find("ESCALATED " + id), std::string::npos) << bodies[1]["text"];
  EXPECT_EQ(bodies[1]["attachments"][0]["fields"][2]["value"], "1 (backup)");
  EXPECT_NE(bodies[2]["text"].get<std::string>().find("ACKNOWLEDGED " + id), std::string::npos);
  EXPECT_NE(bodies[2]["text"].get<std::string>().find("acknowledged by asha: looking at the provider status page"),
            std::string::npos) << bodies[2]["text"];
  EXPECT_NE(bodies[4]["text"].get<std::string>().find("RESOLVED " + id), std::string::npos) << bodies[4]["text"];

  // Every notification was sent, once.
  for (const auto& n : store::NotificationListForAlert(*db_, alert_id)) {
    EXPECT_TRUE(n.sent_at.has_value()) << n.event << " " << n.target;
    EXPECT_EQ(n.attempts, 1);
  }
  // The acknowledgement is audited with who and why.
  auto& q = db_->stmt("SELECT actor, command, reason, target FROM audit_log");
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getString(), "asha");
  EXPECT_EQ(q.getColumn(1).getString(), "alerts ack");
  EXPECT_EQ(q.getColumn(2).getString(), "looking at the provider status page");
  EXPECT_EQ(q.getColumn(3).getString(), "alert:" + std::to_string(alert_id));
  q.reset();
}

// A synthetic snapshot: one running run, one sender whose breaker is `breaker`.
LiveSnapshot breaker_snapshot(BreakerState breaker, Millis now) {
  LiveSnapshot snap;
  snap.at = now;
  SenderLive s;
  s.id = "wa-1";
  s.channel = "whatsapp";
  s.mps = 80;
  s.breaker = breaker;
  snap.senders.push_back(s);
  return snap;
}

TEST_F(AlertsTest, UnacknowledgedAlertClimbsTheChainOneLevelPerIntervalAndFiresOnce) {
  AlertEngine eng(cfg_.alerts);
  const Millis t0 = kSlot;
  auto c = eng.evaluate(*db_, breaker_snapshot(BreakerState::open, t0), t0);
  ASSERT_TRUE(has(c, AlertChange::Kind::fired, "breaker_open"));
  const std::int64_t id = c.front().alert_id;
  EXPECT_EQ(c.front().subject, "sender:wa-1");
  // Still open a second later: no second row, nothing new to tell.
  EXPECT_TRUE(eng.evaluate(*db_, breaker_snapshot(BreakerState::open, t0 + 1000), t0 + 1000).empty());
  EXPECT_TRUE(eng.evaluate(*db_, breaker_snapshot(BreakerState::open, t0 + 59'999), t0 + 59'999).empty());
  c = eng.evaluate(*db_, breaker_snapshot(BreakerState::open, t0 + 60'000), t0 + 60'000);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].kind, AlertChange::Kind::escalated);
  EXPECT_EQ(c[0].level, 1);
  c = eng.evaluate(*db_, breaker_snapshot(BreakerState::open, t0 + 120'000), t0 + 120'000);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].level, 2);
  // The chain has three levels: nothing beyond the last.
  EXPECT_TRUE(eng.evaluate(*db_, breaker_snapshot(BreakerState::open, t0 + 600'000), t0 + 600'000).empty());
  EXPECT_EQ(store::AlertGet(*db_, id)->level, 2);
  EXPECT_EQ(store::AlertListRecent(*db_, 10).size(), 1u);
  // Half-open is not open: the condition clears and the alert resolves; every level reached is told.
  c = eng.evaluate(*db_, breaker_snapshot(BreakerState::half_open, t0 + 601'000), t0 + 601'000);
  ASSERT_TRUE(has(c, AlertChange::Kind::resolved, "breaker_open"));
  auto notes = store::NotificationListForAlert(*db_, id);
  std::vector<std::pair<std::string, int>> got;
  for (const auto& n : notes) got.emplace_back(n.event, n.level);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int>>{
                     {"fired", 0}, {"escalated", 1}, {"escalated", 2}, {"resolved", 0}, {"resolved", 1}, {"resolved", 2}}));
  // Opening again later is a new alert.
  c = eng.evaluate(*db_, breaker_snapshot(BreakerState::open, t0 + 700'000), t0 + 700'000);
  ASSERT_TRUE(has(c, AlertChange::Kind::fired, "breaker_open"));
  EXPECT_NE(c.front().alert_id, id);
}

TEST_F(AlertsTest, AcknowledgingTwiceOrAResolvedAlertIsRefused) {
  AlertEngine eng(cfg_.alerts);
  auto c = eng.evaluate(*db_, breaker_snapshot(BreakerState::open, kSlot), kSlot);
  const std::int64_t id = c.front().alert_id;
  acknowledge_alert(*db_, cfg_.alerts, id, "root", "asha", "on it", kSlot + 1000);
  EXPECT_EQ(store::AlertGet(*db_, id)->acknowledged_by, "asha (as root)");
  EXPECT_THROW(acknowledge_alert(*db_, cfg_.alerts, id, "root", "", "again", kSlot + 2000), std::invalid_argument);
  EXPECT_THROW(acknowledge_alert(*db_, cfg_.alerts, id + 100, "root", "", "nope", kSlot + 2000), std::invalid_argument);
  // Acknowledged: no escalation however long it fires.
  EXPECT_TRUE(eng.escalate(*db_, kSlot + 3'600'000).empty());
  eng.evaluate(*db_, breaker_snapshot(BreakerState::closed, kSlot + 3'600'000), kSlot + 3'600'000);
  EXPECT_THROW(acknowledge_alert(*db_, cfg_.alerts, id, "root", "", "late", kSlot + 3'700'000), std::invalid_argument);
}

// A sink that fails its first `failures` posts, then succeeds; records what it was asked.
class FlakySink final : public AlertSink {
 public:
  explicit FlakySink(int failures, bool permanent = false) : failures_(failures), permanent_(permanent) {}
  PostResult post_webhook(const std::string& url, const std::string&) override {
    urls.push_back(url);
    if (calls_++ < failures_) return {false, permanent_, "HTTP 503"};
    return {true, false, ""};
  }
  PostResult send_email(const std::string& to, const std::string& subject, const std::string&, Millis,
                        const std::string&) override {
    emails.emplace_back(to, subject);
    return {true, false, ""};
  }
  std::vector<std::string> urls;
  std::vector<std::pair<std::string, std::string>> emails;

 private:
  int failures_;
  bool permanent_;
  int calls_ = 0;
};

// Records posts and signals the first webhook; used from the notifier's thread.
class SignallingSink final : public AlertSink {
 public:
  PostResult post_webhook(const std::string& url, const std::string& body) override {
    std::lock_guard g(mu);
    posts.emplace_back(url, body);
    if (posts.size() == 1) first.set_value();
    return {true, false, ""};
  }
  PostResult send_email(const std::string& to, const std::string& subject, const std::string&, Millis,
                        const std::string&) override {
    std::lock_guard g(mu);
    emails.emplace_back(to, subject);
    return {true, false, ""};
  }
  std::mutex mu;
  std::promise<void> first;
  std::vector<std::pair<std::string, std::string>> posts, emails;
};

TEST_F(AlertsTest, DirectAlertGoesOutWhenTheLedgerCannotBeOpened) {
  // The store_unwritable alert cannot use the outbox (it lives in the ledger that fails):
  // the notifier posts it from memory even when its own database connection cannot open.
  cfg_.alerts.chain.resize(1);
  cfg_.alerts.chain[0].name = "oncall";
  cfg_.alerts.chain[0].webhooks = {"http://127.0.0.1:9/hook"};
  cfg_.alerts.chain[0].emails = {"oncall@example.com"};
  auto sink = std::make_unique<SignallingSink>();
  auto* seen = sink.get();
  auto done = seen->first.get_future();
  SystemClock clock;
  AlertNotifier notifier("/nonexistent-dir/daybreak.db", cfg_.alerts, clock, nullptr, std::move(sink));
  notifier.start();
  notifier.post_direct("fired", "store_unwritable", "database", "dispatch cannot write the ledger for 10 s (disk full)");
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  notifier.stop();
  ASSERT_EQ(seen->posts.size(), 1u);
  EXPECT_EQ(seen->posts[0].first, "http://127.0.0.1:9/hook");
  auto body = json::parse(seen->posts[0].second);
  const std::string text = body["text"];
  EXPECT_NE(text.find("FIRING"), std::string::npos) << text;
  EXPECT_NE(text.find("store_unwritable"), std::string::npos) << text;
  EXPECT_NE(text.find("disk full"), std::string::npos) << text;
  ASSERT_EQ(seen->emails.size(), 1u);
  EXPECT_EQ(seen->emails[0].first, "oncall@example.com");
  EXPECT_NE(seen->emails[0].second.find("store_unwritable"), std::string::npos);
}

TEST_F(AlertsTest, NotificationsRetryWithBackoffThenGiveUp) {
  cfg_.alerts.notify_max_attempts = 3;
  cfg_.alerts.notify_retry_base_ms = 10'000;
  cfg_.alerts.chain.resize(1);
  cfg_.alerts.chain[0].emails = {"oncall@example.com"};
  AlertEngine eng(cfg_.alerts);
  eng.evaluate(*db_, breaker_snapshot(BreakerState::open, kSlot), kSlot);

  FlakySink flaky(1);
  NotifyStats st = deliver_notifications(*db_, cfg_.alerts, flaky, kSlot);
  EXPECT_EQ(st.sent, 1);  // the email
  EXPECT_EQ(st.retry_later, 1);  // the webhook, retried 10 s later
  ASSERT_EQ(flaky.emails.size(), 1u);
  EXPECT_EQ(flaky.emails[0].first, "oncall@example.com");
  EXPECT_NE(flaky.emails[0].second.find("[daybreak] FIRING"), std::string::npos);
  EXPECT_EQ(deliver_notifications(*db_, cfg_.alerts, flaky, kSlot + 9'999).sent, 0);  // not due yet
  st = deliver_notifications(*db_, cfg_.alerts, flaky, kSlot + 10'000);
  EXPECT_EQ(st.sent, 1);
  EXPECT_EQ(flaky.urls.size(), 2u);
  EXPECT_EQ(store::NotificationCountPending(*db_), 0);

  // Always failing: given up after notify_max_attempts, with the error kept.
  eng.evaluate(*db_, breaker_snapshot(BreakerState::closed, kSlot + 20'000), kSlot + 20'000);  // resolved → new notifications
  FlakySink down(100);
  Millis t = kSlot + 20'000;
  int gave_up = 0;
  for (int i = 0; i < 10; ++i, t += 3'600'000) gave_up += deliver_notifications(*db_, cfg_.alerts, down, t).gave_up;
  EXPECT_EQ(gave_up, 1);
  EXPECT_EQ(store::NotificationCountPending(*db_), 0);
  auto notes = store::NotificationListForAlert(*db_, store::AlertListRecent(*db_, 1).front().alert_id);
  auto it = std::find_if(notes.rbegin(), notes.rend(), [](const auto& n) { return n.sink == "webhook"; });
  ASSERT_NE(it, notes.rend());
  const auto& last = *it;  // the resolved webhook (the email went through)
  EXPECT_EQ(last.event, "resolved");
  EXPECT_EQ(last.attempts, 3);
  EXPECT_TRUE(last.failed_at.has_value());
  EXPECT_EQ(last.last_error, "HTTP 503");
}

TEST_F(AlertsTest, PlanningRulesSilentDaysAndCapacityShortfall) {
  AlertEngine eng(cfg_.alerts);
  const std::int64_t run = make_run(3, 1000);
  db_->exec("UPDATE runs SET state = 'planned', feasible = 0, plan_report = "
            "'{\"shortfall\": 2, \"required_peak_mps\": 120.5, \"recommendation\": \"add 1 whatsapp sender of 80 msg/s\"}'");
  // Two eligible advisors without an assignment for the day; one has one.
  db_->exec("INSERT INTO advisor_channels(advisor_id, channel, address, opted_in) VALUES ('A0','whatsapp','+1',1), "
            "('A1','whatsapp','+2',1), ('A2','whatsapp','+3',1)");
  db_->exec("INSERT INTO assignments(advisor_id, date, content_id, source, created_at) VALUES ('A1', '" + kDate +
            "', 'c1', 'editorial', 0)");
  const Millis now = kSlot - 8 * 3'600'000;  // 22:30 IST the night before
  auto c = eng.evaluate_store(*db_, {kDate}, now);
  ASSERT_TRUE(has(c, AlertChange::Kind::fired, "silent_days"));
  ASSERT_TRUE(has(c, AlertChange::Kind::fired, "capacity_shortfall"));
  for (const auto& x : c) {
    if (x.rule == "silent_days") {
      EXPECT_EQ(x.subject, "date:" + kDate);
      EXPECT_NE(x.message.find("2 eligible advisor(s) have no content for 2026-11-28 (e.g. A0, A2)"), std::string::npos) << x.message;
    } else {
      EXPECT_EQ(x.subject, "run:" + std::to_string(run));
      EXPECT_NE(x.message.find("needs 120.50 msg/s; add 1 whatsapp sender of 80 msg/s"), std::string::npos) << x.message;
    }
  }
  EXPECT_TRUE(eng.evaluate_store(*db_, {kDate}, now + 60'000).empty());  // unchanged: nothing new
  // Fixed: assignments made and the run re-planned within capacity → both resolve.
  db_->exec("INSERT INTO assignments(advisor_id, date, content_id, source, created_at) VALUES ('A0', '" + kDate +
            "', 'c1', 'fallback', 0), ('A2', '" + kDate + "', 'c1', 'fallback', 0)");
  db_->exec("UPDATE runs SET feasible = 1");
  c = eng.evaluate_store(*db_, {kDate}, now + 120'000);
  EXPECT_TRUE(has(c, AlertChange::Kind::resolved, "silent_days"));
  EXPECT_TRUE(has(c, AlertChange::Kind::resolved, "capacity_shortfall"));
  // A live evaluation does not touch planning alerts, and a disabled rule never fires.
  cfg_.alerts.disabled_rules = {"silent_days"};
  AlertEngine quiet(cfg_.alerts);
  db_->exec("DELETE FROM assignments WHERE advisor_id = 'A0'");
  EXPECT_TRUE(quiet.evaluate_store(*db_, {kDate}, now + 180'000).empty());
}

TEST(AlertsConfigTest, ReadsChainLevelsAndRejectsMistakes) {
  const std::string ok = R"(
[alerts]
min_sample = 50
live_success_pct = 98.5
success_measure = "delivered"
escalate_after_minutes = 10
disabled_rules = ["breaker_open"]
chain = ["oncall", "manager"]
smtp_url = "smtp://127.0.0.1:2525"
smtp_from = "daybreak@example.com"
[alerts.levels.oncall]
webhooks = ["https://hooks.example.com/services/T/B/X"]
emails = ["oncall@example.com"]
[alerts.levels.manager]
emails = ["boss@example.com"]
)";
  Config cfg = parse_config(ok, "");
  EXPECT_EQ(cfg.alerts.min_sample, 50u);
  EXPECT_DOUBLE_EQ(cfg.alerts.live_success_pct, 98.5);
  EXPECT_EQ(cfg.alerts.success_measure, "delivered");
  EXPECT_EQ(cfg.alerts.escalate_after_ms, 600'000);
  EXPECT_FALSE(cfg.alerts.rule_enabled("breaker_open"));
  EXPECT_TRUE(cfg.alerts.rule_enabled("live_success_low"));
  ASSERT_EQ(cfg.alerts.chain.size(), 2u);
  EXPECT_EQ(cfg.alerts.chain[0].name, "oncall");
  EXPECT_EQ(cfg.alerts.chain[0].webhooks.size(), 1u);
  EXPECT_EQ(cfg.alerts.chain[1].emails, std::vector<std::string>{"boss@example.com"});

  // Defaults: 97% after 20, 5 minutes, no chain.
  Config d = parse_config("", "");
  EXPECT_EQ(d.alerts.min_sample, 20u);
  EXPECT_DOUBLE_EQ(d.alerts.live_success_pct, 97.0);
  EXPECT_EQ(d.alerts.success_measure, "accepted");
  EXPECT_EQ(d.alerts.escalate_after_ms, 300'000);
  EXPECT_TRUE(d.alerts.chain.empty());

  auto error = [](const std::string& toml) {
    try {
      parse_config(toml, "t.toml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error("[alerts]\nlive_sucess_pct = 9\n").find("t.toml:2: unknown key \"alerts.live_sucess_pct\""), std::string::npos);
  EXPECT_NE(error("[alerts]\nchain = [\"oncall\"]\n").find("needs a table [alerts.levels.oncall]"), std::string::npos);
  EXPECT_NE(error("[alerts]\ndisabled_rules = [\"nope\"]\n").find("unknown rule \"nope\""), std::string::npos);
  EXPECT_NE(error("[alerts]\nchain = [\"a\"]\n[alerts.levels.a]\nemails = [\"x@example.com\"]\n").find("needs alerts.smtp_url"),
            std::string::npos);
  EXPECT_NE(error("[alerts]\nlive_success_pct = 120\n").find("must be between 0 and 100"), std::string::npos);
  EXPECT_NE(error("[alerts]\nsuccess_measure = \"read\"\n").find("t.toml:2: key \"alerts.success_measure\" must be \"accepted\" or \"delivered\""),
            std::string::npos);
}

// Provider blocks (docs/whatsapp-errors.md): a blocked number is a sender alert at the first
// level; a blocked account is one critical alert naming its senders, told to every level at once.
TEST_F(AlertsTest, AccountBlockIsCriticalAtEveryLevelAtOnceNumberBlockIsNot) {
  AlertEngine eng(cfg_.alerts);
  const Millis t0 = kSlot;
  auto snap = [&](bool account, Millis now) {
    LiveSnapshot sn;
    sn.at = now;
    for (const char* id : {"wa-1", "wa-2", "wa-3"}) {
      SenderLive s;
      s.id = id;
      s.channel = "whatsapp";
      s.mps = 80;
      s.account = std::string(id) == "wa-3" ? "waba-2" : "waba-1";
      s.breaker = BreakerState::open;
      if (std::string(id) == "wa-1") {
        s.blocked = "phone_number";
        s.blocked_reason = "131048 Spam rate limit hit";
      }
      if (account && s.account == "waba-1") {
        s.blocked = "account";
        s.blocked_reason = "368 Temporarily blocked for policies violations";
      }
      sn.senders.push_back(s);
    }
    return sn;
  };
  auto c = eng.evaluate(*db_, snap(false, t0), t0);
  ASSERT_TRUE(has(c, AlertChange::Kind::fired, "whatsapp_number_blocked"));
  EXPECT_FALSE(has(c, AlertChange::Kind::fired, "whatsapp_account_blocked"));
  for (const auto& ch : c) {
    if (ch.rule == "whatsapp_number_blocked") {
      EXPECT_EQ(ch.subject, "sender:wa-1");
      EXPECT_EQ(ch.level, 0);
    }
  }
  c = eng.evaluate(*db_, snap(true, t0 + 1000), t0 + 1000);
  const AlertChange* acc = nullptr;
  for (const auto& ch : c) {
    if (ch.rule == "whatsapp_account_blocked" && ch.kind == AlertChange::Kind::fired) acc = &ch;
  }
  ASSERT_NE(acc, nullptr);
  EXPECT_EQ(acc->subject, "account:waba-1");
  EXPECT_EQ(acc->level, 2);  // the chain's last level, at once
  EXPECT_NE(acc->message.find("wa-1, wa-2"), std::string::npos) << acc->message;
  EXPECT_EQ(acc->message.find("wa-3"), std::string::npos) << acc->message;
  EXPECT_EQ(store::AlertGet(*db_, acc->alert_id)->level, 2);
  std::vector<std::pair<std::string, int>> got;
  for (const auto& n : store::NotificationListForAlert(*db_, acc->alert_id)) got.emplace_back(n.event, n.level);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int>>{{"fired", 0}, {"fired", 1}, {"fired", 2}}));
  // The block over: the alert resolves, and every level is told.
  c = eng.evaluate(*db_, snap(false, t0 + 2000), t0 + 2000);
  EXPECT_TRUE(has(c, AlertChange::Kind::resolved, "whatsapp_account_blocked"));
}

}  // namespace
}  // namespace daybreak::engine
