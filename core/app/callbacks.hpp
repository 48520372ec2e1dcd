#pragma once
// The status-callback ingest path, shared by the receiver binary
// (`daybreak-callbacks`, cmd/daybreak-callbacks/) and `daybreak ingest --spool DIR`: verify the
// X-Hub-Signature-256 over the raw body, store the raw body durably, then apply its statuses to
// the ledger. No HTTP here: the receiver's HTTP wiring calls these, so the rules are tested
// without a socket.
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "domain/clock.hpp"
#include "store/db.hpp"
#include "app/unsubscribe.hpp"
#include "store/pg_status.hpp"
#include "store/status_events.hpp"

namespace daybreak {

/// What happened to one callback request.
struct IngestOutcome {
  int http_status = 200;      ///< 200 stored (or stored before), 401 signature missing/wrong or no secret
  std::string reason;         ///< why a request was rejected or marked malformed (names the field)
  std::int64_t event_id = 0;  ///< 0 when rejected
  bool duplicate = false;     ///< the same bytes were stored before
  bool malformed = false;     ///< verified but not a status webhook we can read: stored, not applied
  int new_updates = 0;        ///< statuses not seen before
  store::StatusApplySummary applied;
  bool apply_failed = false;  ///< stored, but applying failed (left for the next StatusApplyPending)
  int rejected = 0;           ///< statuses (or changes, entries) rejected one by one, stored with their reasons
  int account_errors = 0;     ///< `value.errors` entries: a whatsapp_account_error alert was raised
};

/// A request whose signature was verified, with what its body parsed to: what
/// store_callbacks takes.
struct VerifiedCallback {
  std::string signature;
  std::string body;                             ///< the raw body, byte for byte
  std::vector<StatusUpdate> updates;            ///< its statuses (none when malformed)
  std::vector<StatusReject> rejected;           ///< elements rejected one by one (the first kRejectsPerBodyMax)
  int rejected_total = 0;                       ///< all of them
  std::vector<AccountError> account_errors;     ///< value.errors
  std::optional<std::string> malformed_error;   ///< authentic but unreadable as a whole: stored, not applied
};

/// Verifies X-Hub-Signature-256 over the raw body in constant time, then parses it: a 200
/// outcome with `item` filled (body moved in), or a 401 with the reason. An empty secret
/// rejects everything. No database: the receiver runs this on its event-loop threads.
IngestOutcome verify_callback(const std::string& app_secret, const std::string& signature, std::string body,
                              VerifiedCallback& item);

/// Stores verified requests (each raw event and its statuses; the same bytes twice are one
/// event) and applies their statuses to the deliveries, all in ONE write transaction: when this
/// returns, every one of them is committed (group commit: one commit, one WAL append, for a
/// batch). Applying runs under a savepoint: if it fails, the events stay stored, their statuses
/// pending for StatusApplyPending, and the outcomes say apply_failed. Throws StoreError when the
/// transaction fails (nothing of the batch is stored). Outcomes are in the order of `items`.
/// Elements rejected one by one are stored with their reasons (store::StatusRejectsInsert).
/// When `cfg` is given, a new event carrying `value.errors` raises the whatsapp_account_error
/// event alert (subject date:D@ID, D today in delivery.timezone) in the same transaction, its
/// notifications queued for the alert sender (`daybreak alerts check`, every minute from cron,
/// or a running dispatch's sender, every second).
std::vector<IngestOutcome> store_callbacks(store::Db& db, const std::vector<const VerifiedCallback*>& items,
                                           const std::string& source, const std::string& source_ref, Millis now,
                                           spdlog::logger& log, const Config* cfg = nullptr);

/// store_callbacks with the PostgreSQL ledger ([database] url): the same outcomes, the events,
/// statuses and rejected elements stored and applied in one PostgreSQL transaction
/// (store::PgStatusStore::store) committed before this returns. Alerts are not kept in
/// PostgreSQL: a new event's `value.errors` raise whatsapp_account_error in `alerts_db` (the
/// SQLite file, where `daybreak alerts` reads them) after the commit when it is given, and are
/// only logged otherwise.
std::vector<IngestOutcome> store_callbacks_pg(store::PgStatusStore& pg, const std::vector<const VerifiedCallback*>& items,
                                              const std::string& source, const std::string& source_ref, Millis now,
                                              spdlog::logger& log, store::Db* alerts_db = nullptr, const Config* cfg = nullptr);

/// Verifies, stores (durable when this returns a 200) and applies one raw request. An empty
/// secret rejects everything (401). `source` is 'receiver' or 'spool'.
IngestOutcome ingest_callback(store::Db& db, const std::string& app_secret, const std::string& signature,
                              const std::string& body, const std::string& source, const std::string& source_ref,
                              Millis now, spdlog::logger& log, const Config* cfg = nullptr);

/// The GET verification handshake (Meta, "Getting started with webhooks", verification requests:
/// https://developers.facebook.com/docs/graph-api/webhooks/getting-started): hub.mode=subscribe
/// and hub.verify_token equal to ours → 200 with hub.challenge; else 403. An empty configured
/// token refuses every handshake.
struct HandshakeReply {
  int http_status = 403;
  std::string body;
};
HandshakeReply verify_handshake(const std::string& configured_token, const std::string& mode, const std::string& token,
                                const std::string& challenge);

/// What the receiver decides from a request's line and headers alone, before it reads a byte of
/// the body. Meta posts JSON with a Content-Length and neither Transfer-Encoding nor
/// Content-Encoding, so everything else is refused unread (docs/reliability.md, "Hostile input").
struct HeadVerdict {
  int http_status = 0;  ///< 0: serve the request (read a body of `content_length` bytes); else answer this and close
  std::string reason;   ///< why, for the answer's {"error": ...} and the log
  std::size_t content_length = 0;
};

/// GET and HEAD (handshake, /healthz) and POST (callbacks) only, else 405. Any Transfer-Encoding
/// (chunked): 411. A Content-Encoding other than identity (gzip, a decompression bomb): 415. A
/// Content-Length that is not a decimal number: 400; above `max_body_bytes`: 413. A POST without
/// Content-Length: 411. Header values are as received (nullopt when absent).
HeadVerdict judge_request_head(std::string_view method, std::optional<std::string_view> content_length,
                               std::optional<std::string_view> transfer_encoding,
                               std::optional<std::string_view> content_encoding, std::size_t max_body_bytes);

/// Bounds how many lines a flood of refused requests can write to the log: at most `burst`
/// lines per `window_ms`; the lines past that are counted, and the next line allowed says how
/// many were left out. Thread-safe.
class LogRateLimiter {
 public:
  LogRateLimiter(int burst, Millis window_ms) : burst_(burst), window_ms_(window_ms) {}
  /// True when a line may be written at `now`; `suppressed` is then how many were left out
  /// since the previous line written.
  bool allow(Millis now, std::uint64_t& suppressed);
  /// Lines left out so far in all.
  std::uint64_t suppressed_total() const;

