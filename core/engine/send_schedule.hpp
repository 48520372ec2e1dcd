#pragma once
// What a dispatch holds in memory and when each delivery is next due: the items (one per
// delivery not final at load, plus the few an operator brings back), the queue of rows not
// claimed yet (by due time), and per sender the claimed rows (by due time) and those due now
// (earliest deadline first, then tier). Scheduler thread only. Not to be confused with
// domain/schedule (when the nightly and morning jobs start).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <queue>
#include <unordered_map>
#include <array>
#include <vector>

#include "domain/types.hpp"
#include "engine/sender_pool.hpp"
#include "engine/string_pool.hpp"

namespace daybreak::engine {

/// One delivery held in memory for the length of the dispatch. Kept small (a million of them
/// must fit a few hundred MB: docs/performance.md, peak RSS): strings live in the dispatcher's pool.
struct Item {
  std::int64_t delivery_id = 0;
  Millis planned_at = 0;
  Millis deadline = 0;
  Millis give_up_after = 0;  ///< deadline + drain period, or from an operator's resend
  Millis due = 0;
  Millis first_sent_at = 0;
  Millis accepted_at = 0;
  StringPool::Ref advisor_id = 0, name = 0, phone = 0, email = 0;
  std::uint32_t run = 0;
  std::uint32_t content = 0;
  std::array<Channel, 3> chans{};
  std::uint8_t nchans = 0;
  std::uint8_t chan_idx = 0;  ///< position in chans (== the row's channel_index)
  std::int16_t sender = -1;
  std::uint8_t tier_rank = 0;
  DeliveryState state = DeliveryState::planned;
  std::uint16_t attempts = 0;
  std::uint8_t attempts_on_channel = 0;
  bool possible_dup = false;
  bool emergency = false;  ///< content was substituted from the emergency pool
  bool claiming = false;   ///< a claim for it is queued or committing; its outcome is not known yet
  bool urgent = false;     ///< of a run of kind urgent: goes before routine rows on its sender
  std::uint8_t language = 0;  ///< index into the dispatcher's languages
  std::uint32_t gen = 0;  ///< bumps whenever the item is re-queued; stale heap entries are skipped

  [[nodiscard]] Channel channel() const { return chans[chan_idx]; }
  /// What the channel choice (SenderPool) needs of it.
  [[nodiscard]] Reach reach() const { return {chans.data(), nchans, chan_idx, phone != 0, email != 0}; }
};

struct QEntry {
  Millis due;
  std::uint8_t tier;
  std::uint32_t idx;
  std::uint32_t gen;
  bool operator>(const QEntry& o) const { return due != o.due ? due > o.due : (tier != o.tier ? tier > o.tier : idx > o.idx); }
};
/// Among deliveries whose time has come: an urgent run's rows first (then the same order among
/// them), then earliest deadline first, then highest tier, then the
/// earliest planned; at a tie a retry goes before a first attempt, then load order. A retry keeps
/// its planned time: in a burst (every row planned at one instant) it goes out as soon as its
/// backoff is over instead of after every first attempt still queued, so the retries do not
/// form a tail after the last first attempt (drain efficiency, docs/performance.md).
struct EEntry {
  Millis deadline;
  std::uint8_t tier;
  Millis planned_at;
  bool retry;
  std::uint32_t idx;
  bool urgent;
  bool operator>(const EEntry& o) const {
    if (urgent != o.urgent) return o.urgent;
    if (deadline != o.deadline) return deadline > o.deadline;
    if (tier != o.tier) return tier > o.tier;
    if (planned_at != o.planned_at) return planned_at > o.planned_at;
    if (retry != o.retry) return o.retry;
    return idx > o.idx;
  }
};
template <typename T>
using MinHeap = std::priority_queue<T, std::vector<T>, std::greater<T>>;

class SendSchedule {
 public:
  std::vector<Item> items;
  MinHeap<QEntry> waiting;                // not claimed yet, by due time
  std::vector<MinHeap<QEntry>> claimed;   // per sender: claimed, by due time
  std::vector<MinHeap<EEntry>> eligible;  // per sender: due now, by deadline then tier

  explicit SendSchedule(std::size_t senders = 0) : claimed(senders), eligible(senders) {}

  /// Ends the load: sorts the items by delivery id (find searches them directly: no separate
  /// index, 16 MB fewer at 1M) and queues those `queue_it(idx)` accepts, in one heapify over an
  /// exactly sized vector (not a million pushes into a doubling one).
  void finish_load(const std::function<bool(std::uint32_t)>& queue_it);
  /// An item added after the load (an operator's resend or replay of a row final at load).
  std::uint32_t add(Item it);
  /// The items index of a delivery, or -1 when this dispatch does not hold it.
  [[nodiscard]] std::int64_t find(std::int64_t delivery_id) const;
  /// Queues item `idx` at its due time (not claimed yet).
  void queue(std::uint32_t idx) { waiting.push({items[idx].due, items[idx].tier_rank, idx, items[idx].gen}); }
  /// Deliveries claimed or due on sender `s`.
  [[nodiscard]] std::size_t queued_on(std::size_t s) const { return claimed[s].size() + eligible[s].size(); }

  /// The wall-clock instant to wake at: the next claim (due - claim_lead), the next claimed row's
  /// due time, a sender's next token or the end of its pause (steady time, turned into a wait
  /// from `now`); at most a second away.
  [[nodiscard]] Millis next_wake(Millis now, Millis steady, Millis claim_lead, SenderPool& pool) const;

  /// The wall clock moved `step` ms against the steady clock: waits this process set itself
  /// (retry backoff, uncertain grace) move with it, claimed rows become due now, planned times
  /// stay (wall-clock truths). Stale entries go. Returns how many waits moved.
  std::size_t shift_after_step(Millis step, Millis now);
  /// Empties the per-sender queues (a graceful stop): the delivery ids that were claimed.
  std::vector<std::int64_t> drain_claimed();
  /// Frees everything (every run closed and nothing in flight).
  void clear();

 private:
  std::size_t loaded_ = 0;  ///< items[0, loaded_) are sorted by delivery_id
  std::unordered_map<std::int64_t, std::uint32_t> added_;
};

}  // namespace daybreak::engine
