#include "engine/send_schedule.hpp"

#include <algorithm>

namespace daybreak::engine {

void SendSchedule::finish_load(const std::function<bool(std::uint32_t)>& queue_it) {
  items.shrink_to_fit();
  // In id order (the rows arrive nearly so): find binary-searches the items themselves.
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.delivery_id < b.delivery_id; });
  loaded_ = items.size();
  std::vector<QEntry> initial;
  initial.reserve(items.size());
  for (std::uint32_t i = 0; i < items.size(); ++i) {
    if (queue_it(i)) initial.push_back({items[i].due, items[i].tier_rank, i, items[i].gen});
  }
  waiting = MinHeap<QEntry>(std::greater<QEntry>(), std::move(initial));
}

std::uint32_t SendSchedule::add(Item it) {
  auto idx = static_cast<std::uint32_t>(items.size());
  added_[it.delivery_id] = idx;
  items.push_back(std::move(it));
  return idx;
}

std::int64_t SendSchedule::find(std::int64_t delivery_id) const {
  const auto end = items.begin() + static_cast<std::ptrdiff_t>(loaded_);
  auto it = std::lower_bound(items.begin(), end, delivery_id,
                             [](const Item& item, std::int64_t id) { return item.delivery_id < id; });
  if (it != end && it->delivery_id == delivery_id) return it - items.begin();
  auto a = added_.find(delivery_id);
  return a == added_.end() ? std::int64_t{-1} : std::int64_t{a->second};
}

Millis SendSchedule::next_wake(Millis now, Millis steady, Millis claim_lead, SenderPool& pool) const {
  Millis t = now + 1000;
  if (!waiting.empty()) t = std::min(t, waiting.top().due - claim_lead);
  for (std::size_t s = 0; s < pool.size(); ++s) {
    if (!claimed[s].empty()) t = std::min(t, claimed[s].top().due);
    if (!eligible[s].empty() && !pool[s].at_concurrency_limit()) {  // at its limit: a response wakes us
      auto& st = pool[s];
      t = std::min(t, now + (std::max(st.paused_until, st.bucket.next_available(steady)) - steady));
    }
  }
  return std::max(t, now + 1);
}

std::size_t SendSchedule::shift_after_step(Millis step, Millis now) {
  std::size_t moved = 0;
  auto rebuild = [&](MinHeap<QEntry>& heap, bool is_claimed) {
    std::vector<QEntry> keep;
    keep.reserve(heap.size());
    while (!heap.empty()) {
      QEntry e = heap.top();
      heap.pop();
      Item& it = items[e.idx];
      if (e.gen != it.gen || is_final_state(it.state)) continue;  // stale entries go
      if (is_claimed) {
        e.due = std::min(e.due, now);
      } else if (it.attempts > 0 || it.state == DeliveryState::uncertain) {
        e.due += step;
        it.due += step;
        ++moved;
      } else {
        e.due = std::min(e.due, it.due);  // its planned time: a wall-clock truth, re-checked there
      }
      keep.push_back(e);
    }
    heap = MinHeap<QEntry>(std::greater<QEntry>(), std::move(keep));
  };
  rebuild(waiting, false);
  for (auto& q : claimed) rebuild(q, true);
  return moved;
}

std::vector<std::int64_t> SendSchedule::drain_claimed() {
  std::vector<std::int64_t> ids;
  for (auto& q : claimed) {
    for (; !q.empty(); q.pop()) ids.push_back(items[q.top().idx].delivery_id);
  }
  for (auto& q : eligible) {
    for (; !q.empty(); q.pop()) ids.push_back(items[q.top().idx].delivery_id);
  }
  return ids;
}

void SendSchedule::clear() {
  std::vector<Item>().swap(items);
  loaded_ = 0;
  added_.clear();
  waiting = MinHeap<QEntry>();
  for (auto& q : claimed) q = MinHeap<QEntry>();
  for (auto& q : eligible) q = MinHeap<EEntry>();
}

}  // namespace daybreak::engine
