#include "store/pg_status.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_set>

#include "store/db.hpp"
#include "store/pg_ledger.hpp"
#include "store/reports.hpp"

namespace daybreak::store {
namespace pg_status_detail {

// StatusExpirePendingBatch's statement: the receiver's pending pass and `daybreak retention`.
const std::string kExpirePending =
    "UPDATE status_updates SET applied_at = $1, outcome = 'expired' WHERE update_id IN "
    "(SELECT update_id FROM status_updates WHERE applied_at IS NULL AND received_at < $2 LIMIT $3)";

std::string n(std::int64_t v) { return std::to_string(v); }

/// An element of a PostgreSQL array literal: NULL, or double-quoted with " and \ escaped.
void array_elem(std::string& out, const std::optional<std::string>& v) {
  if (out.size() > 1) out += ',';
  if (!v) {
    out += "NULL";
    return;
  }
  out += '"';
  for (char ch : *v) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  out += '"';
}

/// A PostgreSQL array literal builder ('{"a",NULL,"b"}').
struct Arr {
  std::string s = "{";
  void add(const std::optional<std::string>& v) { array_elem(s, v); }
  void add(std::int64_t v) { array_elem(s, std::to_string(v)); }
  void add_opt(const std::optional<std::int64_t>& v) { array_elem(s, v ? std::optional<std::string>(std::to_string(*v)) : std::nullopt); }
  std::string done() const { return s + "}"; }
};

/// `bytes` as a bytea parameter in text form: \x and hex.
std::string bytea_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 + bytes.size() * 2);
  out += "\\x";
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0x0f];
  }
  return out;
}

/// Runs what the pipeline queued; throws StoreError (transient as PostgreSQL says) at the first
/// statement that failed.
std::vector<PgResult> sync_all(PgConn& c) {
  auto answers = c.pipeline_sync();
  std::vector<PgResult> out;
  out.reserve(answers.size());
  for (auto& a : answers) {
    if (!a.ok) throw StoreError(a.error, a.transient ? SQLITE_BUSY : 0);
    out.push_back(std::move(a.result));
  }
  return out;
}

/// The columns of a delivery applying reads and writes (status_events.cpp's Target, and the
/// columns its UPDATEs set, so the fold happens in memory).
struct Target {
  std::int64_t delivery_id = 0;
  std::int64_t run_id = 0;
  DeliveryState state = DeliveryState::planned;
  std::string advisor_id;
  std::string channel;
  std::optional<std::string> provider_message_id;
  std::optional<Millis> accepted_at, delivered_at, read_at;
  std::optional<std::string> last_error;
  std::optional<std::string> claim_owner;
  bool reconciled_before = false;  ///< a status was applied to it with outcome 'reconciled'
  bool dirty = false;
};

std::optional<Millis> fold_min(const std::optional<Millis>& cur, Millis at) { return cur ? std::min(*cur, at) : at; }

/// Prefix of last_error values written from a `failed` status (as status_events.cpp).
constexpr std::string_view kFailedPrefix = "status failed: ";

const std::string kPendingColumns =
    "SELECT update_id, provider_message_id, delivery_id, status, provider_at, error_code, error_title, event_id "
    "FROM status_updates ";

}  // namespace pg_status_detail

/// A stored status waiting to be applied (status_events.cpp's PendingRow), with its event.
struct PgStatusStore::Row {
  std::int64_t update_id = 0;
  std::string provider_message_id;
  std::optional<std::int64_t> delivery_id;
  MessageStatus status = MessageStatus::sent;
  Millis provider_at = 0;
  std::optional<long> error_code;
  std::string error_title;
  std::int64_t event_id = 0;
  bool done = false;  ///< applied (any outcome but pending)
};

