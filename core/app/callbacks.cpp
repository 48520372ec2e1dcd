#include "app/callbacks.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "app/errors.hpp"
#include "app/restore.hpp"
#include "channels/signature.hpp"
#include "channels/status_parse.hpp"
#include "domain/time.hpp"
#include "engine/alerts.hpp"
#include "store/dispatch_ledger.hpp"
#include "store/pg_operator.hpp"
#include "store/status_events.hpp"

namespace daybreak {
namespace fs = std::filesystem;

IngestOutcome verify_callback(const std::string& app_secret, const std::string& signature, std::string body,
                              VerifiedCallback& item) {
  IngestOutcome out;
  // Meta signs every POST with X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the raw
  // payload under the app secret ("Getting started with webhooks", event notifications, payload
  // validation: https://developers.facebook.com/docs/graph-api/webhooks/getting-started).
  // Verified over the bytes as received, before any parsing.
  if (app_secret.empty()) {
    out.http_status = 401;
    out.reason = "no app secret configured (whatsapp.app_secret): every callback is rejected";
    return out;
  }
  if (signature.empty()) {
    out.http_status = 401;
    out.reason = "missing X-Hub-Signature-256";
    return out;
  }
  if (!channels::verify_hub_signature(app_secret, body, signature)) {
    out.http_status = 401;
    out.reason = "X-Hub-Signature-256 does not match the body";
    return out;
  }
  auto parsed = channels::parse_status_webhook(body);
  item.signature = signature;
  item.malformed_error.reset();
  item.updates.clear();
  item.rejected.clear();
  item.rejected_total = 0;
  item.account_errors.clear();
  if (parsed) {
    item.updates = std::move(parsed->updates);
    item.rejected = std::move(parsed->rejected);
    item.rejected_total = parsed->rejected_total;
    item.account_errors = std::move(parsed->account_errors);
    out.rejected = item.rejected_total;
    out.account_errors = static_cast<int>(item.account_errors.size());
  } else {
    // Authentic but unreadable: keep it (it is evidence) and answer 200, since Meta would only
    // retry the same bytes; the error names the field.
    item.malformed_error = parsed.error().message;
    out.malformed = true;
    out.reason = parsed.error().message;
  }
  item.body = std::move(body);
  return out;
}

namespace {

/// The whatsapp_account_error alert for one event's `value.errors`: one alert per phone number
/// (else WABA) and day, its message naming the first error and how many came.
std::vector<engine::AlertCondition> account_error_conditions(const std::vector<AccountError>& errs, const Config& cfg,
                                                             Millis now) {
  std::vector<engine::AlertCondition> out;
  std::string day = "today";
  if (auto d = local_date(now, cfg.default_timezone)) day = format_date(*d);
  std::map<std::string, std::pair<const AccountError*, int>> by_id;
  for (const auto& e : errs) {
    const std::string id = !e.phone_number_id.empty() ? e.phone_number_id : !e.waba_id.empty() ? e.waba_id : "unknown";
    auto& slot = by_id[id];
    if (slot.first == nullptr) slot.first = &e;
    ++slot.second;
  }
  for (const auto& [id, v] : by_id) {
    const AccountError& e = *v.first;
    std::string msg = "CRITICAL: WhatsApp reports an account-level error for ";
    msg += e.phone_number_id.empty() ? "WABA " + (e.waba_id.empty() ? std::string("(unknown)") : e.waba_id)
                                     : "phone number id " + e.phone_number_id + (e.waba_id.empty() ? "" : " (WABA " + e.waba_id + ")");
    msg += ": " + (e.code ? std::to_string(*e.code) : std::string("no code")) + " " + (e.title.empty() ? "(no title)" : e.title);
    if (!e.details.empty()) msg += ": " + e.details;
    if (v.second > 1) msg += " (" + std::to_string(v.second) + " errors in this webhook)";
    msg += "; sends on this number may fail until it is fixed (Meta's error-codes reference lists the code)";
    out.push_back({"whatsapp_account_error", "date:" + day + "@" + id, msg});
  }
  return out;
}

}  // namespace

std::vector<IngestOutcome> store_callbacks(store::Db& db, const std::vector<const VerifiedCallback*>& items,
                                           const std::string& source, const std::string& source_ref, Millis now,
                                           spdlog::logger& log, const Config* cfg) {
  std::vector<IngestOutcome> outs(items.size());
  store::StatusEventStoreParams p;
  p.source = source;
  p.source_ref = source_ref;
  p.now = now;
  // Each request's event stored, its rejected elements and account-error alert; `store_updates`
  // stores its statuses (for a new, readable event). Returns the event.
  auto store_event = [&](std::size_t i, const auto& store_updates) {
    const VerifiedCallback& it = *items[i];
    IngestOutcome& out = outs[i];
    out = IngestOutcome{};
    p.signature = it.signature;
    p.body = it.body;
    p.malformed_error = it.malformed_error;
    if (it.malformed_error) {
      out.malformed = true;
      out.reason = *it.malformed_error;
    }
    auto stored = store::StatusEventStore(db, p);
    out.event_id = stored.event_id;
    out.duplicate = stored.duplicate;
    out.rejected = it.rejected_total;
    out.account_errors = static_cast<int>(it.account_errors.size());
    if (!stored.duplicate && !it.malformed_error) {
      store_updates(stored.event_id, it.updates, out);
      if (it.rejected_total > 0) store::StatusRejectsInsert(db, stored.event_id, it.rejected, it.rejected_total, now);
    }
    if (!stored.duplicate && cfg != nullptr && !it.account_errors.empty()) {
      // Raised in this transaction: the alert and its queued notifications commit with the event.
      engine::AlertEngine eng(cfg->alerts);
      for (const auto& c : account_error_conditions(it.account_errors, *cfg, now)) {
        auto change = eng.raise_event(db, c, now);
        log.error("callback event {}: {} (alert #{} {})", stored.event_id, c.message, change.alert_id,
                  engine::to_string(change.kind));
      }
    }
    return stored;
  };
  db.write_tx([&] {
    // 1. Durable: each raw event and its statuses, committed (with the whole batch) before any
    // 200, applied as they are stored (StatusUpdatesInsertApplied: each status row written once,
    // with its outcome), under a savepoint. A new event is stored already processed; a duplicate
    // gets StatusApplyEvents, which applies what of its event is still pending.
    db.exec("SAVEPOINT store_applied");
    try {
      p.processed = true;
      std::vector<std::int64_t> again;  // duplicates (their event's statuses that are still pending)
      std::vector<std::size_t> again_at;
      for (std::size_t i = 0; i < items.size(); ++i) {
        auto stored = store_event(i, [&](std::int64_t event_id, const std::vector<StatusUpdate>& updates, IngestOutcome& out) {
          auto r = store::StatusUpdatesInsertApplied(db, event_id, updates, now);
          out.new_updates = r.inserted;
          out.applied = r.applied;
        });
        if (stored.duplicate && !outs[i].malformed) {
          again.push_back(stored.event_id);
          again_at.push_back(i);
        }
      }
      if (!again.empty()) {
        auto applied = store::StatusApplyEvents(db, again, now);
        for (std::size_t k = 0; k < again.size(); ++k) outs[again_at[k]].applied = applied[k];
      }
      db.exec("RELEASE store_applied");
      return;
    } catch (const std::exception& e) {
      db.exec("ROLLBACK TO store_applied");
      db.exec("RELEASE store_applied");
      log.warn("storing and applying {} callback event(s) together failed ({}); storing them, then applying", outs.size(),
               e.what());
    }
    // The two-step form, whose applying may fail alone. 1. Stored: each event and its statuses.
    p.processed = false;
    for (std::size_t i = 0; i < items.size(); ++i) {
      store_event(i, [&](std::int64_t event_id, const std::vector<StatusUpdate>& updates, IngestOutcome& out) {
        out.new_updates = store::StatusUpdatesInsert(db, event_id, updates, now);
      });
    }
    // 2. Applied in the same transaction, under a savepoint: a failure here rolls back only the
    // applying and loses nothing (the statuses stay pending and StatusApplyPending takes them).
    db.exec("SAVEPOINT apply_statuses");
    try {
      std::vector<std::int64_t> ids;
      ids.reserve(outs.size());
      for (const auto& out : outs) {
        if (!out.malformed) ids.push_back(out.event_id);
      }
      auto applied = store::StatusApplyEvents(db, ids, now);
      for (std::size_t i = 0, k = 0; i < outs.size(); ++i) {
        if (!outs[i].malformed) outs[i].applied = applied[k++];
      }
      db.exec("RELEASE apply_statuses");
    } catch (const std::exception& e) {
      db.exec("ROLLBACK TO apply_statuses");
      db.exec("RELEASE apply_statuses");
      for (auto& out : outs) {
        out.applied = {};
        out.apply_failed = !out.malformed;
      }
      log.warn("{} callback event(s) stored; applying them failed and is left for later: {}", outs.size(), e.what());
    }
  });
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const auto& out = outs[i];
    if (out.malformed) log.warn("callback event {} stored but not applied: {}", out.event_id, out.reason);
    if (out.rejected > 0 && !out.duplicate) {
      const auto& r = items[i]->rejected;
      log.warn("callback event {}: {} element(s) rejected and stored (`daybreak status rejected`), the rest applied; first: {}",
               out.event_id, out.rejected, r.empty() ? std::string("?") : r.front().reason);
    }
  }
  return outs;
}

