#include "store/status_events.hpp"

#include <openssl/evp.h>

#include "store/deliveries.hpp"
#include "store/whatsapp_holds.hpp"

namespace daybreak::store {
namespace {

std::string sha256_hex(const std::string& data) {
  // Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up on every digest.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, kSha256 != nullptr ? kSha256 : EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0x0f]);
  }
  return out;
}

/// A stored status waiting to be applied.
struct PendingRow {
  std::int64_t update_id = 0;
  std::string provider_message_id;
  std::optional<std::int64_t> delivery_id;
  MessageStatus status = MessageStatus::sent;
  Millis provider_at = 0;
  std::optional<long> error_code;
  std::string error_title;
};

/// The columns of a delivery the apply step reads.
struct Target {
  std::int64_t delivery_id = 0;
  DeliveryState state = DeliveryState::planned;
  std::string advisor_id;
  std::string channel;  ///< the channel the row is on now
  bool has_message_id = false;  ///< provider_message_id is recorded (dispatch records it with the acceptance)
};

Target read_target(SQLite::Statement& q) {
  return Target{q.getColumn(0).getInt64(),
                delivery_state_from_string(q.getColumn(1).getString()).value_or(DeliveryState::planned),
                q.getColumn(2).getString(), q.getColumn(3).getString(), q.getColumn(4).getInt() != 0};
}

constexpr const char* kPendingColumns =
    "SELECT update_id, provider_message_id, delivery_id, status, provider_at, error_code, error_title FROM status_updates ";

PendingRow read_pending(SQLite::Statement& q) {
  PendingRow r;
  r.update_id = q.getColumn(0).getInt64();
  r.provider_message_id = q.getColumn(1).getString();
  r.delivery_id = column_opt<std::int64_t>(q.getColumn(2));
  r.status = message_status_from_string(q.getColumn(3).getString()).value_or(MessageStatus::sent);
  r.provider_at = q.getColumn(4).getInt64();
  if (!q.getColumn(5).isNull()) r.error_code = static_cast<long>(q.getColumn(5).getInt64());
  r.error_title = q.getColumn(6).isNull() ? "" : q.getColumn(6).getString();
  return r;
}

std::optional<Target> target_by_id(Db& db, std::int64_t delivery_id) {
  auto& q = db.stmt("SELECT delivery_id, state, advisor_id, channel, provider_message_id IS NOT NULL FROM deliveries WHERE delivery_id = ?");
  q.bind(1, delivery_id);
  if (!q.executeStep()) return std::nullopt;
  Target t = read_target(q);
  q.reset();
  return t;
}

std::optional<Target> target_by_message(Db& db, const std::string& provider_message_id) {
  auto& q = db.stmt("SELECT delivery_id, state, advisor_id, channel, provider_message_id IS NOT NULL FROM deliveries "
                    "WHERE provider_message_id = ? LIMIT 1");
  q.bind(1, provider_message_id);
  if (!q.executeStep()) return std::nullopt;
  Target t = read_target(q);
  q.reset();
  return t;
}

/// The delivery a status names: biz_opaque_callback_data first (it survives a crash before the
/// message id was recorded), else the provider message id.
std::optional<Target> match(Db& db, const PendingRow& u) {
  if (u.delivery_id) {
    if (auto t = target_by_id(db, *u.delivery_id)) return t;
  }
  return target_by_message(db, u.provider_message_id);
}

/// Prefix of last_error values written from a `failed` status: a later delivered/read clears
/// only these, so the end state does not depend on the order failed and delivered came in.
constexpr const char* kFailedPrefix = "status failed: ";

bool was_reconciled(Db& db, std::int64_t delivery_id) {
  auto& q = db.stmt("SELECT 1 FROM status_updates WHERE matched_delivery_id = ? AND outcome = 'reconciled' LIMIT 1");
  q.bind(1, delivery_id);
  bool found = q.executeStep();
  q.reset();
  return found;
}

/// Applies one status to its delivery; returns the outcome label stored on the update row.
std::string apply_one(Db& db, const PendingRow& u, const Target& t, Millis now) {
  const bool progress = u.status != MessageStatus::failed;
  const auto next = delivery_state_after_status(t.state, u.status);
  const bool accepted_family = is_accepted_state(t.state);
  const bool reconcile = next && !accepted_family;

  if (!progress) {
    // `failed` moves nothing here (a running dispatch may, see the change note below). It is
    // recorded unless the row is already delivered/read (a message delivered to one device and
    // failed on another reached the advisor) or is one dispatch/operators closed (dead,
    // cancelled) or never sent (planned).
    const bool recordable = t.state == DeliveryState::accepted || t.state == DeliveryState::uncertain ||
                            t.state == DeliveryState::retry_wait;
    if (!recordable) return t.state == DeliveryState::delivered || t.state == DeliveryState::read ? "unchanged" : "ignored";
    std::string err = kFailedPrefix + (u.error_code ? std::to_string(*u.error_code) : std::string("?"));
    if (!u.error_title.empty()) err += " " + u.error_title;
    auto& q = db.stmt(
        "UPDATE deliveries SET last_error = ?, provider_message_id = COALESCE(provider_message_id, ?), updated_at = ? "
        "WHERE delivery_id = ?");
    q.bind(1, err);
    q.bind(2, u.provider_message_id);
    q.bind(3, now);
    q.bind(4, t.delivery_id);
    q.exec();
    // 131049 (the per-user marketing limit): no WhatsApp for this advisor for 24 h
    // (domain/status_event.hpp); plan-deliveries and dispatch read the hold.
    if (auto until = whatsapp_hold_until(u.error_code, u.provider_at, now)) {
      WhatsAppHoldSet(db, WhatsAppHold{t.advisor_id, *until, *u.error_code, t.delivery_id, now});
    }
    // An accepted WhatsApp row: a running dispatch moves it to the advisor's next channel when
    // the deadline still allows a send (decide_after_failed_status); tell it (sql/006).
    if (t.state == DeliveryState::accepted && t.channel == "whatsapp") DeliveryChangeNote(db, t.delivery_id, "status_failed", now);
    return "error_recorded";
  }

  // A late progress status of a WhatsApp message whose failure moved the row to another channel
  // says nothing about the row any more (it is on that channel now).
  if (t.channel != "whatsapp" && StatusMessageRerouted(db, u.provider_message_id)) return "ignored";

  if (!next && !accepted_family) return "ignored";  // planned, dead, cancelled

  // Timestamps are folded with MIN whatever the state does, so a late, lower status still
  // contributes its (earlier) time: read implies delivered (Meta omits `delivered` when a
  // message is read at once), so a read also sets delivered_at.
  const bool sets_delivered = u.status == MessageStatus::delivered || u.status == MessageStatus::read;
  const bool sets_read = u.status == MessageStatus::read;
  // accepted_at is dispatch's own record; only a row accepted through reconciliation takes
  // the provider's earliest time (it is when the request that was in doubt was taken).
  const bool sets_accepted = reconcile || (accepted_family && was_reconciled(db, t.delivery_id));
  const std::string new_state(to_string(next.value_or(t.state)));
  const bool clears_status_error = next && (*next == DeliveryState::delivered || *next == DeliveryState::read);
  // COALESCE(provider_message_id, ?) only when the row has none: naming the column makes SQLite
  // rewrite its index entry even when the value stays, so a row whose id is recorded (every
  // accepted one) leaves it out and its deliveries_provider_message entry is not touched.
  static const std::string kSetMessageId = "provider_message_id = COALESCE(provider_message_id, ?), ";
  static const std::string kApplyTail =
      "accepted_at = CASE WHEN ? THEN MIN(COALESCE(accepted_at, ?), ?) ELSE accepted_at END, "
      "delivered_at = CASE WHEN ? THEN MIN(COALESCE(delivered_at, ?), ?) ELSE delivered_at END, "
      "read_at = CASE WHEN ? THEN MIN(COALESCE(read_at, ?), ?) ELSE read_at END, "
      "last_error = CASE WHEN ? AND last_error LIKE 'status failed: %' THEN NULL ELSE last_error END, "
      "claim_owner = CASE WHEN ? THEN NULL ELSE claim_owner END, updated_at = ? "
      "WHERE delivery_id = ?";
  static const std::string kApplyWithId = "UPDATE deliveries SET state = ?, " + kSetMessageId + kApplyTail;
  static const std::string kApplyKeepingId = "UPDATE deliveries SET state = ?, " + kApplyTail;
  auto& q = db.stmt(t.has_message_id ? kApplyKeepingId : kApplyWithId);
  int i = 1;
  q.bind(i++, new_state);
  if (!t.has_message_id) q.bind(i++, u.provider_message_id);
  q.bind(i++, sets_accepted ? 1 : 0);
  q.bind(i++, u.provider_at);
  q.bind(i++, u.provider_at);
  q.bind(i++, sets_delivered ? 1 : 0);
  q.bind(i++, u.provider_at);
  q.bind(i++, u.provider_at);
  q.bind(i++, sets_read ? 1 : 0);
  q.bind(i++, u.provider_at);
  q.bind(i++, u.provider_at);
  q.bind(i++, clears_status_error ? 1 : 0);
  q.bind(i++, reconcile ? 1 : 0);
  q.bind(i++, now);
  q.bind(i++, t.delivery_id);
  q.exec();
  if (reconcile) {
    // A running dispatch holds this row in memory as not final: tell it (sql/006).
    DeliveryChangeNote(db, t.delivery_id, "status", now);
    return "reconciled";
  }
  return next ? "moved" : "unchanged";
}

void count(StatusApplySummary& s, const std::string& outcome) {
  if (outcome == "pending") {
    ++s.pending;
    return;
  }
  ++s.applied;
  if (outcome == "reconciled") ++s.reconciled;
  else if (outcome == "moved") ++s.moved;
  else if (outcome == "unchanged") ++s.unchanged;
  else if (outcome == "error_recorded") ++s.errors_recorded;
  else if (outcome == "ignored") ++s.ignored;
}

/// Applies a list of pending rows in order and records each outcome on its row. With
/// `requeue`, a row that matched no delivery goes to the back of StatusApplyPending's queue
/// (checked_at).
StatusApplySummary apply_rows(Db& db, const std::vector<PendingRow>& rows, Millis now, bool requeue) {
  StatusApplySummary s;
  for (const auto& u : rows) {
    auto t = match(db, u);
    // No delivery yet, or one a live dispatch is still writing: keep it for StatusApplyPending.
    if (!t || status_waits_for(t->state)) {
      count(s, "pending");
      // Only a status that matched nothing goes to the back of the queue: one that waits on a
      // `sending` row (dispatch's own write is a moment away) stays in front for the next call.
      if (requeue && !t) {
        auto& q = db.stmt("UPDATE status_updates SET checked_at = ? WHERE update_id = ?");
        q.bind(1, now);
        q.bind(2, u.update_id);
        q.exec();
      }
      continue;
    }
    const std::string outcome = apply_one(db, u, *t, now);
    auto& q = db.stmt("UPDATE status_updates SET applied_at = ?, matched_delivery_id = ?, outcome = ? WHERE update_id = ?");
    q.bind(1, now);
    q.bind(2, t->delivery_id);
    q.bind(3, outcome);
    q.bind(4, u.update_id);
    q.exec();
    count(s, outcome);
  }
  return s;
}

}  // namespace

