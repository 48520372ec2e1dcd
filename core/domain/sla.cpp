#include "domain/sla.hpp"

#include <algorithm>

namespace daybreak {
namespace {

bool on_time(const DeliveryOutcome& o) {
  return is_accepted_state(o.state) && o.accepted_at && *o.accepted_at <= o.deadline_at;
}

// One pass over any sequence of outcomes (all of them, or one group's), so compute_sla_by
// does not copy outcomes into groups.
template <typename Range, typename Get>
SlaFigures figures_of(const Range& range, Get get) {
  SlaFigures f;
  std::vector<Millis> lag, accept_lag;
  for (const auto& item : range) {
    const DeliveryOutcome& o = get(item);
    if (o.state == DeliveryState::cancelled) {
      ++f.cancelled;
      continue;
    }
    ++f.eligible;
    if (o.possible_duplicate) ++f.possible_duplicates;
    if (is_accepted_state(o.state)) {
      if (on_time(o)) {
        ++f.on_time;
      } else {
        ++f.late;  // no accepted_at recorded: it cannot be shown to be on time
      }
      if (o.accepted_at) accept_lag.push_back(*o.accepted_at - o.planned_at);
    } else if (o.state == DeliveryState::dead) {
      ++f.dead;
    } else {
      ++f.failed;
    }
    if (o.first_sent_at) lag.push_back(*o.first_sent_at - o.planned_at);
  }
  f.sla_pct = f.eligible == 0 ? 100.0 : 100.0 * static_cast<double>(f.on_time) / static_cast<double>(f.eligible);
  f.lag_ms = percentiles(std::move(lag));
  f.accept_lag_ms = percentiles(std::move(accept_lag));
  return f;
}

}  // namespace

SlaFigures compute_sla(const std::vector<DeliveryOutcome>& outcomes) {
  return figures_of(outcomes, [](const DeliveryOutcome& o) -> const DeliveryOutcome& { return o; });
}

std::map<std::string, SlaFigures> compute_sla_by(const std::vector<DeliveryOutcome>& outcomes,
                                                 std::string DeliveryOutcome::*key) {
  std::map<std::string, std::vector<const DeliveryOutcome*>> groups;
  for (const DeliveryOutcome& o : outcomes) groups[o.*key].push_back(&o);
  std::map<std::string, SlaFigures> out;
  for (const auto& [k, members] : groups) {
    out.emplace(k, figures_of(members, [](const DeliveryOutcome* o) -> const DeliveryOutcome& { return *o; }));
  }
  return out;
}

double live_success_pct(const std::vector<DeliveryOutcome>& outcomes, Millis now) {
  std::size_t decided = 0, good = 0;
  for (const DeliveryOutcome& o : outcomes) {
    if (o.state == DeliveryState::cancelled) continue;
    if (!is_final_state(o.state) && o.deadline_at >= now) continue;  // still has a chance
    ++decided;
    if (on_time(o)) ++good;
  }
  return decided == 0 ? 100.0 : 100.0 * static_cast<double>(good) / static_cast<double>(decided);
}

LagStats percentiles(std::vector<Millis> values) {
  LagStats s;
  s.n = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  const auto rank = [&](std::size_t pct) {
    // Nearest rank: ceil(pct/100 · n), clamped to [1, n]; integer arithmetic, so 95% of 20 is
    // exactly rank 19 and never 19.000000000000004 rounded up to 20.
    std::size_t r = (pct * s.n + 99) / 100;
    r = std::clamp<std::size_t>(r, 1, s.n);
    return static_cast<double>(values[r - 1]);
  };
  s.p50 = rank(50);
  s.p95 = rank(95);
  s.p99 = rank(99);
  s.max = static_cast<double>(values.back());
  return s;
}

}  // namespace daybreak