std::vector<IngestOutcome> store_callbacks_pg(store::PgStatusStore& pg, const std::vector<const VerifiedCallback*>& items,
                                              const std::string& source, const std::string& source_ref, Millis now,
                                              spdlog::logger& log, store::Db* alerts_db, const Config* cfg) {
  std::vector<store::PgStatusItem> in;
  in.reserve(items.size());
  for (const auto* it : items) {
    in.push_back(store::PgStatusItem{it->signature, it->body, &it->malformed_error, &it->updates, &it->rejected,
                                     it->rejected_total});
  }
  std::string apply_error;
  auto stored = pg.store(in, source, source_ref, now, &apply_error);
  std::vector<IngestOutcome> outs(items.size());
  bool apply_failed = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const VerifiedCallback& it = *items[i];
    IngestOutcome& out = outs[i];
    if (it.malformed_error) {
      out.malformed = true;
      out.reason = *it.malformed_error;
    }
    out.event_id = stored[i].event_id;
    out.duplicate = stored[i].duplicate;
    out.rejected = it.rejected_total;
    out.account_errors = static_cast<int>(it.account_errors.size());
    out.new_updates = stored[i].new_updates;
    out.applied = stored[i].applied;
    out.apply_failed = stored[i].apply_failed;
    apply_failed = apply_failed || out.apply_failed;
    if (out.duplicate || it.account_errors.empty() || cfg == nullptr) continue;
    // Committed in PostgreSQL; the alert goes where alerts are kept (the SQLite file).
    for (const auto& c : account_error_conditions(it.account_errors, *cfg, now)) {
      if (alerts_db == nullptr) {
        log.error("callback event {}: {} (no alert raised: the SQLite file that keeps alerts is absent)", out.event_id, c.message);
        continue;
      }
      try {
        engine::AlertEngine eng(cfg->alerts);
        engine::AlertChange change;
        alerts_db->write_tx([&] { change = eng.raise_event(*alerts_db, c, now); });
        log.error("callback event {}: {} (alert #{} {})", out.event_id, c.message, change.alert_id, engine::to_string(change.kind));
      } catch (const std::exception& e) {
        log.error("callback event {}: {} (raising its alert failed: {})", out.event_id, c.message, e.what());
      }
    }
  }
  if (apply_failed) {
    log.warn("{} callback event(s) stored; applying them failed and is left for later: {}", outs.size(), apply_error);
  }
  for (std::size_t i = 0; i < outs.size(); ++i) {
    const auto& out = outs[i];
    if (out.malformed) log.warn("callback event {} stored but not applied: {}", out.event_id, out.reason);
    if (out.rejected > 0 && !out.duplicate) {
      const auto& r = items[i]->rejected;
      log.warn("callback event {}: {} element(s) rejected and stored (`daybreak status rejected`), the rest applied; first: {}",
               out.event_id, out.rejected, r.empty() ? std::string("?") : r.front().reason);
    }
  }
  return outs;
}