std::string pg_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (c == 0 || len == 0) {
      out += '?';
      ++i;
      continue;
    }
    if (i + len > text.size()) break;  // a sequence cut at the end (a bounded excerpt)
    bool ok = true;
    for (std::size_t k = 1; k < len; ++k) ok = ok && (static_cast<unsigned char>(text[i + k]) >> 6) == 0x2;
    // Overlong forms, surrogates and code points past U+10FFFF are refused by PostgreSQL too.
    if (ok && len == 2 && c < 0xc2) ok = false;
    if (ok && len == 3) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) ok = false;
    }
    if (ok && len == 4) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      if ((c == 0xf0 && c1 < 0x90) || c > 0xf4 || (c == 0xf4 && c1 >= 0x90)) ok = false;
    }
    if (!ok) {
      out += '?';
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

PgStatusStore::PgStatusStore(const std::string& url, bool migrate) : c_(std::make_unique<PgConn>(url)) {
  if (migrate) pg_migrate(*c_);
}
PgStatusStore::~PgStatusStore() = default;

namespace pg_status_detail {

std::vector<PgStatusStore::Row> read_rows(const PgResult& r) {
  std::vector<PgStatusStore::Row> rows;
  rows.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    PgStatusStore::Row u;
    u.update_id = r.i64(i, 0);
    u.provider_message_id = r.str(i, 1);
    u.delivery_id = r.opt_i64(i, 2);
    u.status = message_status_from_string(r.str(i, 3)).value_or(MessageStatus::sent);
    u.provider_at = r.i64(i, 4);
    if (auto code = r.opt_i64(i, 5)) u.error_code = static_cast<long>(*code);
    u.error_title = r.opt_str(i, 6).value_or("");
    u.event_id = r.i64(i, 7);
    rows.push_back(std::move(u));
  }
  return rows;
}

// Every event of a batch in one statement: the bodies inserted unless the same bytes are stored
// (ON CONFLICT), each request's event id and whether it is new in the order given; of the same
// bytes twice in a batch only the first is new (as one INSERT after another on SQLite).
const std::string kEventsInsert =
    "WITH u AS (SELECT s, b, st, er, o, encode(sha256(b), 'hex') AS h FROM unnest($4::text[], $5::bytea[], $6::text[], "
    "$7::text[]) WITH ORDINALITY AS x(s, b, st, er, o)), "
    "ins AS (INSERT INTO status_events (received_at, source, source_ref, signature, verified, body, body_sha256, state, error) "
    "SELECT $1::bigint, $2::text, $3::text, s, 1, b, h, st, er FROM u ORDER BY o "
    "ON CONFLICT (body_sha256) DO NOTHING RETURNING event_id, body_sha256) "
    "SELECT COALESCE(i.event_id, e.event_id), (i.event_id IS NOT NULL AND u.o = MIN(u.o) OVER (PARTITION BY u.h))::int "
    "FROM u LEFT JOIN ins i ON i.body_sha256 = u.h LEFT JOIN status_events e ON e.body_sha256 = u.h ORDER BY u.o";
// Every status of a batch in one statement; a (provider_message_id, status) already stored, or
// earlier in the same batch, is skipped (the first one wins, as one INSERT after another).
const std::string kUpdatesInsert =
    "INSERT INTO status_updates (event_id, provider_message_id, delivery_id, status, provider_at, phone_number_id, "
    "error_code, error_title, received_at) "
    "SELECT e, m, d, s, a, p, c, t, $9::bigint FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], "
    "$6::text[], $7::bigint[], $8::text[]) WITH ORDINALITY AS u(e, m, d, s, a, p, c, t, o) ORDER BY o "
    "ON CONFLICT (provider_message_id, status) DO NOTHING RETURNING event_id";
const std::string kRejectsInsert =
    "INSERT INTO status_rejects (event_id, received_at, path, provider_message_id, reason, excerpt) "
    "SELECT e, $6::bigint, p, m, r, x FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) "
    "WITH ORDINALITY AS u(e, p, m, r, x, o) ORDER BY o";
const std::string kRejectedCount =
    "UPDATE status_events e SET rejected = u.n FROM unnest($1::bigint[], $2::int[]) AS u(id, n) WHERE e.event_id = u.id";

}  // namespace pg_status_detail

