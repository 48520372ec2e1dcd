#pragma once
// The fallback ranker: which fallback item an advisor without content gets on
// day D, with every part of the decision kept so `daybreak explain` can show it.
//
// Pure: no I/O, no clock. What the store knows (the advisor's recent history, the learned
// read counts, the pool) comes in as values; randomness comes from a seed, so the same inputs
// and seed always give the same choice and the same parts.
//
// A candidate is
//   * excluded (hard) when its language is not the advisor's, or it was assigned to the same
//     advisor within the no-repeat window (default 14 days);
//   * otherwise scored  total = w_topic·topic + w_engagement·engagement + w_freshness·freshness
//                               − w_diversity·diversity_penalty,  each part in [0, 1]:
//     - topic: Jaccard similarity of the advisor's and the item's topic sets;
//     - engagement: one Thompson sample from Beta(reads + 1, unread + 1) for (item, segment),
//       drawn from a generator seeded by (seed, advisor, date, item): explores items with little
//       evidence, exploits ones that are read, and needs no tuning constant of its own;
//     - freshness: 0.5^(age / half-life) where age = D − valid_from in days (no valid_from: 0);
//     - diversity_penalty: the share of the item's topics the advisor already got in the 7 days
//       before D.
// When every same-language item is inside the no-repeat window the window is relaxed rather
// than leaving the advisor silent (zero silent days outranks no-repeat): the item sent longest
// ago wins and the result says `relaxed_no_repeat`.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/result.hpp"
#include "domain/types.hpp"