IngestOutcome ingest_callback(store::Db& db, const std::string& app_secret, const std::string& signature,
                              const std::string& body, const std::string& source, const std::string& source_ref,
                              Millis now, spdlog::logger& log, const Config* cfg) {
  VerifiedCallback item;
  IngestOutcome out = verify_callback(app_secret, signature, body, item);
  if (out.http_status != 200) return out;
  return store_callbacks(db, {&item}, source, source_ref, now, log, cfg).front();
}

HeadVerdict judge_request_head(std::string_view method, std::optional<std::string_view> content_length,
                               std::optional<std::string_view> transfer_encoding,
                               std::optional<std::string_view> content_encoding, std::size_t max_body_bytes) {
  HeadVerdict v;
  auto trim = [](std::string_view x) {
    while (!x.empty() && (x.front() == ' ' || x.front() == '\t')) x.remove_prefix(1);
    while (!x.empty() && (x.back() == ' ' || x.back() == '\t')) x.remove_suffix(1);
    return x;
  };
  auto iequals = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  const bool is_post = method == "POST";
  if (!is_post && method != "GET" && method != "HEAD") {
    v.http_status = 405;
    v.reason = "method " + std::string(method) + " not allowed: GET (handshake, /healthz) and POST (callbacks) only";
    return v;
  }
  if (transfer_encoding) {
    v.http_status = 411;
    v.reason = "Transfer-Encoding \"" + std::string(trim(*transfer_encoding)) + "\" is not accepted: send the body with a Content-Length";
    return v;
  }
  if (content_encoding && !trim(*content_encoding).empty() && !iequals(trim(*content_encoding), "identity")) {
    v.http_status = 415;
    v.reason = "Content-Encoding \"" + std::string(trim(*content_encoding)) + "\" is not accepted: send the body uncompressed";
    return v;
  }
  if (content_length) {
    const std::string_view text = trim(*content_length);
    std::size_t n = 0;
    bool ok = !text.empty() && text.size() <= 18;
    for (char c : text) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    if (!ok) {
      v.http_status = 400;
      v.reason = "Content-Length \"" + std::string(text.substr(0, 32)) + "\" is not a number";
      return v;
    }
    if (n > max_body_bytes) {
      v.http_status = 413;
      v.reason = "Content-Length " + std::to_string(n) + " is over the limit of " + std::to_string(max_body_bytes) +
                 " bytes (callbacks.max_body_bytes)";
      return v;
    }
    v.content_length = n;
  } else if (is_post) {
    v.http_status = 411;
    v.reason = "a POST must carry Content-Length";
    return v;
  }
  return v;
}

