#pragma once
// A circuit breaker per sender: closed while the sender works;
// open when the failure ratio over a sliding window crosses a threshold (after a minimum number
// of requests), so traffic reroutes to healthy senders or the next channel; half-open after a
// cool-down, letting a few probe requests through; closed again when the probes succeed, open
// again (with a longer cool-down) when one fails. Pure: time is passed in.
#include <array>
#include <cstdint>
#include <string_view>

#include "domain/types.hpp"

namespace daybreak {

struct BreakerPolicy {
  Millis window_ms = 10000;       ///< failure ratio measured over this sliding window
  int min_requests = 10;          ///< no opening on fewer outcomes than this in the window
  double failure_ratio = 0.5;     ///< open at or above this share of failures
  Millis open_ms = 5000;          ///< first cool-down before half-open
  Millis max_open_ms = 60000;     ///< cool-downs double after each failed probe, up to this
  int half_open_probes = 3;       ///< requests let through while half-open; all must succeed
};

enum class BreakerState { closed, open, half_open };
std::string_view to_string(BreakerState s);

class Breaker {
 public:
  explicit Breaker(BreakerPolicy p = {}) : p_(p) {}

  /// True when a request may be sent now. While half-open it hands out up to
  /// `half_open_probes` permits; call it only when you will send.
  bool allow(Millis now);
  /// True when allow() would succeed, without taking a probe permit.
  [[nodiscard]] bool usable(Millis now) const;
  /// The outcome of a request sent through this breaker. `failure` counts sender-side failures
  /// only (timeouts, 5xx-like, credentials), never a problem of one recipient or message.
  void record(bool failure, Millis now);
  /// Opens it now whatever the window says (a failure no retry can mend: an email relay's
  /// certificate that does not verify). Its cool-down and half-open probes then run as usual.
  void force_open(Millis now);

  /// Opens it at once for `pause_ms` (at least the current remaining cool-down), whatever the
  /// window says: the provider said the sender is restricted (a number- or account-level block,
  /// docs/whatsapp-errors.md), a long pause rather than the usual short cool-down. Half-open after.
  void force_open(Millis now, Millis pause_ms);

  [[nodiscard]] BreakerState state(Millis now) const;
  /// When an open breaker turns half-open (meaningful while open).
  [[nodiscard]] Millis reopens_at() const { return open_until_; }
  [[nodiscard]] double failure_ratio(Millis now) const;
  /// Times it went closed → open (for metrics and alerts).
  [[nodiscard]] std::int64_t opened_count() const { return opened_; }

 private:
  static constexpr int kBuckets = 10;
  struct Bucket {
    Millis start = -1;
    int ok = 0;
    int failed = 0;
  };
  void trip(Millis now);
  Bucket& bucket(Millis now);
  void totals(Millis now, int& ok, int& failed) const;

  BreakerPolicy p_;
  std::array<Bucket, kBuckets> buckets_{};
  BreakerState state_ = BreakerState::closed;
  Millis open_until_ = 0;
  Millis cooldown_ = 0;
  int probes_out_ = 0;
  int probes_ok_ = 0;
  std::int64_t opened_ = 0;
};

}  // namespace daybreak