std::vector<PgStatusStored> PgStatusStore::store(const std::vector<PgStatusItem>& items, const std::string& source,
                                                 const std::string& source_ref, Millis now, std::string* apply_error) {
  using namespace pg_status_detail;
  std::vector<PgStatusStored> out;
  pg_transaction(*c_, [&] {
    out.assign(items.size(), PgStatusStored{});
    // 1. The raw events, all in one statement.
    const std::string src = pg_text(source), ref = pg_text(source_ref), at = n(now);
    Arr sigs, bodies, states, errors;
    for (const auto& it : items) {
      const bool malformed = it.malformed_error && it.malformed_error->has_value();
      sigs.add(pg_text(it.signature));
      bodies.add(bytea_hex(it.body));
      states.add(std::string(malformed ? "malformed" : "received"));
      errors.add(malformed ? std::optional<std::string>(pg_text(**it.malformed_error)) : std::nullopt);
    }
    auto ev = c_->run("status_events_insert", kEventsInsert, {at, src, ref, sigs.done(), bodies.done(), states.done(), errors.done()});
    if (ev.rows() != static_cast<int>(items.size())) throw StoreError("PostgreSQL: status_events: a row per request expected", 0);
    for (std::size_t i = 0; i < items.size(); ++i) {
      // No id: the same bytes are being stored by another transaction right now; retried.
      if (ev.null(static_cast<int>(i), 0)) throw StoreError("PostgreSQL: status_events: a body stored concurrently", SQLITE_BUSY);
      out[i].event_id = ev.i64(static_cast<int>(i), 0);
      out[i].duplicate = ev.i64(static_cast<int>(i), 1) == 0;
    }
    // 2. Statuses and rejected elements of the new events, every one of the batch at once.
    Arr ue, um, ud, us, ua, up, uc, ut;
    Arr re, rp, rm, rr, rx;
    Arr ce, cn;
    std::size_t n_updates = 0, n_rejects = 0, n_counts = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& it = items[i];
      if (out[i].duplicate || (it.malformed_error && it.malformed_error->has_value())) continue;
      if (it.updates) {
        for (const auto& u : *it.updates) {
          ue.add(out[i].event_id);
          um.add(pg_text(u.provider_message_id));
          ud.add_opt(u.delivery_id);
          us.add(std::string(to_string(u.status)));
          ua.add(u.provider_at);
          up.add(pg_text(u.phone_number_id));
          uc.add_opt(u.error_code ? std::optional<std::int64_t>(*u.error_code) : std::nullopt);
          ut.add(u.error_title.empty() ? std::nullopt : std::optional<std::string>(pg_text(u.error_title)));
          ++n_updates;
        }
      }
      if (it.rejected_total > 0) {
        std::size_t kept = 0;
        if (it.rejects) {
          for (const auto& r : *it.rejects) {
            if (kept++ >= kRejectsPerBodyMax) break;
            re.add(out[i].event_id);
            rp.add(pg_text(r.path.substr(0, kRejectTextMax)));
            rm.add(pg_text(r.provider_message_id.substr(0, kRejectTextMax)));
            rr.add(pg_text(r.reason.substr(0, kRejectTextMax)));
            rx.add(pg_text(r.excerpt.substr(0, kRejectTextMax)));
            ++n_rejects;
          }
        }
        ce.add(out[i].event_id);
        cn.add(static_cast<std::int64_t>(it.rejected_total));
        ++n_counts;
      }
    }
    if (n_updates + n_rejects + n_counts > 0) {
      if (n_updates > 0) {
        c_->pipeline_send("status_updates_insert", kUpdatesInsert,
                          {ue.done(), um.done(), ud.done(), us.done(), ua.done(), up.done(), uc.done(), ut.done(), at});
      }
      if (n_rejects > 0) {
        c_->pipeline_send("status_rejects_insert", kRejectsInsert, {re.done(), rp.done(), rm.done(), rr.done(), rx.done(), at});
      }
      if (n_counts > 0) c_->pipeline_send("status_rejected_count", kRejectedCount, {ce.done(), cn.done()});
      auto r = sync_all(*c_);
      if (n_updates > 0) {
        std::unordered_map<std::int64_t, int> per_event;
        for (int k = 0; k < r[0].rows(); ++k) ++per_event[r[0].i64(k, 0)];
        for (auto& o : out) {
          if (!o.duplicate) o.new_updates = per_event[o.event_id];
        }
      }
    }
    // 3. Applied in the same transaction, under a savepoint (store_callbacks on SQLite).
    std::vector<std::int64_t> ids;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!(items[i].malformed_error && items[i].malformed_error->has_value())) ids.push_back(out[i].event_id);
    }
    if (ids.empty()) return;
    c_->exec("SAVEPOINT apply_statuses");
    try {
      Arr idarr;
      for (auto id : ids) idarr.add(id);
      static const std::string kProcessed =
          "UPDATE status_events SET state = 'processed', processed_at = $1 WHERE event_id = ANY($2::bigint[]) AND state = 'received'";
      std::vector<StatusApplySummary> per_event;
      apply_rows("status_of_events", "WHERE event_id = ANY($1::bigint[]) AND applied_at IS NULL ORDER BY update_id",
                 {idarr.done()}, ids, now, false, &per_event, {"status_events_processed", &kProcessed, {at, idarr.done()}});
      c_->exec("RELEASE SAVEPOINT apply_statuses");
      for (std::size_t i = 0, k = 0; i < items.size(); ++i) {
        if (!(items[i].malformed_error && items[i].malformed_error->has_value())) out[i].applied = per_event[k++];
      }
    } catch (const std::exception& e) {
      c_->exec("ROLLBACK TO SAVEPOINT apply_statuses");
      c_->exec("RELEASE SAVEPOINT apply_statuses");
      for (std::size_t i = 0; i < items.size(); ++i) {
        out[i].applied = {};
        out[i].apply_failed = !(items[i].malformed_error && items[i].malformed_error->has_value());
      }
      if (apply_error) *apply_error = e.what();
    }
  });
  return out;
}

