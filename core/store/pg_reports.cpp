#include "store/pg_reports.hpp"

#include <algorithm>
#include <cstdio>
#include <tuple>
#include <nlohmann/json.hpp>

#include "domain/types.hpp"
#include "store/pg_ledger.hpp"
#include "store/pg_status.hpp"

namespace daybreak::store {
namespace {

std::string id_param(std::int64_t v) { return std::to_string(v); }

// The order of a trend's headlines: SQLite's (store::SlaReportListBetween, by date then slot),
// with run_id breaking ties.
constexpr const char* kStoredReportsBetween =
    "SELECT s.run_id, s.date, r.slot_at, s.sla_pct, s.report FROM run_reports s JOIN runs r ON r.run_id = s.run_id "
    "WHERE s.date >= $1 AND s.date <= $2 ORDER BY s.date, r.slot_at, s.run_id";

}  // namespace

// ---- the stored run reports ----

bool pg_keeps_run_reports(PgConn& c) {
  return c.run("report_table_exists", "SELECT to_regclass('run_reports') IS NOT NULL", {}).str(0, 0) == "t";
}

void pg_run_report_upsert(PgConn& c, std::int64_t run_id, const std::string& date, Millis closed_at, Millis generated_at,
                          double sla_pct, const std::string& report_json, const std::string& written_by) {
  // As store::SlaReportUpsert: one row per run, a re-close replaces it. The figure goes as
  // text with every digit a double holds, so the stored sla_pct is the report's to the bit.
  char pct[40];
  std::snprintf(pct, sizeof pct, "%.17g", sla_pct);
  c.run("run_report_upsert",
        "INSERT INTO run_reports(run_id, date, closed_at, generated_at, sla_pct, report, written_by) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id) DO UPDATE SET date = excluded.date, "
        "closed_at = excluded.closed_at, generated_at = excluded.generated_at, sla_pct = excluded.sla_pct, "
        "report = excluded.report, written_by = excluded.written_by",
        {id_param(run_id), date, id_param(closed_at), id_param(generated_at), std::string(pct), report_json, written_by});
}

std::optional<std::string> pg_run_report_get(PgConn& c, std::int64_t run_id) {
  auto r = c.run("run_report_get", "SELECT report FROM run_reports WHERE run_id = $1", {id_param(run_id)});
  if (r.rows() == 0) return std::nullopt;
  return r.str(0, 0);
}

std::optional<SlaReportSummary> pg_run_report_summary(PgConn& c, std::int64_t run_id) {
  auto r = c.run("run_report_summary", "SELECT run_id, date, generated_at, sla_pct FROM run_reports WHERE run_id = $1",
                 {id_param(run_id)});
  if (r.rows() == 0) return std::nullopt;
  SlaReportSummary s;
  s.run_id = r.i64(0, 0);
  s.date = r.str(0, 1);
  s.generated_at = r.i64(0, 2);
  s.sla_pct = std::stod(r.str(0, 3));
  return s;
}

std::optional<std::pair<std::int64_t, double>> pg_run_report_latest_closed(PgConn& c) {
  auto r = c.run("run_report_latest_closed",
                 "SELECT s.run_id, s.sla_pct FROM run_reports s JOIN runs r ON r.run_id = s.run_id "
                 "WHERE r.state = 'closed' ORDER BY r.slot_at DESC, r.run_id DESC LIMIT 1",
                 {});
  if (r.rows() == 0) return std::nullopt;
  return std::make_pair(r.i64(0, 0), std::stod(r.str(0, 1)));
}

std::vector<StoredReport> pg_run_reports_between(PgConn& c, const std::string& from_date, const std::string& to_date) {
  std::vector<StoredReport> out;
  if (!pg_keeps_run_reports(c)) return out;
  auto r = c.run("run_reports_between", kStoredReportsBetween, {from_date, to_date});
  for (int i = 0; i < r.rows(); ++i) {
    StoredReport s;
    s.run_id = r.i64(i, 0);
    s.date = r.str(i, 1);
    s.slot_at = r.i64(i, 2);
    s.sla_pct = std::stod(r.str(i, 3));
    s.report = r.str(i, 4);
    out.push_back(std::move(s));
  }
  return out;
}

// ---- the ReportLedger ----

PgReportLedger::PgReportLedger(const std::string& url) : owned_(std::make_unique<PgConn>(url)), c_(owned_.get()) {
  // One snapshot for the whole report, as sla-report's DEFERRED read transaction on SQLite; READ
  // ONLY so a report can never change the ledger.
  c_->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  keeps_reports_ = pg_keeps_run_reports(*c_);
}

PgReportLedger::PgReportLedger(PgConn& conn) : c_(&conn), keeps_reports_(pg_keeps_run_reports(conn)) {}

void PgReportLedger::refresh() {
  try {
    if (c_->in_transaction()) c_->exec("ROLLBACK");
  } catch (const StoreError&) {  // a broken connection: ensure_connected below opens a new one
  }
  c_->ensure_connected();
  c_->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  keeps_reports_ = pg_keeps_run_reports(*c_);
}

PgReportLedger::~PgReportLedger() {
  if (!owned_) return;  // a borrowed connection's transaction is its owner's
  try {
    if (c_->in_transaction()) c_->exec("ROLLBACK");
  } catch (...) {  // NOLINT(bugprone-empty-catch): closing the connection ends the transaction anyway
  }
}

std::optional<Run> PgReportLedger::run(std::int64_t run_id) {
  auto r = c_->run("report_run_get", std::string("SELECT ") + kPgRunColumns + " FROM runs WHERE run_id = $1", {id_param(run_id)});
  if (r.rows() == 0) return std::nullopt;
  return pg_read_run(r, 0);
}

// The orders are SQLite's (store/runs.cpp), with run_id breaking ties PostgreSQL would leave open.
std::vector<Run> PgReportLedger::runs_for_date(const std::string& date) {
  auto r = c_->run("report_runs_for_date",
                   std::string("SELECT ") + kPgRunColumns + " FROM runs WHERE date = $1 ORDER BY slot_at, run_id", {date});
  std::vector<Run> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(pg_read_run(r, i));
  return out;
}

std::vector<Run> PgReportLedger::runs_recent(int limit) {
  auto r = c_->run("report_runs_recent",
                   std::string("SELECT ") + kPgRunColumns + " FROM runs ORDER BY slot_at DESC, run_id DESC LIMIT $1",
                   {id_param(limit)});
  std::vector<Run> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(pg_read_run(r, i));
  return out;
}

std::string PgReportLedger::run_kind(std::int64_t run_id) {
  // sql/postgresql/006 (dispatch applies it when it connects); "morning" for a run not there.
  auto r = c_->run("report_run_kind", "SELECT kind FROM runs WHERE run_id = $1", {id_param(run_id)});
  return r.rows() > 0 ? r.str(0, 0) : std::string("morning");
}

std::vector<DeliveryOutcome> PgReportLedger::outcomes(std::int64_t run_id, std::map<std::string, std::int64_t>* by_source) {
  std::vector<DeliveryOutcome> out;
  out.reserve(static_cast<std::size_t>(
      c_->run("report_delivery_count", "SELECT COUNT(*) FROM deliveries WHERE run_id = $1", {id_param(run_id)}).i64(0, 0)));
  // SQLite: store::DeliveryOutcomesForRun. The same columns, the status callbacks' among them
  // (delivered_at, read_at, a `status failed: …` last_error: store/pg_status.cpp applies them
  // here); `last_error LIKE …` is a boolean here ('t'/'f', NULL for no error) where SQLite
  // gives 1/0/NULL. Streamed row by row.
  c_->each_row(
      "SELECT delivery_id, state, tier, channel, sender, planned_at, deadline_at, first_sent_at, accepted_at, "
      "possible_duplicate, source, delivered_at, read_at, COALESCE(last_error LIKE 'status failed: %', false) "
      "FROM deliveries WHERE run_id = $1 ORDER BY state, delivery_id",
      {id_param(run_id)}, [&](const PgResult& q) {
        DeliveryOutcome o;
        const std::string state = q.str(0, 1);
        auto s = delivery_state_from_string(state);
        if (!s) throw StoreError("delivery " + q.str(0, 0) + ": unknown state \"" + state + "\"");
        o.state = *s;
        o.tier = q.str(0, 2);
        o.channel = q.str(0, 3);
        o.sender = q.str(0, 4);
        o.planned_at = q.i64(0, 5);
        o.deadline_at = q.i64(0, 6);
        o.first_sent_at = q.opt_i64(0, 7);
        o.accepted_at = q.opt_i64(0, 8);
        o.possible_duplicate = q.i64(0, 9) != 0;
        if (by_source) ++(*by_source)[q.str(0, 10)];
        o.delivered_at = q.opt_i64(0, 11);
        o.read_at = q.opt_i64(0, 12);
        o.status_failed = q.str(0, 13) == "t";
        out.push_back(std::move(o));
      });
  return out;
}

std::vector<FailureReason> PgReportLedger::failure_reasons(std::int64_t run_id) {
  // SQLite: store::AttemptFailureReasonsForRun takes the bare columns of the MAX(attempt_id) row;
  // PostgreSQL has no bare columns, so the most recent attempt per code is picked with
  // ROW_NUMBER() and the count comes from the same window. Codes sort bytewise (COLLATE "C") as
  // SQLite's BINARY does.
  auto r = c_->run(
      "report_failure_reasons",
      "SELECT code, n, outcome, example FROM ("
      "  SELECT COALESCE(NULLIF(a.error_code, ''), a.outcome) AS code, a.outcome, COALESCE(a.error_detail, '') AS example,"
      "         COUNT(*) OVER w AS n, ROW_NUMBER() OVER (w ORDER BY a.attempt_id DESC) AS rn"
      "  FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id"
      "  WHERE d.run_id = $1 AND a.outcome <> 'accepted'"
      "  WINDOW w AS (PARTITION BY COALESCE(NULLIF(a.error_code, ''), a.outcome))) x "
      "WHERE rn = 1 ORDER BY n DESC, code COLLATE \"C\"",
      {id_param(run_id)});
  std::vector<FailureReason> out;
  for (int i = 0; i < r.rows(); ++i) {
    FailureReason f;
    f.error_code = r.str(i, 0);
    f.count = r.i64(i, 1);
    f.outcome = r.str(i, 2);
    f.example = r.str(i, 3);
    out.push_back(std::move(f));
  }
  return out;
}

std::int64_t PgReportLedger::attempt_count(std::int64_t run_id) {
  return c_->run("report_attempt_count",
                 "SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id "
                 "WHERE d.run_id = $1",
                 {id_param(run_id)})
      .i64(0, 0);
}

ProviderFigures PgReportLedger::provider_figures(std::int64_t run_id) {
  // SQLite: store::ProviderFiguresForRun (SUM of booleans there, COUNT … FILTER here). The
  // columns are sql/postgresql/002's, always present once dispatch has connected.
  ProviderFigures f;
  auto r = c_->run("report_provider_figures",
                   "SELECT COUNT(DISTINCT CASE WHEN a.held_for_quality = 1 THEN a.delivery_id END), "
                   "COUNT(*) FILTER (WHERE a.error_scope = 'phone_number'), COUNT(*) FILTER (WHERE a.error_scope = 'account') "
                   "FROM delivery_attempts a JOIN deliveries d ON d.delivery_id = a.delivery_id WHERE d.run_id = $1",
                   {id_param(run_id)});
  f.held_for_quality = r.i64(0, 0);
  f.number_blocked = r.i64(0, 1);
  f.account_blocked = r.i64(0, 2);
  auto u = c_->run("report_unknown_codes",
                   "SELECT COALESCE(a.error_code, '?'), COUNT(*) FROM delivery_attempts a "
                   "JOIN deliveries d ON d.delivery_id = a.delivery_id "
                   "WHERE d.run_id = $1 AND a.error_scope = 'unknown' GROUP BY 1",
                   {id_param(run_id)});
  for (int i = 0; i < u.rows(); ++i) {
    const auto n = u.i64(i, 1);
    f.unknown_codes[u.str(i, 0)] += n;
    f.unknown_error_codes += n;
  }
  return f;
}

std::optional<SlaReportSummary> PgReportLedger::stored_summary(std::int64_t run_id) {
  if (!keeps_reports_) return std::nullopt;
  return pg_run_report_summary(*c_, run_id);
}

std::optional<std::string> PgReportLedger::stored_report(std::int64_t run_id) {
  if (!keeps_reports_) return std::nullopt;
  return pg_run_report_get(*c_, run_id);
}

std::vector<std::tuple<std::int64_t, std::string, std::string>> PgReportLedger::run_ids_between(const std::string& from,
                                                                                                 const std::string& to) {
  // SQLite: store::RunIdsBetween (by date then slot).
  auto r = c_->run("report_run_ids_between",
                   "SELECT run_id, date, state FROM runs WHERE date >= $1 AND date <= $2 ORDER BY date, slot_at, run_id",
                   {from, to});
  std::vector<std::tuple<std::int64_t, std::string, std::string>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.i64(i, 0), r.str(i, 1), r.str(i, 2));
  return out;
}

