#include "app/plan.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "app/common.hpp"
#include "domain/planner.hpp"
#include "domain/time.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/content.hpp"
#include "store/deliveries.hpp"
#include "store/runs.hpp"

namespace daybreak {

std::string default_delivery_date(const Config& cfg, Millis now) {
  auto today = local_date(now, cfg.default_timezone);
  if (!today) throw ConfigError(today.error().message);
  auto slot = parse_slot(cfg.default_slot);
  auto s = slot_instant(*today, slot ? *slot : 360, cfg.default_timezone);
  if (s && now >= *s) return format_date(add_days(*today, 1));
  return format_date(*today);
}

std::string resolve_date_option(const std::string& value, const Config& cfg, Millis now) {
  if (value.empty()) return default_delivery_date(cfg, now);
  auto d = parse_date(value);
  if (!d) throw UsageError("--date: " + d.error().message);
  return format_date(*d);
}

// assign_fallback and explain_assignment live in app/fallback.cpp.

nlohmann::json plan_deliveries(store::Db& db, const Config& cfg, const std::string& date, Millis now, bool dry_run) {
  auto d = parse_date(date);
  if (!d) throw UsageError(d.error().message);
  // Pass 1: eligible advisors and their assignment for D.
  auto advisors = store::AdvisorListEligible(db, date);
  std::unordered_map<std::string, Assignment> assignment;
  for (auto& a : store::AssignmentListForDate(db, date)) assignment.emplace(a.advisor_id, std::move(a));

  // Pass 2: each advisor's slot instant (their local D at their slot) and first usable channel;
  // advisors sharing a slot instant form one run.
  struct Pending {
    const store::AdvisorRow* row;
    const Assignment* asg;
    int tier_rank;
    Channel channel;
    int channel_index;
  };
  std::map<Millis, std::vector<Pending>> by_slot;
  nlohmann::json unassigned = nlohmann::json::array();
  nlohmann::json unreachable = nlohmann::json::array();
  for (const auto& row : advisors) {
    const Advisor& a = row.advisor;
    auto ait = assignment.find(a.advisor_id);
    if (ait == assignment.end()) {
      unassigned.push_back(a.advisor_id);
      continue;
    }
    auto slot = parse_slot(a.slot.empty() ? cfg.default_slot : a.slot);
    auto s = slot ? slot_instant(*d, *slot, a.timezone.empty() ? cfg.default_timezone : a.timezone)
                  : Result<Millis>(slot.error());
    if (!s) {
      unreachable.push_back({{"advisor_id", a.advisor_id}, {"reason", s.error().message}});
      continue;
    }
    auto rank = cfg.tier_rank(a.tier);
    // The stored preference list decides the channel index; only opted-in channels with a
    // configured sender can be planned.
    int chosen = -1;
    Channel ch = Channel::whatsapp;
    for (std::size_t i = 0; i < a.channels.size(); ++i) {
      Channel c = a.channels[i];
      bool opted = std::any_of(row.channels.begin(), row.channels.end(), [&](const auto& rc) { return rc.channel == c && rc.opted_in; });
      if (opted && !cfg.senders_of(c).empty()) {
        chosen = static_cast<int>(i);
        ch = c;
        break;
      }
    }
    if (chosen < 0) {
      unreachable.push_back({{"advisor_id", a.advisor_id}, {"reason", "no opted-in channel with a configured sender"}});
      continue;
    }
    by_slot[*s].push_back({&row, &ait->second, rank ? *rank : static_cast<int>(cfg.tiers.size()), ch, chosen});
  }

  std::vector<SenderCapacity> capacity;
  for (const auto& s : cfg.senders) capacity.push_back({s.id, s.channel, s.mps});

  // Pass 3: plan each run under each sender's capacity and write it (one transaction for the day).
  nlohmann::json runs_out = nlohmann::json::array();
  std::size_t planned_total = 0, inserted_total = 0;
  bool all_feasible = true;
  struct RunPlan {
    Window window;
    std::vector<Pending>* items;
    PlanResult plan;
    nlohmann::json report;
  };
  std::vector<RunPlan> plans;
  for (auto& [slot_at, items] : by_slot) {
    PlanInput in;
    in.window = window_for(slot_at, cfg.window);
    in.senders = capacity;
    in.utilisation = cfg.utilisation;
    in.items.reserve(items.size());
    for (const auto& p : items) in.items.push_back({p.row->advisor.advisor_id + "|" + date, p.tier_rank, p.channel});
    auto plan = plan_run(in);
    if (!plan) throw ConfigError("planning " + format_instant(slot_at) + ": " + plan.error().message);
    nlohmann::json senders = nlohmann::json::array();
    for (const auto& l : plan->senders) {
      if (l.assigned == 0) continue;
      senders.push_back({{"sender", l.sender_id},
                         {"channel", std::string(to_string(l.channel))},
                         {"mps", l.mps},
                         {"assigned", l.assigned},
                         {"cap_per_second", l.cap_per_second},
                         {"peak_per_second", l.peak_per_second},
                         {"capacity_in_window", l.capacity_in_window},
                         {"utilisation_pct", l.capacity_in_window ? 100.0 * static_cast<double>(l.assigned) / static_cast<double>(l.capacity_in_window) * cfg.utilisation : 0.0}});
    }
    nlohmann::json rep = {{"slot_at", format_instant(slot_at)},
                          {"slot_at_ms", slot_at},
                          {"window_start", format_instant(in.window.start)},
                          {"window_end", format_instant(in.window.end)},
                          {"deadline", format_instant(in.window.deadline)},
                          {"planned", items.size()},
                          {"feasible", plan->feasible},
                          {"shortfall", plan->shortfall},
                          {"required_peak_mps", plan->required_peak_mps},
                          {"senders", senders},
                          {"recommendation", plan->recommendation}};
    all_feasible = all_feasible && plan->feasible;
    planned_total += items.size();
    plans.push_back({in.window, &items, std::move(*plan), std::move(rep)});
  }
  if (!dry_run) {
    db.write_tx([&] {
      for (auto& rp : plans) {
        store::RunUpsertParams rup;
        rup.date = date;
        rup.window = rp.window;
        rup.planned_count = static_cast<std::int64_t>(rp.items->size());
        rup.feasible = rp.plan.feasible;
        rup.plan_report = rp.report.dump();
        auto run_id = store::RunUpsert(db, rup);
        std::size_t inserted = 0;
        for (std::size_t i = 0; i < rp.items->size(); ++i) {
          const auto& p = (*rp.items)[i];
          const auto& send = rp.plan.sends[i];
          store::DeliveryInsertParams dp;
          dp.run_id = run_id;
          dp.advisor_id = p.row->advisor.advisor_id;
          dp.date = date;
          dp.slot_at = rp.window.slot_at;
          dp.content_id = p.asg->content_id;
          dp.source = std::string(to_string(p.asg->source));
          dp.tier = p.row->advisor.tier;
          dp.tier_rank = p.tier_rank;
          dp.channel = std::string(to_string(p.channel));
          dp.channel_index = p.channel_index;
          dp.sender = send.sender_id;
          dp.planned_at = send.planned_at;
          dp.deadline_at = rp.window.deadline;
          dp.now = now;
          if (store::DeliveryInsert(db, dp)) ++inserted;
        }
        rp.report["run_id"] = run_id;
        rp.report["inserted"] = inserted;
        rp.report["already_planned"] = rp.items->size() - inserted;
        inserted_total += inserted;
      }
    });
  }
  for (auto& rp : plans) runs_out.push_back(rp.report);
  return {{"date", date},
          {"eligible", advisors.size()},
          {"planned", planned_total},
          {"inserted", inserted_total},
          {"feasible", all_feasible},
          {"runs", runs_out},
          {"unassigned", unassigned},
          {"unreachable", unreachable},
          {"dry_run", dry_run}};
}

}  // namespace daybreak
