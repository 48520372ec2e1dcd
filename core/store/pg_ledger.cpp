#include "store/pg_ledger.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>
#include <tuple>
#include <iterator>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "domain/delivery_fsm.hpp"
#include "domain/planner.hpp"
#include "domain/status_event.hpp"
#include "domain/types.hpp"
#include "store/migrations.hpp"
#include "store/pg_reports.hpp"
#include "store/pg_status.hpp"

namespace daybreak::store {
namespace {

template <class... Fs>
struct PgOverloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
PgOverloaded(Fs...) -> PgOverloaded<Fs...>;

std::string num(std::int64_t v) { return std::to_string(v); }
PgParam opt_num(const std::optional<Millis>& v) { return v ? PgParam(std::to_string(*v)) : std::nullopt; }

/// A PostgreSQL array literal of ids: '{1,2,3}'.
std::string id_array(const std::vector<std::int64_t>& ids) {
  std::string s = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "}";
}

}  // namespace

const char* const kPgRunColumns =
    "run_id, date, slot_at, window_start, window_end, deadline_at, state, planned_count, feasible, plan_report, "
    "owner, lease_until, heartbeat_at, progress, started_at, finished_at, kind";

Run pg_read_run(const PgResult& r, int i) {
  Run x;
  x.run_id = r.i64(i, 0);
  x.date = r.str(i, 1);
  x.slot_at = r.i64(i, 2);
  x.window_start = r.i64(i, 3);
  x.window_end = r.i64(i, 4);
  x.deadline_at = r.i64(i, 5);
  x.state = r.str(i, 6);
  x.planned_count = r.i64(i, 7);
  x.feasible = r.i64(i, 8) != 0;
  x.plan_report = r.str(i, 9);
  x.owner = r.opt_str(i, 10);
  x.lease_until = r.opt_i64(i, 11);
  x.heartbeat_at = r.opt_i64(i, 12);
  x.progress = r.str(i, 13);
  x.started_at = r.opt_i64(i, 14);
  x.finished_at = r.opt_i64(i, 15);
  x.kind = r.str(i, 16);  // sql/postgresql/006
  return x;
}

namespace {


DeliveryRow pg_read_delivery(const PgResult& q, int i) {
  DeliveryRow r;
  r.delivery_id = q.i64(i, 0);
  r.run_id = q.i64(i, 1);
  r.advisor_id = q.str(i, 2);
  r.content_id = q.str(i, 3);
  r.source = q.str(i, 4);
  r.tier = q.str(i, 5);
  r.tier_rank = static_cast<int>(q.i64(i, 6));
  r.state = delivery_state_from_string(q.str(i, 7)).value_or(DeliveryState::planned);
  r.channel = q.str(i, 8);
  r.channel_index = static_cast<int>(q.i64(i, 9));
  r.sender = q.str(i, 10);
  r.planned_at = q.i64(i, 11);
  r.deadline_at = q.i64(i, 12);
  r.next_attempt_at = q.opt_i64(i, 13);
  r.claim_owner = q.opt_str(i, 14);
  r.claim_until = q.opt_i64(i, 15);
  r.attempts = static_cast<int>(q.i64(i, 16));
  r.first_sent_at = q.opt_i64(i, 17);
  r.provider_message_id = q.opt_str(i, 18);
  r.accepted_at = q.opt_i64(i, 19);
  r.last_error = q.opt_str(i, 20);
  r.possible_duplicate = q.i64(i, 21) != 0;
  r.advisor_name = q.str(i, 22);
  r.language = q.str(i, 23);
  r.channels = q.str(i, 24);
  r.phone = q.opt_str(i, 25).value_or("");
  r.email = q.opt_str(i, 26).value_or("");
  r.resent_at = q.opt_i64(i, 27);
  return r;
}

const char* kPgContentColumns =
    "SELECT content_id, title, body, language, topics, media_url, valid_from, valid_until, fallback_eligible, "
    "emergency, withdrawn_at FROM content ";

Content pg_read_content(const PgResult& q, int i) {
  Content c;
  c.content_id = q.str(i, 0);
  c.title = q.str(i, 1);
  c.body = q.str(i, 2);
  c.language = q.str(i, 3);
  c.topics = split_list(q.str(i, 4), ';');
  c.media_url = q.str(i, 5);
  c.valid_from = q.str(i, 6);
  c.valid_until = q.str(i, 7);
  c.fallback_eligible = q.i64(i, 8) != 0;
  c.emergency = q.i64(i, 9) != 0;
  c.withdrawn = !q.null(i, 10);
  return c;
}

}  // namespace

PgDispatchLedger::PgDispatchLedger(const std::string& url, std::string owner, bool migrate)
    : owner_(std::move(owner)), c_(std::make_unique<PgConn>(url)) {
  if (migrate) pg_migrate(*c_);
}
PgDispatchLedger::~PgDispatchLedger() = default;

std::optional<Run> PgDispatchLedger::load_run(std::int64_t run_id) {
  auto r = c_->run("run_get", std::string("SELECT ") + kPgRunColumns + " FROM runs WHERE run_id = $1", {num(run_id)});
  if (r.rows() == 0) return std::nullopt;
  return pg_read_run(r, 0);
}

CrashReconcile PgDispatchLedger::reconcile_crashed(std::int64_t run_id, Millis now) {
  CrashReconcile out;
  pg_transaction(*c_, [&] {
    out = {};
    auto m = c_->run("mark_uncertain",
                     "UPDATE deliveries SET state = 'uncertain', updated_at = $1 "
                     "WHERE run_id = $2 AND state = 'sending' AND (claim_owner IS NULL OR claim_owner != $3)",
                     {num(now), num(run_id), owner_});
    out.uncertain = m.affected();
    if (out.uncertain == 0) return;
    // Statuses already stored for a now-uncertain row (status_updates, folded as
    // StatusFindForDelivery does on SQLite): the provider has the message; do not send it again.
    auto ids = c_->run("list_uncertain", "SELECT delivery_id FROM deliveries WHERE run_id = $1 AND state = 'uncertain'",
                       {num(run_id)});
    for (int i = 0; i < ids.rows(); ++i) {
      const auto id = ids.i64(i, 0);
      auto s = c_->run("status_for_delivery",
                       "SELECT provider_message_id, status, provider_at FROM status_updates WHERE delivery_id = $1 "
                       "UNION SELECT provider_message_id, status, provider_at FROM status_updates WHERE matched_delivery_id = $1",
                       {num(id)});
      StatusFold fold;
      std::optional<std::pair<std::string, Millis>> best[4];
      std::optional<Millis> earliest_progress;
      bool any = false;
      for (int j = 0; j < s.rows(); ++j) {
        auto st = message_status_from_string(s.str(j, 1));
        if (!st) continue;
        any = true;
        fold = fold_status(fold, *st);
        const Millis at = s.i64(j, 2);
        auto& slot = best[static_cast<int>(*st)];
        if (!slot || at < slot->second) slot = std::make_pair(s.str(j, 0), at);
        if (*st != MessageStatus::failed && (!earliest_progress || at < *earliest_progress)) earliest_progress = at;
      }
      if (!any) continue;
      const MessageStatus outcome = *fold.outcome();
      const auto& b = *best[static_cast<int>(outcome)];
      const Millis at = outcome == MessageStatus::failed ? b.second : earliest_progress.value_or(b.second);
      auto next = delivery_state_after_status(DeliveryState::uncertain, outcome);
      if (!next) continue;
      const std::string st(to_string(*next));
      auto u = c_->run("settle_uncertain",
                       "UPDATE deliveries SET state = $1, provider_message_id = $2, accepted_at = COALESCE(accepted_at, $3), "
                       "delivered_at = CASE WHEN $1 IN ('delivered', 'read') THEN COALESCE(delivered_at, $3) ELSE delivered_at END, "
                       "read_at = CASE WHEN $1 = 'read' THEN COALESCE(read_at, $3) ELSE read_at END, "
                       "claim_owner = NULL, updated_at = $4 WHERE delivery_id = $5 AND state = 'uncertain'",
                       {st, b.first, num(at), num(now), num(id)});
      if (u.affected() == 1) ++out.reconciled;
    }
  });
  return out;
}

std::vector<ContentRow> PgDispatchLedger::content_query(const char* name, const std::string& where,
                                                        const std::vector<PgParam>& params) {
  auto r = c_->run(name, std::string(kPgContentColumns) + where, params);
  std::vector<ContentRow> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(pg_read_content(r, i));
  return out;
}

std::vector<ContentRow> PgDispatchLedger::load_emergency_content() {
  return content_query("content_emergency", "WHERE emergency = 1 AND withdrawn_at IS NULL ORDER BY content_id", {});
}
std::vector<ContentRow> PgDispatchLedger::load_run_content(std::int64_t run_id) {
  return content_query("content_for_run",
                       "WHERE content_id IN (SELECT DISTINCT content_id FROM deliveries WHERE run_id = $1) ORDER BY content_id",
                       {num(run_id)});
}
void PgDispatchLedger::for_each_delivery(std::int64_t run_id, const std::function<void(DeliveryRow&&)>& fn) {
  c_->each_row(std::string(kDeliverySelectSql) + "WHERE d.run_id = $1", {num(run_id)},
               [&](const PgResult& r) { fn(pg_read_delivery(r, 0)); });
}
std::int64_t PgDispatchLedger::change_mark() {
  return c_->run("change_mark", "SELECT COALESCE(MAX(seq), 0) FROM delivery_changes", {}).i64(0, 0);
}

void PgDispatchLedger::begin() {
  c_->ensure_connected();  // a connection lost between batches comes back here
  c_->exec("BEGIN");
}
void PgDispatchLedger::commit() { c_->exec("COMMIT"); }
void PgDispatchLedger::rollback() noexcept {
  try {
    if (c_->in_transaction()) c_->exec("ROLLBACK");
  } catch (...) {
    // A lost connection leaves nothing to roll back: the server rolled it back.
  }
}
bool PgDispatchLedger::in_transaction() { return c_->in_transaction(); }
void PgDispatchLedger::savepoint() { c_->exec("SAVEPOINT daybreak_write_op"); }
void PgDispatchLedger::release_savepoint() { c_->exec("RELEASE SAVEPOINT daybreak_write_op"); }
void PgDispatchLedger::rollback_to_savepoint() {
  c_->exec("ROLLBACK TO SAVEPOINT daybreak_write_op");
  c_->exec("RELEASE SAVEPOINT daybreak_write_op");
}

/// One statement of an operation: a named prepared statement and its parameters.
struct PgStmt {
  const char* name;
  const std::string* sql;
  std::vector<PgParam> params;
};

namespace {

/// The SQL of the write operations, built once.
struct PgWriteSql {
  std::string claim, claim_state, delivery_update, delivery_claim_update, attempt_insert, substitute_delivery,
      substitute_assignment, release, heartbeat, controls, run_close, count_non_final, release_lease, reroute, adopt_urgent;
  PgWriteSql() {
    const std::string claimable = claimable_states_sql();
    const std::string non_final = non_final_states_sql();
    // The owner's runs are locked FOR SHARE first (in the CTE), so a take-over (which locks the
    // run FOR UPDATE) cannot commit between this check and our commit; a take-over that
    // committed first leaves no run row here and nothing is claimed.
    claim = "WITH owned AS (SELECT run_id FROM runs WHERE owner = $1 AND run_id IN "
            "(SELECT DISTINCT run_id FROM deliveries WHERE delivery_id = ANY($2::bigint[])) FOR SHARE) "
            "UPDATE deliveries d SET state = 'sending', claim_owner = $1, claim_until = $3, updated_at = $4 "
            "WHERE d.delivery_id = ANY($2::bigint[]) AND d.state IN (" + claimable + ") "
            "AND d.run_id IN (SELECT run_id FROM owned) RETURNING d.delivery_id";
    // The rows as they are after the claim (a later statement: it sees the claim's changes and
    // what committed meanwhile), for the ids the claim did not take.
    claim_state = "SELECT delivery_id, state, accepted_at, provider_message_id, claim_owner FROM deliveries "
                  "WHERE delivery_id = ANY($1::bigint[])";
    const std::string outcome_set =
        "UPDATE deliveries SET state = $1, channel = $2, channel_index = $3, sender = $4, attempts = $5, "
        "next_attempt_at = $6, first_sent_at = COALESCE(first_sent_at, $7), "
        "provider_message_id = COALESCE($8, provider_message_id), accepted_at = COALESCE($9, accepted_at), "
        "last_error = COALESCE($10, last_error), possible_duplicate = GREATEST(possible_duplicate, $11), updated_at = $12, ";
    delivery_update = outcome_set +
                      "claim_owner = CASE WHEN $1 = 'sending' THEN claim_owner ELSE NULL END "
                      "WHERE delivery_id = $13 AND state = 'sending' AND claim_owner = $14";
    // A claim and the outcome in one statement (a row made final without a send): the row moves
    // only from a claimable state while this owner holds its run (locked FOR SHARE as a claim
    // does), and ends as the claim followed by the outcome would leave it.
    delivery_claim_update = "WITH owned AS (SELECT r.run_id FROM runs r JOIN deliveries d ON d.run_id = r.run_id "
                            "WHERE d.delivery_id = $13 AND r.owner = $14 FOR SHARE OF r) " +
                            outcome_set +
                            "claim_owner = CASE WHEN $1 = 'sending' THEN $14 ELSE NULL END, claim_until = $15 "
                            "WHERE delivery_id = $13 AND state IN (" + claimable + ") AND run_id IN (SELECT run_id FROM owned)";
    attempt_insert =
        "INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, "
        "error_code, error_detail, provider_message_id, latency_ms, fbtrace_id, held_for_quality, error_scope) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)";
    substitute_delivery = "UPDATE deliveries SET content_id = $1, source = 'emergency', updated_at = $2 WHERE delivery_id = $3";
    substitute_assignment = "UPDATE assignments SET content_id = $1, source = 'emergency', reason = $2 "
                            "WHERE (advisor_id, date) = (SELECT advisor_id, date FROM deliveries WHERE delivery_id = $3)";
    release = "UPDATE deliveries SET state = CASE WHEN attempts = 0 THEN 'planned' ELSE 'retry_wait' END, "
              "next_attempt_at = $1, claim_owner = NULL, updated_at = $1 WHERE delivery_id = ANY($2::bigint[]) "
              "AND state = 'sending' AND claim_owner = $3";
    heartbeat = "UPDATE runs SET lease_until = $1, heartbeat_at = $2, progress = $3 WHERE run_id = $4 AND owner = $5";
    controls = "SELECT key, value FROM controls ORDER BY key";
    // Never closed with a row that is not final (docs/reliability.md).
    run_close = "UPDATE runs SET state = CASE WHEN state = 'cancelled' THEN 'cancelled' ELSE 'closed' END, finished_at = $1, "
                "progress = $2, owner = NULL, lease_until = NULL, heartbeat_at = $1 WHERE run_id = $3 "
                "AND (owner = $4 OR owner IS NULL) AND NOT EXISTS "
                "(SELECT 1 FROM deliveries d WHERE d.run_id = $3 AND d.state IN (" + non_final + "))";
    count_non_final = "SELECT COUNT(*) FROM deliveries WHERE run_id = $1 AND state IN (" + non_final + ")";
    release_lease = "UPDATE runs SET owner = NULL, lease_until = NULL WHERE run_id = $1 AND owner = $2";
    // As store::DeliveryRerouteAfterFailedStatus on SQLite: accepted on WhatsApp with a failed
    // status, its run held by this owner → retry_wait on the next channel; the failed status
    // that moved it is marked rerouted.
    reroute = "WITH moved AS (UPDATE deliveries SET state = 'retry_wait', channel = $1, channel_index = $2, sender = $3, "
              "next_attempt_at = $4, accepted_at = NULL, last_error = $5, claim_owner = NULL, updated_at = $4 "
              "WHERE delivery_id = $6 AND state = 'accepted' AND channel = 'whatsapp' "
              "AND last_error LIKE 'status failed: %' AND EXISTS (SELECT 1 FROM runs r WHERE "
              "r.run_id = deliveries.run_id AND r.owner = $7 AND r.state = 'running') RETURNING delivery_id) "
              "UPDATE status_updates SET outcome = 'rerouted' WHERE status = 'failed' AND applied_at IS NOT NULL "
              "AND (matched_delivery_id IN (SELECT delivery_id FROM moved) OR delivery_id IN (SELECT delivery_id FROM moved))";
    // As SqliteDispatchLedger::adopt_urgent (RunListAdoptableUrgent + RunAcquireLease): the open
    // urgent runs (sql/postgresql/006) whose window overlaps [$5, $4], not among this dispatch's
    // runs, whose lease is free or expired, leased to this owner in one statement. FOR UPDATE
    // SKIP LOCKED as acquire_lease: a run another host is taking at this moment is left to it,
    // and one it took and committed first no longer matches (its lease is live).
    adopt_urgent = std::string("UPDATE runs SET owner = $1, lease_until = $2, heartbeat_at = $3, state = 'running', "
                               "started_at = COALESCE(started_at, $3) WHERE run_id IN (SELECT run_id FROM runs "
                               "WHERE kind = 'urgent' AND state IN ('planned','running') AND window_start <= $4 "
                               "AND deadline_at >= $5 AND (owner IS NULL OR lease_until IS NULL OR lease_until <= $3) "
                               "AND NOT (run_id = ANY($6::bigint[])) FOR UPDATE SKIP LOCKED) RETURNING ") +
                   kPgRunColumns;
  }
};
const PgWriteSql& pg_sql() {
  static const PgWriteSql sql;
  return sql;
}

}  // namespace

/// A write operation as the statements it sends (together, in order) and how their answers
/// make its result.
struct PgOpPlan {
  std::vector<PgStmt> stmts;
  std::function<LedgerResult(std::vector<PgResult>&)> finish;  ///< null: no result
};

bool PgDispatchLedger::plan(const LedgerOp& op, PgOpPlan& out) {
  const auto& q = pg_sql();
  auto opt = [](const std::string& s) { return s.empty() ? PgParam() : PgParam(s); };
  return std::visit(
      PgOverloaded{
          [&](const ledger_op::Claim& o) {
            const std::string ids = id_array(o.ids);
            out.stmts.push_back({"claim", &q.claim, {owner_, ids, num(o.claim_until), num(o.now)}});
            out.stmts.push_back({"claim_state", &q.claim_state, {ids}});
            out.finish = [ids = o.ids](std::vector<PgResult>& r) -> LedgerResult { return claim_results(ids, r[0], r[1]); };
            return true;
          },
          [&](const ledger_op::Outcome& o) {
            const auto& p = o.update;
            std::vector<PgParam> params{std::string(to_string(p.state)), p.channel, num(p.channel_index), p.sender,
                                        num(p.attempts), opt_num(p.next_attempt_at), opt_num(p.sent_at),
                                        p.provider_message_id, opt_num(p.accepted_at), p.last_error,
                                        std::string(p.possible_duplicate ? "1" : "0"), num(p.now), num(p.delivery_id), owner_};
            if (o.claim_first) {
              params.push_back(num(o.claim_until));
              out.stmts.push_back({"delivery_claim_update", &q.delivery_claim_update, std::move(params)});
            } else {
              out.stmts.push_back({"delivery_update", &q.delivery_update, std::move(params)});
            }
            return true;
          },
          [&](const ledger_op::Attempt& o) {
            const auto& p = o.attempt;
            out.stmts.push_back({"attempt_insert", &q.attempt_insert,
                                 {num(p.delivery_id), num(p.attempt_no), p.channel, p.sender, num(p.started_at),
                                  num(p.finished_at), p.outcome, opt(p.error_code), opt(p.error_detail),
                                  opt(p.provider_message_id), num(p.latency_ms), opt(p.fbtrace_id),
                                  num(p.held_for_quality ? 1 : 0), opt(p.error_scope)}});
            return true;
          },
          [&](const ledger_op::Substitute& o) {
            out.stmts.push_back({"substitute_delivery", &q.substitute_delivery, {o.content_id, num(o.now), num(o.delivery_id)}});
            out.stmts.push_back({"substitute_assignment", &q.substitute_assignment,
                                 {o.content_id, "emergency substitution: " + o.reason, num(o.delivery_id)}});
            return true;
          },
          [&](const ledger_op::Release& o) {
            out.stmts.push_back({"release", &q.release, {num(o.now), id_array(o.ids), owner_}});
            return true;
          },
          [&](const ledger_op::Heartbeat& o) {
            for (const auto& [run_id, json] : o.progress) {
              out.stmts.push_back({"heartbeat", &q.heartbeat, {num(o.now + o.lease_ms), num(o.now), json, num(run_id), owner_}});
            }
            out.stmts.push_back({"controls", &q.controls, {}});
            out.finish = [](std::vector<PgResult>& r) -> LedgerResult { return heartbeat_result(r); };
            return true;
          },
          // Reads that depend on each other: run on their own (apply), not in a pipeline.
          [&](const ledger_op::PollChanges&) { return false; },
          [&](const ledger_op::StoreRunReport&) { return false; },
          [&](const ledger_op::CloseRun& o) {
            // The count and the lease's release matter only when the close did not happen (a
            // closed run has no owner left to release and no row open).
            out.stmts.push_back({"run_close", &q.run_close, {num(o.now), o.progress, num(o.run_id), owner_}});
            out.stmts.push_back({"count_non_final", &q.count_non_final, {num(o.run_id)}});
            out.stmts.push_back({"release_lease", &q.release_lease, {num(o.run_id), owner_}});
            out.finish = [](std::vector<PgResult>& r) -> LedgerResult {
              CloseResult c;
              c.closed = r[0].affected() == 1;
              if (!c.closed) c.open_rows = r[1].i64(0, 0);
              return c;
            };
            return true;
          },
          [&](const ledger_op::ReleaseLease& o) {
            out.stmts.push_back({"release_lease", &q.release_lease, {num(o.run_id), owner_}});
            return true;
          },
          // Not run here: the dispatcher runs monitoring on this host's file (pg_ledger.hpp).
          [&](const ledger_op::Local&) { return true; },
          // An urgent run `daybreak send-now` published while this dispatch runs: leased here
          // and returned (its kind is sql/postgresql/006's column), in slot order as on SQLite.
          [&](const ledger_op::AdoptUrgent& o) {
            out.stmts.push_back({"adopt_urgent", &q.adopt_urgent,
                                 {owner_, num(o.now + o.lease_ms), num(o.now), num(o.to), num(o.from), id_array(o.known)}});
            out.finish = [](std::vector<PgResult>& r) -> LedgerResult {
              AdoptedRuns a;
              for (int i = 0; i < r[0].rows(); ++i) a.runs.push_back(pg_read_run(r[0], i));
              std::sort(a.runs.begin(), a.runs.end(), [](const Run& x, const Run& y) {
                return std::tie(x.slot_at, x.run_id) < std::tie(y.slot_at, y.run_id);
              });
              return a;
            };
            return true;
          },
          [&](const ledger_op::RerouteAfterFailed& o) {
            const auto& p = o.params;
            out.stmts.push_back({"reroute_after_failed", &q.reroute,
                                 {p.channel, num(p.channel_index), p.sender, num(p.now), p.last_error, num(p.delivery_id), owner_}});
            return true;
          }},
      op);
}

std::vector<ClaimResult> PgDispatchLedger::claim_results(const std::vector<std::int64_t>& ids, const PgResult& claimed,
                                                         const PgResult& state) {
  std::unordered_set<std::int64_t> ok;
  for (int i = 0; i < claimed.rows(); ++i) ok.insert(claimed.i64(i, 0));
  std::unordered_map<std::int64_t, DeliveryStateRow> now_rows;
  if (ok.size() < ids.size()) {
    for (int i = 0; i < state.rows(); ++i) {
      const auto id = state.i64(i, 0);
      if (ok.count(id)) continue;
      DeliveryStateRow row;
      row.state = delivery_state_from_string(state.str(i, 1)).value_or(DeliveryState::planned);
      row.accepted_at = state.opt_i64(i, 2);
      row.provider_message_id = state.opt_str(i, 3);
      row.claim_owner = state.opt_str(i, 4);
      now_rows.emplace(id, std::move(row));
    }
  }
  std::vector<ClaimResult> out;
  out.reserve(ids.size());
  for (auto id : ids) {
    ClaimResult c{id, ok.count(id) > 0, std::nullopt};
    if (!c.ok) {
      if (auto it = now_rows.find(id); it != now_rows.end()) c.now_row = it->second;
    }
    out.push_back(std::move(c));
  }
  return out;
}

HeartbeatResult PgDispatchLedger::heartbeat_result(std::vector<PgResult>& r) {
  HeartbeatResult out;
  for (std::size_t i = 0; i + 1 < r.size(); ++i) {
    if (r[i].affected() != 1) out.lease_ok = false;
  }
  const auto& c = r.back();
  // The same switches as on SQLite, run and sender scopes included (store::apply_control).
  for (int i = 0; i < c.rows(); ++i) apply_control(c.str(i, 0), c.str(i, 1), out.controls);
  return out;
}

LedgerResult PgDispatchLedger::apply(const LedgerOp& op) {
  PgOpPlan p;
  if (!plan(op, p)) {
    if (const auto* report = std::get_if<ledger_op::StoreRunReport>(&op)) {
      store_run_report(*report);
      return {};
    }
    return poll_changes(std::get<ledger_op::PollChanges>(op));
  }
  std::vector<PgResult> r;
  r.reserve(p.stmts.size());
  for (const auto& st : p.stmts) r.push_back(c_->run(st.name, *st.sql, st.params));
  return p.finish ? p.finish(r) : LedgerResult{};
}

std::optional<BatchFailure> PgDispatchLedger::apply_batch(const std::vector<const LedgerOp*>& ops,
                                                          std::vector<LedgerResult>& results) {
  results.assign(ops.size(), LedgerResult{});
  std::size_t i = 0;
  while (i < ops.size()) {
    // The longest run of operations from i that can go out together.
    std::vector<PgOpPlan> plans;
    std::size_t j = i;
    for (; j < ops.size(); ++j) {
      PgOpPlan p;
      if (!plan(*ops[j], p)) break;
      plans.push_back(std::move(p));
    }
    if (j == i) {  // one that reads before it writes: on its own
      try {
        results[i] = apply(*ops[i]);
      } catch (...) {
        return BatchFailure{i, std::current_exception()};
      }
      ++i;
      continue;
    }
    std::vector<PgPiped> answers;
    try {
      for (const auto& p : plans) {
        for (const auto& st : p.stmts) c_->pipeline_send(st.name, *st.sql, st.params);
      }
      answers = c_->pipeline_sync();
    } catch (...) {
      return BatchFailure{i, std::current_exception()};  // the connection: the whole batch is retried
    }
    std::size_t a = 0;
    for (std::size_t k = 0; k < plans.size(); ++k) {
      std::vector<PgResult> r;
      r.reserve(plans[k].stmts.size());
      for (std::size_t s = 0; s < plans[k].stmts.size(); ++s, ++a) {
        if (a >= answers.size() || !answers[a].ok) {
          const std::string why = a < answers.size() ? answers[a].error : "PostgreSQL: a pipeline answer is missing";
          const bool transient = a < answers.size() && answers[a].transient;
          return BatchFailure{i + k, std::make_exception_ptr(StoreError(why, transient ? SQLITE_BUSY : 0))};
        }
        r.push_back(std::move(answers[a].result));
      }
      try {
        results[i + k] = plans[k].finish ? plans[k].finish(r) : LedgerResult{};
      } catch (...) {
        return BatchFailure{i + k, std::current_exception()};
      }
    }
    i = j;
  }
  return std::nullopt;
}

void PgDispatchLedger::store_run_report(const ledger_op::StoreRunReport& op) {
  // The run as this transaction sees it, locked FOR SHARE so an operator's reopen (a resend or a
  // replay) waits for the report to commit: only a run this dispatch closed at `closed_at` (its
  // CloseRun, committed earlier or in this transaction; closing clears the owner, so the close's
  // instant is what names it). A run another host closed, or closed again after this one, has a
  // different finished_at and is left to that host.
  auto r = c_->run("report_run_closed_at",
                   std::string("SELECT ") + kPgRunColumns +
                       " FROM runs WHERE run_id = $1 AND state IN ('closed', 'cancelled') AND finished_at = $2 FOR SHARE",
                   {num(op.run_id), num(op.closed_at)});
  if (r.rows() == 0 || !op.build) return;
  const Run run = pg_read_run(r, 0);
  PgReportLedger ledger(*c_);
  const BuiltRunReport rep = op.build(ledger, run, op.closed_at);
  pg_run_report_upsert(*c_, run.run_id, run.date, op.closed_at, op.closed_at, rep.sla_pct, rep.json, owner_);
}

OperatorChanges PgDispatchLedger::poll_changes(const ledger_op::PollChanges& op) {
  OperatorChanges out;
  out.mark = change_mark();
  std::vector<std::int64_t> ids;
  auto ch = c_->run("changes_since",
                    "SELECT DISTINCT delivery_id FROM delivery_changes WHERE run_id = ANY($1::bigint[]) AND seq > $2 AND seq <= $3",
                    {id_array(op.run_ids), num(op.after_seq), num(out.mark)});
  for (int i = 0; i < ch.rows(); ++i) ids.push_back(ch.i64(i, 0));
  std::sort(ids.begin(), ids.end());
  if (!ids.empty()) {
    auto rows = c_->run("deliveries_by_id", std::string(kDeliverySelectSql) + "WHERE d.delivery_id = ANY($1::bigint[]) ORDER BY d.delivery_id",
                        {id_array(ids)});
    std::unordered_set<std::string> seen;
    for (int i = 0; i < rows.rows(); ++i) {
      auto row = pg_read_delivery(rows, i);
      if (seen.insert(row.content_id).second) {
        auto c = content_query("content_get", "WHERE content_id = $1", {row.content_id});
        if (!c.empty()) out.content.push_back(std::move(c.front()));
      }
      out.rows.push_back(std::move(row));
    }
  }
  auto w = c_->run("withdrawn_ids", "SELECT content_id FROM content WHERE withdrawn_at IS NOT NULL ORDER BY content_id", {});
  for (int i = 0; i < w.rows(); ++i) out.withdrawn.push_back(w.str(i, 0));
  out.holds = pg_whatsapp_holds_active(*c_, op.now, op.holds_since);  // pg_status.hpp
  return out;
}

std::int64_t PgDispatchLedger::count_non_final(std::int64_t run_id) {
  return c_->run("count_non_final", pg_sql().count_non_final, {num(run_id)}).i64(0, 0);
}

std::vector<Run> PgDispatchLedger::list_dispatchable(Millis from, Millis to) {
  auto r = c_->run("list_dispatchable",
                   std::string("SELECT ") + kPgRunColumns +
                       " FROM runs r WHERE state IN ('planned','running') AND ((window_start <= $1 AND deadline_at >= $2) "
                       "OR (reopened_at IS NOT NULL AND EXISTS (SELECT 1 FROM deliveries d WHERE d.run_id = r.run_id "
                       "AND d.state IN (" + non_final_states_sql() + ")))) ORDER BY slot_at, run_id",
                   {num(to), num(from)});
  std::vector<Run> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(pg_read_run(r, i));
  return out;
}

LeaseResult PgDispatchLedger::acquire_lease(std::int64_t run_id, Millis now, Millis lease_ms) {
  LeaseResult res;
  pg_transaction(*c_, [&] {
    res = {};
    // SKIP LOCKED: a run another host is taking (or claiming under) right now is not waited
    // for; it is reported as owned elsewhere, and the next pass tries again.
    auto cur = c_->run("lease_lock",
                       "SELECT owner, lease_until, heartbeat_at FROM runs WHERE run_id = $1 FOR UPDATE SKIP LOCKED",
                       {num(run_id)});
    if (cur.rows() == 0) {
      auto who = c_->run("lease_peek", "SELECT owner, heartbeat_at FROM runs WHERE run_id = $1", {num(run_id)});
      if (who.rows() > 0) {
        res.previous_owner = who.opt_str(0, 0).value_or("a host taking it now");
        res.previous_heartbeat = who.opt_i64(0, 1);
      }
      return;
    }
    auto owner = cur.opt_str(0, 0);
    auto until = cur.opt_i64(0, 1);
    res.previous_owner = owner;
    res.previous_heartbeat = cur.opt_i64(0, 2);
    if (owner && *owner != owner_ && until && *until > now) return;  // a live owner holds it
    res.took_over = owner.has_value() && *owner != owner_;
    c_->run("lease_take",
            "UPDATE runs SET owner = $1, lease_until = $2, heartbeat_at = $3, state = 'running', "
            "started_at = COALESCE(started_at, $3) WHERE run_id = $4",
            {owner_, num(now + lease_ms), num(now), num(run_id)});
    res.acquired = true;
  });
  return res;
}

LedgerFactory pg_ledger_factory(std::string url, std::string owner) {
  return [url = std::move(url), owner = std::move(owner)]() -> std::unique_ptr<DispatchLedger> {
    return std::make_unique<PgDispatchLedger>(url, owner);
  };
}

std::optional<std::string> pg_live_dispatch_owner(PgConn& c, Millis now) {
  auto r = c.query("SELECT owner FROM runs WHERE owner IS NOT NULL AND lease_until > $1 AND state IN ('planned','running') "
                   "ORDER BY heartbeat_at DESC LIMIT 1",
                   {num(now)});
  if (r.rows() == 0) return std::nullopt;
  return r.str(0, 0);
}

std::optional<std::string> pg_run_live_owner(PgConn& c, std::int64_t run_id, Millis now) {
  auto r = c.query("SELECT owner FROM runs WHERE run_id = $1 AND owner IS NOT NULL AND lease_until > $2", {num(run_id), num(now)});
  if (r.rows() == 0) return std::nullopt;
  return r.str(0, 0);
}

// ---- daybreak status ----

PgStatusView pg_status_view(const std::string& url, Millis from, Millis now, const std::string& next_day) {
  PgConn c(url);
  return pg_status_view(c, from, now, next_day);
}

PgStatusView pg_status_view(PgConn& c, Millis from, Millis now, const std::string& next_day) {
  PgStatusView v;
  // As RunListActive + the running ones of RunListRecent on SQLite.
  auto a = c.query(std::string("SELECT ") + kPgRunColumns +
                       " FROM runs WHERE (state IN ('planned','running') AND window_start <= $1 AND deadline_at >= $2) "
                       "OR state = 'running' ORDER BY slot_at, run_id",
                   {num(now), num(from)});
  for (int i = 0; i < a.rows(); ++i) v.active.push_back(pg_read_run(a, i));
  auto k = c.query("SELECT key, value, updated_at, updated_by FROM controls ORDER BY key");
  for (int i = 0; i < k.rows(); ++i) v.controls.push_back({k.str(i, 0), k.str(i, 1), k.i64(i, 2), k.opt_str(i, 3).value_or("")});
  v.dead = c.query("SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND dismissed_at IS NULL").i64(0, 0);
  auto n = c.query(std::string("SELECT ") + kPgRunColumns + " FROM runs WHERE date = $1 ORDER BY slot_at, run_id", {next_day});
  for (int i = 0; i < n.rows(); ++i) v.next_day_runs.push_back(pg_read_run(n, i));
  return v;
}

// ---- doctor ----

std::string pg_url_for_display(const std::string& url) {
  // postgresql://user:password@host/db → postgresql://user:***@host/db
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const auto at = url.find('@', scheme + 3);
  const auto colon = url.find(':', scheme + 3);
  if (at == std::string::npos || colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

std::vector<PgLedgerCheck> check_pg_ledger(const std::string& url) {
  std::vector<PgLedgerCheck> rows;
  const std::string shown = pg_url_for_display(url);
  std::unique_ptr<PgConn> c;
  try {
    c = std::make_unique<PgConn>(url);
    auto v = c->query("SELECT current_setting('server_version'), current_database(), current_user");
    rows.push_back({"ledger_postgres", true,
                    shown + ": PostgreSQL " + v.str(0, 0) + ", database " + v.str(0, 1) + " as user " + v.str(0, 2)});
  } catch (const std::exception& e) {
    rows.push_back({"ledger_postgres", false, shown + ": " + e.what() + " ([database] url)"});
    rows.push_back({"ledger_schema", false, "not checked: no connection to the PostgreSQL ledger"});
    rows.push_back({"ledger_tables", false, "not checked: no connection to the PostgreSQL ledger"});
    return rows;
  }
  int latest = 0;
  for (const auto& m : embedded_pg_migrations()) latest = std::max(latest, m.version);
  try {
    if (c->query("SELECT to_regclass('schema_migrations') IS NULL").str(0, 0) == "t") {
      rows.push_back({"ledger_schema", false,
                      "no daybreak schema in this database (no schema_migrations table): `dispatch` applies it when it "
                      "connects, as does `daybreak migrate-ledger`"});
    } else {
      const int v = static_cast<int>(c->query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").i64(0, 0));
      const std::string have = "PostgreSQL schema version " + std::to_string(v);
      if (v == latest) {
        rows.push_back({"ledger_schema", true, have + " (latest)"});
      } else if (v < latest) {
        rows.push_back({"ledger_schema", false, have + ", this build has " + std::to_string(latest) + ": " +
                                                    std::to_string(std::count_if(embedded_pg_migrations().begin(),
                                                                                 embedded_pg_migrations().end(),
                                                                                 [&](const auto& m) { return m.version > v; })) +
                                                    " migration(s) pending; the next dispatch applies them when it connects"});
      } else {
        rows.push_back({"ledger_schema", false, have + " is newer than this build's " + std::to_string(latest) +
                                                    ": the binaries are older than the ledger"});
      }
    }
  } catch (const std::exception& e) {
    rows.push_back({"ledger_schema", false, e.what()});
  }
  // Every table of the ledger's migrations, with the writes its writers make (a read is needed
  // of each): dispatch, migrate-ledger and the operator's changes (sql/postgresql/001), the
  // operator's audit rows, only ever appended (003), and the status callbacks (001's
  // status_updates, 004) that daybreak-callbacks and `daybreak ingest` store and apply, and the
  // run reports a dispatch stores when it closes a run (005: INSERT … ON CONFLICT DO UPDATE).
  struct LedgerTable {
    const char* name;
    bool update;  ///< UPDATE is needed besides INSERT (rows changed, ON CONFLICT … DO UPDATE, FOR UPDATE)
    const char* writers;
    bool del = false;  ///< DELETE is needed too (a publish replaces an advisor's channel rows)
  };
  static const LedgerTable kTables[] = {
      {"advisors", true, "migrate-ledger, the publish of a planned day, advisors"},
      {"advisor_channels", true, "migrate-ledger, the publish of a planned day, advisors", true},
      {"content", true, "migrate-ledger, the publish of a planned day, content withdraw, assign"},
      {"assignments", true, "migrate-ledger, content withdraw, assign"},
      {"runs", true, "dispatch"},
      {"deliveries", true, "dispatch, the status callbacks"},
      {"delivery_attempts", false, "dispatch"},
      {"delivery_changes", false, "dispatch, the operator's changes, the status callbacks"},
      {"controls", true, "pause, resume"},
      {"status_updates", true, "daybreak-callbacks, ingest"},
      {"audit_log", false, "the operator's changes"},
      {"status_events", true, "daybreak-callbacks, ingest"},
      {"status_rejects", false, "daybreak-callbacks, ingest"},
      {"whatsapp_holds", true, "daybreak-callbacks, ingest"},
      {"run_reports", true, "dispatch"},
  };
  std::vector<std::string> problems;
  for (const auto& t : kTables) {
    const std::string name = t.name;
    try {
      if (c->query("SELECT to_regclass($1) IS NULL", {name}).str(0, 0) == "t") {
        problems.push_back(name + ": missing");
        continue;
      }
      c->query("SELECT 1 FROM " + name + " LIMIT 1");
      auto p = c->query("SELECT has_table_privilege($1, 'INSERT'), has_table_privilege($1, 'UPDATE'), "
                        "has_table_privilege($1, 'DELETE')",
                        {name});
      std::string lacking;
      if (p.str(0, 0) != "t") lacking += "INSERT";
      if (t.update && p.str(0, 1) != "t") lacking += std::string(lacking.empty() ? "" : ", ") + "UPDATE";
      if (t.del && p.str(0, 2) != "t") lacking += std::string(lacking.empty() ? "" : ", ") + "DELETE";
      if (!lacking.empty()) problems.push_back(name + ": no " + lacking + " privilege (" + t.writers + ")");
    } catch (const std::exception& e) {
      problems.push_back(name + ": " + e.what());
    }
  }
  if (problems.empty()) {
    rows.push_back({"ledger_tables", true,
                    std::to_string(std::size(kTables)) + " ledger tables readable and writable as their writers need"});
  } else {
    std::string m;
    for (const auto& p : problems) m += (m.empty() ? "" : "; ") + p;
    rows.push_back({"ledger_tables", false, m});
  }
  return rows;
}

// ---- migrate-ledger and the publish of a planned day ----

namespace {

struct CopyTable {
  const char* name;
  const char* columns;
  const char* where_all;    ///< SQLite WHERE when every day is copied ("" = all rows)
  const char* where_scope;  ///< SQLite WHERE with ?1 = the day and ?2 = one run id or NULL (every run of the day)
  const char* identity;     ///< the identity column ("" = none: the primary key is the row's own key)
  /// With an identity: the columns that make a row the same row whatever its id (a UNIQUE key, or
  /// every column but the id; all NOT NULL, so `=` joins them). A row of SQLite whose natural key is already in PostgreSQL is kept
  /// there, under the id it has there; children follow that id.
  const char* natural;
  /// (column, parent table) pairs: the column holds the parent's identity and follows its renumbering.
  std::vector<std::pair<const char*, const char*>> refs;
  /// The planning tables a publish keeps current (id-less only; "" = a row already there is kept
  /// as it is): the conflict key, then what a row already there takes from the copy, and the
  /// values those columns would get, for the WHERE that leaves an unchanged row unwritten.
  const char* key = "";
  const char* refresh_set = "";
  const char* refresh_cols = "";
  const char* refresh_values = "";
  /// The parent whose rows own this table's (advisor_channels: advisors): a row of a copied
  /// parent that the copy does not have is deleted, so the copied parents' rows are replaced.
  const char* replace_of = "";
};

// Parents before children (foreign keys). Columns are named in both databases alike.
const CopyTable kCopyTables[] = {
    // The planning data a publish brings up to date (an advisor's new phone, channels, opt-ins or
    // absence; an edited content item): SQLite is where it is planned; the newest row wins
    // (copy_table). A withdrawal made on PostgreSQL (`daybreak content withdraw` with url) is
    // never undone by a publish.
    {"advisors", "advisor_id, name, tier, timezone, slot, channels, opted_in, language, topics, paused_from, paused_until, updated_at",
     "", "", "", "", {}, "advisor_id",
     "name = excluded.name, tier = excluded.tier, timezone = excluded.timezone, slot = excluded.slot, "
     "channels = excluded.channels, opted_in = excluded.opted_in, language = excluded.language, topics = excluded.topics, "
     "paused_from = excluded.paused_from, paused_until = excluded.paused_until, updated_at = excluded.updated_at",
     "name, tier, timezone, slot, channels, opted_in, language, topics, paused_from, paused_until, updated_at",
     "excluded.name, excluded.tier, excluded.timezone, excluded.slot, excluded.channels, excluded.opted_in, excluded.language, "
     "excluded.topics, excluded.paused_from, excluded.paused_until, excluded.updated_at", ""},
    {"advisor_channels", "advisor_id, channel, address, opted_in", "", "", "", "", {}, "advisor_id, channel",
     "address = excluded.address, opted_in = excluded.opted_in", "address, opted_in", "excluded.address, excluded.opted_in",
     "advisors"},
    {"content",
     "content_id, title, body, language, topics, media_url, valid_from, valid_until, fallback_eligible, emergency, "
     "withdrawn_at, withdrawn_by, updated_at",
     "", "", "", "", {}, "content_id",
     "title = excluded.title, body = excluded.body, language = excluded.language, topics = excluded.topics, "
     "media_url = excluded.media_url, valid_from = excluded.valid_from, valid_until = excluded.valid_until, "
     "fallback_eligible = excluded.fallback_eligible, emergency = excluded.emergency, "
     "withdrawn_at = COALESCE(content.withdrawn_at, excluded.withdrawn_at), "
     "withdrawn_by = CASE WHEN content.withdrawn_at IS NULL THEN excluded.withdrawn_by ELSE content.withdrawn_by END, "
     "updated_at = excluded.updated_at",
     "title, body, language, topics, media_url, valid_from, valid_until, fallback_eligible, emergency, withdrawn_at, "
     "withdrawn_by, updated_at",
     "excluded.title, excluded.body, excluded.language, excluded.topics, excluded.media_url, excluded.valid_from, "
     "excluded.valid_until, excluded.fallback_eligible, excluded.emergency, COALESCE(content.withdrawn_at, excluded.withdrawn_at), "
     "CASE WHEN content.withdrawn_at IS NULL THEN excluded.withdrawn_by ELSE content.withdrawn_by END, excluded.updated_at",
     ""},
    {"controls", "key, value, updated_at, updated_by", "", "", "", "", {}},
    {"assignments", "advisor_id, date, content_id, source, score, score_parts, reason, created_at", "", "WHERE date = ?1", "", "", {}},
    {"runs",
     "run_id, date, slot_at, window_start, window_end, deadline_at, state, planned_count, feasible, plan_report, owner, "
     "lease_until, heartbeat_at, progress, started_at, finished_at, reopened_at, kind",
     "", "WHERE date = ?1 AND (?2 IS NULL OR run_id = ?2)", "run_id", "date, slot_at", {}},
    {"deliveries",
     "delivery_id, run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, channel_index, "
     "sender, planned_at, deadline_at, next_attempt_at, claim_owner, claim_until, attempts, first_sent_at, "
     "provider_message_id, accepted_at, delivered_at, read_at, last_error, possible_duplicate, updated_at, dismissed_at, "
     "dismissed_by, resent_at, order_key",
     "", "WHERE date = ?1 AND (?2 IS NULL OR run_id = ?2)", "delivery_id", "date, order_key, advisor_id, slot_at",
     {{"run_id", "runs"}}},
    {"delivery_attempts",
     "attempt_id, delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, error_code, error_detail, "
     "provider_message_id, latency_ms, fbtrace_id, held_for_quality, error_scope",
     "", "WHERE delivery_id IN (SELECT delivery_id FROM deliveries WHERE date = ?1 AND (?2 IS NULL OR run_id = ?2))",
     "attempt_id", "delivery_id, attempt_no", {{"delivery_id", "deliveries"}}},
    {"delivery_changes", "seq, delivery_id, run_id, kind, at", "",
     "WHERE run_id IN (SELECT run_id FROM runs WHERE date = ?1 AND (?2 IS NULL OR run_id = ?2))", "seq",
     "delivery_id, run_id, kind, at", {{"delivery_id", "deliveries"}, {"run_id", "runs"}}},
};

/// A SQLite value as COPY text: a REAL in the shortest text that reads back as the same double
/// (SQLite's own text of a REAL keeps 15 significant digits, so 99.72677595628416 would arrive
/// as 99.7267759562842), anything else as SQLite gives it.
void copy_sqlite_field(std::string& out, const SQLite::Column& col) {
  if (col.getType() == SQLITE_FLOAT) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, col.getDouble());
    if (ec == std::errc()) {
      out.append(buf, end);
      return;
    }
  }
  pg_copy_field(out, col.getString());
}

/// The rows of `select` as COPY text into `data` (NULL as \N), with the scope's day bound to ?1
/// and its run (or NULL) to ?2 when the statement names them and the scope has a day. Returns
/// the rows read.
std::int64_t read_rows_as_copy(SQLite::Database& src, const std::string& select, const LedgerCopyScope& scope, std::string& data) {
  SQLite::Statement q(src, select);
  if (!scope.date.empty() && select.find("?1") != std::string::npos) {
    q.bind(1, scope.date);
    if (select.find("?2") != std::string::npos) {
      if (scope.run_id) {
        q.bind(2, *scope.run_id);
      } else {
        q.bind(2);
      }
    }
  }
  std::int64_t n = 0;
  while (q.executeStep()) {
    for (int i = 0; i < q.getColumnCount(); ++i) {
      if (i) data += '\t';
      auto col = q.getColumn(i);
      if (col.isNull()) {
        data += "\\N";
      } else {
        copy_sqlite_field(data, col);
      }
    }
    data += '\n';
    ++n;
  }
  return n;
}

std::vector<std::string> split_columns(const std::string& cols) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= cols.size()) {
    auto comma = cols.find(',', at);
    if (comma == std::string::npos) comma = cols.size();
    auto c = cols.substr(at, comma - at);
    c.erase(0, c.find_first_not_of(' '));
    c.erase(c.find_last_not_of(' ') + 1);
    if (!c.empty()) out.push_back(c);
    at = comma + 1;
  }
  return out;
}

/// Copies one table's rows in scope from SQLite into PostgreSQL (the open transaction on `dst`).
/// Returns the rows inserted; `renumbered` counts rows inserted under a new id because theirs
/// was taken in PostgreSQL by another row, `updated` the rows of a refreshed table (CopyTable
/// refresh_set) changed or deleted because the copy had them otherwise.
std::int64_t copy_table(SQLite::Database& src, PgConn& dst, const CopyTable& t, const LedgerCopyScope& scope,
                        std::int64_t& renumbered, std::int64_t& updated) {
  std::string data;
  const std::int64_t n = read_rows_as_copy(
      src, std::string("SELECT ") + t.columns + " FROM " + t.name + " " + (scope.date.empty() ? t.where_all : t.where_scope), scope,
      data);
  const std::string name = t.name;
  const std::string stage = "migrate_" + name;
  dst.exec("CREATE TEMP TABLE " + stage + " (LIKE " + name + ") ON COMMIT DROP");
  if (n > 0) dst.copy_in("COPY " + stage + " (" + t.columns + ") FROM STDIN", data);
  if (!*t.identity && !*t.refresh_set) {
    auto ins = dst.query("INSERT INTO " + name + " (" + t.columns + ") SELECT " + t.columns + " FROM " + stage +
                         " ON CONFLICT DO NOTHING");
    return ins.affected();
  }
  if (!*t.identity) {
    dst.exec("ANALYZE " + stage);
    // Newest wins: a row takes the copy's values only when the copy's updated_at is not older
    // than PostgreSQL's, so a second host's file that has not seen a change made through another
    // host (an operator's opt-out there: both files' updated_at move) does not undo it.
    std::string newer = std::string(" AND excluded.updated_at >= ") + t.name + ".updated_at";
    std::string from = stage;
    if (*t.replace_of) {
      // The channel rows of the advisors whose copied row is PostgreSQL's now (taken above, or
      // the same) are the copy's: a channel such an advisor no longer has goes.
      const std::string parent = t.replace_of;
      dst.exec("CREATE TEMP TABLE current_" + parent + " ON COMMIT DROP AS SELECT s.advisor_id FROM migrate_" + parent + " s JOIN " +
               parent + " p ON p.advisor_id = s.advisor_id WHERE s.updated_at >= p.updated_at");
      dst.exec("ANALYZE current_" + parent);
      std::string same;
      for (const auto& c : split_columns(t.key)) same += (same.empty() ? "" : " AND ") + std::string("s.") + c + " = p." + c;
      updated += dst.query("DELETE FROM " + name + " p WHERE p.advisor_id IN (SELECT advisor_id FROM current_" + parent + ") "
                           "AND NOT EXISTS (SELECT 1 FROM " + stage + " s WHERE " + same + ")")
                     .affected();
      from = stage + " WHERE advisor_id IN (SELECT advisor_id FROM current_" + parent + ")";
      newer.clear();
    }
    // xmax is 0 on a row this statement inserted, the updating transaction's id on one it updated.
    auto w = dst.query("WITH w AS (INSERT INTO " + name + " (" + t.columns + ") SELECT " + t.columns + " FROM " + from +
                       " ON CONFLICT (" + t.key + ") DO UPDATE SET " + t.refresh_set + " WHERE (" + name + "." +
                       [&] {
                         std::string cols;
                         for (const auto& c : split_columns(t.refresh_cols)) cols += (cols.empty() ? "" : ", " + name + ".") + c;
                         return cols;
                       }() +
                       ") IS DISTINCT FROM (" + t.refresh_values + ")" + newer + " RETURNING (xmax = 0) AS inserted) "
                       "SELECT COUNT(*) FILTER (WHERE inserted), COUNT(*) FILTER (WHERE NOT inserted) FROM w");
    updated += w.i64(0, 1);
    return w.i64(0, 0);
  }
  const std::string id = t.identity;
  // The parents' ids as PostgreSQL has them.
  for (const auto& [col, parent] : t.refs) {
    dst.exec("UPDATE " + stage + " s SET " + col + " = m.new_id FROM map_" + parent + " m WHERE s." + col +
             " = m.old_id AND m.old_id <> m.new_id");
  }
  // The sequence first moves past both sides' ids (and never back), so a new id never meets a
  // copied one.
  const std::string seq = "pg_get_serial_sequence('" + name + "', '" + id + "')";
  dst.query("SELECT setval(" + seq + ", GREATEST((SELECT COALESCE(MAX(" + id + "), 0) FROM " + name + "), (SELECT COALESCE(MAX(" +
            id + "), 0) FROM " + stage + "), COALESCE(pg_sequence_last_value(" + seq + "::regclass), 0), 1))");
  // Each row's id in PostgreSQL: the one of the same row already there (same natural key), else
  // its own when free, else a new one.
  std::string same;
  for (const auto& c : split_columns(t.natural)) {
    same += (same.empty() ? "" : " AND ") + std::string("p.") + c + " = s." + c;
  }
  dst.exec("CREATE TEMP TABLE map_" + name + " ON COMMIT DROP AS SELECT s." + id + " AS old_id, p." + id +
           " AS existing_id, NULL::bigint AS new_id FROM " + stage + " s LEFT JOIN " + name + " p ON " + same);
  dst.exec("UPDATE map_" + name + " m SET new_id = COALESCE(m.existing_id, CASE WHEN EXISTS (SELECT 1 FROM " + name +
           " x WHERE x." + id + " = m.old_id) THEN nextval(" + seq + ") ELSE m.old_id END)");
  dst.exec("CREATE INDEX ON map_" + name + " (old_id)");
  dst.exec("ANALYZE map_" + name);
  std::string select;
  for (const auto& c : split_columns(t.columns)) select += (select.empty() ? "" : ", ") + (c == id ? std::string("m.new_id") : "s." + c);
  auto ins = dst.query("INSERT INTO " + name + " (" + t.columns + ") OVERRIDING SYSTEM VALUE SELECT " + select + " FROM " + stage +
                       " s JOIN map_" + name + " m ON m.old_id = s." + id + " WHERE m.existing_id IS NULL ON CONFLICT DO NOTHING");
  renumbered += dst.query("SELECT COUNT(*) FROM map_" + name + " WHERE existing_id IS NULL AND new_id <> old_id").i64(0, 0);
  // The sequence stays past every id of both sides (moved above, never back).
  return ins.affected();
}

/// The stored reports (sla_reports) of the closed runs in scope that this copy inserted into
/// PostgreSQL (map_runs: not a run PostgreSQL already had, whose own report, if any, is the
/// one of the dispatch that sent it), as run_reports rows: closed_at the run's finished_at,
/// written_by "migrate-ledger", the report's run_id the PostgreSQL one when it was renumbered.
/// So `sla-report` and the trend keep the days an install had before moving to PostgreSQL.
std::int64_t copy_run_reports(SQLite::Database& src, PgConn& dst, const LedgerCopyScope& scope) {
  std::string data;
  const std::int64_t n = read_rows_as_copy(
      src, std::string("SELECT s.run_id, s.date, s.generated_at, s.sla_pct, s.report FROM sla_reports s ") +
               (scope.date.empty() ? "" : "JOIN runs r ON r.run_id = s.run_id WHERE r.date = ?1 AND (?2 IS NULL OR r.run_id = ?2)"),
      scope, data);
  if (n == 0) return 0;
  dst.exec("CREATE TEMP TABLE migrate_sla_reports (run_id BIGINT, date TEXT, generated_at BIGINT, sla_pct DOUBLE PRECISION, "
           "report TEXT) ON COMMIT DROP");
  dst.copy_in("COPY migrate_sla_reports (run_id, date, generated_at, sla_pct, report) FROM STDIN", data);
  return dst
      .query("INSERT INTO run_reports (run_id, date, closed_at, generated_at, sla_pct, report, written_by) "
             "SELECT m.new_id, s.date, COALESCE(r.finished_at, s.generated_at), s.generated_at, s.sla_pct, "
             "CASE WHEN m.new_id = m.old_id THEN s.report ELSE jsonb_set(s.report::jsonb, '{run_id}', to_jsonb(m.new_id))::text END, "
             "'migrate-ledger' FROM migrate_sla_reports s JOIN map_runs m ON m.old_id = s.run_id JOIN runs r ON r.run_id = m.new_id "
             "WHERE m.existing_id IS NULL AND r.state IN ('closed', 'cancelled') ON CONFLICT (run_id) DO NOTHING")
      .affected();
}

}  // namespace

