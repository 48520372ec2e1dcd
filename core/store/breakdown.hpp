#pragma once
// A run's deliveries counted by (tier, channel, sender) in one pass over its rows: what the web
// console (`daybreak serve`) shows live per tier, channel and sender. The same statements on
// either ledger (BreakdownSql): the SQLite file, or the PostgreSQL one with [database] url.
#include <cstdint>
#include <string>
#include <vector>

#include "store/db.hpp"
#include "store/pg.hpp"
#include "store/reports.hpp"

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

/// The statements of DeliveryBreakdown (`delivered_only` false) and DeliveredBreakdown (true) in
/// `dialect`; the one parameter is the run id. The counts are SUMs of SQLite's 0/1 booleans and
/// `COUNT(*) FILTER` on PostgreSQL, the rest is the same text.
const std::string& BreakdownSql(SqlDialect dialect, bool delivered_only);

/// DeliveryBreakdown and DeliveredBreakdown on the PostgreSQL ledger, in `c`'s transaction.
std::vector<BreakdownRow> pg_delivery_breakdown(PgConn& c, std::int64_t run_id);
std::vector<BreakdownRow> pg_delivered_breakdown(PgConn& c, std::int64_t run_id);

}  // namespace daybreak::store