StatusApplySummary& StatusApplySummary::operator+=(const StatusApplySummary& o) {
  applied += o.applied;
  reconciled += o.reconciled;
  moved += o.moved;
  unchanged += o.unchanged;
  errors_recorded += o.errors_recorded;
  ignored += o.ignored;
  pending += o.pending;
  return *this;
}

StatusEventStored StatusEventStore(Db& db, const StatusEventStoreParams& p) {
  return guarded("StatusEventStore", [&] {
    const std::string digest = sha256_hex(p.body);
    auto& q = db.stmt(
        "INSERT INTO status_events (received_at, source, source_ref, signature, verified, body, body_sha256, state, error, "
        "processed_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?) ON CONFLICT(body_sha256) DO NOTHING");
    const bool processed = p.processed && !p.malformed_error;
    q.bind(1, p.now);
    q.bind(2, p.source);
    q.bind(3, p.source_ref);
    q.bind(4, p.signature);
    q.bind(5, p.body);
    q.bind(6, digest);
    q.bind(7, p.malformed_error ? "malformed" : processed ? "processed" : "received");
    bind_opt(q, 8, p.malformed_error);
    if (processed) {
      q.bind(9, p.now);
    } else {
      q.bind(9);
    }
    if (q.exec() == 1) return StatusEventStored{db.raw().getLastInsertRowid(), false};
    auto& f = db.stmt("SELECT event_id FROM status_events WHERE body_sha256 = ?");
    f.bind(1, digest);
    f.executeStep();
    StatusEventStored out{f.getColumn(0).getInt64(), true};
    f.reset();
    return out;
  });
}