LedgerCopyCounts copy_ledger_to_pg(PgConn& dst, const std::string& sqlite_path, const LedgerCopyScope& scope) {
  SQLite::Database src(sqlite_path, SQLite::OPEN_READONLY);
  LedgerCopyCounts counts;
  // One read transaction on SQLite (a consistent day) and one write transaction on PostgreSQL.
  SQLite::Transaction read(src, SQLite::TransactionBehavior::DEFERRED);
  pg_transaction(dst, [&] {
    counts = {};
    for (const auto& t : kCopyTables) {
      if (!scope.controls && std::string_view(t.name) == "controls") continue;
      std::int64_t updated = 0;
      counts.tables.emplace_back(t.name, copy_table(src, dst, t, scope, counts.renumbered, updated));
      if (*t.refresh_set) counts.updated.emplace_back(t.name, updated);
    }
    counts.tables.emplace_back("run_reports", copy_run_reports(src, dst, scope));
    auto m = dst.query("SELECT old_id, new_id FROM map_runs ORDER BY old_id");
    for (int i = 0; i < m.rows(); ++i) counts.runs.emplace_back(m.i64(i, 0), m.i64(i, 1));
  });
  return counts;
}

LedgerCopyCounts migrate_ledger_to_pg(const std::string& sqlite_path, const std::string& url, const std::string& date) {
  PgConn dst(url);
  pg_migrate(dst);
  return copy_ledger_to_pg(dst, sqlite_path, LedgerCopyScope{date, std::nullopt, true});
}

