#include "store/pg_operator.hpp"

#include <algorithm>
#include <set>

#include "domain/delivery_fsm.hpp"
#include "domain/emergency.hpp"
#include "domain/planner.hpp"

namespace daybreak::store {
namespace {

std::string op_num(std::int64_t v) { return std::to_string(v); }
PgParam op_text(const std::string& s) { return s.empty() ? PgParam() : PgParam(s); }

DeliveryInfo op_read_info(const PgResult& q, int i) {
  DeliveryInfo d;
  d.delivery_id = q.i64(i, 0);
  d.run_id = q.i64(i, 1);
  d.advisor_id = q.str(i, 2);
  d.date = q.str(i, 3);
  d.content_id = q.str(i, 4);
  d.source = q.str(i, 5);
  d.tier = q.str(i, 6);
  d.state = q.str(i, 7);
  d.channel = q.str(i, 8);
  d.sender = q.str(i, 9);
  d.planned_at = q.i64(i, 10);
  d.deadline_at = q.i64(i, 11);
  d.next_attempt_at = q.opt_i64(i, 12);
  d.attempts = static_cast<int>(q.i64(i, 13));
  d.first_sent_at = q.opt_i64(i, 14);
  d.provider_message_id = q.opt_str(i, 15);
  d.accepted_at = q.opt_i64(i, 16);
  d.last_error = q.opt_str(i, 17);
  d.possible_duplicate = q.i64(i, 18) != 0;
  d.dismissed_at = q.opt_i64(i, 19);
  d.dismissed_by = q.opt_str(i, 20);
  d.resent_at = q.opt_i64(i, 21);
  d.updated_at = q.i64(i, 22);
  return d;
}

}  // namespace

PgOperator::PgOperator(const std::string& url) : c_(std::make_unique<PgConn>(url)) { pg_migrate(*c_); }
PgOperator::~PgOperator() = default;

void PgOperator::tx(bool dry_run, const std::function<void()>& fn) {
  // A deadlock with a dispatch's batch (both lock delivery rows, in their own order), a
  // serialization failure or a lost connection is transient (pg.hpp): the whole transaction is
  // run again, a few times; `fn` starts its results afresh on each run.
  for (int attempt = 1;; ++attempt) {
    try {
      c_->ensure_connected();
      c_->exec("BEGIN");
      try {
        fn();
      } catch (...) {
        try {
          if (c_->in_transaction()) c_->exec("ROLLBACK");
        } catch (...) {
        }
        throw;
      }
      c_->exec(dry_run ? "ROLLBACK" : "COMMIT");
      return;
    } catch (const StoreError& e) {
      if (attempt >= 5 || !is_transient_error(e)) throw;
    }
  }
}

// ---- controls ----

std::optional<Control> PgOperator::control_get(const std::string& key) {
  auto r = c_->query("SELECT key, value, updated_at, updated_by FROM controls WHERE key = $1", {key});
  if (r.rows() == 0) return std::nullopt;
  return Control{r.str(0, 0), r.str(0, 1), r.i64(0, 2), r.str(0, 3)};
}

void PgOperator::control_set(const std::string& key, const std::string& value, Millis now, const std::string& by) {
  c_->query("INSERT INTO controls (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by",
            {key, value, op_num(now), by});
}

// ---- audit ----

void PgOperator::audit_append(const AuditEntry& e) {
  c_->query("INSERT INTO audit_log (at, actor, sudo_user, command, reason, target, before, after) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            {op_num(e.at), e.actor, op_text(e.sudo_user), e.command, e.reason, e.target, op_text(e.before), op_text(e.after)});
}

void PgOperator::audit_list(const AuditListParams& p, const std::function<void(const AuditRow&)>& fn) {
  // As AuditList: a NULL parameter switches its filter off; newest first.
  c_->each_row(
      "SELECT audit_id, at, actor, sudo_user, command, reason, target, before, after FROM audit_log "
      "WHERE ($1::bigint IS NULL OR at >= $1::bigint) AND ($2::bigint IS NULL OR at < $2::bigint) "
      "AND ($3::text IS NULL OR actor = $3::text OR sudo_user = $3::text) "
      "AND ($4::text IS NULL OR strpos(command, $4::text) > 0) AND ($5::text IS NULL OR target = $5::text) "
      "ORDER BY at DESC, audit_id DESC LIMIT $6::bigint",
      {p.since ? PgParam(op_num(*p.since)) : std::nullopt, p.until ? PgParam(op_num(*p.until)) : std::nullopt, op_text(p.actor),
       op_text(p.command), op_text(p.target), p.limit > 0 ? PgParam(op_num(p.limit)) : std::nullopt},
      [&](const PgResult& q) {
        AuditRow r;
        r.audit_id = q.i64(0, 0);
        r.entry.at = q.i64(0, 1);
        r.entry.actor = q.str(0, 2);
        r.entry.sudo_user = q.opt_str(0, 3).value_or("");
        r.entry.command = q.str(0, 4);
        r.entry.reason = q.str(0, 5);
        r.entry.target = q.str(0, 6);
        r.entry.before = q.opt_str(0, 7).value_or("");
        r.entry.after = q.opt_str(0, 8).value_or("");
        fn(r);
      });
}

// ---- runs and deliveries ----

std::optional<Run> PgOperator::run_get(std::int64_t run_id) {
  auto r = c_->query("SELECT run_id, date, state, owner FROM runs WHERE run_id = $1", {op_num(run_id)});
  if (r.rows() == 0) return std::nullopt;
  Run x;
  x.run_id = r.i64(0, 0);
  x.date = r.str(0, 1);
  x.state = r.str(0, 2);
  x.owner = r.opt_str(0, 3);
  return x;
}

std::optional<DeliveryInfo> PgOperator::delivery_info_get(std::int64_t delivery_id) {
  auto r = c_->query("SELECT " + DeliveryInfoColumns() + " FROM deliveries d WHERE d.delivery_id = $1", {op_num(delivery_id)});
  if (r.rows() == 0) return std::nullopt;
  return op_read_info(r, 0);
}

void PgOperator::change_note(std::int64_t delivery_id, const std::string& kind, Millis now) {
  c_->run("op_change_note",
          "INSERT INTO delivery_changes (delivery_id, run_id, kind, at) SELECT delivery_id, run_id, $1, $2 FROM deliveries "
          "WHERE delivery_id = $3",
          {kind, op_num(now), op_num(delivery_id)});
}

bool PgOperator::delivery_cancel(std::int64_t delivery_id, Millis now) {
  auto r = c_->query(
      "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL, claim_owner = NULL, claim_until = NULL, "
      "updated_at = $2 WHERE delivery_id = $1 AND state IN (" + cancellable_states_sql() + ")",
      {op_num(delivery_id), op_num(now)});
  const bool changed = r.affected() == 1;
  if (changed) change_note(delivery_id, "cancel", now);
  return changed;
}

RunCancelResult PgOperator::run_cancel(std::int64_t run_id, Millis now) {
  RunCancelResult out;
  c_->query("UPDATE runs SET state = 'cancelled', finished_at = COALESCE(finished_at, $2) WHERE run_id = $1",
            {op_num(run_id), op_num(now)});
  auto r = c_->query(
      "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL, claim_owner = NULL, claim_until = NULL, "
      "updated_at = $2 WHERE run_id = $1 AND state IN (" + cancellable_states_sql() + ") RETURNING delivery_id",
      {op_num(run_id), op_num(now)});
  for (int i = 0; i < r.rows(); ++i) out.cancelled.push_back(r.i64(i, 0));
  // By id, as SQLite's RETURNING gives them (PostgreSQL's comes in the order the rows were found).
  std::sort(out.cancelled.begin(), out.cancelled.end());
  // One statement for the notes (RunCancel notes each row; same rows, same kind, same order).
  if (!out.cancelled.empty()) {
    std::string ids = "{";
    for (std::size_t i = 0; i < out.cancelled.size(); ++i) ids += (i ? "," : "") + op_num(out.cancelled[i]);
    ids += "}";
    c_->query("INSERT INTO delivery_changes (delivery_id, run_id, kind, at) "
              "SELECT id, $2, 'cancel', $3 FROM unnest($1::bigint[]) WITH ORDINALITY AS t(id, n) ORDER BY n",
              {ids, op_num(run_id), op_num(now)});
  }
  out.in_flight = c_->query("SELECT COUNT(*) FROM deliveries WHERE run_id = $1 AND state = 'sending'", {op_num(run_id)}).i64(0, 0);
  return out;
}

// ---- a compliance pull ----

ContentWithdrawResult PgOperator::content_withdraw(const std::string& content_id, const std::string& actor, Millis now) {
  ContentWithdrawResult r;
  // FOR UPDATE: two pulls of the same item at once keep the first one's time and actor.
  auto q = c_->query("SELECT withdrawn_at, withdrawn_by FROM content WHERE content_id = $1 FOR UPDATE", {content_id});
  if (q.rows() == 0) return r;
  r.found = true;
  if (!q.null(0, 0)) {
    r.withdrawn_at = q.i64(0, 0);
    r.withdrawn_by = q.opt_str(0, 1).value_or("");
    return r;
  }
  auto u = c_->query("UPDATE content SET withdrawn_at = $2, withdrawn_by = $3 WHERE content_id = $1 AND withdrawn_at IS NULL",
                     {content_id, op_num(now), actor});
  r.newly_withdrawn = u.affected() > 0;
  r.withdrawn_at = now;
  r.withdrawn_by = actor;
  return r;
}

std::vector<std::int64_t> PgOperator::delivery_repoint_pending(const std::string& content_id, const std::string& from_date,
                                                               Millis now) {
  // DeliveryRepointPending: pending rows of the item follow their advisor's assignment for the
  // day when it names other content.
  auto r = c_->query(
      "UPDATE deliveries d SET content_id = s.content_id, source = s.source, updated_at = $3 FROM assignments s "
      "WHERE s.advisor_id = d.advisor_id AND s.date = d.date AND s.content_id <> $1 "
      "AND d.run_id IN (SELECT run_id FROM runs WHERE date >= $2) AND d.content_id = $1 "
      "AND d.state IN (" + repointable_states_sql() + ") RETURNING d.delivery_id",
      {content_id, from_date, op_num(now)});
  std::vector<std::int64_t> ids;
  for (int i = 0; i < r.rows(); ++i) ids.push_back(r.i64(i, 0));
  for (auto id : ids) change_note(id, "withdraw", now);
  return ids;
}

PulledResolution PgOperator::delivery_resolve_pulled(const std::string& content_id, const std::string& from_date,
                                                     const std::string& emergency_language, Millis now) {
  // DeliveryResolvePulled, row by row in the same order with the same choice (pick_emergency,
  // seeded by the delivery id), so both ledgers end alike.
  PulledResolution out;
  struct Pending {
    std::int64_t id;
    std::string date, language;
  };
  std::vector<Pending> pending;
  {
    auto q = c_->query("SELECT d.delivery_id, d.date, a.language FROM deliveries d JOIN advisors a ON a.advisor_id = d.advisor_id "
                       "WHERE d.run_id IN (SELECT run_id FROM runs WHERE date >= $2) AND d.content_id = $1 AND d.state IN (" +
                           repointable_states_sql() + ") ORDER BY d.delivery_id",
                       {content_id, from_date});
    for (int i = 0; i < q.rows(); ++i) pending.push_back({q.i64(i, 0), q.str(i, 1), q.str(i, 2)});
  }
  if (pending.empty()) return out;
  struct Item {
    std::string id, language, valid_from, valid_until;
  };
  std::vector<Item> pool;
  {
    auto q = c_->query("SELECT content_id, language, valid_from, valid_until FROM content WHERE emergency = 1 AND withdrawn_at IS NULL "
                       "AND content_id <> $1 ORDER BY content_id",
                       {content_id});
    for (int i = 0; i < q.rows(); ++i) pool.push_back({q.str(i, 0), q.str(i, 1), q.str(i, 2), q.str(i, 3)});
  }
  const std::string hold_sql =
      "UPDATE deliveries SET state = 'dead', last_error = $2, claim_owner = NULL, next_attempt_at = NULL, updated_at = $3 "
      "WHERE delivery_id = $1 AND state IN (" + repointable_states_sql() + ")";
  std::set<std::string> held_languages;
  const std::string why = "content " + content_id + " withdrawn";
  std::vector<EmergencyCandidate> candidates(pool.size());
  std::string candidates_date;
  for (const auto& p : pending) {
    if (p.date != candidates_date) {
      candidates_date = p.date;
      for (std::size_t i = 0; i < pool.size(); ++i) {
        candidates[i] = {pool[i].language, !content_pull_problem(pool[i].id, false, pool[i].valid_from, pool[i].valid_until, p.date)};
      }
    }
    if (auto pick = pick_emergency(candidates, p.language, emergency_language, static_cast<std::uint64_t>(p.id))) {
      // DeliverySubstituteContent: the delivery and the advisor's assignment of the day.
      const std::string& item = pool[pick->index].id;
      c_->run("op_substitute_delivery", "UPDATE deliveries SET content_id = $1, source = $2, updated_at = $3 WHERE delivery_id = $4",
              {item, std::string("emergency"), op_num(now), op_num(p.id)});
      c_->run("op_substitute_assignment",
              "UPDATE assignments SET content_id = $1, source = $2, reason = $3 "
              "WHERE (advisor_id, date) = (SELECT advisor_id, date FROM deliveries WHERE delivery_id = $4)",
              {item, std::string("emergency"), "emergency substitution: " + why, op_num(p.id)});
      out.emergency.push_back(p.id);
    } else {
      auto h = c_->run("op_hold_pulled", hold_sql, {op_num(p.id), held_reason(why, p.language, emergency_language), op_num(now)});
      if (h.affected() == 0) continue;
      out.held.push_back(p.id);
      held_languages.insert(p.language);
    }
    change_note(p.id, "withdraw", now);
  }
  out.held_languages.assign(held_languages.begin(), held_languages.end());
  return out;
}

std::int64_t PgOperator::delivery_count_in_flight(const std::string& content_id, const std::string& from_date) {
  return c_->query("SELECT COUNT(*) FROM deliveries WHERE run_id IN (SELECT run_id FROM runs WHERE date >= $2) AND content_id = $1 "
                   "AND state IN (" + in_flight_states_sql() + ")",
                   {content_id, from_date})
      .i64(0, 0);
}

// ---- a replacement ----

std::optional<ContentInfo> PgOperator::content_info_get(const std::string& content_id) {
  // ContentInfoGet's columns (ContentFromRow's order, then the operator's).
  auto q = c_->query(ContentInfoColumnsSql() + "WHERE content_id = $1", {content_id});
  if (q.rows() == 0) return std::nullopt;
  ContentInfo i;
  Content& c = i.content;
  c.content_id = q.str(0, 0);
  c.title = q.str(0, 1);
  c.body = q.str(0, 2);
  c.language = q.str(0, 3);
  c.topics = split_list(q.str(0, 4), ';');
  c.media_url = q.str(0, 5);
  c.valid_from = q.str(0, 6);
  c.valid_until = q.str(0, 7);
  c.fallback_eligible = q.i64(0, 8) != 0;
  c.emergency = q.i64(0, 9) != 0;
  c.withdrawn = !q.null(0, 10);
  i.withdrawn_at = q.opt_i64(0, 10);
  i.withdrawn_by = q.opt_str(0, 11);
  i.updated_at = q.i64(0, 12);
  return i;
}

std::vector<std::string> PgOperator::assignment_dates_for_content(const std::string& content_id, const std::string& from_date) {
  auto q = c_->query("SELECT DISTINCT date FROM assignments WHERE content_id = $1 AND date >= $2 ORDER BY date", {content_id, from_date});
  std::vector<std::string> out;
  for (int i = 0; i < q.rows(); ++i) out.push_back(q.str(i, 0));
  return out;
}

std::int64_t PgOperator::assignment_replace_content(const std::string& from_content, const std::string& to_content,
                                                    const std::string& from_date, Millis now) {
  // AssignmentReplaceContent.
  return c_->query("UPDATE assignments SET content_id = $2, source = 'override', score = 0, score_parts = '{}', "
                   "reason = 'replaced ' || $1::text || ' by ' || $2::text || ' (content replace)', created_at = $4 "
                   "WHERE content_id = $1 AND date >= $3",
                   {from_content, to_content, from_date, op_num(now)})
      .affected();
}

// ---- advisors ----

void PgOperator::advisor_put(const AdvisorRow& row) {
  const Advisor& a = row.advisor;
  std::vector<std::string> names;
  for (auto ch : a.channels) names.emplace_back(to_string(ch));
  c_->query("INSERT INTO advisors (advisor_id, name, tier, timezone, slot, channels, opted_in, language, topics, paused_from, "
            "paused_until, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
            "ON CONFLICT (advisor_id) DO UPDATE SET name = excluded.name, tier = excluded.tier, timezone = excluded.timezone, "
            "slot = excluded.slot, channels = excluded.channels, opted_in = excluded.opted_in, language = excluded.language, "
            "topics = excluded.topics, paused_from = excluded.paused_from, paused_until = excluded.paused_until, "
            "updated_at = excluded.updated_at",
            {a.advisor_id, a.name, a.tier, a.timezone, a.slot, join_list(names, '|'), std::string(a.opted_in ? "1" : "0"), a.language,
             join_list(a.topics, ';'), a.paused_from ? PgParam(*a.paused_from) : std::nullopt,
             a.paused_until ? PgParam(*a.paused_until) : std::nullopt, op_num(row.updated_at)});
  c_->query("DELETE FROM advisor_channels WHERE advisor_id = $1", {a.advisor_id});
  for (const auto& ch : row.channels) {
    c_->query("INSERT INTO advisor_channels (advisor_id, channel, address, opted_in) VALUES ($1, $2, $3, $4)",
              {a.advisor_id, std::string(to_string(ch.channel)), ch.address, std::string(ch.opted_in ? "1" : "0")});
  }
}

namespace {
/// The dates of the runs that may hold pending deliveries (a closed run has none, a cancelled
/// one's are cancelled), within [from, until] (either bound open when empty), ascending.
std::vector<std::string> open_run_dates(PgConn& c, const std::string& from, const std::string& until) {
  auto r = c.query("SELECT DISTINCT date FROM runs WHERE state NOT IN ('closed', 'cancelled') "
                   "AND ($1 = '' OR date >= $1) AND ($2 = '' OR date <= $2) ORDER BY date",
                   {from, until});
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.str(i, 0));
  return out;
}
}  // namespace

std::vector<std::int64_t> PgOperator::delivery_cancel_for_advisor_days(const std::string& advisor_id, const std::string& from,
                                                                       const std::string& until, Millis now) {
  // Day by day, as DeliveryCancelForAdvisorDays: one advisor's rows of a day are found by the
  // deliveries' natural key (date, order_key, advisor_id).
  std::vector<std::int64_t> ids;
  for (const auto& date : open_run_dates(*c_, from, until)) {
    auto r = c_->query(
        "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL, claim_owner = NULL, claim_until = NULL, updated_at = $4 "
        "WHERE date = $2 AND order_key = $3 AND advisor_id = $1 AND state IN (" + cancellable_states_sql() + ") RETURNING delivery_id",
        {advisor_id, date, op_num(delivery_order_key(advisor_id, date)), op_num(now)});
    for (int i = 0; i < r.rows(); ++i) ids.push_back(r.i64(i, 0));
  }
  std::sort(ids.begin(), ids.end());
  for (auto id : ids) change_note(id, "cancel", now);
  return ids;
}

PgOperator::AdvisorFollow PgOperator::advisor_follow(const std::string& advisor_id, Millis now) {
  AdvisorFollow out;
  auto a = c_->query("SELECT channels, opted_in FROM advisors WHERE advisor_id = $1", {advisor_id});
  if (a.rows() == 0) return out;
  std::vector<std::string> list = split_list(a.str(0, 0), '|');
  const bool advisor_in = a.i64(0, 1) != 0;
  std::set<std::string> usable;  // the channels of its list with an opted-in row
  {
    auto c = c_->query("SELECT channel FROM advisor_channels WHERE advisor_id = $1 AND opted_in = 1", {advisor_id});
    for (int i = 0; i < c.rows(); ++i) {
      if (advisor_in && std::find(list.begin(), list.end(), c.str(i, 0)) != list.end()) usable.insert(c.str(i, 0));
    }
  }
  for (const auto& date : open_run_dates(*c_, "", "")) {
    // FOR UPDATE: a dispatch's claim of the row waits for this transaction, and then finds it
    // changed (or cancelled).
    auto d = c_->query("SELECT delivery_id, channel FROM deliveries WHERE date = $2 AND order_key = $3 AND advisor_id = $1 "
                       "AND state IN (" + cancellable_states_sql() + ") ORDER BY delivery_id FOR UPDATE",
                       {advisor_id, date, op_num(delivery_order_key(advisor_id, date))});
    for (int i = 0; i < d.rows(); ++i) {
      const std::int64_t id = d.i64(i, 0);
      const std::string channel = d.str(i, 1);
      const int to = follow_channel_index(channel, list, usable);
      if (to >= 0 && list[static_cast<std::size_t>(to)] == channel) {
        out.reloaded.push_back(id);
        change_note(id, "advisor", now);
        continue;
      }
      if (to < 0) {
        if (delivery_cancel(id, now)) out.cancelled.push_back(id);
        continue;
      }
      // Any sender of the new channel: dispatch picks one (the planner's choice was for the old).
      c_->query("UPDATE deliveries SET channel = $2, channel_index = $3, sender = '', updated_at = $4 WHERE delivery_id = $1",
                {op_num(id), list[static_cast<std::size_t>(to)], op_num(to), op_num(now)});
      out.moved.push_back(id);
      change_note(id, "advisor", now);
    }
  }
  return out;
}

// ---- assign ----

std::optional<DeliveryInfo> PgOperator::delivery_info_for_advisor_date(const std::string& advisor_id, const std::string& date) {
  auto r = c_->query("SELECT " + DeliveryInfoColumns() +
                         " FROM deliveries d WHERE d.date = $2 AND d.order_key = $3 AND d.advisor_id = $1 ORDER BY d.slot_at LIMIT 1",
                     {advisor_id, date, op_num(delivery_order_key(advisor_id, date))});
  if (r.rows() == 0) return std::nullopt;
  return op_read_info(r, 0);
}

bool PgOperator::advisor_exists(const std::string& advisor_id) {
  return c_->query("SELECT 1 FROM advisors WHERE advisor_id = $1", {advisor_id}).rows() > 0;
}

bool PgOperator::content_add_missing(const ContentInfo& item) {
  const Content& c = item.content;
  return c_->query("INSERT INTO content (content_id, title, body, language, topics, media_url, valid_from, valid_until, "
                   "fallback_eligible, emergency, withdrawn_at, withdrawn_by, updated_at) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (content_id) DO NOTHING",
                   {c.content_id, c.title, c.body, c.language, join_list(c.topics, ';'), c.media_url, c.valid_from, c.valid_until,
                    std::string(c.fallback_eligible ? "1" : "0"), std::string(c.emergency ? "1" : "0"),
                    item.withdrawn_at ? PgParam(op_num(*item.withdrawn_at)) : std::nullopt,
                    item.withdrawn_by ? PgParam(*item.withdrawn_by) : std::nullopt, op_num(item.updated_at)})
             .affected() == 1;
}

void PgOperator::assignment_override(const Assignment& a, Millis created_at) {
  c_->query("INSERT INTO assignments (advisor_id, date, content_id, source, score, score_parts, reason, created_at) "
            "VALUES ($1, $2, $3, 'override', 0, '{}', $4, $5) ON CONFLICT (advisor_id, date) DO UPDATE SET "
            "content_id = excluded.content_id, source = excluded.source, score = excluded.score, "
            "score_parts = excluded.score_parts, reason = excluded.reason, created_at = excluded.created_at",
            {a.advisor_id, a.date, a.content_id, a.reason, op_num(created_at)});
}

std::optional<std::int64_t> PgOperator::delivery_repoint_advisor(const std::string& advisor_id, const std::string& date,
                                                                 const std::string& content_id, Millis now) {
  auto r = c_->query("UPDATE deliveries SET content_id = $4, source = 'override', updated_at = $5 "
                     "WHERE date = $2 AND order_key = $3 AND advisor_id = $1 AND state IN (" + cancellable_states_sql() +
                         ") RETURNING delivery_id",
                     {advisor_id, date, op_num(delivery_order_key(advisor_id, date)), content_id, op_num(now)});
  std::vector<std::int64_t> ids;
  for (int i = 0; i < r.rows(); ++i) ids.push_back(r.i64(i, 0));
  std::sort(ids.begin(), ids.end());
  for (auto id : ids) change_note(id, "content", now);
  if (ids.empty()) return std::nullopt;
  return ids.front();
}

std::vector<std::pair<std::int64_t, std::int64_t>> PgOperator::live_heartbeats(Millis now) {
  auto r = c_->query("SELECT run_id, heartbeat_at FROM runs WHERE owner IS NOT NULL AND lease_until > $1 "
                     "AND heartbeat_at IS NOT NULL ORDER BY run_id",
                     {op_num(now)});
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.i64(i, 0), r.i64(i, 1));
  return out;
}

