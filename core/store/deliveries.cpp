#include "store/deliveries.hpp"
#include "domain/delivery_fsm.hpp"

#include <algorithm>
#include <array>

#include "domain/planner.hpp"
#include "store/restore.hpp"

namespace daybreak::store {

const char* const kDeliverySelectSql =
    "SELECT d.delivery_id, d.run_id, d.advisor_id, d.content_id, d.source, d.tier, d.tier_rank, d.state, d.channel, "
    "d.channel_index, d.sender, d.planned_at, d.deadline_at, d.next_attempt_at, d.claim_owner, d.claim_until, "
    "d.attempts, d.first_sent_at, d.provider_message_id, d.accepted_at, d.last_error, d.possible_duplicate, "
    "a.name, a.language, a.channels, "
    "(SELECT address FROM advisor_channels c WHERE c.advisor_id = d.advisor_id AND c.channel = 'whatsapp' AND c.opted_in = 1), "
    "(SELECT address FROM advisor_channels c WHERE c.advisor_id = d.advisor_id AND c.channel = 'email' AND c.opted_in = 1), "
    "d.resent_at "
    "FROM deliveries d JOIN advisors a ON a.advisor_id = d.advisor_id ";

namespace {


DeliveryRow read_row(SQLite::Statement& q) {
  DeliveryRow r;
  r.delivery_id = q.getColumn(0).getInt64();
  r.run_id = q.getColumn(1).getInt64();
  r.advisor_id = q.getColumn(2).getString();
  r.content_id = q.getColumn(3).getString();
  r.source = q.getColumn(4).getString();
  r.tier = q.getColumn(5).getString();
  r.tier_rank = q.getColumn(6).getInt();
  r.state = delivery_state_from_string(q.getColumn(7).getString()).value_or(DeliveryState::planned);
  r.channel = q.getColumn(8).getString();
  r.channel_index = q.getColumn(9).getInt();
  r.sender = q.getColumn(10).getString();
  r.planned_at = q.getColumn(11).getInt64();
  r.deadline_at = q.getColumn(12).getInt64();
  r.next_attempt_at = column_opt<Millis>(q.getColumn(13));
  r.claim_owner = column_opt<std::string>(q.getColumn(14));
  r.claim_until = column_opt<Millis>(q.getColumn(15));
  r.attempts = q.getColumn(16).getInt();
  r.first_sent_at = column_opt<Millis>(q.getColumn(17));
  r.provider_message_id = column_opt<std::string>(q.getColumn(18));
  r.accepted_at = column_opt<Millis>(q.getColumn(19));
  r.last_error = column_opt<std::string>(q.getColumn(20));
  r.possible_duplicate = q.getColumn(21).getInt() != 0;
  r.advisor_name = q.getColumn(22).getString();
  r.language = q.getColumn(23).getString();
  r.channels = q.getColumn(24).getString();
  r.phone = q.getColumn(25).isNull() ? "" : q.getColumn(25).getString();
  r.email = q.getColumn(26).isNull() ? "" : q.getColumn(26).getString();
  r.resent_at = column_opt<Millis>(q.getColumn(27));
  return r;
}

}  // namespace

namespace {
constexpr const char* kInsertColumns =
    "INSERT INTO deliveries(run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank, state, channel, "
    "channel_index, sender, planned_at, deadline_at, updated_at, order_key) VALUES ";
constexpr const char* kInsertRow = "(?,?,?,?,?,?,?,?,'planned',?,?,?,?,?,?,?)";
constexpr const char* kInsertConflict = " ON CONFLICT(date, order_key, advisor_id, slot_at) DO NOTHING";
constexpr int kInsertParams = 15;

std::string insert_sql(std::size_t rows) {
  std::string sql = kInsertColumns;
  for (std::size_t i = 0; i < rows; ++i) {
    if (i > 0) sql += ',';
    sql += kInsertRow;
  }
  return sql + kInsertConflict;
}

DeliveryInsertRef ref_of(const DeliveryInsertParams& p) {
  DeliveryInsertRef r;
  r.run_id = p.run_id;
  r.advisor_id = &p.advisor_id;
  r.date = &p.date;
  r.content_id = &p.content_id;
  r.source = &p.source;
  r.tier = &p.tier;
  r.channel = &p.channel;
  r.sender = &p.sender;
  r.slot_at = p.slot_at;
  r.tier_rank = p.tier_rank;
  r.channel_index = p.channel_index;
  r.planned_at = p.planned_at;
  r.deadline_at = p.deadline_at;
  r.now = p.now;
  return r;
}

/// Binds one row's parameters from position `first`. The strings must outlive the step: no
/// copies (bindNoCopy); a million rows notice.
void bind_delivery(SQLite::Statement& q, int first, const DeliveryInsertRef& p) {
  q.bind(first + 0, p.run_id);
  q.bindNoCopy(first + 1, *p.advisor_id);
  q.bindNoCopy(first + 2, *p.date);
  q.bind(first + 3, p.slot_at);
  q.bindNoCopy(first + 4, *p.content_id);
  q.bindNoCopy(first + 5, *p.source);
  q.bindNoCopy(first + 6, *p.tier);
  q.bind(first + 7, p.tier_rank);
  q.bindNoCopy(first + 8, *p.channel);
  q.bind(first + 9, p.channel_index);
  q.bindNoCopy(first + 10, *p.sender);
  q.bind(first + 11, p.planned_at);
  q.bind(first + 12, p.deadline_at);
  q.bind(first + 13, p.now);
  q.bind(first + 14, delivery_order_key(*p.advisor_id, *p.date));
}

bool insert_delivery(SQLite::Statement& q, const DeliveryInsertRef& p) {
  bind_delivery(q, 1, p);
  const bool inserted = q.exec() == 1;
  q.reset();
  return inserted;
}
}  // namespace

bool DeliveryInsert(Db& db, const DeliveryInsertParams& p) {
  return guarded("DeliveryInsert", [&] { return insert_delivery(db.stmt(insert_sql(1)), ref_of(p)); });
}

DeliveryInserter::DeliveryInserter(Db& db)
    : db_(db),
      batch_(guarded("DeliveryInserter", [&]() -> SQLite::Statement& { return db.stmt(insert_sql(kBatch)); })),
      queued_(kBatch),
      refs_(kBatch) {}

void DeliveryInserter::add(const DeliveryInsertParams& p) {
  queued_[n_] = p;  // assignment: the queued strings keep their buffers across batches
  add_ref(ref_of(queued_[n_]));
}

void DeliveryInserter::add_ref(const DeliveryInsertRef& r) {
  refs_[n_++] = r;
  if (n_ == kBatch) write_batch();
}

void DeliveryInserter::write_batch() {
  guarded("DeliveryInsert", [&] {
    for (std::size_t i = 0; i < kBatch; ++i) bind_delivery(batch_, 1 + static_cast<int>(i) * kInsertParams, refs_[i]);
    inserted_ += static_cast<std::size_t>(batch_.exec());  // sqlite3_changes: conflicts are not counted
    batch_.reset();
  });
  n_ = 0;
}

std::size_t DeliveryInserter::finish() {
  // The tail (fewer than kBatch rows) goes row by row through the single-row statement.
  guarded("DeliveryInsert", [&] {
    auto& one = db_.stmt(insert_sql(1));
    for (std::size_t i = 0; i < n_; ++i) {
      if (insert_delivery(one, refs_[i])) ++inserted_;
    }
  });
  n_ = 0;
  return inserted_;
}

void DeliveryForEachInRun(Db& db, std::int64_t run_id, const std::function<void(DeliveryRow&&)>& fn) {
  guarded("DeliveryForEachInRun", [&] {
    // No ORDER BY: sorting a million joined rows would hold them all in SQLite's sorter
    // (measured: dispatch peaked at 544 MB loading the 1M run); callers order what they need.
    auto& q = db.stmt(std::string(kDeliverySelectSql) + "WHERE d.run_id = ?");
    q.bind(1, run_id);
    try {
      while (q.executeStep()) fn(read_row(q));
    } catch (...) {
      q.reset();
      throw;
    }
  });
}

std::vector<DeliveryRow> DeliveryListForRun(Db& db, std::int64_t run_id) {
  std::vector<DeliveryRow> out;
  DeliveryForEachInRun(db, run_id, [&](DeliveryRow&& r) { out.push_back(std::move(r)); });
  std::sort(out.begin(), out.end(), [](const DeliveryRow& a, const DeliveryRow& b) {
    return a.planned_at != b.planned_at ? a.planned_at < b.planned_at : a.delivery_id < b.delivery_id;
  });
  return out;
}

std::optional<DeliveryRow> DeliveryGet(Db& db, std::int64_t delivery_id) {
  return guarded("DeliveryGet", [&]() -> std::optional<DeliveryRow> {
    auto& q = db.stmt(std::string(kDeliverySelectSql) + "WHERE d.delivery_id = ?");
    q.bind(1, delivery_id);
    if (!q.executeStep()) return std::nullopt;
    auto r = read_row(q);
    q.reset();
    return r;
  });
}

bool DeliveryClaim(Db& db, std::int64_t delivery_id, const std::string& owner, Millis claim_until, Millis now) {
  // One rule for one row and many: DeliveryClaimMany's one-row statement.
  return DeliveryClaimMany(db, {delivery_id}, owner, claim_until, now)[0] != 0;
}

std::vector<char> DeliveryClaimMany(Db& db, const std::vector<std::int64_t>& ids, const std::string& owner,
                                    Millis claim_until, Millis now) {
  constexpr std::size_t kChunk = 64;
  std::vector<char> out(ids.size(), 0);
  if (ids.empty()) return out;
  return guarded("DeliveryClaimMany", [&] {
    // One statement text per width 1, 2, 4, ..., 64: a chunk takes the narrowest that holds it, so
    // a claim of a few rows (a paced morning claims a handful at a time) does not pay for a
    // 64-entry IN list. Width 1 is `delivery_id = ?`, no list at all.
    static const std::array<std::string, 7> sql = [] {
      std::array<std::string, 7> texts;
      for (std::size_t w = 0; w < texts.size(); ++w) {
        std::string s =
            "UPDATE deliveries SET state = 'sending', claim_owner = ?1, claim_until = ?2, updated_at = ?3 "
            "WHERE state IN (" + claimable_states_sql() + ") "
            // Only while this process still owns the run (DeliveryClaim says why); uncorrelated, so
            // SQLite reads the owner's runs once per statement.
            "AND run_id IN (SELECT run_id FROM runs WHERE owner = ?1) AND delivery_id ";
        if (w == 0) {
          s += "= ?4";
        } else {
          s += "IN (";
          for (std::size_t i = 0; i < (std::size_t{1} << w); ++i) s += i == 0 ? "?" : ",?";
          s += ")";
        }
        texts[w] = s + " RETURNING delivery_id";
      }
      return texts;
    }();
    std::vector<std::int64_t> claimed;
    claimed.reserve(ids.size());
    for (std::size_t at = 0; at < ids.size(); at += kChunk) {
      const std::size_t n = std::min(kChunk, ids.size() - at);
      std::size_t w = 0;
      while ((std::size_t{1} << w) < n) ++w;
      const std::size_t width = std::size_t{1} << w;
      auto& q = db.stmt(sql[w]);
      q.bind(1, owner);
      q.bind(2, claim_until);
      q.bind(3, now);
      // A chunk narrower than its statement repeats its last id: IN is a set, the row is claimed once.
      for (std::size_t i = 0; i < width; ++i) q.bind(static_cast<int>(4 + i), ids[at + std::min(i, n - 1)]);
      try {
        while (q.executeStep()) claimed.push_back(q.getColumn(0).getInt64());
      } catch (...) {
        q.reset();
        throw;
      }
      q.reset();
    }
    std::sort(claimed.begin(), claimed.end());
    // The first entry of each claimed id takes it; a repeat finds it taken already.
    std::vector<char> taken(claimed.size(), 0);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto it = std::lower_bound(claimed.begin(), claimed.end(), ids[i]);
      if (it == claimed.end() || *it != ids[i]) continue;
      auto& t = taken[static_cast<std::size_t>(it - claimed.begin())];
      if (!t) out[i] = t = 1;
    }
    return out;
  });
}