 private:
  mutable std::mutex mu_;
  int burst_;
  Millis window_ms_;
  Millis window_start_ = 0;
  int used_ = 0;
  bool started_ = false;
  std::uint64_t dropped_ = 0, dropped_total_ = 0;
};

/// The receiver's state between HTTP requests. In database mode one writer thread owns the
/// ledger connection: the server's threads verify and parse requests in parallel and queue them;
/// the writer takes everything queued at once and stores it in one transaction (group commit),
/// then tells each request's `done` that it is committed, so the server answers 200 only for a
/// request that is in the ledger. No timer: a batch is whatever queued while the previous one
/// committed, so one request alone is committed at once and a flood shares its commits.
class CallbackReceiver {
 public:
  using Done = std::function<void(const IngestOutcome&)>;
  /// At most this many requests go into one transaction.
  static constexpr std::size_t kMaxBatch = 512;

  /// `db` may be null in spool mode (the receiver then never opens the database). Reads
  /// whatsapp.app_secret, verify_token and email.unsubscribe_secret once, here: throws ConfigError naming the key and
  /// variable (or file) when one is configured but cannot be read. With `pg` (the PostgreSQL
  /// ledger, [database] url), statuses are stored and applied there (store_callbacks_pg) and
  /// `db`, when given, serves only account-error alerts and one-click unsubscribes (which change
  /// the advisor on both ledgers).
  CallbackReceiver(store::Db* db, const Config& cfg, const Clock& clock, std::shared_ptr<spdlog::logger> log,
                   std::string spool_dir, std::unique_ptr<store::PgStatusStore> pg = nullptr);
  ~CallbackReceiver();
  CallbackReceiver(const CallbackReceiver&) = delete;
  CallbackReceiver& operator=(const CallbackReceiver&) = delete;