void StatusRejectsInsert(Db& db, std::int64_t event_id, const std::vector<StatusReject>& rejects, int total, Millis now) {
  guarded("StatusRejectsInsert", [&] {
    std::size_t kept = 0;
    for (const auto& r : rejects) {
      if (kept++ >= kRejectsPerBodyMax) break;
      auto& q = db.stmt(
          "INSERT INTO status_rejects (event_id, received_at, path, provider_message_id, reason, excerpt) VALUES (?,?,?,?,?,?)");
      q.bind(1, event_id);
      q.bind(2, static_cast<std::int64_t>(now));
      q.bind(3, r.path.substr(0, kRejectTextMax));
      q.bind(4, r.provider_message_id.substr(0, kRejectTextMax));
      q.bind(5, r.reason.substr(0, kRejectTextMax));
      q.bind(6, r.excerpt.substr(0, kRejectTextMax));
      q.exec();
    }
    auto& u = db.stmt("UPDATE status_events SET rejected = ?2 WHERE event_id = ?1");
    u.bind(1, event_id);
    u.bind(2, total);
    u.exec();
  });
}

std::vector<StatusRejectRow> StatusRejectList(Db& db, Millis since, std::int64_t limit) {
  return guarded("StatusRejectList", [&] {
    std::vector<StatusRejectRow> out;
    auto& q = db.stmt(
        "SELECT reject_id, event_id, received_at, path, provider_message_id, reason, excerpt FROM status_rejects "
        "WHERE received_at >= ?1 ORDER BY received_at DESC, reject_id DESC LIMIT ?2");
    q.bind(1, static_cast<std::int64_t>(since));
    q.bind(2, limit);
    while (q.executeStep()) {
      StatusRejectRow r;
      r.reject_id = q.getColumn(0).getInt64();
      r.event_id = q.getColumn(1).getInt64();
      r.received_at = q.getColumn(2).getInt64();
      r.reject.path = q.getColumn(3).getString();
      r.reject.provider_message_id = q.getColumn(4).getString();
      r.reject.reason = q.getColumn(5).getString();
      r.reject.excerpt = q.getColumn(6).getString();
      out.push_back(std::move(r));
    }
    q.reset();
    return out;
  });
}

