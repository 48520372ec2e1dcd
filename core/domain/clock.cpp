#include "domain/clock.hpp"

#include <cmath>

namespace daybreak {

Millis wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Millis steady_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Micros wall_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Micros steady_clock_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Millis SystemClock::now() const { return wall_clock_ms(); }

Micros SystemClock::now_us() const { return wall_clock_us(); }

bool WakeWindow::worth_waking(std::chrono::nanoseconds slack) const {
  return asleep && wakes_at - std::chrono::steady_clock::now() > slack;
}

void WakeWindow::sleeping_for(std::chrono::nanoseconds real) {
  asleep = true;
  wakes_at = std::chrono::steady_clock::now() + real;
}

Micros SystemClock::steady_us() const { return steady_clock_us(); }

Millis SystemClock::steady_ms() const { return steady_clock_ms(); }

std::chrono::nanoseconds SystemClock::real_duration_us(Micros delta) const {
  return std::chrono::microseconds(delta < 0 ? 0 : delta);
}

ScaledClock::ScaledClock(Millis sim_origin, Millis real_origin, double scale)
    : sim_origin_(sim_origin), real_origin_(real_origin), scale_(scale > 0 ? scale : 1.0) {}

Millis ScaledClock::now() const {
  auto real_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  double elapsed_ms = (static_cast<double>(real_ns) / 1e6 - static_cast<double>(real_origin_)) * scale_;
  return sim_origin_ + static_cast<Millis>(std::floor(elapsed_ms));
}

Millis ScaledClock::steady_ms() const {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                .count();
  return static_cast<Millis>(std::floor(static_cast<double>(ns) / 1e6 * scale_));
}

Micros ScaledClock::now_us() const {
  auto real_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  double elapsed_us = (static_cast<double>(real_ns) / 1e3 - static_cast<double>(real_origin_) * 1e3) * scale_;
  return sim_origin_ * 1000 + static_cast<Micros>(std::floor(elapsed_us));
}

Micros ScaledClock::steady_us() const {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                .count();
  return static_cast<Micros>(std::floor(static_cast<double>(ns) / 1e3 * scale_));
}

std::chrono::nanoseconds ScaledClock::real_duration_us(Micros delta) const {
  if (delta < 0) delta = 0;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(delta) * 1e3 / scale_));
}

}  // namespace daybreak
