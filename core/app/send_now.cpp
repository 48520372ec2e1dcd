#include "app/send_now.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include "app/errors.hpp"
#include "app/plan.hpp"
#include "domain/emergency.hpp"
#include "domain/planner.hpp"
#include "domain/status_event.hpp"
#include "store/advisors.hpp"
#include "store/audit.hpp"
#include "store/content.hpp"
#include "store/deliveries.hpp"
#include "store/pg_ledger.hpp"
#include "store/runs.hpp"
#include "store/whatsapp_holds.hpp"

namespace daybreak {

bool SendNowSegment::matches(const std::string& advisor_id, const std::string& tier, const std::string& language) const {
  switch (kind) {
    case Kind::all: return true;
    case Kind::tier: return tier == value;
    case Kind::language: return language == value;
    case Kind::list: return advisors.count(advisor_id) > 0;
  }
  return false;
}

std::string SendNowSegment::describe() const {
  switch (kind) {
    case Kind::all: return "all";
    case Kind::tier: return "tier:" + value;
    case Kind::language: return "language:" + value;
    case Kind::list: return "list:" + value;
  }
  return "?";
}

SendNowSegment parse_send_now_segment(const std::string& spec, const std::vector<std::string>& list_ids) {
  SendNowSegment s;
  if (spec == "all") return s;
  const auto colon = spec.find(':');
  const std::string kind = colon == std::string::npos ? spec : spec.substr(0, colon);
  s.value = colon == std::string::npos ? std::string() : spec.substr(colon + 1);
  if (kind == "tier") {
    s.kind = SendNowSegment::Kind::tier;
  } else if (kind == "language") {
    s.kind = SendNowSegment::Kind::language;
  } else if (kind == "list") {
    s.kind = SendNowSegment::Kind::list;
  } else {
    throw UsageError("--segment: expected all, tier:T, language:L or list:FILE, got \"" + spec + "\"");
  }
  if (colon == std::string::npos || s.value.empty()) throw UsageError("--segment " + kind + ": needs a value (" + kind + ":...)");
  if (s.kind == SendNowSegment::Kind::list) {
    s.advisors.insert(list_ids.begin(), list_ids.end());
    if (s.advisors.empty()) throw UsageError("--segment list:" + s.value + ": the list names no advisor");
  }
  return s;
}

std::vector<std::string> parse_advisor_list(std::string_view text) {
  std::vector<std::string> out;
  bool first = true;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (auto comma = line.find(','); comma != std::string_view::npos) line = line.substr(0, comma);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    const bool header = first && line == "advisor_id";
    first = false;
    if (line.empty() || line.front() == '#' || header) continue;
    out.emplace_back(line);
    if (end == text.size()) break;
  }
  return out;
}