StatusApplySummary PgStatusStore::apply_pending(Millis now, std::int64_t limit, std::optional<Millis> expire_before,
                                                std::int64_t* expired) {
  using namespace pg_status_detail;
  StatusApplySummary s;
  pg_transaction(*c_, [&] {
    s = {};
    const PgParam lim = limit < 0 ? PgParam() : PgParam(n(limit));  // LIMIT NULL: every row
    if (expire_before) {
      auto e = c_->run("status_expire_pending", kExpirePending, {n(now), n(*expire_before), lim});
      if (expired) *expired = e.affected();
    }
    // Events a crash left `received` (their statuses are in status_updates already), bounded too.
    static const std::string kCrashProcessed =
        "UPDATE status_events SET state = 'processed', processed_at = $1 WHERE event_id IN "
        "(SELECT event_id FROM status_events WHERE state = 'received' LIMIT $2)";
    s = apply_rows("status_queue", "WHERE applied_at IS NULL ORDER BY checked_at NULLS FIRST, update_id LIMIT $1", {lim}, {},
                   now, true, nullptr, {"status_events_crash_processed", &kCrashProcessed, {n(now), lim}});
  });
  return s;
}

namespace pg_status_detail {

void count_outcome(StatusApplySummary& s, std::string_view outcome) {
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

}  // namespace pg_status_detail

StatusApplySummary PgStatusStore::apply_rows(const std::string& name, const std::string& where,
                                             const std::vector<PgParam>& params, const std::vector<std::int64_t>& event_order,
                                             Millis now, bool requeue, std::vector<StatusApplySummary>* per_event,
                                             const Tail& tail) {
  using namespace pg_status_detail;
  StatusApplySummary total;
  if (per_event) per_event->assign(event_order.size(), StatusApplySummary{});

  // One round trip: the statuses to apply (`where` over status_updates), the deliveries they name
  // (by our id or by the message id), locked until the commit so nothing moves them between this
  // read and the write (in id order: one lock order), and which of their messages a failed
  // status already moved to another channel. The three select the same rows: nothing else
  // writes them inside this transaction.
  const std::string sel = "SELECT delivery_id, provider_message_id FROM status_updates " + where;
  c_->pipeline_send((name + "_rows").c_str(), kPendingColumns + where, params);
  // (A UNION of the two matches, not an OR of two IN lists: the OR is a scan of every delivery.)
  c_->pipeline_send((name + "_targets").c_str(),
                    "WITH p AS (" + sel + "), ids AS (SELECT delivery_id AS id FROM p WHERE delivery_id IS NOT NULL "
                    "UNION SELECT d2.delivery_id FROM deliveries d2 JOIN p ON d2.provider_message_id = p.provider_message_id) "
                    "SELECT d.delivery_id, d.run_id, d.state, d.advisor_id, d.channel, "
                    "d.provider_message_id, d.accepted_at, d.delivered_at, d.read_at, d.last_error, d.claim_owner, "
                    "EXISTS (SELECT 1 FROM status_updates s WHERE s.matched_delivery_id = d.delivery_id AND "
                    "s.outcome = 'reconciled') FROM deliveries d WHERE d.delivery_id IN (SELECT id FROM ids) "
                    "ORDER BY d.delivery_id FOR UPDATE OF d",
                    params);
  c_->pipeline_send((name + "_rerouted").c_str(),
                    "WITH p AS (" + sel + ") SELECT DISTINCT provider_message_id FROM status_updates WHERE "
                    "provider_message_id IN (SELECT provider_message_id FROM p) AND status = 'failed' AND outcome = 'rerouted'",
                    params);
  auto first = sync_all(*c_);
  auto rows = read_rows(first[0]);
  std::vector<PgResult> pre;
  pre.push_back(std::move(first[1]));
  pre.push_back(std::move(first[2]));
  std::vector<Target> targets;
  targets.reserve(static_cast<std::size_t>(pre[0].rows()));
  std::unordered_map<std::int64_t, std::size_t> by_id;
  std::unordered_map<std::string, std::size_t> by_message;
  for (int i = 0; i < pre[0].rows(); ++i) {
    Target t;
    t.delivery_id = pre[0].i64(i, 0);
    t.run_id = pre[0].i64(i, 1);
    t.state = delivery_state_from_string(pre[0].str(i, 2)).value_or(DeliveryState::planned);
    t.advisor_id = pre[0].str(i, 3);
    t.channel = pre[0].str(i, 4);
    t.provider_message_id = pre[0].opt_str(i, 5);
    t.accepted_at = pre[0].opt_i64(i, 6);
    t.delivered_at = pre[0].opt_i64(i, 7);
    t.read_at = pre[0].opt_i64(i, 8);
    t.last_error = pre[0].opt_str(i, 9);
    t.claim_owner = pre[0].opt_str(i, 10);
    t.reconciled_before = pre[0].str(i, 11) == "t";
    by_id[t.delivery_id] = targets.size();
    if (t.provider_message_id) by_message.emplace(*t.provider_message_id, targets.size());
    targets.push_back(std::move(t));
  }
  std::unordered_set<std::string> rerouted;
  for (int i = 0; i < pre[1].rows(); ++i) rerouted.insert(pre[1].str(i, 0));

  struct Note {
    std::int64_t delivery_id, run_id;
    const char* kind;
  };
  std::vector<Note> notes;
  std::vector<WhatsAppHold> holds;
  Arr o_id, o_match, o_outcome, requeued;
  std::size_t n_outcomes = 0, n_requeued = 0;

  // status_events.cpp's apply_one, on the row in memory.
  auto apply_one = [&](const Row& u, Target& t) -> const char* {
    const bool progress = u.status != MessageStatus::failed;
    const auto next = delivery_state_after_status(t.state, u.status);
    const bool accepted_family = is_accepted_state(t.state);
    const bool reconcile = next && !accepted_family;
    auto set_message = [&] {
      if (!t.provider_message_id) {
        t.provider_message_id = u.provider_message_id;
        by_message.emplace(u.provider_message_id, by_id[t.delivery_id]);
      }
    };
    if (!progress) {
      const bool recordable = t.state == DeliveryState::accepted || t.state == DeliveryState::uncertain ||
                              t.state == DeliveryState::retry_wait;
      if (!recordable) return t.state == DeliveryState::delivered || t.state == DeliveryState::read ? "unchanged" : "ignored";
      std::string err = std::string(kFailedPrefix) + (u.error_code ? std::to_string(*u.error_code) : std::string("?"));
      if (!u.error_title.empty()) err += " " + u.error_title;
      t.last_error = std::move(err);
      set_message();
      t.dirty = true;
      if (auto until = whatsapp_hold_until(u.error_code, u.provider_at, now)) {
        holds.push_back(WhatsAppHold{t.advisor_id, *until, *u.error_code, t.delivery_id, now});
      }
      if (t.state == DeliveryState::accepted && t.channel == "whatsapp") notes.push_back({t.delivery_id, t.run_id, "status_failed"});
      return "error_recorded";
    }
    if (t.channel != "whatsapp" && rerouted.count(u.provider_message_id)) return "ignored";
    if (!next && !accepted_family) return "ignored";
    const bool sets_delivered = u.status == MessageStatus::delivered || u.status == MessageStatus::read;
    const bool sets_read = u.status == MessageStatus::read;
    const bool sets_accepted = reconcile || (accepted_family && t.reconciled_before);
    const bool clears_status_error = next && (*next == DeliveryState::delivered || *next == DeliveryState::read);
    t.state = next.value_or(t.state);
    set_message();
    if (sets_accepted) t.accepted_at = fold_min(t.accepted_at, u.provider_at);
    if (sets_delivered) t.delivered_at = fold_min(t.delivered_at, u.provider_at);
    if (sets_read) t.read_at = fold_min(t.read_at, u.provider_at);
    if (clears_status_error && t.last_error && t.last_error->starts_with(kFailedPrefix)) t.last_error.reset();
    if (reconcile) t.claim_owner.reset();
    t.dirty = true;
    if (reconcile) {
      notes.push_back({t.delivery_id, t.run_id, "status"});
      t.reconciled_before = true;
      return "reconciled";
    }
    return next ? "moved" : "unchanged";
  };

  auto apply_row = [&](Row& u) -> const char* {
    Target* t = nullptr;
    if (u.delivery_id) {
      if (auto it = by_id.find(*u.delivery_id); it != by_id.end()) t = &targets[it->second];
    }
    if (!t) {
      if (auto it = by_message.find(u.provider_message_id); it != by_message.end()) t = &targets[it->second];
    }
    if (!t || status_waits_for(t->state)) {
      if (requeue && !t) {
        requeued.add(u.update_id);
        ++n_requeued;
      }
      return "pending";
    }
    const char* outcome = apply_one(u, *t);
    u.done = true;
    o_id.add(u.update_id);
    o_match.add(t->delivery_id);
    o_outcome.add(std::string(outcome));
    ++n_outcomes;
    return outcome;
  };

  if (per_event) {
    // StatusApplyEvents: event by event in the order given (an id may repeat: its rows still
    // pending are tried again), each event's rows by update_id.
    std::map<std::int64_t, std::vector<std::size_t>> rows_of;
    for (std::size_t i = 0; i < rows.size(); ++i) rows_of[rows[i].event_id].push_back(i);
    for (std::size_t e = 0; e < event_order.size(); ++e) {
      auto it = rows_of.find(event_order[e]);
      if (it == rows_of.end()) continue;
      for (auto i : it->second) {
        if (rows[i].done) continue;
        const char* o = apply_row(rows[i]);
        count_outcome((*per_event)[e], o);
        count_outcome(total, o);
      }
    }
  } else {
    for (auto& u : rows) count_outcome(total, apply_row(u));
  }

  // Every change of this batch, written at once.
  Arr d_id, d_state, d_pmid, d_acc, d_del, d_read, d_err, d_claim;
  std::size_t n_dirty = 0;
  for (const auto& t : targets) {
    if (!t.dirty) continue;
    d_id.add(t.delivery_id);
    d_state.add(std::string(to_string(t.state)));
    d_pmid.add(t.provider_message_id);
    d_acc.add_opt(t.accepted_at);
    d_del.add_opt(t.delivered_at);
    d_read.add_opt(t.read_at);
    d_err.add(t.last_error);
    d_claim.add(t.claim_owner);
    ++n_dirty;
  }
  if (n_dirty > 0) {
    c_->pipeline_send("status_deliveries_update",
                      "UPDATE deliveries d SET state = u.s, provider_message_id = u.m, accepted_at = u.a, delivered_at = u.dl, "
                      "read_at = u.r, last_error = u.e, claim_owner = u.c, updated_at = $9 FROM unnest($1::bigint[], "
                      "$2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[]) "
                      "AS u(id, s, m, a, dl, r, e, c) WHERE d.delivery_id = u.id",
                      {d_id.done(), d_state.done(), d_pmid.done(), d_acc.done(), d_del.done(), d_read.done(), d_err.done(),
                       d_claim.done(), n(now)});
  }
  for (const auto& h : holds) {
    c_->pipeline_send("status_hold_set",
                      "INSERT INTO whatsapp_holds (advisor_id, until, error_code, delivery_id, set_at) VALUES ($1, $2, $3, $4, $5) "
                      "ON CONFLICT (advisor_id) DO UPDATE SET until = GREATEST(whatsapp_holds.until, excluded.until), "
                      "error_code = excluded.error_code, delivery_id = excluded.delivery_id, set_at = excluded.set_at",
                      {h.advisor_id, n(h.until), n(h.error_code), h.delivery_id ? PgParam(n(*h.delivery_id)) : std::nullopt,
                       n(h.set_at)});
  }
  if (!notes.empty()) {
    Arr nd, nr, nk;
    for (const auto& x : notes) {
      nd.add(x.delivery_id);
      nr.add(x.run_id);
      nk.add(std::string(x.kind));
    }
    c_->pipeline_send("status_change_notes",
                      "INSERT INTO delivery_changes (delivery_id, run_id, kind, at) SELECT d, r, k, $4::bigint FROM "
                      "unnest($1::bigint[], $2::bigint[], $3::text[]) WITH ORDINALITY AS u(d, r, k, o) ORDER BY o",
                      {nd.done(), nr.done(), nk.done(), n(now)});
  }
  if (n_outcomes > 0) {
    c_->pipeline_send("status_outcomes",
                      "UPDATE status_updates s SET applied_at = $4, matched_delivery_id = u.m, outcome = u.o FROM "
                      "unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, m, o) WHERE s.update_id = u.id",
                      {o_id.done(), o_match.done(), o_outcome.done(), n(now)});
  }
  if (n_requeued > 0) {
    c_->pipeline_send("status_requeue", "UPDATE status_updates SET checked_at = $1 WHERE update_id = ANY($2::bigint[])",
                      {n(now), requeued.done()});
  }
  c_->pipeline_send(tail.name, *tail.sql, tail.params);
  sync_all(*c_);
  return total;
}

StatusCounts PgStatusStore::counts() {
  using namespace pg_status_detail;
  auto r = c_->query(
      "SELECT (SELECT COUNT(*) FROM status_events), (SELECT COUNT(*) FROM status_events WHERE state = 'malformed'), "
      "(SELECT COUNT(*) FROM status_updates), (SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL)");
  StatusCounts c;
  c.events = r.i64(0, 0);
  c.malformed_events = r.i64(0, 1);
  c.updates = r.i64(0, 2);
  c.pending = r.i64(0, 3);
  return c;
}

std::unordered_map<std::string, Millis> pg_whatsapp_holds_active(PgConn& c, Millis at, std::optional<Millis> set_since) {
  using namespace pg_status_detail;
  auto r = c.run("whatsapp_holds_active", "SELECT advisor_id, until FROM whatsapp_holds WHERE until > $1 AND set_at >= $2",
                 {n(at), n(set_since.value_or(std::numeric_limits<std::int64_t>::min()))});
  std::unordered_map<std::string, Millis> out;
  for (int i = 0; i < r.rows(); ++i) out[r.str(i, 0)] = r.i64(i, 1);
  return out;
}

std::vector<StatusRejectRow> pg_status_reject_list(PgConn& c, Millis since, std::int64_t limit) {
  using namespace pg_status_detail;
  auto r = c.query(
      "SELECT reject_id, event_id, received_at, path, provider_message_id, reason, excerpt FROM status_rejects "
      "WHERE received_at >= $1 ORDER BY received_at DESC, reject_id DESC LIMIT $2",
      {n(since), n(limit)});
  std::vector<StatusRejectRow> out;
  for (int i = 0; i < r.rows(); ++i) {
    StatusRejectRow x;
    x.reject_id = r.i64(i, 0);
    x.event_id = r.i64(i, 1);
    x.received_at = r.i64(i, 2);
    x.reject.path = r.str(i, 3);
    x.reject.provider_message_id = r.str(i, 4);
    x.reject.reason = r.str(i, 5);
    x.reject.excerpt = r.str(i, 6);
    out.push_back(std::move(x));
  }
  return out;
}

std::int64_t pg_status_reject_count_since(PgConn& c, Millis since) {
  using namespace pg_status_detail;
  return c.query("SELECT COALESCE(SUM(rejected), 0) FROM status_events WHERE received_at >= $1", {n(since)}).i64(0, 0);
}

std::vector<HeldGroup> pg_held_delivery_groups(PgConn& c, const std::string& from_date) {
  static const std::string sql = pg_numbered_params(HeldDeliveryGroupsSql());
  auto r = c.run("held_delivery_groups", sql, {from_date});
  std::vector<HeldGroup> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.str(i, 0), r.str(i, 1), r.str(i, 2), r.i64(i, 3)});
  return out;
}

