// The dispatcher's two parts that hold state apart from its loop: engine/sender_pool (which
// sender and which channel take a delivery) and engine/send_schedule (the items, their queues and
// the next wake-up). Pure in-memory; steady time is passed in.
#include <gtest/gtest.h>

#include <string>

#include "config/config.hpp"
#include "engine/send_schedule.hpp"
#include "engine/sender_pool.hpp"

namespace daybreak {
namespace {

Config two_whatsapp_one_email() {
  return parse_config(
      "[[whatsapp.senders]]\nid = \"wa-1\"\nphone_number_id = \"1\"\ntoken = \"t\"\nmps = 10\n"
      "[[whatsapp.senders]]\nid = \"wa-2\"\nphone_number_id = \"2\"\ntoken = \"t\"\nmps = 40\n"
      "[[email.senders]]\nid = \"em-1\"\nurl = \"smtp://127.0.0.1:2525\"\nfrom = \"a@example.com\"\nstarttls = false\nmps = 5\n",
      "");
}

TEST(FirstUsableChannel, IsTheFirstFromTheGivenPosition) {
  const Channel prefs[] = {Channel::whatsapp, Channel::email, Channel::webhook};
  auto no_whatsapp = [](Channel c) { return c != Channel::whatsapp; };
  EXPECT_EQ(engine::first_usable_channel(prefs, 3, 0, no_whatsapp), 1);
  EXPECT_EQ(engine::first_usable_channel(prefs, 3, 2, no_whatsapp), 2);
  EXPECT_EQ(engine::first_usable_channel(prefs, 3, 3, no_whatsapp), -1);
  EXPECT_EQ(engine::first_usable_channel(prefs, 1, 0, no_whatsapp), -1);
}

TEST(SenderPool, PrefersTheHealthySenderThenTheLeastLoadedForItsRate) {
  Config cfg = two_whatsapp_one_email();
  engine::SenderPool pool(cfg, 0);
  ASSERT_EQ(pool.size(), 3U);
  EXPECT_EQ(pool.index_of("wa-2"), 1);
  EXPECT_EQ(pool.index_of("nope"), -1);
  auto none_queued = [](std::size_t) { return std::size_t{0}; };
  EXPECT_EQ(pool.pick(Channel::whatsapp, 0, 0, none_queued), 0);  // preferred and healthy
  // wa-1 (10/s) with 5 queued is loaded 0.5; wa-2 (40/s) with 10 queued 0.25.
  auto queued = [](std::size_t i) { return i == 0 ? std::size_t{5} : std::size_t{10}; };
  EXPECT_EQ(pool.pick(Channel::whatsapp, -1, 0, queued), 1);
  EXPECT_EQ(pool.pick(Channel::whatsapp, -1, 0, queued, 1), 0);  // excluded
  EXPECT_EQ(pool.pick(Channel::webhook, -1, 0, none_queued), -1);
  // A paused preferred sender is passed over.
  pool[0].paused_until = 1000;
  EXPECT_EQ(pool.pick(Channel::whatsapp, 0, 0, none_queued), 1);
}

TEST(SenderPool, AnOpenBreakerMovesTheDeliveryToItsNextChannel) {
  Config cfg = two_whatsapp_one_email();
  cfg.breaker.min_requests = 2;
  engine::SenderPool pool(cfg, 0);
  auto none_queued = [](std::size_t) { return std::size_t{0}; };
  const Channel prefs[] = {Channel::whatsapp, Channel::email};
  engine::Reach r{prefs, 2, 0, true, true};
  EXPECT_EQ(pool.next_channel(r), 1);
  EXPECT_EQ(pool.next_usable_channel(r, 0, none_queued), std::make_pair(1, 2));
  engine::Reach no_email{prefs, 2, 0, true, false};
  EXPECT_EQ(pool.next_channel(no_email), -1);
  // Both WhatsApp senders fail until their breakers open: nothing of the channel is usable.
  for (std::size_t s : {std::size_t{0}, std::size_t{1}}) {
    std::optional<BreakerState> changed;
    for (int i = 0; i < 4 && !changed; ++i) changed = pool.record(s, true, 100);
    ASSERT_TRUE(changed);
    EXPECT_EQ(*changed, BreakerState::open);
  }
  EXPECT_EQ(pool.pick(Channel::whatsapp, 0, 100, none_queued), -1);
  EXPECT_GT(pool.channel_reopens_at(Channel::whatsapp, 50'000, 100), 50'000);
  EXPECT_EQ(pool[0].failed, 2);
}

engine::Item item(std::int64_t id, Millis due, std::uint16_t attempts = 0) {
  engine::Item it;
  it.delivery_id = id;
  it.due = due;
  it.attempts = attempts;
  it.state = attempts ? DeliveryState::retry_wait : DeliveryState::planned;
  return it;
}

TEST(SendSchedule, FindsLoadedAndAddedItemsAndQueuesByDueTime) {
  engine::SendSchedule s(1);
  s.items = {item(30, 3000), item(10, 1000), item(20, 2000, 1)};
  s.finish_load([](std::uint32_t) { return true; });
  ASSERT_EQ(s.items.size(), 3U);
  EXPECT_EQ(s.items[0].delivery_id, 10);  // sorted by id
  EXPECT_EQ(s.find(20), 1);
  EXPECT_EQ(s.find(99), -1);
  const auto idx = s.add(item(5, 500));
  EXPECT_EQ(s.find(5), idx);
  s.queue(idx);
  EXPECT_EQ(s.waiting.top().idx, idx);  // earliest due first
  EXPECT_EQ(s.waiting.size(), 4U);
}

TEST(SendSchedule, AmongDueRowsARetryOfABurstGoesBeforeTheFirstAttemptsStillQueued) {
  // A burst: every row planned at one instant with one deadline. First attempts 0..4 are queued;
  // row 7's first attempt failed and its retry is due now: it goes next, not after all five.
  engine::MinHeap<engine::EEntry> eq;
  const Millis planned = 1000, deadline = planned + 300000;
  for (std::uint32_t i = 0; i < 5; ++i) eq.push({deadline, 1, planned, false, i, false});
  eq.push({deadline, 1, planned, true, 7, false});
  EXPECT_EQ(eq.top().idx, 7u);
  eq.pop();
  EXPECT_EQ(eq.top().idx, 0u);  // then load order
  // The deadline still comes first, then the tier, then the planned time: a retry does not jump
  // ahead of a row that must go sooner or of a higher tier.
  engine::MinHeap<engine::EEntry> q2;
  q2.push({deadline, 1, planned, true, 1, false});
  q2.push({deadline - 1, 1, planned, false, 2, false});
  q2.push({deadline, 0, planned, false, 3, false});
  q2.push({deadline, 1, planned - 1, false, 4, false});
  std::vector<std::uint32_t> order;
  while (!q2.empty()) order.push_back(q2.top().idx), q2.pop();
  EXPECT_EQ(order, (std::vector<std::uint32_t>{2, 3, 4, 1}));
}

TEST(SendSchedule, AnUrgentRunsDueRowsGoBeforeRoutineOnesThenByDeadlineAndTier) {
  // A morning row due now with an earlier deadline and a higher tier still waits for the urgent
  // run's rows on the same sender; among urgent rows the usual order holds (deadline, tier).
  engine::MinHeap<engine::EEntry> eq;
  const Millis morning_deadline = 300'000, urgent_deadline = 600'000;
  eq.push({morning_deadline, 0, 1000, false, 1, false});  // routine, tier 0, sooner deadline
  eq.push({morning_deadline, 0, 1000, true, 2, false});   // routine retry
  eq.push({urgent_deadline, 2, 5000, false, 3, true});    // urgent, tier 2
  eq.push({urgent_deadline, 0, 5000, false, 4, true});    // urgent, tier 0
  eq.push({urgent_deadline - 1, 2, 5000, false, 5, true});  // urgent, sooner deadline
  std::vector<std::uint32_t> order;
  while (!eq.empty()) order.push_back(eq.top().idx), eq.pop();
  EXPECT_EQ(order, (std::vector<std::uint32_t>{5, 4, 3, 2, 1}));
}

TEST(SendSchedule, AWallClockStepMovesOwnWaitsNotPlannedTimes) {
  engine::SendSchedule s(1);
  s.items = {item(1, 10'000), item(2, 20'000, 1)};  // planned; a retry wait
  s.finish_load([](std::uint32_t) { return true; });
  EXPECT_EQ(s.shift_after_step(60'000, 5'000), 1U);
  EXPECT_EQ(s.items[1].due, 80'000);  // the retry keeps its length
  EXPECT_EQ(s.items[0].due, 10'000);  // the planned time stays
  s.claimed[0].push({70'000, 0, 0, s.items[0].gen});
  s.shift_after_step(-1000, 6'000);
  EXPECT_EQ(s.claimed[0].top().due, 6'000);  // a claimed row goes out now
}

TEST(SendSchedule, WakesForTheNextClaimOrTheSendersNextToken) {
  Config cfg = two_whatsapp_one_email();
  engine::SenderPool pool(cfg, 0);
  engine::SendSchedule s(pool.size());
  s.items = {item(1, 10'500)};
  s.finish_load([](std::uint32_t) { return true; });
  EXPECT_EQ(s.next_wake(10'000, 0, 200, pool), 10'300);  // due - claim lead
  EXPECT_EQ(s.next_wake(5'000, 0, 200, pool), 6'000);   // at most a second away
  EXPECT_EQ(s.drain_claimed().size(), 0U);
  s.claimed[1].push({10'100, 0, 0, 0});
  EXPECT_EQ(s.next_wake(10'000, 0, 200, pool), 10'100);
  EXPECT_EQ(s.drain_claimed(), std::vector<std::int64_t>{1});
  EXPECT_TRUE(s.claimed[1].empty());
}

}  // namespace
}  // namespace daybreak