HandshakeReply verify_handshake(const std::string& configured_token, const std::string& mode, const std::string& token,
                                const std::string& challenge) {
  HandshakeReply r;
  if (configured_token.empty() || mode != "subscribe" || !channels::constant_time_equal(token, configured_token)) {
    r.http_status = 403;
    r.body = "forbidden\n";
    return r;
  }
  r.http_status = 200;
  r.body = challenge;
  return r;
}

CallbackReceiver::CallbackReceiver(store::Db* db, const Config& cfg, const Clock& clock, std::shared_ptr<spdlog::logger> log,
                                   std::string spool_dir, std::unique_ptr<store::PgStatusStore> pg)
    : db_(db),
      pg_(std::move(pg)),
      cfg_(cfg),
      app_secret_(cfg.whatsapp.app_secret.value()),
      verify_token_(cfg.whatsapp.verify_token.value()),
      unsubscribe_secret_(cfg.unsubscribe.secret.configured() ? cfg.unsubscribe.secret.value() : std::string()),
      clock_(clock),
      log_(std::move(log)),
      spool_dir_(std::move(spool_dir)) {}

CallbackReceiver::~CallbackReceiver() { stop(); }

void CallbackReceiver::start(std::chrono::milliseconds pending_interval) {
  if (!database_mode()) return;
  std::lock_guard lock(q_mu_);
  if (running_) return;
  running_ = true;
  stopping_ = false;
  writer_ = std::thread([this, pending_interval] { writer_loop(pending_interval); });
  if (pg_ != nullptr) return;  // the SQLite file takes no status writes: no checkpointer
  {
    std::lock_guard db_lock(db_mu_);
    db_->exec("PRAGMA wal_autocheckpoint=0");  // checkpoint_loop takes them
    // Counts the WAL's frames after each commit (replaces the auto-checkpoint's hook, which
    // the pragma above removed; stop() puts it back).
    wal_frames_ = 0;
    sqlite3_wal_hook(
        db_->raw().getHandle(),
        [](void* self, sqlite3*, const char*, int frames) {
          static_cast<CallbackReceiver*>(self)->wal_frames_.store(frames, std::memory_order_relaxed);
          return SQLITE_OK;
        },
        this);
  }
  checkpointer_ = std::thread([this] { checkpoint_loop(); });
}

void CallbackReceiver::restart_wal_if_long() {
  // dispatch's writer on the same file leaves the WAL to this receiver while it restarts it here.
  static_assert(store::SqliteLedgerOptions{}.wal_autocheckpoint_frames > kWalRestartFrames);
  const int frames = wal_frames_.load(std::memory_order_relaxed);
  if (pg_ != nullptr || db_ == nullptr || frames < kWalRestartFrames) return;
  if (frames - wal_backfilled_.load(std::memory_order_relaxed) > kWalRestartGap && frames < 2 * kWalRestartFrames) {
    // Too much left to copy for a short pause: the checkpointer runs now (and again, each run
    // shorter, until what is left is small), while the writer goes on.
    std::lock_guard lock(q_mu_);
    if (!checkpoint_now_) {
      checkpoint_now_ = true;
      stop_cv_.notify_all();
    }
    return;
  }
  std::lock_guard db_lock(db_mu_);
  try {
    // Between transactions, so nothing of ours pins the WAL: this copies the few frames the
    // checkpointer has not (it copied the rest), and the next commit starts the WAL over.
    db_->exec("PRAGMA wal_checkpoint(PASSIVE)");
    wal_frames_ = 0;
    wal_backfilled_ = 0;
  } catch (const std::exception& e) {
    log_->warn("WAL checkpoint failed, will retry: {}", e.what());
  }
}

void CallbackReceiver::checkpoint_loop() {
  std::unique_ptr<store::Db> db;
  try {
    store::OpenOptions o;
    o.migrate = false;
    o.cache_kib = 2048;
    db = std::make_unique<store::Db>(db_->path(), o);
  } catch (const std::exception& e) {
    log_->warn("cannot open a checkpoint connection ({}); the writer checkpoints itself", e.what());
    std::lock_guard db_lock(db_mu_);
    db_->exec("PRAGMA wal_autocheckpoint=1000");
    return;
  }
  std::unique_lock lock(q_mu_);
  while (true) {
    stop_cv_.wait_for(lock, kCheckpointInterval, [&] { return stopping_ || checkpoint_now_; });
    if (stopping_) break;
    checkpoint_now_ = false;
    lock.unlock();
    try {
      // (busy, frames in the WAL, frames copied): the writer reads how much is left.
      SQLite::Statement q(db->raw(), "PRAGMA wal_checkpoint(PASSIVE)");
      if (q.executeStep() && q.getColumn(0).getInt() == 0) wal_backfilled_.store(q.getColumn(2).getInt(), std::memory_order_relaxed);
    } catch (const std::exception& e) {
      log_->warn("WAL checkpoint failed, will retry: {}", e.what());
    }
    lock.lock();
  }
}