PgContentHeldReader::PgContentHeldReader(std::string url) : s_(std::make_shared<State>()) { s_->url = std::move(url); }

std::optional<std::vector<HeldGroup>> PgContentHeldReader::operator()(const std::string& from_date) {
  try {
    if (!s_->c) {
      s_->holds = false;  // a new session holds nothing
      s_->c = std::make_unique<PgConn>(s_->url);
    }
    if (!s_->holds) s_->holds = pg_try_lock_rule(*s_->c, "content_held");
    if (!s_->holds) return std::nullopt;
    return pg_held_delivery_groups(*s_->c, from_date);
  } catch (...) {
    // The session (and its lock, if it held it) is gone or in doubt: a new one next time.
    s_->c.reset();
    s_->holds = false;
    throw;
  }
}

bool PgContentHeldReader::holds_lock() const { return s_->holds; }

std::int64_t pg_status_expire_pending_batch(PgConn& c, Millis cutoff, Millis now, std::int64_t batch) {
  using namespace pg_status_detail;
  std::int64_t out = 0;
  pg_transaction(c, [&] { out = c.run("status_expire_pending", kExpirePending, {n(now), n(cutoff), n(batch)}).affected(); });
  return out;
}

std::int64_t pg_status_count_pending_older_than(PgConn& c, Millis cutoff) {
  using namespace pg_status_detail;
  return c.query("SELECT COUNT(*) FROM status_updates WHERE applied_at IS NULL AND received_at < $1", {n(cutoff)}).i64(0, 0);
}

