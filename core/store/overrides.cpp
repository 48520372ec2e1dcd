#include "store/overrides.hpp"

#include <algorithm>
#include <set>

#include "domain/delivery_fsm.hpp"

#include "domain/planner.hpp"
#include "store/deliveries.hpp"

namespace daybreak::store {

// ---- controls ---------------------------------------------------------------------------

std::optional<Control> ControlGet(Db& db, const std::string& key) {
  return guarded("ControlGet", [&]() -> std::optional<Control> {
    auto& q = db.stmt("SELECT key, value, updated_at, updated_by FROM controls WHERE key = ?1");
    q.bind(1, key);
    if (!q.executeStep()) return std::nullopt;
    Control c{q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(), q.getColumn(3).getString()};
    q.reset();
    return c;
  });
}

std::vector<Control> ControlList(Db& db) {
  return guarded("ControlList", [&] {
    auto& q = db.stmt("SELECT key, value, updated_at, updated_by FROM controls ORDER BY key");
    std::vector<Control> out;
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt64(), q.getColumn(3).getString()});
    }
    return out;
  });
}

void ControlSet(Db& db, const std::string& key, const std::string& value, Millis now, const std::string& by) {
  guarded("ControlSet", [&] {
    auto& q = db.stmt(
        "INSERT INTO controls (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by");
    q.bind(1, key);
    q.bind(2, value);
    q.bind(3, static_cast<std::int64_t>(now));
    q.bind(4, by);
    q.exec();
    return 0;
  });
}

// ---- one delivery ------------------------------------------------------------------------

const std::string& DeliveryInfoColumns() {
  static const std::string cols =
      "d.delivery_id, d.run_id, d.advisor_id, d.date, d.content_id, d.source, d.tier, d.state, d.channel, d.sender, "
      "d.planned_at, d.deadline_at, d.next_attempt_at, d.attempts, d.first_sent_at, d.provider_message_id, d.accepted_at, "
      "d.last_error, d.possible_duplicate, d.dismissed_at, d.dismissed_by, d.resent_at, d.updated_at";
  return cols;
}

DeliveryInfo DeliveryInfoRead(SQLite::Statement& q, int c) {
  DeliveryInfo d;
  d.delivery_id = q.getColumn(c + 0).getInt64();
  d.run_id = q.getColumn(c + 1).getInt64();
  d.advisor_id = q.getColumn(c + 2).getString();
  d.date = q.getColumn(c + 3).getString();
  d.content_id = q.getColumn(c + 4).getString();
  d.source = q.getColumn(c + 5).getString();
  d.tier = q.getColumn(c + 6).getString();
  d.state = q.getColumn(c + 7).getString();
  d.channel = q.getColumn(c + 8).getString();
  d.sender = q.getColumn(c + 9).getString();
  d.planned_at = q.getColumn(c + 10).getInt64();
  d.deadline_at = q.getColumn(c + 11).getInt64();
  d.next_attempt_at = column_opt<Millis>(q.getColumn(c + 12));
  d.attempts = q.getColumn(c + 13).getInt();
  d.first_sent_at = column_opt<Millis>(q.getColumn(c + 14));
  d.provider_message_id = column_opt<std::string>(q.getColumn(c + 15));
  d.accepted_at = column_opt<Millis>(q.getColumn(c + 16));
  d.last_error = column_opt<std::string>(q.getColumn(c + 17));
  d.possible_duplicate = q.getColumn(c + 18).getInt() != 0;
  d.dismissed_at = column_opt<Millis>(q.getColumn(c + 19));
  d.dismissed_by = column_opt<std::string>(q.getColumn(c + 20));
  d.resent_at = column_opt<Millis>(q.getColumn(c + 21));
  d.updated_at = q.getColumn(c + 22).getInt64();
  return d;
}

std::optional<DeliveryInfo> DeliveryInfoGet(Db& db, std::int64_t delivery_id) {
  return guarded("DeliveryInfoGet", [&]() -> std::optional<DeliveryInfo> {
    auto& q = db.stmt("SELECT " + DeliveryInfoColumns() + " FROM deliveries d WHERE d.delivery_id = ?1");
    q.bind(1, delivery_id);
    if (!q.executeStep()) return std::nullopt;
    auto d = DeliveryInfoRead(q);
    q.reset();
    return d;
  });
}

