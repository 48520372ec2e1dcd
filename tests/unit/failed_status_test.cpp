// A `failed` status after acceptance (docs/state_machine.md, `accepted` → `retry_wait`): the
// pure rule (decide_after_failed_status), the 24 h WhatsApp hold of a 131049
// (whatsapp_hold_until, store/whatsapp_holds), the ingest that records both, the reroute write,
// and the dispatcher moving an accepted WhatsApp delivery to email when a failed status arrives
// while its run is open, and sending a held advisor's delivery on email without a WhatsApp try.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/delivery_fsm.hpp"
#include "domain/status_event.hpp"
#include "store/status_events.hpp"
#include "store/whatsapp_holds.hpp"

namespace daybreak {
namespace {

constexpr Millis kFsT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST
constexpr Millis kFsDayMs = 24LL * 3600 * 1000;

// ---- the pure rule ----------------------------------------------------------------------------

TEST(FailedAfterAccept, MovesOnlyAnAcceptedWhatsAppRowOfAnOpenRunWithTimeAndAChannelLeft) {
  const Millis deadline = kFsT0 + 300'000;
  const auto ok = decide_after_failed_status(DeliveryState::accepted, true, true, true, kFsT0 + 10'000, deadline, 2000);
  EXPECT_EQ(ok.action, FailedAfterAccept::next_channel) << ok.reason;
  // Exactly at the last moment a send can land, still moved; a millisecond later, recorded only.
  EXPECT_EQ(decide_after_failed_status(DeliveryState::accepted, true, true, true, deadline - 2000, deadline, 2000).action,
            FailedAfterAccept::next_channel);
  auto late = decide_after_failed_status(DeliveryState::accepted, true, true, true, deadline - 1999, deadline, 2000);
  EXPECT_EQ(late.action, FailedAfterAccept::record_only);
  EXPECT_EQ(late.reason, "deadline passed");
  auto closed = decide_after_failed_status(DeliveryState::accepted, true, false, true, kFsT0, deadline, 2000);
  EXPECT_EQ(closed.action, FailedAfterAccept::record_only);
  EXPECT_EQ(closed.reason, "run closed");
  auto none = decide_after_failed_status(DeliveryState::accepted, true, true, false, kFsT0, deadline, 2000);
  EXPECT_EQ(none.action, FailedAfterAccept::record_only);
  EXPECT_EQ(none.reason, "no next channel");
  // A delivered/read row reached the advisor; an email row was never WhatsApp's to fail.
  for (auto s : {DeliveryState::delivered, DeliveryState::read, DeliveryState::retry_wait, DeliveryState::dead}) {
    EXPECT_EQ(decide_after_failed_status(s, true, true, true, kFsT0, deadline, 2000).action, FailedAfterAccept::record_only)
        << to_string(s);
  }
  EXPECT_EQ(decide_after_failed_status(DeliveryState::accepted, false, true, true, kFsT0, deadline, 2000).action,
            FailedAfterAccept::record_only);
}

TEST(FailedAfterAccept, TheTransitionIsInTheStateMachineAndDecidedByAStatus) {
  EXPECT_TRUE(transition_allowed(DeliveryState::accepted, DeliveryState::retry_wait));
  bool found = false;
  for (const auto& t : delivery_transitions()) {
    if (t.from == DeliveryState::accepted && t.to == DeliveryState::retry_wait) {
      found = true;
      EXPECT_EQ(t.by, FsmActor::status);
    }
  }
  EXPECT_TRUE(found);
  // Never back to `sending` directly from a final state, nor from delivered/read.
  EXPECT_FALSE(transition_allowed(DeliveryState::accepted, DeliveryState::sending));
  EXPECT_FALSE(transition_allowed(DeliveryState::delivered, DeliveryState::retry_wait));
  EXPECT_FALSE(transition_allowed(DeliveryState::read, DeliveryState::retry_wait));
}

TEST(WhatsAppHold, OnlyTheMarketingLimitHoldsForTwentyFourHoursFromTheFailure) {
  const Millis failed_at = kFsT0 + 5'000;
  auto h = whatsapp_hold_until(131049, failed_at, kFsT0 + 9'000);
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, failed_at + kFsDayMs);
  // No provider time: from when it was applied.
  EXPECT_EQ(whatsapp_hold_until(131049, 0, kFsT0), kFsT0 + kFsDayMs);
  EXPECT_FALSE(whatsapp_hold_until(131026, failed_at, kFsT0));
  EXPECT_FALSE(whatsapp_hold_until(std::nullopt, failed_at, kFsT0));
  EXPECT_TRUE(whatsapp_held(h, failed_at + kFsDayMs - 1));
  EXPECT_FALSE(whatsapp_held(h, failed_at + kFsDayMs));
  EXPECT_FALSE(whatsapp_held(std::nullopt, failed_at));
}

// ---- the store: ingest, hold, reroute ------------------------------------------------------------

/// An accepted WhatsApp delivery (wamid.1) to advisor "adv-1" with channels whatsapp|email.
class FailedStatusStoreTest : public test_support::DbTest {
 protected:
  FailedStatusStoreTest() : DbTest("failedstatus") {}
  void SetUp() override {
    DbTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(test_support::add_content_and_run(*db_, kFsT0 - 3'600'000), 1);
    db_->write_tx([&] {
      Advisor a;
      a.advisor_id = "adv-1";
      a.name = "A";
      a.tier = "gold";
      a.phone = "+919810012345";
      a.email = "a@example.com";
      a.timezone = "Asia/Kolkata";
      a.slot = "06:00";
      a.channels = {Channel::whatsapp, Channel::email};
      a.language = "en";
      store::AdvisorUpsert(*db_, {a, kFsT0 - 3'600'000});
      ASSERT_TRUE(store::DeliveryInsert(*db_, test_support::planned_delivery(1, "adv-1", "2026-11-28", kFsT0, kFsT0, kFsT0 - 3'600'000)));
    });
    test_support::set_run_window(*db_, 1, kFsT0);
    db_->exec("UPDATE deliveries SET state = 'accepted', provider_message_id = 'wamid.1', attempts = 1, first_sent_at = " +
              std::to_string(kFsT0) + ", accepted_at = " + std::to_string(kFsT0 + 100));
  }

  /// One webhook with one status about wamid.1 (delivery 1), applied as the receiver does.
  store::StatusApplySummary post(MessageStatus st, Millis provider_at, std::optional<long> code, Millis now) {
    StatusUpdate u;
    u.provider_message_id = "wamid.1";
    u.status = st;
    u.provider_at = provider_at;
    u.delivery_id = 1;
    u.phone_number_id = "1";
    u.error_code = code;
    if (code) u.error_title = *code == 131049 ? "marketing limit" : "Message undeliverable";
    store::StatusApplySummary s;
    db_->write_tx([&] {
      store::StatusEventStoreParams p;
      p.body = std::string(to_string(st)) + std::to_string(provider_at) + std::to_string(code.value_or(0));
      p.now = now;
      auto ev = store::StatusEventStore(*db_, p);
      store::StatusUpdatesInsert(*db_, ev.event_id, {u}, now);
      s = store::StatusApplyEvent(*db_, ev.event_id, now);
    });
    return s;
  }
  std::string text(const std::string& sql) {
    SQLite::Statement q(db_->raw(), sql);
    if (!q.executeStep() || q.getColumn(0).isNull()) return "";
    return q.getColumn(0).getString();
  }
};

TEST_F(FailedStatusStoreTest, MarketingLimitRecordsTheErrorAHoldAndAChangeNoteButMovesNothing) {
  const Millis failed_at = kFsT0 + 2'000;
  auto s = post(MessageStatus::failed, failed_at, 131049, kFsT0 + 3'000);
  EXPECT_EQ(s.errors_recorded, 1);
  EXPECT_EQ(text("SELECT state FROM deliveries WHERE delivery_id = 1"), "accepted");
  EXPECT_EQ(text("SELECT last_error FROM deliveries WHERE delivery_id = 1"), "status failed: 131049 marketing limit");
  EXPECT_EQ(text("SELECT kind FROM delivery_changes WHERE delivery_id = 1 ORDER BY seq DESC LIMIT 1"), "status_failed");
  auto h = store::WhatsAppHoldGet(*db_, "adv-1");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->until, failed_at + kFsDayMs);
  EXPECT_EQ(h->error_code, 131049);
  EXPECT_EQ(h->delivery_id, 1);
  // In force for 24 h, then gone.
  EXPECT_EQ(store::WhatsAppHoldsActive(*db_, failed_at + kFsDayMs - 1).count("adv-1"), 1U);
  EXPECT_EQ(store::WhatsAppHoldsActive(*db_, failed_at + kFsDayMs).count("adv-1"), 0U);
  // Dispatch's poll asks for holds written since its last poll.
  EXPECT_EQ(store::WhatsAppHoldsActive(*db_, kFsT0, kFsT0 + 3'000).count("adv-1"), 1U);
  EXPECT_EQ(store::WhatsAppHoldsActive(*db_, kFsT0, kFsT0 + 3'001).count("adv-1"), 0U);
  // An earlier hold never shortens a later one.
  db_->write_tx([&] { store::WhatsAppHoldSet(*db_, {"adv-1", failed_at, 131049, std::nullopt, kFsT0 + 4'000}); });
  EXPECT_EQ(store::WhatsAppHoldGet(*db_, "adv-1")->until, failed_at + kFsDayMs);
}

TEST_F(FailedStatusStoreTest, UndeliverableRecordsNoHold) {
  post(MessageStatus::failed, kFsT0 + 2'000, 131026, kFsT0 + 3'000);
  EXPECT_EQ(text("SELECT last_error FROM deliveries WHERE delivery_id = 1"), "status failed: 131026 Message undeliverable");
  EXPECT_FALSE(store::WhatsAppHoldGet(*db_, "adv-1"));
  EXPECT_EQ(text("SELECT kind FROM delivery_changes WHERE delivery_id = 1"), "status_failed");
}

TEST_F(FailedStatusStoreTest, RerouteMovesOnlyAFailedAcceptedWhatsAppRowOfARunTheOwnerHolds) {
  store::RerouteAfterFailedParams p{1, "email", 1, "em-1", "rerouted after status failed: 131026 x -> email", kFsT0 + 5'000};
  // No failed status recorded yet: nothing moves.
  ASSERT_TRUE(store::RunAcquireLease(*db_, 1, "me", kFsT0, 15'000).acquired);
  EXPECT_FALSE(store::DeliveryRerouteAfterFailedStatus(*db_, p, "me"));
  post(MessageStatus::failed, kFsT0 + 2'000, 131026, kFsT0 + 3'000);
  // Another owner's run: nothing moves.
  EXPECT_FALSE(store::DeliveryRerouteAfterFailedStatus(*db_, p, "someone-else"));
  ASSERT_TRUE(store::DeliveryRerouteAfterFailedStatus(*db_, p, "me"));
  EXPECT_EQ(text("SELECT state || ' ' || channel || ' ' || channel_index || ' ' || sender FROM deliveries"),
            "retry_wait email 1 em-1");
  EXPECT_EQ(scalar("SELECT accepted_at IS NULL AND next_attempt_at = " + std::to_string(kFsT0 + 5'000) + " FROM deliveries"), 1);
  EXPECT_EQ(text("SELECT outcome FROM status_updates WHERE status = 'failed'"), "rerouted");
  // Twice is once.
  EXPECT_FALSE(store::DeliveryRerouteAfterFailedStatus(*db_, p, "me"));
  // A late `delivered` of the failed WhatsApp message no longer moves the row (now on email).
  auto s = post(MessageStatus::delivered, kFsT0 + 1'500, std::nullopt, kFsT0 + 6'000);
  EXPECT_EQ(s.ignored, 1);
  EXPECT_EQ(text("SELECT state FROM deliveries"), "retry_wait");
}

// ---- the dispatcher ----------------------------------------------------------------------------------

/// Accepts everything: WhatsApp with wamid.<n>, email with 250 and the adapter's Message-ID.
/// Records each request's kind in order.
class AcceptAll final : public channels::Transport {
 public:
  void submit(channels::Request req, Done done) override {
    int n = 0;
    {
      std::lock_guard lk(mu_);
      n = static_cast<int>(kinds_.size()) + 1;
      kinds_.push_back(req.kind == channels::Request::Kind::smtp ? "email" : "whatsapp");
    }
    if (req.kind == channels::Request::Kind::smtp) {
      channels::Response r;
      r.transport_ok = true;
      r.status = 250;
      r.message_id = req.message_id.empty() ? "<m" + std::to_string(n) + "@t>" : req.message_id;
      done(std::move(r));
      return;
    }
    done(test_support::whatsapp_accepted(n));
  }
  void shutdown() override {}
  std::vector<std::string> kinds() {
    std::lock_guard lk(mu_);
    return kinds_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> kinds_;
};

class FailedStatusDispatchTest : public FailedStatusStoreTest {
 protected:
  void SetUp() override {
    FailedStatusStoreTest::SetUp();
    if (HasFatalFailure()) return;
    db_->exec("UPDATE deliveries SET state = 'planned', provider_message_id = NULL, attempts = 0, first_sent_at = NULL, "
              "accepted_at = NULL");
  }
  Config config(int status_wait_seconds) {
    return parse_config("[database]\npath = \"" + db_path() +
                            "\"\n[dispatch]\nstatus_wait_seconds = " + std::to_string(status_wait_seconds) +
                            "\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 50\n"
                            "[[email.senders]]\nid = \"em-1\"\nurl = \"smtp://127.0.0.1:2525\"\nfrom = \"d@example.com\"\n"
                            "starttls = false\nmps = 50\n",
                        "");
  }
  engine::DispatchSummary dispatch(const Config& cfg, ManualClock& clock, channels::Transport& t) {
    const std::string owner = "failed-status-test";
    EXPECT_TRUE(store::RunAcquireLease(*db_, 1, owner, clock.now(), cfg.dispatch.lease_ms).acquired);
    // FAILED_STATUS_TEST_LOG=1 shows dispatch's log on stderr.
    return test_support::run_dispatch_ticking(cfg, clock, t, owner, {1}, "FAILED_STATUS_TEST_LOG");
  }
};

TEST_F(FailedStatusDispatchTest, AFailedStatusWhileTheRunWaitsMovesTheDeliveryToEmailOnce) {
  const Config cfg = config(60);
  ManualClock clock(kFsT0 - 1000);
  AcceptAll t;
  // The receiver's side, on its own connection: once dispatch has recorded the WhatsApp
  // acceptance, a failed 131049 arrives for it.
  std::atomic<bool> stop{false};
  std::thread receiver([&] {
    store::Db rdb(db_path());
    while (!stop) {
      SQLite::Statement q(rdb.raw(), "SELECT state FROM deliveries WHERE delivery_id = 1 AND channel = 'whatsapp'");
      if (q.executeStep() && q.getColumn(0).getString() == "accepted") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (stop) return;
    StatusUpdate u;
    u.provider_message_id = "wamid.1";
    u.status = MessageStatus::failed;
    u.provider_at = clock.now();
    u.delivery_id = 1;
    u.error_code = 131049;
    u.error_title = "marketing limit";
    rdb.write_tx([&] {
      store::StatusEventStoreParams p;
      p.body = "failed-1";
      p.now = clock.now();
      auto ev = store::StatusEventStore(rdb, p);
      store::StatusUpdatesInsert(rdb, ev.event_id, {u}, p.now);
      store::StatusApplyEvent(rdb, ev.event_id, p.now);
    });
  });
  auto s = dispatch(cfg, clock, t);
  stop = true;
  receiver.join();
  EXPECT_EQ(t.kinds(), (std::vector<std::string>{"whatsapp", "email"})) << "one send per channel, never two on one";
  EXPECT_EQ(s.rerouted_after_failed, 1);
  EXPECT_EQ(s.accepted, 1) << "counted once: the WhatsApp acceptance was taken back";
  ASSERT_EQ(s.runs_closed.size(), 1U);
  EXPECT_EQ(text("SELECT state || ' ' || channel FROM deliveries"), "accepted email");
  EXPECT_EQ(scalar("SELECT attempts FROM deliveries"), 2);
  EXPECT_EQ(scalar("SELECT accepted_at <= deadline_at FROM deliveries"), 1);
  EXPECT_EQ(text("SELECT group_concat(channel || ':' || outcome, ',') FROM (SELECT * FROM delivery_attempts ORDER BY attempt_no)"),
            "whatsapp:accepted,email:accepted");
  EXPECT_EQ(text("SELECT state FROM runs WHERE run_id = 1"), "closed");
  // Not failed-after-accept in the SLA: the email was accepted.
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE last_error LIKE 'status failed: %'"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM whatsapp_holds WHERE advisor_id = 'adv-1'"), 1);
}

TEST_F(FailedStatusDispatchTest, WithoutAWaitTheRunClosesAndALaterFailureIsRecordedOnly) {
  const Config cfg = config(0);
  ManualClock clock(kFsT0 - 1000);
  AcceptAll t;
  auto s = dispatch(cfg, clock, t);
  ASSERT_EQ(s.runs_closed.size(), 1U);
  EXPECT_EQ(t.kinds(), std::vector<std::string>{"whatsapp"});
  // After the close: the receiver records it; nothing is open to move it.
  post(MessageStatus::failed, clock.now(), 131026, clock.now());
  EXPECT_EQ(text("SELECT state || ' ' || channel FROM deliveries"), "accepted whatsapp");
  EXPECT_EQ(text("SELECT state FROM runs WHERE run_id = 1"), "closed");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE last_error LIKE 'status failed: 131026%'"), 1);
}

TEST_F(FailedStatusDispatchTest, AHeldAdvisorIsSentOnEmailWithoutAWhatsAppTry) {
  db_->write_tx([&] { store::WhatsAppHoldSet(*db_, {"adv-1", kFsT0 + kFsDayMs / 2, 131049, std::nullopt, kFsT0 - kFsDayMs / 2}); });
  const Config cfg = config(0);
  ManualClock clock(kFsT0 - 1000);
  AcceptAll t;
  auto s = dispatch(cfg, clock, t);
  EXPECT_EQ(t.kinds(), std::vector<std::string>{"email"});
  EXPECT_EQ(s.whatsapp_held, 1);
  EXPECT_EQ(text("SELECT state || ' ' || channel || ' ' || attempts FROM deliveries"), "accepted email 1");
}

TEST_F(FailedStatusDispatchTest, AnExpiredHoldNoLongerSkipsWhatsApp) {
  db_->write_tx([&] { store::WhatsAppHoldSet(*db_, {"adv-1", kFsT0 - 2000, 131049, std::nullopt, kFsT0 - kFsDayMs}); });
  const Config cfg = config(0);
  ManualClock clock(kFsT0 - 1000);
  AcceptAll t;
  auto s = dispatch(cfg, clock, t);
  EXPECT_EQ(t.kinds(), std::vector<std::string>{"whatsapp"});
  EXPECT_EQ(s.whatsapp_held, 0);
}

TEST(StatusWaitDefault, ThirtySecondsWhenTheReceiverIsConfiguredElseZeroAndTheFileWins) {
  const std::string base = "[database]\npath = \"/tmp/x.db\"\n";
  // No app secret: nothing receives statuses, a run closes as soon as every row is final.
  EXPECT_EQ(parse_config(base, "").dispatch.status_wait_ms, 0);
  // An app secret: daybreak-callbacks receives them; a failed status gets 30 s to arrive.
  const std::string with_secret = base + "[whatsapp]\napp_secret_env = \"DAYBREAK_TEST_UNSET_APP_SECRET\"\n";
  EXPECT_EQ(parse_config(with_secret, "").dispatch.status_wait_ms, kStatusWaitWithReceiverMs);
  EXPECT_EQ(kStatusWaitWithReceiverMs, 30000);
  // The file's value wins, 0 included.
  EXPECT_EQ(parse_config(with_secret + "[dispatch]\nstatus_wait_seconds = 0\n", "").dispatch.status_wait_ms, 0);
  EXPECT_EQ(parse_config(with_secret + "[dispatch]\nstatus_wait_seconds = 90\n", "").dispatch.status_wait_ms, 90000);
}

}  // namespace
}  // namespace daybreak