StatusPurgeCounts pg_status_purge_batch(PgConn& c, Millis cutoff, std::int64_t batch) {
  using namespace pg_status_detail;
  StatusPurgeCounts out;
  pg_transaction(c, [&] {
    out = {};
    // The batch's events, oldest first (as StatusPurgeBatch), as one array for the three deletes.
    auto ids = c.query("SELECT COALESCE(array_agg(event_id), '{}') FROM (SELECT event_id FROM status_events WHERE received_at < $1 "
                       "ORDER BY received_at, event_id LIMIT $2) t",
                       {n(cutoff), n(batch)})
                   .str(0, 0);
    if (ids == "{}") return;
    out.updates = c.query("DELETE FROM status_updates WHERE event_id = ANY($1::bigint[])", {ids}).affected();
    c.query("DELETE FROM status_rejects WHERE event_id = ANY($1::bigint[])", {ids});
    out.events = c.query("DELETE FROM status_events WHERE event_id = ANY($1::bigint[])", {ids}).affected();
  });
  return out;
}

StatusPurgeCounts pg_status_count_older_than(PgConn& c, Millis cutoff) {
  using namespace pg_status_detail;
  auto r = c.query("SELECT (SELECT COUNT(*) FROM status_events WHERE received_at < $1), "
                   "(SELECT COUNT(*) FROM status_updates WHERE event_id IN (SELECT event_id FROM status_events WHERE received_at < $1))",
                   {n(cutoff)});
  return {r.i64(0, 0), r.i64(0, 1)};
}