// ---- dead letters ----

void PgOperator::dead_list(const DeadFilter& f, const std::function<void(const DeliveryInfo&)>& fn) {
  // DeadList: a NULL parameter switches its filter off; oldest first.
  c_->each_row("SELECT " + DeliveryInfoColumns() +
                   " FROM deliveries d WHERE d.state = 'dead' "
                   "AND ($1::text IS NULL OR d.date = $1::text) AND ($2::bigint IS NULL OR d.run_id = $2::bigint) "
                   "AND ($3::text IS NULL OR d.channel = $3::text) "
                   "AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = d.delivery_id "
                   "AND a.error_code = $4::text) OR ($4::text = 'held' AND d.last_error LIKE 'held: %')) "
                   "AND ($5::bigint IS NULL OR d.updated_at >= $5::bigint) AND ($6::int = 1 OR d.dismissed_at IS NULL) "
                   "ORDER BY d.updated_at, d.delivery_id LIMIT $7::bigint",
               {op_text(f.date), f.run_id ? PgParam(op_num(*f.run_id)) : std::nullopt, op_text(f.channel), op_text(f.error_code),
                f.since ? PgParam(op_num(*f.since)) : std::nullopt, std::string(f.include_dismissed ? "1" : "0"),
                f.limit > 0 ? PgParam(op_num(f.limit)) : std::nullopt},
               [&](const PgResult& q) { fn(op_read_info(q, 0)); });
}

