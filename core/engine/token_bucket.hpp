#pragma once
// Per-sender rate limiter. Fed the steady clock (Clock::steady_ms, scaled on a compressed demo
// clock so it paces sends the same way): a wall-clock step does not stop or burst the refill.
#include <algorithm>

#include "domain/types.hpp"

namespace daybreak::engine {

/// A token bucket: `rate` tokens per second, holding at most `burst`.
class TokenBucket {
 public:
  TokenBucket(double rate, double burst, Millis now) : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}
  /// Takes one token if available at `now`.
  bool try_take(Millis now) {
    refill(now);
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return true;
    }
    return false;
  }
  /// When the next token will be available (now when one is).
  [[nodiscard]] Millis next_available(Millis now) {
    refill(now);
    if (tokens_ >= 1.0) return now;
    return now + static_cast<Millis>((1.0 - tokens_) * 1000.0 / rate_) + 1;
  }

 private:
  /// A time earlier than the last one (a caller's clock moved backward) re-anchors the bucket
  /// there, so it keeps refilling at its rate instead of waiting for the old time to return.
  void refill(Millis now) {
    if (now > last_) tokens_ = std::min(burst_, tokens_ + static_cast<double>(now - last_) * rate_ / 1000.0);
    last_ = now;
  }
  double rate_;
  double burst_;
  double tokens_;
  Millis last_;
};

}  // namespace daybreak::engine
