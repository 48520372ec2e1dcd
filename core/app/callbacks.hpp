#pragma once
// The status-callback ingest path, shared by the receiver binary
// (`daybreak-callbacks`, cmd/daybreak-callbacks/) and `daybreak ingest --spool DIR`: verify the
// X-Hub-Signature-256 over the raw body, store the raw body durably, then apply its statuses to
// the ledger. No HTTP here: the receiver's HTTP wiring calls these, so the rules are tested
// without a socket.
#include <spdlog/logger.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "domain/clock.hpp"
#include "store/db.hpp"
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
};

/// Verifies, stores (durable when this returns a 200) and applies one raw request. An empty
/// secret rejects everything (401). `source` is 'receiver' or 'spool'.
IngestOutcome ingest_callback(store::Db& db, const std::string& app_secret, const std::string& signature,
                              const std::string& body, const std::string& source, const std::string& source_ref,
                              Millis now, spdlog::logger& log);

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

/// The receiver's state between HTTP requests: one connection, used under a mutex by the
/// server's threads (SQLite has one writer anyway), plus its counters for the stop log line.
class CallbackReceiver {
 public:
  /// `db` may be null in spool mode (the receiver then never opens the database). Reads
  /// whatsapp.app_secret and verify_token once, here: throws ConfigError naming the key and
  /// variable (or file) when one is configured but cannot be read.
  CallbackReceiver(store::Db* db, const Config& cfg, const Clock& clock, std::shared_ptr<spdlog::logger> log,
                   std::string spool_dir);
  /// POST: verify, then store+apply (database mode) or write a spool file (spool mode).
  IngestOutcome post(const std::string& signature, const std::string& body);
  /// GET: the handshake.
  HandshakeReply get(const std::string& mode, const std::string& token, const std::string& challenge) const;
  /// Applies statuses still pending (their delivery's message id was recorded later). Database mode only.
  store::StatusApplySummary apply_pending();
  /// Counters as JSON for the final log line.
  nlohmann::json stats() const;

 private:
  store::Db* db_;
  const Config& cfg_;
  std::string app_secret_;    ///< cfg_.whatsapp.app_secret's value ("" = none configured)
  std::string verify_token_;  ///< cfg_.whatsapp.verify_token's value
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  std::string spool_dir_;
  mutable std::mutex mu_;
  std::uint64_t seq_ = 0;
  std::uint64_t accepted_ = 0, rejected_ = 0, duplicates_ = 0, malformed_ = 0, reconciled_ = 0;
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

}  // namespace daybreak
