#pragma once
// The night-before passes: assign-fallback (every eligible advisor gets content for D) and
// plan-deliveries (assignments → deliveries with capacity-aware planned times).
#include <nlohmann/json.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "domain/ranking.hpp"
#include "store/advisors.hpp"
#include "store/db.hpp"

namespace daybreak {

/// The delivery day a command means when no --date is given: the day of the next default slot
/// in the default time zone (at 21:30 IST that is tomorrow; at 05:59 IST, today).
std::string default_delivery_date(const Config& cfg, Millis now);

/// Validates a --date value or derives the default one; throws UsageError on a bad date.
std::string resolve_date_option(const std::string& value, const Config& cfg, Millis now);

/// How assign-fallback ranks and what it reads (core/app/fallback.cpp).
struct FallbackOptions {
  RankingOptions ranking;            ///< weights, no-repeat window, Thompson seed
  int engagement_days = 90;          ///< learn from the read receipts of this many days before D
  int engagement_rebuild_days = 7;   ///< re-derive this many days of engagement from deliveries (late read receipts)
  bool list = false;                 ///< add every eligible advisor's assignment to the report
  /// 2: rank on a thread of its own, with its own read connection, while this one writes the rows
  /// (a database file, not a dry run); 1: rank every advisor, then write. The same rows and report.
  int threads = 2;
};

/// An eligible advisor left without content for the day (a silent day), and why.
struct SilentAdvisor {
  std::string advisor_id;
  std::string language;
  std::string reason;
};

/// What assign-fallback did for one day.
struct FallbackResult {
  std::string date;
  std::size_t eligible = 0;
  std::size_t already_assigned = 0;
  std::size_t fallback_assigned = 0;
  std::size_t replaced = 0;            ///< assignments replaced because their content was not sendable
  std::vector<SilentAdvisor> missing;  ///< must be empty: every eligible advisor has content
  std::map<std::string, std::size_t> by_source;  ///< sendable assignments after the run, by source
  nlohmann::json report;               ///< the whole report, as `assign-fallback --json` prints it
};

/// What plan-deliveries did for one day.
struct DayPlanResult {
  std::string date;
  std::size_t eligible = 0;
  std::size_t planned = 0;      ///< deliveries in the plan
  std::size_t inserted = 0;     ///< of them, newly written (a second run writes none)
  std::size_t runs = 0;
  std::size_t unassigned = 0;   ///< eligible advisors without an assignment
  std::size_t unreachable = 0;  ///< advisors no configured channel reaches
  bool feasible = true;         ///< every run fits its window at the configured utilisation
  nlohmann::json report;        ///< the whole report, as `plan-deliveries --json` prints it
};

/// assign-fallback for day `date` (core/app/fallback.cpp): validates every assignment, gives
/// every eligible advisor without sendable content a ranked fallback item, and returns the
/// zero-silent-days report (`missing` must be empty). A second run changes nothing.
FallbackResult assign_fallback(store::Db& db, const Config& cfg, const std::string& date, Millis now, bool dry_run,
                               const FallbackOptions& opts = {});

/// Why `advisor_id` gets what they get on `date`: the assignment's source, content, score parts
/// and reason, the advisor's segment and recent history, and the delivery if one is planned.
/// Throws CheckFailed when the advisor is unknown.
nlohmann::json explain_assignment(store::Db& db, const std::string& advisor_id, const std::string& date,
                                  const FallbackOptions& opts = {});

/// The channel an advisor is planned on (plan-deliveries and daybreak send-now): the first of
/// their stored preference list that is opted in and has a configured sender (dispatch's choice
/// of the next channel, engine/sender_pool.hpp), skipping WhatsApp while a 131049 hold is in
/// force (`whatsapp_held_now`). `index` is into a.preference, -1 when none.
struct ChannelChoice {
  int index = -1;
  bool skipped_whatsapp = false;  ///< WhatsApp was usable but held
};
ChannelChoice plan_channel_choice(const store::PlanCandidate& a, const Config& cfg, bool whatsapp_held_now);

/// WhatsApp recipients of day `date` (sender id, advisor id); a pair may repeat.
using RecipientFeed = std::function<void(const std::function<void(const std::string&, const std::string&)>&)>;

/// The messaging-limit rule (domain/capacity.hpp check_messaging_tiers) for delivery day `date`:
/// the unique WhatsApp recipients per business portfolio of the moving 24 h that ends at
/// `last_deadline` (the day's WhatsApp sends, from `night`, plus WhatsApp sends of nearby days
/// accepted after last_deadline - 24 h, from the ledger) against each portfolio's tier.
/// {"date", "feasible", "portfolios": [...]}; "feasible" is true when no sender sets a tier.
nlohmann::json check_whatsapp_tiers(store::Db& db, const Config& cfg, const std::string& date, Millis last_deadline,
                                    const RecipientFeed& night);

/// plan-deliveries for day `date`: returns the plan report (size, per-sender peak, feasibility).
/// Also records the day's summary in day_plans (`planned_by`: who planned it).
DayPlanResult plan_deliveries(store::Db& db, const Config& cfg, const std::string& date, Millis now, bool dry_run,
                               const std::string& planned_by = "plan-deliveries");

/// Languages of advisors eligible on `date` without an emergency item valid that day (and
/// delivery.emergency_language when it has none): [{"language", "advisors", "covered_by"}],
/// covered_by being the emergency language when its items would serve them, else null (a pull
/// of their content would hold their deliveries). plan-deliveries reports it; doctor checks it.
nlohmann::json languages_without_emergency(store::Db& db, const Config& cfg, const std::string& date);

/// A compliance pull (`daybreak content withdraw`): marks `content_id` withdrawn (audited with
/// actor and reason), re-runs assign_fallback for every day from yesterday on that assigns it (each
/// such assignment is replaced, reason "replaced …: content withdrawn"), and re-points every
/// pending (planned/retry_wait) delivery of it at the replacement. Safe to repeat. Throws
/// CheckFailed when the item does not exist.
nlohmann::json withdraw_content(store::Db& db, const Config& cfg, const std::string& content_id, const std::string& reason,
                                const std::string& actor, const std::string& sudo_user, Millis now);

}  // namespace daybreak
