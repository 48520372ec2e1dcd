#pragma once
// The senders of a dispatch (provider accounts) and the one channel choice: which sender of a
// channel takes a delivery, and which of an advisor's channels comes next. Pacing runs on the
// steady clock: the token bucket, the breaker's windows and cool-downs and a pause do not move
// when the wall clock is stepped. Used by the dispatcher (scheduler thread only) and, for the
// channel choice, by the planner.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "channels/channel.hpp"
#include "config/config.hpp"
#include "domain/breaker.hpp"
#include "domain/types.hpp"
#include "engine/token_bucket.hpp"

namespace daybreak::engine {

/// Index in `preference[0, n)` of the first channel at or after `from` for which `usable(channel)`
/// holds, or -1. The planner's first channel and dispatch's next channel after a failure are
/// both this choice, with "usable" = the advisor can be reached on it and a sender serves it.
template <typename Usable>
int first_usable_channel(const Channel* preference, std::size_t n, std::size_t from, Usable&& usable) {
  for (std::size_t i = from; i < n; ++i) {
    if (usable(preference[i])) return static_cast<int>(i);
  }
  return -1;
}

/// One sender and its pacing state.
struct SenderState {
  const SenderConfig* cfg = nullptr;
  std::unique_ptr<channels::Adapter> adapter;
  TokenBucket bucket;
  Breaker breaker;
  Millis paused_until = 0;  ///< steady time
  int in_flight = 0;
  std::int64_t sent = 0;
  std::int64_t failed = 0;
  BreakerState last_state = BreakerState::closed;
  bool credentials_failed = false;  ///< the latest answer rejected its credentials
  /// Its provider account: SenderConfig::account, else (WhatsApp) one per distinct access token
  /// ("token:" and a hash of it, never the token). Account-level blocks stop all its senders.
  std::string account{};
  /// A provider block (docs/whatsapp-errors.md): until this steady time the number or its
  /// account is restricted; `blocked_scope` says which, `blocked_reason` the code and message.
  Millis blocked_until = 0;
  ErrorScope blocked_scope = ErrorScope::phone_number;
  std::string blocked_reason{};
  bool certificate_failed = false;  ///< the latest answer was a certificate that did not verify
  /// When (steady) its queue was last swept for rows past their give-up time while it could not
  /// send (Dispatcher::expire_queued): at most once a second.
  Millis queue_swept_at = 0;
  /// Requests it may have out at once: an email sender's `concurrency` (its SMTP sessions), else
  /// unbounded (0). More would only wait in the transport while taking dispatch.max_in_flight.
  /// After a certificate failure, on any channel, one probe at a time until one is accepted.
  [[nodiscard]] bool at_concurrency_limit() const {
    if (certificate_failed) return in_flight >= 1;
    if (cfg->channel != Channel::email || cfg->concurrency <= 0) return false;
    return in_flight >= cfg->concurrency;
  }
};

/// What the channel choice needs to know of one delivery.
struct Reach {
  const Channel* chans = nullptr;  ///< the advisor's preference list
  std::size_t nchans = 0;
  std::size_t current = 0;  ///< the channel it is on now
  bool phone = false;       ///< has a WhatsApp address
  bool email = false;       ///< has an email address
};

class SenderPool {
 public:
  SenderPool() = default;
  /// Every configured sender, with its adapter (which reads its secret) and a full bucket at `steady`.
  SenderPool(const Config& cfg, Millis steady);

  [[nodiscard]] std::size_t size() const { return senders_.size(); }
  SenderState& operator[](std::size_t i) { return senders_[i]; }
  const SenderState& operator[](std::size_t i) const { return senders_[i]; }
  auto begin() { return senders_.begin(); }
  auto end() { return senders_.end(); }
  [[nodiscard]] auto begin() const { return senders_.begin(); }
  [[nodiscard]] auto end() const { return senders_.end(); }

  /// The sender with this id, or -1.
  [[nodiscard]] int index_of(const std::string& id) const;
  [[nodiscard]] bool has_channel(Channel ch) const;
  /// Can reach the delivery on `ch`: a sender serves it and the advisor has an address there.
  [[nodiscard]] bool addressable(const Reach& r, Channel ch) const;

  /// The sender of `ch` to use: `preferred` while it is healthy, else the least loaded relative
  /// to its rate (in flight plus `queued(i)`) among those whose breaker lets traffic through;
  /// -1 when none does. `exclude` (when >= 0) is never chosen.
  [[nodiscard]] int pick(Channel ch, int preferred, Millis steady, const std::function<std::size_t(std::size_t)>& queued,
                         int exclude = -1) const;
  /// The next channel after the current one the delivery can be reached on, or -1.
  [[nodiscard]] int next_channel(const Reach& r) const;
  /// The next channel after the current one that can send now, with its sender; {-1, -1} when none.
  [[nodiscard]] std::pair<int, int> next_usable_channel(const Reach& r, Millis steady,
                                                        const std::function<std::size_t(std::size_t)>& queued) const;
  /// When the first open breaker of `ch` turns half-open, as a wall-clock instant after `now`.
  [[nodiscard]] Millis channel_reopens_at(Channel ch, Millis now, Millis steady) const;

  /// The provider blocked sender `i`'s number (scope phone_number) or its whole account (scope
  /// account) for `pause_ms`: opens the breaker of that sender, or of every sender of the same
  /// channel and account, for that long. Returns the senders newly blocked (not blocked before).
  std::vector<std::size_t> block(std::size_t i, ErrorScope scope, Millis pause_ms, const std::string& reason, Millis steady);

  /// Feeds sender `i`'s breaker with one outcome. Returns its state when that changed, else nullopt.
  std::optional<BreakerState> record(std::size_t i, bool failure, Millis steady);

 private:
  std::vector<SenderState> senders_;
  std::unordered_map<std::string, int> index_;
};

}  // namespace daybreak::engine
