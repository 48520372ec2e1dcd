#include "app/publish.hpp"

#include "app/errors.hpp"
#include "store/pg_ledger.hpp"

namespace daybreak {

nlohmann::json publish_day_locked(store::PgConn& c, const Config& cfg, const std::string& date, std::optional<std::int64_t> run_id) {
  store::LedgerCopyScope scope;
  scope.date = date;
  scope.run_id = run_id;
  // The pause switches live in PostgreSQL once url is set (`daybreak pause` writes them there):
  // a stale one of the SQLite file is not carried over.
  scope.controls = false;
  const auto counts = store::copy_ledger_to_pg(c, cfg.database_path, scope);
  nlohmann::json inserted = nlohmann::json::object();
  for (const auto& [t, n] : counts.tables) inserted[t] = n;
  nlohmann::json updated = nlohmann::json::object();
  for (const auto& [t, n] : counts.updated) updated[t] = n;
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& [from, to] : counts.runs) runs.push_back({{"sqlite_run_id", from}, {"run_id", to}});
  return {{"ledger", "postgresql"}, {"status", "published"}, {"date", date}, {"inserted", inserted},
          {"updated", updated}, {"renumbered", counts.renumbered}, {"runs", runs}};
}

nlohmann::json publish_day(const Config& cfg, const std::string& date, std::optional<std::int64_t> run_id,
                           const std::string& retry_hint) {
  const std::string where = store::pg_url_for_display(cfg.database_url);
  try {
    store::PgConn c(cfg.database_url);
    store::pg_migrate(c);
    if (!store::pg_lock_day(c, date, kDayLockWaitMs)) {
      throw PublishError("another host held the PostgreSQL day lock of " + date + " for " + std::to_string(kDayLockWaitMs / 1000) +
                         " s (publishing or planning that day)");
    }
    // The lock is the session's: it goes with the connection when this returns or throws.
    auto out = publish_day_locked(c, cfg, date, run_id);
    store::pg_unlock_day(c, date);
    return out;
  } catch (const std::exception& e) {
    throw PublishError(date + " is planned in " + cfg.database_path + " but NOT published to the PostgreSQL ledger at " + where +
                       ": " + e.what() + "; " +
                       (retry_hint.empty() ? "run plan-deliveries --date " + date + " again to publish what is missing" : retry_hint));
  }
}

std::optional<std::int64_t> published_run_id(const nlohmann::json& report, std::int64_t sqlite_run_id) {
  for (const auto& r : report.value("runs", nlohmann::json::array())) {
    if (r.value("sqlite_run_id", std::int64_t{0}) == sqlite_run_id) return r.value("run_id", std::int64_t{0});
  }
  return std::nullopt;
}

PgAdvisorChange follow_advisor_on_pg(store::PgOperator& pg, const store::AdvisorRow& after, const store::AuditEntry& audit, Millis now,
                                     const std::function<std::vector<std::int64_t>()>& cancel) {
  PgAdvisorChange out;
  pg.advisor_put(after);
  if (cancel) out.cancelled = cancel();
  out.follow = pg.advisor_follow(after.advisor.advisor_id, now);
  store::AuditEntry e = audit;
  auto a = e.after.empty() ? nlohmann::json::object() : nlohmann::json::parse(e.after);
  a["postgresql"] = {{"deliveries_cancelled", out.cancelled}, {"deliveries_moved", out.follow.moved},
                     {"deliveries_cancelled_unreachable", out.follow.cancelled}, {"deliveries_reloaded", out.follow.reloaded}};
  e.after = a.dump();
  pg.audit_append(e);
  return out;
}

}  // namespace daybreak
