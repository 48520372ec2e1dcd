#pragma once
// SLA math over delivery outcomes: the
// figures sla-report stores and dispatch alerts on. Pure: the caller loads the outcomes.
#include <cstddef>
#include <iosfwd>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/types.hpp"

namespace daybreak {

/// A short string kept once per process: a tier, channel or sender id, of which a ledger has a
/// handful of distinct values. 8 bytes in a DeliveryOutcome where a std::string takes 32, so a
/// run's outcomes (a million rows for the closing report) are not three strings each. Built
/// implicitly from a string (interned under a lock, behind a per-thread cache); reads as a
/// `const std::string&`. The table only grows, by the distinct values ever seen.
class Label {
 public:
  Label() noexcept;  ///< ""
  Label(std::string_view s);  // NOLINT: implicit, as the std::string member it replaces
  Label(const std::string& s) : Label(std::string_view(s)) {}  // NOLINT
  Label(const char* s) : Label(std::string_view(s)) {}          // NOLINT
  [[nodiscard]] const std::string& str() const noexcept { return *s_; }
  operator const std::string&() const noexcept { return *s_; }  // NOLINT
  friend bool operator==(const Label& a, std::string_view b) noexcept { return *a.s_ == b; }
  friend std::ostream& operator<<(std::ostream& os, const Label& l);

 private:
  const std::string* s_;
};

/// An optional instant in 8 bytes (std::optional<Millis> takes 16): the read side of
/// std::optional (has_value, bool, *, value_or) and conversions both ways. Absent is stored as
/// the smallest Millis, which no instant is.
class OptMillis {
 public:
  constexpr OptMillis() noexcept = default;
  constexpr OptMillis(std::nullopt_t) noexcept {}               // NOLINT
  constexpr OptMillis(Millis v) noexcept : v_(v) {}              // NOLINT
  constexpr OptMillis(const std::optional<Millis>& o) noexcept : v_(o ? *o : kNone) {}  // NOLINT
  [[nodiscard]] constexpr bool has_value() const noexcept { return v_ != kNone; }
  constexpr explicit operator bool() const noexcept { return has_value(); }
  constexpr Millis operator*() const noexcept { return v_; }
  [[nodiscard]] constexpr Millis value_or(Millis d) const noexcept { return has_value() ? v_ : d; }
  constexpr operator std::optional<Millis>() const noexcept {  // NOLINT
    return has_value() ? std::optional<Millis>(v_) : std::nullopt;
  }
  friend constexpr bool operator==(OptMillis a, OptMillis b) noexcept { return a.v_ == b.v_; }
  friend std::ostream& operator<<(std::ostream& os, OptMillis t);

