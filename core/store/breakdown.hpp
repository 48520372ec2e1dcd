#pragma once
// A run's deliveries counted by (tier, channel, sender) in one pass over its rows: what the web
// console (`daybreak serve`) shows live per tier, channel and sender.
#include <cstdint>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace daybreak::store {

struct BreakdownRow {
  std::string tier, channel, sender;
  std::int64_t total = 0;      ///< deliveries, cancelled excluded
  std::int64_t accepted = 0;   ///< accepted by the provider (accepted, delivered or read)
  std::int64_t on_time = 0;    ///< accepted at or before the deadline
  std::int64_t delivered = 0;  ///< a status callback said delivered or read
  std::int64_t dead = 0;
  std::int64_t pending = 0;    ///< not final yet
};

/// The rows of run `run_id`, ordered by tier rank, channel, sender.
std::vector<BreakdownRow> DeliveryBreakdown(Db& db, std::int64_t run_id);

/// Only the `delivered` column of those rows (groups with none are absent): it reads the
/// delivered and read rows alone, through the (run_id, state) index, so it costs what status
/// callbacks have confirmed, not the whole run. The console pairs it with dispatch's own counts.
std::vector<BreakdownRow> DeliveredBreakdown(Db& db, std::int64_t run_id);

}  // namespace daybreak::store
