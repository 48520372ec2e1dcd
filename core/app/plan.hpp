#pragma once
// The night-before passes: assign-fallback (every eligible advisor gets content for D) and
// plan-deliveries (assignments → deliveries with capacity-aware planned times).
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.hpp"
#include "store/db.hpp"

namespace daybreak {

/// The delivery day a command means when no --date is given: the day of the next default slot
/// in the default time zone (at 21:30 IST that is tomorrow; at 05:59 IST, today).
std::string default_delivery_date(const Config& cfg, Millis now);

/// Validates a --date value or derives the default one; throws UsageError on a bad date.
std::string resolve_date_option(const std::string& value, const Config& cfg, Millis now);

/// assign-fallback for day `date`: returns the zero-silent-days report (`missing` must be empty).
nlohmann::json assign_fallback(store::Db& db, const Config& cfg, const std::string& date, Millis now, bool dry_run);

/// plan-deliveries for day `date`: returns the plan report (size, per-sender peak, feasibility).
nlohmann::json plan_deliveries(store::Db& db, const Config& cfg, const std::string& date, Millis now, bool dry_run);

}  // namespace daybreak
