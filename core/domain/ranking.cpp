#include "domain/ranking.hpp"

#include <algorithm>
#include <cmath>

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

namespace {

/// What scoring needs about one advisor on one date, worked out once for all their candidates.
struct AdvisorContext {
  const Advisor& advisor;
  const AdvisorHistory& history;
  const std::string& date;
  const RankingOptions& opts;
  std::string segment;
  std::vector<std::string> topics;  ///< the advisor's topics, sorted, without duplicates
  std::vector<std::string> recent;  ///< topics sent within diversity_days before D, sorted, unique
  std::string key;                  ///< "advisor|date|", completed per item for the hash
  std::size_t key_prefix = 0;

  AdvisorContext(const Advisor& a, const AdvisorHistory& h, const std::string& d, const RankingOptions& o)
      : advisor(a), history(h), date(d), opts(o), segment(advisor_segment(a)) {
    topics = sorted_unique(a.topics);
    for (const auto& [day, day_topics] : h.topics_by_date) {
      auto age = days_between(day, d);
      if (age && *age > 0 && *age <= o.diversity_days) recent.insert(recent.end(), day_topics.begin(), day_topics.end());
    }
    recent = sorted_unique(recent);
    key = a.advisor_id + "|" + d + "|";
    key_prefix = key.size();
  }

  static std::vector<std::string> sorted_unique(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  }

  /// stable_key_hash(advisor_id + "|" + date + "|" + content_id)
  std::uint64_t item_hash(const std::string& content_id) {
    key.resize(key_prefix);
    key += content_id;
    return stable_key_hash(key);
  }
};

std::size_t count_common(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::size_t n = 0;
  auto i = a.begin();
  auto j = b.begin();
  while (i != a.end() && j != b.end()) {
    if (*i < *j) {
      ++i;
    } else if (*j < *i) {
      ++j;
    } else {
      ++n, ++i, ++j;
    }
  }
  return n;
}

// The score of one candidate; `hash` is item_hash(item.content_id), which also breaks ties;
// `prepared` and `counts` are what RankingPool worked out for the item.
void score_into(Scored& s, AdvisorContext& ctx, const Content& item, const RankingPool::Item& prepared,
                const EngagementCounts& counts, std::uint64_t hash) {
  const Advisor& advisor = ctx.advisor;
  const RankingOptions& opts = ctx.opts;
  s.content_id = item.content_id;
  ScoreParts& p = s.parts;
  p.segment = ctx.segment;
  if (item.language != advisor.language) {
    s.excluded = "language " + item.language + " is not the advisor's " + advisor.language;
  }
  if (auto it = ctx.history.last_sent.find(item.content_id); it != ctx.history.last_sent.end()) {
    p.last_sent = it->second;
    auto age = days_between(it->second, ctx.date);
    if (!s.excluded && age && *age >= 0 && *age < opts.no_repeat_days) {
      s.excluded = "sent to this advisor on " + it->second + ", inside the " + std::to_string(opts.no_repeat_days) +
                   "-day no-repeat window";
    }
  }

  // Jaccard similarity of the two topic sets.
  const std::vector<std::string>& own = prepared.topics;
  if (!ctx.topics.empty() || !own.empty()) {
    const std::size_t inter = count_common(ctx.topics, own);
    p.topic = static_cast<double>(inter) / static_cast<double>(ctx.topics.size() + own.size() - inter);
  }

  p.exposures = counts.exposures;
  p.reads = std::min(counts.reads, counts.exposures);
  const double a = static_cast<double>(p.reads) + 1.0;
  const double b = static_cast<double>(p.exposures - p.reads) + 1.0;
  p.engagement_mean = a / (a + b);
  std::uint64_t state = mix64(opts.seed ^ hash);
  p.engagement = sample_beta(a, b, state);

  p.freshness = prepared.freshness;

  if (!own.empty()) {
    const std::size_t seen = count_common(own, ctx.recent);
    p.diversity_penalty = static_cast<double>(seen) / static_cast<double>(own.size());
  }

  p.total = opts.w_topic * p.topic + opts.w_engagement * p.engagement + opts.w_freshness * p.freshness -
            opts.w_diversity * p.diversity_penalty;
}

RankingPool::Item prepare_item(const Content& item, const std::string& date, const RankingOptions& opts) {
  RankingPool::Item out;
  out.topics = AdvisorContext::sorted_unique(item.topics);
  if (auto age = days_between(item.valid_from, date); age && opts.freshness_half_life_days > 0) {
    out.freshness = std::pow(0.5, static_cast<double>(std::max(0L, *age)) / opts.freshness_half_life_days);
  }
  return out;
}

EngagementCounts counts_for(const EngagementTable& engagement, const std::string& content_id, const std::string& segment) {
  auto it = engagement.find(std::make_pair(content_id, segment));
  return it == engagement.end() ? EngagementCounts{} : it->second;
}

}  // namespace

