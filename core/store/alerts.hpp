#pragma once
// Query module for `alerts` and `alert_notifications` (sql/004_alerts.sql): one firing row per
// (rule, subject), its escalation level and acknowledgement, and the outbox of notifications
// the alert sender posts. Writers call these inside one transaction with the change they record.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/types.hpp"
#include "store/db.hpp"

namespace daybreak::store {

/// An alerts row.
struct Alert {
  std::int64_t alert_id = 0;
  std::string rule;
  std::string subject;
  std::string state;  ///< firing | resolved
  int level = 0;      ///< escalation level reached (index into the on-call chain)
  std::string message;
  Millis fired_at = 0;
  Millis updated_at = 0;
  std::optional<Millis> resolved_at;
  std::optional<std::string> acknowledged_by;
  std::optional<Millis> acknowledged_at;
};

/// Every firing alert, oldest first.
std::vector<Alert> AlertListFiring(Db& db);
/// The newest `limit` alerts in any state, newest first.
std::vector<Alert> AlertListRecent(Db& db, int limit);
std::optional<Alert> AlertGet(Db& db, std::int64_t alert_id);
/// How many alerts are firing now.
std::int64_t AlertCountFiring(Db& db);
/// Inserts a firing alert at level 0; returns its id. The unique index refuses a second firing
/// row for the same rule and subject.
std::int64_t AlertInsert(Db& db, const std::string& rule, const std::string& subject, const std::string& message, Millis now);
/// Rewrites a firing alert's message (the condition still holds, the numbers moved).
void AlertUpdateMessage(Db& db, std::int64_t alert_id, const std::string& message, Millis now);
/// Marks a firing alert resolved with its last message.
void AlertResolve(Db& db, std::int64_t alert_id, const std::string& message, Millis now);
/// Raises a firing, unacknowledged alert's level.
void AlertSetLevel(Db& db, std::int64_t alert_id, int level, Millis now);
/// Records who acknowledged a firing alert and when; false when it was not firing or already acknowledged.
bool AlertAcknowledge(Db& db, std::int64_t alert_id, const std::string& who, Millis now);

/// An alert_notifications row.
struct AlertNotification {
  std::int64_t notification_id = 0;
  std::int64_t alert_id = 0;
  std::string event;  ///< fired | escalated | acknowledged | resolved
  int level = 0;
  std::string sink;    ///< webhook | email
  std::string target;  ///< email address, or "LEVEL#INDEX" of a webhook URL in the config
  std::string body;
  int attempts = 0;
  Millis next_attempt_at = 0;
  std::optional<Millis> sent_at;
  std::optional<Millis> failed_at;
  std::optional<std::string> last_error;
  Millis created_at = 0;
};

/// Queues a notification, due at once.
std::int64_t NotificationEnqueue(Db& db, const AlertNotification& n);
/// Pending notifications due at `now` (not sent, not given up), oldest first, at most `limit`.
std::vector<AlertNotification> NotificationListDue(Db& db, Millis now, int limit);
/// Every notification of an alert, oldest first.
std::vector<AlertNotification> NotificationListForAlert(Db& db, std::int64_t alert_id);
/// Pending notifications (not sent, not given up).
std::int64_t NotificationCountPending(Db& db);
/// Records a successful post.
void NotificationMarkSent(Db& db, std::int64_t id, int attempts, Millis now);
/// Records a failed post: retried at `next_attempt_at`, or given up when `give_up`.
void NotificationMarkFailed(Db& db, std::int64_t id, int attempts, const std::string& error, Millis next_attempt_at,
                            bool give_up, Millis now);

}  // namespace daybreak::store