 private:
  static constexpr Millis kNone = std::numeric_limits<Millis>::min();
  Millis v_ = kNone;
};

/// What happened to one delivery, as far as the SLA is concerned. Compact (80 bytes, no heap:
/// Label and OptMillis above): a report holds one per delivery of a run or a day at once.
struct DeliveryOutcome {
  Label tier;
  Label channel;  ///< the channel it ended on (fallback included)
  Label sender;
  Millis planned_at = 0;
  Millis deadline_at = 0;
  OptMillis first_sent_at;  ///< first request sent on any channel
  OptMillis accepted_at;    ///< a provider accepted it
  // From status callbacks (provider timestamps, folded with MIN by store/status_events.cpp):
  OptMillis delivered_at;   ///< earliest delivered (or read: read implies delivered) status
  OptMillis read_at;        ///< earliest read status
  DeliveryState state = DeliveryState::planned;
  bool possible_duplicate = false;  ///< resent after an uncertain attempt
  bool status_failed = false;       ///< a `failed` status is recorded on it (last_error "status failed: …")
};

/// What the status callbacks say about one delivery: the delivery truth beside acceptance.
/// - delivered_on_time: a delivered (or read) status whose provider timestamp is <= deadline_at
/// - delivered: a delivered or read status (any time), or the row's state says so
/// - read: a read status (any time), or the row is `read`
/// - failed_after_accept: still `accepted`, a `failed` status, and no delivered/read status
/// - unknown: still `accepted`, and no delivered, read or failed status yet
/// Only accepted-family deliveries (accepted, delivered, read) can be any of these.
bool delivered_on_time(const DeliveryOutcome& o);
bool status_delivered(const DeliveryOutcome& o);
bool status_read(const DeliveryOutcome& o);
bool failed_after_accept(const DeliveryOutcome& o);
bool status_unknown(const DeliveryOutcome& o);

/// Distribution of a lag, in ms, by the nearest-rank method (see percentiles()); all zero when n == 0.
struct LagStats {
  double p50 = 0, p95 = 0, p99 = 0, max = 0;
  std::size_t n = 0;
};

/// The SLA figures of a set of deliveries (a run, or one tier/channel/sender of it).
/// eligible = on_time + late + failed + dead; cancelled deliveries are not eligible.
struct SlaFigures {
  std::size_t eligible = 0;
  std::size_t on_time = 0;  ///< accepted (or delivered/read) with accepted_at <= deadline_at
  std::size_t late = 0;     ///< accepted after the deadline, or accepted with no accepted_at recorded
  std::size_t failed = 0;   ///< not yet accepted and not final: planned, sending, retry_wait, uncertain
  std::size_t dead = 0;
  std::size_t cancelled = 0;
  std::size_t possible_duplicates = 0;  ///< over eligible deliveries
  double sla_pct = 100;                 ///< 100 × on_time / eligible; 100 when nothing is eligible
  LagStats lag_ms;                      ///< first_sent_at − planned_at, over eligible deliveries that were sent
  LagStats accept_lag_ms;               ///< accepted_at − planned_at, over accepted eligible deliveries
  // Delivery truth from status callbacks (see delivered_on_time() and friends); the shares are
  // over `eligible`, like sla_pct, and 100/0 when nothing is eligible.
  std::size_t delivered_on_time = 0;    ///< delivered (or read) status at or before the deadline
  std::size_t delivered = 0;            ///< delivered (or read) status at any time
  std::size_t read = 0;                 ///< read status at any time
  std::size_t unknown = 0;              ///< accepted, no delivered/read/failed status yet
  std::size_t failed_after_accept = 0;  ///< accepted, then a failed status
  double delivered_sla_pct = 100;       ///< 100 × delivered_on_time / eligible
  double read_pct = 0;                  ///< 100 × read / eligible
  double unknown_pct = 0;               ///< 100 × unknown / eligible
  double failed_after_accept_pct = 0;   ///< 100 × failed_after_accept / eligible
};

/// The SLA figures of all `outcomes` together.
SlaFigures compute_sla(const std::vector<DeliveryOutcome>& outcomes);

/// The SLA figures per distinct value of one field, e.g. compute_sla_by(o, &DeliveryOutcome::tier).
std::map<std::string, SlaFigures> compute_sla_by(const std::vector<DeliveryOutcome>& outcomes,
                                                 Label DeliveryOutcome::*key);

/// Live success % at `now`: over eligible deliveries that reached a final outcome (accepted,
/// delivered, read, dead) or whose deadline has passed (deadline_at < now), the share on
/// time, × 100; 100 when there are none yet. Dispatch alerts when this drops below 97%.
double live_success_pct(const std::vector<DeliveryOutcome>& outcomes, Millis now);

/// The same live figure on the delivered measure: over eligible deliveries whose delivery truth
/// is settled (a delivered/read or failed status, dead) or whose deadline has passed, the share
/// delivered on time, × 100; 100 when there are none yet.
double live_delivered_pct(const std::vector<DeliveryOutcome>& outcomes, Millis now);

/// p50/p95/p99/max of `values` by the nearest-rank method: the p-th percentile is the
/// smallest value with at least p% of the values at or below it, i.e. sorted[ceil(p/100·n) − 1].
/// It always returns an observed value (no interpolation), so "p99 lag = 840 ms" means some
/// delivery really waited 840 ms.
LagStats percentiles(std::vector<Millis> values);

}  // namespace daybreak