bool DeliveryRelease(Db& db, std::int64_t delivery_id, const std::string& owner, Millis now) {
  return guarded("DeliveryRelease", [&] {
    auto& q = db.stmt(
        "UPDATE deliveries SET state = CASE WHEN attempts = 0 THEN 'planned' ELSE 'retry_wait' END, "
        "next_attempt_at = ?1, claim_owner = NULL, updated_at = ?1 WHERE delivery_id = ?2 AND state = 'sending' "
        "AND claim_owner = ?3");
    q.bind(1, now);
    q.bind(2, delivery_id);
    q.bind(3, owner);
    return q.exec() == 1;
  });
}

bool DeliveryUpdate(Db& db, const DeliveryUpdateParams& p, const std::string& owner) {
  return guarded("DeliveryUpdate", [&] {
    auto& q = db.stmt(
        "UPDATE deliveries SET state = ?, channel = ?, channel_index = ?, sender = ?, attempts = ?, "
        "next_attempt_at = ?, first_sent_at = COALESCE(first_sent_at, ?), "
        "provider_message_id = COALESCE(?, provider_message_id), accepted_at = COALESCE(?, accepted_at), "
        "last_error = COALESCE(?, last_error), possible_duplicate = MAX(possible_duplicate, ?), "
        "claim_owner = CASE WHEN ? = 'sending' THEN claim_owner ELSE NULL END, updated_at = ? "
        "WHERE delivery_id = ? AND state = 'sending' AND claim_owner = ?");
    std::string st(to_string(p.state));
    q.bind(1, st);
    q.bind(2, p.channel);
    q.bind(3, p.channel_index);
    q.bind(4, p.sender);
    q.bind(5, p.attempts);
    bind_opt(q, 6, p.next_attempt_at);
    bind_opt(q, 7, p.sent_at);
    bind_opt(q, 8, p.provider_message_id);
    bind_opt(q, 9, p.accepted_at);
    bind_opt(q, 10, p.last_error);
    q.bind(11, p.possible_duplicate ? 1 : 0);
    q.bind(12, st);
    q.bind(13, p.now);
    q.bind(14, p.delivery_id);
    q.bind(15, owner);
    return q.exec() == 1;
  });
}