namespace {
// The day lock's class: the first of the two int keys (the migrations' lock uses the one-bigint
// form, a key space of its own).
constexpr int kDayLockClass = 0x64627064;  // "dbpd"
std::string day_key(const std::string& date) {
  std::string k;
  for (char ch : date) {
    if (ch >= '0' && ch <= '9') k += ch;
  }
  return k.empty() ? "0" : k;
}
}  // namespace

namespace {
// A host that dies holding a session lock must not keep it for the kernel's two hours: the
// server probes the session's socket (ignored on a Unix socket, whose peer's death is seen at once).
void short_keepalives(PgConn& c) {
  c.exec("SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3");
}
// The rule locks' class (the first int key; the day lock has its own) and a rule's key: the
// 31-bit FNV-1a of its name, the same on every host.
constexpr int kRuleLockClass = 0x64627261;  // "dbra"
std::string rule_key(const std::string& rule) {
  std::uint32_t h = 2166136261u;
  for (unsigned char ch : rule) h = (h ^ ch) * 16777619u;
  return std::to_string(static_cast<std::int32_t>(h & 0x7fffffffu));
}
}  // namespace

bool pg_try_lock_rule(PgConn& c, const std::string& rule) {
  c.ensure_connected();
  short_keepalives(c);
  return c.query("SELECT pg_try_advisory_lock($1::int, $2::int)", {std::to_string(kRuleLockClass), rule_key(rule)}).str(0, 0) == "t";
}

bool pg_lock_day(PgConn& c, const std::string& date, Millis wait_ms) {
  c.ensure_connected();
  short_keepalives(c);
  const std::vector<PgParam> key = {std::to_string(kDayLockClass), day_key(date)};
  // Polled every 100 ms (no clock read in the store): about `wait_ms` in all.
  for (Millis waited = 0;; waited += 100) {
    if (c.query("SELECT pg_try_advisory_lock($1::int, $2::int)", key).str(0, 0) == "t") return true;
    if (waited >= wait_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void pg_unlock_day(PgConn& c, const std::string& date) {
  c.query("SELECT pg_advisory_unlock($1::int, $2::int)", {std::to_string(kDayLockClass), day_key(date)});
}

std::int64_t pg_runs_of_day(PgConn& c, const std::string& date) {
  // As store::DayHasRuns on SQLite: the morning runs (sql/postgresql/006's kind).
  return c.query("SELECT COUNT(*) FROM runs WHERE date = $1 AND kind = 'morning'", {date}).i64(0, 0);
}

}  // namespace daybreak::store