void CallbackReceiver::stop() {
  {
    std::lock_guard lock(q_mu_);
    if (!running_) return;
    stopping_ = true;
  }
  q_cv_.notify_all();
  stop_cv_.notify_all();
  writer_.join();
  if (checkpointer_.joinable()) {
    checkpointer_.join();
    std::lock_guard db_lock(db_mu_);
    db_->exec("PRAGMA wal_autocheckpoint=1000");  // SQLite's default, as every connection but dispatch's has
  }
  std::lock_guard lock(q_mu_);
  running_ = false;
}

std::optional<IngestOutcome> CallbackReceiver::begin(const std::string& signature, std::string body, VerifiedCallback& item) {
  if (!database_mode()) {
    // Spool mode: verify here too, so a forged request never reaches the disk; `ingest`
    // verifies again before storing.
    IngestOutcome out;
    if (app_secret_.empty() || signature.empty() || !channels::verify_hub_signature(app_secret_, body, signature)) {
      out.http_status = 401;
      out.reason = app_secret_.empty() ? "no app secret configured" : "missing or wrong X-Hub-Signature-256";
    } else {
      std::uint64_t seq = 0;
      {
        std::lock_guard lock(mu_);
        seq = seq_++;
      }
      out.reason = spool_write(spool_dir_, signature, body, clock_.now(), seq);
    }
    count(out);
    return out;
  }
  IngestOutcome out = verify_callback(app_secret_, signature, std::move(body), item);
  if (out.http_status != 200) {
    count(out);
    return out;
  }
  return std::nullopt;
}

void CallbackReceiver::submit(VerifiedCallback item, Done done) {
  {
    std::lock_guard lock(q_mu_);
    if (running_ && !stopping_) {
      queue_.push_back(Queued{std::move(item), std::move(done)});
      if (queue_.size() == 1) q_cv_.notify_one();
      return;
    }
  }
  IngestOutcome out;
  out.http_status = 503;
  out.reason = "the receiver is stopping; retry";
  done(out);
}

IngestOutcome CallbackReceiver::post(const std::string& signature, const std::string& body) {
  VerifiedCallback item;
  if (auto out = begin(signature, body, item)) return *out;
  bool threaded = false;
  {
    std::lock_guard lock(q_mu_);
    threaded = running_ && !stopping_;
  }
  if (!threaded) {
    // Not started (tests, tools): store inline.
    Queued q{std::move(item), nullptr};
    IngestOutcome result;
    q.done = [&](const IngestOutcome& o) { result = o; };
    std::vector<Queued> batch;
    batch.push_back(std::move(q));
    commit_batch(batch);
    return result;
  }
  std::mutex m;
  std::condition_variable cv;
  std::optional<IngestOutcome> result;
  submit(std::move(item), [&](const IngestOutcome& o) {
    std::lock_guard lock(m);
    result = o;
    cv.notify_one();
  });
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return result.has_value(); });
  return *result;
}

void CallbackReceiver::writer_loop(std::chrono::milliseconds pending_interval) {
  auto next_pending = std::chrono::steady_clock::now() + pending_interval;
  std::vector<Queued> batch;
  batch.reserve(kMaxBatch);
  std::unique_lock lock(q_mu_);
  while (true) {
    q_cv_.wait_until(lock, next_pending, [&] { return !queue_.empty() || stopping_; });
    if (!queue_.empty()) {
      // Group commit: everything that queued while the previous batch committed, in one transaction.
      const std::size_t n = std::min(queue_.size(), kMaxBatch);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      commit_batch(batch);
      batch.clear();
      restart_wal_if_long();  // after the batch was answered
      lock.lock();
      continue;  // drain the queue before anything else
    }
    if (stopping_) break;
    if (std::chrono::steady_clock::now() >= next_pending) {
      lock.unlock();
      try {
        apply_pending();
      } catch (const std::exception& e) {
        log_->warn("applying pending statuses failed, will retry: {}", e.what());
      }
      lock.lock();
      next_pending = std::chrono::steady_clock::now() + pending_interval;
    }
  }
}