RankingPool::RankingPool(const std::vector<Content>& candidates, const EngagementTable& engagement, const std::string& date,
                         const RankingOptions& opts)
    : candidates_(candidates), date_(date), opts_(opts), zeros_(candidates.size()) {
  items_.reserve(candidates.size());
  for (const auto& c : candidates) items_.push_back(prepare_item(c, date, opts));
  for (const auto& entry : engagement) {
    const std::string& segment = entry.first.second;
    if (by_segment_.count(segment)) continue;
    std::vector<EngagementCounts> per_item;
    per_item.reserve(candidates.size());
    for (const auto& c : candidates) per_item.push_back(counts_for(engagement, c.content_id, segment));
    by_segment_.emplace(segment, std::move(per_item));
  }
}

const std::vector<EngagementCounts>& RankingPool::counts(const std::string& segment) const {
  auto it = by_segment_.find(segment);
  return it == by_segment_.end() ? zeros_ : it->second;
}

Scored score_candidate(const Advisor& advisor, const AdvisorHistory& history, const Content& item,
                       const EngagementTable& engagement, const std::string& date, const RankingOptions& opts) {
  AdvisorContext ctx(advisor, history, date, opts);
  Scored s;
  score_into(s, ctx, item, prepare_item(item, date, opts), counts_for(engagement, item.content_id, ctx.segment),
             ctx.item_hash(item.content_id));
  return s;
}

Result<RankResult> rank_candidates(const Advisor& advisor, const AdvisorHistory& history,
                                   const std::vector<Content>& candidates, const EngagementTable& engagement,
                                   const std::string& date, const RankingOptions& opts) {
  return rank_candidates(advisor, history, RankingPool(candidates, engagement, date, opts));
}

Result<RankResult> rank_candidates(const Advisor& advisor, const AdvisorHistory& history, const RankingPool& pool) {
  const std::vector<Content>& candidates = pool.candidates();
  const RankingOptions& opts = pool.options();
  RankResult r;
  r.all.resize(candidates.size());
  AdvisorContext ctx(advisor, history, pool.date(), opts);
  const std::vector<EngagementCounts>& counts = pool.counts(ctx.segment);
  std::optional<std::size_t> best, oldest;
  std::uint64_t best_hash = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::uint64_t h = ctx.item_hash(candidates[i].content_id);
    score_into(r.all[i], ctx, candidates[i], pool.items()[i], counts[i], h);
    const Scored& s = r.all[i];
    if (candidates[i].language != advisor.language) continue;
    // The relaxed choice when the window excludes everything: the item sent longest ago
    // (last_sent is "YYYY-MM-DD", so string order is date order), then the better score.
    if (!oldest || s.parts.last_sent.value_or("") < r.all[*oldest].parts.last_sent.value_or("") ||
        (s.parts.last_sent == r.all[*oldest].parts.last_sent && s.parts.total > r.all[*oldest].parts.total)) {
      oldest = i;
    }
    if (s.excluded) continue;
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
