#pragma once
// Nothing in the library reads the wall clock directly: a Clock is passed in, so tests and the
// demo can run a whole night and morning in fake or compressed time.
//
// Two readings (docs/architecture.md "Time"): now() is the wall clock, for instants shared
// between processes or shown to people (leases, deadlines, planned times, ledger timestamps);
// steady_ms() never jumps, and paces the process (token buckets, heartbeat and polling
// cadence, timers, backoff waits). A wall-clock step (NTP, an operator's `date -s`) moves
// now() and not steady_ms(); comparing the two is how a step is detected (StepDetector).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "domain/types.hpp"

namespace daybreak {

/// What a thread waiting in Clock::wait_until shows the threads that may wake it: whether it is
/// asleep, and when (real steady time) its timeout wakes it anyway. Written by the waiter and read
/// by a notifier, both under the wait's mutex. A notification that is not worth its wake-up can
/// be left out: the waiter checks its predicate before each sleep and after each timeout.
struct WakeWindow {
  bool asleep = false;
  std::chrono::steady_clock::time_point wakes_at{};
  /// True when the waiter is asleep and its own timeout is more than `slack` away: only then
  /// does a notify make the waiter see an event sooner than it would anyway.
  [[nodiscard]] bool worth_waking(std::chrono::nanoseconds slack) const;
  /// The waiter is about to sleep for `real` at most.
  void sleeping_for(std::chrono::nanoseconds real);
};

/// Source of "now" and of waiting until a future instant.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Current instant, ms since the epoch.
  [[nodiscard]] virtual Millis now() const = 0;
  /// Monotonic time in this clock's milliseconds (scaled like now() on a compressed clock);
  /// its origin is arbitrary: only differences mean anything.
  [[nodiscard]] virtual Millis steady_ms() const = 0;
  /// Real duration that corresponds to `delta` microseconds of this clock's time (a compressed
  /// clock shortens it); used to turn "wait until t" into a condition-variable timeout that ends
  /// at the millisecond waited for, not up to a millisecond after it.
  [[nodiscard]] virtual std::chrono::nanoseconds real_duration_us(Micros delta) const = 0;
  /// The same two readings in microseconds, for measuring what a millisecond is too coarse for
  /// (dispatch's lag_us). now_us() / 1000 is now() and steady_us() / 1000 is steady_ms() read at
  /// the same instant. A clock that keeps only milliseconds gives the millisecond × 1000.
  [[nodiscard]] virtual Micros now_us() const { return now() * 1000; }
  [[nodiscard]] virtual Micros steady_us() const { return steady_ms() * 1000; }
  /// Waits on `cv` until now() >= t or a notification; returns false on timeout reached. The
  /// wait is also bounded on the steady clock by t - now() as measured at the call, so a
  /// backward wall-clock step during the wait does not stretch it (a forward one ends it).
  /// Both are measured in microseconds: a wait for t ends as the clock turns t, not up to a
  /// millisecond later (dispatch's sends leave on such waits: their lag).
  /// `window`, when given, is kept up to date for notifiers (WakeWindow).
  template <typename Pred>
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Millis t, Pred pred,
                  WakeWindow* window = nullptr) const {
    const Micros t_us = t * 1000;
    const Micros steady_end = steady_us() + (t_us - now_us());
    while (!pred()) {
      Micros n = now_us();
      Micros s = steady_us();
      if (n >= t_us || s >= steady_end) return false;
      auto real = real_duration_us(std::min(t_us - n, steady_end - s));
      if (real > std::chrono::seconds(1)) real = std::chrono::seconds(1);  // re-check: the clock may be stepped
      if (window != nullptr) window->sleeping_for(real);
      cv.wait_for(lock, real);
      if (window != nullptr) window->asleep = false;
    }
    return true;
  }
};

