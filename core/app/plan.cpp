#include "app/plan.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "app/errors.hpp"
#include "domain/capacity.hpp"
#include "domain/planner.hpp"
#include "domain/status_event.hpp"
#include "domain/time.hpp"
#include "engine/sender_pool.hpp"
#include "store/advisors.hpp"
#include "store/assignments.hpp"
#include "store/content.hpp"
#include "store/deliveries.hpp"
#include "store/monitoring.hpp"
#include "store/runs.hpp"
#include "store/schedule.hpp"
#include "store/whatsapp_holds.hpp"
#include "store/withdrawal.hpp"

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

ChannelChoice plan_channel_choice(const store::PlanCandidate& a, const Config& cfg, bool whatsapp_held_now) {
  ChannelChoice out;
  out.index = engine::first_usable_channel(a.preference.data(), a.preference.size(), 0, [&](Channel c) {
    const bool usable = a.opted_in(c) && !cfg.senders_of(c).empty();
    if (usable && c == Channel::whatsapp && whatsapp_held_now) {
      out.skipped_whatsapp = true;
      return false;
    }
    return usable;
  });
  return out;
}

nlohmann::json check_whatsapp_tiers(store::Db& db, const Config& cfg, const std::string& date, Millis last_deadline,
                                    const RecipientFeed& night) {
  std::vector<TierSender> senders;
  std::unordered_map<std::string, std::string> portfolio_of;
  bool any_tier = false;
  for (const auto& s : cfg.senders) {
    if (s.channel != Channel::whatsapp) continue;
    senders.push_back({s.id, s.portfolio, s.messaging_tier});
    portfolio_of[s.id] = s.portfolio;
    any_tier = any_tier || s.messaging_tier.has_value();
  }
  nlohmann::json out = {{"date", date}, {"feasible", true}, {"portfolios", nlohmann::json::array()}};
  if (!any_tier) return out;
  std::map<std::string, std::unordered_set<std::string>> recipients;
  auto add = [&](const std::string& sender, const std::string& advisor) {
    auto p = portfolio_of.find(sender);
    // A row on a sender no longer configured still reached someone: count it in the default portfolio.
    recipients[p == portfolio_of.end() ? std::string("default") : p->second].insert(advisor);
  };
  night(add);
  const Millis since = last_deadline - 86'400'000LL;
  auto d = parse_date(date);
  if (d) {
    store::DeliveryWhatsAppRecipients(db, date, false, format_date(add_days(*d, -2)), format_date(add_days(*d, 1)), since, add);
  }
  std::map<std::string, std::int64_t> counts;
  for (const auto& [p, set] : recipients) counts[p] = static_cast<std::int64_t>(set.size());
  bool feasible = true;
  for (const auto& c : check_messaging_tiers(senders, counts)) {
    feasible = feasible && c.feasible;
    out["portfolios"].push_back({{"portfolio", c.portfolio},
                                 {"senders", c.senders},
                                 {"tier", c.tier ? nlohmann::json(std::string(to_string(*c.tier))) : nlohmann::json(nullptr)},
                                 {"limit", c.limit ? nlohmann::json(*c.limit) : nlohmann::json(nullptr)},
                                 {"unique_recipients", c.unique_recipients},
                                 {"over", c.over},
                                 {"checked", c.checked},
                                 {"feasible", c.feasible},
                                 {"recommendation", c.recommendation}});
  }
  out["feasible"] = feasible;
  out["window_from"] = format_instant(since);
  out["window_to"] = format_instant(last_deadline);
  return out;
}

