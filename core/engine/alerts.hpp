#pragma once
// Alert rules, their lifecycle and their delivery.
//
// Rules (names as in [alerts] disabled_rules; subject says what the alert is about):
//   live_success_low     run:ID     live success % below alerts.live_success_pct after alerts.min_sample;
//                                   alerts.success_measure picks accepted (default) or delivered
//                                   (status callbacks) success
//   deadline_at_risk     run:ID     remaining ÷ available send rate > time left to the deadline
//   breaker_open         sender:ID  the sender's circuit breaker is open
//   credentials_failure  sender:ID  the provider rejected the sender's credentials
//   whatsapp_number_blocked sender:ID  the provider blocked the WhatsApp number (131048, 133010 ...:
//                                   docs/whatsapp-errors.md); it is paused, its traffic moved
//   whatsapp_account_blocked account:A  CRITICAL (every level of the chain at once): the provider
//                                   blocked the account (368, 131031, 131042); all its senders stopped
//   certificate_failure  sender:ID  the TLS certificate of a sender's server (an email relay, the
//                                   WhatsApp Graph API host, a webhook) did not verify, or the CA
//                                   file cannot be read: the sender is paused, breaker open
//   dead_letter_growth   run:ID     alerts.dead_letter_growth dead letters within the window
//   silent_days          date:D     eligible advisors without an assignment for a planned day
//   capacity_shortfall   run:ID     a planned run does not fit its senders (plan-deliveries said so)
//   content_held         content:C  deliveries held: C pulled or expired, no emergency item (domain/emergency.hpp)
//   plan_missing         date:D     day D has no plan by schedule.plan_deadline on D-1 (date:D),
//                        date:D@HH:MM and again at schedule.plan_recheck on D (a second alert)
//   night_missed         date:D     an event: dispatch found day D unplanned (wholly or partly) at
//                                   the morning's start and planned it itself (dead-man's switch)
//   nightly_failed       date:D     an event: the nightly job for D failed (raised by
//                                   daybreak-nightly through `daybreak alerts raise`)
//   whatsapp_account_error  an event: a status webhook carried `value.errors` (Meta's
//                        date:D@ID  account-level errors; ID the phone number id, else the WABA id),
//                                   raised by daybreak-callbacks (and `daybreak ingest`) in the
//                                   transaction that stores the webhook
//
// Event alerts fire when raised and resolve when cleared (`daybreak alerts clear`, a nightly
// that succeeds) or when their day is over.
//
// Lifecycle: a rule+subject fires once (one `alerts` row while firing), its message is updated
// while the condition holds, and it resolves when the condition clears. Every change that tells
// people (fired, escalated, acknowledged, resolved) queues notifications in
// `alert_notifications` in the same transaction; a sender posts them later, so evaluating never
// waits on the network. Escalation: firing and unacknowledged for N minutes → the next level of
// the on-call chain, again after another N, and so on; acknowledging stops it.
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "domain/clock.hpp"
#include "engine/live.hpp"
#include "store/db.hpp"
#include "store/withdrawal.hpp"

namespace spdlog {
class logger;
}

namespace daybreak::engine {

/// A condition that holds now: the rule, what it is about, and a one-line message with numbers.
struct AlertCondition {
  std::string rule;
  std::string subject;
  std::string message;
  bool critical = false;  ///< fires at every level of the on-call chain at once
};

/// One change evaluate/escalate/acknowledge made.
struct AlertChange {
  enum class Kind { fired, updated, escalated, acknowledged, resolved };
  Kind kind = Kind::fired;
  std::int64_t alert_id = 0;
  std::string rule, subject, message;
  int level = 0;
};
std::string_view to_string(AlertChange::Kind k);

/// The rule engine. One per process; dispatch calls evaluate() once a second on its writer
/// thread (inside the writer's transaction), `daybreak alerts check` calls the store rules and
/// escalate() from cron. Not thread-safe: call it from one thread.
class AlertEngine {
 public:
  explicit AlertEngine(AlertsConfig cfg);

