// Tests for core/domain/planner.cpp: rapidcheck properties for the planner's rules
// step 3 (window, per-second cap, tier order, stability, over-capacity accounting), and
// worked examples at 2,000 and 1,000,000 deliveries.
#include "domain/planner.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace daybreak {
namespace {

constexpr Millis kSlot = 1'795'825'800'000;  // 2026-11-28 06:00 IST

Window default_window() { return window_for(kSlot, WindowPolicy{}); }

std::string key_of(std::size_t i) { return "adv" + std::to_string(i) + "|2026-11-28"; }

// A random but valid input: 1–3 channels with 1–3 senders each, up to `max_items` items with
// unique keys, a window from empty to a bit over the default, any utilisation in (0, 1].
PlanInput random_input(int max_items) {
  PlanInput in;
  const Millis start = kSlot - 30'000 + *rc::gen::inRange<Millis>(-5'000, 5'000);
  const Millis span = *rc::gen::inRange<Millis>(0, 320'000);
  in.window = Window{start + 30'000, start, start + span, start + span + 30'000};
  in.utilisation = *rc::gen::inRange(5, 101) / 100.0;
  std::vector<Channel> channels;
  int sender_no = 0;
  for (Channel c : {Channel::whatsapp, Channel::email, Channel::webhook}) {
    const int count = *rc::gen::inRange(c == Channel::whatsapp ? 1 : 0, 4);
    for (int s = 0; s < count; ++s) {
      in.senders.push_back({std::string(to_string(c)) + "-" + std::to_string(++sender_no), c,
                            *rc::gen::inRange(1, 200) / 4.0});  // 0.25–49.75 msg/s: small, so overloads happen
    }
    if (count > 0) channels.push_back(c);
  }
  const int n = *rc::gen::inRange(0, max_items + 1);
  in.items.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    in.items.push_back({key_of(static_cast<std::size_t>(i)), *rc::gen::inRange(0, 4), *rc::gen::elementOf(channels)});
  }
  return in;
}

PlanResult plan_ok(const PlanInput& in) {
  auto r = plan_run(in);
  if (!r.ok()) {
    ADD_FAILURE() << r.error().message;
    return {};
  }
  return std::move(*r);
}

const SenderCapacity& sender_of(const PlanInput& in, const std::string& id) {
  return *std::find_if(in.senders.begin(), in.senders.end(),
                       [&](const SenderCapacity& s) { return s.sender_id == id; });
}

// Sends per (sender, one-second bucket of the window).
std::map<std::pair<std::string, Millis>, std::size_t> per_bucket(const PlanInput& in, const PlanResult& r) {
  std::map<std::pair<std::string, Millis>, std::size_t> counts;
  for (const PlannedSend& s : r.sends) ++counts[{s.sender_id, (s.planned_at - in.window.start) / 1000}];
  return counts;
}

// ---------------------------------------------------------------- properties

RC_GTEST_PROP(PlannerProps, EverySendIsInItsWindowOnAMatchingSender, ()) {
  const PlanInput in = random_input(3000);
  const PlanResult r = plan_ok(in);
  RC_ASSERT(r.sends.size() == in.items.size());
  for (std::size_t i = 0; i < r.sends.size(); ++i) {
    RC_ASSERT(r.sends[i].item == i);
    RC_ASSERT(r.sends[i].planned_at >= in.window.start);
    RC_ASSERT(r.sends[i].planned_at <= in.window.end);
    RC_ASSERT(sender_of(in, r.sends[i].sender_id).channel == in.items[i].channel);
  }
}

RC_GTEST_PROP(PlannerProps, PerSecondLoadNeverExceedsTheCapWhenFeasible, ()) {
  const PlanInput in = random_input(3000);
  const PlanResult r = plan_ok(in);
  RC_CLASSIFY(r.feasible);
  for (const auto& [where, count] : per_bucket(in, r)) {
    const SenderCapacity& s = sender_of(in, where.first);
    const auto cap = std::max(1.0, std::floor(in.utilisation * s.mps + 1e-9));
    if (r.feasible) {
      RC_ASSERT(static_cast<double>(count) <= cap);
    } else if (in.window.start + where.second * 1000 + 1000 <= in.window.end) {
      // Over capacity the extra goes into the headroom, never past 100% of mps inside the
      // window (only the window.end pile-up may be bigger, and it lives in the last bucket).
      RC_ASSERT(static_cast<double>(count) <= std::max(cap, std::floor(s.mps + 1e-9)));
    }
  }
  for (const SenderLoad& load : r.senders) {
    RC_ASSERT(load.cap_per_second >= 1.0);
    if (r.feasible) RC_ASSERT(static_cast<double>(load.peak_per_second) <= load.cap_per_second);
  }
}

RC_GTEST_PROP(PlannerProps, NoLowerTierIsPlannedBeforeAHigherTierOnTheSameSender, ()) {
  const PlanInput in = random_input(3000);
  const PlanResult r = plan_ok(in);
  // Per sender and tier: earliest and latest planned time. Tier t must start no earlier than
  // every higher tier (smaller rank) has ended.
  std::map<std::string, std::map<int, std::pair<Millis, Millis>>> span;
  for (const PlannedSend& s : r.sends) {
    auto [it, fresh] = span[s.sender_id].try_emplace(in.items[s.item].tier_rank, s.planned_at, s.planned_at);
    if (!fresh) {
      it->second.first = std::min(it->second.first, s.planned_at);
      it->second.second = std::max(it->second.second, s.planned_at);
    }
  }
  for (const auto& [sender, tiers] : span) {
    Millis latest_higher = INT64_MIN;
    for (const auto& [tier, first_last] : tiers) {  // ascending rank: highest tier first
      RC_ASSERT(first_last.first >= latest_higher);
      latest_higher = std::max(latest_higher, first_last.second);
    }
  }
}

RC_GTEST_PROP(PlannerProps, ReplanningIsStableEvenWhenItemsAreShuffled, ()) {
  const PlanInput in = random_input(2000);
  const PlanResult a = plan_ok(in);
  const PlanResult b = plan_ok(in);
  RC_ASSERT(a.sends.size() == b.sends.size());
  for (std::size_t i = 0; i < a.sends.size(); ++i) {
    RC_ASSERT(a.sends[i].sender_id == b.sends[i].sender_id);
    RC_ASSERT(a.sends[i].planned_at == b.sends[i].planned_at);
    RC_ASSERT(a.sends[i].over_capacity == b.sends[i].over_capacity);
  }
  RC_ASSERT(a.recommendation == b.recommendation);

  PlanInput shuffled = in;
  std::mt19937_64 rng(*rc::gen::arbitrary<std::uint64_t>());
  std::shuffle(shuffled.items.begin(), shuffled.items.end(), rng);
  std::shuffle(shuffled.senders.begin(), shuffled.senders.end(), rng);
  const PlanResult c = plan_ok(shuffled);
  std::map<std::string, const PlannedSend*> by_key;
  for (const PlannedSend& s : a.sends) by_key[in.items[s.item].key] = &s;
  for (const PlannedSend& s : c.sends) {
    const PlannedSend& original = *by_key.at(shuffled.items[s.item].key);
    RC_ASSERT(s.planned_at == original.planned_at);
    RC_ASSERT(s.sender_id == original.sender_id);
    RC_ASSERT(s.over_capacity == original.over_capacity);
  }
  RC_ASSERT(c.shortfall == a.shortfall);
  RC_ASSERT(c.recommendation == a.recommendation);
}

// Shortfall per channel is exactly the items beyond the channel's capacity under the cap; the
// over-capacity ones are the lowest tiers; an infeasible plan says what to do.
void check_shortfall_accounting(const PlanInput& in, const PlanResult& r) {
  std::map<Channel, std::size_t> items, capacity;
  for (const PlanItem& it : in.items) ++items[it.channel];
  for (const SenderLoad& s : r.senders) capacity[s.channel] += s.capacity_in_window;
  std::size_t expected = 0;
  for (const auto& [c, n] : items) expected += n > capacity[c] ? n - capacity[c] : 0;
  RC_ASSERT(r.shortfall == expected);
  RC_ASSERT(r.feasible == (expected == 0));
  RC_ASSERT(r.recommendation.empty() == r.feasible);
  std::size_t flagged = 0;
  std::map<Channel, int> lowest_fitting, highest_over;
  for (const PlannedSend& s : r.sends) {
    const PlanItem& it = in.items[s.item];
    if (s.over_capacity) {
      ++flagged;
      auto [pos, fresh] = highest_over.try_emplace(it.channel, it.tier_rank);
      if (!fresh) pos->second = std::min(pos->second, it.tier_rank);
    } else {
      auto [pos, fresh] = lowest_fitting.try_emplace(it.channel, it.tier_rank);
      if (!fresh) pos->second = std::max(pos->second, it.tier_rank);
    }
  }
  RC_ASSERT(flagged == r.shortfall);
  for (const auto& [c, rank] : highest_over) {
    if (lowest_fitting.count(c) != 0) RC_ASSERT(rank >= lowest_fitting[c]);
  }
}

RC_GTEST_PROP(PlannerProps, ShortfallIsCountedExactly, ()) {
  const PlanInput in = random_input(3000);
  check_shortfall_accounting(in, plan_ok(in));
}

RC_GTEST_PROP(PlannerProps, OverCapacityIsReportedWithARecommendation, ()) {
  // One sender, items deliberately beyond its capacity under the cap.
  PlanInput in;
  const Millis span = *rc::gen::inRange<Millis>(1'000, 60'000);
  in.window = Window{kSlot, kSlot, kSlot + span, kSlot + span};
  in.utilisation = *rc::gen::inRange(10, 100) / 100.0;
  const double mps = *rc::gen::inRange(1, 40);
  in.senders.push_back({"wa-1", Channel::whatsapp, mps});
  const auto cap = static_cast<std::size_t>(std::max(1.0, std::floor(in.utilisation * mps + 1e-9)));
  const std::size_t seconds = static_cast<std::size_t>(span / 1000);  // full seconds; the last partial one adds < cap
  const std::size_t extra = *rc::gen::inRange<std::size_t>(1, 500);
  const std::size_t n = cap * (seconds + 1) + extra;
  for (std::size_t i = 0; i < n; ++i) in.items.push_back({key_of(i), static_cast<int>(i % 3), Channel::whatsapp});
  const PlanResult r = plan_ok(in);
  RC_ASSERT(!r.feasible);
  RC_ASSERT(r.shortfall == n - r.senders[0].capacity_in_window);
  RC_ASSERT(!r.recommendation.empty());
  RC_ASSERT(r.recommendation.find("whatsapp") != std::string::npos);
  RC_ASSERT(r.recommendation.find("add ") != std::string::npos);
  check_shortfall_accounting(in, r);
}

// ---------------------------------------------------------------- examples

TEST(Planner, TwoThousandOnOneEightyMpsSenderFitInTheFirstThirtySixSeconds) {
  PlanInput in;
  in.window = default_window();
  in.senders.push_back({"wa-1", Channel::whatsapp, 80});
  for (std::size_t i = 0; i < 2000; ++i) in.items.push_back({key_of(i), static_cast<int>(i % 4), Channel::whatsapp});
  const PlanResult r = plan_ok(in);
  EXPECT_TRUE(r.feasible);
  EXPECT_EQ(r.shortfall, 0U);
  EXPECT_TRUE(r.recommendation.empty());
  ASSERT_EQ(r.senders.size(), 1U);
  EXPECT_DOUBLE_EQ(r.senders[0].cap_per_second, 56);  // floor(0.7 × 80)
  EXPECT_EQ(r.senders[0].assigned, 2000U);
  EXPECT_EQ(r.senders[0].peak_per_second, 56U);
  EXPECT_EQ(r.senders[0].capacity_in_window, 56U * 300U);  // 300 full seconds; the 1 ms at window.end holds none
  // 2000 / 56 = 35.7: 35 full seconds and 40 sends in the 36th; the rest is retry headroom.
  Millis last = 0;
  for (const PlannedSend& s : r.sends) {
    EXPECT_FALSE(s.over_capacity);
    EXPECT_GE(s.planned_at, in.window.start);
    last = std::max(last, s.planned_at);
  }
  EXPECT_LT(last, in.window.start + 36'000);
  EXPECT_GE(last, in.window.start + 35'000);
  // required_peak_mps = 2000 / (300.001 s × 0.7)
  EXPECT_NEAR(r.required_peak_mps, 2000 / (300.001 * 0.7), 1e-9);
}

TEST(Planner, SendsAreSpreadOverTheSecondNotBunchedAtItsStart) {
  PlanInput in;
  in.window = default_window();
  in.senders.push_back({"wa-1", Channel::whatsapp, 80});
  for (std::size_t i = 0; i < 2000; ++i) in.items.push_back({key_of(i), 0, Channel::whatsapp});
  const PlanResult r = plan_ok(in);
  std::vector<Millis> first_second;
  for (const PlannedSend& s : r.sends) {
    if (s.planned_at < in.window.start + 1000) first_second.push_back(s.planned_at - in.window.start);
  }
  std::sort(first_second.begin(), first_second.end());
  ASSERT_EQ(first_second.size(), 56U);
  EXPECT_EQ(std::set<Millis>(first_second.begin(), first_second.end()).size(), 56U);  // no two at the same ms
  EXPECT_LT(first_second.front(), 1000 / 56 + 1);                                     // the first sub-slot is [0, 17)
  EXPECT_GE(first_second.back(), 1000 - 1000 / 56 - 1);
  for (std::size_t j = 1; j < first_second.size(); ++j) {
    EXPECT_LE(first_second[j] - first_second[j - 1], 2 * (1000 / 56 + 1));  // even spread, with jitter
  }
  // The jitter is real: not every send sits at the start of its sub-slot.
  int at_slot_start = 0;
  for (std::size_t j = 0; j < first_second.size(); ++j) {
    at_slot_start += first_second[j] == static_cast<Millis>(j * 1000 / 56) ? 1 : 0;
  }
  EXPECT_LT(at_slot_start, 20);
}

TEST(Planner, TierOrderSurvivesInsideABucket) {
  PlanInput in;
  in.window = default_window();
  in.senders.push_back({"wa-1", Channel::whatsapp, 10});  // cap 7 per second
  for (std::size_t i = 0; i < 7; ++i) in.items.push_back({key_of(i), static_cast<int>(6 - i), Channel::whatsapp});
  const PlanResult r = plan_ok(in);
  for (std::size_t i = 0; i + 1 < r.sends.size(); ++i) {
    EXPECT_GT(r.sends[i].planned_at, r.sends[i + 1].planned_at);  // item i has a lower tier than item i+1
    EXPECT_LT(r.sends[i].planned_at, in.window.start + 1000);     // all in the first second
  }
}

TEST(Planner, LoadFollowsSenderRates) {
  PlanInput in;
  in.window = default_window();
  in.senders.push_back({"wa-fast", Channel::whatsapp, 80});  // cap 56
  in.senders.push_back({"wa-slow", Channel::whatsapp, 40});  // cap 28
  in.senders.push_back({"mail", Channel::email, 10});
  for (std::size_t i = 0; i < 3000; ++i) in.items.push_back({key_of(i), static_cast<int>(i % 2), Channel::whatsapp});
  for (std::size_t i = 3000; i < 3100; ++i) in.items.push_back({key_of(i), 0, Channel::email});
  const PlanResult r = plan_ok(in);
  ASSERT_TRUE(r.feasible);
  EXPECT_NEAR(static_cast<double>(r.senders[0].assigned), 2000.0, 2.0);  // 3000 × 56/84
  EXPECT_NEAR(static_cast<double>(r.senders[1].assigned), 1000.0, 2.0);
  EXPECT_EQ(r.senders[2].assigned, 100U);
  // Both whatsapp senders finish at about the same time: 3000 / 84 per second ≈ 35.7 s.
  std::map<std::string, Millis> last;
  for (const PlannedSend& s : r.sends) last[s.sender_id] = std::max(last[s.sender_id], s.planned_at);
  EXPECT_LT(std::abs(last["wa-fast"] - last["wa-slow"]), 1000);
  for (std::size_t i = 3000; i < 3100; ++i) EXPECT_EQ(r.sends[i].sender_id, "mail");
}

TEST(Planner, OverCapacityFillsHeadroomThenPilesUpAtTheWindowEnd) {
  PlanInput in;
  in.window = Window{kSlot, kSlot, kSlot + 10'000, kSlot + 10'000};  // 10 full seconds + the end ms
  in.utilisation = 0.5;
  in.senders.push_back({"wa-1", Channel::whatsapp, 10});  // cap 5/s → 50 in the window; 100 at 100%
  for (std::size_t i = 0; i < 70; ++i) in.items.push_back({key_of(i), i < 35 ? 0 : 1, Channel::whatsapp});
  PlanResult r = plan_ok(in);
  EXPECT_FALSE(r.feasible);
  EXPECT_EQ(r.shortfall, 20U);
  EXPECT_EQ(r.senders[0].capacity_in_window, 50U);
  EXPECT_EQ(r.recommendation,
            "whatsapp: 20 of 70 deliveries do not fit under 50% of 10 msg/s (1 sender); add 1 whatsapp sender of "
            "10 msg/s, or raise utilisation to 0.70");
  std::size_t over = 0;
  for (const PlannedSend& s : r.sends) {
    over += s.over_capacity ? 1 : 0;
    if (s.over_capacity) {
      EXPECT_EQ(in.items[s.item].tier_rank, 1);  // the lowest tier yields
    }
    EXPECT_LT(s.planned_at, in.window.end);  // 70 fit at 100% (10/s) inside the window
  }
  EXPECT_EQ(over, 20U);
  EXPECT_EQ(r.senders[0].peak_per_second, 10U);

  // 150 items: 100 fit at 100% of mps, 50 pile up at window.end.
  for (std::size_t i = 70; i < 150; ++i) in.items.push_back({key_of(i), 2, Channel::whatsapp});
  r = plan_ok(in);
  EXPECT_EQ(r.shortfall, 100U);
  std::size_t at_end = 0;
  for (const PlannedSend& s : r.sends) at_end += s.planned_at == in.window.end ? 1 : 0;
  EXPECT_EQ(at_end, 50U);
  EXPECT_NE(r.recommendation.find("add 2 whatsapp senders of 10 msg/s"), std::string::npos) << r.recommendation;
  EXPECT_NE(r.recommendation.find("raising utilisation alone is not enough"), std::string::npos);
  EXPECT_NE(r.recommendation.find("50 do not fit even at 100%"), std::string::npos);
}

TEST(Planner, EmptyRunIsFeasible) {
  PlanInput in;
  in.window = default_window();
  in.senders.push_back({"wa-1", Channel::whatsapp, 80});
  const PlanResult r = plan_ok(in);
  EXPECT_TRUE(r.feasible);
  EXPECT_TRUE(r.sends.empty());
  EXPECT_EQ(r.senders[0].peak_per_second, 0U);
}

TEST(Planner, RejectsBadInput) {
  auto fails = [](PlanInput in, const std::string& needle) {
    auto r = plan_run(in);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.error().code, "bad_plan_input");
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
  };
  PlanInput good;
  good.window = default_window();
  good.senders.push_back({"wa-1", Channel::whatsapp, 80});
  good.items.push_back({"a|2026-11-28", 0, Channel::whatsapp});
  ASSERT_TRUE(plan_run(good).ok());

  PlanInput in = good;
  in.items.push_back({"b|2026-11-28", 0, Channel::email});
  fails(in, "no sender for channel email");
  in = good;
  in.senders[0].mps = 0;
  fails(in, "mps");
  in.senders[0].mps = -3;
  fails(in, "mps");
  in.senders[0].mps = std::nan("");
  fails(in, "mps");
  in.senders[0].mps = 1e300;
  fails(in, "mps");
  in = good;
  in.senders.push_back({"wa-1", Channel::whatsapp, 80});
  fails(in, "duplicate");
  in = good;
  in.senders[0].sender_id.clear();
  fails(in, "empty sender_id");
  in = good;
  in.utilisation = 0;
  fails(in, "utilisation");
  in.utilisation = 1.2;
  fails(in, "utilisation");
  in = good;
  std::swap(in.window.start, in.window.end);
  fails(in, "window");
}

TEST(Planner, StableHashIsFixedAcrossBuilds) {
  // Pinned values: if these change, every stored plan and jitter seed changes with them.
  EXPECT_EQ(stable_key_hash(""), mix64(14695981039346656037ULL));
  EXPECT_EQ(mix64(0), 0xe220a8397b1dcdafULL);  // splitmix64's first output for seed 0
  EXPECT_NE(stable_key_hash("adv1|2026-11-28"), stable_key_hash("adv2|2026-11-28"));
}

TEST(Planner, OrderKeyIsTheItemKeysHashHalvedAndNeverNegative) {
  // The ledger's uniqueness index is led by it (sql/007): it must be the hash plan_run orders by,
  // and non-negative so SQLite's signed order keeps the hash's order.
  for (const char* advisor : {"adv-100000", "adv-100001", "A1", "", "ünïcode-advisor"}) {
    for (const char* date : {"2026-11-28", "2026-11-29"}) {
      const std::string key = plan_item_key(advisor, date);
      EXPECT_EQ(key, std::string(advisor) + "|" + date);
      EXPECT_EQ(delivery_order_key(advisor, date), static_cast<std::int64_t>(stable_key_hash(key) >> 1)) << key;
      EXPECT_GE(delivery_order_key(advisor, date), 0) << key;
    }
  }
  EXPECT_NE(delivery_order_key("adv-1", "2026-11-28"), delivery_order_key("adv-1", "2026-11-29"));
}

TEST(Planner, OneMillionOnFiveThousandMpsPlansWellUnderTwoSeconds) {
  PlanInput in;
  in.window = default_window();
  for (int s = 1; s <= 5; ++s) in.senders.push_back({"wa-" + std::to_string(s), Channel::whatsapp, 1000});
  constexpr std::size_t kItems = 1'000'000;
  in.items.reserve(kItems);
  for (std::size_t i = 0; i < kItems; ++i) {
    // Tier mix of a real book: few platinum, most standard.
    const int tier = i % 100 < 2 ? 0 : i % 100 < 10 ? 1 : i % 100 < 30 ? 2 : 3;
    in.items.push_back({key_of(i), tier, Channel::whatsapp});
  }
  // CPU time is what the bound is about: wall time also counts other processes on a busy CI box.
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  auto r = plan_run(in);
  const double cpu_ms = 1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[ planner  ] 1,000,000 items on 5 x 1000 msg/s planned in " << ms << " ms wall, " << cpu_ms
            << " ms CPU\n";
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->feasible);  // cap 700/s × 5 × 300 s = 1,050,000
  EXPECT_EQ(r->shortfall, 0U);
  std::vector<std::vector<std::uint32_t>> buckets(5, std::vector<std::uint32_t>(301, 0));
  for (const PlannedSend& s : r->sends) {
    ASSERT_GE(s.planned_at, in.window.start);
    ASSERT_LE(s.planned_at, in.window.end);
    ++buckets[static_cast<std::size_t>(s.sender_id.back() - '1')]
             [static_cast<std::size_t>((s.planned_at - in.window.start) / 1000)];
  }
  for (const auto& per_sender : buckets) EXPECT_LE(*std::max_element(per_sender.begin(), per_sender.end()), 700U);
  for (const SenderLoad& l : r->senders) EXPECT_EQ(l.assigned, 200'000U);
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(cpu_ms, 2000.0);  // optimised builds only: a debug or sanitizer build is legitimately slower
#endif
}

}  // namespace
}  // namespace daybreak