  /// Starts the writer thread (database mode; nothing in spool mode). It also applies the
  /// pending statuses every `pending_interval`. Without start, post() stores inline.
  void start(std::chrono::milliseconds pending_interval);
  /// Stops taking requests (a request submitted after this is answered 503: the sender
  /// retries), commits what is queued, calls its `done`s, and joins the writer.
  void stop();

  /// POST, first half, on the caller's thread: verify; in spool mode also write the file.
  /// Returns the final outcome (401, or spool mode's 200), or nullopt when the request is
  /// verified and must be handed to submit() with `item`.
  std::optional<IngestOutcome> begin(const std::string& signature, std::string body, VerifiedCallback& item);
  /// POST, second half: queues a verified request for the writer; `done` is called from the
  /// writer thread once its batch has committed (or failed: 500), or at once with 503 when the
  /// receiver is stopping or was not started.
  void submit(VerifiedCallback item, Done done);
  /// POST, both halves, waiting for the commit: verify, then store+apply (database mode) or
  /// write a spool file (spool mode).
  IngestOutcome post(const std::string& signature, const std::string& body);
  /// GET: the handshake.
  HandshakeReply get(const std::string& mode, const std::string& token, const std::string& challenge) const;
  /// `POST /unsubscribe?a=TOKEN`: one_click_unsubscribe (app/unsubscribe.hpp) on the ledger
  /// connection, on the caller's thread (rare, small); with the PostgreSQL ledger on both the
  /// file and PostgreSQL. Spool mode, or no SQLite file beside PostgreSQL: 503. A ledger that
  /// fails: 503, nothing changed.
  UnsubscribeOutcome unsubscribe(std::string_view token, std::string_view body);
  /// Applies statuses still pending (their delivery's message id was recorded later). Database mode only.
  /// On PostgreSQL it also expires pending statuses older than [retention]
  /// status_pending_expiry_hours (what `daybreak retention` does on SQLite), one batch per call.
  store::StatusApplySummary apply_pending();
  /// Counters as JSON for the final log line.
  nlohmann::json stats() const;

 private:
  struct Queued {
    VerifiedCallback item;
    Done done;
  };
  void writer_loop(std::chrono::milliseconds pending_interval);
  void checkpoint_loop();
  void commit_batch(std::vector<Queued>& batch);
  void count(const IngestOutcome& out);

  /// Verified requests are stored somewhere: a ledger (SQLite or PostgreSQL), not a spool.
  [[nodiscard]] bool database_mode() const { return spool_dir_.empty() && (db_ != nullptr || pg_ != nullptr); }