SendNowVerdict judge_send_now(const std::vector<UrgentCapacityInput>& inputs, Millis now, Millis deadline) {
  SendNowVerdict v;
  v.now = now;
  v.deadline = deadline;
  v.urgent_finish = now;
  for (const auto& in : inputs) {
    SendNowChannelVerdict c;
    c.channel = in.channel;
    c.urgent = in.urgent;
    c.morning_remaining = in.morning_remaining;
    c.morning_deadline = in.morning_remaining > 0 ? in.morning_deadline : 0;
    c.capacity = check_urgent_capacity(in);
    if (!c.capacity.feasible) {
      v.refused = true;
      v.refusal = c.capacity.summary;
    }
    v.urgent_finish = std::max(v.urgent_finish, now + static_cast<Millis>(std::ceil(c.capacity.urgent_seconds * 1000.0)));
    if (c.capacity.morning_delay_seconds > 0) v.morning_disturbed = true;
    v.morning_delay_seconds = std::max(v.morning_delay_seconds, c.capacity.morning_delay_seconds);
    v.morning_misses_deadline = v.morning_misses_deadline || c.capacity.morning_misses_deadline;
    v.channels.push_back(std::move(c));
  }
  v.urgent_on_time = v.urgent_finish <= deadline;
  if (!v.refused && !v.urgent_on_time) {
    // At the full provider rate the run still ends after its deadline: say by how much and what
    // deadline would do.
    const double over = static_cast<double>(v.urgent_finish - deadline) / 1000.0;
    const auto need_min = static_cast<long long>(std::ceil(static_cast<double>(v.urgent_finish - now) / 60'000.0));
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "the urgent run would finish %.1f s after its deadline at the full provider rate; raise "
                  "--deadline-minutes to at least %lld or narrow the segment",
                  over, need_min);
    v.refused = true;
    v.refusal = buf;
  }
  return v;
}

std::string format_send_now_verdict(const SendNowVerdict& v, std::string_view tz) {
  std::string out;
  char buf[512];
  std::int64_t total = 0;
  for (const auto& c : v.channels) total += c.urgent;
  std::snprintf(buf, sizeof buf, "urgent run: %lld deliveries, finishes about %s (+%.1f s), deadline %s (+%.0f s): %s\n",
                static_cast<long long>(total), format_instant(v.urgent_finish, tz).c_str(),
                static_cast<double>(v.urgent_finish - v.now) / 1000.0, format_instant(v.deadline, tz).c_str(),
                static_cast<double>(v.deadline - v.now) / 1000.0, v.urgent_on_time ? "on time" : "LATE");
  out += buf;
  for (const auto& c : v.channels) {
    out += "  " + c.capacity.summary + "\n";
    if (c.morning_remaining > 0) {
      std::snprintf(buf, sizeof buf, "  morning on %s: %lld unsent, last send %s -> %s (+%.1f s), deadline %s%s\n",
                    c.channel.c_str(), static_cast<long long>(c.morning_remaining),
                    format_instant(c.capacity.morning_finish_before, tz).c_str(),
                    format_instant(c.capacity.morning_finish_after, tz).c_str(), c.capacity.morning_delay_seconds,
                    format_instant(c.morning_deadline, tz).c_str(),
                    c.capacity.morning_misses_deadline ? ": the morning would MISS its deadline" : "");
      out += buf;
    }
  }
  double row_wait = 0;
  bool morning = false;
  for (const auto& c : v.channels) {
    if (c.morning_remaining <= 0) continue;
    morning = true;
    row_wait = std::max(row_wait, c.capacity.max_row_delay_seconds);
  }
  if (v.refused) {
    out += "REFUSED: " + v.refusal + "\n";
  } else if (!morning) {
    out += "no morning run is sending on these senders\n";
  } else if (!v.morning_disturbed) {
    std::snprintf(buf, sizeof buf, "the morning's last send does not move (its rows due meanwhile wait up to %.1f s)\n", row_wait);
    out += buf;
  } else {
    std::snprintf(buf, sizeof buf, "the morning's last send moves %.1f s later%s\n", v.morning_delay_seconds,
                  v.morning_misses_deadline ? ", past its deadline" : ", still before its deadline");
    out += buf;
  }
  return out;
}

nlohmann::json send_now_verdict_json(const SendNowVerdict& v) {
  nlohmann::json chans = nlohmann::json::array();
  for (const auto& c : v.channels) {
    nlohmann::json j = {{"channel", c.channel},
                        {"urgent", c.urgent},
                        {"channel_mps", c.capacity.channel_mps},
                        {"urgent_seconds", c.capacity.urgent_seconds},
                        {"morning_remaining", c.morning_remaining},
                        {"summary", c.capacity.summary}};
    if (c.morning_remaining > 0) {
      j["morning_deadline"] = format_instant(c.morning_deadline);
      j["morning_finish_before"] = format_instant(c.capacity.morning_finish_before);
      j["morning_finish_after"] = format_instant(c.capacity.morning_finish_after);
      j["morning_delay_seconds"] = c.capacity.morning_delay_seconds;
      j["max_row_delay_seconds"] = c.capacity.max_row_delay_seconds;
      j["morning_misses_deadline"] = c.capacity.morning_misses_deadline;
    }
    chans.push_back(std::move(j));
  }
  return {{"urgent_finish", format_instant(v.urgent_finish)},
          {"urgent_seconds", static_cast<double>(v.urgent_finish - v.now) / 1000.0},
          {"deadline", format_instant(v.deadline)},
          {"urgent_on_time", v.urgent_on_time},
          {"morning_disturbed", v.morning_disturbed},
          {"morning_delay_seconds", v.morning_delay_seconds},
          {"morning_misses_deadline", v.morning_misses_deadline},
          {"refused", v.refused},
          {"refusal", v.refusal},
          {"channels", std::move(chans)}};
}

namespace {

/// The content guard's rule for the item on `date`; CheckFailed with the reason when it may not go out.
void require_usable(store::Db& db, const std::string& content_id, const std::string& date) {
  auto c = store::ContentGet(db, content_id);
  if (!c) throw CheckFailed("content " + content_id + " does not exist");
  if (auto why = content_pull_problem(c->content_id, c->withdrawn, c->valid_from, c->valid_until, date)) {
    throw CheckFailed(*why + ": not sent");
  }
}

}  // namespace

SendNowPlan prepare_send_now(store::Db& db, const Config& cfg, const SendNowRequest& req, Millis now) {
  if (req.deadline_minutes < 1 || req.deadline_minutes > 1440) {
    throw UsageError("--deadline-minutes: expected 1 to 1440, got " + std::to_string(req.deadline_minutes));
  }
  SendNowPlan plan;
  auto today = local_date(now, cfg.default_timezone);
  if (!today) throw ConfigError(today.error().message);
  plan.date = format_date(*today);
  plan.content_id = req.content_id;
  plan.segment = req.segment.describe();
  require_usable(db, req.content_id, plan.date);
  plan.window = {now, now, now + static_cast<Millis>(req.deadline_minutes) * 60'000,
                 now + static_cast<Millis>(req.deadline_minutes) * 60'000};

  // The segment's eligible advisors of the day (opted in, not paused, an opted-in channel), each
  // on the channel plan-deliveries would choose now.
  const auto wa_holds = store::WhatsAppHoldsActive(db, now);
  std::unordered_set<std::string> seen;
  PlanInput in;
  in.window = plan.window;
  // Urgent rows are planned at the full provider rate: dispatch sends them before the morning's
  // due rows on the same senders (EEntry), which is what check_urgent_capacity assumes.
  in.utilisation = 1.0;
  for (const auto& s : cfg.senders) in.senders.push_back({s.id, s.channel, s.mps});
  store::PlanCandidatesForDate(db, plan.date, [&](store::PlanCandidate&& a) {
    if (!req.segment.matches(a.advisor_id, a.tier, a.language)) return;
    seen.insert(a.advisor_id);
    ++plan.eligible;
    bool held = false;
    if (auto h = wa_holds.find(a.advisor_id); h != wa_holds.end()) held = whatsapp_held(h->second, now);
    const auto choice = plan_channel_choice(a, cfg, held);
    if (choice.index < 0) {
      ++plan.unreachable;
      return;
    }
    SendNowRow r;
    r.advisor_id = a.advisor_id;
    r.tier = a.tier;
    auto rank = cfg.tier_rank(a.tier);
    r.tier_rank = rank ? *rank : static_cast<int>(cfg.tiers.size());
    const Channel ch = a.preference[static_cast<std::size_t>(choice.index)];
    r.channel = std::string(to_string(ch));
    r.channel_index = choice.index;
    in.items.push_back({plan_item_key(a.advisor_id, plan.date + "/urgent"), r.tier_rank, ch});
    plan.rows.push_back(std::move(r));
  });
  if (req.segment.kind == SendNowSegment::Kind::list) {
    for (const auto& id : req.segment.advisors) {
      if (!seen.count(id)) plan.list_unknown.push_back(id);
    }
    std::sort(plan.list_unknown.begin(), plan.list_unknown.end());
  }
  if (plan.rows.empty()) {
    throw CheckFailed("segment " + plan.segment + " selects no advisor that can be reached today (" +
                      std::to_string(plan.eligible) + " eligible, " + std::to_string(plan.unreachable) +
                      " without an opted-in channel with a configured sender)");
  }
  auto planned = plan_run(in);
  if (!planned) throw ConfigError("planning the urgent run: " + planned.error().message);
  for (std::size_t i = 0; i < plan.rows.size(); ++i) {
    plan.rows[i].sender = planned->sends[i].sender_id;
    plan.rows[i].planned_at = planned->sends[i].planned_at;
  }

  // The verdict: per channel of the run, against the morning runs sending now.
  std::map<std::string, std::int64_t> per_channel;
  for (const auto& r : plan.rows) ++per_channel[r.channel];
  const auto backlog = store::RunMorningBacklog(db, now, cfg.dispatch.drain_after_deadline_ms);
  std::vector<CapacitySender> senders;
  for (const auto& s : cfg.senders) senders.push_back({s.id, std::string(to_string(s.channel)), s.mps});
  std::vector<UrgentCapacityInput> inputs;
  for (const auto& [channel, n] : per_channel) {
    UrgentCapacityInput u;
    u.senders = senders;
    u.channel = channel;
    u.urgent = n;
    u.now = now;
    for (const auto& b : backlog) {
      if (b.channel != channel) continue;
      u.morning_remaining = b.remaining;
      u.morning_planned_end = b.last_planned_at;
      u.morning_deadline = b.deadline_at;
    }
    inputs.push_back(std::move(u));
  }
  plan.verdict = judge_send_now(inputs, now, plan.window.deadline);

  nlohmann::json by_channel = nlohmann::json::object();
  for (const auto& [channel, n] : per_channel) by_channel[channel] = n;
  plan.report = {{"kind", "urgent"},
                 {"date", plan.date},
                 {"content_id", plan.content_id},
                 {"segment", plan.segment},
                 {"slot_at", format_instant(plan.window.slot_at)},
                 {"deadline", format_instant(plan.window.deadline)},
                 {"deadline_minutes", req.deadline_minutes},
                 {"eligible", plan.eligible},
                 {"planned", plan.rows.size()},
                 {"unreachable", plan.unreachable},
                 {"list_unknown", plan.list_unknown.size()},
                 {"by_channel", std::move(by_channel)},
                 {"feasible", !plan.verdict.refused},
                 {"last_planned_at", format_instant(std::accumulate(plan.rows.begin(), plan.rows.end(), now,
                                                                    [](Millis m, const SendNowRow& r) { return std::max(m, r.planned_at); }))},
                 {"verdict", send_now_verdict_json(plan.verdict)}};
  return plan;
}

nlohmann::json commit_send_now(store::Db& db, const Config& cfg, SendNowPlan& plan, const SendNowRequest& req, Millis now) {
  (void)cfg;
  if (plan.verdict.refused) throw CheckFailed("send-now refused: " + plan.verdict.refusal);
  std::int64_t run_id = 0;
  std::size_t inserted = 0;
  db.write_tx([&] {
    require_usable(db, plan.content_id, plan.date);  // withdrawn between the verdict and now?
    store::RunUpsertParams rp;
    rp.date = plan.date;
    rp.window = plan.window;
    rp.planned_count = static_cast<std::int64_t>(plan.rows.size());
    rp.feasible = true;
    rp.plan_report = plan.report.dump();
    run_id = store::RunInsertUrgent(db, rp);
    plan.window.slot_at = rp.window.slot_at;  // moved when another run had that very instant
    std::vector<std::size_t> order(plan.rows.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return plan.rows[a].planned_at < plan.rows[b].planned_at; });
    store::DeliveryInsertParams dp;
    dp.run_id = run_id;
    dp.date = plan.date;
    dp.slot_at = plan.window.slot_at;
    dp.deadline_at = plan.window.deadline;
    dp.content_id = plan.content_id;
    dp.source = "urgent";
    dp.now = now;
    store::DeliveryInserter inserter(db);
    for (auto i : order) {
      const auto& r = plan.rows[i];
      dp.advisor_id = r.advisor_id;
      dp.tier = r.tier;
      dp.tier_rank = r.tier_rank;
      dp.channel = r.channel;
      dp.channel_index = r.channel_index;
      dp.sender = r.sender;
      dp.planned_at = r.planned_at;
      inserter.add(dp);
    }
    inserted = inserter.finish();
    store::AuditEntry e;
    e.at = now;
    e.actor = req.actor;
    e.sudo_user = req.sudo_user;
    e.command = req.command;
    e.reason = req.reason;
    e.target = "run:" + std::to_string(run_id);
    nlohmann::json after = plan.report;
    after["run_id"] = run_id;
    after["deliveries"] = inserted;
    e.after = after.dump();
    store::AuditAppend(db, e);
  });
  return {{"run_id", run_id},
          {"kind", "urgent"},
          {"date", plan.date},
          {"content_id", plan.content_id},
          {"segment", plan.segment},
          {"deliveries", inserted},
          {"slot_at", format_instant(plan.window.slot_at)},
          {"deadline", format_instant(plan.window.deadline)}};
}

nlohmann::json send_now_pickup_state(store::Db& db, std::int64_t run_id, Millis now) {
  nlohmann::json out = {{"dispatch_running", false}, {"owner", nullptr}, {"run_owner", nullptr}};
  if (auto o = store::RunLiveDispatchOwner(db, now)) {
    out["dispatch_running"] = true;
    out["owner"] = *o;
  }
  if (auto r = store::RunGet(db, run_id); r && r->owner && r->lease_until && *r->lease_until > now) out["run_owner"] = *r->owner;
  return out;
}

nlohmann::json send_now_pickup_state_pg(store::PgConn& c, std::int64_t run_id, Millis now) {
  nlohmann::json out = {{"dispatch_running", false}, {"owner", nullptr}, {"run_owner", nullptr}};
  if (auto o = store::pg_live_dispatch_owner(c, now)) {
    out["dispatch_running"] = true;
    out["owner"] = *o;
  }
  if (auto o = store::pg_run_live_owner(c, run_id, now)) out["run_owner"] = *o;
  return out;
}

}  // namespace daybreak