void CallbackReceiver::commit_batch(std::vector<Queued>& batch) {
  std::vector<const VerifiedCallback*> items;
  items.reserve(batch.size());
  for (const auto& q : batch) items.push_back(&q.item);
  std::vector<IngestOutcome> outs;
  {
    std::lock_guard lock(db_mu_);
    const Millis now = clock_.now();
    auto store_some = [&](const std::vector<const VerifiedCallback*>& some) {
      return pg_ ? store_callbacks_pg(*pg_, some, "receiver", "", now, *log_, db_, &cfg_)
                 : store_callbacks(*db_, some, "receiver", "", now, *log_, &cfg_);
    };
    try {
      outs = store_some(items);
    } catch (const std::exception& e) {
      if (items.size() == 1) {
        // Not stored: 500 makes Meta (and the simulator) retry the request later.
        log_->error("storing a callback failed (answered 500; the sender retries): {}", e.what());
        outs.assign(1, IngestOutcome{});
        outs[0].http_status = 500;
        outs[0].reason = "internal error";
      } else {
        // One request must not fail its neighbours: each on its own.
        log_->warn("storing a batch of {} callbacks failed ({}); storing them one by one", items.size(), e.what());
        outs.clear();
        for (const auto* it : items) {
          try {
            outs.push_back(store_some({it}).front());
          } catch (const std::exception& e1) {
            log_->error("storing a callback failed (answered 500; the sender retries): {}", e1.what());
            IngestOutcome o;
            o.http_status = 500;
            o.reason = "internal error";
            outs.push_back(o);
          }
        }
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    ++batches_;
  }
  // Committed: only now may each request be answered.
  for (std::size_t i = 0; i < batch.size(); ++i) {
    count(outs[i]);
    if (batch[i].done) batch[i].done(outs[i]);
  }
}

void CallbackReceiver::count(const IngestOutcome& out) {
  std::lock_guard lock(mu_);
  if (out.http_status == 401) {
    ++rejected_;  // logged by the caller: the HTTP front through its rate limiter
  } else if (out.http_status == 200) {
    ++accepted_;
    if (out.duplicate) ++duplicates_;
    if (out.malformed) ++malformed_;
    if (!out.duplicate) {
      rejected_statuses_ += static_cast<std::uint64_t>(out.rejected);
      account_errors_ += static_cast<std::uint64_t>(out.account_errors);
    }
    reconciled_ += static_cast<std::uint64_t>(out.applied.reconciled);
  }
}

UnsubscribeOutcome CallbackReceiver::unsubscribe(std::string_view token, std::string_view body) {
  if (db_ == nullptr) {
    UnsubscribeOutcome out;
    out.http_status = 503;
    out.reason = pg_ ? "one-click unsubscribe needs the SQLite file (" + cfg_.database_path + "), absent on this host"
                     : "one-click unsubscribe needs the database (this receiver runs in spool mode)";
    return out;
  }
  std::lock_guard lock(db_mu_);
  UnsubscribeOutcome out;
  bool pg_committed = false;
  try {
    // On [database] url the day's deliveries are on PostgreSQL: the change goes there too, on a
    // connection of its own opened at the first unsubscribe (rare) and kept.
    if (pg_ && !pg_unsubscribe_) pg_unsubscribe_ = std::make_unique<store::PgOperator>(cfg_.database_url);
    out = one_click_unsubscribe(*db_, unsubscribe_secret_, token, body, clock_.now(), pg_unsubscribe_.get(), &pg_committed);
  } catch (const std::exception& e) {
    // Nothing changed on either ledger (the file's transaction rolled back with PostgreSQL's),
    // unless PostgreSQL had committed when the file's own commit failed: either way the advisor
    // can click again, which completes it. A connection left broken is opened afresh next time.
    if (pg_) pg_unsubscribe_.reset();
    out = UnsubscribeOutcome{};
    out.http_status = 503;
    out.reason = std::string(pg_committed ? "the unsubscribe is on PostgreSQL but the SQLite file could not be changed; try again: "
                                          : "the unsubscribe could not be stored, nothing changed; try again: ") +
                 e.what();
    return out;
  }
  if (out.http_status == 200) {
    log_->info("one-click unsubscribe: advisor {}: {} ({} pending deliveries moved to another channel, {} cancelled)", out.advisor_id,
               out.reason, out.moved, out.cancelled);
  }
  return out;
}

bool LogRateLimiter::allow(Millis now, std::uint64_t& suppressed) {
  std::lock_guard lock(mu_);
  if (!started_ || now - window_start_ >= window_ms_ || now < window_start_) {
    started_ = true;
    window_start_ = now;
    used_ = 0;
  }
  if (used_ >= burst_) {
    ++dropped_;
    ++dropped_total_;
    return false;
  }
  ++used_;
  suppressed = dropped_;
  dropped_ = 0;
  return true;
}

std::uint64_t LogRateLimiter::suppressed_total() const {
  std::lock_guard lock(mu_);
  return dropped_total_;
}

HandshakeReply CallbackReceiver::get(const std::string& mode, const std::string& token, const std::string& challenge) const {
  auto r = verify_handshake(verify_token_, mode, token, challenge);
  if (r.http_status == 200) {
    log_->info("webhook verification handshake answered");
  } else {
    log_->warn("webhook verification handshake refused (mode \"{}\", {})", mode,
               verify_token_.empty() ? "no verify token configured" : "token mismatch");
  }
  return r;
}

store::StatusApplySummary CallbackReceiver::apply_pending() {
  store::StatusApplySummary s;
  if (!database_mode()) return s;
  std::int64_t expired = 0;
  {
    std::lock_guard lock(db_mu_);
    const Millis now = clock_.now();
    if (pg_) {
      s = pg_->apply_pending(now, store::kStatusPendingBatch, now - cfg_.retention.status_pending_expiry_ms, &expired);
    } else {
      db_->write_tx([&] { s = store::StatusApplyPending(*db_, now); });
    }
  }
  if (expired > 0) {
    log_->info("expired {} pending status(es) older than {} h ([retention] status_pending_expiry_hours)", expired,
               cfg_.retention.status_pending_expiry_ms / 3'600'000);
  }
  std::lock_guard lock(mu_);
  reconciled_ += static_cast<std::uint64_t>(s.reconciled);
  if (s.applied > 0) log_->info("applied {} status(es) that were pending", s.applied);
  return s;
}

nlohmann::json CallbackReceiver::stats() const {
  std::lock_guard lock(mu_);
  return {{"accepted", accepted_},         {"rejected", rejected_},
          {"duplicates", duplicates_},     {"malformed", malformed_},
          {"rejected_statuses", rejected_statuses_}, {"account_errors", account_errors_},
          {"reconciled", reconciled_},     {"batches", batches_}};
}

std::string spool_write(const std::string& dir, const std::string& signature, const std::string& body, Millis now,
                        std::uint64_t seq) {
  const std::string name = std::to_string(now) + "-" + std::to_string(::getpid()) + "-" + std::to_string(seq) + ".req";
  const fs::path final_path = fs::path(dir) / name;
  const fs::path tmp = fs::path(dir) / ("." + name + ".tmp");
  const std::string text = channels::format_spool_request(signature, body);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw store::StoreError("cannot create " + tmp.string() + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw store::StoreError("cannot write " + tmp.string() + ": " + err);
    }
    done += static_cast<std::size_t>(n);
  }
  // fsync before the rename and before the 200: the request must survive a crash once answered.
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw store::StoreError("cannot sync " + tmp.string() + ": " + err);
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw store::StoreError("cannot rename " + tmp.string() + ": " + err);
  }
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);  // the rename itself must be durable too
    ::close(dfd);
  }
  return name;
}