  store::Db* db_;
  std::unique_ptr<store::PgStatusStore> pg_;  ///< the PostgreSQL ledger's status store ([database] url)
  std::unique_ptr<store::PgOperator> pg_unsubscribe_;  ///< with pg_: one-click unsubscribes' PostgreSQL part (under db_mu_)
  const Config& cfg_;
  std::string app_secret_;    ///< cfg_.whatsapp.app_secret's value ("" = none configured)
  std::string verify_token_;  ///< cfg_.whatsapp.verify_token's value
  std::string unsubscribe_secret_;  ///< cfg_.unsubscribe.secret's value when configured ("" = one-click unsubscribe off)
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  std::string spool_dir_;
  std::mutex db_mu_;          ///< the ledger connection: the writer, apply_pending, post() without start
  mutable std::mutex mu_;     ///< the counters and seq_
  std::uint64_t seq_ = 0;
  std::uint64_t accepted_ = 0, rejected_ = 0, duplicates_ = 0, malformed_ = 0, reconciled_ = 0, batches_ = 0;
  std::uint64_t rejected_statuses_ = 0, account_errors_ = 0;
  std::mutex q_mu_;
  std::condition_variable q_cv_;     ///< the writer: something queued, or stopping
  std::condition_variable stop_cv_;  ///< the checkpointer: stopping, or checkpoint_now_
  std::deque<Queued> queue_;
  bool running_ = false, stopping_ = false;
  std::thread writer_;
  /// While the writer runs, WAL checkpoints are taken off it: its connection does not
  /// auto-checkpoint, and this thread, on its own connection, runs a PASSIVE checkpoint every
  /// kCheckpointInterval (copying pages into the database file and syncing it, which never
  /// blocks the writer).
  static constexpr std::chrono::milliseconds kCheckpointInterval{100};
  std::thread checkpointer_;
  /// A PASSIVE checkpoint never catches up with a writer that commits back to back, so under
  /// load the WAL was never reset: it grew by every frame written (hundreds of MB in a minute),
  /// each write extending the file (the kernel allocating and zeroing new blocks). So once the
  /// WAL holds kWalRestartFrames frames, the writer, after answering its batch, checkpoints the
  /// few frames the checkpointer has not copied yet; its next transaction then starts the WAL
  /// over from its beginning, rewriting pages already in the page cache.
  static constexpr int kWalRestartFrames = 6144;
  /// ... but only when at most this many are left to copy (the writer pauses while it copies
  /// them and syncs); until then it asks the checkpointer to run at once (checkpoint_now_).
  /// Past 2 × kWalRestartFrames it copies whatever is left.
  static constexpr int kWalRestartGap = 1024;
  /// Frames in the WAL after the writer's connection's last commit (its sqlite3_wal_hook).
  std::atomic<int> wal_frames_{0};
  /// Frames the checkpointer's last checkpoint had copied.
  std::atomic<int> wal_backfilled_{0};
  bool checkpoint_now_ = false;  ///< under q_mu_: the checkpointer runs without waiting its interval
  void restart_wal_if_long();
};

/// Writes a verified request into `dir` in the spool format (channels/status_parse.hpp):
/// a temporary file, fsync, then rename to `<ms>-<pid>-<seq>.req`, so `ingest` never sees half a
/// file and a 200 is only sent for a request on disk. Returns the file name.
std::string spool_write(const std::string& dir, const std::string& signature, const std::string& body, Millis now,
                        std::uint64_t seq);

/// `daybreak ingest --spool DIR`: every DIR/*.req in name order through ingest_callback with
/// source 'spool'; stored files move to DIR/done/, rejected ones (bad signature, unreadable) to
/// DIR/rejected/; then the pending statuses are applied. Reads whatsapp.app_secret (ConfigError
/// when it cannot be read). Returns the summary object.
nlohmann::json ingest_spool(store::Db& db, const Config& cfg, const std::string& dir, Millis now, spdlog::logger& log);
/// ingest_spool into the PostgreSQL ledger ([database] url): the same files, outcomes and
/// summary (plus "ledger": "postgresql" and "expired": pending statuses older than [retention]
/// status_pending_expiry_hours expired by this run); account-error alerts go to `alerts_db`
/// (the SQLite file) when given (store_callbacks_pg).
nlohmann::json ingest_spool_pg(store::PgStatusStore& pg, store::Db* alerts_db, const Config& cfg, const std::string& dir,
                               Millis now, spdlog::logger& log);

}  // namespace daybreak
