#include "domain/capacity.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace daybreak {
namespace {

std::string f1(double v) {
  char b[48];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}
std::string f2(double v) {
  char b[48];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}
std::string rate(double mps) {
  char b[48];
  if (std::fabs(mps - std::round(mps)) < 1e-9) std::snprintf(b, sizeof b, "%.0f", mps); else std::snprintf(b, sizeof b, "%.2f", mps);
  return b;
}

// The planner's per-second cap of one sender.
double cap_per_second(double mps, double utilisation) { return std::max(1.0, std::floor(utilisation * mps + 1e-9)); }

}  // namespace

CapacityReport plan_capacity(const CapacityInput& in) {
  const double window_s = static_cast<double>(in.window_ms) / 1000.0;
  std::map<std::string, ChannelCapacity> by;
  std::map<std::string, std::vector<CapacityDemand>> tiers;  // channel → demand rows (after growth)
  std::map<std::string, double> max_mps;
  for (const auto& s : in.senders) {
    auto& c = by[s.channel];
    c.channel = s.channel;
    ++c.senders;
    c.sender_mps += s.mps;
    c.capacity_in_window += static_cast<std::int64_t>(cap_per_second(s.mps, in.utilisation) * window_s);
    max_mps[s.channel] = std::max(max_mps[s.channel], s.mps);
  }
  for (const auto& d : in.demand) {
    auto& c = by[d.channel];
    c.channel = d.channel;
    CapacityDemand g = d;
    g.count = static_cast<std::int64_t>(std::ceil(static_cast<double>(d.count) * in.growth - 1e-9));
    c.deliveries += g.count;
    tiers[d.channel].push_back(g);
  }

  CapacityReport rep;
  for (auto& [name, c] : by) {
    const double n = static_cast<double>(c.deliveries);
    c.required_mps = n / (window_s * in.utilisation);
    c.window_utilisation_pct = c.sender_mps > 0 ? 100.0 * n / (c.sender_mps * window_s) : (n > 0 ? INFINITY : 0);
    c.cap_utilisation_pct = c.capacity_in_window > 0 ? 100.0 * n / static_cast<double>(c.capacity_in_window) : (n > 0 ? INFINITY : 0);
    c.drain_seconds = c.sender_mps > 0 ? n / c.sender_mps : (n > 0 ? INFINITY : 0);
    c.retry_headroom = n > 0 ? (c.sender_mps * window_s - n) / n : 0;
    c.feasible = c.deliveries <= c.capacity_in_window;
    c.shortfall = c.feasible ? 0 : c.deliveries - c.capacity_in_window;
    c.add_sender_mps = in.new_sender_mps > 0 ? in.new_sender_mps : (max_mps.count(name) ? max_mps[name] : 80.0);
    if (!c.feasible) {
      const double per_new = cap_per_second(c.add_sender_mps, in.utilisation) * window_s;
      c.add_senders = static_cast<int>(std::ceil(static_cast<double>(c.shortfall) / per_new - 1e-9));
    }
    rep.deliveries += c.deliveries;
    rep.required_mps += c.required_mps;
    rep.sender_mps += c.sender_mps;
  }
  // Moving tiers: from a short channel, the lowest tiers first, to one channel with room for them.
  for (auto& [name, c] : by) {
    if (c.feasible) continue;
    auto rows = tiers[name];
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.tier_rank > b.tier_rank; });
    for (const auto& [other, o] : by) {
      if (other == name || o.senders == 0) continue;
      const std::int64_t spare = o.capacity_in_window - o.deliveries;
      if (spare < c.shortfall) continue;
      std::int64_t moved = 0;
      std::vector<std::string> names;
      for (const auto& r : rows) {
        if (moved >= c.shortfall) break;
        if (moved + r.count > spare) break;
        moved += r.count;
        names.push_back(r.tier);
      }
      if (moved >= c.shortfall) {
        c.move_tiers = names;
        c.move_to = other;
        c.move_count = moved;
        break;
      }
    }
  }
  for (auto& [name, c] : by) {
    std::string who = std::to_string(c.senders) + (c.senders == 1 ? " sender" : " senders") + " of " + rate(c.sender_mps) + " msg/s";
    if (c.feasible) {
      c.recommendation = name + ": fits: " + std::to_string(c.deliveries) + " deliveries need " + f2(c.required_mps) +
                         " msg/s at " + f2(in.utilisation * 100) + "% utilisation; " + who + " carry " +
                         std::to_string(c.capacity_in_window) + " in the window (window utilisation " +
                         f2(c.window_utilisation_pct) + "%, drain " + f1(c.drain_seconds) + " s, retry headroom " +
                         f1(c.retry_headroom) + " sends per delivery)";
    } else {
      c.recommendation = name + ": does not fit: " + std::to_string(c.deliveries) + " deliveries need " +
                         f2(c.required_mps) + " msg/s at " + f2(in.utilisation * 100) + "% utilisation but " +
                         (c.senders ? who + " carry " + std::to_string(c.capacity_in_window) : std::string("no sender carries any")) +
                         " in the window (short " + std::to_string(c.shortfall) + "); add " + std::to_string(c.add_senders) +
                         " " + name + (c.add_senders == 1 ? " sender" : " senders") + " of " + rate(c.add_sender_mps) + " msg/s";
      if (!c.move_tiers.empty()) {
        std::string t;
        for (const auto& s : c.move_tiers) t += (t.empty() ? "" : ", ") + s;
        c.recommendation += ", or move tier" + std::string(c.move_tiers.size() == 1 ? " " : "s ") + t + " (" +
                            std::to_string(c.move_count) + " deliveries) to " + c.move_to;
      }
    }
    rep.feasible = rep.feasible && c.feasible;
    rep.channels.push_back(c);
  }
  return rep;
}