std::vector<AttemptInsertParams> PgOperator::attempts_for(std::int64_t delivery_id) {
  auto q = c_->query(
      "SELECT delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, COALESCE(error_code,''), "
      "COALESCE(error_detail,''), COALESCE(provider_message_id,''), COALESCE(latency_ms,0), "
      "COALESCE(fbtrace_id,''), held_for_quality, COALESCE(error_scope,'') "
      "FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt_id",
      {op_num(delivery_id)});
  std::vector<AttemptInsertParams> out;
  for (int i = 0; i < q.rows(); ++i) {
    AttemptInsertParams a;
    a.delivery_id = q.i64(i, 0);
    a.attempt_no = static_cast<int>(q.i64(i, 1));
    a.channel = q.str(i, 2);
    a.sender = q.str(i, 3);
    a.started_at = q.i64(i, 4);
    a.finished_at = q.i64(i, 5);
    a.outcome = q.str(i, 6);
    a.error_code = q.str(i, 7);
    a.error_detail = q.str(i, 8);
    a.provider_message_id = q.str(i, 9);
    a.latency_ms = q.i64(i, 10);
    a.fbtrace_id = q.str(i, 11);
    a.held_for_quality = q.i64(i, 12) != 0;
    a.error_scope = q.str(i, 13);
    out.push_back(std::move(a));
  }
  return out;
}