std::int64_t DeliveryMarkUncertain(Db& db, std::int64_t run_id, const std::string& live_owner, Millis now) {
  return guarded("DeliveryMarkUncertain", [&] {
    auto& q = db.stmt(
        "UPDATE deliveries SET state = 'uncertain', updated_at = ? "
        "WHERE run_id = ? AND state = 'sending' AND (claim_owner IS NULL OR claim_owner != ?)");
    q.bind(1, now);
    q.bind(2, run_id);
    q.bind(3, live_owner);
    return static_cast<std::int64_t>(q.exec());
  });
}

std::map<std::string, std::int64_t> DeliveryCountByState(Db& db, std::int64_t run_id) {
  return guarded("DeliveryCountByState", [&] {
    auto& q = db.stmt("SELECT state, COUNT(*) FROM deliveries WHERE run_id = ? GROUP BY state");
    q.bind(1, run_id);
    std::map<std::string, std::int64_t> out;
    while (q.executeStep()) out[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
    return out;
  });
}

void AttemptInsert(Db& db, const AttemptInsertParams& p) {
  guarded("AttemptInsert", [&] {
    auto& q = db.stmt(
        "INSERT INTO delivery_attempts(delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, "
        "error_code, error_detail, provider_message_id, latency_ms, fbtrace_id, held_for_quality, error_scope) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, p.delivery_id);
    q.bind(2, p.attempt_no);
    q.bind(3, p.channel);
    q.bind(4, p.sender);
    q.bind(5, p.started_at);
    q.bind(6, p.finished_at);
    q.bind(7, p.outcome);
    if (p.error_code.empty()) q.bind(8); else q.bind(8, p.error_code);
    if (p.error_detail.empty()) q.bind(9); else q.bind(9, p.error_detail);
    if (p.provider_message_id.empty()) q.bind(10); else q.bind(10, p.provider_message_id);
    q.bind(11, p.latency_ms);
    if (p.fbtrace_id.empty()) q.bind(12); else q.bind(12, p.fbtrace_id);
    q.bind(13, p.held_for_quality ? 1 : 0);
    if (p.error_scope.empty()) q.bind(14); else q.bind(14, p.error_scope);
    q.exec();
  });
}

std::vector<AttemptInsertParams> AttemptListForDelivery(Db& db, std::int64_t delivery_id) {
  return guarded("AttemptListForDelivery", [&] {
    auto& q = db.stmt(
        "SELECT delivery_id, attempt_no, channel, sender, started_at, finished_at, outcome, COALESCE(error_code,''), "
        "COALESCE(error_detail,''), COALESCE(provider_message_id,''), COALESCE(latency_ms,0), "
        "COALESCE(fbtrace_id,''), held_for_quality, COALESCE(error_scope,'') "
        "FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt_id");
    q.bind(1, delivery_id);
    std::vector<AttemptInsertParams> out;
    while (q.executeStep()) {
      AttemptInsertParams a;
      a.delivery_id = q.getColumn(0).getInt64();
      a.attempt_no = q.getColumn(1).getInt();
      a.channel = q.getColumn(2).getString();
      a.sender = q.getColumn(3).getString();
      a.started_at = q.getColumn(4).getInt64();
      a.finished_at = q.getColumn(5).getInt64();
      a.outcome = q.getColumn(6).getString();
      a.error_code = q.getColumn(7).getString();
      a.error_detail = q.getColumn(8).getString();
      a.provider_message_id = q.getColumn(9).getString();
      a.latency_ms = q.getColumn(10).getInt64();
      a.fbtrace_id = q.getColumn(11).getString();
      a.held_for_quality = q.getColumn(12).getInt() != 0;
      a.error_scope = q.getColumn(13).getString();
      out.push_back(std::move(a));
    }
    return out;
  });
}

}  // namespace daybreak::store

namespace daybreak::store {

void DeliveryChangeNote(Db& db, std::int64_t delivery_id, const std::string& kind, Millis now) {
  guarded("DeliveryChangeNote", [&] {
    auto& q = db.stmt(
        "INSERT INTO delivery_changes (delivery_id, run_id, kind, at) "
        "SELECT delivery_id, run_id, ?, ? FROM deliveries WHERE delivery_id = ?");
    q.bind(1, kind);
    q.bind(2, now);
    q.bind(3, delivery_id);
    q.exec();
    return 0;
  });
}

std::vector<DeliveryChange> DeliveryChangesSince(Db& db, std::int64_t run_id, std::int64_t after_seq) {
  return guarded("DeliveryChangesSince", [&] {
    auto& q = db.stmt("SELECT seq, delivery_id, kind FROM delivery_changes WHERE run_id = ? AND seq > ? ORDER BY seq");
    q.bind(1, run_id);
    q.bind(2, after_seq);
    std::vector<DeliveryChange> out;
    while (q.executeStep())
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getInt64(), q.getColumn(2).getString()});
    q.reset();
    return out;
  });
}