  /// The live rules over `snap` at `now`, then escalation. Authoritative for the live rules'
  /// subjects present in the snapshot (its runs and senders): a firing alert of such a subject
  /// whose condition no longer holds resolves; a closed run's alerts resolve. Alerts about
  /// runs or senders not in the snapshot are left alone. Every change and its notifications are
  /// written atomically: in a SAVEPOINT when a transaction is open (the writer's batch), else in
  /// its own BEGIN IMMEDIATE.
  std::vector<AlertChange> evaluate(store::Db& db, const LiveSnapshot& snap, Millis now);

  /// The planning rules from the store at `now`: silent_days for each date in `dates` that has
  /// runs planned, and capacity_shortfall for runs not yet closed whose window ends after `now`.
  /// Authoritative for every subject of those two rules.
  std::vector<AlertChange> evaluate_store(store::Db& db, const std::vector<std::string>& dates, Millis now);

  /// The plan_missing rule: `conds` are the conditions that hold now (core/app computes them
  /// from the schedule); authoritative for every plan_missing subject.
  std::vector<AlertChange> evaluate_plan_missing(store::Db& db, const std::vector<AlertCondition>& conds, Millis now);

  /// Fires an event alert (night_missed, nightly_failed), or updates the message of the one
  /// already firing for the same rule and subject. Notifications are queued atomically with it.
  AlertChange raise_event(store::Db& db, const AlertCondition& c, Millis now);
  /// Resolves the firing event alert of `rule` and `subject` with `message`; nullopt when none fires.
  std::optional<AlertChange> clear_event(store::Db& db, const std::string& rule, const std::string& subject,
                                         const std::string& message, Millis now);
  /// Resolves firing event alerts whose subject is a day (date:D) before `today`.
  std::vector<AlertChange> expire_events(store::Db& db, const std::string& today, Millis now);

  /// content_held from the store: one alert per content item with held deliveries (not
  /// dismissed) on days from `from_date` on, naming the languages, days and counts. Authoritative
  /// for every `content:` subject of the rule: it resolves once they are resent or dismissed.
  /// Dispatch calls it with its heartbeat, `daybreak alerts check` every minute; both pass
  /// yesterday in the default time zone.
  std::vector<AlertChange> evaluate_held(store::Db& db, const std::string& from_date, Millis now);
  /// The same over held deliveries already read (store::HeldGroup rows), for a dispatch whose
  /// ledger is another database (HostMonitoring::held_groups): the alerts go to `db`.
  std::vector<AlertChange> evaluate_held(store::Db& db, const std::vector<store::HeldGroup>& groups, Millis now);

  /// Raises each firing, unacknowledged alert to the level its age calls for (one level per
  /// escalate_after_ms since it fired, up to the last level of the chain), queuing the new
  /// level's notifications.
  std::vector<AlertChange> escalate(store::Db& db, Millis now);

  /// The live conditions that hold in `snap` (pure; evaluate() applies them). Keeps the
  /// dead-letter history dead_letter_growth needs when the snapshot has no dead_recent.
  std::vector<AlertCondition> live_conditions(const LiveSnapshot& snap, Millis now);

  [[nodiscard]] const AlertsConfig& config() const { return cfg_; }