std::int64_t StatusRejectCountSince(Db& db, Millis since) {
  return guarded("StatusRejectCountSince", [&] {
    auto& q = db.stmt("SELECT COALESCE(SUM(rejected), 0) FROM status_events WHERE received_at >= ?1");
    q.bind(1, static_cast<std::int64_t>(since));
    q.executeStep();
    auto n = q.getColumn(0).getInt64();
    q.reset();
    return n;
  });
}

namespace {

/// Binds a status_updates row's first nine columns (event_id … received_at), as both inserts
/// below name them.
void bind_update_row(SQLite::Statement& q, std::int64_t event_id, const StatusUpdate& u, Millis now) {
  q.bind(1, event_id);
  q.bind(2, u.provider_message_id);
  bind_opt(q, 3, u.delivery_id);
  q.bind(4, std::string(to_string(u.status)));
  q.bind(5, u.provider_at);
  q.bind(6, u.phone_number_id);
  if (u.error_code) {
    q.bind(7, static_cast<std::int64_t>(*u.error_code));
  } else {
    q.bind(7);
  }
  if (u.error_title.empty()) {
    q.bind(8);
  } else {
    q.bind(8, u.error_title);
  }
  q.bind(9, now);
}

}  // namespace

int StatusUpdatesInsert(Db& db, std::int64_t event_id, const std::vector<StatusUpdate>& updates, Millis now) {
  return guarded("StatusUpdatesInsert", [&] {
    int inserted = 0;
    for (const auto& u : updates) {
      auto& q = db.stmt(
          "INSERT INTO status_updates (event_id, provider_message_id, delivery_id, status, provider_at, phone_number_id, "
          "error_code, error_title, received_at) VALUES (?,?,?,?,?,?,?,?,?) "
          "ON CONFLICT(provider_message_id, status) DO NOTHING");
      bind_update_row(q, event_id, u, now);
      inserted += q.exec();
    }
    return inserted;
  });
}