std::int64_t DeliveryChangeLastSeq(Db& db) {
  return guarded("DeliveryChangeLastSeq", [&] {
    auto& q = db.stmt("SELECT COALESCE(MAX(seq), 0) FROM delivery_changes");
    q.executeStep();
    auto v = q.getColumn(0).getInt64();
    q.reset();
    return v;
  });
}

}  // namespace daybreak::store

namespace daybreak::store {

std::optional<DeliveryStateRow> DeliveryGetState(Db& db, std::int64_t delivery_id) {
  return guarded("DeliveryGetState", [&]() -> std::optional<DeliveryStateRow> {
    auto& q = db.stmt("SELECT state, accepted_at, provider_message_id, claim_owner FROM deliveries WHERE delivery_id = ?");
    q.bind(1, delivery_id);
    if (!q.executeStep()) {
      q.reset();
      return std::nullopt;
    }
    DeliveryStateRow r;
    r.state = delivery_state_from_string(q.getColumn(0).getString()).value_or(DeliveryState::planned);
    r.accepted_at = column_opt<Millis>(q.getColumn(1));
    r.provider_message_id = column_opt<std::string>(q.getColumn(2));
    r.claim_owner = column_opt<std::string>(q.getColumn(3));
    q.reset();
    return r;
  });
}

void DeliverySubstituteContent(Db& db, std::int64_t delivery_id, const std::string& content_id, const std::string& source,
                               const std::string& reason, Millis now) {
  guarded("DeliverySubstituteContent", [&] {
    auto& d = db.stmt("UPDATE deliveries SET content_id = ?, source = ?, updated_at = ? WHERE delivery_id = ?");
    d.bind(1, content_id);
    d.bind(2, source);
    d.bind(3, now);
    d.bind(4, delivery_id);
    d.exec();
    auto& a = db.stmt(
        "UPDATE assignments SET content_id = ?, source = ?, reason = ? "
        "WHERE (advisor_id, date) = (SELECT advisor_id, date FROM deliveries WHERE delivery_id = ?)");
    a.bind(1, content_id);
    a.bind(2, source);
    a.bind(3, reason);
    a.bind(4, delivery_id);
    a.exec();
    return 0;
  });
}

}  // namespace daybreak::store