std::vector<RunHeadline> PgReportLedger::run_headlines_between(const std::string& from, const std::string& to) {
  // The stored reports first (as SQLite's SqliteReportLedger::run_headlines_between: the
  // headline as it was when each run closed), then every closed run without one, counted now
  // with the headline's rules (domain/sla.hpp: eligible = not cancelled, on time = accepted at
  // or before the deadline; 100% of nothing): runs closed before dispatch stored reports here.
  struct Row {
    Millis slot_at;
    RunHeadline h;
  };
  std::vector<Row> rows;
  for (const auto& r : pg_run_reports_between(*c_, from, to)) {
    // An unreadable stored report still counts as a reported run, with no deliveries.
    const nlohmann::json rep = nlohmann::json::parse(r.report, nullptr, false);
    RunHeadline h;
    h.run_id = r.run_id;
    h.date = r.date;
    h.eligible = rep.is_object() ? rep.value("eligible", std::int64_t{0}) : 0;
    h.on_time = rep.is_object() ? rep.value("on_time", std::int64_t{0}) : 0;
    h.sla_pct = r.sla_pct;
    rows.push_back({r.slot_at, std::move(h)});
  }
  static const std::string counted_sql =
      "SELECT r.run_id, r.date, r.slot_at, COUNT(d.delivery_id) FILTER (WHERE d.state <> 'cancelled'), "
      "COUNT(d.delivery_id) FILTER (WHERE d.state IN (" + accepted_states_sql() +
      ") AND d.accepted_at IS NOT NULL AND d.accepted_at <= d.deadline_at) "
      "FROM runs r LEFT JOIN deliveries d ON d.run_id = r.run_id "
      "WHERE r.date >= $1 AND r.date <= $2 AND r.state = 'closed' ";
  static const std::string without_report =
      counted_sql + "AND NOT EXISTS (SELECT 1 FROM run_reports s WHERE s.run_id = r.run_id) GROUP BY r.run_id, r.date, r.slot_at";
  static const std::string every = counted_sql + "GROUP BY r.run_id, r.date, r.slot_at";
  auto r = keeps_reports_ ? c_->run("report_run_headlines_unstored", without_report, {from, to})
                          : c_->run("report_run_headlines", every, {from, to});
  for (int i = 0; i < r.rows(); ++i) {
    RunHeadline h;
    h.run_id = r.i64(i, 0);
    h.date = r.str(i, 1);
    h.eligible = r.i64(i, 3);
    h.on_time = r.i64(i, 4);
    h.sla_pct = h.eligible == 0 ? 100.0 : 100.0 * static_cast<double>(h.on_time) / static_cast<double>(h.eligible);
    h.stored = false;
    rows.push_back({r.i64(i, 2), std::move(h)});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.h.date, a.slot_at, a.h.run_id) < std::tie(b.h.date, b.slot_at, b.h.run_id);
  });
  std::vector<RunHeadline> out;
  out.reserve(rows.size());
  for (auto& x : rows) out.push_back(std::move(x.h));
  return out;
}

