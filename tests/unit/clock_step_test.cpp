// Wall-clock steps (docs/reliability.md "Clock steps"): the steady clock paces the process, the
// wall clock names shared instants. StepDetector, the clocks' two readings, the token bucket
// across a backward step, and the dispatcher on a ManualClock whose wall clock is stepped +16 min
// and -2 min in the middle of a run, against a fake transport that records every request.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "db_fixture.hpp"
#include "dispatch_harness.hpp"
#include "domain/clock.hpp"
#include "engine/dispatcher.hpp"
#include "engine/token_bucket.hpp"
#include "store/runs.hpp"

namespace daybreak {
namespace {

TEST(StepDetector, SeesAStepOfEitherSignAndIgnoresJitter) {
  StepDetector d(2000);
  EXPECT_EQ(d.observe(1'000'000, 50), 0);          // first reading: nothing to compare
  EXPECT_EQ(d.observe(1'001'000, 1'050), 0);       // both moved 1 s
  EXPECT_EQ(d.observe(1'002'500, 2'050), 0);       // 0.5 s of disagreement: jitter, not a step
  EXPECT_EQ(d.observe(1'963'500, 3'050), 960'000); // wall +961 s while steady +1 s: +16 min
  EXPECT_EQ(d.observe(1'844'500, 4'050), -120'000);
  EXPECT_EQ(d.observe(1'845'500, 5'050), 0);
}

TEST(ManualClockSteps, StepWallLeavesSteadyTimeAlone) {
  ManualClock c(1'000'000);
  Millis s0 = c.steady_ms();
  c.advance(500);
  EXPECT_EQ(c.now(), 1'000'500);
  EXPECT_EQ(c.steady_ms() - s0, 500);
  c.step_wall(-120'000);
  EXPECT_EQ(c.now(), 880'500);
  EXPECT_EQ(c.steady_ms() - s0, 500);
  c.set(881'500);  // forward: time passing
  EXPECT_EQ(c.steady_ms() - s0, 1'500);
}

TEST(ScaledClockSteady, RunsAtTheScale) {
  ScaledClock c(0, wall_clock_ms(), 10);
  Millis s0 = c.steady_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Millis d = c.steady_ms() - s0;
  EXPECT_GE(d, 490);  // 50 ms real = 500 ms of a 10x clock (and more on a loaded machine)
}

// The scheduler's wait publishes when it wakes by itself, so that a response (push_event) does
// not wake it when its timeout is about to anyway.
TEST(WakeWindow, ANotifyIsWorthItOnlyWhileTheWaiterSleepsPastTheSlack) {
  using namespace std::chrono_literals;
  WakeWindow w;
  w.wakes_at = std::chrono::steady_clock::now() + 500ms;
  EXPECT_FALSE(w.worth_waking(2ms)) << "a waiter that is running checks its events before it sleeps";
  w.asleep = true;
  EXPECT_TRUE(w.worth_waking(2ms));
  w.wakes_at = std::chrono::steady_clock::now() + 1ms;
  EXPECT_FALSE(w.worth_waking(2ms)) << "its own timeout sees the event within the slack";
  w.wakes_at = std::chrono::steady_clock::now() - 1ms;
  EXPECT_FALSE(w.worth_waking(2ms));
}

TEST(WakeWindow, WaitUntilShowsItsSleepAndItsOwnTimeout) {
  using namespace std::chrono_literals;
  SystemClock clock;
  std::mutex mu;
  std::condition_variable cv;
  WakeWindow w;
  bool ready = false;
  bool woke_by_event = false;
  std::thread waiter([&] {
    std::unique_lock lk(mu);
    woke_by_event = clock.wait_until(lk, cv, clock.now() + 60'000, [&] { return ready; }, &w);
  });
  while (true) {  // until the waiter is inside its wait (each wait lasts up to 1 s: the re-check)
    std::unique_lock lk(mu);
    if (w.asleep) break;
    lk.unlock();
    std::this_thread::yield();
  }
  {
    std::lock_guard lk(mu);
    EXPECT_TRUE(w.worth_waking(2ms)) << "a minute's deadline: a notify is what wakes it";
    EXPECT_LE(w.wakes_at - std::chrono::steady_clock::now(), 1s);
    ready = true;
  }
  cv.notify_one();
  waiter.join();
  EXPECT_TRUE(woke_by_event);
  EXPECT_FALSE(w.asleep);

  // A ManualClock's waits last a millisecond of real time (its loops poll): never worth a notify
  // at a 2 ms slack, and the waiter still sees the event.
  ManualClock manual(1'000'000);
  ready = false;
  std::thread polled([&] {
    std::unique_lock lk(mu);
    woke_by_event = manual.wait_until(lk, cv, manual.now() + 60'000, [&] { return ready; }, &w);
  });
  while (true) {
    std::unique_lock lk(mu);
    if (w.asleep) {
      EXPECT_FALSE(w.worth_waking(2ms));
      ready = true;  // no notify
      break;
    }
    lk.unlock();
    std::this_thread::yield();
  }
  polled.join();
  EXPECT_TRUE(woke_by_event);
}

// A clock stopped 300 µs before a millisecond, which records the real timeouts it is asked for.
class StoppedClock final : public Clock {
 public:
  explicit StoppedClock(Micros now_us) : now_us_(now_us) {}
  [[nodiscard]] Millis now() const override { return now_us_ / 1000; }
  [[nodiscard]] Millis steady_ms() const override { return now_us_ / 1000; }
  [[nodiscard]] Micros now_us() const override { return now_us_; }
  [[nodiscard]] Micros steady_us() const override { return now_us_; }
  [[nodiscard]] std::chrono::nanoseconds real_duration_us(Micros delta) const override {
    asked_us.store(delta);
    return std::chrono::microseconds(delta);
  }
  mutable std::atomic<Micros> asked_us{-1};

 private:
  Micros now_us_;
};

TEST(WaitUntil, WaitsWhatIsLeftInMicrosecondsNotWholeMilliseconds) {
  using namespace std::chrono_literals;
  StoppedClock clock(1'000'000'700);  // 700 µs into millisecond 1,000,000
  EXPECT_EQ(SystemClock().real_duration_us(250), 250us);
  EXPECT_EQ(ScaledClock(0, 0, 60).real_duration_us(600), 10us);
  std::mutex mu;
  std::condition_variable cv;
  WakeWindow w;
  bool ready = false;
  std::thread waiter([&] {
    std::unique_lock lk(mu);
    clock.wait_until(lk, cv, 1'000'001, [&] { return ready; }, &w);
  });
  while (true) {
    std::unique_lock lk(mu);
    if (w.asleep) {
      ready = true;
      break;
    }
    lk.unlock();
    std::this_thread::yield();
  }
  cv.notify_one();
  waiter.join();
  EXPECT_EQ(clock.asked_us.load(), 300) << "until millisecond 1,000,001: 300 µs, not the 1 ms whole milliseconds give";
}

TEST(TokenBucketSteps, KeepsRefillingAfterItsTimeMovesBackward) {
  ManualClock c(1'000'000);
  engine::TokenBucket b(10, 2, c.steady_ms());  // 10 per second, burst 2
  EXPECT_TRUE(b.try_take(c.steady_ms()));
  EXPECT_TRUE(b.try_take(c.steady_ms()));
  EXPECT_FALSE(b.try_take(c.steady_ms()));
  // The wall clock steps back two minutes: steady time does not, and the bucket refills on it.
  c.step_wall(-120'000);
  c.advance(100);
  EXPECT_TRUE(b.try_take(c.steady_ms()));
  EXPECT_EQ(b.next_available(c.steady_ms()), c.steady_ms() + 101);
  // Fed a time that goes backward anyway (a caller's wall clock), it re-anchors there and keeps
  // refilling at its rate instead of waiting for the old time to come back.
  engine::TokenBucket w(10, 2, 1'000'000);
  EXPECT_TRUE(w.try_take(1'000'000));
  EXPECT_TRUE(w.try_take(1'000'000));
  EXPECT_FALSE(w.try_take(1'000'000));
  const Millis back = 1'000'000 - 120'000;
  EXPECT_FALSE(w.try_take(back));
  EXPECT_TRUE(w.try_take(back + 100));  // 100 ms after the step: one token
  EXPECT_FALSE(w.try_take(back + 100));
  EXPECT_EQ(w.next_available(back + 100), back + 201);
}

// ---- the dispatcher across a step ------------------------------------------------------------

constexpr Millis kStepT0 = 1'795'825'800'000;  // 2026-11-28 06:00 IST

/// Accepts every request at once; calls `on_request(n)` (n = requests so far) on the
/// scheduler's thread before answering, where a test steps the clock.
class SteppingTransport final : public channels::Transport {
 public:
  explicit SteppingTransport(const Clock& clock) : clock_(clock) {}
  std::function<void(int)> on_request;
  void submit(channels::Request, Done done) override {
    int n = 0;
    {
      std::lock_guard lk(mu_);
      n = ++n_;
      steady_.push_back(clock_.steady_ms());
    }
    if (on_request) on_request(n);
    done(test_support::whatsapp_accepted(n));
  }
  void shutdown() override {}
  std::vector<Millis> steady() {
    std::lock_guard lk(mu_);
    return steady_;
  }

 private:
  const Clock& clock_;
  std::mutex mu_;
  std::vector<Millis> steady_;
  int n_ = 0;
};

class ClockStepTest : public test_support::DbTest {
 protected:
  ClockStepTest() : DbTest("clockstep") {}
  static constexpr int kRows = 200;
  static constexpr int kMps = 50;

  /// kRows WhatsApp deliveries in one run (slot kStepT0, deadline kStepT0 + 5 min), planned `spacing`
  /// ms apart from kStepT0.
  void seed(Millis spacing) {
    auto run = test_support::add_content_and_run(*db_, kStepT0 - 3'600'000);
    ASSERT_EQ(run, 1);
    db_->write_tx([&] {
      for (int i = 0; i < kRows; ++i) {
        std::string id = "adv-" + std::to_string(i);
        test_support::add_whatsapp_advisor(*db_, id, kStepT0 - 3'600'000);
        auto d = test_support::planned_delivery(1, id, "2026-11-28", kStepT0, kStepT0 + i * spacing, kStepT0 - 3'600'000);
        ASSERT_TRUE(store::DeliveryInsert(*db_, d));
      }
    });
    test_support::set_run_window(*db_, 1, kStepT0);
  }

  /// Runs the dispatch on `clock` (20 ms of steady and wall time per real millisecond, bounded
  /// to 10 simulated minutes of steady time: a dispatch that stalls fails the test).
  engine::DispatchSummary dispatch(ManualClock& clock, SteppingTransport& t) {
    Config cfg = parse_config("[database]\npath = \"" + db_path() +
                                  "\"\n[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = " +
                                  std::to_string(kMps) + "\n",
                              "");
    const std::string owner = "clock-step-test";
    EXPECT_TRUE(store::RunAcquireLease(*db_, 1, owner, clock.now(), cfg.dispatch.lease_ms).acquired);
    // CLOCK_STEP_TEST_LOG=1 shows dispatch's log on stderr.
    return test_support::run_dispatch_ticking(cfg, clock, t, owner, {1}, "CLOCK_STEP_TEST_LOG");
  }
};

TEST_F(ClockStepTest, ForwardStepPastDeadlineAndDrainStillAttemptsEveryDelivery) {
  seed(1000 / kMps);  // planned at the sender's rate: most rows are still waiting at the step
  if (HasFatalFailure()) return;
  ManualClock clock(kStepT0 - 1000);
  SteppingTransport t(clock);
  t.on_request = [&](int n) {
    if (n == 20) clock.step_wall(16 * 60'000);  // past deadline (5 min) + drain (10 min)
  };
  auto s = dispatch(clock, t);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND attempts = 0"), 0);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'accepted'"), kRows);
  EXPECT_EQ(s.accepted, kRows);
  EXPECT_EQ(s.dead, 0);
  ASSERT_EQ(s.runs_closed.size(), 1U);
  // Deadlines stay wall-clock truths: the rows sent after the step are late.
  EXPECT_GE(scalar("SELECT COUNT(*) FROM deliveries WHERE accepted_at > deadline_at"), kRows - 25);
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM deliveries WHERE deadline_at != " + std::to_string(kStepT0 + 300'000)), 0);
}

TEST_F(ClockStepTest, BackwardStepKeepsSendingAtTheConfiguredRate) {
  seed(0);  // every row due at the slot: the token bucket alone paces them
  if (HasFatalFailure()) return;
  ManualClock clock(kStepT0 - 1000);
  SteppingTransport t(clock);
  t.on_request = [&](int n) {
    if (n == 20) clock.step_wall(-120'000);
  };
  auto s = dispatch(clock, t);
  EXPECT_EQ(s.accepted, kRows);
  ASSERT_EQ(s.runs_closed.size(), 1U);
  auto steady = t.steady();
  ASSERT_EQ(steady.size(), static_cast<std::size_t>(kRows));
  // kRows at kMps a second is 4 s of steady time (plus the burst); a bucket that stopped
  // refilling until the wall clock caught up would take two minutes more.
  Millis span = steady.back() - steady.front();
  EXPECT_LT(span, 1000 * kRows / kMps + 2000) << "steady ms from the first send to the last";
  EXPECT_GE(span, 1000 * (kRows - 5) / kMps - 200);
}

}  // namespace
}  // namespace daybreak