/// The real system clock.
class SystemClock final : public Clock {
 public:
  [[nodiscard]] Millis now() const override;
  [[nodiscard]] Millis steady_ms() const override;
  [[nodiscard]] std::chrono::nanoseconds real_duration_us(Micros delta) const override;
  [[nodiscard]] Micros now_us() const override;
  [[nodiscard]] Micros steady_us() const override;
};

/// A clock that starts at `sim_origin` when the real clock shows `real_origin` and runs `scale`
/// times faster: the demo's compressed night. Several processes given the same origins agree.
/// Its steady time is the real steady clock times the scale (a wall step still shows as one).
class ScaledClock final : public Clock {
 public:
  ScaledClock(Millis sim_origin, Millis real_origin, double scale);
  [[nodiscard]] Millis now() const override;
  [[nodiscard]] Millis steady_ms() const override;
  [[nodiscard]] std::chrono::nanoseconds real_duration_us(Micros delta) const override;
  [[nodiscard]] Micros now_us() const override;
  [[nodiscard]] Micros steady_us() const override;
  [[nodiscard]] double scale() const { return scale_; }

 private:
  Millis sim_origin_;
  Millis real_origin_;
  double scale_;
};

/// A manually driven clock for tests: time moves only when the test says so. advance() is time
/// passing (wall and steady together); step_wall() is a wall-clock step (steady time stays).
/// It keeps microseconds (now_us, advance_us), so a test can place an instant inside a millisecond.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start) : now_us_(start * 1000) {}
  [[nodiscard]] Millis now() const override { return floor_ms(now_us_.load()); }
  [[nodiscard]] Millis steady_ms() const override { return floor_ms(steady_us_.load()); }
  [[nodiscard]] Micros now_us() const override { return now_us_.load(); }
  [[nodiscard]] Micros steady_us() const override { return steady_us_.load(); }
  /// Waiting costs no real time beyond a short yield, so loops that wait still make progress.
  [[nodiscard]] std::chrono::nanoseconds real_duration_us(Micros) const override { return std::chrono::milliseconds(1); }
  /// Sets the wall clock; a move forward is time passing (steady time moves with it).
  void set(Millis t) {
    Micros d = t * 1000 - now_us_.exchange(t * 1000);
    if (d > 0) steady_us_.fetch_add(d);
  }
  void advance(Millis d) { advance_us(d * 1000); }
  void advance_us(Micros d) {
    steady_us_.fetch_add(d);
    now_us_.fetch_add(d);
  }
  void step_wall(Millis d) { now_us_.fetch_add(d * 1000); }

 private:
  /// Rounds toward minus infinity, as a real clock's millisecond reading does.
  static Millis floor_ms(Micros us) { return us >= 0 ? us / 1000 : -((-us + 999) / 1000); }
  std::atomic<Micros> now_us_;
  std::atomic<Micros> steady_us_{0};
};

/// Notices wall-clock steps: each observe() compares how far the wall clock moved since the
/// previous one with how far the steady clock moved; a difference beyond `threshold_ms` is a
/// step of that size (positive: the wall clock jumped forward). Pure: the caller reads the clock.
class StepDetector {
 public:
  explicit StepDetector(Millis threshold_ms = 2000) : threshold_(threshold_ms) {}
  /// The step seen since the previous call (0 when none, and on the first call).
  Millis observe(Millis wall, Millis steady) {
    Millis step = 0;
    if (primed_) {
      Millis d = (wall - wall_) - (steady - steady_);
      if (d > threshold_ || d < -threshold_) step = d;
    }
    primed_ = true;
    wall_ = wall;
    steady_ = steady;
    return step;
  }

 private:
  Millis threshold_;
  bool primed_ = false;
  Millis wall_ = 0;
  Millis steady_ = 0;
};

/// Real wall-clock milliseconds; the one place the library reads it, for SystemClock/ScaledClock.
Millis wall_clock_ms();
/// Real steady-clock milliseconds (arbitrary origin), for SystemClock/ScaledClock.
Millis steady_clock_ms();
/// The same two readings in microseconds.
Micros wall_clock_us();
Micros steady_clock_us();

}  // namespace daybreak