namespace daybreak::store {

bool DeliverySettleUncertain(Db& db, std::int64_t delivery_id, DeliveryState state, const std::string& provider_message_id,
                             Millis accepted_at, Millis now) {
  return guarded("DeliverySettleUncertain", [&] {
    auto& q = db.stmt(
        "UPDATE deliveries SET state = ?, provider_message_id = ?, accepted_at = COALESCE(accepted_at, ?), "
        "delivered_at = CASE WHEN ? IN ('delivered', 'read') THEN COALESCE(delivered_at, ?) ELSE delivered_at END, "
        "read_at = CASE WHEN ? = 'read' THEN COALESCE(read_at, ?) ELSE read_at END, "
        "claim_owner = NULL, updated_at = ? WHERE delivery_id = ? AND state = 'uncertain'");
    std::string st(to_string(state));
    q.bind(1, st);
    q.bind(2, provider_message_id);
    q.bind(3, accepted_at);
    q.bind(4, st);
    q.bind(5, accepted_at);
    q.bind(6, st);
    q.bind(7, accepted_at);
    q.bind(8, now);
    q.bind(9, delivery_id);
    return q.exec() == 1;
  });
}

std::vector<std::int64_t> DeliveryListUncertain(Db& db, std::int64_t run_id) {
  return guarded("DeliveryListUncertain", [&] {
    auto& q = db.stmt("SELECT delivery_id FROM deliveries WHERE run_id = ? AND state = 'uncertain'");
    q.bind(1, run_id);
    std::vector<std::int64_t> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getInt64());
    q.reset();
    return out;
  });
}

}  // namespace daybreak::store

