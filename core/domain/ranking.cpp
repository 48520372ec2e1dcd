#include "domain/ranking.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "domain/planner.hpp"
#include "domain/time.hpp"

namespace daybreak {
namespace {

// splitmix64 stream: one 64-bit state, one well-mixed output per step.
std::uint64_t next_u64(std::uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  return mix64(state);
}

// Uniform in (0, 1): 53 random bits, never exactly 0 (log() below).
double next_unit(std::uint64_t& state) {
  return (static_cast<double>(next_u64(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double next_normal(std::uint64_t& state) {
  // Box–Muller; the second value is dropped to keep the stream simple and stateless.
  double u1 = next_unit(state), u2 = next_unit(state);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Gamma(shape ≥ 1, 1) by Marsaglia and Tsang (2000), "A simple method for generating gamma variables".
double sample_gamma(double shape, std::uint64_t& state) {
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = next_normal(state);
    double v = 1.0 + c * x;
    if (v <= 0) continue;
    v = v * v * v;
    double u = next_unit(state);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

double jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::set<std::string> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  if (sa.empty() && sb.empty()) return 0;
  std::size_t inter = 0;
  for (const auto& t : sa) inter += sb.count(t);
  return static_cast<double>(inter) / static_cast<double>(sa.size() + sb.size() - inter);
}

}  // namespace

double sample_beta(double a, double b, std::uint64_t& state) {
  double x = sample_gamma(a, state);
  double y = sample_gamma(b, state);
  return x / (x + y);
}

std::optional<long> days_between(std::string_view from, std::string_view to) {
  auto f = parse_date(from);
  auto t = parse_date(to);
  if (!f || !t) return std::nullopt;
  return days_since_epoch(*t) - days_since_epoch(*f);
}

std::string advisor_segment(const Advisor& a) { return a.topics.empty() ? std::string("-") : a.topics.front(); }

Scored score_candidate(const Advisor& advisor, const AdvisorHistory& history, const Content& item,
                       const EngagementTable& engagement, const std::string& date, const RankingOptions& opts) {
  Scored s;
  s.content_id = item.content_id;
  ScoreParts& p = s.parts;
  p.segment = advisor_segment(advisor);
  if (item.language != advisor.language) {
    s.excluded = "language " + item.language + " is not the advisor's " + advisor.language;
  }
  if (auto it = history.last_sent.find(item.content_id); it != history.last_sent.end()) {
    p.last_sent = it->second;
    auto age = days_between(it->second, date);
    if (!s.excluded && age && *age >= 0 && *age < opts.no_repeat_days) {
      s.excluded = "sent to this advisor on " + it->second + ", inside the " + std::to_string(opts.no_repeat_days) +
                   "-day no-repeat window";
    }
  }

  p.topic = jaccard(advisor.topics, item.topics);

  EngagementCounts counts;
  if (auto it = engagement.find({item.content_id, p.segment}); it != engagement.end()) counts = it->second;
  p.exposures = counts.exposures;
  p.reads = std::min(counts.reads, counts.exposures);
  const double a = static_cast<double>(p.reads) + 1.0;
  const double b = static_cast<double>(p.exposures - p.reads) + 1.0;
  p.engagement_mean = a / (a + b);
  std::uint64_t state = mix64(opts.seed ^ stable_key_hash(advisor.advisor_id + "|" + date + "|" + item.content_id));
  p.engagement = sample_beta(a, b, state);

  if (auto age = days_between(item.valid_from, date); age && opts.freshness_half_life_days > 0) {
    p.freshness = std::pow(0.5, static_cast<double>(std::max(0L, *age)) / opts.freshness_half_life_days);
  }

  std::set<std::string> recent;
  for (const auto& [d, topics] : history.topics_by_date) {
    auto age = days_between(d, date);
    if (age && *age > 0 && *age <= opts.diversity_days) recent.insert(topics.begin(), topics.end());
  }
  std::set<std::string> own(item.topics.begin(), item.topics.end());
  if (!own.empty()) {
    std::size_t seen = 0;
    for (const auto& t : own) seen += recent.count(t);
    p.diversity_penalty = static_cast<double>(seen) / static_cast<double>(own.size());
  }

  p.total = opts.w_topic * p.topic + opts.w_engagement * p.engagement + opts.w_freshness * p.freshness -
            opts.w_diversity * p.diversity_penalty;
  return s;
}

Result<RankResult> rank_candidates(const Advisor& advisor, const AdvisorHistory& history,
                                   const std::vector<Content>& candidates, const EngagementTable& engagement,
                                   const std::string& date, const RankingOptions& opts) {
  RankResult r;
  r.all.reserve(candidates.size());
  std::optional<std::size_t> best, oldest;
  std::uint64_t best_hash = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    r.all.push_back(score_candidate(advisor, history, candidates[i], engagement, date, opts));
    const Scored& s = r.all.back();
    if (candidates[i].language != advisor.language) continue;
    // The relaxed choice when the window excludes everything: the item sent longest ago
    // (last_sent is "YYYY-MM-DD", so string order is date order), then the better score.
    if (!oldest || s.parts.last_sent.value_or("") < r.all[*oldest].parts.last_sent.value_or("") ||
        (s.parts.last_sent == r.all[*oldest].parts.last_sent && s.parts.total > r.all[*oldest].parts.total)) {
      oldest = i;
    }
    if (s.excluded) continue;
    std::uint64_t h = stable_key_hash(advisor.advisor_id + "|" + date + "|" + s.content_id);
    if (!best || s.parts.total > r.all[*best].parts.total ||
        (s.parts.total == r.all[*best].parts.total && h < best_hash)) {
      best = i;
      best_hash = h;
    }
  }
  if (!best && !oldest) return Error{"no_candidate", "no fallback content in language " + advisor.language};
  if (!best) {
    best = oldest;
    r.all[*best].parts.relaxed_no_repeat = true;
  }
  r.index = *best;
  r.parts = r.all[*best].parts;
  return r;
}

}  // namespace daybreak