StatusInsertedApplied StatusUpdatesInsertApplied(Db& db, std::int64_t event_id, const std::vector<StatusUpdate>& updates,
                                                 Millis now) {
  return guarded("StatusUpdatesInsertApplied", [&] {
    StatusInsertedApplied out;
    PendingRow row;
    for (const auto& u : updates) {
      // StatusUpdatesInsert's ON CONFLICT(provider_message_id, status) DO NOTHING, asked first:
      // a status already present is neither stored again nor applied.
      auto& seen = db.stmt("SELECT 1 FROM status_updates WHERE provider_message_id = ? AND status = ?");
      seen.bind(1, u.provider_message_id);
      seen.bind(2, std::string(to_string(u.status)));
      const bool present = seen.executeStep();
      seen.reset();
      if (present) continue;
      // What StatusApplyEvent reads back of the row (read_pending), from the status itself.
      row.provider_message_id = u.provider_message_id;
      row.delivery_id = u.delivery_id;
      row.status = u.status;
      row.provider_at = u.provider_at;
      row.error_code = u.error_code;
      row.error_title = u.error_title;
      auto t = match(db, row);
      // apply_rows' rule: no delivery yet, or one a live dispatch is still writing, stays pending.
      std::optional<std::string> outcome;
      if (t && !status_waits_for(t->state)) outcome = apply_one(db, row, *t, now);
      count(out.applied, outcome ? *outcome : std::string("pending"));
      auto& q = db.stmt(
          "INSERT INTO status_updates (event_id, provider_message_id, delivery_id, status, provider_at, phone_number_id, "
          "error_code, error_title, received_at, applied_at, matched_delivery_id, outcome) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
      bind_update_row(q, event_id, u, now);
      if (outcome) {
        q.bind(10, now);
        q.bind(11, t->delivery_id);
        q.bind(12, *outcome);
      } else {
        q.bind(10);
        q.bind(11);
        q.bind(12);
      }
      q.exec();
      ++out.inserted;
    }
    return out;
  });
}

StatusApplySummary StatusApplyEvent(Db& db, std::int64_t event_id, Millis now) {
  return guarded("StatusApplyEvent", [&] {
    std::vector<PendingRow> rows;
    {
      auto& q = db.stmt(std::string(kPendingColumns) + "WHERE event_id = ? AND applied_at IS NULL ORDER BY update_id");
      q.bind(1, event_id);
      while (q.executeStep()) rows.push_back(read_pending(q));
    }
    auto s = apply_rows(db, rows, now, false);
    auto& m = db.stmt("UPDATE status_events SET state = 'processed', processed_at = ? WHERE event_id = ? AND state = 'received'");
    m.bind(1, now);
    m.bind(2, event_id);
    m.exec();
    return s;
  });
}

std::vector<StatusApplySummary> StatusApplyEvents(Db& db, const std::vector<std::int64_t>& event_ids, Millis now) {
  return guarded("StatusApplyEvents", [&] {
    static const std::string kByEvent = std::string(kPendingColumns) + "WHERE event_id = ? AND applied_at IS NULL ORDER BY update_id";
    std::vector<StatusApplySummary> out;
    out.reserve(event_ids.size());
    std::vector<PendingRow> rows;
    std::string ids = "[";
    for (const std::int64_t id : event_ids) {
      rows.clear();
      auto& q = db.stmt(kByEvent);
      q.bind(1, id);
      while (q.executeStep()) rows.push_back(read_pending(q));
      out.push_back(apply_rows(db, rows, now, false));
      if (ids.size() > 1) ids += ',';
      ids += std::to_string(id);
    }
    ids += ']';
    if (!event_ids.empty()) {
      auto& m = db.stmt(
          "UPDATE status_events SET state = 'processed', processed_at = ? "
          "WHERE event_id IN (SELECT value FROM json_each(?)) AND state = 'received'");
      m.bind(1, now);
      m.bind(2, ids);
      m.exec();
    }
    return out;
  });
}

StatusApplySummary StatusApplyPending(Db& db, Millis now, std::int64_t limit) {
  return guarded("StatusApplyPending", [&] {
    // One bounded batch from the front of the queue (sql/010: never tried first, then the
    // longest untried), read through its partial index: a backlog of a million statuses that
    // never match costs `limit` rows per call, not a reload of all of them.
    const std::int64_t n = limit < 0 ? -1 : limit;
    std::vector<PendingRow> rows;
    {
      auto& q = db.stmt(std::string(kPendingColumns) + "WHERE applied_at IS NULL ORDER BY checked_at, update_id LIMIT ?");
      q.bind(1, n);
      while (q.executeStep()) rows.push_back(read_pending(q));
    }
    auto s = apply_rows(db, rows, now, true);
    // Events a crash left `received` (their statuses are in status_updates already), bounded too.
    auto& m = db.stmt(
        "UPDATE status_events SET state = 'processed', processed_at = ?1 WHERE event_id IN "
        "(SELECT event_id FROM status_events WHERE state = 'received' LIMIT ?2)");
    m.bind(1, now);
    m.bind(2, n);
    m.exec();
    return s;
  });
}

std::optional<StatusMatch> StatusFindForDelivery(Db& db, std::int64_t delivery_id) {
  return guarded("StatusFindForDelivery", [&]() -> std::optional<StatusMatch> {
    auto& q = db.stmt(
        "SELECT provider_message_id, status, provider_at, error_code FROM status_updates WHERE delivery_id = ? "
        "UNION SELECT provider_message_id, status, provider_at, error_code FROM status_updates WHERE matched_delivery_id = ?");
    q.bind(1, delivery_id);
    q.bind(2, delivery_id);
    StatusFold fold;
    struct Seen {
      std::string pmid;
      Millis at = 0;
      std::optional<long> code;
    };
    std::optional<Seen> by_status[4];  // indexed by MessageStatus
    std::optional<Millis> earliest_progress;
    bool any = false;
    while (q.executeStep()) {
      auto s = message_status_from_string(q.getColumn(1).getString());
      if (!s) continue;
      any = true;
      fold = fold_status(fold, *s);
      Seen seen{q.getColumn(0).getString(), q.getColumn(2).getInt64(), std::nullopt};
      if (!q.getColumn(3).isNull()) seen.code = static_cast<long>(q.getColumn(3).getInt64());
      auto& slot = by_status[static_cast<int>(*s)];
      if (!slot || seen.at < slot->at) slot = seen;
      if (*s != MessageStatus::failed && (!earliest_progress || seen.at < *earliest_progress)) earliest_progress = seen.at;
    }
    if (!any) return std::nullopt;
    const MessageStatus outcome = *fold.outcome();
    const auto& best = *by_status[static_cast<int>(outcome)];
    StatusMatch m;
    m.provider_message_id = best.pmid;
    m.status = outcome;
    m.provider_at = outcome == MessageStatus::failed ? best.at : earliest_progress.value_or(best.at);
    if (outcome == MessageStatus::failed) m.error_code = best.code;
    return m;
  });
}

StatusCounts StatusCountAll(Db& db) {
  return guarded("StatusCountAll", [&] {
    StatusCounts c;
    auto& q = db.stmt(
        "SELECT (SELECT COUNT(*) FROM status_events), (SELECT COUNT(*) FROM status_events WHERE state = 'malformed'), "
        "(SELECT COUNT(*) FROM status_updates), (SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL)");
    q.executeStep();
    c.events = q.getColumn(0).getInt64();
    c.malformed_events = q.getColumn(1).getInt64();
    c.updates = q.getColumn(2).getInt64();
    c.pending = q.getColumn(3).getInt64();
    q.reset();
    return c;
  });
}

}  // namespace daybreak::store