namespace {

/// A spooled request is at most this big: the receiver's own body limit is far below it.
constexpr off_t kMaxSpoolFileBytes = 16 * 1024 * 1024;

/// Reads one spool file into `out`, opened with O_NOFOLLOW (a symbolic link placed in the spool
/// is refused, never followed to what it names) and only when it is a regular file of bounded
/// size. Returns "" or why the file is refused.
std::string read_spool_file(const fs::path& f, std::string& out) {
  const int fd = ::open(f.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP) return "symbolic link: refused, not followed";
    return std::string("cannot read: ") + std::strerror(errno);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return "not a regular file";
  }
  if (st.st_size > kMaxSpoolFileBytes) {
    ::close(fd);
    return "larger than " + std::to_string(kMaxSpoolFileBytes) + " bytes";
  }
  out.clear();
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      return "cannot read: " + err;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > static_cast<std::size_t>(kMaxSpoolFileBytes)) {
      ::close(fd);
      return "larger than " + std::to_string(kMaxSpoolFileBytes) + " bytes";
    }
  }
  ::close(fd);
  return "";
}

}  // namespace

namespace {

/// ingest_spool on either ledger: `pg` set stores and applies in PostgreSQL (`db`, when given,
/// then keeps account-error alerts only), else in the SQLite file `db`.
nlohmann::json ingest_spool_into(store::Db* db, store::PgStatusStore* pg, const Config& cfg, const std::string& dir, Millis now,
                                 spdlog::logger& log) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UsageError("--spool \"" + dir + "\": not a directory");
  const std::string app_secret = cfg.whatsapp.app_secret.value();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    // Symbolic links are listed too (is_symlink, not followed): they are refused below.
    if ((e.is_symlink() || e.is_regular_file()) && e.path().extension() == ".req" && e.path().filename().string().front() != '.') {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());  // names start with the receive time: oldest first
  const fs::path done_dir = fs::path(dir) / "done";
  const fs::path rejected_dir = fs::path(dir) / "rejected";

