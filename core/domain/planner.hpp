#pragma once
// The capacity-aware planner: gives every delivery of a run a sender and
// a planned send time inside the send window, so that no sender is planned above
// `utilisation × mps` in any one-second bucket, higher tiers go first, and a re-plan of the
// same input gives the same answer. Pure: no clock, no I/O; the caller stores the result.
//
// How it plans, per channel:
//   1. Sort the channel's items once by (tier_rank, stable hash of key, key): tiers in order,
//      a stable pseudo-random order inside each tier.
//   2. Fill sequentially from the start of the window: each next item goes to the sender whose
//      next free slot is earliest, so load follows mps and the rest of the window stays free
//      as retry headroom.
//   3. Inside each one-second bucket the bucket's sends are spread evenly over the second, each
//      with a hash-derived jitter inside its own sub-slot, so the tier order survives jitter.
//   When the channel does not fit under the cap, the whole channel is filled at 100% of mps
//   from the start of the window in the same order; the lowest-tier `shortfall` items are
//   marked over_capacity, and whatever does not fit even at 100% is planned at window.end.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "domain/result.hpp"
#include "domain/time.hpp"
#include "domain/types.hpp"

namespace daybreak {

/// One provider account the planner may load: its channel and its provider rate limit.
struct SenderCapacity {
  std::string sender_id;
  Channel channel = Channel::whatsapp;
  double mps = 0;  ///< provider limit, messages per second
};

/// One delivery to plan.
struct PlanItem {
  std::string key;    ///< stable per-delivery seed, e.g. "advisor_id|date": drives order and jitter
  int tier_rank = 0;  ///< 0 = highest; lower numbers are planned earlier
  Channel channel = Channel::whatsapp;
};

/// Everything the planner needs; the items' order does not change the plan.
struct PlanInput {
  Window window;
  std::vector<SenderCapacity> senders;
  double utilisation = 0.7;  ///< share of mps planned per second; the rest is retry headroom
  std::vector<PlanItem> items;
};

/// The plan for one item.
struct PlannedSend {
  std::size_t item = 0;  ///< index into PlanInput::items
  std::string sender_id;
  Millis planned_at = 0;       ///< inside [window.start, window.end]
  bool over_capacity = false;  ///< one of the `shortfall` lowest-priority items that did not fit under the cap
};

/// How much of one sender the plan uses, for the capacity report.
struct SenderLoad {
  std::string sender_id;
  Channel channel = Channel::whatsapp;
  double mps = 0;
  std::size_t assigned = 0;
  double cap_per_second = 0;           ///< floor(utilisation × mps), at least 1
  std::size_t peak_per_second = 0;     ///< most sends planned in one one-second bucket
  std::size_t capacity_in_window = 0;  ///< sends that fit under the cap in the whole window
};

/// The plan plus the numbers an operator needs at 21:30 to fix an infeasible run.
struct PlanResult {
  std::vector<PlannedSend> sends;   ///< same order as PlanInput::items
  bool feasible = true;             ///< every item fits under the cap
  std::size_t shortfall = 0;        ///< items that did not fit under the cap
  std::vector<SenderLoad> senders;  ///< same order as PlanInput::senders
  /// Provider rate (msg/s, summed over senders) the run needs for every item to fit in the
  /// window at the utilisation: Σ items / (window seconds × utilisation). Compare with Σ mps.
  double required_peak_mps = 0;
  /// Empty when feasible; otherwise one concrete clause per short channel, e.g.
  /// "whatsapp: 4000 of 20000 deliveries do not fit under 70% of 80 msg/s; add 1 whatsapp
  /// sender of 80 msg/s, or raise utilisation to 0.85".
  std::string recommendation;
};

/// Plans a run. Errors (code "bad_plan_input"): window.end < window.start, utilisation outside
/// (0, 1], a sender with an empty or duplicate id or an mps outside (0, 1e6], an item
/// whose channel has no sender.
Result<PlanResult> plan_run(const PlanInput& in);

/// A 64-bit hash of `key` that is the same on every build and platform (FNV-1a finished with
/// splitmix64), unlike std::hash: the planner's order and jitter, and any other per-delivery
/// randomness that must survive a re-plan or a restart, are seeded with it.
std::uint64_t stable_key_hash(std::string_view key);

/// The key plan-deliveries gives plan_run for one advisor's delivery of one day ("advisor_id|date"):
/// it decides the delivery's place inside its tier and its jitter.
std::string plan_item_key(std::string_view advisor_id, std::string_view date);

/// stable_key_hash(plan_item_key(advisor_id, date)) >> 1: non-negative, so SQLite's signed
/// integer order is the hash's order. The ledger leads its (date, advisor, slot) uniqueness index
/// with it (sql/007): a day is planned in (tier, hash) order, so the index then fills in nearly
/// the order its rows are inserted instead of at random. A function of the advisor and the date
/// only, so it never changes what counts as the same delivery.
std::int64_t delivery_order_key(std::string_view advisor_id, std::string_view date);

/// splitmix64's finaliser: turns one 64-bit value into a well-mixed other, to derive several
/// independent-looking random values from one seed.
std::uint64_t mix64(std::uint64_t x);

}  // namespace daybreak
