#pragma once
// Read-only aggregate queries for monitoring (live snapshot from the ledger, metrics, alert
// rules, trend and capacity reports). They read `deliveries`, `delivery_attempts`,
// `sla_reports`, `advisors` and `assignments` without changing them; the tables' own query
// modules keep every write.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// One request of a run as monitoring needs it.
struct AttemptBrief {
  std::int64_t attempt_id = 0;
  std::string channel, sender, outcome;
  std::string error_code;  ///< empty when none ("curl:N" for a transport failure)
  std::optional<std::int64_t> latency_ms;
};

/// Calls `fn` for every request (delivery_attempts row) of a run, in attempt order.
void AttemptForEachInRun(Db& db, std::int64_t run_id, const std::function<void(const AttemptBrief&)>& fn);

/// One delivery of a run with the fields the live figures need.
struct DeliveryBrief {
  DeliveryState state = DeliveryState::planned;
  std::string channel, tier, sender;
  Millis planned_at = 0, deadline_at = 0, updated_at = 0;
  Millis first_sent_at = 0, accepted_at = 0;  ///< 0 when NULL
};

/// Calls `fn` for every delivery of a run. Throws StoreError on a state the schema does not know.
void DeliveryForEachInRun(Db& db, std::int64_t run_id, const std::function<void(const DeliveryBrief&)>& fn);

/// The newest closed run that has a stored report: (run_id, sla_pct).
std::optional<std::pair<std::int64_t, double>> SlaReportLatestClosed(Db& db);

/// A stored report with its run's slot, for trends.
struct StoredReport {
  std::int64_t run_id = 0;
  std::string date;
  Millis slot_at = 0;
  double sla_pct = 0;
  std::string report;  ///< JSON text
};

/// Stored reports of delivery days in [from_date, to_date] ("YYYY-MM-DD"), by date then slot.
std::vector<StoredReport> SlaReportListBetween(Db& db, const std::string& from_date, const std::string& to_date);

/// Run ids of delivery days in [from_date, to_date] with their date and state, by date then slot.
std::vector<std::tuple<std::int64_t, std::string, std::string>> RunIdsBetween(Db& db, const std::string& from_date,
                                                                              const std::string& to_date);

/// Eligible advisors for `date` (opted in, not paused on it, one opted-in channel) with no
/// assignment for it: the silent days the 21:30 step must prevent. Returns the count and up to
/// `sample` of their ids.
std::pair<std::int64_t, std::vector<std::string>> AdvisorListSilent(Db& db, const std::string& date, int sample);

/// Deliveries of a run that are not cancelled, counted by (channel, tier_rank, tier).
std::map<std::tuple<std::string, int, std::string>, std::int64_t> DeliveryCountByChannelTier(Db& db, std::int64_t run_id);

/// WhatsApp recipients for the messaging-limit rule (domain/capacity.hpp check_messaging_tiers):
/// calls fn(sender, advisor_id) for every WhatsApp delivery of `date` that is not cancelled
/// (with `of_date`), or (without) for every WhatsApp delivery of the days from `from_date` to
/// `to_date` other than `date` accepted at or after `since` (a previous send inside the moving
/// 24 h). A pair may repeat; the caller counts distinct advisors.
void DeliveryWhatsAppRecipients(Db& db, const std::string& date, bool of_date, const std::string& from_date,
                                const std::string& to_date, Millis since,
                                const std::function<void(const std::string&, const std::string&)>& fn);

/// Opted-in advisors counted by (first channel of their preference, tier): the demand when
/// nothing is planned yet.
std::map<std::pair<std::string, std::string>, std::int64_t> AdvisorCountByChannelTier(Db& db);

}  // namespace daybreak::store