bool PgOperator::delivery_requeue(std::int64_t delivery_id, const std::string& from_state, const std::string& kind, Millis now) {
  // DeliveryRequeue: a held delivery takes the advisor's assignment of the day when it names
  // another item now; everything else keeps its item.
  auto r = c_->query(
      "UPDATE deliveries SET state = 'planned', next_attempt_at = $2, resent_at = $2, claim_owner = NULL, claim_until = NULL, "
      "dismissed_at = NULL, dismissed_by = NULL, updated_at = $2, "
      "content_id = CASE WHEN last_error LIKE 'held: %' THEN COALESCE((SELECT s.content_id FROM assignments s "
      "WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date), content_id) ELSE content_id END, "
      "source = CASE WHEN last_error LIKE 'held: %' THEN COALESCE((SELECT s.source FROM assignments s "
      "WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date), source) ELSE source END "
      "WHERE delivery_id = $1 AND state = $3",
      {op_num(delivery_id), op_num(now), from_state});
  const bool changed = r.affected() == 1;
  if (changed) change_note(delivery_id, kind, now);
  return changed;
}

bool PgOperator::run_reopen(std::int64_t run_id, Millis now) {
  return c_->query("UPDATE runs SET state = 'running', finished_at = NULL, owner = NULL, lease_until = NULL, reopened_at = $2 "
                   "WHERE run_id = $1 AND state = 'closed'",
                   {op_num(run_id), op_num(now)})
             .affected() == 1;
}

bool PgOperator::dead_dismiss(std::int64_t delivery_id, const std::string& by, Millis now) {
  const bool changed = c_->query("UPDATE deliveries SET dismissed_at = $2, dismissed_by = $3 "
                                 "WHERE delivery_id = $1 AND state = 'dead' AND dismissed_at IS NULL",
                                 {op_num(delivery_id), op_num(now), by})
                           .affected() == 1;
  if (changed) change_note(delivery_id, "dismiss", now);
  return changed;
}

}  // namespace daybreak::store