namespace {
// One advisor's rows of one day, found through the ledger's uniqueness index (date, order_key,
// advisor_id, slot_at) (sql/007): placeholders ?1-?3 are the advisor, the date and the order key,
// which bind_advisor_day computes.
constexpr const char* kAdvisorDay = "date = ?2 AND order_key = ?3 AND advisor_id = ?1";
void bind_advisor_day(SQLite::Statement& q, const std::string& advisor_id, const std::string& date) {
  q.bind(1, advisor_id);
  q.bind(2, date);
  q.bind(3, delivery_order_key(advisor_id, date));
}
}  // namespace

std::optional<DeliveryInfo> DeliveryInfoForAdvisorDate(Db& db, const std::string& advisor_id, const std::string& date) {
  return guarded("DeliveryInfoForAdvisorDate", [&]() -> std::optional<DeliveryInfo> {
    auto& q = db.stmt("SELECT " + DeliveryInfoColumns() +
                      " FROM deliveries d WHERE " + kAdvisorDay + " ORDER BY d.slot_at LIMIT 1");
    bind_advisor_day(q, advisor_id, date);
    if (!q.executeStep()) return std::nullopt;
    auto d = DeliveryInfoRead(q);
    q.reset();
    return d;
  });
}

// ---- cancel, resend, replay, dismiss ------------------------------------------------------

bool DeliveryCancel(Db& db, std::int64_t delivery_id, Millis now) {
  return guarded("DeliveryCancel", [&] {
    auto& q = db.stmt(
        "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL, claim_owner = NULL, claim_until = NULL, "
        "updated_at = ?2 WHERE delivery_id = ?1 AND state IN (" + cancellable_states_sql() + ")");
    q.bind(1, delivery_id);
    q.bind(2, static_cast<std::int64_t>(now));
    bool changed = q.exec() == 1;
    if (changed) DeliveryChangeNote(db, delivery_id, "cancel", now);
    return changed;
  });
}

RunCancelResult RunCancel(Db& db, std::int64_t run_id, Millis now) {
  return guarded("RunCancel", [&] {
    RunCancelResult r;
    auto& run = db.stmt("UPDATE runs SET state = 'cancelled', finished_at = COALESCE(finished_at, ?2) WHERE run_id = ?1");
    run.bind(1, run_id);
    run.bind(2, static_cast<std::int64_t>(now));
    run.exec();
    auto& q = db.stmt(
        "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL, claim_owner = NULL, claim_until = NULL, "
        "updated_at = ?2 WHERE run_id = ?1 AND state IN (" + cancellable_states_sql() + ") RETURNING delivery_id");
    q.bind(1, run_id);
    q.bind(2, static_cast<std::int64_t>(now));
    while (q.executeStep()) r.cancelled.push_back(q.getColumn(0).getInt64());
    q.reset();
    for (auto id : r.cancelled) DeliveryChangeNote(db, id, "cancel", now);
    auto& c = db.stmt("SELECT COUNT(*) FROM deliveries WHERE run_id = ?1 AND state = 'sending'");
    c.bind(1, run_id);
    c.executeStep();
    r.in_flight = c.getColumn(0).getInt64();
    c.reset();
    return r;
  });
}

bool DeliveryRequeue(Db& db, std::int64_t delivery_id, const std::vector<std::string>& from_states, const std::string& kind,
                     Millis now) {
  return guarded("DeliveryRequeue", [&] {
    auto cur = DeliveryInfoGet(db, delivery_id);
    if (!cur) return false;
    bool allowed = false;
    for (const auto& s : from_states) allowed = allowed || s == cur->state;
    if (!allowed) return false;
    // A held delivery (its item pulled or expired, no emergency item: domain/emergency.hpp) takes
    // the advisor's assignment for the day when that names another item now (`content replace`,
    // assign-fallback); else it keeps its item and dispatch's content guard decides again.
    auto& q = db.stmt(
        "UPDATE deliveries SET state = 'planned', next_attempt_at = ?2, resent_at = ?2, claim_owner = NULL, claim_until = NULL, "
        "dismissed_at = NULL, dismissed_by = NULL, updated_at = ?2, "
        "content_id = CASE WHEN last_error LIKE 'held: %' THEN COALESCE((SELECT s.content_id FROM assignments s "
        "WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date), content_id) ELSE content_id END, "
        "source = CASE WHEN last_error LIKE 'held: %' THEN COALESCE((SELECT s.source FROM assignments s "
        "WHERE s.advisor_id = deliveries.advisor_id AND s.date = deliveries.date), source) ELSE source END "
        "WHERE delivery_id = ?1 AND state = ?3");
    q.bind(1, delivery_id);
    q.bind(2, static_cast<std::int64_t>(now));
    q.bind(3, cur->state);
    bool changed = q.exec() == 1;
    if (changed) DeliveryChangeNote(db, delivery_id, kind, now);
    return changed;
  });
}