std::map<std::string, DeliveryTruth> PgReportLedger::truth_by_date(const std::string& from, const std::string& to, Millis now) {
  // SQLite: store::DeliveryTruthByDate, the same aggregates (DeliveryTruthAggregatesSql) over
  // the deliveries_date index. The status callbacks that set delivered_at, read_at and a
  // `status failed: …` last_error here are applied by store/pg_status.cpp.
  static const std::string sql = "SELECT date, " + DeliveryTruthAggregatesSql(SqlDialect::postgresql) +
                                 " FROM deliveries WHERE date >= $2 AND date <= $3 GROUP BY date";
  auto r = c_->run("report_truth_by_date", sql, {std::to_string(now), from, to});
  std::map<std::string, DeliveryTruth> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.emplace(r.str(i, 0), DeliveryTruthFromColumns([&](int k) { return r.i64(i, 1 + k); }));
  }
  return out;
}

// ---- the live view ----

std::vector<Run> PgReportLedger::runs_active(Millis from, Millis to) {
  // store::RunListActive.
  auto r = c_->run("report_runs_active",
                   std::string("SELECT ") + kPgRunColumns +
                       " FROM runs WHERE state IN ('planned','running') AND window_start <= $1 AND deadline_at >= $2 "
                       "ORDER BY slot_at, run_id",
                   {id_param(to), id_param(from)});
  std::vector<Run> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(pg_read_run(r, i));
  return out;
}

