#pragma once
// Nothing in the library reads the wall clock directly: a Clock is passed in, so tests and the
// demo can run a whole night and morning in fake or compressed time.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "domain/types.hpp"

namespace daybreak {

/// Source of "now" and of waiting until a future instant.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Current instant, ms since the epoch.
  [[nodiscard]] virtual Millis now() const = 0;
  /// Real duration that corresponds to `delta` of this clock's time (a compressed clock
  /// shortens it); used to turn "wait until t" into a condition-variable timeout.
  [[nodiscard]] virtual std::chrono::nanoseconds real_duration(Millis delta) const = 0;
  /// Waits on `cv` until now() >= t or a notification; returns false on timeout reached.
  template <typename Pred>
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Millis t, Pred pred) const {
    while (!pred()) {
      Millis n = now();
      if (n >= t) return false;
      auto real = real_duration(t - n);
      if (real > std::chrono::seconds(1)) real = std::chrono::seconds(1);  // re-check: the clock may be stepped
      cv.wait_for(lock, real);
    }
    return true;
  }
};

/// The real system clock.
class SystemClock final : public Clock {
 public:
  [[nodiscard]] Millis now() const override;
  [[nodiscard]] std::chrono::nanoseconds real_duration(Millis delta) const override;
};

/// A clock that starts at `sim_origin` when the real clock shows `real_origin` and runs `scale`
/// times faster: the demo's compressed night. Several processes given the same origins agree.
class ScaledClock final : public Clock {
 public:
  ScaledClock(Millis sim_origin, Millis real_origin, double scale);
  [[nodiscard]] Millis now() const override;
  [[nodiscard]] std::chrono::nanoseconds real_duration(Millis delta) const override;
  [[nodiscard]] double scale() const { return scale_; }

 private:
  Millis sim_origin_;
  Millis real_origin_;
  double scale_;
};

/// A manually driven clock for tests: time moves only when the test says so.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start) : now_(start) {}
  [[nodiscard]] Millis now() const override { return now_.load(); }
  /// Waiting costs no real time beyond a short yield, so loops that wait still make progress.
  [[nodiscard]] std::chrono::nanoseconds real_duration(Millis) const override { return std::chrono::milliseconds(1); }
  void set(Millis t) { now_.store(t); }
  void advance(Millis d) { now_.fetch_add(d); }

 private:
  std::atomic<Millis> now_;
};

/// Real wall-clock milliseconds; the one place the library reads it, for SystemClock/ScaledClock.
Millis wall_clock_ms();

}  // namespace daybreak
