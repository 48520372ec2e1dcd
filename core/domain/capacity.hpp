#pragma once
// Capacity planning: for a run's demand (deliveries per channel
// and tier) and the senders that carry it, how much of the send window the run needs, whether it
// fits under the planner's utilisation cap, how much room is left for retries, and what to
// change when it does not fit: how many more senders of which channel at which rate, or which
// tiers to move to a channel with room. Pure: the caller loads demand and senders.
//
// The arithmetic is the planner's (domain/planner.hpp): a sender of `mps` is planned at most
// max(1, floor(utilisation × mps)) sends per second, over the whole send window, so "fits"
// here means exactly what plan-deliveries would call feasible for one run.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/types.hpp"

namespace daybreak {

/// Deliveries of one (channel, tier).
struct CapacityDemand {
  std::string channel;
  std::string tier;
  int tier_rank = 0;  ///< 0 = highest; the lowest tiers are the ones to move
  std::int64_t count = 0;
};

/// One sender: its channel and provider rate.
struct CapacitySender {
  std::string id;
  std::string channel;
  double mps = 0;
};

/// What to check.
struct CapacityInput {
  std::vector<CapacityDemand> demand;
  std::vector<CapacitySender> senders;
  Millis window_ms = 300'000;  ///< send window length (lead + tail: 30 s + 270 s by default)
  double utilisation = 0.7;    ///< the planner's cap; the rest is retry headroom
  double growth = 1.0;         ///< demand multiplier (1.2 = 20% more advisors)
  /// Rate of a recommended new sender; 0 = the largest rate among the channel's senders, or
  /// 80 msg/s (WhatsApp Cloud API's default throughput) when it has none.
  double new_sender_mps = 0;
};

/// The verdict for one channel.
struct ChannelCapacity {
  std::string channel;
  std::int64_t deliveries = 0;        ///< after growth
  std::size_t senders = 0;
  double sender_mps = 0;              ///< Σ provider rate of the channel's senders
  double required_mps = 0;            ///< deliveries ÷ (window s × utilisation): provider rate the run needs
  std::int64_t capacity_in_window = 0;  ///< sends that fit under the cap in the window
  double window_utilisation_pct = 0;  ///< deliveries ÷ (Σ mps × window s) × 100: share of the raw window capacity used
  double cap_utilisation_pct = 0;     ///< deliveries ÷ capacity_in_window × 100
  double drain_seconds = 0;           ///< deliveries ÷ Σ mps: time to send everything at full rate
  double retry_headroom = 0;          ///< (Σ mps × window s − deliveries) ÷ deliveries: spare sends per delivery
  bool feasible = true;
  std::int64_t shortfall = 0;         ///< deliveries beyond capacity_in_window
  int add_senders = 0;                ///< new senders of add_sender_mps that close the shortfall
  double add_sender_mps = 0;
  std::vector<std::string> move_tiers;  ///< lowest tiers whose move to move_to closes the shortfall instead
  std::string move_to;
  std::int64_t move_count = 0;
  std::string recommendation;         ///< one sentence
};

/// The verdict for a run (or a hypothetical one).
struct CapacityReport {
  bool feasible = true;
  std::int64_t deliveries = 0;
  double required_mps = 0;
  double sender_mps = 0;
  std::vector<ChannelCapacity> channels;  ///< by channel name
};

/// Checks `in`. Demand on a channel with no sender is infeasible with the whole count short.
CapacityReport plan_capacity(const CapacityInput& in);

// ---- WhatsApp messaging limits -------------------------------------------------------------------
//
// Meta's "Messaging limits" (https://developers.facebook.com/docs/whatsapp/messaging-limits): a
// business may message at most N unique WhatsApp users, outside a customer service window, in a
// moving 24 hours: 250, 2,000, 10,000, 100,000 or unlimited. Since October 7, 2025 the limit is
// set per business portfolio and shared by every phone number in it; an existing portfolio took
// the highest limit of its numbers ("Upcoming changes to messaging limits", the same site).
// Throughput (messages per second: 80 by default, up to 1,000 after an upgrade) is per number
// and is the senders' `mps`, checked by plan_capacity above.

enum class MessagingTier { t250, t2k, t10k, t100k, unlimited };
std::string_view to_string(MessagingTier t);
/// "250", "2k" (or "2000"), "10k" ("10000"), "100k" ("100000"), "unlimited"; nullopt otherwise.
std::optional<MessagingTier> messaging_tier_from_string(std::string_view s);
/// Unique recipients per moving 24 h; nullopt = unlimited.
std::optional<std::int64_t> messaging_tier_limit(MessagingTier t);

/// One WhatsApp sender (phone number) for the tier rule.
struct TierSender {
  std::string id;
  std::string portfolio;
  std::optional<MessagingTier> tier;  ///< nullopt: not configured (the portfolio is not checked unless another number sets it)
};

/// The verdict for one business portfolio.
struct PortfolioTierCheck {
  std::string portfolio;
  std::vector<std::string> senders;         ///< its WhatsApp senders
  std::optional<MessagingTier> tier;        ///< the portfolio's limit: the highest tier of its numbers
  std::optional<std::int64_t> limit;        ///< nullopt: unlimited, or no tier configured
  std::int64_t unique_recipients = 0;       ///< distinct WhatsApp recipients in the 24 h window
  std::int64_t over = 0;                    ///< advisors beyond the limit
  bool checked = false;                     ///< a tier is configured for it
  bool feasible = true;
  std::string recommendation;               ///< one sentence
};

/// The tier rule: per portfolio, the unique WhatsApp recipients of the 24 h window
/// (`recipients_by_portfolio`) against the highest tier among the portfolio's senders. A portfolio
/// with recipients and no configured tier is reported unchecked (feasible); recipients named
/// for a portfolio with no sender count as over a limit of 0. Ordered by portfolio name.
std::vector<PortfolioTierCheck> check_messaging_tiers(const std::vector<TierSender>& senders,
                                                      const std::map<std::string, std::int64_t>& recipients_by_portfolio);

/// An urgent send (a run of kind urgent) checked against the morning run sending on the same
/// senders. The urgent rows go first on their channel's senders at the full provider rate; the
/// morning's rows not yet sent wait meanwhile and then catch up at the full rate (they were
/// planned at the utilisation cap, so some of the delay is absorbed).
struct UrgentCapacityInput {
  std::vector<CapacitySender> senders;
  std::string channel;                ///< the urgent run's channel (its advisors' first channel)
  std::int64_t urgent = 0;            ///< urgent deliveries on that channel
  std::int64_t morning_remaining = 0;  ///< morning rows on that channel not sent yet (0: no morning running)
  Millis now = 0;
  Millis morning_planned_end = 0;     ///< the last of those rows' planned times
  Millis morning_deadline = 0;        ///< the morning run's deadline (on time = accepted by it)
};
struct UrgentCapacity {
  double channel_mps = 0;         ///< Σ provider rate of the channel's senders
  double urgent_seconds = 0;      ///< urgent ÷ channel_mps: how long the urgent run takes
  Millis morning_finish_before = 0;  ///< when the morning's last row goes out without the urgent run
  Millis morning_finish_after = 0;   ///< … with it
  double morning_delay_seconds = 0;  ///< after − before: how much later the morning's last row goes
  double max_row_delay_seconds = 0;  ///< the most a morning row due now waits (urgent_seconds when any remain)
  bool morning_misses_deadline = false;  ///< finish_after > deadline while finish_before was not
  bool feasible = true;          ///< the channel has a sender
  std::string summary;           ///< one sentence for the operator
};
/// Checks `in` (pure arithmetic; the caller loads the counts).
UrgentCapacity check_urgent_capacity(const UrgentCapacityInput& in);

}  // namespace daybreak