namespace {
// From this many stored advisors on, the load reads in two halves at once (each_plan_candidate).
constexpr std::int64_t kSplitLoadAdvisors = 20'000;

// The day's candidates (store::PlanCandidatesForDate), each to fn() in advisor_id order, and
// `by_language` counted. Inside plan-deliveries' write transaction on a large ledger the reads
// take both cores: a thread reads the upper half of the advisors through its own connection
// (store::reader_beside: the same rows) and holds them while this thread reads the lower half
// and plans each advisor as it comes; then the held half goes to fn() in order. The candidates,
// their order and the counts are those of one pass; only the wall time changes (at 1M the load
// was 1.5–1.9 s of a 6–7 s plan, the second core idle). A dry run reads in one pass.
void each_plan_candidate(store::Db& db, const std::string& date, bool dry_run,
                         const std::function<void(store::PlanCandidate&&)>& fn, std::map<std::string, std::int64_t>& by_language) {
  std::unique_ptr<store::Db> rdb;
  std::optional<std::string> middle;
  if (const std::int64_t advisors = dry_run ? 0 : store::AdvisorCount(db);
      advisors >= kSplitLoadAdvisors && (rdb = store::reader_beside(db))) {
    middle = store::AdvisorIdAt(db, advisors / 2);
  }
  if (!middle) {
    store::PlanCandidatesForDate(db, date, fn, &by_language);
    return;
  }
  std::vector<store::PlanCandidate> upper;
  std::map<std::string, std::int64_t> upper_languages;
  std::exception_ptr upper_error;
  std::thread reader([&] {
    try {
      rdb->exec("BEGIN");  // one snapshot for the three scans
      store::PlanCandidatesForDate(
          *rdb, date, [&](store::PlanCandidate&& c) { upper.push_back(std::move(c)); }, &upper_languages,
          store::AdvisorIdRange{middle, std::nullopt});
      rdb->exec("COMMIT");
    } catch (...) {
      upper_error = std::current_exception();
    }
  });
  try {
    store::PlanCandidatesForDate(db, date, fn, &by_language, store::AdvisorIdRange{std::nullopt, middle});
  } catch (...) {
    reader.join();
    throw;
  }
  reader.join();
  rdb.reset();  // closed before the commit (store::reader_beside)
  if (upper_error) std::rethrow_exception(upper_error);
  for (auto& c : upper) fn(std::move(c));
  for (const auto& [language, n] : upper_languages) by_language[language] += n;
}

// `by_language`: filled with the eligible advisors per language (EmergencyCoverage's count).
DayPlanResult plan_deliveries_in(store::Db& db, const Config& cfg, const std::string& date, Millis now, bool dry_run,
                                  const std::string& planned_by, std::map<std::string, std::int64_t>& by_language) {
  auto d = parse_date(date);
  if (!d) throw UsageError(d.error().message);
  // Wall time of each phase, reported in the JSON (the 1M goal is under 10 s in all).
  using SteadyClock = std::chrono::steady_clock;
  auto t0 = SteadyClock::now();
  auto mark = [&t0](nlohmann::json& into, const char* phase) {
    auto t = SteadyClock::now();
    into[phase] = std::chrono::duration<double, std::milli>(t - t0).count();
    t0 = t;
  };
  nlohmann::json timings = nlohmann::json::object();
  // One ordered pass over the eligible advisors with their assignment for D: each advisor's slot
  // instant (their local D at their slot) and first usable channel; advisors sharing a slot
  // instant form one run. Strings shared by many advisors (tier, content, source) are stored once.
  struct Pending {
    std::string advisor_id;
    std::uint32_t content;  ///< index into `interned`
    std::uint32_t source;
    std::uint32_t tier;
    int tier_rank;
    Channel channel;
    int channel_index;
  };
  std::vector<std::string> interned;
  std::unordered_map<std::string, std::uint32_t> intern_index;
  auto intern = [&](const std::string& v) {
    auto [it, fresh] = intern_index.try_emplace(v, static_cast<std::uint32_t>(interned.size()));
    if (fresh) interned.push_back(v);
    return it->second;
  };
  // Most advisors share a few (slot, time zone) pairs: each instant is computed once.
  std::map<std::pair<std::string, std::string>, Result<Millis>> slot_cache;
  std::map<Millis, std::vector<Pending>> by_slot;
  const std::pair<std::string, std::string>* last_slot = nullptr;  // the (slot, zone) of the last advisor
  const Result<Millis>* last_instant = nullptr;  // slot_cache's entry for last_slot (map nodes stay put)
  std::vector<Pending>* last_run = nullptr;      // by_slot's run for *last_instant, once one was planned
  nlohmann::json unassigned = nlohmann::json::array();
  nlohmann::json unreachable = nlohmann::json::array();
  std::size_t eligible = 0;
  // WhatsApp holds (sql/012, a 131049 failed status within 24 h): an advisor held at their slot
  // instant is planned on their next channel (domain/status_event.hpp).
  const auto wa_holds = store::WhatsAppHoldsActive(db, now);
  std::size_t held_off_whatsapp = 0;
  each_plan_candidate(db, date, dry_run, [&](store::PlanCandidate&& a) {
    ++eligible;
    if (!a.content_id) {
      unassigned.push_back(a.advisor_id);
      return;
    }
    const std::string& slot_text = a.slot.empty() ? cfg.default_slot : a.slot;
    const std::string& zone_text = a.timezone.empty() ? cfg.default_timezone : a.timezone;
    // Consecutive advisors mostly share their (slot, time zone): the map is searched (and its
    // key built) only when the pair changes.
    if (!last_instant || slot_text != last_slot->first || zone_text != last_slot->second) {
      auto key = std::make_pair(slot_text, zone_text);
      auto cached = slot_cache.find(key);
      if (cached == slot_cache.end()) {
        auto slot = parse_slot(key.first);
        cached = slot_cache.emplace(key, slot ? slot_instant(*d, *slot, key.second) : Result<Millis>(slot.error())).first;
      }
      last_slot = &cached->first;
      last_instant = &cached->second;
      last_run = nullptr;
    }
    const auto& s = *last_instant;
    if (!s) {
      unreachable.push_back({{"advisor_id", a.advisor_id}, {"reason", s.error().message}});
      return;
    }
    auto rank = cfg.tier_rank(a.tier);
    // The stored preference list decides the channel index; only opted-in channels with a
    // configured sender can be planned: dispatch's choice of the next channel (sender_pool.hpp).
    std::optional<Millis> hold;
    if (!wa_holds.empty()) {
      if (auto h = wa_holds.find(a.advisor_id); h != wa_holds.end() && whatsapp_held(h->second, *s)) hold = h->second;
    }
    const auto choice = plan_channel_choice(a, cfg, hold.has_value());
    const bool skipped_whatsapp = choice.skipped_whatsapp;
    const int chosen = choice.index;
    if (chosen < 0) {
      unreachable.push_back({{"advisor_id", a.advisor_id},
                             {"reason", skipped_whatsapp ? "whatsapp held until " + format_instant(*hold) +
                                                               " (131049: per-user marketing limit) and no other "
                                                               "opted-in channel with a configured sender"
                                                         : std::string("no opted-in channel with a configured sender")}});
      return;
    }
    if (skipped_whatsapp) ++held_off_whatsapp;
    if (!last_run) last_run = &by_slot[*s];
    last_run->push_back({std::move(a.advisor_id), intern(*a.content_id), intern(a.source), intern(a.tier),
                           rank ? *rank : static_cast<int>(cfg.tiers.size()), a.preference[static_cast<std::size_t>(chosen)], chosen});
  }, by_language);
  mark(timings, "load_ms");

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
    for (const auto& p : items) in.items.push_back({plan_item_key(p.advisor_id, date), p.tier_rank, p.channel});
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
  // Meta's messaging limit per business portfolio: unique WhatsApp recipients in 24 h.
  nlohmann::json tiers;
  {
    Millis last_deadline = 0;
    for (const auto& rp : plans) last_deadline = std::max(last_deadline, rp.window.deadline);
    tiers = check_whatsapp_tiers(db, cfg, date, last_deadline, [&](const auto& add) {
      for (const auto& rp : plans) {
        for (std::size_t i = 0; i < rp.items->size(); ++i) {
          if ((*rp.items)[i].channel == Channel::whatsapp) add(rp.plan.sends[i].sender_id, (*rp.items)[i].advisor_id);
        }
      }
    });
    all_feasible = all_feasible && tiers["feasible"].get<bool>();
  }
  mark(timings, "plan_ms");
  if (!dry_run) {
    for (auto& rp : plans) {
      store::RunUpsertParams rup;
      rup.date = date;
      rup.window = rp.window;
      rup.planned_count = static_cast<std::int64_t>(rp.items->size());
      rup.feasible = rp.plan.feasible;
      rup.plan_report = rp.report.dump();
      auto run_id = store::RunUpsert(db, rup);
      // Reused for every row; it points at the run's items, the interned values, the channel
      // names and the plan, which outlive the inserter, so no row's strings are copied (add_ref).
      store::DeliveryInsertRef dp;
      std::map<Channel, std::string> channel_names;  // nodes stay put as names are added
      store::DeliveryInserter inserter(db);
      // Rows go in planned order, so delivery ids follow send order: dispatch's claims and
      // outcome updates then touch consecutive pages of the table and its indexes, not a random
      // page per row (measured on the 100k bench: the writer's commits were a third of its CPU).
      // Sorted as (planned_at, item) pairs in one array: the order a stable sort of the items by
      // planned_at gives, without a comparison that reaches into the plan's sends at random.
      std::vector<std::pair<Millis, std::uint32_t>> by_time(rp.items->size());
      for (std::uint32_t i = 0; i < by_time.size(); ++i) by_time[i] = {rp.plan.sends[i].planned_at, i};
      std::sort(by_time.begin(), by_time.end());
      // What every row of the run shares is set once; per row only what differs is assigned.
      dp.run_id = run_id;
      dp.date = &date;
      dp.slot_at = rp.window.slot_at;
      dp.deadline_at = rp.window.deadline;
      dp.now = now;
      // Planned order visits the run's items and sends at random: each row's item and send are
      // fetched into the cache a few rows ahead (kAhead), so the bind does not wait for memory
      // (measured: without it, a cache miss on the row's strings was 7% of the job's samples).
      constexpr std::size_t kAhead = 16;
      for (std::size_t k = 0; k < by_time.size(); ++k) {
        if (k + kAhead < by_time.size()) {
          const std::uint32_t next = by_time[k + kAhead].second;
          __builtin_prefetch(&(*rp.items)[next]);
          __builtin_prefetch(&rp.plan.sends[next].sender_id);
        }
        const auto& [planned_at, i] = by_time[k];
        const auto& p = (*rp.items)[i];
        const auto& send = rp.plan.sends[i];
        dp.advisor_id = &p.advisor_id;
        dp.content_id = &interned[p.content];
        dp.source = &interned[p.source];
        dp.tier = &interned[p.tier];
        dp.tier_rank = p.tier_rank;
        dp.channel = &channel_names.try_emplace(p.channel, to_string(p.channel)).first->second;
        dp.channel_index = p.channel_index;
        dp.sender = &send.sender_id;
        dp.planned_at = planned_at;
        inserter.add_ref(dp);
      }
      const std::size_t inserted = inserter.finish();
      rp.report["run_id"] = run_id;
      rp.report["inserted"] = inserted;
      rp.report["already_planned"] = rp.items->size() - inserted;
      inserted_total += inserted;
    }
  }
  if (!dry_run) {
    // The day's summary: dispatch's dead-man's switch compares it with the eligible advisors of
    // the morning (advisors this plan could not reach are not missing).
    store::DayPlanRecord(db, {date, now, static_cast<std::int64_t>(eligible), static_cast<std::int64_t>(planned_total),
                              static_cast<std::int64_t>(unreachable.size()), static_cast<std::int64_t>(unassigned.size()),
                              planned_by});
  }
  mark(timings, "write_ms");
  for (auto& rp : plans) runs_out.push_back(rp.report);
  DayPlanResult out;
  out.date = date;
  out.eligible = static_cast<std::size_t>(eligible);
  out.planned = planned_total;
  out.inserted = inserted_total;
  out.runs = plans.size();
  out.unassigned = unassigned.size();
  out.unreachable = unreachable.size();
  out.feasible = all_feasible;
  out.report = {{"date", date},
                {"eligible", eligible},
                {"planned", planned_total},
                {"inserted", inserted_total},
                {"feasible", all_feasible},
                {"runs", std::move(runs_out)},
                {"unassigned", std::move(unassigned)},
                {"unreachable", std::move(unreachable)},
                {"whatsapp_held", held_off_whatsapp},
                {"messaging_tiers", std::move(tiers)},
                {"dry_run", dry_run},
                {"timings", std::move(timings)}};
  return out;
}
}  // namespace