// store/restore.hpp: what `daybreak restore` reads from a backup and changes in the restored ledger.

namespace daybreak::store {
namespace {

// domain/restore.hpp's restored_row_may_have_been_sent, in SQL: ?1 = restore_at, ?2 = claim lead.
const std::string& restore_at_risk_where() {
  static const std::string s =
      "(d.state IN (" + attempted_open_states_sql() + ") OR (d.state = 'planned' AND d.planned_at - ?2 <= ?1)) "
      "AND d.run_id IN (SELECT run_id FROM runs WHERE state != 'closed')";
  return s;
}

}  // namespace

std::vector<RestoreRunAtRisk> RestoreRunsAtRisk(SQLite::Database& db, Millis restore_at, Millis claim_lead_ms) {
  return guarded("RestoreRunsAtRisk", [&] {
    SQLite::Statement q(db, std::string("SELECT r.run_id, r.date, r.slot_at, r.state, COUNT(*), "
                                        "SUM(d.state IN (" + attempted_open_states_sql() + ")) "
                                        "FROM deliveries d JOIN runs r ON r.run_id = d.run_id WHERE ") +
                                restore_at_risk_where() + " GROUP BY r.run_id ORDER BY r.run_id");
    q.bind(1, static_cast<std::int64_t>(restore_at));
    q.bind(2, static_cast<std::int64_t>(claim_lead_ms));
    std::vector<RestoreRunAtRisk> out;
    while (q.executeStep()) {
      RestoreRunAtRisk r;
      r.run_id = q.getColumn(0).getInt64();
      r.date = q.getColumn(1).getString();
      r.slot_at = q.getColumn(2).getInt64();
      r.state = q.getColumn(3).getString();
      r.at_risk = q.getColumn(4).getInt64();
      r.in_flight = q.getColumn(5).getInt64();
      out.push_back(std::move(r));
    }
    return out;
  });
}

std::int64_t RestoreMarkUncertain(Db& db, Millis restore_at, Millis claim_lead_ms, Millis now) {
  return guarded("RestoreMarkUncertain", [&] {
    SQLite::Statement runs(db.raw(), std::string("UPDATE runs SET owner = NULL, lease_until = NULL WHERE run_id IN "
                                                 "(SELECT DISTINCT d.run_id FROM deliveries d WHERE ") +
                                         restore_at_risk_where() + ")");
    runs.bind(1, static_cast<std::int64_t>(restore_at));
    runs.bind(2, static_cast<std::int64_t>(claim_lead_ms));
    runs.exec();
    SQLite::Statement q(db.raw(), std::string("UPDATE deliveries AS d SET state = 'uncertain', possible_duplicate = 1, "
                                              "claim_owner = NULL, claim_until = NULL, updated_at = ?3 WHERE ") +
                                      restore_at_risk_where());
    q.bind(1, static_cast<std::int64_t>(restore_at));
    q.bind(2, static_cast<std::int64_t>(claim_lead_ms));
    q.bind(3, static_cast<std::int64_t>(now));
    return static_cast<std::int64_t>(q.exec());
  });
}

}  // namespace daybreak::store