std::int64_t pg_whatsapp_hold_purge_ended_batch(PgConn& c, Millis now, std::int64_t batch) {
  using namespace pg_status_detail;
  std::int64_t out = 0;
  pg_transaction(c, [&] {
    out = c.query("DELETE FROM whatsapp_holds WHERE advisor_id IN (SELECT advisor_id FROM whatsapp_holds WHERE until < $1 LIMIT $2)",
                  {n(now), n(batch)})
              .affected();
  });
  return out;
}

std::int64_t pg_whatsapp_hold_count_ended(PgConn& c, Millis now) {
  using namespace pg_status_detail;
  return c.query("SELECT COUNT(*) FROM whatsapp_holds WHERE until < $1", {n(now)}).i64(0, 0);
}

DeliveryTruth pg_delivery_truth_for_run(PgConn& c, std::int64_t run_id, Millis now) {
  using namespace pg_status_detail;
  static const std::string sql = "SELECT " + DeliveryTruthAggregatesSql(SqlDialect::postgresql) + " FROM deliveries WHERE run_id = $2";
  auto r = c.run("delivery_truth_for_run", sql, {n(now), n(run_id)});
  return DeliveryTruthFromColumns([&](int i) { return r.rows() == 0 ? std::int64_t{0} : r.opt_i64(0, i).value_or(0); });
}

std::unordered_map<std::string, Millis> PgDispatchLedger::load_whatsapp_holds(Millis now) {
  return pg_whatsapp_holds_active(*c_, now);
}

}  // namespace daybreak::store
