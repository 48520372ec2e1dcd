#include "domain/sla.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <ostream>
#include <set>

namespace daybreak {
namespace {

double pct_share(std::size_t n, std::size_t of, double if_none) {
  return of == 0 ? if_none : 100.0 * static_cast<double>(n) / static_cast<double>(of);
}

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
    if (delivered_on_time(o)) ++f.delivered_on_time;
    if (status_delivered(o)) ++f.delivered;
    if (status_read(o)) ++f.read;
    if (status_unknown(o)) ++f.unknown;
    if (failed_after_accept(o)) ++f.failed_after_accept;
  }
  f.sla_pct = f.eligible == 0 ? 100.0 : 100.0 * static_cast<double>(f.on_time) / static_cast<double>(f.eligible);
  f.delivered_sla_pct = pct_share(f.delivered_on_time, f.eligible, 100.0);
  f.read_pct = pct_share(f.read, f.eligible, 0.0);
  f.unknown_pct = pct_share(f.unknown, f.eligible, 0.0);
  f.failed_after_accept_pct = pct_share(f.failed_after_accept, f.eligible, 0.0);
  f.lag_ms = percentiles(std::move(lag));
  f.accept_lag_ms = percentiles(std::move(accept_lag));
  return f;
}

/// Every Label's text: never destroyed (a Label may be read while statics are torn down) and
/// never shrunk, so a pointer into it stays valid for the life of the process.
const std::string* intern_label(std::string_view s) {
  // A thread's last few labels first: a run's million outcomes carry a handful of values, and
  // this avoids the lock and the tree for nearly all of them.
  constexpr std::size_t kCache = 16;
  thread_local std::array<const std::string*, kCache> cache{};
  thread_local std::size_t cached = 0;
  for (std::size_t i = 0; i < cached; ++i) {
    if (*cache[i] == s) return cache[i];
  }
  static std::mutex mu;
  static auto* table = new std::set<std::string, std::less<>>();
  const std::string* p = nullptr;
  {
    std::lock_guard lk(mu);
    auto it = table->find(s);
    if (it == table->end()) it = table->emplace(s).first;
    p = &*it;
  }
  cache[cached < kCache ? cached++ : kCache - 1] = p;
  return p;
}

/// The empty label's text (a function's static: a Label built by another file's static
/// initializer must not see it unconstructed).
const std::string* empty_label() noexcept {
  static const std::string* const e = new std::string();
  return e;
}

}  // namespace

Label::Label() noexcept : s_(empty_label()) {}

Label::Label(std::string_view s) : s_(s.empty() ? empty_label() : intern_label(s)) {}

std::ostream& operator<<(std::ostream& os, const Label& l) { return os << l.str(); }

std::ostream& operator<<(std::ostream& os, OptMillis t) {
  if (!t) return os << "(none)";
  return os << *t;
}

bool delivered_on_time(const DeliveryOutcome& o) {
  if (!is_accepted_state(o.state)) return false;
  std::optional<Millis> t = o.delivered_at;
  if (o.read_at && (!t || *o.read_at < *t)) t = o.read_at;  // read implies delivered
  return t && *t <= o.deadline_at;
}

bool status_delivered(const DeliveryOutcome& o) {
  return o.state == DeliveryState::delivered || o.state == DeliveryState::read ||
         (o.state == DeliveryState::accepted && (o.delivered_at || o.read_at));
}

bool status_read(const DeliveryOutcome& o) {
  return o.state == DeliveryState::read || (is_accepted_state(o.state) && o.read_at.has_value());
}

// A row still `accepted` with neither time: no status says it reached the phone.
bool failed_after_accept(const DeliveryOutcome& o) {
  return o.state == DeliveryState::accepted && o.status_failed && !o.delivered_at && !o.read_at;
}

bool status_unknown(const DeliveryOutcome& o) {
  return o.state == DeliveryState::accepted && !o.status_failed && !o.delivered_at && !o.read_at;
}

SlaFigures compute_sla(const std::vector<DeliveryOutcome>& outcomes) {
  return figures_of(outcomes, [](const DeliveryOutcome& o) -> const DeliveryOutcome& { return o; });
}

std::map<std::string, SlaFigures> compute_sla_by(const std::vector<DeliveryOutcome>& outcomes,
                                                 Label DeliveryOutcome::*key) {
  std::map<std::string, std::vector<const DeliveryOutcome*>> groups;
  for (const DeliveryOutcome& o : outcomes) groups[(o.*key).str()].push_back(&o);
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

double live_delivered_pct(const std::vector<DeliveryOutcome>& outcomes, Millis now) {
  std::size_t decided = 0, good = 0;
  for (const DeliveryOutcome& o : outcomes) {
    if (o.state == DeliveryState::cancelled) continue;
    const bool settled = o.state == DeliveryState::dead || (is_accepted_state(o.state) && !status_unknown(o));
    if (!settled && o.deadline_at >= now) continue;  // still has a chance
    ++decided;
    if (delivered_on_time(o)) ++good;
  }
  return pct_share(good, decided, 100.0);
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