bool RunReopen(Db& db, std::int64_t run_id, Millis now) {
  return guarded("RunReopen", [&] {
    auto& q = db.stmt(
        "UPDATE runs SET state = 'running', finished_at = NULL, owner = NULL, lease_until = NULL, reopened_at = ?2 "
        "WHERE run_id = ?1 AND state = 'closed'");
    q.bind(1, run_id);
    q.bind(2, static_cast<std::int64_t>(now));
    return q.exec() == 1;
  });
}

std::vector<Run> RunListReopened(Db& db) {
  return guarded("RunListReopened", [&] {
    std::vector<Run> out;
    std::vector<std::int64_t> ids;
    auto& q = db.stmt(
        "SELECT run_id FROM runs r WHERE state IN ('planned', 'running') AND reopened_at IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM deliveries d WHERE d.run_id = r.run_id AND d.state IN (" + non_final_states_sql() + ")) "
        "ORDER BY slot_at");
    while (q.executeStep()) ids.push_back(q.getColumn(0).getInt64());
    q.reset();
    for (auto id : ids) {
      if (auto r = RunGet(db, id)) out.push_back(*r);
    }
    return out;
  });
}

bool DeadDismiss(Db& db, std::int64_t delivery_id, const std::string& by, Millis now) {
  return guarded("DeadDismiss", [&] {
    auto& q = db.stmt(
        "UPDATE deliveries SET dismissed_at = ?2, dismissed_by = ?3, updated_at = updated_at "
        "WHERE delivery_id = ?1 AND state = 'dead' AND dismissed_at IS NULL");
    q.bind(1, delivery_id);
    q.bind(2, static_cast<std::int64_t>(now));
    q.bind(3, by);
    bool changed = q.exec() == 1;
    if (changed) DeliveryChangeNote(db, delivery_id, "dismiss", now);
    return changed;
  });
}

void DeadList(Db& db, const DeadFilter& f, const std::function<void(const DeliveryInfo&)>& fn) {
  guarded("DeadList", [&] {
    // One statement for every combination: a NULL parameter switches its filter off.
    auto& q = db.stmt("SELECT " + DeliveryInfoColumns() +
                      " FROM deliveries d WHERE d.state = 'dead' "
                      "AND (?1 IS NULL OR d.date = ?1) AND (?2 IS NULL OR d.run_id = ?2) AND (?3 IS NULL OR d.channel = ?3) "
                      "AND (?4 IS NULL OR EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = d.delivery_id "
                      "AND a.error_code = ?4) OR (?4 = 'held' AND d.last_error LIKE 'held: %')) AND (?5 IS NULL OR d.updated_at >= ?5) AND (?6 = 1 OR d.dismissed_at IS NULL) "
                      "ORDER BY d.updated_at, d.delivery_id LIMIT ?7");
    if (f.date.empty()) q.bind(1); else q.bind(1, f.date);
    bind_opt(q, 2, f.run_id);
    if (f.channel.empty()) q.bind(3); else q.bind(3, f.channel);
    if (f.error_code.empty()) q.bind(4); else q.bind(4, f.error_code);
    bind_opt(q, 5, f.since);
    q.bind(6, f.include_dismissed ? 1 : 0);
    q.bind(7, f.limit > 0 ? f.limit : std::int64_t{-1});
    while (q.executeStep()) fn(DeliveryInfoRead(q));
    q.reset();
    return 0;
  });
}