 private:
  AlertsConfig cfg_;
  std::map<std::int64_t, std::deque<std::pair<Millis, std::uint64_t>>> dead_history_;  ///< run → (time, dead)
};

/// Acknowledges firing alert `alert_id` as `actor` (sudo_user when run under sudo) with
/// `reason`: records who and when, stops its escalation, appends an audit_log row and tells
/// every level it had reached. Throws std::invalid_argument when it does not exist, is resolved
/// or was already acknowledged (the message says which and by whom).
AlertChange acknowledge_alert(store::Db& db, const AlertsConfig& cfg, std::int64_t alert_id, const std::string& actor,
                              const std::string& sudo_user, const std::string& reason, Millis now);

/// The Slack-compatible JSON body ({"text", "attachments"}) of a notification.
std::string slack_body(const std::string& event, std::int64_t alert_id, const std::string& rule,
                       const std::string& subject, const std::string& message, int level, const std::string& level_name,
                       Millis fired_at);

/// Result of one post.
struct PostResult {
  bool ok = false;
  bool permanent = false;  ///< retrying cannot help (a 4xx other than 429: a revoked webhook)
  std::string error;
};

/// Where notifications go. The curl implementation posts for real; tests may fake it.
class AlertSink {
 public:
  virtual ~AlertSink() = default;
  /// POSTs `json` to `url` (Content-Type: application/json).
  virtual PostResult post_webhook(const std::string& url, const std::string& json) = 0;
  /// Sends a plain-text email to `to` with this Message-ID (alert_message_id). Emails of one
  /// pass may share one SMTP connection, kept until end_pass().
  virtual PostResult send_email(const std::string& to, const std::string& subject, const std::string& text, Millis now,
                                const std::string& message_id) = 0;
  /// The pass is over: close what send_email kept open.
  virtual void end_pass() {}
};

/// "<daybreak-alert.N@D>" for outbox notification N, D the domain of `from` (daybreak.invalid
/// without one): the same on every retry of it, so a receiving side can drop a duplicate
/// (RFC 5322 §3.6.4). For a notification without a row (N = 0: a direct alert, `alerts raise`
/// when the ledger cannot hold it) a unique id from `now`, the process id and a counter.
std::string alert_message_id(std::int64_t notification_id, const std::string& from, Millis now);

/// The RFC 5322 text of an alert email: Date (`now`, UTC), From, To, Subject (RFC 2047 encoded
/// when not ASCII), Message-ID, MIME-Version, a UTF-8 text/plain body with CRLF line ends.
std::string alert_email_message(const std::string& from, const std::string& to, const std::string& subject,
                                const std::string& text, Millis now, const std::string& message_id);

/// libcurl: webhooks over HTTP(S) with alerts.notify_timeout_ms, email over SMTP (alerts.smtp_*,
/// verified with alerts.smtp_ca_file when set): one SMTP connection per pass, kept while its
/// sessions end cleanly and closed by end_pass() (or at once after a failure).
std::unique_ptr<AlertSink> make_curl_alert_sink(const AlertsConfig& cfg);

/// What one pass of the sender did.
struct NotifyStats {
  int sent = 0;
  int retry_later = 0;
  int gave_up = 0;
};

/// Posts every notification due at `now` (at most `limit`), trying each up to `tries_now` times
/// in a row (the cron check passes 3; the dispatch thread 1 and comes back a second later).
/// A failure is retried later with exponential backoff from alerts.notify_retry_base_ms (capped
/// at 5 min) until alerts.notify_max_attempts, then given up and logged. No transaction is open
/// while posting.
NotifyStats deliver_notifications(store::Db& db, const AlertsConfig& cfg, AlertSink& sink, Millis now,
                                  int tries_now = 1, spdlog::logger* log = nullptr, int limit = 200);

/// The dispatch-side sender: its own thread and its own database connection, waking once a
/// second (of `clock`) to post due notifications. Deliveries never wait for it.
class AlertNotifier {
 public:
  AlertNotifier(std::string db_path, AlertsConfig cfg, const Clock& clock, std::shared_ptr<spdlog::logger> log,
                std::unique_ptr<AlertSink> sink = nullptr);
  ~AlertNotifier();  ///< stops and joins
  void start();
  /// Posts what is due now without waiting for the next tick (after evaluate() queued some).
  void wake();
  /// Notifies the first level of the chain (its webhooks and emails) straight from memory, not
  /// through the outbox: for the one condition the outbox cannot hold, a ledger that cannot be
  /// written (full disk, a write lock held too long). `event` is "fired" or "resolved"; the
  /// alert id shown is 0 (there is no row). Retried each second up to alerts.notify_max_attempts.
  void post_direct(const std::string& event, const std::string& rule, const std::string& subject,
                   const std::string& message);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace daybreak::engine