  nlohmann::json rejected = nlohmann::json::array();
  nlohmann::json malformed = nlohmann::json::array();
  int stored = 0, duplicates = 0, new_updates = 0, rejected_statuses = 0, account_errors = 0;
  store::StatusApplySummary applied;
  auto move_to = [&](const fs::path& f, const fs::path& to_dir) {
    fs::create_directories(to_dir);
    fs::rename(f, to_dir / f.filename());
  };
  for (const auto& f : files) {
    std::string text;
    if (std::string why = read_spool_file(f, text); !why.empty()) {
      // A symbolic link is moved as a link (rename never follows it); what it names is untouched.
      log.warn("{}: refused: {}", f.filename().string(), why);
      rejected.push_back({{"file", f.filename().string()}, {"reason", why}});
      move_to(f, rejected_dir);
      continue;
    }
    auto req = channels::parse_spool_request(text);
    if (!req) {
      log.warn("{}: {}", f.filename().string(), req.error().message);
      rejected.push_back({{"file", f.filename().string()}, {"reason", req.error().message}});
      move_to(f, rejected_dir);
      continue;
    }
    IngestOutcome out;
    if (pg != nullptr) {
      VerifiedCallback item;
      out = verify_callback(app_secret, req->signature, req->body, item);
      if (out.http_status == 200) out = store_callbacks_pg(*pg, {&item}, "spool", f.filename().string(), now, log, db, &cfg).front();
    } else {
      out = ingest_callback(*db, app_secret, req->signature, req->body, "spool", f.filename().string(), now, log, &cfg);
    }
    if (out.http_status != 200) {
      log.warn("{}: rejected: {}", f.filename().string(), out.reason);
      rejected.push_back({{"file", f.filename().string()}, {"reason", out.reason}});
      move_to(f, rejected_dir);
      continue;
    }
    ++stored;
    if (out.duplicate) ++duplicates;
    if (out.malformed) malformed.push_back({{"file", f.filename().string()}, {"event_id", out.event_id}, {"error", out.reason}});
    new_updates += out.new_updates;
    if (!out.duplicate) {
      rejected_statuses += out.rejected;
      account_errors += out.account_errors;
    }
    applied += out.applied;
    move_to(f, done_dir);
  }
  // Statuses that named a delivery not known at the time they arrived, from this or earlier runs.
  store::StatusApplySummary late;
  std::int64_t expired = 0;
  if (pg != nullptr) {
    // On PostgreSQL the pending statuses' expiry is done here and by the receiver
    // (`daybreak retention` works on the SQLite file).
    late = pg->apply_pending(now, store::kStatusPendingBatch, now - cfg.retention.status_pending_expiry_ms, &expired);
  } else {
    db->write_tx([&] { late = store::StatusApplyPending(*db, now); });
  }
  applied.applied += late.applied;
  applied.reconciled += late.reconciled;
  applied.moved += late.moved;
  applied.unchanged += late.unchanged;
  applied.errors_recorded += late.errors_recorded;
  applied.ignored += late.ignored;
  auto counts = pg != nullptr ? pg->counts() : store::StatusCountAll(*db);
  nlohmann::json rep = {{"spool", dir},
          {"files", files.size()},
          {"stored", stored},
          {"duplicates", duplicates},
          {"rejected", rejected},
          {"malformed", malformed},
          {"new_updates", new_updates},
          {"rejected_statuses", rejected_statuses},
          {"account_errors", account_errors},
          {"applied", applied.applied},
          {"reconciled", applied.reconciled},
          {"moved", applied.moved},
          {"unchanged", applied.unchanged},
          {"errors_recorded", applied.errors_recorded},
          {"ignored", applied.ignored},
          {"pending", counts.pending}};
  if (pg != nullptr) {
    rep["ledger"] = "postgresql";
    rep["expired"] = expired;
  }
  return rep;
}

}  // namespace

nlohmann::json ingest_spool(store::Db& db, const Config& cfg, const std::string& dir, Millis now, spdlog::logger& log) {
  return ingest_spool_into(&db, nullptr, cfg, dir, now, log);
}

nlohmann::json ingest_spool_pg(store::PgStatusStore& pg, store::Db* alerts_db, const Config& cfg, const std::string& dir,
                               Millis now, spdlog::logger& log) {
  return ingest_spool_into(alerts_db, &pg, cfg, dir, now, log);
}

}  // namespace daybreak

// app/restore.hpp: the status events a restore carries over from the replaced database.

namespace daybreak {

CarriedStatuses carry_status_events(store::Db& db, const std::string& previous, Millis since, Millis now) {
  CarriedStatuses out;
  SQLite::Database prev(previous, SQLite::OPEN_READONLY);
  if (!prev.tableExists("status_events")) return out;
  SQLite::Statement q(prev,
                      "SELECT received_at, source, source_ref, signature, body FROM status_events "
                      "WHERE received_at >= ? ORDER BY event_id");
  q.bind(1, static_cast<std::int64_t>(since));
  db.write_tx([&] {
    while (q.executeStep()) {
      store::StatusEventStoreParams p;
      p.now = q.getColumn(0).getInt64();
      p.source = q.getColumn(1).getString();
      p.source_ref = q.getColumn(2).getString();
      p.signature = q.getColumn(3).getString();
      p.body = q.getColumn(4).getString();
      auto parsed = channels::parse_status_webhook(p.body);
      if (!parsed) p.malformed_error = parsed.error().message;
      auto stored = store::StatusEventStore(db, p);
      if (stored.duplicate) continue;
      ++out.events;
      if (parsed) out.updates += store::StatusUpdatesInsert(db, stored.event_id, parsed->updates, p.now);
      if (parsed && parsed->rejected_total > 0) {
        store::StatusRejectsInsert(db, stored.event_id, parsed->rejected, parsed->rejected_total, p.now);
      }
    }
    out.applied = store::StatusApplyPending(db, now, store::kStatusPendingAll);
  });
  return out;
}

}  // namespace daybreak