void PgReportLedger::each_delivery_brief(std::int64_t run_id, const std::function<void(const DeliveryBrief&)>& fn) {
  // store::DeliveryForEachInRun's columns.
  c_->each_row("SELECT delivery_id, state, channel, tier, sender, planned_at, deadline_at, updated_at, "
               "COALESCE(first_sent_at, 0), COALESCE(accepted_at, 0) FROM deliveries WHERE run_id = $1",
               {id_param(run_id)}, [&](const PgResult& q) {
                 DeliveryBrief d;
                 const std::string state = q.str(0, 1);
                 auto s = delivery_state_from_string(state);
                 if (!s) throw StoreError("delivery " + q.str(0, 0) + ": unknown state \"" + state + "\"");
                 d.state = *s;
                 d.channel = q.str(0, 2);
                 d.tier = q.str(0, 3);
                 d.sender = q.str(0, 4);
                 d.planned_at = q.i64(0, 5);
                 d.deadline_at = q.i64(0, 6);
                 d.updated_at = q.i64(0, 7);
                 d.first_sent_at = q.i64(0, 8);
                 d.accepted_at = q.i64(0, 9);
                 fn(d);
               });
}

void PgReportLedger::each_attempt_brief(std::int64_t run_id, const std::function<void(const AttemptBrief&)>& fn) {
  // store::AttemptForEachInRun's columns and order.
  c_->each_row("SELECT a.attempt_id, a.channel, a.sender, a.outcome, a.latency_ms, a.error_code FROM delivery_attempts a "
               "JOIN deliveries d ON d.delivery_id = a.delivery_id WHERE d.run_id = $1 ORDER BY a.attempt_id",
               {id_param(run_id)}, [&](const PgResult& q) {
                 AttemptBrief a;
                 a.attempt_id = q.i64(0, 0);
                 a.channel = q.str(0, 1);
                 a.sender = q.str(0, 2);
                 a.outcome = q.str(0, 3);
                 a.latency_ms = q.opt_i64(0, 4);
                 a.error_code = q.opt_str(0, 5).value_or("");
                 fn(a);
               });
}

DeliveryTruth PgReportLedger::truth_for_run(std::int64_t run_id, Millis now) { return pg_delivery_truth_for_run(*c_, run_id, now); }

}  // namespace daybreak::store
