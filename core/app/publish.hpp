#pragma once
// Publishing what this host planned on its SQLite file to the PostgreSQL ledger ([database] url):
// plan-deliveries publishes its day, `daybreak send-now` its urgent run, and a dispatch on
// PostgreSQL whose dead-man's switch planned (or found planned but unpublished) the morning
// publishes it. One copy routine does it (store::copy_ledger_to_pg, the one `daybreak
// migrate-ledger` uses), in one PostgreSQL transaction, under the day lock (store::pg_lock_day)
// so two hosts never publish or plan a day at once. Idempotent: rows already there are kept as
// they are (a run a dispatch has started, a delivery already sent), new rows are added; only the
// planning data is brought up to date (an advisor's or content item's changed row, an advisor's
// channel rows; a withdrawal on PostgreSQL is kept). README "The dispatch ledger on PostgreSQL".
#include <nlohmann/json.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "store/audit.hpp"
#include "store/advisors.hpp"
#include "store/pg.hpp"
#include "store/pg_operator.hpp"

namespace daybreak {

/// How long a publish waits for another host holding the day lock (a dead-man's switch planning
/// a large day holds it for tens of seconds).
constexpr Millis kDayLockWaitMs = 120'000;

/// Publishes `date` (only the SQLite run `run_id` of it when given) from cfg.database_path to
/// cfg.database_url, migrating the schema first, under the day lock. Returns
/// {"ledger": "postgresql", "status": "published", "date", "inserted": {table: rows},
/// "updated": {advisors, advisor_channels, content: rows changed}, "renumbered",
/// "runs": [{"sqlite_run_id", "run_id"}]}. Throws PublishError, naming the cause,
/// when PostgreSQL cannot be reached, locked within kDayLockWaitMs or written; nothing is
/// written then. The message ends with `retry_hint` (default: re-run plan-deliveries).
nlohmann::json publish_day(const Config& cfg, const std::string& date, std::optional<std::int64_t> run_id = std::nullopt,
                           const std::string& retry_hint = "");
/// The same on `c`, whose session already holds the day lock of `date`.
nlohmann::json publish_day_locked(store::PgConn& c, const Config& cfg, const std::string& date,
                                  std::optional<std::int64_t> run_id = std::nullopt);

/// The PostgreSQL run id a publish report gives the SQLite run `sqlite_run_id`; nullopt when absent.
std::optional<std::int64_t> published_run_id(const nlohmann::json& report, std::int64_t sqlite_run_id);

/// What an advisor's change did to its pending deliveries on PostgreSQL.
struct PgAdvisorChange {
  std::vector<std::int64_t> cancelled;        ///< by `cancel` (a pause's days)
  store::PgOperator::AdvisorFollow follow;    ///< the rest following the advisor's channels
};
/// An advisor changed in the SQLite file, made so on PostgreSQL (`daybreak advisors …` with the
/// url, a one-click unsubscribe on daybreak-callbacks): its row there becomes the file's
/// (`after`), `cancel` (when given) cancels what it cancels, its pending deliveries there follow
/// its channels (PgOperator::advisor_follow), and the file's audit row `audit` is appended there
/// with what PostgreSQL did under "postgresql". Inside a PgOperator::tx; its results start afresh
/// when the transaction is run again.
PgAdvisorChange follow_advisor_on_pg(store::PgOperator& pg, const store::AdvisorRow& after, const store::AuditEntry& audit, Millis now,
                                     const std::function<std::vector<std::int64_t>()>& cancel = nullptr);

}  // namespace daybreak