namespace daybreak {

/// The engagement segment of an advisor: the first (primary) topic of their interests, or "-"
/// when they listed none.
///
/// Why the primary topic: language is already a hard filter, so a language segment would carry
/// no information within one item (everyone who receives an item shares its language); tier is a
/// delivery-priority class, not an interest signal; the topic an advisor put first is the best
/// available predictor of what they open. With the default eight topics there are few segments,
/// so each (item, segment) posterior gets hundreds of observations a day at 2,000 advisors and
/// learns within days; tier|topic would quadruple the arms for little gain.
std::string advisor_segment(const Advisor& a);

/// Learned read counts for one (item, segment): exposures are deliveries known to have reached
/// the phone (delivered or read), reads those with a read receipt.
struct EngagementCounts {
  std::int64_t exposures = 0;
  std::int64_t reads = 0;
};

/// (content_id, segment) → counts.
using EngagementTable = std::map<std::pair<std::string, std::string>, EngagementCounts>;

/// Tunable weights and windows. Each weight says how much a part moves the total; the defaults
/// make learned engagement dominate once it has evidence (reads are what we want), with topic
/// match as the prior that orders items nobody has read yet.
struct RankingOptions {
  int no_repeat_days = 14;          ///< an item is not given to the same advisor again within this many days
  int diversity_days = 7;           ///< "the advisor's week": topics sent in the 7 days before D
  double freshness_half_life_days = 14;  ///< an item 14 days past valid_from scores half as fresh
  double w_topic = 0.35;            ///< prior: interest match orders unread items
  double w_engagement = 1.0;        ///< learned read rate: the objective itself
  double w_freshness = 0.1;         ///< a nudge, not a driver: fresh beats stale among equals
  double w_diversity = 0.15;        ///< enough to rotate topics, not to force an unread item
  std::uint64_t seed = 0;           ///< seeds the Thompson samples
};

/// What one advisor received recently (the store's assignments for the days before D).
struct AdvisorHistory {
  /// content_id → most recent date it was assigned ("YYYY-MM-DD"), D excluded.
  std::map<std::string, std::string> last_sent;
  /// date → topics of the item assigned that day (for the diversity penalty).
  std::map<std::string, std::vector<std::string>> topics_by_date;
};

/// The parts of one candidate's score, as stored in assignments.score_parts.
struct ScoreParts {
  double topic = 0;              ///< Jaccard similarity, [0, 1]
  double engagement = 0;         ///< the Thompson sample, [0, 1]
  double engagement_mean = 0;    ///< posterior mean (reads+1)/(exposures+2), for explanation
  std::int64_t exposures = 0;    ///< evidence behind the posterior
  std::int64_t reads = 0;
  double freshness = 0;          ///< [0, 1]
  double diversity_penalty = 0;  ///< [0, 1]
  double total = 0;              ///< the weighted sum the ranker maximises
  std::string segment;           ///< the advisor's engagement segment
  bool relaxed_no_repeat = false;  ///< chosen although inside the no-repeat window (pool exhausted)
  std::optional<std::string> last_sent;  ///< when this advisor last got the item, if ever (within history)
};

/// A candidate's verdict: excluded with a reason, or scored.
struct Scored {
  std::string content_id;
  std::optional<std::string> excluded;  ///< why it cannot be chosen (language, no-repeat)
  ScoreParts parts;
};

/// Scores one candidate for `advisor` on `date` ("YYYY-MM-DD"). Deterministic for a given seed.
Scored score_candidate(const Advisor& advisor, const AdvisorHistory& history, const Content& item,
                       const EngagementTable& engagement, const std::string& date, const RankingOptions& opts);

/// The ranker's choice: index into the candidates, the parts, and every candidate's verdict.
struct RankResult {
  std::size_t index = 0;
  ScoreParts parts;
  std::vector<Scored> all;  ///< same order as the candidates
};

/// Picks the best candidate for `advisor` on `date`. Ties on total break by a stable hash of
/// (advisor, date, item), so advisors with the same interests spread over equal items. Error
/// `no_candidate` when no candidate is in the advisor's language.
Result<RankResult> rank_candidates(const Advisor& advisor, const AdvisorHistory& history,
                                   const std::vector<Content>& candidates, const EngagementTable& engagement,
                                   const std::string& date, const RankingOptions& opts);

/// What rank_candidates works out about each candidate that does not depend on the advisor:
/// its topics sorted without duplicates, its freshness on the date, and its engagement counts
/// per segment. Prepared once per (candidates, engagement, date, options) and used for every
/// advisor, it gives the same scores as the overload above (the same operations in the same
/// order), without re-sorting topics, re-parsing dates and searching the engagement table per
/// advisor. Holds references: `candidates` and `date` must outlive it.
class RankingPool {
 public:
  RankingPool(const std::vector<Content>& candidates, const EngagementTable& engagement, const std::string& date,
              const RankingOptions& opts);
  const std::vector<Content>& candidates() const { return candidates_; }
  const std::string& date() const { return date_; }
  const RankingOptions& options() const { return opts_; }
  struct Item {
    std::vector<std::string> topics;  ///< sorted, unique
    double freshness = 0;
  };
  const std::vector<Item>& items() const { return items_; }
  /// Counts per candidate for `segment` (all zero when the table has none for it).
  const std::vector<EngagementCounts>& counts(const std::string& segment) const;

 private:
  const std::vector<Content>& candidates_;
  const std::string& date_;
  RankingOptions opts_;
  std::vector<Item> items_;
  std::map<std::string, std::vector<EngagementCounts>, std::less<>> by_segment_;
  std::vector<EngagementCounts> zeros_;
};

/// rank_candidates over a prepared pool: identical results.
Result<RankResult> rank_candidates(const Advisor& advisor, const AdvisorHistory& history, const RankingPool& pool);

/// One Beta(a, b) draw (a, b ≥ 1) from the 64-bit `state`, advanced in place (splitmix64 stream,
/// Marsaglia–Tsang gamma). Our own, not <random>'s distributions, whose algorithms differ
/// between standard libraries: a stored score must be reproducible anywhere.
double sample_beta(double a, double b, std::uint64_t& state);

/// Whole days from `from` to `to` (both "YYYY-MM-DD"); nullopt when either does not parse.
std::optional<long> days_between(std::string_view from, std::string_view to);

}  // namespace daybreak