std::int64_t DeadCount(Db& db) {
  return guarded("DeadCount", [&] {
    auto& q = db.stmt("SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND dismissed_at IS NULL");
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

// ---- one advisor's day ---------------------------------------------------------------------

namespace {
/// UPDATE deliveries SET `set` on the open (planned, retry_wait, uncertain) deliveries of one
/// advisor on one day (kAdvisorDay); returns their ids. `bind_rest` binds ?4 on.
std::vector<std::int64_t> update_open_on_day(Db& db, const std::string& set, const std::string& advisor_id,
                                             const std::string& date,
                                             const std::function<void(SQLite::Statement&)>& bind_rest) {
  auto& q = db.stmt("UPDATE deliveries SET " + set + " WHERE " + kAdvisorDay +
                    " AND state IN (" + cancellable_states_sql() + ") RETURNING delivery_id");
  bind_advisor_day(q, advisor_id, date);
  bind_rest(q);
  std::vector<std::int64_t> ids;
  while (q.executeStep()) ids.push_back(q.getColumn(0).getInt64());
  q.reset();
  return ids;
}
}  // namespace

// ---- content changes ---------------------------------------------------------------------

std::optional<std::int64_t> DeliveryRepointAdvisor(Db& db, const std::string& advisor_id, const std::string& date,
                                                   const std::string& content_id, Millis now) {
  return guarded("DeliveryRepointAdvisor", [&]() -> std::optional<std::int64_t> {
    auto ids = update_open_on_day(db, "content_id = ?4, source = 'override', updated_at = ?5", advisor_id, date,
                                  [&](SQLite::Statement& q) {
                                    q.bind(4, content_id);
                                    q.bind(5, static_cast<std::int64_t>(now));
                                  });
    for (auto id : ids) DeliveryChangeNote(db, id, "content", now);
    if (ids.empty()) return std::nullopt;
    return ids.front();
  });
}

std::int64_t AssignmentReplaceContent(Db& db, const std::string& from_content, const std::string& to_content,
                                      const std::string& from_date, Millis now) {
  return guarded("AssignmentReplaceContent", [&] {
    auto& q = db.stmt(
        "UPDATE assignments SET content_id = ?2, source = 'override', score = 0, score_parts = '{}', "
        "reason = 'replaced ' || ?1 || ' by ' || ?2 || ' (content replace)', created_at = ?4 "
        "WHERE content_id = ?1 AND date >= ?3");
    q.bind(1, from_content);
    q.bind(2, to_content);
    q.bind(3, from_date);
    q.bind(4, static_cast<std::int64_t>(now));
    return static_cast<std::int64_t>(q.exec());
  });
}

// ---- advisors ----------------------------------------------------------------------------

bool AdvisorSetAbsence(Db& db, const std::string& advisor_id, const std::optional<std::string>& from,
                       const std::optional<std::string>& until, Millis now) {
  return guarded("AdvisorSetAbsence", [&] {
    auto& q = db.stmt("UPDATE advisors SET paused_from = ?2, paused_until = ?3, updated_at = ?4 WHERE advisor_id = ?1");
    q.bind(1, advisor_id);
    bind_opt(q, 2, from);
    bind_opt(q, 3, until);
    q.bind(4, static_cast<std::int64_t>(now));
    return q.exec() == 1;
  });
}

std::vector<std::int64_t> DeliveryCancelForAdvisorDays(Db& db, const std::string& advisor_id, const std::string& from,
                                                       const std::string& until, Millis now) {
  return guarded("DeliveryCancelForAdvisorDays", [&] {
    // Day by day through the runs' dates: the ledger finds one advisor's rows of one day (sql/007),
    // while a bare date range would walk every advisor of those days.
    std::vector<std::string> dates;
    {
      auto& d = db.stmt("SELECT DISTINCT date FROM runs WHERE (?1 = '' OR date >= ?1) AND (?2 = '' OR date <= ?2) ORDER BY date");
      d.bind(1, from);
      d.bind(2, until);
      while (d.executeStep()) dates.push_back(d.getColumn(0).getString());
      d.reset();
    }
    std::vector<std::int64_t> ids;
    for (const auto& date : dates) {
      auto day = update_open_on_day(
          db, "state = 'cancelled', next_attempt_at = NULL, claim_owner = NULL, claim_until = NULL, updated_at = ?4",
          advisor_id, date, [&](SQLite::Statement& q) { q.bind(4, static_cast<std::int64_t>(now)); });
      ids.insert(ids.end(), day.begin(), day.end());
    }
    for (auto id : ids) DeliveryChangeNote(db, id, "cancel", now);
    return ids;
  });
}

AdvisorFollowCounts DeliveryFollowAdvisorChannels(Db& db, const std::string& advisor_id, Millis now) {
  return guarded("DeliveryFollowAdvisorChannels", [&] {
    AdvisorFollowCounts out;
    std::vector<std::string> list;
    bool advisor_in = false;
    {
      auto& a = db.stmt("SELECT channels, opted_in FROM advisors WHERE advisor_id = ?1");
      a.bind(1, advisor_id);
      const bool found = a.executeStep();
      if (found) {
        list = split_list(a.getColumn(0).getString(), '|');
        advisor_in = a.getColumn(1).getInt() != 0;
      }
      a.reset();
      if (!found) return out;
    }
    std::set<std::string> usable;  // the channels of its list with an opted-in row
    {
      auto& c = db.stmt("SELECT channel FROM advisor_channels WHERE advisor_id = ?1 AND opted_in = 1");
      c.bind(1, advisor_id);
      while (c.executeStep()) {
        std::string ch = c.getColumn(0).getString();
        if (advisor_in && std::find(list.begin(), list.end(), ch) != list.end()) usable.insert(std::move(ch));
      }
      c.reset();
    }
    std::vector<std::string> dates;
    {
      auto& d = db.stmt("SELECT DISTINCT date FROM runs WHERE state NOT IN ('closed', 'cancelled') ORDER BY date");
      while (d.executeStep()) dates.push_back(d.getColumn(0).getString());
      d.reset();
    }
    for (const auto& date : dates) {
      std::vector<std::pair<std::int64_t, std::string>> rows;
      {
        auto& q = db.stmt(std::string("SELECT delivery_id, channel FROM deliveries WHERE ") + kAdvisorDay + " AND state IN (" +
                          cancellable_states_sql() + ") ORDER BY delivery_id");
        bind_advisor_day(q, advisor_id, date);
        while (q.executeStep()) rows.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getString());
        q.reset();
      }
      for (const auto& [id, channel] : rows) {
        const int to = follow_channel_index(channel, list, usable);
        if (to >= 0 && list[static_cast<std::size_t>(to)] == channel) {  // still reaches the advisor: its address may be new
          DeliveryChangeNote(db, id, "advisor", now);
          out.reloaded.push_back(id);
          continue;
        }
        if (to < 0) {
          auto& c = db.stmt(
              "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL, claim_owner = NULL, claim_until = NULL, "
              "updated_at = ?2 WHERE delivery_id = ?1");
          c.bind(1, id);
          c.bind(2, static_cast<std::int64_t>(now));
          c.exec();
          DeliveryChangeNote(db, id, "cancel", now);
          out.cancelled.push_back(id);
          continue;
        }
        // Any sender of the new channel: dispatch picks one (the planner's choice was for the old).
        auto& m = db.stmt("UPDATE deliveries SET channel = ?2, channel_index = ?3, sender = '', updated_at = ?4 WHERE delivery_id = ?1");
        m.bind(1, id);
        m.bind(2, list[static_cast<std::size_t>(to)]);
        m.bind(3, to);
        m.bind(4, static_cast<std::int64_t>(now));
        m.exec();
        DeliveryChangeNote(db, id, "advisor", now);
        out.moved.push_back(id);
      }
    }
    return out;
  });
}

namespace {

/// Marks the advisor changed at `now` (the advisors list and exports read updated_at).
void touch_advisor(Db& db, const std::string& advisor_id, Millis now) {
  auto& u = db.stmt("UPDATE advisors SET updated_at = ?2 WHERE advisor_id = ?1");
  u.bind(1, advisor_id);
  u.bind(2, static_cast<std::int64_t>(now));
  u.exec();
}

}  // namespace

bool AdvisorChannelSetOptIn(Db& db, const std::string& advisor_id, const std::string& channel, bool opted_in, Millis now,
                             bool sticky) {
  return guarded("AdvisorChannelSetOptIn", [&] {
    // An operator's opt-out is sticky like an unsubscribe (unsubscribed_at, sql/013): the next
    // import cannot opt the channel back in. Opting back in clears it: the operator decided, and
    // audited it.
    auto& q = db.stmt(
        "UPDATE advisor_channels SET opted_in = ?3, "
        "unsubscribed_at = CASE WHEN ?3 = 1 THEN NULL WHEN ?5 = 1 THEN COALESCE(unsubscribed_at, ?4) "
        "ELSE unsubscribed_at END "
        "WHERE advisor_id = ?1 AND channel = ?2");
    q.bind(1, advisor_id);
    q.bind(2, channel);
    q.bind(3, opted_in ? 1 : 0);
    q.bind(4, static_cast<std::int64_t>(now));
    q.bind(5, sticky ? 1 : 0);
    bool changed = q.exec() == 1;
    if (changed) touch_advisor(db, advisor_id, now);
    return changed;
  });
}

}  // namespace daybreak::store

namespace daybreak::store {

bool AdvisorChannelUnsubscribe(Db& db, const std::string& advisor_id, const std::string& channel, Millis now) {
  return guarded("AdvisorChannelUnsubscribe", [&] {
    auto& q = db.stmt(
        "UPDATE advisor_channels SET opted_in = 0, unsubscribed_at = ?3 "
        "WHERE advisor_id = ?1 AND channel = ?2 AND (opted_in = 1 OR unsubscribed_at IS NULL)");
    q.bind(1, advisor_id);
    q.bind(2, channel);
    q.bind(3, static_cast<std::int64_t>(now));
    bool changed = q.exec() == 1;
    if (changed) touch_advisor(db, advisor_id, now);
    return changed;
  });
}

}  // namespace daybreak::store