namespace {
nlohmann::json languages_without_emergency_in(const std::vector<store::LanguageCoverage>& coverage, const Config& cfg) {
  std::int64_t fallback_items = 0;
  for (const auto& l : coverage) {
    if (l.language == cfg.emergency_language) fallback_items = l.emergency_items;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& l : coverage) {
    if (l.emergency_items > 0 || (l.advisors == 0 && l.language != cfg.emergency_language)) continue;
    const bool covered = l.language != cfg.emergency_language && fallback_items > 0;
    out.push_back({{"language", l.language},
                   {"advisors", l.advisors},
                   {"covered_by", covered ? nlohmann::json(cfg.emergency_language) : nlohmann::json(nullptr)}});
  }
  return out;
}
}  // namespace

nlohmann::json languages_without_emergency(store::Db& db, const Config& cfg, const std::string& date) {
  return languages_without_emergency_in(store::EmergencyCoverage(db, date, cfg.emergency_language), cfg);
}

DayPlanResult plan_deliveries(store::Db& db, const Config& cfg, const std::string& date, Millis now, bool dry_run,
                              const std::string& planned_by) {
  // The eligible advisors per language, counted in the plan's own pass over them (a second
  // scan of a million advisors after the commit cost about a second at 1M).
  std::map<std::string, std::int64_t> by_language;
  if (dry_run) {
    auto rep = plan_deliveries_in(db, cfg, date, now, true, planned_by, by_language);
    rep.report["languages_without_emergency"] =
        languages_without_emergency_in(store::EmergencyCoverageFromCounts(db, date, cfg.emergency_language, by_language), cfg);
    return rep;
  }
  // Read, plan and write in one write transaction. Every advisor, assignment and run a planned
  // row points at is read or written inside it while it holds the write lock, so no other
  // connection can remove them in between: the rows are consistent by construction, and the
  // per-row foreign-key lookups are skipped for this transaction (measured: about 1.2 s of the
  // 1M-delivery plan). SQLite only changes foreign_keys outside a transaction.
  db.exec("PRAGMA foreign_keys=OFF");
  DayPlanResult out;
  std::chrono::steady_clock::time_point before_commit;
  try {
    db.write_tx([&] {
      out = plan_deliveries_in(db, cfg, date, now, false, planned_by, by_language);
      before_commit = std::chrono::steady_clock::now();
    });
  } catch (...) {
    db.exec("PRAGMA foreign_keys=ON");
    throw;
  }
  db.exec("PRAGMA foreign_keys=ON");
  out.report["timings"]["commit_ms"] =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - before_commit).count();
  // After the commit, outside the write lock: a pull on D must have an emergency item to fall
  // back on (domain/emergency.hpp); a language without one is a warning, not a failed plan. The
  // advisors per language were counted inside the transaction; only content is read here.
  auto started = std::chrono::steady_clock::now();
  out.report["languages_without_emergency"] =
      languages_without_emergency_in(store::EmergencyCoverageFromCounts(db, date, cfg.emergency_language, by_language), cfg);
  out.report["timings"]["emergency_check_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return out;
}

}  // namespace daybreak