std::string_view to_string(MessagingTier t) {
  switch (t) {
    case MessagingTier::t250: return "250";
    case MessagingTier::t2k: return "2k";
    case MessagingTier::t10k: return "10k";
    case MessagingTier::t100k: return "100k";
    case MessagingTier::unlimited: return "unlimited";
  }
  return "250";
}

std::optional<MessagingTier> messaging_tier_from_string(std::string_view s) {
  if (s == "250") return MessagingTier::t250;
  if (s == "2k" || s == "2K" || s == "2000") return MessagingTier::t2k;
  if (s == "10k" || s == "10K" || s == "10000") return MessagingTier::t10k;
  if (s == "100k" || s == "100K" || s == "100000") return MessagingTier::t100k;
  if (s == "unlimited") return MessagingTier::unlimited;
  return std::nullopt;
}

std::optional<std::int64_t> messaging_tier_limit(MessagingTier t) {
  switch (t) {
    case MessagingTier::t250: return 250;
    case MessagingTier::t2k: return 2'000;
    case MessagingTier::t10k: return 10'000;
    case MessagingTier::t100k: return 100'000;
    case MessagingTier::unlimited: return std::nullopt;
  }
  return std::nullopt;
}

std::vector<PortfolioTierCheck> check_messaging_tiers(const std::vector<TierSender>& senders,
                                                      const std::map<std::string, std::int64_t>& recipients_by_portfolio) {
  std::map<std::string, PortfolioTierCheck> by;
  for (const auto& s : senders) {
    auto& p = by[s.portfolio];
    p.portfolio = s.portfolio;
    p.senders.push_back(s.id);
    if (s.tier && (!p.tier || static_cast<int>(*s.tier) > static_cast<int>(*p.tier))) p.tier = s.tier;
  }
  for (const auto& [name, n] : recipients_by_portfolio) {
    auto& p = by[name];
    p.portfolio = name;
    p.unique_recipients = n;
  }
  std::vector<PortfolioTierCheck> out;
  for (auto& [name, p] : by) {
    std::string who;
    for (const auto& id : p.senders) who += (who.empty() ? "" : ", ") + id;
    const std::string n = std::to_string(p.unique_recipients);
    if (p.senders.empty()) {
      p.checked = true;
      p.limit = 0;
      p.over = p.unique_recipients;
      p.feasible = p.over == 0;
      p.recommendation = "portfolio " + name + ": " + n + " unique WhatsApp recipients but no WhatsApp sender in it";
    } else if (!p.tier) {
      p.recommendation = "portfolio " + name + " (" + who + "): " + n +
                         " unique WhatsApp recipients in 24 h; no messaging_tier configured, not checked";
    } else {
      p.checked = true;
      p.limit = messaging_tier_limit(*p.tier);
      p.over = p.limit ? std::max<std::int64_t>(0, p.unique_recipients - *p.limit) : 0;
      p.feasible = p.over == 0;
      const std::string tier(to_string(*p.tier));
      if (p.feasible) {
        p.recommendation = "portfolio " + name + " (" + who + "): fits: " + n + " unique WhatsApp recipients in 24 h " +
                           (p.limit ? "within its " + tier + " limit of " + std::to_string(*p.limit) : "(unlimited tier)");
      } else {
        p.recommendation = "portfolio " + name + " (" + who + "): does not fit: " + n +
                           " unique WhatsApp recipients in 24 h over its " + tier + " limit of " + std::to_string(*p.limit) +
                           " by " + std::to_string(p.over) + " advisors; move " + std::to_string(p.over) +
                           " advisors to another channel or portfolio, or raise the portfolio's messaging limit";
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

UrgentCapacity check_urgent_capacity(const UrgentCapacityInput& in) {
  UrgentCapacity r;
  for (const auto& s : in.senders) {
    if (s.channel == in.channel) r.channel_mps += s.mps;
  }
  char buf[320];
  if (r.channel_mps <= 0) {
    r.feasible = false;
    r.summary = in.channel + ": no sender carries this channel; the urgent run cannot be sent";
    return r;
  }
  r.urgent_seconds = static_cast<double>(in.urgent) / r.channel_mps;
  const auto urgent_ms = static_cast<Millis>(std::ceil(r.urgent_seconds * 1000.0));
  if (in.morning_remaining <= 0) {
    std::snprintf(buf, sizeof buf, "%lld urgent deliveries take %.1f s at %.0f msg/s; no morning run is sending on %s",
                  static_cast<long long>(in.urgent), r.urgent_seconds, r.channel_mps, in.channel.c_str());
    r.summary = buf;
    return r;
  }
  // Without the urgent run the morning ends at its planned end (or, when it is behind, when its
  // backlog drains at the full rate from now).
  const auto drain_ms = static_cast<Millis>(std::ceil(static_cast<double>(in.morning_remaining) / r.channel_mps * 1000.0));
  r.morning_finish_before = std::max(in.morning_planned_end, in.now + drain_ms);
  r.morning_finish_after = std::max(in.morning_planned_end, in.now + urgent_ms + drain_ms);
  r.morning_delay_seconds = static_cast<double>(r.morning_finish_after - r.morning_finish_before) / 1000.0;
  r.max_row_delay_seconds = r.urgent_seconds;
  r.morning_misses_deadline = r.morning_finish_after > in.morning_deadline && r.morning_finish_before <= in.morning_deadline;
  std::snprintf(buf, sizeof buf,
                "%lld urgent deliveries take %.1f s at %.0f msg/s on %s; the morning's %lld unsent rows wait up to "
                "%.1f s and its last send moves %.1f s later, %.1f s %s its deadline",
                static_cast<long long>(in.urgent), r.urgent_seconds, r.channel_mps, in.channel.c_str(),
                static_cast<long long>(in.morning_remaining), r.max_row_delay_seconds, r.morning_delay_seconds,
                std::abs(static_cast<double>(in.morning_deadline - r.morning_finish_after)) / 1000.0,
                r.morning_finish_after <= in.morning_deadline ? "before" : "after");
  r.summary = buf;
  return r;
}

}  // namespace daybreak
